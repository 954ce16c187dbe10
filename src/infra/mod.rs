//! Infra: the outside world (git, the container engine, the staging lock).

pub mod engine;
pub mod fs;
pub mod git;
pub mod lock;
pub mod pool;
pub mod process;
pub mod registry;
