//! Flavors: parsing and validating the `rel,arch,os,version,registry,repo,tag` tuples.
//!
//! Every field is checked here, before anything is staged, so that values reaching paths, image
//! tags, shells and Makefiles are known to be plain names.

use std::fmt;

use regex::Regex;

use crate::domain::reference;
use std::sync::LazyLock;

/// One flavor: a Ceph release on a distro version and a base image, for one CPU arch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Flavor {
    /// The text the user gave, as given.
    pub(crate) text: String,
    pub(crate) ceph_version: String,
    /// `-12.2.1-0` or `=19.2.1-1` (separator kept), or empty.
    pub(crate) point_release: String,
    pub(crate) arch: String,
    pub(crate) distro: String,
    pub(crate) distro_version: String,
    /// Empty for none.
    pub(crate) base_registry: String,
    pub(crate) base_repo: String,
    pub(crate) base_tag: String,
}

/// Values the short form takes from the host and the environment.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShortFormDefaults {
    pub(crate) host_arch: String,
    pub(crate) baseos_registry: Option<String>,
    pub(crate) baseos_repo: Option<String>,
    pub(crate) baseos_tag: Option<String>,
}

/// A flavor that failed validation: which flavor, which field and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlavorError {
    pub(crate) flavor: String,
    pub(crate) problem: String,
}

impl fmt::Display for FlavorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid flavor `{}`: {}", self.flavor, self.problem)
    }
}

impl std::error::Error for FlavorError {}

const FIELDS: [&str; 7] = [
    "ceph release",
    "arch",
    "os name",
    "os version",
    "base registry",
    "base repo",
    "base tag",
];

const NAME_RULE: &str =
    "letters, digits, `.`, `_` and `-`, starting with a letter or digit, no `..`";

static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]*$").unwrap());
impl Flavor {
    /// Parses one flavor in the full (7 fields) or short (3 fields) form.
    pub(crate) fn parse(text: &str, defaults: &ShortFormDefaults) -> Result<Flavor, FlavorError> {
        let err = |problem: String| FlavorError {
            flavor: text.to_string(),
            problem,
        };
        let fields: Vec<&str> = text.split(',').collect();
        let (rel, arch, distro, version, registry, repo, tag) = match fields.as_slice() {
            [rel, arch, distro, version, registry, repo, tag] => (
                rel.to_string(),
                arch.to_string(),
                distro.to_string(),
                version.to_string(),
                registry.to_string(),
                repo.to_string(),
                tag.to_string(),
            ),
            [rel, arch, distro] if KNOWN_ARCHES.contains(arch) => {
                return Err(err(format!(
                    "field 2 `{arch}` is an arch, but the 3-field form is `<ceph rel>,<os name>,\
                     <os version>`: write `{rel},{distro},<os version>` (the arch is HOST_ARCH) or \
                     all 7 fields `{rel},{arch},{distro},<os version>,<base registry>,<base repo>,\
                     <base tag>`"
                )))
            }
            [rel, distro, version] => (
                rel.to_string(),
                defaults.host_arch.clone(),
                distro.to_string(),
                version.to_string(),
                defaults.baseos_registry.clone().unwrap_or_default(),
                defaults.baseos_repo.clone().unwrap_or_else(|| distro.to_string()),
                defaults.baseos_tag.clone().unwrap_or_else(|| version.to_string()),
            ),
            _ => {
                return Err(err(format!(
                    "expected 7 comma-separated fields `<ceph rel>,<arch>,<os name>,<os version>,\
                     <base registry>,<base repo>,<base tag>` or 3 `<ceph rel>,<os name>,<os version>`, \
                     found {}",
                    fields.len()
                )))
            }
        };
        let values = [&rel, &arch, &distro, &version, &registry, &repo, &tag];
        for (index, value) in values.iter().enumerate() {
            check_field(index, value).map_err(err)?;
        }
        check_arch(&arch).map_err(err)?;
        let (ceph_version, point_release) = split_point_release(&rel);
        let registry = if registry == "_" {
            String::new()
        } else {
            registry
        };
        Ok(Flavor {
            text: text.to_string(),
            ceph_version: ceph_version.to_string(),
            point_release: point_release.to_string(),
            arch,
            distro,
            distro_version: version,
            base_registry: registry,
            base_repo: repo,
            base_tag: tag,
        })
    }

    /// The flavors of a list whose items may each hold several, separated by white space, as
    /// written: parse each with [`Flavor::parse`].
    pub(crate) fn split_list<S: AsRef<str>>(items: &[S]) -> Vec<&str> {
        items
            .iter()
            .flat_map(|item| item.as_ref().split_whitespace())
            .collect()
    }

    /// The full 7-field tuple, with `_` for no registry.
    pub(crate) fn tuple(&self) -> String {
        let registry = if self.base_registry.is_empty() {
            "_"
        } else {
            &self.base_registry
        };
        format!(
            "{}{},{},{},{},{},{},{}",
            self.ceph_version,
            self.point_release,
            self.arch,
            self.distro,
            self.distro_version,
            registry,
            self.base_repo,
            self.base_tag
        )
    }

    /// `[registry/]repo:tag`.
    pub(crate) fn base_image(&self) -> String {
        if self.base_registry.is_empty() {
            format!("{}:{}", self.base_repo, self.base_tag)
        } else {
            format!(
                "{}/{}:{}",
                self.base_registry, self.base_repo, self.base_tag
            )
        }
    }
}

/// The CPU arches a flavor may name, as `uname -m` spells them.
pub(crate) const KNOWN_ARCHES: [&str; 4] = ["x86_64", "aarch64", "ppc64le", "s390x"];

/// Other spellings of the known arches (Go's, Debian's, vendors').
const ARCH_ALIASES: [(&str, &str); 6] = [
    ("amd64", "x86_64"),
    ("x86-64", "x86_64"),
    ("x64", "x86_64"),
    ("arm64", "aarch64"),
    ("ppc64el", "ppc64le"),
    ("armv8", "aarch64"),
];

fn check_arch(arch: &str) -> Result<(), String> {
    if KNOWN_ARCHES.contains(&arch) {
        return Ok(());
    }
    let suggestion = ARCH_ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(arch))
        .map(|(_, known)| *known)
        .or_else(|| crate::domain::suggest::closest(arch, KNOWN_ARCHES.iter().copied()));
    let mut problem = format!(
        "field 2 (arch) `{arch}` is not a known arch ({})",
        KNOWN_ARCHES.join(", ")
    );
    if let Some(known) = suggestion {
        problem.push_str(&format!(": did you mean `{known}`?"));
    }
    Err(problem)
}

/// `squid=19.2.1-1` → (`squid`, `=19.2.1-1`); `luminous-12.2.1-0` → (`luminous`, `-12.2.1-0`).
fn split_point_release(rel: &str) -> (&str, &str) {
    if let Some(at) = rel.find('=') {
        return rel.split_at(at);
    }
    let bytes = rel.as_bytes();
    match (1..bytes.len()).find(|&i| bytes[i - 1] == b'-' && bytes[i].is_ascii_digit()) {
        Some(i) => rel.split_at(i - 1),
        None => (rel, ""),
    }
}

fn check_field(index: usize, value: &str) -> Result<(), String> {
    let field = FIELDS[index];
    let position = index + 1;
    let bad = |allowed: &str| -> String {
        let special =
            |c: &char| c.is_whitespace() || ";$'\"`\\".contains(*c) || (*c == '/' && index != 5);
        let why = match value.chars().find(special) {
            Some(c) if c.is_whitespace() => "contains a space".to_string(),
            Some('/') => "contains `/`, allowed only in the base repo".to_string(),
            Some(c) => format!("contains `{c}`"),
            None if value.contains("..") => "contains `..`".to_string(),
            None => "is not allowed".to_string(),
        };
        format!("field {position} ({field}) `{value}` {why}: use {allowed}")
    };
    match index {
        4 => {
            if value.is_empty() || value == "_" {
                return Ok(());
            }
            if reference::is_host(value) && !value.contains("..") {
                return Ok(());
            }
            Err(bad(
                "a registry host[:port] such as `quay.io` or `127.0.0.1:5000`, or `_` for none",
            ))
        }
        _ if value.is_empty() => Err(format!("field {position} ({field}) is empty")),
        5 => {
            if reference::is_repository_path(value) {
                return Ok(());
            }
            Err(bad(
                "an image repository path: lowercase letters and digits separated by `.`, `_`, `-` \
                 or `/`, such as `centos/centos`",
            ))
        }
        6 => {
            if reference::is_tag(value) && !value.contains("..") {
                return Ok(());
            }
            Err(bad(
                "an image tag: letters, digits, `_`, `.` and `-`, at most 128",
            ))
        }
        0 => {
            let (name, pin) = split_point_release(value);
            let pin_ok = match pin.strip_prefix('=') {
                Some(version) => NAME.is_match(version),
                None => pin.is_empty() || NAME.is_match(&pin[1..]),
            };
            if NAME.is_match(name) && pin_ok && !value.contains("..") {
                return Ok(());
            }
            Err(bad(&format!(
                "{NAME_RULE}, optionally pinned as `squid=19.2.1-1`"
            )))
        }
        _ => {
            if NAME.is_match(value) && !value.contains("..") {
                return Ok(());
            }
            Err(bad(NAME_RULE))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ShortFormDefaults {
        ShortFormDefaults {
            host_arch: "x86_64".into(),
            ..Default::default()
        }
    }

    fn problem(text: &str) -> String {
        Flavor::parse(text, &defaults()).unwrap_err().problem
    }

    #[test]
    fn full_form() {
        let flavor = Flavor::parse(
            "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
            &defaults(),
        )
        .unwrap();
        assert_eq!(flavor.ceph_version, "squid");
        assert_eq!(flavor.point_release, "");
        assert_eq!(flavor.base_image(), "quay.io/centos/centos:stream9");
        assert_eq!(
            flavor.tuple(),
            "squid,x86_64,centos,9,quay.io,centos/centos,stream9"
        );
    }

    #[test]
    fn no_registry() {
        for text in [
            "reef,aarch64,ubuntu,22.04,_,ubuntu,22.04",
            "reef,aarch64,ubuntu,22.04,,ubuntu,22.04",
        ] {
            let flavor = Flavor::parse(text, &defaults()).unwrap();
            assert_eq!(flavor.base_registry, "");
            assert_eq!(flavor.base_image(), "ubuntu:22.04");
            assert_eq!(flavor.tuple(), "reef,aarch64,ubuntu,22.04,_,ubuntu,22.04");
        }
    }

    #[test]
    fn short_form_uses_defaults() {
        let flavor = Flavor::parse("reef,ubuntu,22.04", &defaults()).unwrap();
        assert_eq!(flavor.tuple(), "reef,x86_64,ubuntu,22.04,_,ubuntu,22.04");
        let env = ShortFormDefaults {
            host_arch: "aarch64".into(),
            baseos_registry: Some("quay.io".into()),
            baseos_repo: Some("centos/centos".into()),
            baseos_tag: Some("stream9".into()),
        };
        let flavor = Flavor::parse("squid,centos,9", &env).unwrap();
        assert_eq!(
            flavor.tuple(),
            "squid,aarch64,centos,9,quay.io,centos/centos,stream9"
        );
    }

    #[test]
    fn point_releases() {
        let flavor = Flavor::parse("luminous-12.2.1-0,centos,7", &defaults()).unwrap();
        assert_eq!(
            (flavor.ceph_version.as_str(), flavor.point_release.as_str()),
            ("luminous", "-12.2.1-0")
        );
        let flavor = Flavor::parse("squid=19.2.1-1,centos,9", &defaults()).unwrap();
        assert_eq!(
            (flavor.ceph_version.as_str(), flavor.point_release.as_str()),
            ("squid", "=19.2.1-1")
        );
        let flavor = Flavor::parse("my-release,centos,9", &defaults()).unwrap();
        assert_eq!(
            (flavor.ceph_version.as_str(), flavor.point_release.as_str()),
            ("my-release", "")
        );
    }

    #[test]
    fn list_splits_on_whitespace() {
        let items = ["reef,centos,9  squid,centos,9\n", " ", "tentacle,centos,9"];
        assert_eq!(
            Flavor::split_list(&items),
            ["reef,centos,9", "squid,centos,9", "tentacle,centos,9"]
        );
    }

    #[test]
    fn rejects_bad_fields() {
        assert_eq!(
            problem("squid,centos"),
            "expected 7 comma-separated fields `<ceph rel>,<arch>,<os name>,<os version>,<base registry>,\
             <base repo>,<base tag>` or 3 `<ceph rel>,<os name>,<os version>`, found 2"
        );
        assert_eq!(
            problem("squid,,centos,9,_,centos,9"),
            "field 2 (arch) is empty"
        );
        assert_eq!(
            problem("squid,x86;64,centos,9,_,centos,9"),
            format!("field 2 (arch) `x86;64` contains `;`: use {NAME_RULE}")
        );
        assert_eq!(
            problem("squid,x86_64,cen/tos,9,_,centos,9"),
            format!("field 3 (os name) `cen/tos` contains `/`, allowed only in the base repo: use {NAME_RULE}")
        );
        assert_eq!(
            problem("squid,x86_64,centos,9..1,_,centos,9"),
            format!("field 4 (os version) `9..1` contains `..`: use {NAME_RULE}")
        );
        assert!(problem("squid$x,centos,9")
            .starts_with("field 1 (ceph release) `squid$x` contains `$`"));
        assert!(problem("squid,x86_64,centos,9,_,Centos,9")
            .starts_with("field 6 (base repo) `Centos` is not allowed"));
        assert!(problem("squid,x86_64,centos,9,_,centos/../x,9").starts_with("field 6 (base repo)"));
        assert!(problem("squid,x86_64,centos,9,quay.io/x,centos,9")
            .starts_with("field 5 (base registry) `quay.io/x` contains `/`"));
        assert!(problem("squid,x86_64,centos,9,_,centos,st'9")
            .starts_with("field 7 (base tag) `st'9` contains `'`"));
        assert!(problem("squid==1,centos,9").starts_with("field 1 (ceph release)"));
        // Issue 21: read as a distro named `x86_64` before.
        assert_eq!(
            problem("squid,x86_64,centos"),
            "field 2 `x86_64` is an arch, but the 3-field form is `<ceph rel>,<os name>,<os version>`: \
             write `squid,centos,<os version>` (the arch is HOST_ARCH) or all 7 fields \
             `squid,x86_64,centos,<os version>,<base registry>,<base repo>,<base tag>`"
        );
    }

    #[test]
    fn arches_are_checked_with_a_suggestion() {
        for arch in KNOWN_ARCHES {
            assert!(
                Flavor::parse(&format!("squid,{arch},centos,9,_,centos,9"), &defaults()).is_ok()
            );
        }
        let known = "x86_64, aarch64, ppc64le, s390x";
        for (arch, meant) in [
            ("arm64", "aarch64"),
            ("amd64", "x86_64"),
            ("x86-64", "x86_64"),
            ("aarch46", "aarch64"),
        ] {
            assert_eq!(
                problem(&format!("squid,{arch},centos,9,_,centos,9")),
                format!("field 2 (arch) `{arch}` is not a known arch ({known}): did you mean `{meant}`?")
            );
        }
        assert_eq!(
            problem("squid,mips,centos,9,_,centos,9"),
            format!("field 2 (arch) `mips` is not a known arch ({known})")
        );
    }

    #[test]
    fn registry_with_port() {
        let flavor =
            Flavor::parse("squid,x86_64,centos,9,127.0.0.1:5000,centos,9", &defaults()).unwrap();
        assert_eq!(flavor.base_image(), "127.0.0.1:5000/centos:9");
    }
}
