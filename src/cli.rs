//! Command-line arguments (clap lives here only), converted once into a [`Command`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::command::{Command, Invocation, ModifiedOutput};

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
        /// Fail at once when another run holds the staging root, instead of waiting
        /// [env: MATRIOCHKA_NO_WAIT=1]
        #[arg(long)]
        no_wait: bool,
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
            CliCommand::Stage { flavors, no_wait } => Command::Stage { flavors, no_wait },
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
        };
        Invocation {
            root: self.root,
            config: self.config,
            command,
        }
    }
}
