//! `matriochka modified`: prints the buildable flavors a branch changes (lines, JSON, or a
//! `FLAVORS=` line for make); the change set and the comparison are [`crate::app::modified`]'s.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::app::changes::Repo;
use crate::app::modified::*;
use crate::app::project::Project;
use crate::commands::args::ModifiedOutput;
use crate::domain::config::normal_path;
use crate::error::EXIT_SUCCESS;
use crate::stage::tree::{FsTree, GitTree};
use crate::stage::Prepared;

/// Runs `matriochka modified`.
pub(crate) fn command(
    project: &Project,
    vs: Option<&str>,
    fetch: bool,
    by_path: bool,
    output: ModifiedOutput,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let config = &project.config;
    let repo = Repo::open(project.root())?;
    let target = repo.target(vs, fetch, err)?;
    let merge_base = repo.merge_base(&target)?;
    // One normal form for changed paths and layer directories: no `./`, whatever git or the
    // configuration wrote.
    let changes: Vec<PathBuf> = repo
        .changes(&merge_base, &project.git().modified)?
        .iter()
        .map(|path| normal_path(path))
        .collect();
    let prepared = project.prepare(&project.buildable_texts()?)?;
    // An edit of the flavor lists alone is no `modified.always` change: it marks the flavors it
    // made buildable, and the other changes are weighed without it.
    let config_edit = config_edit(project, &repo, &merge_base, &changes)?;
    let all_changes = changes;
    let changes: Vec<PathBuf> = match &config_edit {
        Some((index, _)) => [&all_changes[..*index], &all_changes[index + 1..]].concat(),
        None => all_changes.clone(),
    };
    let mut affected = if by_path {
        self::by_path(config, &prepared, &changes)
    } else {
        let before = GitTree::of(config, &repo.prefix, &merge_base)?;
        let after = FsTree::of(config);
        let links = before.has_links()
            || changes.iter().any(|path| {
                in_templates(config, path)
                    && std::fs::symlink_metadata(project.root().join(path))
                        .is_ok_and(|meta| meta.is_symlink())
            });
        let exact = exact(config, &prepared, &changes, &before, &after, links);
        // A flavor the edit made buildable is marked whatever its staging at the merge-base gave.
        let newly = |text: &str| {
            config_edit
                .as_ref()
                .is_some_and(|(_, new)| new.contains(text))
        };
        for failure in &exact.failures {
            if newly(&prepared[failure.flavor].flavor.text) {
                continue;
            }
            let side = match failure.side {
                Side::MergeBase => format!("at the merge-base with `{}`", target.name),
                Side::WorkTree => "in the working tree".to_string(),
            };
            writeln!(
                err,
                "warning: failed to stage `{}` {side}: {:#}",
                prepared[failure.flavor].flavor.text, failure.error
            )?;
        }
        exact.affected
    };
    if let Some((index, newly)) = config_edit {
        for item in &mut affected {
            for change in &mut item.because {
                *change += usize::from(*change >= index);
            }
        }
        for (flavor, p) in prepared.iter().enumerate() {
            if !newly.contains(p.flavor.text.as_str()) {
                continue;
            }
            if !affected.iter().any(|item| item.flavor == flavor) {
                affected.push(Affected {
                    flavor,
                    images: Vec::new(),
                    because: Vec::new(),
                });
            }
            let item = affected
                .iter_mut()
                .find(|item| item.flavor == flavor)
                .unwrap();
            item.images = config.images.clone();
            item.because.push(index);
            item.because.sort_unstable();
        }
        affected.sort_by_key(|item| item.flavor);
    }
    print(output, &prepared, &all_changes, &affected, out)?;
    if affected.is_empty() {
        // stdout stays empty (it feeds FLAVORS=…); a person still gets an answer.
        writeln!(err, "no flavor changed since `{}`", target.name)?;
    }
    Ok(EXIT_SUCCESS)
}

/// The index of the configuration file among `changes` and the flavors its edit made
/// buildable, when the edit touched nothing but the flavor lists (parsed, both sides).
fn config_edit(
    project: &Project,
    repo: &Repo,
    merge_base: &str,
    changes: &[PathBuf],
) -> Result<Option<(usize, BTreeSet<String>)>> {
    let config = &project.config;
    let rel = normal_path(Path::new(&config.display_path()));
    let Some(index) = changes.iter().position(|path| *path == rel) else {
        return Ok(None);
    };
    let Ok(after) = std::fs::read_to_string(&config.path) else {
        return Ok(None);
    };
    let before = repo.text_at(merge_base, &rel)?;
    Ok(config_edit::newly_buildable(before.as_deref(), &after).map(|newly| (index, newly)))
}

#[derive(Serialize)]
struct JsonFlavor<'a> {
    flavor: &'a str,
    id: String,
    images: &'a [String],
    because: Vec<String>,
}

fn print(
    output: ModifiedOutput,
    prepared: &[Prepared],
    changes: &[PathBuf],
    affected: &[Affected],
    out: &mut dyn Write,
) -> Result<()> {
    let text = |a: &Affected| prepared[a.flavor].flavor.text.as_str();
    match output {
        ModifiedOutput::Lines => {
            for a in affected {
                writeln!(out, "{}", text(a))?;
            }
        }
        ModifiedOutput::Make => {
            writeln!(
                out,
                "FLAVORS=\"{}\"",
                itertools::join(affected.iter().map(text), " ")
            )?;
        }
        ModifiedOutput::Json => {
            let items: Vec<JsonFlavor> = affected
                .iter()
                .map(|a| JsonFlavor {
                    flavor: text(a),
                    id: prepared[a.flavor].id(),
                    images: &a.images,
                    because: a
                        .because
                        .iter()
                        .map(|&change| changes[change].display().to_string())
                        .collect(),
                })
                .collect();
            // One line, so that CI can put it in an output variable as it is.
            serde_json::to_writer(&mut *out, &items)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
