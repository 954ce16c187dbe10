//! The checked command line every front end (the CLI, tests) turns into: what each command
//! receives. Not a command: every command may import it.

use std::path::PathBuf;

use crate::app::report::RunKind;
use crate::domain::shard::Shard;

/// A checked command line.
#[derive(Debug)]
pub(crate) struct Invocation {
    /// The project root; `None`: found upwards from the working directory.
    pub(crate) root: Option<PathBuf>,
    pub(crate) config: Option<PathBuf>,
    pub(crate) command: Command,
}

/// What `image` does to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageAction {
    Build,
    Push,
    Clean,
}

/// The arguments of `image build|push|clean`.
#[derive(Debug)]
pub(crate) struct ImageArgs {
    pub(crate) action: ImageAction,
    /// The flavor's staging dir, relative to the root.
    pub(crate) staging_dir: PathBuf,
    pub(crate) image: String,
    /// The sha256 of the build plan make was generated with.
    pub(crate) plan: String,
    /// `n/N`, shown in progress lines.
    pub(crate) progress: Option<String>,
    /// Print the engine command lines instead of running them.
    pub(crate) dry_run: bool,
}

/// The subcommands.
#[derive(Debug)]
pub(crate) enum Command {
    Stage {
        flavors: Vec<String>,
        /// Fail at once, rather than wait, when another run holds the staging root.
        no_wait: bool,
        /// `--header FILE` / `--footer FILE`: as `HEADER` / `FOOTER` in the environment.
        header: Option<String>,
        footer: Option<String>,
    },
    /// Stages the one flavor a make target (`build.<id>.<image>`…) names.
    StageTarget {
        target: String,
        no_wait: bool,
    },
    /// The buildable flavors, of some arches only, one shard only.
    ShowFlavors {
        arches: Vec<String>,
        shard: Option<Shard>,
        /// `flavors.test` instead of `flavors.buildable`.
        test: bool,
    },
    ShowDefault,
    /// `layout.staging_root`, for the user Makefile.
    ShowStagingRoot,
    /// The environment variables read, their values and meanings.
    ShowEnv,
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
    Bake {
        flavors: Vec<String>,
        merge_arches: bool,
    },
    Graph {
        flavors: Vec<String>,
        output: GraphOutput,
        query: Option<GraphQuery>,
    },
    /// Join the per-arch images in the registry into manifest lists.
    Manifest {
        flavors: Vec<String>,
    },
    /// Check that this host can run each flavor's arch (natively or emulated).
    CheckArches {
        flavors: Vec<String>,
        /// Refuse test flavors too: the run pushes.
        push: bool,
    },
    /// Checks what staging gives, without writing: tokens, FROM, image references, scripts.
    Check {
        flavors: Vec<String>,
    },
    Image(ImageArgs),
    /// `image dry-run LIST`: what `make -n` prints for many images, as make definitions.
    ImageDryRun {
        list: PathBuf,
    },
    /// Removes matriochka's images (of `TAG_REGISTRY`, or of every registry) and the staging root.
    CleanAll {
        every_registry: bool,
    },
    /// Removes one flavor's staging dir, stamps and logs, under the exclusive staging lock.
    CleanFlavor {
        staging_dir: PathBuf,
        dry_run: bool,
    },
    /// The build report: its summary, the flavors to run again, or the end of a run.
    Report(ReportAction),
    /// Removes matriochka's images unused for `PRUNE_HOURS`; `record`: records the current
    /// flavors' images as used now instead.
    Prune {
        flavors: Vec<String>,
        dry_run: bool,
        record: bool,
    },
    /// Looks the content tags of planned images up in the registry at once (`REUSE=1`).
    ReuseLookup {
        /// Build plans, relative to the root.
        plans: Vec<PathBuf>,
    },
}

/// What `report` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportAction {
    /// Print the summary of `report.json`.
    Summary,
    /// Print the flavors of failed and skipped images, one per line.
    Failed,
    /// Write `report.json` for the run and print its summary; exit with the run's `status`.
    Finish {
        kind: RunKind,
        status: u8,
        dry_run: bool,
    },
}

/// What `graph` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GraphOutput {
    Dot,
    Json,
}

/// The one image `graph` answers for, when asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GraphQuery {
    Parents(String),
    Children(String),
}

/// What `modified` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModifiedOutput {
    Lines,
    Json,
    Make,
}
