//! App: what several commands share (the project, the report, change sets).

pub mod changes;
pub mod groups;
pub mod modified;
pub mod project;
pub mod report;
pub mod reuse;
pub mod staging;
pub mod uses;
