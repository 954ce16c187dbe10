//! matriochka: turns flavor tuples into staged build contexts and Makefile fragments.
//!
//! Layers, imports only downwards: `cli → commands → app → plan → stage → infra → domain`
//! (`error` sits beside `domain`); `tests/architecture.rs` enforces it.

pub mod app;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod error;
pub mod infra;
pub mod plan;
pub mod stage;
