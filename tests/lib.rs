//! The integration tests: one binary, one module per feature.

mod common;

mod ceph_templates;
mod derived;
mod errors;
mod fastpath;
mod make;
mod modified;
mod staging;
