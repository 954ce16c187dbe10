//! matriochka: turns flavor tuples into staged build contexts and Makefile fragments.

pub mod build_plan;
pub mod cache;
pub mod changes;
pub mod cli;
pub mod command;
pub mod commands;
pub mod config;
pub mod engine;
pub mod exit_codes;
pub mod flavor;
pub mod git;
pub mod graph;
pub mod labels;
pub mod lock;
pub mod makefile;
pub mod model;
pub mod modified;
pub mod overlay;
pub mod project;
pub mod render;
pub mod run;
pub mod stage;
pub mod suggest;
pub mod tree;
pub mod vars;
