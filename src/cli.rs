//! Command-line arguments (clap lives here only), converted once into a [`Command`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::command::{Command, ImageAction, ImageArgs, Invocation, ModifiedOutput};

const EXAMPLE_FLAVOR: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";

/// Builds families of container images from layered templates.
#[derive(Parser, Debug)]
#[command(
    name = "matriochka",
    version,
    about,
    after_help = "Example:\n  matriochka stage squid,x86_64,centos,9,quay.io,centos/centos,stream9"
)]
pub struct Cli {
    /// Run as if started in DIR (the project root)
    #[arg(short = 'C', value_name = "DIR", global = true, default_value = ".")]
    pub root: PathBuf,
    /// Configuration file [default: <root>/flavors/matriochka.toml]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Stage flavors into build contexts (arguments, else $FLAVORS, else the default flavors)
    #[command(after_help = format!("Example:\n  matriochka stage {EXAMPLE_FLAVOR}\n  FLAVORS='reef,centos,9 squid,centos,9' matriochka stage"))]
    Stage {
        /// Flavors: `rel,arch,os,version,registry,repo,tag` or `rel,os,version`
        flavors: Vec<String>,
    },
    /// Show flavors, the default flavors or a flavor's variables
    #[command(
        subcommand,
        after_help = "Example:\n  matriochka show flavors\n  matriochka show vars squid,centos,9"
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
    /// Build, push or remove one staged image (what make's recipes run)
    #[command(
        subcommand,
        after_help = "Example:\n  matriochka image build staging/squid-centos-9-x86_64 daemon-base --plan <sha256>"
    )]
    Image(ImageCommand),
    /// Remove matriochka's images and everything below the staging root but its lock
    #[command(after_help = "Example:\n  TAG_REGISTRY=quay.io/me matriochka clean --all")]
    Clean {
        /// Images tagged in $TAG_REGISTRY (default: ceph)
        #[arg(long, required_unless_present = "nuke")]
        all: bool,
        /// Images of every registry (risky)
        #[arg(long, conflicts_with = "all")]
        nuke: bool,
    },
}

/// The arguments every `image` action takes.
#[derive(clap::Args, Debug)]
pub struct ImageCli {
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
pub enum ImageCommand {
    /// Check the context against its plan and build it, under the shared staging lock
    Build(ImageCli),
    /// Push the image, with PUSH_RETRIES retries
    Push(ImageCli),
    /// Remove the image when it carries this flavor's label, and its stamp
    Clean(ImageCli),
}

impl ImageCommand {
    fn into_args(self) -> ImageArgs {
        let (action, cli) = match self {
            ImageCommand::Build(cli) => (ImageAction::Build, cli),
            ImageCommand::Push(cli) => (ImageAction::Push, cli),
            ImageCommand::Clean(cli) => (ImageAction::Clean, cli),
        };
        ImageArgs {
            action,
            staging_dir: cli.staging_dir,
            image: cli.image,
            plan: cli.plan,
            progress: cli.progress,
            dry_run: cli.dry_run,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ShowCommand {
    /// The buildable flavors, one per line
    #[command(after_help = "Example:\n  matriochka show flavors")]
    Flavors,
    /// The default flavors, one per line
    #[command(after_help = "Example:\n  matriochka show default")]
    Default,
    /// A flavor's variables, as sorted NAME=value lines
    #[command(after_help = format!("Example:\n  matriochka show vars {EXAMPLE_FLAVOR}"))]
    Vars { flavor: String },
}

impl Cli {
    /// The checked invocation.
    pub fn into_invocation(self) -> Invocation {
        let command = match self.command {
            CliCommand::Stage { flavors } => Command::Stage { flavors },
            CliCommand::Show(ShowCommand::Flavors) => Command::ShowFlavors,
            CliCommand::Show(ShowCommand::Default) => Command::ShowDefault,
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
            CliCommand::Image(image) => Command::Image(image.into_args()),
            CliCommand::Clean { all: _, nuke } => Command::CleanAll {
                every_registry: nuke,
            },
        };
        Invocation {
            root: self.root,
            config: self.config,
            command,
        }
    }
}
