//! The build report: what one `make build|push|manifest|release` run did to each image and
//! manifest list, and why, gathered into `<staging root>/report.json`.
//!
//! The top-level Makefile gives each run an id (`MATRIOCHKA_RUN`). Every `matriochka image
//! build|push` and `matriochka manifest` of the run writes its own entry file below
//! `<staging root>/.report/<run>/` (a temp file renamed into place: no file is shared by two
//! writers under `make -j`). `matriochka report --finish` then gathers them, adds an entry for
//! each selected image no recipe ran for (`up-to-date`, or `skipped`), writes `report.json`
//! under the staging lock through a temp file, and removes the entries of earlier runs.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::app::project::Project;
use crate::domain::layout;

mod finish;
mod record;

pub use finish::{finish, RunKind};
use record::read_json;
pub use record::{changed_paths, context_files, record_manifests, run_dir, ImageRecord};

/// The environment variable holding the run id, set by the top-level Makefile.
pub const RUN_ENV: &str = "MATRIOCHKA_RUN";

/// What happened to an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Built,
    UpToDate,
    Reused,
    Failed,
    Skipped,
    Pushed,
    PushFailed,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Built,
        Action::UpToDate,
        Action::Reused,
        Action::Failed,
        Action::Skipped,
        Action::Pushed,
        Action::PushFailed,
    ];

    /// The word written in the report.
    pub fn word(self) -> &'static str {
        match self {
            Action::Built => "built",
            Action::UpToDate => "up-to-date",
            Action::Reused => "reused",
            Action::Failed => "failed",
            Action::Skipped => "skipped",
            Action::Pushed => "pushed",
            Action::PushFailed => "push-failed",
        }
    }

    /// Whether the flavor must run again.
    pub fn is_failure(self) -> bool {
        matches!(self, Action::Failed | Action::Skipped | Action::PushFailed)
    }
}

/// What happened to a manifest list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManifestAction {
    Pushed,
    UpToDate,
    Refused,
    KeptNewer,
    /// The engine failed to create or push it.
    Failed,
}

impl ManifestAction {
    pub const ALL: [ManifestAction; 5] = [
        ManifestAction::Pushed,
        ManifestAction::UpToDate,
        ManifestAction::Refused,
        ManifestAction::KeptNewer,
        ManifestAction::Failed,
    ];

    pub fn word(self) -> &'static str {
        match self {
            ManifestAction::Pushed => "pushed",
            ManifestAction::UpToDate => "up-to-date",
            ManifestAction::Refused => "refused",
            ManifestAction::KeptNewer => "kept-newer",
            ManifestAction::Failed => "failed",
        }
    }
}

/// One image's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageEntry {
    pub flavor: String,
    pub id: String,
    pub image: String,
    pub tag: String,
    pub platform: String,
    pub content_id: String,
    pub action: Action,
    /// The image id the engine gave the image built in this run.
    pub digest: Option<String>,
    /// Seconds the run's actions on the image took (build and push), to the tenth.
    pub seconds: Option<f64>,
    /// The log of the action shown.
    pub log: Option<PathBuf>,
    /// Why the image was built.
    pub because: Option<String>,
}

/// One manifest list's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub tag: String,
    pub platforms: Vec<String>,
    pub digests: Vec<String>,
    pub action: ManifestAction,
}

/// `report.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub images: Vec<ImageEntry>,
    pub manifests: Vec<ManifestEntry>,
}

/// The summary printed at the end of a run: counts per action, then one line per failed image.
pub fn summary(report: &Report, report_path: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "report: {}", report_path.display());
    for action in Action::ALL {
        let count = report.images.iter().filter(|e| e.action == action).count();
        if count > 0 {
            let _ = writeln!(out, "  {:<12} {count:>4}", action.word());
        }
    }
    for action in ManifestAction::ALL {
        let count = report
            .manifests
            .iter()
            .filter(|e| e.action == action)
            .count();
        if count > 0 {
            let _ = writeln!(out, "  list {:<7} {count:>4}", action.word());
        }
    }
    for entry in &report.images {
        if entry.action.is_failure() {
            let log = match (&entry.log, entry.action) {
                (Some(log), _) => format!("see {}", log.display()),
                (None, Action::Skipped) => "a parent failed or the run stopped".to_string(),
                (None, _) => "no log".to_string(),
            };
            let _ = writeln!(
                out,
                "{} {}/{} ({}): {log}",
                entry.action.word(),
                entry.id,
                entry.image,
                entry.tag
            );
        }
    }
    out
}

/// The flavors of the images to run again, once each, in report order.
pub fn failed_flavors(report: &Report) -> Vec<String> {
    let mut seen = BTreeSet::new();
    report
        .images
        .iter()
        .filter(|entry| entry.action.is_failure() && !entry.flavor.is_empty())
        .filter(|entry| seen.insert(entry.flavor.clone()))
        .map(|entry| entry.flavor.clone())
        .collect()
}

/// The report's bytes: pretty JSON and a newline.
pub fn to_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report serializes");
    text.push('\n');
    text
}

/// `<staging root>/report.json`, relative to the root.
pub fn report_path(project: &Project) -> PathBuf {
    project.config.staging_root.join(layout::REPORT_FILE)
}

/// The report's path as shown to users: relative to the root, or below `-C DIR`.
fn shown(project: &Project) -> PathBuf {
    let rel = report_path(project);
    if project.root() == Path::new(".") {
        rel
    } else {
        project.root().join(rel)
    }
}

/// Reads the last run's report.
pub fn read(project: &Project) -> Result<Report> {
    let path = shown(project);
    match read_json(&path)? {
        Some(report) => Ok(report),
        None => bail!(
            "failed to read `{}`: no run wrote a report yet (run `make build`)",
            path.display()
        ),
    }
}

/// Writes the summary of `report` to `out`.
pub fn print_summary(
    project: &Project,
    report: &Report,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let path = shown(project);
    out.write_all(summary(report, &path).as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_written_in_kebab_case() {
        for action in Action::ALL {
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                format!("\"{}\"", action.word())
            );
        }
        for action in ManifestAction::ALL {
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                format!("\"{}\"", action.word())
            );
        }
    }
}
