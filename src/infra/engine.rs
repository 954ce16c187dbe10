//! Engine: every docker/podman command line matriochka runs, written in one place.
//!
//! [`argv`] builds the argument lists (no side effects, tested as lists) and the one [`Engine`]
//! type, parsed once from `CONTAINER_ENGINE`; commands run through [`crate::infra::process`].
//! Manifest lists and registry reads are [`crate::infra::registry`]'s.

pub(crate) mod argv;
pub(crate) mod hints;
pub(crate) mod pushed;
pub(crate) mod squash;

pub(crate) use argv::{Engine, Kind};
