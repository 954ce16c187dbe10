//! `matriochka check [FLAVOR...]`: stages flavors in memory (every buildable flavor by default)
//! and checks what a build would get, for any project: no `__TOKEN__` left, a `FROM` in every
//! Dockerfile, image references that resolve within the flavor, shell scripts that `bash -n`
//! (and shellcheck, when installed) accept. Nothing is written.
//!
//! One line per problem on stdout, `<staged path>[:line]: <problem> (from `<template>`)`, then a
//! summary line; exit code 1 when there is a problem.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use std::sync::LazyLock;

use anyhow::Result;
use regex::bytes::Regex;

use crate::app::project::Project;
use crate::domain::config::image_variable;
use crate::domain::dockerfile;
use crate::domain::env_names;
use crate::error::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::infra::process::{Cmd, ProcessRunner, Runner};
use crate::stage;
use crate::stage::model::{Prepared, StagedFlavor};
use crate::stage::render::is_fragment_name;
use crate::stage::tree::FsTree;

/// A token render replaces: one left in a staged file is a defect.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"__ENV_\[[A-Za-z_][A-Za-z0-9_]*\]__|__[A-Z0-9_]*[A-Z0-9][A-Z0-9_]*__").unwrap()
});
/// The first line of a shell script.
static SHEBANG: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^#!\s*(/usr)?/bin/(env\s+)?(ba)?sh\b").unwrap());

/// Checks the flavors given, else every buildable and test flavor.
pub(crate) fn command(project: &Project, args: &[String], out: &mut dyn Write) -> Result<u8> {
    let texts = if args.is_empty() {
        let mut texts = project.buildable_texts()?;
        texts.extend(project.test_texts()?);
        texts
    } else {
        project.requested_texts(args)?
    };
    crate::app::groups::check_tags(project, &texts)?;
    let prepared = project.prepare(&texts)?;
    let tree = FsTree::of(&project.config);
    let mut checker = Checker::new(project)?;
    let mut failed_flavors = 0;
    for p in &prepared {
        let before = checker.problems.len();
        match stage::compute(&tree, &project.config, p) {
            Ok(staged) => checker.flavor(p, &staged),
            Err(err) => checker
                .problems
                .push(format!("failed to stage `{}`: {err:#}", p.flavor.text)),
        }
        if checker.problems.len() > before {
            failed_flavors += 1;
        }
    }
    if args.is_empty() {
        // A layer pattern that no buildable flavor uses is a typo or a level nobody fills: `stage`
        // accepts it (a level kept for later would otherwise need a placeholder file, which every
        // image would stage), the check does not.
        let vars: Vec<&crate::domain::vars::Vars> = prepared.iter().map(|p| &p.vars).collect();
        for pattern in crate::stage::overlay::unmatched_patterns(&project.config, &vars, &tree)? {
            checker.problems.push(format!(
                "`{}`: layer pattern `{pattern}` matches no directory below `{}` for any buildable flavor: fix it or remove it",
                project.config.display_path(),
                project.config.templates.display()
            ));
        }
    }
    for problem in &checker.problems {
        writeln!(out, "{problem}")?;
    }
    let tools = if checker.shellcheck.is_some() {
        "bash -n, shellcheck"
    } else {
        "bash -n; shellcheck is not installed"
    };
    if checker.problems.is_empty() {
        writeln!(
            out,
            "checked {} ({tools}): no problem",
            counted(prepared.len(), "flavor")
        )?;
        Ok(EXIT_SUCCESS)
    } else {
        writeln!(
            out,
            "checked {} ({tools}): {} in {}",
            counted(prepared.len(), "flavor"),
            counted(checker.problems.len(), "problem"),
            counted(failed_flavors, "flavor")
        )?;
        Ok(EXIT_FAILURE)
    }
}

struct Checker {
    /// The shellcheck program, when installed.
    shellcheck: Option<String>,
    /// Scripts already checked, by content: the same script staged in many flavors is checked once.
    scripts_seen: HashSet<Vec<u8>>,
    problems: Vec<String>,
}

impl Checker {
    fn new(project: &Project) -> Result<Checker> {
        let program = project
            .env
            .get_nonempty(env_names::SHELLCHECK)
            .unwrap_or("shellcheck")
            .to_string();
        let installed = ProcessRunner
            .run(&Cmd::new(&program).arg("--version"))
            .is_ok_and(|output| output.success);
        if !installed && project.env.get_nonempty(env_names::CI).is_some() {
            anyhow::bail!("`{program}` is not installed and CI is set: install shellcheck");
        }
        Ok(Checker {
            shellcheck: installed.then_some(program),
            scripts_seen: HashSet::new(),
            problems: Vec::new(),
        })
    }

    fn flavor(&mut self, prepared: &Prepared, staged: &StagedFlavor) {
        let tags: BTreeMap<&str, &str> = staged
            .images
            .iter()
            .map(|image| (image.name.as_str(), image.tag.as_str()))
            .collect();
        for image in &staged.images {
            let dir = prepared.vars.staging_dir().join(&image.name);
            for (path, file) in &image.files {
                let shown = dir.join(path);
                let from = file.source.as_path();
                let name = path.rsplit('/').next().unwrap_or(path);
                if !is_fragment_name(name) {
                    self.tokens(&shown, from, &file.bytes);
                }
                if path == dockerfile::DOCKERFILE {
                    let text = String::from_utf8_lossy(&file.bytes);
                    let args = prepared.vars.build_args.get(&image.name);
                    self.dockerfile(&shown, from, &text, &tags, args);
                }
                let is_script = path.ends_with(".sh")
                    || std::str::from_utf8(&file.bytes)
                        .is_ok_and(|text| SHEBANG.is_match(text.lines().next().unwrap_or("")));
                if is_script && self.scripts_seen.insert(file.bytes.clone()) {
                    self.script(&shown, from, &file.bytes);
                }
            }
        }
    }

    fn push(&mut self, shown: &Path, line: Option<usize>, problem: &str, from: &Path) {
        let at = match line {
            Some(line) => format!("{}:{line}", shown.display()),
            None => shown.display().to_string(),
        };
        self.problems
            .push(format!("{at}: {problem} (from `{}`)", from.display()));
    }

    fn tokens(&mut self, shown: &Path, from: &Path, bytes: &[u8]) {
        for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
            for token in TOKEN.find_iter(line) {
                let token = String::from_utf8_lossy(token.as_bytes()).into_owned();
                self.push(
                    shown,
                    Some(index + 1),
                    &format!("`{token}` is left unreplaced"),
                    from,
                );
            }
        }
    }

    fn dockerfile(
        &mut self,
        shown: &Path,
        from: &Path,
        text: &str,
        tags: &BTreeMap<&str, &str>,
        build_args: Option<&BTreeMap<String, String>>,
    ) {
        if !dockerfile::has_from(text) {
            self.push(shown, None, "no `FROM` instruction", from);
        }
        let refs = dockerfile::references(text, build_args);
        for (written, line, variable) in refs.unresolved {
            self.push(
                shown,
                Some(line),
                &format!(
                    "`FROM {written}` cannot be resolved: `{variable}` is no global `ARG` with a \
                     default or a build argument of the image, so its parent is not known"
                ),
                from,
            );
        }
        for (reference, line) in refs.images {
            if tags.values().any(|tag| *tag == reference) {
                continue;
            }
            let name = crate::domain::reference::name(&reference);
            if let Some(tag) = tags.get(name) {
                self.push(
                    shown,
                    Some(line),
                    &format!(
                        "`{reference}` names image `{name}`, which this flavor tags `{tag}`: \
                         use `__ENV_[{}]__`",
                        image_variable(name)
                    ),
                    from,
                );
            }
        }
    }

    fn script(&mut self, shown: &Path, from: &Path, bytes: &[u8]) {
        match run_on("bash", &["-n"], bytes) {
            Ok((true, _)) => {}
            Ok((false, output)) => {
                let message = output
                    .lines()
                    .map(|line| line.strip_prefix("bash: ").unwrap_or(line))
                    .collect::<Vec<_>>()
                    .join("; ");
                self.push(shown, None, &format!("bash -n: {message}"), from);
                // shellcheck would only say the same again, in four lines.
                return;
            }
            Err(err) => self.push(shown, None, &format!("{err:#}"), from),
        }
        let Some(program) = self.shellcheck.clone() else {
            return;
        };
        let text = String::from_utf8_lossy(bytes);
        let mut args = vec!["--format=gcc"];
        if !SHEBANG.is_match(text.lines().next().unwrap_or("")) {
            args.push("--shell=bash");
        }
        args.push("-");
        match run_on(&program, &args, bytes) {
            Ok((true, _)) => {}
            Ok((false, output)) => {
                for line in output.lines() {
                    // `-:3:5: warning: message [SC2086]`
                    let Some(rest) = line.strip_prefix("-:") else {
                        continue;
                    };
                    let mut parts = rest.splitn(3, ':');
                    let (Some(row), Some(_column), Some(message)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    let row = row.parse().ok();
                    self.push(shown, row, &format!("shellcheck:{message}"), from);
                }
            }
            Err(err) => self.push(shown, None, &format!("{err:#}"), from),
        }
    }
}

/// Runs `program args` with `input` on stdin; whether it succeeded, and its stdout and stderr.
fn run_on(program: &str, args: &[&str], input: &[u8]) -> Result<(bool, String)> {
    let output = ProcessRunner.run(&Cmd::new(program).args(args.iter().copied()).input(input))?;
    let mut text = output.text();
    text.push_str(&output.stderr);
    Ok((output.success, text))
}

/// `1 flavor`, `3 flavors`: a count and its noun, in the singular for one.
fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_shebangs() {
        let found: Vec<&[u8]> = TOKEN
            .find_iter(b"a __X__ __ENV_[Y]__ __init__ ____")
            .map(|m| m.as_bytes())
            .collect();
        assert_eq!(found, [&b"__X__"[..], &b"__ENV_[Y]__"[..]]);
        for line in [
            "#!/bin/bash",
            "#!/usr/bin/env bash",
            "#! /bin/sh -e",
            "#!/usr/bin/sh",
        ] {
            assert!(SHEBANG.is_match(line), "{line}");
        }
        for line in ["#!/usr/bin/python3", "#!/bin/bashful", "# /bin/sh"] {
            assert!(!SHEBANG.is_match(line), "{line}");
        }
    }
}
