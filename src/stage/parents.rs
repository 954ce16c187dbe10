//! Graph: which images of a flavor are built from which, read from the rendered Dockerfiles.
//!
//! A `FROM` (with `--platform=…` and `AS name`) or `COPY --from=` naming another image's tag makes
//! that image a parent; a cycle is an error naming the chain.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use crate::stage::model::StagedImage;

/// The file of each context whose instructions are read.
pub const DOCKERFILE: &str = "Dockerfile";

/// What a Dockerfile refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Images named by `FROM` and `COPY --from=`, with the line, stage names left out.
    pub images: Vec<(String, usize)>,
    /// Whether some `FROM` names an image rather than a stage or `scratch`.
    pub from_images: Vec<String>,
}

/// Reads `FROM` and `COPY --from=` out of a Dockerfile.
pub fn references(dockerfile: &str) -> References {
    let mut refs = References::default();
    let mut stages = BTreeSet::new();
    for (line, instruction) in instructions(dockerfile) {
        let mut words = instruction.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let args: Vec<&str> = words.collect();
        if keyword.eq_ignore_ascii_case("FROM") {
            let mut positional = args.iter().filter(|arg| !arg.starts_with("--"));
            let Some(image) = positional.next() else {
                continue;
            };
            if let (Some(as_kw), Some(name)) = (positional.next(), positional.next()) {
                if as_kw.eq_ignore_ascii_case("AS") {
                    stages.insert(name.to_ascii_lowercase());
                }
            }
            if !stages.contains(&image.to_ascii_lowercase())
                && !image.eq_ignore_ascii_case("scratch")
            {
                refs.images.push((image.to_string(), line));
                refs.from_images.push(image.to_string());
            }
        } else if keyword.eq_ignore_ascii_case("COPY") {
            for arg in args {
                if let Some(from) = arg.strip_prefix("--from=") {
                    if !stages.contains(&from.to_ascii_lowercase())
                        && from.parse::<usize>().is_err()
                    {
                        refs.images.push((from.to_string(), line));
                    }
                }
            }
        }
    }
    refs
}

/// Instructions with their first line, continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') && current.is_none() || line.is_empty() && current.is_none() {
            continue;
        }
        let (body, continued) = match line.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        let entry = current.get_or_insert_with(|| (index + 1, String::new()));
        if !line.starts_with('#') {
            entry.1.push_str(body);
            entry.1.push(' ');
        }
        if !continued {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// Fills each image's parents and `external_base`; a cycle is an error.
pub fn link(images: &mut [StagedImage]) -> Result<()> {
    let tags: Vec<(String, String)> = images
        .iter()
        .map(|image| (image.tag.clone(), image.name.clone()))
        .collect();
    let mut lines = Vec::new();
    for image in images.iter_mut() {
        let Some(file) = image.files.get(DOCKERFILE) else {
            continue;
        };
        let refs = references(&String::from_utf8_lossy(&file.bytes));
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
        let refs = references(text);
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
        let refs = references("FROM \\\n  ceph/base:1 \\\n  AS b\n");
        assert_eq!(refs.images, [("ceph/base:1".to_string(), 1)]);
    }
}
