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

/// The command line run: parses the arguments (clap), runs the command, prints the error chain
/// once as `error: …`, and returns the exit code (0 ok, 1 failed run, 2 usage). A closed stdout
/// (`matriochka show flavors | head -1`) is not an error.
pub fn run() -> std::process::ExitCode {
    let invocation = cli::parse();
    match commands::run(&invocation) {
        Ok(code) => code.into(),
        Err(err) if commands::is_broken_pipe(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            error::for_error(&err).into()
        }
    }
}
