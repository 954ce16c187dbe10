//! App: what several commands share (the project, the report, change sets).

pub mod changes;
pub mod modified;
pub mod project;
pub mod report;
