//! The integration tests: one binary, one module per feature.

mod common;

mod ceph_templates;
mod errors;
mod fastpath;
mod make;
mod manifest;
mod modified;
mod staging;
