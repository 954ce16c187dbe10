//! Domain: pure values and rules (flavors, configuration, variables); no I/O, no processes.

pub(crate) mod build_options;
pub(crate) mod config;
pub(crate) mod date;
pub(crate) mod decor;
pub(crate) mod derived;
pub(crate) mod digest;
pub(crate) mod dockerfile;
pub(crate) mod env_names;
pub(crate) mod flavor;
pub(crate) mod git_facts;
pub(crate) mod image_args;
pub(crate) mod layout;
pub(crate) mod pattern;
pub(crate) mod reference;
pub(crate) mod shard;
pub(crate) mod suggest;
pub(crate) mod vars;
pub(crate) mod version;
