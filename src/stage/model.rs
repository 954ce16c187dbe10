//! The model: a flavor ready to stage and its staged images, in memory.
//!
//! Shared by stage, graph and makefile, so that none of them imports another for its types.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::domain::config::Config;
use crate::domain::flavor::Flavor;
use crate::domain::git_facts::GitFacts;
use crate::domain::vars::{Env, Vars};
use crate::stage::render::StagedFile;

/// A flavor whose variables are known, ready to stage.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) flavor: Flavor,
    pub(crate) vars: Vars,
    pub(crate) buildable: bool,
    /// In `flavors.test`: built and run by the tests, never pushed.
    pub(crate) test: bool,
}

impl Prepared {
    /// A flavor with its variables computed.
    pub(crate) fn new(
        flavor: Flavor,
        config: &Config,
        env: &Env,
        git: &GitFacts,
        buildable: bool,
    ) -> Result<Prepared> {
        Ok(Prepared {
            vars: Vars::for_flavor(&flavor, config, env, git)?,
            flavor,
            buildable,
            test: false,
        })
    }

    pub(crate) fn id(&self) -> String {
        self.vars.id()
    }
}

/// One staged image context.
#[derive(Clone, Debug)]
pub(crate) struct StagedImage {
    pub(crate) name: String,
    pub(crate) tag: String,
    pub(crate) files: BTreeMap<String, StagedFile>,
    /// sha256 over the context's paths, modes and bytes.
    pub(crate) digest: String,
    /// Images of the same flavor this one is built from (FROM, COPY --from).
    pub(crate) parents: Vec<String>,
    /// Whether a FROM names an image outside the flavor (the build then pulls it).
    pub(crate) external_base: bool,
}

/// A whole flavor, in memory.
#[derive(Clone, Debug)]
pub(crate) struct StagedFlavor {
    pub(crate) prepared: Prepared,
    pub(crate) images: Vec<StagedImage>,
}
