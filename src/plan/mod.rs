//! Plan: what builds consume (build plans, labels and content ids, the generated Makefiles).

pub mod build_plan;
pub mod labels;
pub mod makefile;
