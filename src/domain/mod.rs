//! Domain: pure values and rules (flavors, configuration, variables); no I/O, no processes.

pub mod config;
pub mod decor;
pub mod derived;
pub mod digest;
pub mod dockerfile;
pub mod flavor;
pub mod git_facts;
pub mod image_args;
pub mod layout;
pub mod pattern;
pub mod reference;
pub mod shard;
pub mod suggest;
pub mod vars;
pub mod version;
