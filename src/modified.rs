//! Modified: which buildable flavors a branch changes (being written; see issue 4).

use std::io::Write;

use anyhow::{bail, Result};

use crate::run::{ModifiedOutput, Project};

/// Runs `matriochka modified`.
pub fn command(
    _project: &Project,
    _vs: Option<&str>,
    _fetch: bool,
    _by_path: bool,
    _output: ModifiedOutput,
    _out: &mut dyn Write,
    _err: &mut dyn Write,
) -> Result<u8> {
    bail!("`modified` is not available yet")
}
