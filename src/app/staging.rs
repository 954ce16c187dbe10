//! Staging: every requested flavor computed in memory and written under the staging root's lock,
//! then `build.mk`; shared by `stage`, `stage --target` and `bake`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::app::project::Project;
use crate::domain::layout;
use crate::error::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::infra::lock::{Access, Wait};
use crate::infra::pool;
use crate::plan::makefile;
use crate::stage::model::StagedFlavor;
use crate::stage::tree::FsTree;
use crate::stage::{self, fastpath, Prepared, Temps, WriteStats};

/// The flavors named by `args` (else `$FLAVORS`, else the default flavors), computed in memory.
pub(crate) fn compute_flavors(project: &Project, args: &[String]) -> Result<Vec<StagedFlavor>> {
    let prepared = project.prepare(&project.requested_texts(args)?)?;
    let tree = FsTree::of(&project.config);
    prepared
        .iter()
        .map(|p| {
            stage::compute(&tree, &project.config, p)
                .with_context(|| format!("failed to stage `{}`", p.flavor.text))
        })
        .collect()
}

/// A flavor to stage, as the clash check leaves it: it is parsed and its variables computed again
/// by the worker that stages it, so that a run holds those of a few flavors at a time.
struct ToStage<'a> {
    text: &'a str,
    staging_dir: Box<Path>,
    buildable: bool,
    test: bool,
}

/// Stages flavors, then writes `build.mk`: the whole write phase, fast-path checks included, holds
/// the staging root's exclusive lock, so concurrent runs never interleave.
pub(crate) fn stage_command(
    project: &Project,
    args: &[String],
    no_wait: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let texts = project.requested_texts(args)?;
    crate::app::groups::check_tags(project, &texts)?;
    let flavors = project.prepare_with(&texts, |text, p| ToStage {
        text,
        staging_dir: p.vars.staging_dir().into(),
        buildable: p.buildable,
        test: p.test,
    })?;
    for f in flavors.iter().filter(|f| !f.buildable && !f.test) {
        writeln!(
            err,
            "warning: flavor `{}` is not in `flavors.buildable` of `{}`",
            f.text,
            project.config.display_path()
        )?;
    }
    let lock = if no_wait {
        project.lock_with(Access::Exclusive, Wait::No, err)?
    } else {
        project.lock(Access::Exclusive, err)?
    };
    let staging_root = &project.config.staging_root;
    let temps = Temps::clean(project.root(), staging_root, &lock)?;
    let results = stage_all(project, &flavors, &temps);
    let mut failed = 0;
    for (f, result) in flavors.iter().zip(results) {
        match result {
            Ok(stats) => {
                writeln!(
                    out,
                    "staged {}: {} written, {} unchanged, {} removed",
                    f.staging_dir.display(),
                    stats.written,
                    stats.unchanged,
                    stats.removed
                )?;
            }
            Err(error) => {
                failed += 1;
                writeln!(err, "error: failed to stage `{}`: {error:#}", f.text)?;
            }
        }
    }
    // Each failure printed its own `error:` line: no summary line repeats them.
    if failed > 0 {
        return Ok(EXIT_FAILURE);
    }
    let dirs: Vec<&Path> = flavors.iter().map(|f| &*f.staging_dir).collect();
    let text = makefile::build_mk(&project.config, &dirs);
    let path = staging_root.join(layout::BUILD_MK);
    stage::write_one(project.root(), staging_root, &path, &text, &temps)?;
    drop(lock);
    Ok(EXIT_SUCCESS)
}

/// A flavor's variables, computed again.
fn prepared(project: &Project, f: &ToStage) -> Result<Prepared> {
    let flavor = project.parse(f.text)?;
    let mut prepared = Prepared::new(
        flavor,
        &project.config,
        &project.env,
        project.git(),
        f.buildable,
    )?;
    prepared.test = f.test;
    Ok(prepared)
}

/// Stages every flavor, on as many threads as there are cores; results in input order.
fn stage_all(project: &Project, flavors: &[ToStage], temps: &Temps) -> Vec<Result<WriteStats>> {
    let tree = FsTree::of(&project.config);
    let git = project.git();
    let facts = fastpath::RunFacts::new(project.root(), &project.config, git);
    pool::run(
        pool::cores_for(flavors.len()),
        flavors.len(),
        // Manifests written in the tick of their last output, written again later.
        Vec::new,
        |pending, index| {
            fastpath::retry(pending, false, temps);
            prepared(project, &flavors[index]).and_then(|p| {
                let (staged, racy) = stage_one(project, &tree, &facts, &p, temps)?;
                pending.extend(racy);
                Ok(staged)
            })
        },
        |mut pending| fastpath::retry(&mut pending, true, temps),
    )
}

/// Stages one flavor: nothing but metadata is read when its manifest shows it unchanged.
fn stage_one(
    project: &Project,
    tree: &FsTree,
    facts: &fastpath::RunFacts,
    prepared: &Prepared,
    temps: &Temps,
) -> Result<(WriteStats, Option<fastpath::Pending>)> {
    let config = &project.config;
    let git = project.git();
    let dir = prepared.vars.staging_dir();
    let layers = stage::checked_layers(tree, config, prepared)?;
    let fingerprint = facts.fingerprint(tree, prepared, &layers, git);
    if let Some(fingerprint) = &fingerprint {
        let unchanged =
            fastpath::unchanged_outputs(project.root(), &config.staging_root, dir, fingerprint);
        if let Some(unchanged) = unchanged {
            let stats = WriteStats {
                unchanged,
                ..WriteStats::default()
            };
            return Ok((stats, None));
        }
    }
    let staged = stage::compute_on(tree, config, prepared, &layers)?;
    let sources = stage::files_sources(&staged, git);
    let digests = stage::digest_files(&staged);
    let extra = makefile::flavor_outputs(config, &staged, git)?;
    let outputs = stage::outputs(&staged, &sources, &extra, &digests);
    let base = project.root().join(dir);
    let stats = stage::write_dir(project.root(), &config.staging_root, dir, &outputs, temps)?;
    let pending = match &fingerprint {
        Some(fingerprint) => fastpath::record(&base, &outputs, fingerprint, temps)
            .inspect_err(|_| stage::unmark(&base))?,
        None => None,
    };
    Ok((stats, pending))
}
