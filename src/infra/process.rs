//! Process: the one way matriochka starts a program (the engine, skopeo, git, shellcheck).
//!
//! A [`Cmd`] is an argument list (never a shell string); a [`Runner`] runs it and captures its
//! output, so command logic is unit-tested with [`fake::Recorder`]; [`run_teed`] streams a long
//! command (a build, a push) to a log and the terminal. [`display`] is the one quoting rule for
//! showing a command to a user (logs, dry runs).

use std::ffi::{OsStr, OsString};
use std::io::{Read as _, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result};

/// One command line: a program and its arguments, with an optional working directory and input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cmd {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    /// Bytes written to the command's stdin (else stdin is empty).
    pub(crate) input: Option<Vec<u8>>,
    /// `git -C`-like: the directory the command runs in.
    pub(crate) dir: Option<PathBuf>,
}

impl Cmd {
    pub(crate) fn new(program: impl Into<OsString>) -> Cmd {
        Cmd {
            program: program.into(),
            ..Cmd::default()
        }
    }

    /// A command from a whole argument list (program first); an empty list runs nothing.
    pub(crate) fn from_argv<S: AsRef<OsStr>>(argv: &[S]) -> Cmd {
        let mut words = argv.iter().map(|word| word.as_ref().to_os_string());
        Cmd {
            program: words.next().unwrap_or_default(),
            args: words.collect(),
            ..Cmd::default()
        }
    }

    pub(crate) fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn input(mut self, bytes: &[u8]) -> Cmd {
        self.input = Some(bytes.to_vec());
        self
    }

    #[cfg(test)]
    pub(crate) fn current_dir(mut self, dir: &std::path::Path) -> Cmd {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// The program and arguments as text (lossy), for fakes and messages.
    pub(crate) fn words(&self) -> Vec<String> {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|word| word.to_string_lossy().into_owned())
            .collect()
    }

    /// The command as a user would type it (see [`display`]).
    pub(crate) fn display(&self) -> String {
        display(&self.words())
    }

    /// The program's name, as error messages show it.
    fn name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    fn std(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }
}

/// What a command printed, and whether it succeeded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) success: bool,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Output {
    /// stdout as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs commands to completion, capturing their output; `Err` only when the program cannot be
/// started.
pub(crate) trait Runner {
    fn run(&mut self, cmd: &Cmd) -> Result<Output>;
}

/// Runs commands as child processes.
pub(crate) struct ProcessRunner;

impl Runner for ProcessRunner {
    fn run(&mut self, cmd: &Cmd) -> Result<Output> {
        let failed = || {
            let hint = if cmd.program == "skopeo" {
                " (install it: `apt-get install skopeo`)"
            } else {
                ""
            };
            format!("failed to run `{}`{hint}", cmd.name())
        };
        let mut command = cmd.std();
        command
            .stdin(if cmd.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().with_context(failed)?;
        // Written from a thread, so that a large input cannot fill both pipes and deadlock; a
        // program that stops reading early closes the pipe, which is not an error.
        let writer = match (child.stdin.take(), cmd.input.clone()) {
            (Some(mut stdin), Some(input)) => {
                Some(std::thread::spawn(move || stdin.write_all(&input)))
            }
            _ => None,
        };
        let output = child.wait_with_output().with_context(failed)?;
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        Ok(Output {
            success: output.status.success(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Runs `cmd` with stdout and stderr merged in one stream, copying every byte to `log` and to
/// `out` as it comes; whether the command succeeded.
pub(crate) fn run_teed(cmd: &Cmd, log: &mut dyn Write, out: &mut dyn Write) -> Result<bool> {
    let spawn_error = || format!("failed to run `{}`", cmd.name());
    let (mut reader, writer) = std::io::pipe().with_context(spawn_error)?;
    let mut command = cmd.std();
    command
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

/// Runs `attempt` until it succeeds, at most `1 + retries` times, sleeping 2 s, 4 s, 6 s… between
/// tries and saying so on `out`, which each try also writes to; whether it succeeded in the end.
pub(crate) fn with_retries(
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

/// A command line as a user would type it, for logs and dry runs only: words holding anything
/// but `[A-Za-z0-9_./:=@%+,-]` are single-quoted for a POSIX shell.
pub(crate) fn display<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|word| quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word quoted for a POSIX shell when it needs it.
pub(crate) fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The recording fake of [`Runner`], for unit tests.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::BTreeMap;

    use super::{Cmd, Output, Runner};

    /// Answers from a table of displayed command lines; records every call. A command not in
    /// the table gets `default`.
    #[derive(Default)]
    pub(crate) struct Recorder {
        pub(crate) answers: BTreeMap<String, Output>,
        pub(crate) default: Output,
        pub(crate) calls: Vec<String>,
    }

    impl Runner for Recorder {
        fn run(&mut self, cmd: &Cmd) -> anyhow::Result<Output> {
            let line = cmd.display();
            self.calls.push(line.clone());
            Ok(self
                .answers
                .get(&line)
                .cloned()
                .unwrap_or_else(|| self.default.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn output_goes_to_the_log_and_out_in_order() {
        let cmd = Cmd::new("sh").args(["-c", "echo one; echo two >&2; echo three; exit 3"]);
        let (mut log, mut out) = (Vec::new(), Vec::new());
        let ok = run_teed(&cmd, &mut log, &mut out).unwrap();
        assert!(!ok);
        assert_eq!(String::from_utf8(log).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(String::from_utf8(out).unwrap(), "one\ntwo\nthree\n");
    }

    #[test]
    fn a_missing_engine_is_one_error() {
        let err = run_teed(
            &Cmd::new("/nonexistent/podman"),
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
    fn the_runner_captures_both_streams_and_feeds_the_input() {
        let cmd = Cmd::new("sh")
            .args(["-c", "tr a-z A-Z; echo oops >&2; exit 2"])
            .input(b"abc\n");
        let output = ProcessRunner.run(&cmd).unwrap();
        assert_eq!(
            output,
            Output {
                success: false,
                stdout: b"ABC\n".to_vec(),
                stderr: "oops\n".into(),
            }
        );
        let err = ProcessRunner
            .run(&Cmd::new("skopeo-nonexistent"))
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "failed to run `skopeo-nonexistent`: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn the_runner_runs_in_the_given_directory() {
        let output = ProcessRunner
            .run(&Cmd::new("pwd").current_dir(Path::new("/")))
            .unwrap();
        assert_eq!(output.text(), "/\n");
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        assert_eq!(
            display(&["podman", "build", "a b", "it's", "", "x=y"]),
            r"podman build 'a b' 'it'\''s' '' x=y"
        );
        assert_eq!(Cmd::from_argv(&["a", "$b"]).display(), "a '$b'");
    }

    #[test]
    fn the_fake_records_and_answers() {
        let mut fake = fake::Recorder::default();
        fake.answers.insert(
            "skopeo inspect x".into(),
            Output {
                success: true,
                ..Output::default()
            },
        );
        assert!(
            fake.run(&Cmd::from_argv(&["skopeo", "inspect", "x"]))
                .unwrap()
                .success
        );
        assert!(!fake.run(&Cmd::new("git")).unwrap().success);
        assert_eq!(fake.calls, ["skopeo inspect x", "git"]);
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
