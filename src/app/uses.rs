//! Uses: when each image matriochka built was last used (recorded at the end of every build and
//! push run, and by `image build`), which `prune` reads, and what matriochka built under each image
//! id: its content id and the tags it gave it. Prune removes only such an image, never one a user
//! built FROM it (it inherits the labels, not the record) nor a tag a user added.

use std::collections::{BTreeMap, BTreeSet};
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

/// What `.uses/<image id>` holds: the last use (unix seconds) on the first line, then, when
/// matriochka built the image, `content-id <id>` and one `tag <tag>` a line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Use {
    pub(crate) seconds: i64,
    pub(crate) content_id: Option<String>,
    pub(crate) tags: BTreeSet<String>,
}

impl Use {
    fn parse(text: &str) -> Option<Use> {
        let mut lines = text.lines();
        let mut record = Use {
            seconds: lines.next()?.trim().parse().ok()?,
            ..Use::default()
        };
        for line in lines {
            if let Some(id) = line.strip_prefix("content-id ") {
                record.content_id = Some(id.to_string());
            } else if let Some(tag) = line.strip_prefix("tag ") {
                record.tags.insert(tag.to_string());
            }
        }
        Some(record)
    }

    fn text(&self) -> String {
        let mut text = format!("{}\n", self.seconds);
        if let Some(id) = &self.content_id {
            text.push_str(&format!("content-id {id}\n"));
            for tag in &self.tags {
                text.push_str(&format!("tag {tag}\n"));
            }
        }
        text
    }
}

/// The recorded uses: image id → record. Unreadable entries are left out.
pub(crate) fn read_uses(project: &Project) -> BTreeMap<String, Use> {
    let mut uses = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(uses_dir(project)) else {
        return uses;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(record) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|text| Use::parse(&text))
        {
            uses.insert(name, record);
        }
    }
    uses
}

/// Records that the image `tag` names was used now; a tag of an image matriochka built is added
/// to what it built (make found it up to date under this tag).
pub(crate) fn record_use(project: &Project, engine: &Engine, tag: &str) -> Result<()> {
    update(project, engine, tag, |record| {
        if record.content_id.is_some() {
            record.tags.insert(tag.to_string());
        }
    })
}

/// Records that matriochka built (or pulled) the image `tag` names, with `content_id` and
/// `tags`, and that it was used now.
pub(crate) fn record_build(
    project: &Project,
    engine: &Engine,
    tag: &str,
    content_id: &str,
    tags: &[String],
) -> Result<()> {
    update(project, engine, tag, |record| {
        if record.content_id.as_deref() != Some(content_id) {
            record.tags.clear();
        }
        record.content_id = Some(content_id.to_string());
        record.tags.insert(tag.to_string());
        record.tags.extend(tags.iter().cloned());
    })
}

fn update(
    project: &Project,
    engine: &Engine,
    tag: &str,
    change: impl FnOnce(&mut Use),
) -> Result<()> {
    let args = engine.args(argv::image_id(tag));
    let (found, id) = engine.capture(&args)?;
    let id = id.trim().trim_start_matches("sha256:");
    if !found || id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(());
    }
    let path = uses_dir(project).join(id);
    let mut record = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| Use::parse(&text))
        .unwrap_or_default();
    record.seconds = now();
    change(&mut record);
    crate::infra::fs::write_beside(&path, record.text().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back() {
        let record = Use {
            seconds: 7,
            content_id: Some("sha256:ab".into()),
            tags: BTreeSet::from(["r/a:1".to_string(), "r/a:x".to_string()]),
        };
        assert_eq!(
            record.text(),
            "7\ncontent-id sha256:ab\ntag r/a:1\ntag r/a:x\n"
        );
        assert_eq!(Use::parse(&record.text()), Some(record));
        // What earlier versions wrote: a use, nothing built.
        assert_eq!(
            Use::parse("3600\n"),
            Some(Use {
                seconds: 3600,
                ..Use::default()
            })
        );
        assert_eq!(Use::parse("x\n"), None);
    }
}
