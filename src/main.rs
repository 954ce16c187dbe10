use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let invocation = matriochka::cli::Cli::parse().into_invocation();
    match matriochka::commands::run(&invocation) {
        Ok(code) => code.into(),
        Err(err) if matriochka::commands::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            matriochka::error::for_error(&err).into()
        }
    }
}
