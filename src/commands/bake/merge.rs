//! `matriochka bake --merge-arches`: the flavors of each manifest group (same `manifest_tag`,
//! different arches) become one target per image with several `platforms`, tagged with the
//! manifest tag, so that a multi-node builder pushes the manifest list itself.
//!
//! One context serves every platform, so the arches' staged contexts must be the same: every file
//! byte for byte, but for the `FROM`/`COPY --from=` lines of the Dockerfile that name the
//! flavor's own parent image by its per-arch tag (the `contexts` of the merged target resolve that
//! reference to the merged parent target, for each platform). Labels must be the same for every
//! platform of a target: the labels whose values differ by arch (flavor, context digest, content
//! id) are written as per-platform manifest annotations, `manifest[linux/<arch>]:<key>=<value>`.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde_json::{Map, Value};

use super::{
    bake_name, contexts_of_parents, insert_cache, literal, proxy_args, strings, BakeOptions,
    Gathered,
};
use crate::app::groups::Group;
use crate::domain::dockerfile::DOCKERFILE;
use crate::domain::git_facts::GitFacts;
use crate::plan::labels;
use crate::stage::model::{StagedFlavor, StagedImage};

/// The target of one image of a manifest group: its manifest tag, as a bake name.
fn merged_target(manifest_tag: &str) -> String {
    bake_name(manifest_tag)
}

/// The group of a manifest group's targets: the tag part of its first image's manifest tag.
fn merged_group(group: &Group) -> String {
    let tag = group
        .tags
        .first()
        .map(|(_, tag)| tag.as_str())
        .unwrap_or("");
    bake_name(crate::domain::reference::tag(tag).unwrap_or(tag))
}

/// The bake file with one target per image and manifest group, as JSON text ending with a
/// newline. `groups` are the manifest groups of `staged` (every flavor in exactly one).
pub(crate) fn bake_file(
    staged: &[StagedFlavor],
    groups: &[Group],
    git: &GitFacts,
    options: &BakeOptions,
) -> Result<String> {
    let mut file = Gathered::new()?;
    for group in groups {
        let members: Vec<&StagedFlavor> = group
            .members
            .iter()
            .map(|member| {
                staged
                    .iter()
                    .find(|flavor| flavor.prepared.flavor.text == member.flavor)
                    .expect("every member of a manifest group is a staged flavor")
            })
            .collect();
        let group_name = merged_group(group);
        file.claim(
            &group_name,
            format!("the manifest group `{}`", group.tags[0].1),
        )?;
        let platforms: Vec<String> = members.iter().map(|m| labels::platform(m)).collect();
        let content_ids: Vec<BTreeMap<String, String>> = members
            .iter()
            .zip(&platforms)
            .map(|(m, platform)| {
                let vars = &m.prepared.vars;
                labels::content_ids(&m.images, platform, &vars.build_args, &vars.run_inputs)
            })
            .collect();
        let first = members[0];
        for (image_name, manifest_tag) in &group.tags {
            let images: Vec<&StagedImage> = members
                .iter()
                .map(|m| m.images.iter().find(|i| i.name == *image_name))
                .collect::<Option<_>>()
                .expect("every flavor stages every image");
            for (member, image) in members.iter().zip(&images).skip(1) {
                same_context(first, images[0], member, image)?;
            }
            let target = merged_target(manifest_tag);
            file.claim(&target, format!("the manifest list `{manifest_tag}`"))?;
            let image_group = bake_name(image_name);
            file.claim(&image_group, format!("the image name `{image_name}`"))?;
            let mut body = Map::new();
            let context = first.prepared.vars.staging_dir().join(image_name);
            body.insert("context".into(), literal(&context.display().to_string()));
            body.insert("dockerfile".into(), literal(DOCKERFILE));
            body.insert("tags".into(), strings([manifest_tag.as_str()]));
            let (common, annotations) = split_labels(&members, &images, &content_ids, git);
            body.insert("labels".into(), Value::Object(common));
            if !annotations.is_empty() {
                body.insert(
                    "annotations".into(),
                    strings(annotations.iter().map(String::as_str)),
                );
            }
            body.insert(
                "platforms".into(),
                strings(platforms.iter().map(String::as_str)),
            );
            if !options.proxies.is_empty() {
                body.insert("args".into(), Value::Object(proxy_args(options)));
            }
            let contexts = parent_contexts(group, first, images[0]);
            if !contexts.is_empty() {
                body.insert("contexts".into(), Value::Object(contexts));
            }
            insert_cache(&mut body, options, &target)?;
            file.add(target, body, [group_name.clone(), image_group]);
        }
    }
    file.text(options)
}

/// The labels equal on every platform, and the others as `manifest[<platform>]:<key>=<value>`
/// annotations, by platform then key.
fn split_labels(
    members: &[&StagedFlavor],
    images: &[&StagedImage],
    content_ids: &[BTreeMap<String, String>],
    git: &GitFacts,
) -> (Map<String, Value>, Vec<String>) {
    let per_member: Vec<Vec<(&'static str, String)>> = members
        .iter()
        .zip(images)
        .zip(content_ids)
        .map(|((member, image), ids)| labels::image_labels(member, image, &ids[&image.name], git))
        .collect();
    let mut common = Map::new();
    let mut differing = Vec::new();
    for (index, (key, value)) in per_member[0].iter().enumerate() {
        if per_member.iter().all(|labels| labels[index].1 == *value) {
            common.insert(key.to_string(), literal(value));
        } else {
            differing.push(index);
        }
    }
    let mut annotations = Vec::new();
    for (member, labels) in members.iter().zip(&per_member) {
        let platform = labels::platform(member);
        let mut entries: Vec<&(&str, String)> = differing.iter().map(|&i| &labels[i]).collect();
        entries.sort();
        for (key, value) in entries {
            annotations.push(format!("manifest[{platform}]:{key}={value}"));
        }
    }
    (common, annotations)
}

/// Checks that `image` of `other` can be built from the context of `image0` of `first`: the same
/// files, modes and bytes, but for Dockerfile lines that differ only by the flavor's own images'
/// per-arch tags. Fails with one line naming the image, both staging dirs and the difference.
fn same_context(
    first: &StagedFlavor,
    image0: &StagedImage,
    other: &StagedFlavor,
    image: &StagedImage,
) -> Result<()> {
    let dirs = format!(
        "`{}` and `{}`",
        first.prepared.vars.staging_dir().display(),
        other.prepared.vars.staging_dir().display()
    );
    let fail = |why: String| -> Result<()> {
        bail!(
            "cannot merge the arches of image `{}`: its contexts in {dirs} differ: {why}",
            image.name
        )
    };
    let paths0: Vec<&String> = image0.files.keys().collect();
    let paths: Vec<&String> = image.files.keys().collect();
    if paths0 != paths {
        let only = paths0
            .iter()
            .find(|p| !image.files.contains_key(**p))
            .or_else(|| paths.iter().find(|p| !image0.files.contains_key(**p)))
            .map(|p| p.as_str())
            .unwrap_or_default();
        return fail(format!("`{only}` is staged for one arch only"));
    }
    for (path, file0) in &image0.files {
        let file = &image.files[path];
        if file0.mode != file.mode {
            return fail(format!(
                "`{path}` has mode {:o} and {:o}",
                file0.mode, file.mode
            ));
        }
        if file0.bytes == file.bytes {
            continue;
        }
        if path != DOCKERFILE {
            return fail(format!("`{path}` differs"));
        }
        let text0 = String::from_utf8_lossy(&file0.bytes);
        let text = String::from_utf8_lossy(&file.bytes);
        let lines0: Vec<&str> = text0.split('\n').collect();
        let lines: Vec<&str> = text.split('\n').collect();
        if lines0.len() != lines.len() {
            return fail(format!("`{path}` differs"));
        }
        for (number, (line0, line)) in lines0.iter().zip(&lines).enumerate() {
            if line0 != line
                && !(names_image(line0)
                    && names_image(line)
                    && own_images(first, line0) == own_images(other, line))
            {
                return fail(format!(
                    "`{path}` line {} is `{}` and `{}` (only the tags of the flavor's own images may differ by arch)",
                    number + 1,
                    line0.trim().escape_debug(),
                    line.trim().escape_debug()
                ));
            }
        }
    }
    Ok(())
}

/// Whether a Dockerfile line is a `FROM` or a `COPY --from=`.
fn names_image(line: &str) -> bool {
    let mut words = line.split_whitespace();
    match words.next() {
        Some(keyword) if keyword.eq_ignore_ascii_case("FROM") => true,
        Some(keyword) if keyword.eq_ignore_ascii_case("COPY") => {
            words.any(|word| word.starts_with("--from="))
        }
        _ => false,
    }
}

/// The line with every word that is the tag of one of the flavor's images (as a `FROM` image or a
/// `--from=` value) replaced by the image's name.
fn own_images(flavor: &StagedFlavor, line: &str) -> String {
    line.split_whitespace()
        .map(|word| {
            let (prefix, reference) = match word.strip_prefix("--from=") {
                Some(reference) => ("--from=", reference),
                None => ("", word),
            };
            match flavor.images.iter().find(|image| image.tag == reference) {
                Some(image) => format!("{prefix}\u{0}image:{}", image.name),
                None => word.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `{"<reference as written in the first arch's Dockerfile>": "target:<merged parent target>"}`.
fn parent_contexts(
    group: &Group,
    flavor: &StagedFlavor,
    image: &StagedImage,
) -> Map<String, Value> {
    contexts_of_parents(flavor, image, |parent| {
        let (_, manifest_tag) = group.tags.iter().find(|(name, _)| *name == parent.name)?;
        Some(merged_target(manifest_tag))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_name_an_image() {
        assert!(names_image("FROM ceph/core:v1"));
        assert!(names_image(
            "  from --platform=linux/arm64 ceph/core:v1 AS core"
        ));
        assert!(names_image("COPY --from=ceph/core:v1 /etc /etc"));
        assert!(!names_image("COPY etc /etc"));
        assert!(!names_image("RUN echo FROM ceph/core:v1"));
        assert!(!names_image("LABEL from=ceph/core:v1"));
        assert!(!names_image(""));
    }
}
