//! The integration tests: one binary, one module per feature.

mod common;

mod build_path;
mod ceph_templates;
mod errors;
mod fastpath;
mod make;
mod modified;
mod staging;
