//! Commands above project, stage and makefile: one module each.

pub mod check;
pub mod clean;
pub mod image;
pub mod prune;
pub mod report;
pub mod reuse;
