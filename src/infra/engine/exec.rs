//! Runs engine command lines: output teed to a log, pushes retried with growing back-off.

use std::ffi::{OsStr, OsString};
use std::io::{Read as _, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

/// Runs `program args` with stdout and stderr merged in one stream, copying every byte to `log`
/// and to `out` as it comes; whether the command succeeded.
pub fn run_teed(
    program: &OsStr,
    args: &[OsString],
    log: &mut dyn Write,
    out: &mut dyn Write,
) -> Result<bool> {
    let spawn_error = || format!("failed to run `{}`", program.to_string_lossy());
    let (mut reader, writer) = std::io::pipe().with_context(spawn_error)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone().with_context(spawn_error)?)
        .stderr(writer);
    let mut child = command.spawn().with_context(spawn_error)?;
    // The command holds the pipe's write ends: dropped, the read below ends with the child.
    drop(command);
    let mut buffer = [0; 8192];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).with_context(spawn_error),
        };
        log.write_all(&buffer[..read])?;
        out.write_all(&buffer[..read])?;
        out.flush()?;
    }
    let status = child.wait().with_context(spawn_error)?;
    Ok(status.success())
}

/// Runs `program args` and returns whether it succeeded and what it printed on stdout; stderr
/// is discarded.
pub fn capture(program: &OsStr, args: &[OsString]) -> Result<(bool, String)> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("failed to run `{}`", program.to_string_lossy()))?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// Runs `attempt` until it succeeds, at most `1 + retries` times, sleeping 2 s, 4 s, 6 s… between
/// tries and saying so on `out`, which each try also writes to; whether it succeeded in the end.
pub fn with_retries(
    retries: u32,
    what: &str,
    out: &mut dyn Write,
    sleep: &mut dyn FnMut(Duration),
    attempt: &mut dyn FnMut(&mut dyn Write) -> Result<bool>,
) -> Result<bool> {
    let mut tries = 0;
    loop {
        if attempt(out)? {
            return Ok(true);
        }
        tries += 1;
        if tries > retries {
            return Ok(false);
        }
        let wait = 2 * u64::from(tries);
        writeln!(out, "{what} failed, retry {tries} of {retries} in {wait}s")?;
        sleep(Duration::from_secs(wait));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_goes_to_the_log_and_out_in_order() {
        let args: Vec<OsString> = ["-c", "echo one; echo two >&2; echo three; exit 3"]
            .iter()
            .map(OsString::from)
            .collect();
        let (mut log, mut out) = (Vec::new(), Vec::new());
        let ok = run_teed(OsStr::new("sh"), &args, &mut log, &mut out).unwrap();
        assert!(!ok);
        assert_eq!(String::from_utf8(log).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(String::from_utf8(out).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_missing_engine_is_one_error() {
        let err = run_teed(
            OsStr::new("/nonexistent/podman"),
            &[],
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "failed to run `/nonexistent/podman`: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn retries_back_off_and_stop() {
        let mut slept = Vec::new();
        let mut note = Vec::new();
        let mut calls = 0;
        let ok = with_retries(
            2,
            "push a:1",
            &mut note,
            &mut |d| slept.push(d),
            &mut |out| {
                calls += 1;
                writeln!(out, "try {calls}")?;
                Ok(false)
            },
        )
        .unwrap();
        assert!(!ok);
        assert_eq!(calls, 3);
        assert_eq!(slept, [Duration::from_secs(2), Duration::from_secs(4)]);
        assert_eq!(
            String::from_utf8(note).unwrap(),
            "try 1\npush a:1 failed, retry 1 of 2 in 2s\ntry 2\npush a:1 failed, retry 2 of 2 in 4s\ntry 3\n"
        );
    }

    #[test]
    fn retries_stop_at_the_first_success() {
        let mut calls = 0;
        let ok = with_retries(3, "push", &mut Vec::new(), &mut |_| {}, &mut |_| {
            calls += 1;
            Ok(calls == 2)
        })
        .unwrap();
        assert!(ok);
        assert_eq!(calls, 2);
    }
}
