//! Manifest groups: the flavors of a run whose manifest tag is equal (same release, distro and
//! base, different arches); one manifest list per group and image.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};

use crate::app::project::Project;
use crate::domain::reference::{check_reference, with_registry};
use crate::domain::vars::PointRelease;
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
}

/// The tag of `pattern` for one image of a flavor, with `TAG_REGISTRY` in front, checked.
fn expand_tag(
    p: &Prepared,
    key: &str,
    pattern: &crate::domain::config::Pattern,
    image: &str,
) -> Result<String> {
    let name = pattern
        .expand(|var| {
            if var == "IMAGE" {
                Some(image)
            } else {
                p.vars.value(var)
            }
        })
        .map_err(|name| {
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
