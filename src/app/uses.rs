//! Uses: when each image matriochka built was last used (recorded at the end of every build and
//! push run, and by `image build`), which `prune` reads.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::app::project::{at, engine, Project};
use crate::domain::layout;
use crate::error::EXIT_SUCCESS;
use crate::infra::engine::{argv, Engine};

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

pub(crate) fn uses_dir(project: &Project) -> PathBuf {
    at(
        project.root(),
        &project.config.staging_root.join(layout::USES_DIR),
    )
}

/// The recorded uses: image id → unix seconds. Unreadable entries are left out.
pub(crate) fn read_uses(project: &Project) -> BTreeMap<String, i64> {
    let mut uses = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(uses_dir(project)) else {
        return uses;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(seconds) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
        {
            uses.insert(name, seconds);
        }
    }
    uses
}

/// Records that the image `tag` names was used now.
pub(crate) fn record_use(project: &Project, engine: &Engine, tag: &str) -> Result<()> {
    let args = engine.args(argv::image_id(tag));
    let (found, id) = engine.capture(&args)?;
    let id = id.trim().trim_start_matches("sha256:");
    if !found || id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(());
    }
    let path = uses_dir(project).join(id);
    crate::infra::fs::write_beside(&path, format!("{}\n", now()).as_bytes())
}

/// The tags of the current flavors' images (arguments, else `FLAVORS`, else the default).
pub(crate) fn current_tags(project: &Project, flavors: &[String]) -> Result<Vec<String>> {
    let prepared = project.prepare(&project.requested_texts(flavors)?)?;
    Ok(prepared
        .iter()
        .flat_map(|p| p.vars.image_tags.iter().map(|(_, tag)| tag.clone()))
        .collect())
}

/// `prune --record`: the current flavors' images are in use now. Never fails a build: a problem
/// is a warning.
pub(crate) fn record(project: &Project, flavors: &[String], err: &mut dyn Write) -> Result<u8> {
    let result = (|| -> Result<()> {
        let engine = engine(project)?;
        for tag in current_tags(project, flavors)? {
            record_use(project, &engine, &tag)?;
        }
        Ok(())
    })();
    if let Err(error) = result {
        writeln!(err, "warning: uses not recorded: {error:#}")?;
    }
    Ok(EXIT_SUCCESS)
}
