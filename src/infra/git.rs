//! Git facts about the project root: repository, branch, commit and which files are modified.
//!
//! Read once per run; outside a git repository every fact takes its documented "Unknown" value.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub(crate) use crate::domain::git_facts::GitFacts;
use crate::domain::version::highest_version;
use crate::infra::process::{Cmd, ProcessRunner, Runner};

/// Reads the facts of the repository holding `root`.
pub(crate) fn read(root: &Path) -> GitFacts {
    let git = |args: &[&str]| -> Option<String> {
        let cmd = Cmd::new("git")
            .arg("-C")
            .arg(root)
            .args(args.iter().copied());
        let output = ProcessRunner.run(&cmd).ok()?;
        output.success.then(|| output.text())
    };
    // Independent commands, run at the same time: a run waits for the slowest only.
    let [prefix, repo, branch, commit, commit_date, status] = std::thread::scope(|scope| {
        let commands: [&[&str]; 6] = [
            &["rev-parse", "--show-prefix"],
            &["ls-remote", "--get-url", "origin"],
            &["rev-parse", "--abbrev-ref", "HEAD"],
            &["rev-parse", "--verify", "-q", "HEAD"],
            &["log", "-1", "--format=%cI", "HEAD"],
            &["status", "--porcelain", "-z", "--untracked-files=all"],
        ];
        let running = commands.map(|args| scope.spawn(move || git(args)));
        running.map(|thread| thread.join().expect("git command thread"))
    });
    let Some(prefix) = prefix else {
        return GitFacts::unknown();
    };
    let prefix = prefix.trim_end_matches('\n').to_string();
    let unknown = GitFacts::unknown();
    let line = |output: Option<String>| {
        output
            .map(|out| out.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let repo = line(repo)
        .filter(|url| url != "origin")
        .map(|url| without_credentials(&url))
        .unwrap_or(unknown.repo);
    let branch = line(branch).unwrap_or(unknown.branch);
    // `--abbrev-ref` says `HEAD` when no branch is checked out: CI building a tag.
    let head_name = if branch == "HEAD" {
        line(git(&["tag", "--points-at", "HEAD"]))
            .and_then(|tags| highest_version(tags.lines()).map(str::to_string))
            .or_else(|| line(git(&["rev-parse", "--short", "HEAD"])))
            .unwrap_or_else(|| branch.clone())
    } else {
        branch.clone()
    };
    let commit = line(commit).unwrap_or(unknown.commit);
    let commit_date = line(commit_date).unwrap_or_default();
    let (clean, modified) = match status {
        Some(status) => (status.is_empty(), parse_status(&status, &prefix)),
        None => (false, BTreeSet::new()),
    };
    GitFacts {
        repo,
        branch,
        head_name,
        commit,
        commit_date,
        clean,
        modified,
    }
}

/// The URL without the user information of its authority (`https://user:token@host/x` →
/// `https://host/x`), so that no credential reaches GIT_REPO, a label, a plan or a log. A URL
/// without a scheme (`git@host:x`, a path) names no password and is kept.
pub(crate) fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Paths of `git status --porcelain -z`, relative to the directory whose prefix is `prefix`.
fn parse_status(status: &str, prefix: &str) -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    let mut entries = status.split('\0');
    while let Some(entry) = entries.next() {
        if entry.len() < 4 {
            continue;
        }
        let (code, path) = entry.split_at(3);
        let mut names = vec![path];
        if code.starts_with('R') || code.starts_with('C') {
            names.extend(entries.next());
        }
        for name in names {
            if let Some(rel) = name.strip_prefix(prefix) {
                paths.insert(PathBuf::from(rel));
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_paths_include_both_sides_of_a_rename() {
        let status = " M a/b\0?? new file\0R  to\0from\0D  gone\0";
        let paths: Vec<_> = parse_status(status, "").into_iter().collect();
        let expected: Vec<PathBuf> = ["a/b", "from", "gone", "new file", "to"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(paths, expected);
    }

    #[test]
    fn the_highest_tag_by_version() {
        fn highest<'a>(tags: &[&'a str]) -> Option<&'a str> {
            highest_version(tags.iter().copied())
        }
        assert_eq!(highest(&["v19.2.9", "v19.2.10"]), Some("v19.2.10"));
        assert_eq!(highest(&["v19.2.10", "v19.2.9"]), Some("v19.2.10"));
        assert_eq!(highest(&["v19.2.0-rc1", "v19.2.0"]), Some("v19.2.0"));
        assert_eq!(
            highest(&["v19.2.0-rc2", "v19.2.0-rc10"]),
            Some("v19.2.0-rc10")
        );
        assert_eq!(highest(&["latest", "v1"]), Some("v1"));
        assert_eq!(highest(&["v20.1.0", "v19.20.0"]), Some("v20.1.0"));
        assert_eq!(highest(&["b", "a"]), Some("b"));
        assert_eq!(highest(&["1.2.", "1.2"]), Some("1.2"));
        assert_eq!(highest(&[]), None);
    }

    #[test]
    fn credentials_are_stripped_from_the_origin_url() {
        let cases = [
            (
                "https://user:ghp_token@github.com/ceph/ceph-container.git",
                "https://github.com/ceph/ceph-container.git",
            ),
            ("https://ghp_token@github.com/a/b", "https://github.com/a/b"),
            ("http://u:p:q@host:8080", "http://host:8080"),
            ("ssh://git:pw@host/a@b", "ssh://host/a@b"),
            ("https://github.com/a/b@c", "https://github.com/a/b@c"),
            (
                "git@github.com:ceph/ceph.git",
                "git@github.com:ceph/ceph.git",
            ),
            ("/srv/git/project", "/srv/git/project"),
        ];
        for (url, expected) in cases {
            assert_eq!(without_credentials(url), expected, "{url}");
        }
    }

    #[test]
    fn status_paths_are_made_relative() {
        let status = " M sub/templates/a\0?? sub/b\0R  sub/new\0sub/old\0 M other/c\0";
        let paths: Vec<_> = parse_status(status, "sub/").into_iter().collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("b"),
                "new".into(),
                "old".into(),
                "templates/a".into()
            ]
        );
    }
}
