//! App: what several commands share (the project, the report, change sets).

pub(crate) mod changes;
pub(crate) mod groups;
pub(crate) mod modified;
pub(crate) mod project;
pub(crate) mod report;
pub(crate) mod reuse;
pub(crate) mod staging;
pub(crate) mod uses;
