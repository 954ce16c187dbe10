//! Manifest groups: the flavors of a run whose manifest tag is equal (same release, distro and
//! base, different arches); one manifest list per group and image.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};

use crate::app::project::Project;
use crate::domain::config::{check_group_tags, GroupTag, Pattern, POINT_RELEASE_VARIABLES};
use crate::domain::env_names;
use crate::domain::reference::{check_reference, with_registry};
use crate::domain::vars::PointRelease;
use crate::infra::registry::Platform;
use crate::stage::model::Prepared;

/// One manifest group: the flavors of a run whose manifest tags are equal.
#[derive(Debug)]
pub(crate) struct Group {
    /// Each image with its manifest tag, in configuration order.
    pub(crate) tags: Vec<(String, String)>,
    /// Each image's rolling tags (empty for flavors that pin no point release).
    pub(crate) rolling: BTreeMap<String, Vec<String>>,
    pub(crate) version: Option<PointRelease>,
    /// (arch, flavor text, image → per-arch tag) of each member.
    pub(crate) members: Vec<Member>,
}

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) arch: String,
    pub(crate) flavor: String,
    pub(crate) image_tags: BTreeMap<String, String>,
    /// The platform its images must have: `linux/<GO_ARCH>`, arm64 with variant `v8`.
    pub(crate) platform: Platform,
    /// Each image's content id in this checkout's plan (filled by `manifest`).
    pub(crate) content_ids: BTreeMap<String, String>,
}

/// The platform of a flavor's images in a list: `linux/<GO_ARCH>`; arm64 is `v8`, the variant
/// every 64-bit ARM image is.
pub(crate) fn platform_of(p: &Prepared) -> Platform {
    let architecture = p.vars.value("GO_ARCH").unwrap_or_default().to_string();
    Platform {
        os: "linux".into(),
        variant: (architecture == "arm64").then(|| "v8".to_string()),
        architecture,
    }
}

/// The arches a group's lists must hold: `ARCHES` when set, else the arches of the buildable
/// flavors of the same manifest tag (a buildable flavor taken with the group's point release),
/// with the arches of the run's own flavors.
pub(crate) fn expected_arches(
    project: &Project,
    group: &Group,
    first: &Prepared,
) -> Result<Vec<String>> {
    let mut arches: Vec<String> = Vec::new();
    if let Some(list) = project.env.get_nonempty(env_names::ARCHES) {
        arches.extend(
            list.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|a| !a.is_empty())
                .map(str::to_string),
        );
    } else {
        let Some(manifest_tag) = &project.config.manifest_tag else {
            return Ok(Vec::new());
        };
        let (image, tag) = &group.tags[0];
        let release = first.flavor.text.split(',').next().unwrap_or_default();
        for text in project.buildable_texts()? {
            let flavor = project.parse(text)?;
            if flavor.ceph_version != first.flavor.ceph_version || arches.contains(&flavor.arch) {
                continue;
            }
            let mut fields: Vec<&str> = text.split(',').collect();
            fields[0] = release;
            let pinned = project.parse(&fields.join(","))?;
            let p = Prepared::new(pinned, &project.config, &project.env, project.git(), true)?;
            if expand_tag(&p, "manifest_tag", manifest_tag, image)
                .ok()
                .as_ref()
                == Some(tag)
            {
                arches.push(p.flavor.arch.clone());
            }
        }
        for member in &group.members {
            if !arches.contains(&member.arch) {
                arches.push(member.arch.clone());
            }
        }
    }
    Ok(arches)
}

/// `pattern` for one image of a flavor, without `TAG_REGISTRY`; a variable in `overrides` takes
/// its value from there.
fn render(
    p: &Prepared,
    pattern: &Pattern,
    image: &str,
    overrides: &BTreeMap<&str, String>,
) -> Result<String, String> {
    pattern.expand(|var| {
        if var == "IMAGE" {
            Some(image)
        } else {
            overrides
                .get(var)
                .map(String::as_str)
                .or_else(|| p.vars.value(var))
        }
    })
}

/// The tag of `pattern` for one image of a flavor, with `TAG_REGISTRY` in front, checked.
fn expand_tag(p: &Prepared, key: &str, pattern: &Pattern, image: &str) -> Result<String> {
    let name = render(p, pattern, image, &BTreeMap::new()).map_err(|name| {
        anyhow!(
            "flavor `{}`: `layout.{key}` names `{{{name}}}`, which is not set",
            p.flavor.text
        )
    })?;
    let registry = p.vars.value("TAG_REGISTRY").unwrap_or_default();
    let tag = with_registry(registry, name);
    if let Err(why) = check_reference(&tag) {
        bail!(
            "flavor `{}`: image `{image}` gets {key} `{tag}`, which is not a valid image reference ({why})",
            p.flavor.text
        );
    }
    Ok(tag)
}

/// Groups flavors by their manifest tags, in the order they come.
pub(crate) fn groups(project: &Project, prepared: &[Prepared]) -> Result<Vec<Group>> {
    let config = &project.config;
    let Some(manifest_tag) = &config.manifest_tag else {
        bail!(
            "`layout.manifest_tag` is not set in `{}`: add the tag of the manifest lists, e.g. `manifest_tag = \"{{IMAGE}}:{{RELEASE}}-{{CEPH_VERSION}}\"`",
            config.display_path()
        );
    };
    let mut groups: Vec<Group> = Vec::new();
    for p in prepared {
        let tags = config
            .images
            .iter()
            .map(|image| {
                Ok((
                    image.clone(),
                    expand_tag(p, "manifest_tag", manifest_tag, image)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let version = PointRelease::of(&p.flavor.point_release);
        let member = Member {
            arch: p.flavor.arch.clone(),
            flavor: p.flavor.text.clone(),
            image_tags: p.vars.image_tags.iter().cloned().collect(),
            platform: platform_of(p),
            content_ids: BTreeMap::new(),
        };
        if let Some(group) = groups.iter_mut().find(|g| g.tags == tags) {
            if let Some(other) = group.members.iter().find(|m| m.arch == member.arch) {
                bail!(
                    "flavors `{}` and `{}` have the same manifest tag `{}` and the same arch `{}`: add the differing field to `layout.manifest_tag`",
                    other.flavor,
                    member.flavor,
                    tags[0].1,
                    member.arch
                );
            }
            if group.version != version {
                group.version = None;
                group.rolling.clear();
            }
            group.members.push(member);
            continue;
        }
        let mut rolling = BTreeMap::new();
        if version.is_some() {
            for image in &config.images {
                let tags = config
                    .rolling_tags
                    .iter()
                    .map(|pattern| expand_tag(p, "rolling_tags", pattern, image))
                    .collect::<Result<Vec<_>>>()?;
                rolling.insert(image.clone(), tags);
            }
        }
        groups.push(Group {
            tags,
            rolling,
            version,
            members: vec![member],
        });
    }
    Ok(groups)
}

/// Fails when two manifest groups get the same manifest, rolling or extra tag, over the
/// buildable, default and test flavors and `texts`. Groups that differ only by their point
/// release share their rolling tags by design (the newest holds them), so tags are rendered
/// with placeholders for the point release (`v{CEPH_MAJOR of squid}`): the check holds for
/// every point release a run may pin.
pub(crate) fn check_tags(project: &Project, texts: &[&str]) -> Result<()> {
    let config = &project.config;
    let Some(manifest_tag) = &config.manifest_tag else {
        return Ok(());
    };
    let mut all: Vec<&str> = project.buildable_texts()?;
    all.extend(crate::domain::flavor::Flavor::split_list(
        &config.default_flavors,
    ));
    all.extend(project.test_texts()?);
    all.extend(texts);
    let mut seen = std::collections::BTreeSet::new();
    let mut tags = Vec::new();
    for text in all {
        let flavor = project.parse(text)?;
        if !seen.insert(flavor.tuple()) {
            continue;
        }
        let p = Prepared::new(flavor, config, &project.env, project.git(), false)?;
        let release = p.vars.value("CEPH_VERSION").unwrap_or_default().to_string();
        let mut overrides: BTreeMap<&str, String> = POINT_RELEASE_VARIABLES
            .iter()
            .map(|&var| (var, format!("{{{var} of {release}}}")))
            .collect();
        overrides.insert("CEPH_POINT_RELEASE", String::new());
        overrides.insert("CEPH_POINT_RELEASE_TAG", String::new());
        let registry = p.vars.value("TAG_REGISTRY").unwrap_or_default();
        for image in &config.images {
            let rendered = |pattern: &Pattern| {
                render(&p, pattern, image, &overrides)
                    .ok()
                    .map(|name| with_registry(registry, name))
            };
            let Some(group) = rendered(manifest_tag) else {
                continue;
            };
            let patterns = std::iter::once(("manifest_tag", manifest_tag))
                .chain(config.rolling_tags.iter().map(|p| ("rolling_tags", p)))
                .chain(config.extra_tags.iter().map(|p| ("extra_tags", p)));
            for (key, pattern) in patterns {
                if let Some(tag) = rendered(pattern) {
                    tags.push(GroupTag {
                        tag,
                        group: group.clone(),
                        key,
                        pattern: pattern.text.clone(),
                    });
                }
            }
        }
    }
    check_group_tags(&tags)
}
