//! Derived variables: the configuration's `[variables]` table, each a value looked up in a map
//! keyed by another variable (`PKG_FAMILY = { from = "DISTRO", map = { centos = "rpm" } }`).
//!
//! Checked at load: the source must be a flavor field or an earlier derived variable, and every
//! buildable flavor's value must be in the map. A flavor outside the map fails when its variables
//! are computed, naming the variable and the value.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::domain::flavor::{Flavor, ShortFormDefaults};

/// The variables a derived variable may be read from: the flavor's own fields, known before
/// anything else is computed.
const SOURCES: &[&str] = &[
    "BASEOS_REGISTRY",
    "BASEOS_REPO",
    "BASEOS_TAG",
    "CEPH_POINT_RELEASE",
    "CEPH_VERSION",
    "DISTRO",
    "DISTRO_VERSION",
    "HOST_ARCH",
];

/// One entry of `[variables]`, as written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDerived {
    from: String,
    map: BTreeMap<String, String>,
}

/// The `[variables]` table as deserialized, with the place of each entry.
pub(crate) type RawVariables = BTreeMap<String, toml::Spanned<RawDerived>>;

/// A checked derived variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Derived {
    pub(crate) name: String,
    pub(crate) from: String,
    pub(crate) map: BTreeMap<String, String>,
}

/// Checks `[variables]` of the configuration `text`; `taken` are the names the tool sets itself.
/// The result is in file order, so that a variable may derive from one defined above it.
pub(crate) fn check(
    raw: RawVariables,
    text: &str,
    taken: &[String],
    buildable: &[String],
) -> Result<Vec<Derived>> {
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut entries: Vec<(usize, String, RawDerived)> = raw
        .into_iter()
        .map(|(name, spanned)| (spanned.span().start, name, spanned.into_inner()))
        .collect();
    entries.sort_by_key(|(start, _, _)| *start);
    let flavors: Vec<Flavor> = buildable
        .iter()
        .filter_map(|text| Flavor::parse(text, &ShortFormDefaults::default()).ok())
        .collect();
    let mut derived: Vec<Derived> = Vec::new();
    for (start, name, raw) in entries {
        let at = line(start);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("line {at}: `variables.{name}`: a variable name is made of uppercase letters, digits and `_`");
        }
        if taken.contains(&name) {
            bail!("line {at}: `variables.{name}` would replace the variable `{name}` the tool sets: rename it");
        }
        let from_derived = derived.iter().any(|earlier| earlier.name == raw.from);
        if !SOURCES.contains(&raw.from.as_str()) && !from_derived {
            let known = itertools::join(
                SOURCES
                    .iter()
                    .copied()
                    .chain(derived.iter().map(|earlier| earlier.name.as_str())),
                ", ",
            );
            bail!(
                "line {at}: `variables.{name}` derives from unknown variable `{}`; known: {known}",
                raw.from
            );
        }
        let entry = Derived {
            name,
            from: raw.from,
            map: raw.map,
        };
        for flavor in &flavors {
            let values = flavor_values(flavor, &derived);
            let value = values.get(entry.from.as_str()).copied().unwrap_or_default();
            if !entry.map.contains_key(value) {
                bail!(
                    "line {at}: `variables.{}` has no value for {} `{value}` of buildable flavor `{}`: add `{value} = \"…\"` to its map",
                    entry.name,
                    entry.from,
                    flavor.text
                );
            }
        }
        derived.push(entry);
    }
    Ok(derived)
}

/// The values of the derived variables for a flavor whose other variables are `vars`.
pub(crate) fn values(
    derived: &[Derived],
    vars: &BTreeMap<String, String>,
    flavor: &str,
) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in derived {
        let value = out
            .iter()
            .find(|(name, _)| *name == entry.from)
            .map(|(_, value)| value.as_str())
            .or_else(|| vars.get(&entry.from).map(String::as_str))
            .unwrap_or_default();
        match entry.map.get(value) {
            Some(mapped) => out.push((entry.name.clone(), mapped.clone())),
            None => {
                let mut message = format!(
                    "`variables.{}` has no value for {} `{value}`; known: {}",
                    entry.name,
                    entry.from,
                    itertools::join(entry.map.keys(), ", ")
                );
                let known = entry.map.keys().map(String::as_str);
                if let Some(close) = crate::domain::suggest::closest(value, known) {
                    message.push_str(&format!("; did you mean `{close}`?"));
                }
                // The flavor's value is what the user fixes: a usage error, as a bad field is.
                return Err(crate::domain::flavor::FlavorError {
                    flavor: flavor.to_string(),
                    problem: message,
                }
                .into());
            }
        }
    }
    Ok(out)
}

/// A parsed flavor's field values, and the derived variables before `upto`.
fn flavor_values<'a>(flavor: &'a Flavor, earlier: &'a [Derived]) -> BTreeMap<&'a str, &'a str> {
    let mut values: BTreeMap<&str, &str> = BTreeMap::from([
        ("BASEOS_REGISTRY", flavor.base_registry.as_str()),
        ("BASEOS_REPO", flavor.base_repo.as_str()),
        ("BASEOS_TAG", flavor.base_tag.as_str()),
        ("CEPH_POINT_RELEASE", flavor.point_release.as_str()),
        ("CEPH_VERSION", flavor.ceph_version.as_str()),
        ("DISTRO", flavor.distro.as_str()),
        ("DISTRO_VERSION", flavor.distro_version.as_str()),
        ("HOST_ARCH", flavor.arch.as_str()),
    ]);
    for entry in earlier {
        let source = values.get(entry.from.as_str()).copied().unwrap_or_default();
        if let Some(mapped) = entry.map.get(source) {
            values.insert(entry.name.as_str(), mapped.as_str());
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, buildable: &[&str]) -> Result<Vec<Derived>> {
        #[derive(Deserialize)]
        struct Doc {
            variables: RawVariables,
        }
        let doc: Doc = toml::from_str(text).unwrap();
        let buildable: Vec<String> = buildable.iter().map(|text| text.to_string()).collect();
        check(doc.variables, text, &["RELEASE".to_string()], &buildable)
    }

    const FAMILY: &str = "[variables]\n\
        PKG_FAMILY = { from = \"DISTRO\", map = { centos = \"rpm\", ubuntu = \"deb\" } }\n\
        PKG_TOOL = { from = \"PKG_FAMILY\", map = { rpm = \"dnf\", deb = \"apt\" } }\n";

    #[test]
    fn derives_in_file_order_and_from_earlier_variables() {
        let derived = load(
            FAMILY,
            &["squid,x86_64,centos,9,quay.io,centos/centos,stream9"],
        )
        .unwrap();
        let names: Vec<&str> = derived.iter().map(|entry| entry.name.as_str()).collect();
        assert_eq!(names, ["PKG_FAMILY", "PKG_TOOL"]);
        let vars = BTreeMap::from([("DISTRO".to_string(), "ubuntu".to_string())]);
        assert_eq!(
            values(&derived, &vars, "f").unwrap(),
            [
                ("PKG_FAMILY".to_string(), "deb".to_string()),
                ("PKG_TOOL".to_string(), "apt".to_string())
            ]
        );
    }

    #[test]
    fn a_flavor_outside_the_map_names_the_variable_and_value() {
        let derived = load(FAMILY, &[]).unwrap();
        let vars = BTreeMap::from([("DISTRO".to_string(), "alpine".to_string())]);
        assert_eq!(
            values(&derived, &vars, "squid,alpine,3").unwrap_err().to_string(),
            "invalid flavor `squid,alpine,3`: `variables.PKG_FAMILY` has no value for DISTRO `alpine`; known: centos, ubuntu"
        );
    }

    #[test]
    fn a_near_miss_gets_a_suggestion() {
        let derived = load(FAMILY, &[]).unwrap();
        let vars = BTreeMap::from([("DISTRO".to_string(), "centoss".to_string())]);
        assert_eq!(
            values(&derived, &vars, "f").unwrap_err().to_string(),
            "invalid flavor `f`: `variables.PKG_FAMILY` has no value for DISTRO `centoss`; known: centos, ubuntu; \
             did you mean `centos`?"
        );
    }

    #[test]
    fn unknown_source_names_its_line() {
        let text = FAMILY.replace("from = \"PKG_FAMILY\"", "from = \"PKG_FAMILIES\"");
        assert_eq!(
            load(&text, &[]).unwrap_err().to_string(),
            "line 3: `variables.PKG_TOOL` derives from unknown variable `PKG_FAMILIES`; known: \
             BASEOS_REGISTRY, BASEOS_REPO, BASEOS_TAG, CEPH_POINT_RELEASE, CEPH_VERSION, DISTRO, \
             DISTRO_VERSION, HOST_ARCH, PKG_FAMILY"
        );
    }

    #[test]
    fn buildable_value_missing_from_the_map_names_its_line() {
        let err = load(
            FAMILY,
            &["squid,x86_64,rocky,9,quay.io,rockylinux/rockylinux,9"],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "line 2: `variables.PKG_FAMILY` has no value for DISTRO `rocky` of buildable flavor \
             `squid,x86_64,rocky,9,quay.io,rockylinux/rockylinux,9`: add `rocky = \"…\"` to its map"
        );
    }

    #[test]
    fn names_the_tool_sets_are_refused() {
        let text = "[variables]\nRELEASE = { from = \"DISTRO\", map = {} }\n";
        assert_eq!(
            load(text, &[]).unwrap_err().to_string(),
            "line 2: `variables.RELEASE` would replace the variable `RELEASE` the tool sets: rename it"
        );
        let text = "[variables]\npkg = { from = \"DISTRO\", map = {} }\n";
        assert_eq!(
            load(text, &[]).unwrap_err().to_string(),
            "line 2: `variables.pkg`: a variable name is made of uppercase letters, digits and `_`"
        );
    }
}
