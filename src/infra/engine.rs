//! Engine: every docker/podman command line matriochka runs, written in one place.
//!
//! [`argv`] builds the argument lists (no side effects, tested as lists); [`exec`] runs them,
//! tees their output to a log and retries pushes.

pub mod argv;
pub mod exec;
pub mod manifest;
pub mod squash;

pub use argv::Engine;
