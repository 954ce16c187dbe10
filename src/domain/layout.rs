//! Layout: every name under the staging root, in one place. A flavor's staging dir holds one
//! context directory per image, `files-sources`, `flavor.mk` and `.matriochka/` (context digests,
//! build plans, the fast path's manifest); the staging root holds `build.mk`, the report, and
//! the bookkeeping directories below, none of which is ever a build context.

use std::path::{Path, PathBuf};

/// In each staging dir: the provenance of every staged file.
pub(crate) const FILES_SOURCES: &str = "files-sources";
/// In each staging dir: context digests, build plans and the fast path's manifest.
pub(crate) const CONTEXT_DIR: &str = ".matriochka";
/// In each staging dir: the fast path's manifest.
pub(crate) const MANIFEST: &str = ".matriochka/manifest";
/// In each staging dir: the flavor's Makefile fragment.
pub(crate) const FLAVOR_MK: &str = "flavor.mk";
/// In the staging root: the entry fragment, which includes every `flavor.mk`.
pub(crate) const BUILD_MK: &str = "build.mk";
/// In the staging root: the last run's report.
pub(crate) const REPORT_FILE: &str = "report.json";
/// In the staging root: each run's report entries, `<run>/…`.
pub(crate) const REPORT_DIR: &str = ".report";
/// In the staging root: when each image was last used (for `prune`).
pub(crate) const USES_DIR: &str = ".uses";
/// In the staging root: the answers of the `REUSE=1` lookup step.
pub(crate) const REUSE_DIR: &str = ".reuse";
/// In the staging root: a run's temporary files, emptied by each run.
pub(crate) const TEMP_DIR: &str = ".tmp";
/// In the staging root: the bake file.
pub(crate) const BAKE_FILE: &str = "docker-bake.json";
/// In the staging root: the stamps of built images, `<id>/<image>`.
pub(crate) const STAMPS_DIR: &str = ".stamps";
/// In the staging root: the logs of image actions, `<id>/<image>[.<action>].log`.
pub(crate) const LOGS_DIR: &str = "logs";

/// The stamp of a built image: `<staging root>/.stamps/<id>/<image>`.
pub(crate) fn stamp(staging_root: &Path, id: &str, image: &str) -> PathBuf {
    staging_root.join(STAMPS_DIR).join(id).join(image)
}

/// The flavor id of `dir` (its base name); fails unless `dir` is a relative path strictly below
/// `staging_root`.
pub(crate) fn flavor_id(staging_root: &Path, dir: &Path) -> anyhow::Result<String> {
    let id = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !dir.starts_with(staging_root) || dir == staging_root || dir.is_absolute() || id.is_empty() {
        anyhow::bail!(
            "staging dir `{}` is not a directory below the staging root `{}`",
            dir.display(),
            staging_root.display()
        );
    }
    Ok(id)
}

/// What a flavor's clean removes: its staging dir, its stamps and its logs.
pub(crate) fn flavor_paths(staging_root: &Path, dir: &Path, id: &str) -> [PathBuf; 3] {
    [
        dir.to_path_buf(),
        staging_root.join(STAMPS_DIR).join(id),
        staging_root.join(LOGS_DIR).join(id),
    ]
}

/// `<staging root>/logs/<id>/<image>.log` for builds, `<image>.<action>.log` for other actions.
pub(crate) fn log(staging_root: &Path, id: &str, image: &str, action: &str) -> PathBuf {
    let name = match action {
        "build" => format!("{image}.log"),
        _ => format!("{image}.{action}.log"),
    };
    staging_root.join(LOGS_DIR).join(id).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_logs() {
        let root = Path::new("staging");
        assert_eq!(
            stamp(root, "i", "core"),
            Path::new("staging/.stamps/i/core")
        );
        assert_eq!(
            log(root, "i", "core", "build"),
            Path::new("staging/logs/i/core.log")
        );
        assert_eq!(
            log(root, "i", "core", "push"),
            Path::new("staging/logs/i/core.push.log")
        );
        assert!(MANIFEST.starts_with(CONTEXT_DIR));
    }

    #[test]
    fn flavor_ids() {
        let root = Path::new("staging");
        let id = |dir: &str| flavor_id(root, Path::new(dir)).ok();
        assert_eq!(id("staging/squid-x").as_deref(), Some("squid-x"));
        assert_eq!(id("staging"), None);
        assert_eq!(id("other/squid-x"), None);
        assert_eq!(id("/staging/squid-x"), None);
        assert_eq!(
            flavor_paths(root, Path::new("staging/i"), "i"),
            [
                PathBuf::from("staging/i"),
                PathBuf::from("staging/.stamps/i"),
                PathBuf::from("staging/logs/i")
            ]
        );
    }
}
