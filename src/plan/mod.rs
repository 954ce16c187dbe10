//! Plan: what builds consume (build plans, labels and content ids, the generated Makefiles).

pub(crate) mod build_plan;
pub(crate) mod labels;
pub(crate) mod makefile;
