//! Infra: the outside world (git, the container engine, the staging lock).

pub(crate) mod engine;
pub(crate) mod fs;
pub(crate) mod git;
pub(crate) mod lock;
pub(crate) mod pool;
pub(crate) mod process;
pub(crate) mod registry;
