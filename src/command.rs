//! Commands: the checked command line every front end (the CLI, tests) turns into.

use std::path::PathBuf;

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
        /// Fail at once, rather than wait, when another run holds the staging root.
        no_wait: bool,
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
