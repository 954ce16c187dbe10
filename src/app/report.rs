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
use crate::plan::build_plan::BuildPlan;

mod finish;
mod record;

pub(crate) use finish::{finish, RunKind};
use record::read_json;
pub(crate) use record::{record_manifests, run_dir, ImageRecord};

/// What happened to an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
    Built,
    UpToDate,
    Reused,
    Failed,
    Skipped,
    Pushed,
    PushFailed,
}

impl Action {
    pub(crate) const ALL: [Action; 7] = [
        Action::Built,
        Action::UpToDate,
        Action::Reused,
        Action::Failed,
        Action::Skipped,
        Action::Pushed,
        Action::PushFailed,
    ];

    /// The word written in the report.
    pub(crate) fn word(self) -> &'static str {
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
    pub(crate) fn is_failure(self) -> bool {
        matches!(self, Action::Failed | Action::Skipped | Action::PushFailed)
    }
}

/// What happened to a manifest list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ManifestAction {
    Pushed,
    UpToDate,
    Refused,
    KeptNewer,
    /// The engine failed to create or push it.
    Failed,
}

impl ManifestAction {
    pub(crate) const ALL: [ManifestAction; 5] = [
        ManifestAction::Pushed,
        ManifestAction::UpToDate,
        ManifestAction::Refused,
        ManifestAction::KeptNewer,
        ManifestAction::Failed,
    ];

    pub(crate) fn word(self) -> &'static str {
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
pub(crate) struct ImageEntry {
    pub(crate) flavor: String,
    pub(crate) id: String,
    pub(crate) image: String,
    pub(crate) tag: String,
    pub(crate) platform: String,
    pub(crate) content_id: String,
    pub(crate) action: Action,
    /// The image id the engine gave the image built in this run.
    pub(crate) digest: Option<String>,
    /// The digest the registry gave the image's manifest when this run pushed it: what a
    /// signing step signs (`<tag>@<pushed_digest>`).
    #[serde(default)]
    pub(crate) pushed_digest: Option<String>,
    /// Seconds the run's actions on the image took (build and push), to the tenth.
    pub(crate) seconds: Option<f64>,
    /// The log of the action shown.
    pub(crate) log: Option<PathBuf>,
    /// Why the image was built.
    pub(crate) because: Option<String>,
    /// Why matriochka refused or failed the action itself (a push of an image not the plan's, a
    /// build not on its parent); `None` otherwise (an engine failure is in the log).
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

impl ImageEntry {
    /// The entry of the image `plan` describes in the flavor `id`, with `action` and nothing
    /// else known yet.
    pub(crate) fn of_plan(id: &str, plan: &BuildPlan, action: Action) -> ImageEntry {
        ImageEntry {
            flavor: plan
                .label(crate::plan::labels::FLAVOR_LABEL)
                .unwrap_or_default()
                .to_string(),
            id: id.to_string(),
            image: plan.image.clone(),
            tag: plan.tag.clone(),
            platform: plan.platform.clone(),
            content_id: plan.content_id.clone(),
            action,
            digest: None,
            pushed_digest: None,
            seconds: None,
            log: None,
            because: None,
            reason: None,
        }
    }
}

/// One manifest list's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestEntry {
    pub(crate) tag: String,
    pub(crate) platforms: Vec<String>,
    pub(crate) digests: Vec<String>,
    pub(crate) action: ManifestAction,
    /// Why it was refused, failed or kept: the text after the tag in `manifest`'s line.
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// The version of `report.json`'s shape (`docs/report.schema.json`): raised when a field changes
/// meaning or goes, not when one is added.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// `report.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Report {
    /// [`SCHEMA_VERSION`]; 0 in a report written before it was.
    #[serde(default)]
    pub(crate) schema_version: u32,
    /// The git commit of the project the run built from (`Unknown commit hash` outside git).
    #[serde(default)]
    pub(crate) commit: String,
    pub(crate) images: Vec<ImageEntry>,
    pub(crate) manifests: Vec<ManifestEntry>,
}

/// The summary printed at the end of a run: counts per action, then one line per failed image.
pub(crate) fn summary(report: &Report, report_path: &Path) -> String {
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
pub(crate) fn failed_flavors(report: &Report) -> Vec<String> {
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
pub(crate) fn to_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report serializes");
    text.push('\n');
    text
}

/// `<staging root>/report.json`, relative to the root.
pub(crate) fn report_path(project: &Project) -> PathBuf {
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
pub(crate) fn read(project: &Project) -> Result<Report> {
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
pub(crate) fn print_summary(
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
