//! The registry as a shared cache (`REUSE=1`): an image whose content tag
//! (`<repo>:mcid-<20 hex>`) is already in the registry is pulled and tagged instead of built.
//!
//! `matriochka reuse-lookup PLAN…`, run once by make before the builds of a run, looks every
//! image's content tag up at once, in parallel threads (one registry request per image), and
//! records each answer under `<staging root>/.reuse/`; `image build` takes the record (once) or,
//! without one, looks its image up itself. A lookup that fails (registry down, no skopeo) makes
//! the build go ahead, with a note.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use crate::app::project::{at, Project};
use crate::app::reuse::*;
use crate::domain::layout;
use crate::error::EXIT_SUCCESS;
use crate::infra::engine::Engine;
use crate::infra::pool;
use crate::infra::process::ProcessRunner;
use crate::plan::build_plan::BuildPlan;

/// At most this many lookups run at once.
const THREADS: usize = 16;

/// `matriochka reuse-lookup PLAN…`: looks up the content tag of every planned image that the
/// engine does not hold with its content id, all at once, and records the answers.
pub(crate) fn lookup_command(
    project: &Project,
    plans: &[PathBuf],
    engine: &Engine,
    out: &mut dyn Write,
) -> Result<u8> {
    let root = project.root();
    let staging_root = &project.config.staging_root;
    let mut read = Vec::new();
    for rel in plans {
        if rel.is_absolute() || !rel.starts_with(staging_root) {
            bail!(
                "plan `{}` is not below the staging root `{}`",
                rel.display(),
                staging_root.display()
            );
        }
        let path = at(root, rel);
        let bytes =
            std::fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let plan: BuildPlan = serde_json::from_slice(&bytes)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        read.push(plan);
    }
    let dir = at(root, &staging_root.join(layout::REUSE_DIR));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let access = project.registry_access();
    let cache_repo = cache_repo(project)?;
    // Registry requests wait on the network, not the CPU: more workers than cores.
    let answers = pool::map(THREADS, read.len(), |index| {
        let plan = &read[index];
        match is_local(engine, &plan.tag, &plan.content_id) {
            Ok(true) => Lookup::Local,
            _ => lookup(
                &mut ProcessRunner,
                &access,
                &plan.content_reference(cache_repo),
            ),
        }
    });
    let (mut hits, mut asked) = (0, 0);
    for (plan, answer) in read.iter().zip(answers) {
        let path = at(root, &record_path(staging_root, &plan.content_id));
        crate::infra::fs::write_beside(&path, answer.record().as_bytes())?;
        match answer {
            Lookup::Hit => {
                hits += 1;
                asked += 1;
            }
            Lookup::Miss | Lookup::Failed(_) => asked += 1,
            Lookup::Local => {}
        }
    }
    writeln!(
        out,
        "reuse: {hits} of {asked} looked-up images are in the registry"
    )?;
    Ok(EXIT_SUCCESS)
}
