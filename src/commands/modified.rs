//! `matriochka modified`: prints the buildable flavors a branch changes (lines, JSON, or a
//! `FLAVORS=` line for make); the change set and the comparison are [`crate::app::modified`]'s.

use std::io::Write;
use std::path::PathBuf;

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
    let affected = if by_path {
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
        for failure in &exact.failures {
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
    print(output, &prepared, &changes, &affected, out)?;
    if affected.is_empty() {
        // stdout stays empty (it feeds FLAVORS=…); a person still gets an answer.
        writeln!(err, "no flavor changed since `{}`", target.name)?;
    }
    Ok(EXIT_SUCCESS)
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
