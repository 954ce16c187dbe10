//! Recording: each image action and each `matriochka manifest` of a run writes its own entry file
//! below `<staging root>/.report/<run>/`, a temp file renamed into place; a successful build also
//! keeps its context's file digests beside its stamp, for the next build's `because`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use super::{Action, ImageEntry, ManifestEntry};
use crate::app::project::Project;
use crate::domain::env_names;
use crate::domain::layout;
use crate::plan::build_plan::{self, BuildPlan};

/// The run of this process, when make started it: `<root>/<staging root>/.report/<run>`.
pub(crate) fn run_dir(project: &Project) -> Result<Option<PathBuf>> {
    let Some(run) = project.env.get_nonempty(env_names::RUN) else {
        return Ok(None);
    };
    let ok = run
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok || run.starts_with('.') {
        bail!("run id `{run}` of MATRIOCHKA_RUN is not a file name: use only letters, digits and `._-`");
    }
    Ok(Some(
        project
            .root()
            .join(&project.config.staging_root)
            .join(layout::REPORT_DIR)
            .join(run),
    ))
}

/// Writes `value` as `dir/name` through a temp file beside it, so a reader sees all or nothing.
pub(super) fn write_entry(dir: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("an entry serializes");
    text.push('\n');
    crate::infra::fs::write_beside(&dir.join(name), text.as_bytes())
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("failed to read `{}`", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// The entry file of one step on one image.
pub(super) fn entry_name(id: &str, image: &str, step: &str) -> String {
    format!("image.{id}.{image}.{step}.json")
}

/// The sha256 of each file of a context directory, by relative path.
pub(crate) fn context_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap();
        let bytes = std::fs::read(entry.path())
            .with_context(|| format!("failed to read `{}`", entry.path().display()))?;
        files.insert(
            rel.to_string_lossy().into_owned(),
            build_plan::sha256_hex(&bytes),
        );
    }
    Ok(files)
}

/// The paths added, removed or changed from `before` to `after`, in order.
pub(crate) fn changed_paths(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|path| before.get(*path) != after.get(*path))
        .cloned()
        .collect()
}

/// The files of an image's context at its last successful build, beside its stamp.
fn files_record(project: &Project, id: &str, image: &str) -> PathBuf {
    let stamp = build_plan::stamp(&project.config.staging_root, id, image);
    project
        .root()
        .join(stamp.with_file_name(format!("{image}.files.json")))
}

/// One action of a run on one image (`image build|push`): started before the engine runs, then
/// recorded with its outcome.
pub(crate) struct ImageRecord {
    run: Option<PathBuf>,
    entry: ImageEntry,
    step: &'static str,
    start: Instant,
    /// The context's files, for a build.
    files: Option<BTreeMap<String, String>>,
}

impl ImageRecord {
    fn new(project: &Project, id: &str, plan: &BuildPlan, step: &'static str) -> Result<Self> {
        Ok(ImageRecord {
            run: run_dir(project)?,
            entry: ImageEntry::of_plan(id, plan, Action::Failed),
            step,
            start: Instant::now(),
            files: None,
        })
    }

    /// A build about to start, with why it runs: `FORCE`, `context changed: <paths>` since the
    /// last successful build, `parent rebuilt` in this run, else `not in engine`.
    pub(crate) fn build(project: &Project, id: &str, plan: &BuildPlan) -> Result<Self> {
        let mut record = ImageRecord::new(project, id, plan, "build")?;
        let files = context_files(&project.root().join(&plan.context))?;
        let mut reasons = Vec::new();
        if project.env.get_nonempty(env_names::FORCE).is_some() {
            reasons.push("FORCE".to_string());
        }
        let before: Option<BTreeMap<String, String>> =
            read_json(&files_record(project, id, &plan.image))?;
        let changed = before.map(|before| changed_paths(&before, &files));
        if let Some(changed) = changed.filter(|changed| !changed.is_empty()) {
            reasons.push(format!("context changed: {}", changed.join(", ")));
        }
        if let Some(run) = &record.run {
            let rebuilt = plan.parents.iter().any(|parent| {
                let entry: Option<ImageEntry> =
                    read_json(&run.join(entry_name(id, parent, "build"))).unwrap_or(None);
                entry.is_some_and(|entry| matches!(entry.action, Action::Built | Action::Reused))
            });
            if rebuilt {
                reasons.push("parent rebuilt".to_string());
            }
        }
        if reasons.is_empty() {
            reasons.push("not in engine".to_string());
        }
        record.entry.because = Some(reasons.join("; "));
        record.files = Some(files);
        Ok(record)
    }

    /// A push about to start.
    pub(crate) fn push(project: &Project, id: &str, plan: &BuildPlan) -> Result<Self> {
        ImageRecord::new(project, id, plan, "push")
    }

    /// Why matriochka refused or failed the action itself.
    pub(crate) fn reason(mut self, reason: &str) -> Self {
        self.entry.reason = Some(reason.to_string());
        self
    }

    /// The digest the registry gave the pushed image, when the engine told it.
    pub(crate) fn pushed_digest(mut self, digest: Option<String>) -> Self {
        self.entry.pushed_digest = digest;
        self
    }

    /// Records the outcome: `action`, the log (relative to the root as shown) and the image id
    /// that `image_id` asks the engine for (whether it answered, what it printed), asked only
    /// when the run is recorded. A successful build also keeps its context's files for the next
    /// build's `because`.
    pub(crate) fn finish(
        mut self,
        project: &Project,
        action: Action,
        log: &Path,
        image_id: impl FnOnce() -> Result<(bool, String)>,
    ) -> Result<()> {
        if let (Some(files), Action::Built | Action::Reused) = (&self.files, action) {
            let path = files_record(project, &self.entry.id, &self.entry.image);
            write_entry(
                path.parent().unwrap(),
                &path.file_name().unwrap().to_string_lossy(),
                files,
            )?;
        }
        let Some(run) = &self.run else {
            return Ok(());
        };
        self.entry.action = action;
        let (answered, id) = image_id()?;
        self.entry.digest = Some(id)
            .filter(|_| answered)
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty())
            .map(|id| {
                if id.contains(':') {
                    id
                } else {
                    format!("sha256:{id}")
                }
            });
        self.entry.seconds = Some(tenths(self.start.elapsed()));
        self.entry.log = Some(log.to_path_buf());
        let name = entry_name(&self.entry.id, &self.entry.image, self.step);
        write_entry(run, &name, &self.entry)
    }
}

pub(super) fn tenths(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

/// Records the manifest lists one `matriochka manifest` made, when make runs it.
pub(crate) fn record_manifests(project: &Project, entries: &[ManifestEntry]) -> Result<()> {
    match run_dir(project)? {
        Some(run) => write_entry(
            &run,
            &format!("manifests.{}.json", std::process::id()),
            &entries,
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changed_paths_are_added_removed_and_modified_ones() {
        let before = files(&[("Dockerfile", "a"), ("gone", "b"), ("same", "c")]);
        let after = files(&[("Dockerfile", "x"), ("new", "d"), ("same", "c")]);
        assert_eq!(
            changed_paths(&before, &after),
            ["Dockerfile", "gone", "new"]
        );
    }
}
