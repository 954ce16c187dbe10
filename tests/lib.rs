//! The integration tests: one binary, one module per feature.

mod common;

mod bake;
mod build_path;
mod ceph_templates;
mod derived;
mod errors;
mod fastpath;
mod graph_export;
mod integrity;
mod make;
mod manifest;
mod modified;
mod names;
mod odd_trees;
mod reuse;
mod root_templates;
mod staging;
mod usage;
