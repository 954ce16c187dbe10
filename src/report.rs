//! The build report: what one `make build|push|manifest|release` run did to each image and
//! manifest list, and why, gathered into `<staging root>/report.json`.
//!
//! The top-level Makefile gives each run an id (`MATRIOCHKA_RUN`). Every `matriochka image
//! build|push` and `matriochka manifest` of the run writes its own entry file below
//! `<staging root>/.report/<run>/` (a temp file renamed into place: no file is shared by two
//! writers under `make -j`). `matriochka report --finish` then gathers them, adds an entry for
//! each selected image no recipe ran for (`up-to-date`, or `skipped`), writes `report.json`
//! under the staging lock through a temp file, and removes the entries of earlier runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::build_plan::{self, BuildPlan};
use crate::labels::FLAVOR_LABEL;
use crate::project::Project;

/// The environment variable holding the run id, set by the top-level Makefile.
pub const RUN_ENV: &str = "MATRIOCHKA_RUN";
/// The report, in the staging root.
pub const REPORT_FILE: &str = "report.json";
/// The directory, in the staging root, of the runs' entry files.
pub const REPORT_DIR: &str = ".report";
/// The file `--finish` leaves in a run's directory: a later run may remove it.
const FINISHED: &str = "finished";
/// An unfinished run's directory (a killed run) is removed once this old.
const STALE: Duration = Duration::from_secs(24 * 3600);

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

/// The run of this process, when make started it: `<root>/<staging root>/.report/<run>`.
pub fn run_dir(project: &Project) -> Result<Option<PathBuf>> {
    let Some(run) = project.env.get_nonempty(RUN_ENV) else {
        return Ok(None);
    };
    let ok = run
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok || run.starts_with('.') {
        bail!("run id `{run}` of {RUN_ENV} is not a file name: use only letters, digits and `._-`");
    }
    Ok(Some(
        project
            .root()
            .join(&project.config.staging_root)
            .join(REPORT_DIR)
            .join(run),
    ))
}

/// Writes `value` as `dir/name` through a temp file beside it, so a reader sees all or nothing.
fn write_entry(dir: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut text = serde_json::to_string_pretty(value).expect("an entry serializes");
    text.push('\n');
    let result = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, &path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("failed to write `{}`", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("failed to read `{}`", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// The entry file of one step on one image.
fn entry_name(id: &str, image: &str, step: &str) -> String {
    format!("image.{id}.{image}.{step}.json")
}

/// The sha256 of each file of a context directory, by relative path.
pub fn context_files(dir: &Path) -> Result<BTreeMap<String, String>> {
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
pub fn changed_paths(
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
pub struct ImageRecord {
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
            entry: ImageEntry {
                flavor: plan.label(FLAVOR_LABEL).unwrap_or_default().to_string(),
                id: id.to_string(),
                image: plan.image.clone(),
                tag: plan.tag.clone(),
                platform: plan.platform.clone(),
                content_id: plan.content_id.clone(),
                action: Action::Failed,
                digest: None,
                seconds: None,
                log: None,
                because: None,
            },
            step,
            start: Instant::now(),
            files: None,
        })
    }

    /// A build about to start, with why it runs: `FORCE`, `context changed: <paths>` since the
    /// last successful build, `parent rebuilt` in this run, else `not in engine`.
    pub fn build(project: &Project, id: &str, plan: &BuildPlan) -> Result<Self> {
        let mut record = ImageRecord::new(project, id, plan, "build")?;
        let files = context_files(&project.root().join(&plan.context))?;
        let mut reasons = Vec::new();
        if project.env.get_nonempty("FORCE").is_some() {
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
    pub fn push(project: &Project, id: &str, plan: &BuildPlan) -> Result<Self> {
        ImageRecord::new(project, id, plan, "push")
    }

    /// Records the outcome: `action`, the log (relative to the root as shown) and the image id
    /// that `image_id` asks the engine for (whether it answered, what it printed), asked only
    /// when the run is recorded. A successful build also keeps its context's files for the next
    /// build's `because`.
    pub fn finish(
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

fn tenths(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

/// Records the manifest lists one `matriochka manifest` made, when make runs it.
pub fn record_manifests(project: &Project, entries: &[ManifestEntry]) -> Result<()> {
    match run_dir(project)? {
        Some(run) => write_entry(
            &run,
            &format!("manifests.{}.json", std::process::id()),
            &entries,
        ),
        None => Ok(()),
    }
}

/// What a finishing run reports on: the images it selected, or only the manifest lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    Build,
    Push,
    Manifest,
    Release,
}

/// One image make selected for the run: `IMAGES` (else every image) of each flavor, and their
/// parents, in make's order.
struct Selected {
    id: String,
    plan: BuildPlan,
    staging_dir: PathBuf,
}

fn selected(project: &Project) -> Result<Vec<Selected>> {
    let texts = project.requested_texts(&[])?;
    let wanted: Vec<&str> = project
        .env
        .get("IMAGES")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let mut all = Vec::new();
    for prepared in project.prepare(&texts)? {
        let dir = prepared.vars.staging_dir().to_path_buf();
        let mut plans = BTreeMap::new();
        for image in &project.config.images {
            let path = project.root().join(BuildPlan::path(&dir, image));
            if let Some(plan) = read_json::<BuildPlan>(&path)? {
                plans.insert(image.clone(), plan);
            }
        }
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = plans
            .keys()
            .filter(|image| wanted.is_empty() || wanted.contains(&image.as_str()))
            .cloned()
            .collect();
        while let Some(image) = todo.pop() {
            if let Some(plan) = plans.get(&image) {
                if keep.insert(image) {
                    todo.extend(plan.parents.iter().cloned());
                }
            }
        }
        for image in &project.config.images {
            if keep.contains(image) {
                all.push(Selected {
                    id: prepared.id(),
                    plan: plans[image].clone(),
                    staging_dir: dir.clone(),
                });
            }
        }
    }
    Ok(all)
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether make found an image's stamp up to date: no older than its context digest file and its
/// parents' stamps.
fn stamp_is_fresh(project: &Project, selected: &Selected) -> bool {
    let root = &project.config.staging_root;
    let path = |rel: PathBuf| project.root().join(rel);
    let Some(stamp) = mtime(&path(build_plan::stamp(
        root,
        &selected.id,
        &selected.plan.image,
    ))) else {
        return false;
    };
    let digest = path(
        selected
            .staging_dir
            .join(build_plan::PLAN_DIR)
            .join(format!("{}.sha256", selected.plan.image)),
    );
    std::iter::once(mtime(&digest))
        .chain(
            selected
                .plan
                .parents
                .iter()
                .map(|parent| mtime(&path(build_plan::stamp(root, &selected.id, parent)))),
        )
        .all(|time| time.is_some_and(|time| time <= stamp))
}

/// Image entries by (flavor id, image, step).
type ImageEntries = BTreeMap<(String, String, String), ImageEntry>;

/// Everything recorded in a run's directory: image entries by (id, image, step), manifest lists.
fn gather(run: &Path) -> Result<(ImageEntries, Vec<ManifestEntry>)> {
    let mut images = BTreeMap::new();
    let mut manifests = Vec::new();
    let mut names: Vec<String> = match std::fs::read_dir(run) {
        Ok(entries) => entries
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("failed to list `{}`", run.display()))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).with_context(|| format!("failed to list `{}`", run.display())),
    };
    names.sort();
    for name in names {
        let path = run.join(&name);
        if name.starts_with("manifests.") {
            let entries: Vec<ManifestEntry> = read_json(&path)?.unwrap_or_default();
            manifests.extend(entries);
        } else if name.starts_with("image.") && name.ends_with(".json") {
            let Some(entry) = read_json::<ImageEntry>(&path)? else {
                continue;
            };
            let step = name
                .trim_end_matches(".json")
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string();
            images.insert((entry.id.clone(), entry.image.clone(), step), entry);
        }
    }
    Ok((images, manifests))
}

/// The report of a run from its recorded entries: one line per selected image (its push's
/// outcome when it was pushed, else its build's, else `up-to-date` when make found it so, else
/// `skipped`; in a push run, an image not pushed is `skipped`), then the recorded images no
/// selection names, then the manifest lists.
fn assemble(project: &Project, run: &Path, kind: RunKind) -> Result<Report> {
    let (mut recorded, manifests) = gather(run)?;
    let selection = match kind {
        RunKind::Manifest => Vec::new(),
        _ => selected(project)?,
    };
    let mut images = Vec::new();
    let mut done: BTreeMap<(String, String), Action> = BTreeMap::new();
    for selected in &selection {
        let key = |step: &str| {
            (
                selected.id.clone(),
                selected.plan.image.clone(),
                step.to_string(),
            )
        };
        let build = recorded.remove(&key("build"));
        let push = recorded.remove(&key("push"));
        let entry = match (build, push) {
            (build, Some(mut push)) => {
                if let Some(build) = build {
                    push.because = build.because;
                    push.digest = build.digest;
                    push.seconds = Some(tenths(Duration::from_secs_f64(
                        build.seconds.unwrap_or(0.0) + push.seconds.unwrap_or(0.0),
                    )));
                }
                push
            }
            (Some(build), None) => build,
            (None, None) => {
                let parent_failed = selected.plan.parents.iter().any(|parent| {
                    done.get(&(selected.id.clone(), parent.clone()))
                        .is_some_and(|action| matches!(action, Action::Failed | Action::Skipped))
                });
                let action = if !parent_failed && stamp_is_fresh(project, selected) {
                    Action::UpToDate
                } else {
                    Action::Skipped
                };
                ImageEntry {
                    flavor: selected
                        .plan
                        .label(FLAVOR_LABEL)
                        .unwrap_or_default()
                        .to_string(),
                    id: selected.id.clone(),
                    image: selected.plan.image.clone(),
                    tag: selected.plan.tag.clone(),
                    platform: selected.plan.platform.clone(),
                    content_id: selected.plan.content_id.clone(),
                    action,
                    digest: None,
                    seconds: None,
                    log: None,
                    because: None,
                }
            }
        };
        // A push run that stopped before an image's push (a build or another push failed)
        // reports the image skipped: it is not in the registry.
        let mut entry = entry;
        let pushing = matches!(kind, RunKind::Push | RunKind::Release);
        if pushing
            && matches!(
                entry.action,
                Action::Built | Action::UpToDate | Action::Reused
            )
        {
            entry.action = Action::Skipped;
            entry.log = None;
        }
        // A child of an image whose build failed is skipped, whatever its push says.
        let built = match &entry.action {
            Action::Pushed | Action::PushFailed => Action::Built,
            action => *action,
        };
        done.insert((entry.id.clone(), entry.image.clone()), built);
        images.push(entry);
    }
    images.extend(recorded.into_values());
    Ok(Report { images, manifests })
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
    project.config.staging_root.join(REPORT_FILE)
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

/// Ends a run: writes `report.json` from the run's entries (under the exclusive staging lock,
/// through the staging temp dir), marks the run finished and removes earlier runs' entries.
pub fn finish(project: &Project, kind: RunKind, note: &mut dyn std::io::Write) -> Result<Report> {
    let Some(run) = run_dir(project)? else {
        bail!("no run to finish: {RUN_ENV} is not set (the Makefile sets it)");
    };
    let root = project.root();
    let staging_root = &project.config.staging_root;
    let wait = crate::lock::wait_from_env(project.env.get(crate::lock::NO_WAIT_ENV));
    let lock = crate::lock::StagingLock::acquire(
        root,
        staging_root,
        crate::lock::Access::Exclusive,
        wait,
        note,
    )?;
    let report = assemble(project, &run, kind)?;
    let temps = crate::stage::Temps::clean(root, staging_root, &lock)?;
    crate::stage::write_one(
        root,
        staging_root,
        &report_path(project),
        &to_json(&report),
        &temps,
    )?;
    write_entry(&run, FINISHED, &"")?;
    remove_earlier_runs(&run)?;
    Ok(report)
}

/// Removes the directories of finished runs but this one, and of runs unfinished for a day
/// (killed); a run still going on keeps its entries.
fn remove_earlier_runs(run: &Path) -> Result<()> {
    let dir = run.parent().unwrap();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        let path = entry.path();
        if path == run {
            continue;
        }
        let stale = mtime(&path)
            .and_then(|time| time.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if path.join(FINISHED).exists() || stale {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("failed to remove `{}`", path.display()))?;
        }
    }
    Ok(())
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
