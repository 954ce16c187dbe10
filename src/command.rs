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

/// What `image` does to one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageAction {
    Build,
    Push,
    Clean,
}

/// The arguments of `image build|push|clean`.
#[derive(Debug)]
pub struct ImageArgs {
    pub action: ImageAction,
    /// The flavor's staging dir, relative to the root.
    pub staging_dir: PathBuf,
    pub image: String,
    /// The sha256 of the build plan make was generated with.
    pub plan: String,
    /// `n/N`, shown in progress lines.
    pub progress: Option<String>,
    /// Print the engine command lines instead of running them.
    pub dry_run: bool,
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
    Image(ImageArgs),
    /// Removes matriochka's images (of `TAG_REGISTRY`, or of every registry) and the staging root.
    CleanAll {
        every_registry: bool,
    },
}
