//! Git facts: what the variables and `files-sources` know of the repository (read by
//! [`crate::infra::git`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// What the variables and `files-sources` need to know from git.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GitFacts {
    pub(crate) repo: String,
    pub(crate) branch: String,
    /// What `RELEASE` is taken from: the branch; on a detached HEAD the tag pointing at it (the
    /// highest by version when several), else the short commit.
    pub(crate) head_name: String,
    pub(crate) commit: String,
    /// The commit's date (ISO 8601), empty outside git.
    pub(crate) commit_date: String,
    pub(crate) clean: bool,
    /// Paths relative to the project root that differ from HEAD (staged, unstaged, untracked).
    pub(crate) modified: BTreeSet<PathBuf>,
}

impl GitFacts {
    /// The values used outside a git repository.
    pub(crate) fn unknown() -> GitFacts {
        GitFacts {
            repo: "Unknown repo".into(),
            branch: "Unknown branch".into(),
            head_name: "Unknown branch".into(),
            commit: "Unknown commit hash".into(),
            commit_date: String::new(),
            clean: false,
            modified: BTreeSet::new(),
        }
    }
}
