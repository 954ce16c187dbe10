//! Overlay: a flavor's layer search path, and which source file wins for each staged path.
//!
//! Reads nothing but directory listings; later (more specific) layers replace earlier ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::config::Config;
use crate::tree::{Kind, Tree};
use crate::vars::Vars;

/// One layer of a flavor's search path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The directory, relative to the root (`templates/ceph-releases/ALL/centos`).
    pub dir: PathBuf,
    pub exists: bool,
}

/// Where a staged file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The file, relative to the root.
    pub path: PathBuf,
    pub mode: u32,
    /// Index of the layer it comes from.
    pub layer: usize,
}

/// The layers of a flavor, least to most specific.
pub fn layers(config: &Config, vars: &Vars, tree: &dyn Tree) -> Result<Vec<Layer>> {
    config
        .layers
        .iter()
        .map(|pattern| {
            let rel = pattern.expand(|name| vars.value(name)).map_err(|name| {
                anyhow::anyhow!("layer `{pattern}` names `{{{name}}}`, which is not set")
            })?;
            let dir = config.templates.join(rel);
            let exists = tree.list(&dir)?.is_some();
            Ok(Layer { dir, exists })
        })
        .collect()
}

/// The staged path (relative to the image's context, `/`-separated) → source of one image.
pub fn overlay(tree: &dyn Tree, layers: &[Layer], image: &str) -> Result<BTreeMap<String, Source>> {
    let mut out = BTreeMap::new();
    for (index, layer) in layers.iter().enumerate() {
        let Some(entries) = tree.list(&layer.dir)? else {
            continue;
        };
        for entry in entries.iter() {
            if let Kind::File { mode } = entry.kind {
                let path = layer.dir.join(&entry.name);
                out.insert(
                    entry.name.clone(),
                    Source {
                        path,
                        mode,
                        layer: index,
                    },
                );
            }
        }
        let image_dir = layer.dir.join(image);
        if entries
            .iter()
            .any(|entry| entry.name == image && entry.kind == Kind::Dir)
        {
            add_subtree(tree, &image_dir, "", index, &mut out)?;
        }
    }
    Ok(out)
}

fn add_subtree(
    tree: &dyn Tree,
    dir: &Path,
    prefix: &str,
    layer: usize,
    out: &mut BTreeMap<String, Source>,
) -> Result<()> {
    let Some(entries) = tree.list(dir)? else {
        return Ok(());
    };
    for entry in entries.iter() {
        let staged = format!("{prefix}{}", entry.name);
        let path = dir.join(&entry.name);
        match entry.kind {
            Kind::File { mode } => {
                out.insert(staged, Source { path, mode, layer });
            }
            Kind::Dir => add_subtree(tree, &path, &format!("{staged}/"), layer, out)?,
        }
    }
    Ok(())
}

/// For a flavor outside `flavors.buildable`: every variable the layer patterns use must select
/// at least one existing layer directory, so that a typo (`sqiud`) is an error, not an empty image.
pub fn check_known_values(
    config: &Config,
    vars: &Vars,
    layers: &[Layer],
    tree: &dyn Tree,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    for pattern in &config.layers {
        for name in pattern.variables() {
            if !seen.insert(name.to_string()) {
                continue;
            }
            let used_by = |index: &usize| config.layers[*index].variables().any(|var| var == name);
            let indexes: Vec<usize> = (0..layers.len()).filter(used_by).collect();
            if indexes.iter().any(|&index| layers[index].exists) {
                continue;
            }
            let value = vars.value(name).unwrap_or_default();
            let known = known_values(config, vars, name, tree)?;
            let searched = itertools::join(
                indexes
                    .iter()
                    .map(|&i| format!("`{}`", layers[i].dir.display())),
                ", ",
            );
            let mut message =
                format!("{name} `{value}` has no layer directory (looked for {searched})");
            if known.is_empty() {
                message.push_str("; no value has one");
            } else {
                message.push_str(&format!(
                    "; known values: {}",
                    itertools::join(&known, ", ")
                ));
            }
            if let Some(close) = crate::suggest::closest(value, known.iter().map(String::as_str)) {
                message.push_str(&format!("; did you mean `{close}`?"));
            }
            bail!(message);
        }
    }
    Ok(())
}

/// The directory names that can stand for `name` in the layer patterns.
fn known_values(
    config: &Config,
    vars: &Vars,
    name: &str,
    tree: &dyn Tree,
) -> Result<BTreeSet<String>> {
    let literal_names: BTreeSet<&str> = config
        .layers
        .iter()
        .flat_map(|pattern| pattern.text.split('/'))
        .filter(|segment| !segment.contains('{'))
        .collect();
    let mut known = BTreeSet::new();
    for pattern in &config.layers {
        let segments: Vec<&str> = pattern.text.split('/').collect();
        let Some(at) = segments
            .iter()
            .position(|segment| *segment == format!("{{{name}}}"))
        else {
            continue;
        };
        let parent = crate::config::Pattern::parse(&segments[..at].join("/"))
            .ok()
            .and_then(|parent| parent.expand(|var| vars.value(var)).ok());
        let Some(parent) = parent else { continue };
        if let Some(entries) = tree.list(&config.templates.join(parent))? {
            known.extend(
                entries
                    .iter()
                    .filter(|entry| {
                        entry.kind == Kind::Dir && !literal_names.contains(entry.name.as_str())
                    })
                    .filter(|entry| !config.images.contains(&entry.name))
                    .map(|entry| entry.name.clone()),
            );
        }
    }
    Ok(known)
}
