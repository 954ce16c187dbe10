//! Changes: what a branch changes, read from git: the branch compared with, the merge-base, and
//! the paths changed from there to the working tree.
//!
//! Revisions from the user never reach git as options; only `--fetch` touches the network.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::infra::process::{Cmd, Output, ProcessRunner, Runner};

use anyhow::{bail, Context as _, Result};

/// The branches compared with when `--vs` is not given, in order of preference.
pub(crate) const DEFAULT_REFS: &[&str] = &["origin/main", "origin/master", "main", "master"];

/// The branch compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// As the user gave it, or the default that was found.
    pub(crate) name: String,
    pub(crate) commit: String,
}

/// The git repository holding the project root.
pub(crate) struct Repo {
    root: PathBuf,
    /// The root's path inside the repository, with a trailing `/` (empty at the top).
    pub(crate) prefix: String,
}

impl Repo {
    /// The repository holding `root`; an error outside one, or before its first commit.
    pub(crate) fn open(root: &Path) -> Result<Repo> {
        let mut repo = Repo {
            root: root.to_path_buf(),
            prefix: String::new(),
        };
        let output = repo.output(&["rev-parse", "--show-prefix"])?;
        if !output.success {
            bail!(
                "failed to read the git history of `{}`: it is not in a git repository",
                root.display()
            );
        }
        repo.prefix = String::from_utf8_lossy(&output.stdout)
            .trim_end_matches('\n')
            .to_string();
        if repo.resolve("HEAD")?.is_none() {
            bail!("failed to resolve `HEAD`: the repository has no commit yet");
        }
        Ok(repo)
    }

    fn output(&self, args: &[&str]) -> Result<Output> {
        let cmd = Cmd::new("git")
            .arg("-C")
            .arg(&self.root)
            .arg("--no-optional-locks")
            .args(args.iter().copied());
        ProcessRunner
            .run(&cmd)
            .with_context(|| format!("failed to run `git {}`", args[0]))
    }

    /// Runs git; a failure is an error with git's message.
    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let output = self.output(args)?;
        if !output.success {
            bail!(
                "failed to run `git {}`: {}",
                args.join(" "),
                output.stderr.trim()
            );
        }
        Ok(output.stdout)
    }

    /// The commit `rev` names, if any.
    fn resolve(&self, rev: &str) -> Result<Option<String>> {
        let spec = format!("{rev}^{{commit}}");
        let output = self.output(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])?;
        Ok(output
            .success
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }

    /// The branch to compare with: `vs`, else the first of [`DEFAULT_REFS`] that exists (said
    /// on `err`); fetched first when asked.
    pub(crate) fn target(
        &self,
        vs: Option<&str>,
        fetch: bool,
        err: &mut dyn Write,
    ) -> Result<Target> {
        if let Some(name) = vs {
            check_rev(name)?;
            if fetch {
                self.fetch(name)?;
            }
            return match self.resolve(name)? {
                Some(commit) => Ok(Target {
                    name: name.to_string(),
                    commit,
                }),
                None => bail!("failed to resolve `{name}`: no branch, tag or commit has that name"),
            };
        }
        if fetch {
            // `origin/main`, else `origin/master`; the first error is the telling one.
            if let Err(error) = self.fetch(DEFAULT_REFS[0]) {
                self.fetch(DEFAULT_REFS[1]).map_err(|_| error)?;
            }
        }
        for name in DEFAULT_REFS {
            if let Some(commit) = self.resolve(name)? {
                writeln!(err, "note: comparing with `{name}`")?;
                return Ok(Target {
                    name: name.to_string(),
                    commit,
                });
            }
        }
        bail!(
            "failed to find a branch to compare with: none of {} exists; pass `--vs REF`",
            itertools::join(DEFAULT_REFS.iter().map(|name| format!("`{name}`")), ", ")
        )
    }

    /// Fetches `<remote>/<branch>` into its remote-tracking branch.
    fn fetch(&self, name: &str) -> Result<()> {
        let remotes = self.run(&["remote"])?;
        let remotes = String::from_utf8_lossy(&remotes);
        let found = remotes
            .lines()
            .filter_map(|remote| {
                let branch = name.strip_prefix(remote)?.strip_prefix('/')?;
                Some((remote, branch))
            })
            .max_by_key(|(remote, _)| remote.len());
        let Some((remote, branch)) = found else {
            let remote = name.split('/').next().unwrap_or(name);
            bail!(
                "failed to fetch `{name}`: no remote is named `{remote}`; `--fetch` needs a \
                 remote branch such as `origin/main`"
            );
        };
        let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
        let output = self.output(&[
            "fetch",
            "--quiet",
            "--no-tags",
            "--end-of-options",
            remote,
            &refspec,
        ])?;
        if !output.success {
            bail!("failed to fetch `{name}`: {}", output.stderr.trim());
        }
        Ok(())
    }

    /// The commit where HEAD forked from the target.
    pub(crate) fn merge_base(&self, target: &Target) -> Result<String> {
        let output = self.output(&["merge-base", &target.commit, "HEAD"])?;
        if output.success {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let shallow = self.run(&["rev-parse", "--is-shallow-repository"])?;
        if String::from_utf8_lossy(&shallow).trim() == "true" {
            bail!(
                "failed to find the merge-base of `{}` and `HEAD`: this clone is shallow and does \
                 not reach it; deepen it (`git fetch --deepen=100`) or fetch the whole history \
                 (`git fetch --unshallow`)",
                target.name
            );
        }
        bail!(
            "failed to find the merge-base of `{}` and `HEAD`: they have no common history",
            target.name
        )
    }

    /// The text of `rel` (relative to the root) at `rev`; `None` when it is not there.
    pub(crate) fn text_at(&self, rev: &str, rel: &Path) -> Result<Option<String>> {
        let spec = format!("{rev}:{}{}", self.prefix, rel.display());
        let output = self.output(&["show", "--end-of-options", &spec])?;
        Ok(output
            .success
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// Paths, relative to the root, changed from `base` to HEAD, joined with `worktree`: the
    /// working tree's changes as [`GitFacts`](crate::domain::git_facts::GitFacts) read them (staged, unstaged,
    /// untracked and not ignored; both sides of a rename).
    pub(crate) fn changes(
        &self,
        base: &str,
        worktree: &BTreeSet<PathBuf>,
    ) -> Result<BTreeSet<PathBuf>> {
        let committed = self.run(&[
            "diff",
            "--name-only",
            "--no-renames",
            "--no-relative",
            "-z",
            base,
            "HEAD",
            "--",
        ])?;
        let committed = String::from_utf8_lossy(&committed);
        let mut paths = worktree.clone();
        for path in committed.split('\0').filter(|p| !p.is_empty()) {
            if let Some(rel) = path.strip_prefix(&self.prefix) {
                paths.insert(PathBuf::from(rel));
            }
        }
        Ok(paths)
    }
}

/// A revision given by the user is never passed where git could read it as an option.
fn check_rev(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("invalid `--vs` ``: name a branch, tag or commit");
    }
    if name.starts_with('-') {
        bail!("invalid `--vs` `{name}`: a branch, tag or commit does not start with `-`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_that_look_like_options_are_rejected() {
        assert!(check_rev("origin/main").is_ok());
        assert_eq!(
            check_rev("--output=x").unwrap_err().to_string(),
            "invalid `--vs` `--output=x`: a branch, tag or commit does not start with `-`"
        );
        assert_eq!(
            check_rev("").unwrap_err().to_string(),
            "invalid `--vs` ``: name a branch, tag or commit"
        );
    }
}
