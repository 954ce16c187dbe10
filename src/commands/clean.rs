//! `matriochka clean --all|--nuke`: removes matriochka's images and everything below the staging
//! root but `.gitkeep`, under the exclusive staging lock.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::app::project::Project;
use crate::app::project::{at, engine};
use crate::domain::layout;
use crate::error::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::infra::engine::argv;
use crate::infra::lock::Access;
use crate::plan::labels::FLAVOR_LABEL;

/// Entries of the staging root that clean keeps.
const KEPT: [&str; 1] = [".gitkeep"];

/// Whether `reference` (`repo:tag` as the engine lists it) is tagged in `registry`, compared in
/// the form both engines' listings agree on ([`argv::short_name`]).
pub(crate) fn in_registry(reference: &str, registry: &str) -> bool {
    let registry = crate::domain::reference::short_name(registry.trim_end_matches('/'));
    crate::domain::reference::short_name(reference)
        .strip_prefix(registry)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Removes the labelled images of `TAG_REGISTRY` or `REGISTRY` (default `ceph`), or of every registry, then
/// everything below the staging root but `.gitkeep`.
pub(crate) fn clean_all(
    project: &Project,
    every_registry: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    // `REGISTRY` counts as `TAG_REGISTRY`; both set and different is refused.
    let registry = match project.env.tag_registry()? {
        "" => "ceph",
        registry => registry,
    };
    let engine = engine(project)?;
    let staging_root = &project.config.staging_root;
    let _lock = project.lock(Access::Exclusive, err)?;
    let list = engine.args(argv::images_labelled(FLAVOR_LABEL));
    let (listed, text) = engine.capture(&list)?;
    if !listed {
        bail!("failed to list images: `{}` failed", engine.display(&list));
    }
    let mut references: Vec<&str> = text
        .lines()
        .filter(|reference| !reference.contains("<none>"))
        .filter(|reference| every_registry || in_registry(reference, registry))
        .collect();
    references.sort_unstable();
    references.dedup();
    let mut code = EXIT_SUCCESS;
    for reference in references {
        let rmi = engine.args(argv::rmi(reference));
        writeln!(out, "{}", engine.display(&rmi))?;
        if !engine.run_teed(&rmi, &mut std::io::sink(), out)? {
            code = EXIT_FAILURE;
        }
    }
    let dir = at(project.root(), staging_root);
    let entries =
        std::fs::read_dir(&dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        if KEPT.iter().any(|kept| entry.file_name() == *kept) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("failed to remove `{}`", path.display()))?;
    }
    Ok(code)
}

/// Removes the staging dir `staging_dir`, its stamps and its logs under the exclusive staging
/// lock, so no build reads a context while it goes (`make clean.<id>`); prints what it removes.
pub(crate) fn clean_flavor(
    project: &Project,
    staging_dir: &Path,
    dry_run: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let staging_root = &project.config.staging_root;
    let id = layout::flavor_id(staging_root, staging_dir)?;
    let paths = layout::flavor_paths(staging_root, staging_dir, &id);
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let line = format!("rm -rf {}", crate::infra::process::display(&shown));
    if dry_run {
        writeln!(out, "{line}")?;
        return Ok(EXIT_SUCCESS);
    }
    let _lock = project.lock(Access::Exclusive, err)?;
    writeln!(out, "{line}")?;
    for path in paths {
        let path = at(project.root(), &path);
        match std::fs::remove_dir_all(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(error).with_context(|| format!("failed to remove `{}`", path.display()))
            }
            _ => {}
        }
    }
    Ok(EXIT_SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_in_a_registry() {
        assert!(in_registry("ceph/daemon:v1", "ceph"));
        assert!(in_registry("localhost/ceph/daemon:v1", "ceph"));
        assert!(in_registry("quay.io/me/daemon:v1", "quay.io/me/"));
        assert!(!in_registry("cephx/daemon:v1", "ceph"));
        assert!(!in_registry("quay.io/ceph/daemon:v1", "ceph"));
        assert!(!in_registry("x'; touch PWNED; echo '/daemon:v1", "ceph"));
    }

    #[test]
    fn references_in_a_registry_as_docker_lists_them() {
        assert!(in_registry("ceph/daemon:v1", "docker.io/ceph"));
        assert!(in_registry(
            "localhost/mtest-1/daemon:v1",
            "localhost/mtest-1"
        ));
        assert!(in_registry("mtest-1/daemon:v1", "localhost/mtest-1/"));
        assert!(in_registry(
            "127.0.0.1:5000/e2e/daemon:v1",
            "127.0.0.1:5000/e2e"
        ));
        assert!(!in_registry(
            "127.0.0.1:5000/e2e/daemon:v1",
            "localhost/e2e"
        ));
        assert!(!in_registry("quay.io/ceph/daemon:v1", "docker.io/ceph"));
    }
}
