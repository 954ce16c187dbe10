//! Commands above project, stage and makefile: one module each.

pub mod args;
pub mod bake;
pub mod check;
pub mod clean;
pub mod graph;
pub mod image;
pub mod manifest;
pub mod prune;
pub mod report;
pub mod reuse;
pub mod run;
pub mod slice;
