//! Run: executes a subcommand on the project, printing to stdout and warnings to stderr.
//!
//! It only dispatches: the project, the commands and the exit codes live in their own modules.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

pub use crate::app::project::Project;
pub use crate::commands::args::{Command, Invocation, ModifiedOutput};
use crate::domain::vars::Env;
pub use crate::error::{EXIT_FAILURE, EXIT_SUCCESS, EXIT_USAGE};
use crate::infra::lock::{self, Access, StagingLock, Wait};
use crate::plan::makefile;
use crate::stage::tree::FsTree;
use crate::stage::{self, fastpath, Prepared, Temps, WriteStats};

/// Whether an error is stdout being closed (`matriochka show flavors | head -1`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs a command with the process environment.
pub fn run(invocation: &Invocation) -> Result<u8> {
    let root = match &invocation.root {
        Some(root) => root.clone(),
        None if invocation.config.is_some() => ".".into(),
        None => crate::app::project::find_root(&std::env::current_dir()?),
    };
    let mut env = Env::from_process();
    if let Command::Stage { header, footer, .. } = &invocation.command {
        let options = [
            (crate::stage::decor::HEADER_ENV, header),
            (crate::stage::decor::FOOTER_ENV, footer),
        ];
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
pub fn execute(
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
        Command::ShowFlavors { arches, shard } => {
            crate::commands::slice::show_flavors(project, arches, *shard, out)
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
            plan(&prepared, *json, out)?;
            Ok(EXIT_SUCCESS)
        }
        Command::Modified {
            vs,
            fetch,
            by_path,
            output,
        } => crate::app::modified::command(
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
                crate::commands::manifest::groups(project, &[])?;
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
            &mut crate::infra::engine::manifest::ProcessRunner,
            out,
            err,
        ),
        Command::CheckArches { flavors } => {
            crate::commands::slice::check_arches(project, flavors, err)
        }
        Command::Check { flavors } => crate::commands::check::command(project, flavors, out),
        Command::Image(args) => crate::commands::image::command(project, args, out, err),
        Command::CleanAll { every_registry } => {
            crate::commands::clean::clean_all(project, *every_registry, out, err)
        }
        Command::Report(action) => crate::commands::report::command(project, *action, out, err),
        Command::Prune {
            flavors,
            dry_run,
            record,
        } => {
            if *record {
                crate::commands::prune::record(project, flavors, err)
            } else {
                crate::commands::prune::prune(project, flavors, *dry_run, out, err)
            }
        }
        Command::ReuseLookup { plans } => {
            let engine = crate::commands::image::engine(project)?;
            crate::commands::reuse::lookup_command(project, plans, &engine, out)
        }
    }
}

fn plan(prepared: &[Prepared], json: bool, out: &mut dyn Write) -> Result<()> {
    if !json {
        for p in prepared {
            for (image, tag) in &p.vars.image_tags {
                let context = p.vars.staging_dir().join(image);
                writeln!(out, "{} {image} {tag} {}", p.id(), context.display())?;
            }
        }
        return Ok(());
    }
    let items: Vec<serde_json::Value> = prepared
        .iter()
        .map(|p| {
            let images: Vec<serde_json::Value> = p
                .vars
                .image_tags
                .iter()
                .map(|(image, tag)| {
                    let mut item = serde_json::json!({
                        "name": image,
                        "tag": tag,
                        "context": p.vars.staging_dir().join(image).display().to_string(),
                    });
                    if let Some(args) = p.vars.build_args.get(image) {
                        item["build_args"] = serde_json::json!(args);
                    }
                    item
                })
                .collect();
            serde_json::json!({
                "flavor": p.flavor.text,
                "id": p.id(),
                "staging_dir": p.vars.staging_dir().display().to_string(),
                "vars": p.vars.all(),
                "images": images,
            })
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &items)?;
    writeln!(out)?;
    Ok(())
}

/// A flavor to stage, as the clash check leaves it: it is parsed and its variables computed again
/// by the worker that stages it, so that a run holds those of a few flavors at a time.
struct ToStage<'a> {
    text: &'a str,
    staging_dir: Box<Path>,
    buildable: bool,
}

/// Stages flavors, then writes `build.mk`: the whole write phase, fast-path checks included, holds
/// the staging root's exclusive lock, so concurrent runs never interleave.
fn stage_command(
    project: &Project,
    args: &[String],
    no_wait: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let texts = project.requested_texts(args)?;
    let flavors = project.prepare_with(&texts, |text, p| ToStage {
        text,
        staging_dir: p.vars.staging_dir().into(),
        buildable: p.buildable,
    })?;
    for f in flavors.iter().filter(|f| !f.buildable) {
        writeln!(
            err,
            "warning: flavor `{}` is not in `flavors.buildable` of `{}`",
            f.text,
            project.config.display_path()
        )?;
    }
    let wait = if no_wait {
        Wait::No
    } else {
        lock::wait_from_env(project.env.get(lock::NO_WAIT_ENV))
    };
    let staging_root = &project.config.staging_root;
    let lock = StagingLock::acquire(project.root(), staging_root, Access::Exclusive, wait, err)?;
    let temps = Temps::clean(project.root(), staging_root, &lock)?;
    let results = stage_all(project, &flavors, &temps);
    let mut failed = 0;
    for (f, result) in flavors.iter().zip(results) {
        match result {
            Ok(stats) => {
                writeln!(
                    out,
                    "staged {}: {} written, {} unchanged, {} removed",
                    f.staging_dir.display(),
                    stats.written,
                    stats.unchanged,
                    stats.removed
                )?;
            }
            Err(error) => {
                failed += 1;
                writeln!(err, "error: failed to stage `{}`: {error:#}", f.text)?;
            }
        }
    }
    // Each failure printed its own `error:` line: no summary line repeats them.
    if failed > 0 {
        return Ok(EXIT_FAILURE);
    }
    let dirs: Vec<&Path> = flavors.iter().map(|f| &*f.staging_dir).collect();
    let text = makefile::build_mk(&project.config, &dirs);
    let path = staging_root.join(makefile::BUILD_MK);
    stage::write_one(project.root(), staging_root, &path, &text, &temps)?;
    drop(lock);
    Ok(EXIT_SUCCESS)
}

/// A flavor's variables, computed again.
fn prepared(project: &Project, f: &ToStage) -> Result<Prepared> {
    let flavor = project.parse(f.text)?;
    Prepared::new(
        flavor,
        &project.config,
        &project.env,
        project.git(),
        f.buildable,
    )
}

/// Stages every flavor, on as many threads as there are cores; results in input order.
fn stage_all(project: &Project, flavors: &[ToStage], temps: &Temps) -> Vec<Result<WriteStats>> {
    let tree = FsTree::of(&project.config);
    let git = project.git();
    let facts = fastpath::RunFacts::new(project.root(), &project.config, git);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(flavors.len())
        .max(1);
    let mut results: Vec<Option<Result<WriteStats>>> = (0..flavors.len()).map(|_| None).collect();
    let slots: Vec<std::sync::Mutex<&mut Option<Result<WriteStats>>>> =
        results.iter_mut().map(std::sync::Mutex::new).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                // Manifests written in the tick of their last output, written again later.
                let mut pending = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = flavors.get(index) else { break };
                    fastpath::retry(&mut pending, false, temps);
                    let result = prepared(project, f).and_then(|p| {
                        let (staged, racy) = stage_one(project, &tree, &facts, &p, temps)?;
                        pending.extend(racy);
                        Ok(staged)
                    });
                    **slots[index].lock().unwrap() = Some(result);
                }
                fastpath::retry(&mut pending, true, temps);
            });
        }
    });
    drop(slots);
    results
        .into_iter()
        .map(|r| r.expect("every flavor staged"))
        .collect()
}

/// Stages one flavor: nothing but metadata is read when its manifest shows it unchanged.
fn stage_one(
    project: &Project,
    tree: &FsTree,
    facts: &fastpath::RunFacts,
    prepared: &Prepared,
    temps: &Temps,
) -> Result<(WriteStats, Option<fastpath::Pending>)> {
    let config = &project.config;
    let git = project.git();
    let dir = prepared.vars.staging_dir();
    let layers = stage::checked_layers(tree, config, prepared)?;
    let fingerprint = facts.fingerprint(tree, prepared, &layers, git);
    if let Some(fingerprint) = &fingerprint {
        let unchanged =
            fastpath::unchanged_outputs(project.root(), &config.staging_root, dir, fingerprint);
        if let Some(unchanged) = unchanged {
            let stats = WriteStats {
                unchanged,
                ..WriteStats::default()
            };
            return Ok((stats, None));
        }
    }
    let staged = stage::compute_on(tree, config, prepared, &layers)?;
    let sources = stage::files_sources(&staged, git);
    let digests = stage::digest_files(&staged);
    let extra = makefile::flavor_outputs(config, &staged, git)?;
    let outputs = stage::outputs(&staged, &sources, &extra, &digests);
    let base = project.root().join(dir);
    let stats = stage::write_dir(project.root(), &config.staging_root, dir, &outputs, temps)?;
    let pending = match &fingerprint {
        Some(fingerprint) => fastpath::record(&base, &outputs, fingerprint, temps)
            .inspect_err(|_| stage::unmark(&base))?,
        None => None,
    };
    Ok((stats, pending))
}
