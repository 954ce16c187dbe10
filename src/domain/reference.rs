//! Reference: the one image-reference grammar (`[host[:port]/]path[:tag][@digest]`, as docker
//! reads it) and its normal forms: the repository, the last name component, the tag, and the
//! short form both engines' listings agree on.

use std::sync::LazyLock;

use regex::Regex;

static COMPONENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").unwrap());
static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?$")
        .unwrap()
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap());

/// `name` prefixed with `registry/`, as TAG_REGISTRY prefixes every tag; `name` alone when
/// `registry` is empty.
pub(crate) fn with_registry(registry: &str, name: String) -> String {
    if registry.is_empty() {
        name
    } else {
        format!("{registry}/{name}")
    }
}

/// Checks `[host[:port]/]path:tag`.
pub(crate) fn check_reference(reference: &str) -> Result<(), String> {
    let Some((name, tag)) = reference
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
    else {
        return Err("no `:tag`".into());
    };
    if !TAG.is_match(tag) {
        return Err(format!("bad tag `{tag}`"));
    }
    let components: Vec<&str> = name.split('/').collect();
    for (index, component) in components.iter().enumerate() {
        // As docker reads it: a first component is a registry when it looks like a host.
        let looks_like_host = component.contains(['.', ':']) || *component == "localhost";
        let host_ok =
            index == 0 && components.len() > 1 && looks_like_host && HOST.is_match(component);
        if !host_ok && !COMPONENT.is_match(component) {
            return Err(format!("bad name component `{component}`"));
        }
    }
    Ok(())
}

/// Whether `text` is a registry host, with an optional port (`quay.io`, `127.0.0.1:5000`).
pub(crate) fn is_host(text: &str) -> bool {
    HOST.is_match(text)
}

/// Whether `text` is a repository path below a registry: lowercase components joined by `/`.
pub(crate) fn is_repository_path(text: &str) -> bool {
    text.split('/')
        .all(|component| COMPONENT.is_match(component))
}

/// Whether `text` is a valid tag (at most 128 characters).
pub(crate) fn is_tag(text: &str) -> bool {
    TAG.is_match(text)
}

/// `host/repo:tag@sha256:…` → `host/repo`: the tag and digest dropped (a `:` in the host's port
/// is kept).
pub(crate) fn repository(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => reference,
    }
}

/// The tag of `repo:tag`, if it has one.
pub(crate) fn tag(reference: &str) -> Option<&str> {
    let reference = reference.split('@').next().unwrap_or(reference);
    reference
        .rsplit_once(':')
        .map(|(_, tag)| tag)
        .filter(|tag| !tag.contains('/'))
}

/// The last path component of the repository: `core` of `quay.io/ceph/core:v1@sha256:…`.
pub(crate) fn name(reference: &str) -> &str {
    let repo = repository(reference);
    repo.rsplit('/').next().unwrap_or(repo)
}

/// An image reference in the one form both engines' listings agree on: docker lists
/// `docker.io/ceph/x` as `ceph/x` and `docker.io/library/x` as `x`, podman lists a name without
/// registry as `localhost/ceph/x`; those prefixes are dropped.
pub(crate) fn short_name(reference: &str) -> &str {
    ["docker.io/library/", "docker.io/", "localhost/"]
        .iter()
        .find_map(|prefix| reference.strip_prefix(prefix))
        .unwrap_or(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert!(check_reference("ceph/daemon-base:main-squid-centos-stream9-x86_64").is_ok());
        assert!(check_reference("127.0.0.1:5000/test/daemon:v1").is_ok());
        assert!(check_reference("daemon:v1").is_ok());
        assert_eq!(check_reference("daemon").unwrap_err(), "no `:tag`");
        assert_eq!(
            check_reference("Ceph/daemon:v1").unwrap_err(),
            "bad name component `Ceph`"
        );
        assert_eq!(
            check_reference("ceph/daemon:-x").unwrap_err(),
            "bad tag `-x`"
        );
        assert_eq!(
            check_reference("127.0.0.1:5000/daemon").unwrap_err(),
            "no `:tag`"
        );
    }

    #[test]
    fn short_names_as_both_engines_list_them() {
        assert_eq!(short_name("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(short_name("docker.io/ceph/daemon:v1"), "ceph/daemon:v1");
        assert_eq!(short_name("localhost/ceph/daemon:v1"), "ceph/daemon:v1");
        assert_eq!(short_name("ceph/daemon:v1"), "ceph/daemon:v1");
        assert_eq!(
            short_name("quay.io/ceph/daemon:v1"),
            "quay.io/ceph/daemon:v1"
        );
        assert_eq!(short_name("localhost:5000/x:1"), "localhost:5000/x:1");
    }

    #[test]
    fn repositories_names_and_tags() {
        assert_eq!(repository("quay.io/ceph/core:v1"), "quay.io/ceph/core");
        assert_eq!(
            repository("localhost:5000/a/core@sha256:00"),
            "localhost:5000/a/core"
        );
        assert_eq!(repository("registry:5000/core"), "registry:5000/core");
        assert_eq!(
            repository("registry:5000/core:v1@sha256:00"),
            "registry:5000/core"
        );
        assert_eq!(name("quay.io/ceph/core:v1"), "core");
        assert_eq!(name("core"), "core");
        assert_eq!(name("localhost:5000/a/core@sha256:00"), "core");
        assert_eq!(name("registry:5000/core:v1"), "core");
        assert_eq!(tag("registry:5000/core:v1"), Some("v1"));
        assert_eq!(tag("registry:5000/core"), None);
        assert_eq!(tag("core:v1@sha256:00"), Some("v1"));
    }
}
