//! Command-line arguments (clap lives here only), converted once into a [`Command`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::report::RunKind;
use crate::commands::args::{
    Command, GraphOutput, GraphQuery, ImageAction, ImageArgs, Invocation, ModifiedOutput,
    ReportAction,
};
use crate::commands::slice::Shard;

// Examples name buildable flavors of the repository's own configuration (a test checks it).
const EXAMPLE_FLAVOR: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const EXAMPLE_UBUNTU: &str = "reef,x86_64,ubuntu,22.04,_,ubuntu,22.04";

/// Builds families of container images from layered templates.
#[derive(Parser, Debug)]
#[command(
    name = "matriochka",
    version,
    about,
    after_help = "Example:\n  matriochka stage squid,x86_64,centos,9,quay.io,centos/centos,stream9"
)]
pub(crate) struct Cli {
    /// Run as if started in DIR (the project root) [default: the nearest directory upwards that
    /// holds flavors/matriochka.toml, as git and cargo find theirs]
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub(crate) root: Option<PathBuf>,
    /// Configuration file [default: <root>/flavors/matriochka.toml]
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: CliCommand,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CliCommand {
    /// Stage flavors into build contexts (arguments, else $FLAVORS, else the default flavors)
    #[command(after_help = format!("Example:\n  matriochka stage {EXAMPLE_FLAVOR}\n  FLAVORS='{EXAMPLE_FLAVOR} {EXAMPLE_UBUNTU}' matriochka stage"))]
    Stage {
        /// Flavors: `rel,arch,os,version,registry,repo,tag` or `rel,os,version`
        flavors: Vec<String>,
        /// Fail at once when another run holds the staging root, instead of waiting
        /// [env: MATRIOCHKA_NO_WAIT=1]
        #[arg(long)]
        no_wait: bool,
        /// Stage only the flavor make target TARGET names (`build.<id>.<image>`, `push.<id>`…):
        /// the first of $FLAVORS, the default and the buildable flavors with that id
        #[arg(long, value_name = "TARGET", conflicts_with = "flavors")]
        target: Option<String>,
        /// Lines added after the first FROM of each image built on an outside base [env: HEADER]
        #[arg(long, value_name = "FILE")]
        header: Option<String>,
        /// Lines added at the end of every Dockerfile [env: FOOTER]
        #[arg(long, value_name = "FILE")]
        footer: Option<String>,
    },
    /// Show flavors, the default flavors, a flavor's variables, the staging root or the environment
    #[command(
        subcommand,
        after_help = format!("Example:\n  matriochka show flavors\n  matriochka show vars {EXAMPLE_UBUNTU}")
    )]
    Show(ShowCommand),
    /// Print what staging would do, without writing anything
    #[command(after_help = format!("Example:\n  matriochka plan --json {EXAMPLE_FLAVOR}"))]
    Plan {
        /// Flavors (arguments, else $FLAVORS, else the default flavors)
        flavors: Vec<String>,
        /// Print JSON (the default output is one line per image)
        #[arg(long)]
        json: bool,
    },
    /// List the buildable flavors that the current branch changes
    #[command(after_help = "Example:\n  matriochka modified --vs origin/main --json")]
    Modified {
        /// The branch the change is compared with [default: origin/main, else origin/master, main, master]
        #[arg(long, value_name = "REF")]
        vs: Option<String>,
        /// `git fetch` the branch first
        #[arg(long)]
        fetch: bool,
        /// Decide by changed paths only, without staging (faster, less exact)
        #[arg(long)]
        by_path: bool,
        /// Print a JSON array with the affected images and the changed paths
        #[arg(long, conflicts_with = "make")]
        json: bool,
        /// Print one line `FLAVORS="..."`
        #[arg(long)]
        make: bool,
    },
    /// Stage flavors, then write a BuildKit bake file, `<staging root>/docker-bake.json`
    #[command(after_help = format!("Example:\n  matriochka bake {EXAMPLE_FLAVOR}\n  BAKE_CACHE=registry.example/ceph/cache matriochka bake"))]
    Bake {
        /// Flavors (arguments, else $FLAVORS, else the default flavors)
        flavors: Vec<String>,
        /// One target per image of each manifest group (`layout.manifest_tag`), with the arches as
        /// its platforms, tagged with the manifest tag
        #[arg(long)]
        merge_arches: bool,
    },
    /// Print the image graph of flavors: each image `<flavor id>/<image>` and its parents
    #[command(after_help = format!("Example:\n  matriochka graph --dot {EXAMPLE_FLAVOR} | dot -Tsvg > graph.svg\n  matriochka graph --parents daemon"))]
    Graph {
        /// Flavors (arguments, else $FLAVORS, else the default flavors)
        flavors: Vec<String>,
        /// Print Graphviz, one cluster per flavor (the default)
        #[arg(long, conflicts_with = "json")]
        dot: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Print the parents of IMAGE (`<flavor id>/<image>`, or an image name in every flavor)
        #[arg(long, value_name = "IMAGE", conflicts_with = "children")]
        parents: Option<String>,
        /// Print the images built from IMAGE (`<flavor id>/<image>`, an image name, or an external image)
        #[arg(long, value_name = "IMAGE")]
        children: Option<String>,
    },
    /// Join each manifest group's per-arch images, as the registry holds them, into manifest lists
    /// and push them under `layout.manifest_tag` and `layout.rolling_tags`
    #[command(
        after_help = "Example:\n  CONTAINER_ENGINE=podman TAG_REGISTRY=quay.io/ceph matriochka manifest $(matriochka show flavors)"
    )]
    Manifest {
        /// Flavors (arguments, else $FLAVORS, else the default flavors)
        flavors: Vec<String>,
    },
    /// Fail, one line per flavor, when this host can neither run nor emulate a flavor's arch
    #[command(
        after_help = "Example:\n  matriochka check-arches squid,aarch64,centos,9,quay.io,centos/centos,stream9"
    )]
    CheckArches {
        /// Flavors (arguments, else $FLAVORS, else the default flavors)
        flavors: Vec<String>,
        /// The flavors are about to be pushed: a test flavor (`flavors.test`) is refused too
        #[arg(long)]
        push: bool,
    },
    /// Check what staging gives, without writing: no `__TOKEN__` left, a FROM in every
    /// Dockerfile, image references that resolve, shell scripts that `bash -n` and shellcheck pass
    #[command(after_help = format!("Example:\n  matriochka check\n  matriochka check {EXAMPLE_FLAVOR}"))]
    Check {
        /// Flavors (arguments, else every buildable flavor)
        flavors: Vec<String>,
    },
    /// Build, push or remove one staged image (what make's recipes run)
    #[command(
        subcommand,
        after_help = "Example:\n  matriochka image build staging/squid-centos-9-x86_64 daemon-base --plan <sha256>"
    )]
    Image(ImageCommand),
    /// Remove matriochka's images (every flavor and registry) last used more than PRUNE_HOURS
    /// (default 48) ago, keeping the PRUNE_KEEP (default 24) most recent, those a container uses
    /// and the current flavors' (unless PRUNE_CURRENT=1)
    #[command(after_help = "Example:\n  PRUNE_HOURS=24 PRUNE_KEEP=10 matriochka prune --dry-run")]
    Prune {
        /// The current flavors (arguments, else $FLAVORS, else the default flavors)
        flavors: Vec<String>,
        /// List what would be removed [env: PRUNE_DRY=1]
        #[arg(long)]
        dry_run: bool,
        /// Record the current flavors' images as used now (make runs it after builds)
        #[arg(long, conflicts_with = "dry_run")]
        record: bool,
    },
    /// Remove matriochka's images and everything below the staging root but its lock
    #[command(after_help = "Example:\n  TAG_REGISTRY=quay.io/me matriochka clean --all")]
    Clean {
        /// Images tagged in $TAG_REGISTRY (default: ceph)
        #[arg(long, required_unless_present_any = ["nuke", "flavor_dir"])]
        all: bool,
        /// Images of every registry (risky)
        #[arg(long, conflicts_with = "all")]
        nuke: bool,
        /// Only this flavor's staging dir, stamps and logs, under the lock (what `make clean.<id>` runs)
        #[arg(long, value_name = "STAGING_DIR", conflicts_with_all = ["all", "nuke"])]
        flavor_dir: Option<PathBuf>,
        /// With --flavor-dir: print what would be removed
        #[arg(long, requires = "flavor_dir")]
        dry_run: bool,
    },
    /// Summarize the last build/push/manifest/release run's report (`<staging root>/report.json`)
    #[command(
        after_help = "Example:\n  matriochka report\n  make build FLAVORS=\"$(matriochka report --failed)\""
    )]
    Report {
        /// Print the flavors of the failed and skipped images, one per line, ready for FLAVORS=
        #[arg(long, conflicts_with = "finish")]
        failed: bool,
        /// End the run of $MATRIOCHKA_RUN: write the report and print its summary (the Makefile
        /// runs this)
        #[arg(long, value_name = "KIND")]
        finish: Option<FinishKind>,
        /// With --finish: the run's exit status, which this exits with
        #[arg(long, value_name = "N", default_value_t = 0, requires = "finish")]
        status: u8,
        /// With --finish: a dry run (`make -n`), which writes nothing
        #[arg(long, requires = "finish")]
        dry_run: bool,
    },
    /// Look the images' content tags up in TAG_REGISTRY at once, for REUSE=1 builds (what make runs)
    #[command(
        after_help = "Example:\n  matriochka reuse-lookup staging/squid-centos-9-x86_64/.matriochka/daemon-base.json"
    )]
    ReuseLookup {
        /// Build plans (`<staging dir>/.matriochka/<image>.json`)
        #[arg(required = true)]
        plans: Vec<PathBuf>,
    },
}

/// The run `report --finish` ends.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum FinishKind {
    Build,
    Push,
    Manifest,
    Release,
}

/// The arguments every `image` action takes.
#[derive(clap::Args, Debug)]
pub(crate) struct ImageCli {
    /// The flavor's staging dir
    staging_dir: PathBuf,
    /// The image
    image: String,
    /// sha256 of the image's build plan (`<staging dir>/.matriochka/<image>.json`) as make read it
    #[arg(long, value_name = "SHA256")]
    plan: String,
    /// Shown in progress lines, as `[n/N]`
    #[arg(long, value_name = "n/N")]
    progress: Option<String>,
    /// Print the engine command lines instead of running them
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// Check the context against its plan and build it, under the shared staging lock
    Build(ImageCli),
    /// Push the image, with PUSH_RETRIES retries
    Push(ImageCli),
    /// Remove the image when it carries this flavor's label, and its stamp
    Clean(ImageCli),
    /// What `make -n` prints for many images, from one start: make definitions of each one's
    /// `--dry-run` lines (make runs this)
    #[command(hide = true)]
    DryRun {
        /// `<build|push|clean> <make target> <build plan> <sha256>` groups, blank-separated
        list: PathBuf,
    },
}

impl ImageCommand {
    fn into_command(self) -> Command {
        let (action, cli) = match self {
            ImageCommand::Build(cli) => (ImageAction::Build, cli),
            ImageCommand::Push(cli) => (ImageAction::Push, cli),
            ImageCommand::Clean(cli) => (ImageAction::Clean, cli),
            ImageCommand::DryRun { list } => return Command::ImageDryRun { list },
        };
        Command::Image(ImageArgs {
            action,
            staging_dir: cli.staging_dir,
            image: cli.image,
            plan: cli.plan,
            progress: cli.progress,
            dry_run: cli.dry_run,
        })
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum ShowCommand {
    /// The buildable flavors, one per line
    #[command(
        after_help = "Example:\n  matriochka show flavors\n  matriochka show flavors --arch aarch64 --shard 1/2"
    )]
    Flavors {
        /// Only flavors of this arch (`aarch64` or `arm64`); repeat, or separate by spaces or commas
        #[arg(long = "arch", value_name = "ARCH")]
        arches: Vec<String>,
        /// Only shard I of N: the list is dealt round-robin, the same way every time
        #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
        shard: Option<Shard>,
        /// The test flavors (`flavors.test`: built and run by the tests, never pushed) instead
        #[arg(long)]
        test: bool,
    },
    /// The default flavors, one per line
    #[command(after_help = "Example:\n  matriochka show default")]
    Default,
    /// A flavor's variables, as sorted NAME=value lines
    #[command(after_help = format!("Example:\n  matriochka show vars {EXAMPLE_FLAVOR}"))]
    Vars { flavor: String },
    /// The staging root (`layout.staging_root`), relative to the project root
    #[command(after_help = "Example:\n  matriochka show staging-root")]
    StagingRoot,
    /// The environment variables matriochka reads, with their values here and what they do
    #[command(after_help = "Example:\n  matriochka show env")]
    Env,
}

impl Cli {
    /// The checked invocation.
    pub(crate) fn into_invocation(self) -> Invocation {
        let command = match self.command {
            CliCommand::Stage {
                flavors,
                no_wait,
                target: None,
                header,
                footer,
            } => Command::Stage {
                flavors,
                no_wait,
                header,
                footer,
            },
            CliCommand::Stage {
                target: Some(target),
                no_wait,
                ..
            } => Command::StageTarget { target, no_wait },
            CliCommand::Show(ShowCommand::Flavors {
                arches,
                shard,
                test,
            }) => Command::ShowFlavors {
                arches,
                shard,
                test,
            },
            CliCommand::Show(ShowCommand::Default) => Command::ShowDefault,
            CliCommand::Show(ShowCommand::StagingRoot) => Command::ShowStagingRoot,
            CliCommand::Show(ShowCommand::Env) => Command::ShowEnv,
            CliCommand::Show(ShowCommand::Vars { flavor }) => Command::ShowVars { flavor },
            CliCommand::Plan { flavors, json } => Command::Plan { flavors, json },
            CliCommand::Modified {
                vs,
                fetch,
                by_path,
                json,
                make,
            } => Command::Modified {
                vs,
                fetch,
                by_path,
                output: if json {
                    ModifiedOutput::Json
                } else if make {
                    ModifiedOutput::Make
                } else {
                    ModifiedOutput::Lines
                },
            },
            CliCommand::Bake {
                flavors,
                merge_arches,
            } => Command::Bake {
                flavors,
                merge_arches,
            },
            CliCommand::Graph {
                flavors,
                dot: _,
                json,
                parents,
                children,
            } => Command::Graph {
                flavors,
                output: if json {
                    GraphOutput::Json
                } else {
                    GraphOutput::Dot
                },
                query: match (parents, children) {
                    (Some(image), _) => Some(GraphQuery::Parents(image)),
                    (None, Some(image)) => Some(GraphQuery::Children(image)),
                    (None, None) => None,
                },
            },
            CliCommand::Manifest { flavors } => Command::Manifest { flavors },
            CliCommand::CheckArches { flavors, push } => Command::CheckArches { flavors, push },
            CliCommand::Check { flavors } => Command::Check { flavors },
            CliCommand::Image(image) => image.into_command(),
            CliCommand::Clean {
                flavor_dir: Some(staging_dir),
                dry_run,
                ..
            } => Command::CleanFlavor {
                staging_dir,
                dry_run,
            },
            CliCommand::Clean { nuke, .. } => Command::CleanAll {
                every_registry: nuke,
            },
            CliCommand::Report {
                failed,
                finish,
                status,
                dry_run,
            } => Command::Report(match (failed, finish) {
                (true, _) => ReportAction::Failed,
                (false, None) => ReportAction::Summary,
                (false, Some(kind)) => ReportAction::Finish {
                    kind: match kind {
                        FinishKind::Build => RunKind::Build,
                        FinishKind::Push => RunKind::Push,
                        FinishKind::Manifest => RunKind::Manifest,
                        FinishKind::Release => RunKind::Release,
                    },
                    status,
                    dry_run,
                },
            }),
            CliCommand::Prune {
                flavors,
                dry_run,
                record,
            } => Command::Prune {
                flavors,
                dry_run,
                record,
            },
            CliCommand::ReuseLookup { plans } => Command::ReuseLookup { plans },
        };
        Invocation {
            root: self.root,
            config: self.config,
            command,
        }
    }
}

/// The checked command line of this process.
pub(crate) fn parse() -> Invocation {
    use clap::Parser as _;
    Cli::parse().into_invocation()
}
