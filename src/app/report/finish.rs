//! Finishing a run: the recorded entries gathered, the selected images no recipe ran for added
//! (`up-to-date` or `skipped`), `report.json` written under the exclusive staging lock through the
//! staging temp dir, and earlier runs' entries removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _, Result};

use super::record::{read_json, tenths, write_entry};
use super::{
    report_path, run_dir, to_json, Action, ImageEntry, ManifestEntry, Report, SCHEMA_VERSION,
};
use crate::app::project::Project;
use crate::domain::env_names;
use crate::domain::layout;
use crate::plan::build_plan::{self, BuildPlan};

/// The file `--finish` leaves in a run's directory: a later run may remove it.
const FINISHED: &str = "finished";
/// An unfinished run's directory (a killed run) is removed once this old.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// What a finishing run reports on: the images it selected, or only the manifest lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunKind {
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
    // A per-image target (`build.<id>[.<image>]`, `push.…`) selects its flavor and image; a push
    // target pushes that image only, a build target builds its parents too.
    let target = project.env.get_nonempty(env_names::MAKE_TARGET);
    let (texts, target_image, push_only) = match target {
        Some(target) => {
            let text = project.flavor_of_target(target)?;
            let id = project.prepare(&[text.as_str()])?[0].id();
            let image = target
                .split_once('.')
                .and_then(|(_, rest)| rest.strip_prefix(id.as_str()))
                .and_then(|rest| rest.strip_prefix('.'))
                .map(str::to_string);
            (vec![text], image, target.starts_with("push."))
        }
        None => (
            project
                .requested_texts(&[])?
                .into_iter()
                .map(str::to_string)
                .collect(),
            None,
            false,
        ),
    };
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let wanted: Vec<&str> = match &target_image {
        Some(image) => vec![image.as_str()],
        None => project
            .env
            .get(env_names::IMAGES)
            .unwrap_or_default()
            .split_whitespace()
            .collect(),
    };
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
                if keep.insert(image) && !push_only {
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
            .join(layout::CONTEXT_DIR)
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
                ImageEntry::of_plan(&selected.id, &selected.plan, action)
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
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        commit: project.git().commit.clone(),
        images,
        manifests,
    })
}

/// Ends a run: writes `report.json` from the run's entries (under the exclusive staging lock,
/// through the staging temp dir), marks the run finished and removes earlier runs' entries.
pub(crate) fn finish(
    project: &Project,
    kind: RunKind,
    note: &mut dyn std::io::Write,
) -> Result<Report> {
    let Some(run) = run_dir(project)? else {
        bail!("no run to finish: MATRIOCHKA_RUN is not set (the Makefile sets it)");
    };
    let root = project.root();
    let staging_root = &project.config.staging_root;
    let lock = project.lock(crate::infra::lock::Access::Exclusive, note)?;
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
