//! Commands above project, stage and makefile: one module each.

pub mod clean;
pub mod image;
pub mod reuse;
