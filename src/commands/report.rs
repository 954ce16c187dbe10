//! `matriochka report`: the summary of the last run's report, the flavors to run again
//! (`--failed`), or the end of a run (`--finish`, what the top-level Makefile runs).

use std::io::Write;

use anyhow::Result;

use crate::app::project::Project;
use crate::app::report;
use crate::commands::args::ReportAction;
use crate::error::EXIT_SUCCESS;

/// Runs `report`.
pub(crate) fn command(
    project: &Project,
    action: ReportAction,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    match action {
        ReportAction::Summary => {
            let report = report::read(project)?;
            report::print_summary(project, &report, out)?;
            Ok(EXIT_SUCCESS)
        }
        ReportAction::Failed => {
            for flavor in report::failed_flavors(&report::read(project)?) {
                writeln!(out, "{flavor}")?;
            }
            Ok(EXIT_SUCCESS)
        }
        // `make -n`: the recipes wrote no entries, and a dry run writes nothing.
        ReportAction::Finish {
            status,
            dry_run: true,
            ..
        } => Ok(status),
        ReportAction::Finish { kind, status, .. } => {
            let report = report::finish(project, kind, err)?;
            report::print_summary(project, &report, out)?;
            // The end of a build or push run: its images, built or found up to date, were used
            // now (what `prune` keeps). Never fails the run.
            if kind != crate::app::report::RunKind::Manifest {
                crate::app::uses::record(project, &[], err)?;
            }
            Ok(status)
        }
    }
}
