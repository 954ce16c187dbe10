//! Commands: one module per subcommand, none importing another; what several share is in
//! [`crate::app`]. This module holds the checked command line every front end (the CLI, tests)
//! turns into, and the dispatch.

pub(crate) mod args;
pub(crate) mod bake;
pub(crate) mod check;
pub(crate) mod clean;
pub(crate) mod graph;
pub(crate) mod image;
pub(crate) mod manifest;
pub(crate) mod modified;
pub(crate) mod plan;
pub(crate) mod prune;
pub(crate) mod report;
pub(crate) mod reuse;
pub(crate) mod slice;

use std::io::Write;

use anyhow::Result;

use crate::app::project::Project;
use crate::app::staging::stage_command;
pub(crate) use crate::commands::args::{Command, Invocation};
use crate::domain::env_names;
use crate::domain::vars::Env;
use crate::error::EXIT_SUCCESS;

/// Whether an error is stdout being closed (`matriochka show flavors | head -1`): not a failure.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs a command with the process environment.
pub(crate) fn run(invocation: &Invocation) -> Result<u8> {
    let root = match &invocation.root {
        Some(root) => root.clone(),
        None if invocation.config.is_some() => ".".into(),
        None => crate::app::project::find_root(&std::env::current_dir()?),
    };
    let mut env = Env::from_process();
    if let Command::Stage { header, footer, .. } = &invocation.command {
        let options = [(env_names::HEADER, header), (env_names::FOOTER, footer)];
        for (name, value) in options {
            if let Some(value) = value {
                env.set(name, value);
            }
        }
    }
    let project = Project::load(&root, invocation.config.as_deref(), env)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    execute(&project, &invocation.command, &mut out, &mut err)
}

/// Runs a command on a loaded project.
pub(crate) fn execute(
    project: &Project,
    command: &Command,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    match command {
        Command::Stage {
            flavors, no_wait, ..
        } => stage_command(project, flavors, *no_wait, out, err),
        Command::StageTarget { target, no_wait } => {
            let flavor = project.flavor_of_target(target)?;
            stage_command(project, &[flavor], *no_wait, out, err)
        }
        Command::ShowFlavors {
            arches,
            shard,
            test,
        } => crate::commands::slice::show_flavors(project, arches, *shard, *test, out),
        Command::ShowEnv => {
            for (name, meaning) in crate::domain::env_names::ALL {
                match project.env.get(name) {
                    Some(value) => writeln!(out, "{name}={value}  # {meaning}")?,
                    None => writeln!(out, "{name} (unset)  # {meaning}")?,
                }
            }
            Ok(EXIT_SUCCESS)
        }
        Command::ShowStagingRoot => {
            writeln!(out, "{}", project.config.staging_root.display())?;
            Ok(EXIT_SUCCESS)
        }
        Command::ShowDefault => {
            for flavor in &project.config.default_flavors {
                writeln!(out, "{flavor}")?;
            }
            Ok(EXIT_SUCCESS)
        }
        Command::ShowVars { flavor } => {
            let texts = project.requested_texts(std::slice::from_ref(flavor))?;
            for prepared in project.prepare(&texts)? {
                for (name, value) in prepared.vars.all() {
                    writeln!(out, "{name}={value}")?;
                }
            }
            Ok(EXIT_SUCCESS)
        }
        Command::Plan { flavors, json } => {
            let prepared = project.prepare(&project.requested_texts(flavors)?)?;
            plan::plan(&prepared, *json, out)?;
            Ok(EXIT_SUCCESS)
        }
        Command::Modified {
            vs,
            fetch,
            by_path,
            output,
        } => crate::commands::modified::command(
            project,
            vs.as_deref(),
            *fetch,
            *by_path,
            *output,
            out,
            err,
        ),
        Command::Bake {
            flavors,
            merge_arches,
        } => {
            let mut options = crate::commands::bake::BakeOptions::from_env(&project.env)?;
            options.merge_arches = *merge_arches;
            if *merge_arches {
                // Fails before staging when `layout.manifest_tag` is not set.
                crate::app::groups::groups(project, &[])?;
            }
            let code = stage_command(project, flavors, false, out, err)?;
            if code != EXIT_SUCCESS {
                return Ok(code);
            }
            crate::commands::bake::command(project, flavors, &options, out, err)
        }
        Command::Graph {
            flavors,
            output,
            query,
        } => crate::commands::graph::command(project, flavors, *output, query.as_ref(), out),
        Command::Manifest { flavors } => crate::commands::manifest::command(
            project,
            flavors,
            &mut crate::infra::process::ProcessRunner,
            out,
            err,
        ),
        Command::CheckArches { flavors, push } => {
            crate::commands::slice::check_arches(project, flavors, *push, err)
        }
        Command::Check { flavors } => crate::commands::check::command(project, flavors, out),
        Command::Image(args) => crate::commands::image::command(project, args, out, err),
        Command::ImageDryRun { list } => crate::commands::image::dry_run_all(project, list, out),
        Command::CleanAll { every_registry } => {
            crate::commands::clean::clean_all(project, *every_registry, out, err)
        }
        Command::CleanFlavor {
            staging_dir,
            dry_run,
        } => crate::commands::clean::clean_flavor(project, staging_dir, *dry_run, out, err),
        Command::Report(action) => crate::commands::report::command(project, *action, out, err),
        Command::Prune {
            flavors,
            dry_run,
            record,
        } => {
            if *record {
                crate::app::uses::record(project, flavors, err)
            } else {
                crate::commands::prune::prune(project, flavors, *dry_run, out, err)
            }
        }
        Command::ReuseLookup { plans } => {
            let engine = crate::app::project::engine(project)?;
            crate::commands::reuse::lookup_command(project, plans, &engine, out)
        }
    }
}
