//! Env names: every environment variable matriochka reads, in one list, each with what it does.
//! The environment is captured once ([`crate::domain::vars::Env`]) and read only through these
//! names (and the per-image `<IMAGE>_TAG` and `layout.env` names a configuration declares);
//! `tests/architecture.rs` fails on a name written as a literal elsewhere.

pub(crate) const FLAVORS: &str = "FLAVORS";
pub(crate) const IMAGES: &str = "IMAGES";
pub(crate) const RELEASE: &str = "RELEASE";
pub(crate) const TAG_REGISTRY: &str = "TAG_REGISTRY";
pub(crate) const REGISTRY: &str = "REGISTRY";
pub(crate) const CONTAINER_ENGINE: &str = "CONTAINER_ENGINE";
pub(crate) const PULL: &str = "PULL";
pub(crate) const FORCE: &str = "FORCE";
pub(crate) const ARCHES: &str = "ARCHES";
pub(crate) const REUSE: &str = "REUSE";
pub(crate) const CACHE_REPO: &str = "CACHE_REPO";
pub(crate) const SQUASH: &str = "SQUASH";
pub(crate) const BUILD_ARGS: &str = "BUILD_ARGS";
pub(crate) const PUSH_ARGS: &str = "PUSH_ARGS";
pub(crate) const PUSH_RETRIES: &str = "PUSH_RETRIES";
pub(crate) const HEADER: &str = "HEADER";
pub(crate) const FOOTER: &str = "FOOTER";
pub(crate) const BAKE_CACHE: &str = "BAKE_CACHE";
pub(crate) const PRUNE_HOURS: &str = "PRUNE_HOURS";
pub(crate) const PRUNE_KEEP: &str = "PRUNE_KEEP";
pub(crate) const PRUNE_CURRENT: &str = "PRUNE_CURRENT";
pub(crate) const PRUNE_DRY: &str = "PRUNE_DRY";
pub(crate) const NO_WAIT: &str = "MATRIOCHKA_NO_WAIT";
pub(crate) const RUN: &str = "MATRIOCHKA_RUN";
pub(crate) const BINFMT_DIR: &str = "MATRIOCHKA_BINFMT_DIR";
pub(crate) const SHELLCHECK: &str = "SHELLCHECK";
pub(crate) const CI: &str = "CI";
pub(crate) const MAKE_TARGET: &str = "MATRIOCHKA_TARGET";
pub(crate) const REGISTRIES_CONF: &str = "CONTAINERS_REGISTRIES_CONF";

/// Every name above, with what it does (README, "Options"; `matriochka show env`).
pub(crate) const ALL: &[(&str, &str)] = &[
    (FLAVORS, "the flavors to stage and build when none is given"),
    (
        IMAGES,
        "build only these images of each flavor (with their parents)",
    ),
    (
        RELEASE,
        "the release part of the tags (default: the git branch)",
    ),
    (TAG_REGISTRY, "the registry/namespace in front of every tag"),
    (REGISTRY, "a synonym of TAG_REGISTRY"),
    (CONTAINER_ENGINE, "docker or podman, a path, with options"),
    (PULL, "1: always pull bases; 0: never; else when missing"),
    (
        FORCE,
        "1: rebuild images even when up to date; manifest: join a run of fewer arches",
    ),
    (
        ARCHES,
        "the arches of build.all/push.all, and of each manifest list",
    ),
    (REUSE, "1: pull images the registry holds by content id"),
    (
        CACHE_REPO,
        "where content tags are pushed and REUSE looks (default: each image's repository)",
    ),
    (SQUASH, "1: one layer for what each build adds"),
    (
        BUILD_ARGS,
        "extra arguments to every build, e.g. \"--isolation chroot\"",
    ),
    (PUSH_ARGS, "extra arguments to every push and registry read"),
    (PUSH_RETRIES, "retries of a failed push (default 3)"),
    (
        HEADER,
        "a file of lines added after the FROM of outside bases",
    ),
    (FOOTER, "a file of lines added to every Dockerfile"),
    (
        BAKE_CACHE,
        "the registry repository of the bake layer cache",
    ),
    (PRUNE_HOURS, "prune: age in hours (48)"),
    (PRUNE_KEEP, "prune: most recent images kept (24)"),
    (PRUNE_CURRENT, "1: prune the current flavors' images too"),
    (PRUNE_DRY, "1: prune lists what would go"),
    (
        NO_WAIT,
        "1: fail at once when another run holds the staging root",
    ),
    (
        RUN,
        "the run id the report groups entries under (set by make)",
    ),
    (
        BINFMT_DIR,
        "where binfmt_misc is mounted (default /proc/sys/fs/binfmt_misc)",
    ),
    (SHELLCHECK, "the shellcheck program `check` runs"),
    (CI, "set: a missing checker is an error, not a note"),
    (
        MAKE_TARGET,
        "the per-image make target a run is (`build.<id>.<image>`; set by make)",
    ),
    (REGISTRIES_CONF, "the registries.conf that skopeo reads too"),
];

/// Whether `name` is one matriochka reads (the list above).
#[cfg(test)]
fn is_known(name: &str) -> bool {
    ALL.iter().any(|(known, _)| *known == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_once() {
        let mut names: Vec<&str> = ALL.iter().map(|(name, _)| *name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(is_known("PULL") && !is_known("PULLS"));
    }

    /// The README's options name every variable of the list.
    #[test]
    fn the_readme_names_every_variable() {
        let readme = include_str!("../../README.md");
        let missing: Vec<&str> = ALL
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                !readme.contains(&format!("`{name}")) && !readme.contains(&format!("{name}="))
            })
            .collect();
        assert!(missing.is_empty(), "README does not name {missing:?}");
    }
}
