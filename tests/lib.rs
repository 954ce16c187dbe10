//! The integration tests: one binary, one module per feature.

mod common;

mod ceph_templates;
mod errors;
mod fastpath;
mod integrity;
mod make;
mod modified;
mod staging;
