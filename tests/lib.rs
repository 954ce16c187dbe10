//! The integration tests: one binary, one module per feature.

mod common;

mod architecture;
mod bake;
mod bake_merge;
mod build_path;
mod ceph_templates;
mod derived;
mod engine_names;
mod errors;
mod fastpath;
mod graph_export;
mod header_footer;
mod help;
mod image_args;
mod integrity;
mod make;
mod make_ui;
mod make_values;
mod manifest;
mod modified;
mod names;
mod odd_trees;
mod prune;
mod report;
mod reuse;
mod root_templates;
mod squash;
mod staging;
mod test_flavors;
mod usage;
