//! Run: executes a subcommand on the project, printing to stdout and warnings to stderr.
//!
//! Exit codes live here: 0 ok, 1 failed run, 2 usage (clap's own).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, Context as _, Result};

use crate::config::Config;
use crate::flavor::Flavor;
use crate::git::GitFacts;
use crate::makefile;
use crate::stage::{self, manifest, Prepared, WriteStats};
use crate::tree::FsTree;
use crate::vars::{Env, Vars};

pub const EXIT_SUCCESS: u8 = 0;
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// A checked command line.
#[derive(Debug)]
pub struct Invocation {
    pub root: PathBuf,
    pub config: Option<PathBuf>,
    pub command: Command,
}

/// What `modified` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModifiedOutput {
    Lines,
    Json,
    Make,
}

/// The subcommands.
#[derive(Debug)]
pub enum Command {
    Stage {
        flavors: Vec<String>,
    },
    ShowFlavors,
    ShowDefault,
    ShowVars {
        flavor: String,
    },
    Plan {
        flavors: Vec<String>,
        json: bool,
    },
    Modified {
        vs: Option<String>,
        fetch: bool,
        by_path: bool,
        output: ModifiedOutput,
    },
}

/// Whether an error is stdout being closed (`matriochka show flavors | head -1`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The project, the environment and the git facts a command works with.
pub struct Project {
    pub config: Config,
    pub env: Env,
    git: OnceLock<GitFacts>,
}

impl Project {
    pub fn load(root: &Path, config: Option<&Path>, env: Env) -> Result<Project> {
        let config = Config::load(root, config)?;
        Ok(Project {
            config,
            env,
            git: OnceLock::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Git facts, read on first use.
    pub fn git(&self) -> &GitFacts {
        self.git.get_or_init(|| GitFacts::read(&self.config.root))
    }

    /// Flavors from the arguments, else `$FLAVORS`, else `flavors.default`.
    pub fn requested_flavors(&self, args: &[String]) -> Result<Vec<Flavor>> {
        let defaults = self.env.short_form_defaults();
        let texts: Vec<String> = if !args.is_empty() {
            args.to_vec()
        } else if let Some(flavors) = self
            .env
            .get_nonempty("FLAVORS")
            .filter(|f| !f.trim().is_empty())
        {
            vec![flavors.to_string()]
        } else {
            self.config.default_flavors.clone()
        };
        let flavors = Flavor::parse_list(&texts, &defaults)?;
        if flavors.is_empty() {
            bail!(
                "no flavor given: pass flavors, set FLAVORS or `flavors.default` in `{}`",
                self.config.display_path()
            );
        }
        Ok(flavors)
    }

    /// The buildable flavors, in configuration order.
    pub fn buildable(&self) -> Result<Vec<Flavor>> {
        Flavor::parse_list(&self.config.buildable, &self.env.short_form_defaults()).with_context(
            || {
                format!(
                    "bad `flavors.buildable` in `{}`",
                    self.config.display_path()
                )
            },
        )
    }

    /// Computes each flavor's variables; two flavors in one staging dir are an error.
    pub fn prepare(&self, flavors: Vec<Flavor>) -> Result<Vec<Prepared>> {
        self.prepare_with(flavors, |prepared| prepared)
    }

    /// Like [`Project::prepare`], keeping of each flavor only what `keep` makes of it.
    fn prepare_with<T>(
        &self,
        flavors: Vec<Flavor>,
        keep: impl Fn(Prepared) -> T,
    ) -> Result<Vec<T>> {
        let buildable: BTreeSet<String> = self.buildable()?.iter().map(Flavor::tuple).collect();
        let mut kept = Vec::new();
        // Each staging dir → the tuple and the text of the flavor staged there.
        let mut by_dir: HashMap<PathBuf, (String, String)> = HashMap::new();
        for flavor in flavors {
            let vars = Vars::for_flavor(&flavor, &self.config, &self.env, self.git())?;
            let tuple = flavor.tuple();
            if let Some((other_tuple, other_text)) = by_dir.get(vars.staging_dir()) {
                if *other_tuple == tuple {
                    continue;
                }
                bail!(
                    "flavors `{}` and `{}` both stage into `{}`: add the differing field to `layout.staging_dir`",
                    other_text,
                    flavor.text,
                    vars.staging_dir().display()
                );
            }
            by_dir.insert(
                vars.staging_dir().to_path_buf(),
                (tuple.clone(), flavor.text.clone()),
            );
            let is_buildable = buildable.contains(&tuple);
            kept.push(keep(Prepared {
                flavor,
                vars,
                buildable: is_buildable,
            }));
        }
        Ok(kept)
    }
}

/// Runs a command with the process environment.
pub fn run(invocation: &Invocation) -> Result<u8> {
    let project = Project::load(
        &invocation.root,
        invocation.config.as_deref(),
        Env::from_process(),
    )?;
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
        Command::Stage { flavors } => stage_command(project, flavors, out, err),
        Command::ShowFlavors => {
            for flavor in project.buildable()? {
                writeln!(out, "{}", flavor.text)?;
            }
            Ok(EXIT_SUCCESS)
        }
        Command::ShowDefault => {
            for flavor in &project.config.default_flavors {
                writeln!(out, "{flavor}")?;
            }
            Ok(EXIT_SUCCESS)
        }
        Command::ShowVars { flavor } => {
            let flavors = project.requested_flavors(std::slice::from_ref(flavor))?;
            for prepared in project.prepare(flavors)? {
                for (name, value) in prepared.vars.all() {
                    writeln!(out, "{name}={value}")?;
                }
            }
            Ok(EXIT_SUCCESS)
        }
        Command::Plan { flavors, json } => {
            let prepared = project.prepare(project.requested_flavors(flavors)?)?;
            plan(&prepared, *json, out)?;
            Ok(EXIT_SUCCESS)
        }
        Command::Modified {
            vs,
            fetch,
            by_path,
            output,
        } => crate::modified::command(project, vs.as_deref(), *fetch, *by_path, *output, out, err),
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
                    serde_json::json!({
                        "name": image,
                        "tag": tag,
                        "context": p.vars.staging_dir().join(image).display().to_string(),
                    })
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

/// A flavor to stage, as the clash check leaves it: its variables are computed again by the
/// worker that stages it, so that a run holds the variables of a few flavors at a time.
struct ToStage {
    flavor: Flavor,
    staging_dir: PathBuf,
    buildable: bool,
}

fn stage_command(
    project: &Project,
    args: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let flavors = project.prepare_with(project.requested_flavors(args)?, |p| ToStage {
        staging_dir: p.vars.staging_dir().to_path_buf(),
        flavor: p.flavor,
        buildable: p.buildable,
    })?;
    for f in flavors.iter().filter(|f| !f.buildable) {
        writeln!(
            err,
            "warning: flavor `{}` is not in `flavors.buildable` of `{}`",
            f.flavor.text,
            project.config.display_path()
        )?;
    }
    let results = stage_all(project, &flavors);
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
                writeln!(err, "error: failed to stage `{}`: {error:#}", f.flavor.text)?;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} flavors failed to stage", flavors.len());
    }
    let dirs: Vec<&Path> = flavors.iter().map(|f| f.staging_dir.as_path()).collect();
    let text = makefile::build_mk(&project.config, &dirs);
    let path = project.config.staging_root.join(makefile::BUILD_MK);
    stage::write_one(project.root(), &project.config.staging_root, &path, &text)?;
    Ok(EXIT_SUCCESS)
}

/// A flavor's variables, computed again.
fn prepared(project: &Project, f: &ToStage) -> Result<Prepared> {
    Ok(Prepared {
        vars: Vars::for_flavor(&f.flavor, &project.config, &project.env, project.git())?,
        flavor: f.flavor.clone(),
        buildable: f.buildable,
    })
}

/// Stages every flavor, on as many threads as there are cores; results in input order.
fn stage_all(project: &Project, flavors: &[ToStage]) -> Vec<Result<WriteStats>> {
    let tree = FsTree::new(project.root(), &project.config.templates);
    let git = project.git();
    let facts = manifest::RunFacts::new(project.root(), &project.config, git);
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
                    manifest::retry(&mut pending, false);
                    let result = prepared(project, f).and_then(|p| {
                        let (staged, racy) = stage_one(project, &tree, &facts, &p)?;
                        pending.extend(racy);
                        Ok(staged)
                    });
                    **slots[index].lock().unwrap() = Some(result);
                }
                manifest::retry(&mut pending, true);
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
    facts: &manifest::RunFacts,
    prepared: &Prepared,
) -> Result<(WriteStats, Option<manifest::Pending>)> {
    let config = &project.config;
    let git = project.git();
    let dir = prepared.vars.staging_dir();
    let layers = stage::checked_layers(tree, config, prepared)?;
    let fingerprint = facts.fingerprint(tree, prepared, &layers, git);
    if let Some(fingerprint) = &fingerprint {
        let unchanged =
            manifest::unchanged_outputs(project.root(), &config.staging_root, dir, fingerprint);
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
    let mut extra = std::collections::BTreeMap::new();
    extra.insert(
        makefile::FLAVOR_MK.to_string(),
        makefile::flavor_mk(config, &staged, git),
    );
    let outputs = stage::outputs(&staged, &sources, &extra, &digests);
    let base = project.root().join(dir);
    let stats = stage::write_dir(project.root(), &config.staging_root, dir, &outputs)?;
    let pending = match &fingerprint {
        Some(fingerprint) => manifest::record(&base, &outputs, fingerprint)?,
        None => None,
    };
    Ok((stats, pending))
}
