//! Variables: the per-flavor name → value map that patterns, fragments and templates read.
//!
//! Computed values always win over the environment; other environment variables are visible only
//! when they match a `layout.env` glob.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{bail, Result};
use regex::Regex;

use crate::domain::config::{image_tag_override, image_variable, Config};
use crate::domain::env_names;
use crate::domain::flavor::{Flavor, ShortFormDefaults};
use crate::domain::git_facts::GitFacts;
use crate::domain::reference::{check_reference, with_registry};

/// A snapshot of the environment, taken once per run (tests build their own).
#[derive(Clone, Debug, Default)]
pub(crate) struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment; variables whose name or value is not UTF-8 are left out.
    pub(crate) fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Env { vars }
    }

    /// Sets a variable, as a command-line option that stands for one does (`stage --header`).
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_string(), value.to_string());
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// A non-empty value.
    pub(crate) fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// The registry and namespace of image tags: `TAG_REGISTRY` (which may be empty), or its
    /// synonym `REGISTRY` when not empty, else `ceph`. Both set to different values is an error.
    pub(crate) fn tag_registry(&self) -> Result<&str> {
        match (self.get(env_names::TAG_REGISTRY), self.get_nonempty(env_names::REGISTRY)) {
            (Some(tag_registry), Some(registry)) if tag_registry != registry => bail!(
                "`REGISTRY` `{registry}` and `TAG_REGISTRY` `{tag_registry}` differ: set one of them \
                 (`REGISTRY` is a synonym of `TAG_REGISTRY`)"
            ),
            (Some(tag_registry), _) => Ok(tag_registry),
            (None, Some(registry)) => Ok(registry),
            (None, None) => Ok("ceph"),
        }
    }

    /// What the short flavor form takes from the host and the environment.
    pub(crate) fn short_form_defaults(&self) -> ShortFormDefaults {
        let owned = |name: &str| self.get_nonempty(name).map(str::to_string);
        ShortFormDefaults {
            host_arch: owned("HOST_ARCH").unwrap_or_else(host_arch),
            baseos_registry: owned("BASEOS_REGISTRY"),
            baseos_repo: owned("BASEOS_REPO"),
            baseos_tag: owned("BASEOS_TAG"),
        }
    }
}

/// `uname -m`.
pub(crate) fn host_arch() -> String {
    match std::env::consts::ARCH {
        "x86" => "i686".into(),
        "arm" => "armv7l".into(),
        arch => arch.into(),
    }
}

/// How a name resolved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    Value(&'a str),
    /// Allowed by `layout.env`, but not set.
    Unset,
    /// Not a flavor variable, and not allowed by `layout.env`.
    NotAllowed,
}

/// The variables of one flavor.
#[derive(Clone, Debug)]
pub(crate) struct Vars {
    computed: BTreeMap<String, String>,
    environment: BTreeMap<String, String>,
    /// Each image with its full tag, in build order.
    pub(crate) image_tags: Vec<(String, String)>,
    /// `[images.<name>]` build arguments, expanded: image → name → value (images without any
    /// are left out).
    pub(crate) build_args: BTreeMap<String, BTreeMap<String, String>>,
    /// Each image's further tags (`layout.extra_tags`), by image name.
    pub(crate) extra_tags: BTreeMap<String, Vec<String>>,
    /// `layout.extra_tags` patterns left out: they name GIT_COMMIT and the tree is dirty.
    pub(crate) skipped_extra_tags: Vec<String>,
    /// What the whole run's builds take that changes every image: the content-changing words of
    /// `BUILD_ARGS` and `SQUASH=1` (part of each content id).
    pub(crate) run_inputs: Vec<String>,
}

impl Vars {
    /// Computes the variables of `flavor`.
    pub(crate) fn for_flavor(
        flavor: &Flavor,
        config: &Config,
        env: &Env,
        git: &GitFacts,
    ) -> Result<Vars> {
        let mut computed = BTreeMap::new();
        let mut set =
            |name: &str, value: &str| computed.insert(name.to_string(), value.to_string());
        set("CEPH_VERSION", &flavor.ceph_version);
        set("CEPH_POINT_RELEASE", &flavor.point_release);
        set(
            "CEPH_POINT_RELEASE_TAG",
            &sanitize_tag(&flavor.point_release),
        );
        set("HOST_ARCH", &flavor.arch);
        set("DISTRO", &flavor.distro);
        set("DISTRO_VERSION", &flavor.distro_version);
        set("BASEOS_REGISTRY", &flavor.base_registry);
        set("BASEOS_REPO", &flavor.base_repo);
        set("BASEOS_TAG", &flavor.base_tag);
        set("BASE_IMAGE", &flavor.base_image());
        set("GO_ARCH", go_arch(&flavor.arch));
        let release = match env.get_nonempty(env_names::RELEASE) {
            Some(release) => sanitize_tag(release),
            None => release_from_branch(&git.head_name),
        };
        set("RELEASE", &release);
        set("TAG_REGISTRY", env.tag_registry()?);
        set("IMAGES_TO_BUILD", &config.images.join(" "));
        set("GIT_REPO", &git.repo);
        set("GIT_BRANCH", &git.branch);
        set("GIT_COMMIT", &git.commit);
        set("GIT_CLEAN", if git.clean { "True" } else { "False" });
        if let Some(version) = PointRelease::of(&flavor.point_release) {
            set("CEPH_FULL_VERSION", &version.to_string());
            set("CEPH_MAJOR", &version.major.to_string());
            set("CEPH_MINOR", &version.minor.to_string());
        }
        for (name, value) in
            crate::domain::derived::values(&config.derived, &computed, &flavor.text)?
        {
            computed.insert(name, value);
        }
        let environment: BTreeMap<String, String> = env
            .vars
            .iter()
            .filter(|(name, _)| config.env_allowed(name) && !computed.contains_key(*name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let mut vars = Vars {
            computed,
            environment,
            image_tags: Vec::new(),
            build_args: BTreeMap::new(),
            extra_tags: BTreeMap::new(),
            skipped_extra_tags: Vec::new(),
            run_inputs: Vec::new(),
        };

        let staging_dir = vars.expand(config, &config.staging_dir, "layout.staging_dir")?;
        let staging_dir = make_safe(&staging_dir);
        check_staging_dir(&staging_dir, &config.staging_root, flavor)?;
        vars.computed.insert("STAGING_DIR".into(), staging_dir);

        let registry = vars.computed["TAG_REGISTRY"].clone();
        for image in &config.images {
            let name = match env.get_nonempty(&image_tag_override(image)) {
                Some(name) => name.to_string(),
                None => {
                    let lookup = |var: &str| {
                        if var == "IMAGE" {
                            Some(image.as_str())
                        } else {
                            vars.value(var)
                        }
                    };
                    config.image_tag.expand(lookup).map_err(|name| {
                        anyhow::anyhow!(
                            "flavor `{}`: `layout.image_tag` names `{{{name}}}`, which is not set",
                            flavor.text
                        )
                    })?
                }
            };
            let tag = with_registry(&registry, name);
            if let Err(why) = check_reference(&tag) {
                bail!(
                    "flavor `{}`: image `{image}` gets tag `{tag}`, which is not a valid image reference ({why}); \
                     check `layout.image_tag`, TAG_REGISTRY, RELEASE and {}",
                    flavor.text,
                    image_tag_override(image)
                );
            }
            vars.image_tags.push((image.clone(), tag));
        }
        for (image, tag) in vars.image_tags.clone() {
            vars.computed.insert(image_variable(&image), tag);
        }
        vars.build_args =
            crate::domain::image_args::expand(&config.image_args, &flavor.arch, |name| {
                vars.value(name)
            })
            .map_err(|why| anyhow::anyhow!("flavor `{}`: {why}", flavor.text))?;
        vars.add_extra_tags(config, flavor)?;
        let build_args: Vec<String> = env
            .get(env_names::BUILD_ARGS)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        vars.run_inputs = crate::domain::build_options::content_changing(&build_args);
        if env.get(env_names::SQUASH) == Some("1") {
            vars.run_inputs.push("SQUASH=1".into());
        }
        Ok(vars)
    }

    /// Expands `layout.extra_tags` for every image, prefixed with TAG_REGISTRY as image tags are;
    /// a pattern naming GIT_COMMIT is left out when the tree is dirty, so a dirty build is never
    /// tagged as a commit.
    fn add_extra_tags(&mut self, config: &Config, flavor: &Flavor) -> Result<()> {
        let registry = self.computed["TAG_REGISTRY"].clone();
        let dirty = self.value("GIT_CLEAN") != Some("True");
        for pattern in &config.extra_tags {
            if dirty && pattern.variables().any(|name| name == "GIT_COMMIT") {
                self.skipped_extra_tags.push(pattern.text.clone());
                continue;
            }
            for image in &config.images {
                let lookup = |var: &str| {
                    if var == "IMAGE" {
                        Some(image.as_str())
                    } else {
                        self.value(var)
                    }
                };
                let name = pattern.expand(lookup).map_err(|name| {
                    anyhow::anyhow!(
                        "flavor `{}`: `layout.extra_tags` pattern `{}` names `{{{name}}}`, which is not set",
                        flavor.text,
                        pattern.text
                    )
                })?;
                let tag = with_registry(&registry, name);
                if let Err(why) = check_reference(&tag) {
                    bail!(
                        "flavor `{}`: image `{image}` gets extra tag `{tag}`, which is not a valid image reference ({why}); \
                         check `layout.extra_tags` pattern `{}`",
                        flavor.text,
                        pattern.text
                    );
                }
                self.extra_tags.entry(image.clone()).or_default().push(tag);
            }
        }
        Ok(())
    }

    fn expand(
        &self,
        config: &Config,
        pattern: &crate::domain::config::Pattern,
        key: &str,
    ) -> Result<String> {
        pattern.expand(|name| self.value(name)).map_err(|name| {
            anyhow::anyhow!(
                "`{key}` names `{{{name}}}`, which is not set (in {})",
                config.display_path()
            )
        })
    }

    /// The value of a variable that is set and allowed.
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        match self.lookup(name) {
            Lookup::Value(value) => Some(value),
            _ => None,
        }
    }

    /// Resolves a name: computed variables first, then allowed environment variables.
    pub(crate) fn lookup(&self, name: &str) -> Lookup<'_> {
        if let Some(value) = self
            .computed
            .get(name)
            .or_else(|| self.environment.get(name))
        {
            return Lookup::Value(value);
        }
        Lookup::NotAllowed
    }

    /// Like [`Vars::lookup`], telling an allowed but unset variable from a disallowed one.
    pub(crate) fn lookup_in(&self, name: &str, config: &Config) -> Lookup<'_> {
        match self.lookup(name) {
            Lookup::NotAllowed if config.env_allowed(name) => Lookup::Unset,
            other => other,
        }
    }

    /// Every variable, sorted by name.
    pub(crate) fn all(&self) -> BTreeMap<&str, &str> {
        self.computed
            .iter()
            .chain(&self.environment)
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }

    /// The staging dir, relative to the root.
    pub(crate) fn staging_dir(&self) -> &Path {
        Path::new(&self.computed["STAGING_DIR"])
    }

    /// The flavor's id: the staging dir's base name.
    pub(crate) fn id(&self) -> String {
        self.staging_dir()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The version a pinned point release names: `=19.2.1-1jammy` and `-19.2.1` → 19.2.1. Flavors
/// that pin none (`squid`) have none, hence no `CEPH_MAJOR`, `CEPH_MINOR`, `CEPH_FULL_VERSION`
/// and no rolling tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PointRelease {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) patch: u64,
}

impl PointRelease {
    /// From a flavor's point release field (separator included) or a bare `19.2.1`.
    pub(crate) fn of(point_release: &str) -> Option<PointRelease> {
        static VERSION: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"^[=-]?([0-9]+)\.([0-9]+)\.([0-9]+)(?:$|[^0-9.])").unwrap()
        });
        let captures = VERSION.captures(point_release)?;
        let number = |i: usize| captures[i].parse().ok();
        Some(PointRelease {
            major: number(1)?,
            minor: number(2)?,
            patch: number(3)?,
        })
    }
}

impl std::fmt::Display for PointRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// x86_64 → amd64, aarch64 → arm64, anything else unchanged.
pub(crate) fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Replaces every character not allowed in an image tag by `-`, after folding letters to ASCII
/// (`é` → `e`).
pub(crate) fn sanitize_tag(text: &str) -> String {
    deunicode::deunicode_with_tofu(text, "-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The longest `RELEASE` taken from a branch: the default `layout.image_tag` appends the release,
/// distro, base tag and arch to it, and the whole tag must stay within 128 characters.
pub(crate) const BRANCH_RELEASE_MAX: usize = 64;

/// `RELEASE` from a git branch name: [`tag_from`] with at most [`BRANCH_RELEASE_MAX`] characters.
pub(crate) fn release_from_branch(branch: &str) -> String {
    tag_from(branch, BRANCH_RELEASE_MAX)
}

/// Makes any text a valid image tag of at most `max` (at least 10, at most 128) characters:
/// folded to ASCII, `[A-Za-z0-9_.-]` only, not starting with `.` or `-`; when cut, or when
/// nothing is left, it ends with `-` and 8 hex digits of the text's sha256, so that different
/// texts stay apart.
pub(crate) fn tag_from(text: &str, max: usize) -> String {
    use sha2::{Digest, Sha256};
    let max = max.clamp(10, 128);
    let tag = sanitize_tag(text);
    let tag = tag.trim_start_matches(['.', '-']);
    if !tag.is_empty() && tag.len() <= max {
        return tag.to_string();
    }
    let digest = Sha256::digest(text.as_bytes());
    let suffix = crate::domain::digest::hex(&digest[..4]);
    if tag.is_empty() {
        return suffix;
    }
    // ASCII only from here on, so cutting at a byte index is cutting at a character.
    let kept = tag[..max - suffix.len() - 1].trim_end_matches(['.', '-']);
    format!("{kept}-{suffix}")
}

/// The staging dir with each `=` (a pinned apt release, `squid=19.2.1-1jammy`) written `@`: its
/// base name is the flavor's id, which names make targets (`make build.<id>.core`), and make reads
/// a command-line word holding `=` as a variable assignment.
fn make_safe(dir: &str) -> String {
    dir.replace('=', "@")
}

fn check_staging_dir(dir: &str, root: &Path, flavor: &Flavor) -> Result<()> {
    let path = PathBuf::from(dir);
    let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
    if !normal || !path.starts_with(root) || path == root {
        bail!(
            "flavor `{}`: staging dir `{dir}` is not a directory below `{}`",
            flavor.text,
            root.display()
        );
    }
    Ok(())
}

/// Proxy variables passed to builds by name (`--build-arg NAME`) when set: the engine reads their
/// values from its environment, so they never appear in a command line or a log.
pub(crate) const PROXY_VARIABLES: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
];

/// The [`PROXY_VARIABLES`] set (and not empty) in `env`.
pub(crate) fn set_proxies(env: &Env) -> Vec<String> {
    PROXY_VARIABLES
        .iter()
        .filter(|name| env.get_nonempty(name).is_some())
        .map(|name| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_sanitized() {
        assert_eq!(sanitize_tag("feature/new_thing.2"), "feature-new_thing.2");
        assert_eq!(sanitize_tag("été/ünïcode"), "ete-unicode");
    }

    #[test]
    fn a_tag_from_any_text_is_valid() {
        assert_eq!(tag_from("main", 128), "main");
        assert_eq!(tag_from("été/ünïcode", 128), "ete-unicode");
        assert_eq!(tag_from("+plus", 128), "plus");
        assert_eq!(tag_from(".hidden", 128), "hidden");
        assert_eq!(tag_from("--x", 128), "x");
        assert_eq!(tag_from("Straße 日本", 128), "Strasse-Ri-Ben");
        // Nothing left: the hash alone, which is a valid tag.
        let empty = tag_from("+/+", 128);
        assert_eq!(empty.len(), 8);
        assert_ne!(empty, tag_from("+//+", 128));
        let long = "a".repeat(130);
        let cut = tag_from(&long, 128);
        assert_eq!(cut.len(), 128);
        assert!(cut.starts_with(&"a".repeat(119)), "{cut}");
        assert_ne!(cut, tag_from(&"a".repeat(131), 128));
        assert_eq!(tag_from(&"a".repeat(128), 128), "a".repeat(128));
        // A cut never leaves `-` or `.` before the hash's `-`.
        let dashes = format!("{}{}x", "b".repeat(40), "-".repeat(20));
        let cut = tag_from(&dashes, 54);
        assert_eq!(cut.len(), 40 + 9);
        assert!(cut.starts_with(&format!("{}-", "b".repeat(40))), "{cut}");
        assert!(!cut.contains("--"), "{cut}");
        for text in [
            "été/ünïcode",
            "+plus",
            &long,
            "+/+",
            "-",
            "...",
            "a\nb",
            "ünïcode/".repeat(40).as_str(),
        ] {
            for max in [10, 64, 128] {
                let tag = tag_from(text, max);
                assert!(tag.len() <= max, "{text:?} -> {tag:?}");
                assert!(
                    crate::domain::reference::is_tag(&tag),
                    "{text:?} -> {tag:?}"
                );
            }
        }
    }

    #[test]
    fn release_from_a_branch_fits_in_the_default_image_tag() {
        let release = release_from_branch(&"x".repeat(130));
        assert_eq!(release.len(), BRANCH_RELEASE_MAX);
        let tag = format!("ceph/daemon-base:{release}-tentacle-centos-stream9-x86_64");
        assert_eq!(check_reference(&tag), Ok(()));
    }

    #[test]
    fn point_releases() {
        let version = |text: &str| PointRelease::of(text).map(|v| v.to_string());
        assert_eq!(version("=19.2.1-1jammy").as_deref(), Some("19.2.1"));
        assert_eq!(version("-12.2.1-0").as_deref(), Some("12.2.1"));
        assert_eq!(version("19.2.10").as_deref(), Some("19.2.10"));
        assert_eq!(version(""), None);
        assert_eq!(version("=19.2"), None);
        assert_eq!(version("=19.2.1.4"), None);
        assert!(PointRelease::of("19.2.10") > PointRelease::of("19.2.9"));
        assert!(PointRelease::of("20.1.0") > PointRelease::of("19.2.9"));
    }

    fn env(vars: &[(&str, &str)]) -> Env {
        Env {
            vars: vars
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }

    #[test]
    fn registry_is_a_synonym_of_tag_registry() {
        let registry = |vars: &[(&str, &str)]| {
            env(vars)
                .tag_registry()
                .map(str::to_string)
                .map_err(|e| e.to_string())
        };
        assert_eq!(registry(&[]).unwrap(), "ceph");
        assert_eq!(registry(&[("REGISTRY", "quay.io/x")]).unwrap(), "quay.io/x");
        assert_eq!(
            registry(&[("TAG_REGISTRY", "quay.io/x")]).unwrap(),
            "quay.io/x"
        );
        assert_eq!(registry(&[("TAG_REGISTRY", "")]).unwrap(), "");
        // An empty `REGISTRY` is unset: make may export it empty.
        assert_eq!(registry(&[("REGISTRY", "")]).unwrap(), "ceph");
        assert_eq!(
            registry(&[("REGISTRY", "q/x"), ("TAG_REGISTRY", "q/x")]).unwrap(),
            "q/x"
        );
        assert_eq!(
            registry(&[("REGISTRY", "q/x"), ("TAG_REGISTRY", "")]).unwrap_err(),
            "`REGISTRY` `q/x` and `TAG_REGISTRY` `` differ: set one of them (`REGISTRY` is a \
             synonym of `TAG_REGISTRY`)"
        );
    }

    #[test]
    fn go_arches() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("ppc64le"), "ppc64le");
    }
}
