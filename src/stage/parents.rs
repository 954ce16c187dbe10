//! Graph: which images of a flavor are built from which, read from the rendered Dockerfiles.
//!
//! A `FROM` (with `--platform=…` and `AS name`) or `COPY --from=` naming another image's tag makes
//! that image a parent; a cycle is an error naming the chain.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use crate::domain::dockerfile::{references, DOCKERFILE};
use crate::stage::model::StagedImage;

/// Fills each image's parents and `external_base`, reading a `FROM ${ARG}` with the image's
/// `build_args`; a cycle is an error.
pub(crate) fn link(
    images: &mut [StagedImage],
    build_args: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<()> {
    let tags: Vec<(String, String)> = images
        .iter()
        .map(|image| (image.tag.clone(), image.name.clone()))
        .collect();
    let mut lines = Vec::new();
    for image in images.iter_mut() {
        let Some(file) = image.files.get(DOCKERFILE) else {
            continue;
        };
        let refs = references(
            &String::from_utf8_lossy(&file.bytes),
            build_args.get(&image.name),
        );
        let parent_of = |reference: &str| {
            tags.iter()
                .find(|(tag, _)| tag == reference)
                .map(|(_, name)| name.clone())
        };
        let mut parents = Vec::new();
        for (reference, line) in &refs.images {
            if let Some(parent) = parent_of(reference) {
                if !parents.contains(&parent) {
                    parents.push(parent.clone());
                    lines.push((image.name.clone(), parent, *line));
                }
            }
        }
        image.external_base = refs
            .from_images
            .iter()
            .any(|reference| parent_of(reference).is_none());
        image.parents = parents;
    }
    if let Some(chain) = find_cycle(images) {
        let edges = chain.windows(2).map(|pair| {
            let line = lines
                .iter()
                .find(|(child, parent, _)| *child == pair[0] && *parent == pair[1])
                .map_or(0, |l| l.2);
            format!("`{}/{DOCKERFILE}` line {line} uses `{}`", pair[0], pair[1])
        });
        bail!(
            "image dependency cycle {}: {}",
            chain.join(" -> "),
            itertools::join(edges, ", ")
        );
    }
    Ok(())
}

fn find_cycle(images: &[StagedImage]) -> Option<Vec<String>> {
    fn visit(
        name: &str,
        images: &[StagedImage],
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| seen == name) {
            let mut chain = path[start..].to_vec();
            chain.push(name.to_string());
            return Some(chain);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name.to_string());
        let image = images.iter().find(|image| image.name == name)?;
        for parent in &image.parents {
            if let Some(chain) = visit(parent, images, path, done) {
                return Some(chain);
            }
        }
        path.pop();
        done.insert(name.to_string());
        None
    }
    let mut done = BTreeSet::new();
    images
        .iter()
        .find_map(|image| visit(&image.name, images, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_and_copy_from() {
        let text = "# comment\nFROM --platform=linux/amd64 ceph/base:1 AS build\nRUN a \\\n  b\n\
                    COPY --from=build /x /y\nfrom ceph/other:2\nCOPY --from=ceph/tool:3 /a /b\nFROM scratch\n";
        let refs = references(text, None);
        assert_eq!(
            refs.images,
            [
                ("ceph/base:1".to_string(), 2),
                ("ceph/other:2".to_string(), 6),
                ("ceph/tool:3".to_string(), 7)
            ]
        );
        assert_eq!(refs.from_images, ["ceph/base:1", "ceph/other:2"]);
    }

    #[test]
    fn continuation_lines() {
        let refs = references("FROM \\\n  ceph/base:1 \\\n  AS b\n", None);
        assert_eq!(refs.images, [("ceph/base:1".to_string(), 1)]);
    }
}
