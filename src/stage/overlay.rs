//! Overlay: a flavor's layer search path, and which source file wins for each staged path.
//!
//! Reads nothing but directory listings; later (more specific) layers replace what earlier ones
//! stage at a path, whatever its kind, so each path is a file or a directory, never both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::domain::config::Config;
use crate::domain::vars::Vars;
use crate::stage::tree::{Kind, Tree};

/// One layer of a flavor's search path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layer {
    /// The directory, relative to the root (`templates/ceph-releases/ALL/centos`).
    pub(crate) dir: PathBuf,
    pub(crate) exists: bool,
}

/// Where a staged file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    /// The file, relative to the root.
    pub(crate) path: PathBuf,
    pub(crate) mode: u32,
    /// Index of the layer it comes from.
    pub(crate) layer: usize,
}

/// The layers of a flavor, least to most specific.
pub(crate) fn layers(config: &Config, vars: &Vars, tree: &dyn Tree) -> Result<Vec<Layer>> {
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

/// The patterns of `layout.layers` that make no existing directory for any of `flavors` (the
/// buildable ones): a typo, or a level no flavor uses yet. Not checked by `stage` itself: a layer
/// a project keeps for later would need a placeholder file, which every image would then stage.
pub(crate) fn unmatched_patterns<'c>(
    config: &'c Config,
    flavors: &[&Vars],
    tree: &dyn Tree,
) -> Result<Vec<&'c str>> {
    let mut unmatched = Vec::new();
    for pattern in &config.layers {
        let mut matched = false;
        for vars in flavors {
            let Ok(rel) = pattern.expand(|name| vars.value(name)) else {
                continue;
            };
            if tree.list(&config.templates.join(rel))?.is_some() {
                matched = true;
                break;
            }
        }
        if !matched {
            unmatched.push(pattern.text.as_str());
        }
    }
    Ok(unmatched)
}

/// The staged path (relative to the image's context, `/`-separated) → source of one image.
///
/// Paths are placed from the least to the most specific: layer by layer, and in each layer its
/// loose files before its `<image>/` sub-tree. A path placed later replaces what was placed
/// before it, whatever its kind: a file `x` hides the less specific files below `x/`, and a file
/// below `x/` hides a less specific file `x`. Entries named `.git` are never staged.
pub(crate) fn overlay(
    tree: &dyn Tree,
    layers: &[Layer],
    image: &str,
) -> Result<BTreeMap<String, Source>> {
    let mut out = BTreeMap::new();
    for (index, layer) in layers.iter().enumerate() {
        let Some(entries) = tree.list(&layer.dir)? else {
            continue;
        };
        for entry in entries.iter().filter(|entry| is_staged(&entry.name)) {
            if let Kind::File { mode } = entry.kind {
                let path = layer.dir.join(&entry.name);
                check_name(&entry.name, &path)?;
                let source = Source {
                    path,
                    mode,
                    layer: index,
                };
                place(&mut out, entry.name.clone(), source);
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

/// Puts `value` at `staged`, removing what it hides: entries below `staged/` and entries at the
/// directories above `staged`. Returns them, in path order.
pub(crate) fn place<T>(
    out: &mut BTreeMap<String, T>,
    staged: String,
    value: T,
) -> Vec<(String, T)> {
    let mut hidden = Vec::new();
    let below = format!("{staged}/");
    let under: Vec<String> = out
        .range(below.clone()..)
        .take_while(|(path, _)| path.starts_with(&below))
        .map(|(path, _)| path.clone())
        .collect();
    let mut end = staged.len();
    while let Some(slash) = staged[..end].rfind('/') {
        if let Some(value) = out.remove(&staged[..slash]) {
            hidden.push((staged[..slash].to_string(), value));
        }
        end = slash;
    }
    hidden.reverse();
    if let Some(value) = out.remove(&staged) {
        hidden.push((staged.clone(), value));
    }
    for path in under {
        let value = out.remove(&path).expect("listed above");
        hidden.push((path, value));
    }
    out.insert(staged, value);
    hidden
}

/// Whether an entry of the templates may be staged: `.git` (a repository, or a submodule's
/// link to one) never is.
fn is_staged(name: &str) -> bool {
    name != ".git"
}

/// A staged name must fit on a line of `files-sources`: no control characters.
fn check_name(name: &str, path: &Path) -> Result<()> {
    if name.chars().any(char::is_control) {
        let shown: String = path
            .to_string_lossy()
            .chars()
            .map(|c| match c.is_control() {
                true => c.escape_default().to_string(),
                false => c.to_string(),
            })
            .collect();
        bail!(
            "template file `{shown}` has a control character in its name, which `files-sources` \
             cannot list: rename it"
        );
    }
    Ok(())
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
    for entry in entries.iter().filter(|entry| is_staged(&entry.name)) {
        let staged = format!("{prefix}{}", entry.name);
        let path = dir.join(&entry.name);
        check_name(&entry.name, &path)?;
        match entry.kind {
            Kind::File { mode } => {
                place(out, staged, Source { path, mode, layer });
            }
            Kind::Dir => add_subtree(tree, &path, &format!("{staged}/"), layer, out)?,
        }
    }
    Ok(())
}

/// For a flavor outside `flavors.buildable`: every variable the layer patterns use must select
/// at least one existing layer directory, so that a typo (`sqiud`) is an error, not an empty image.
pub(crate) fn check_known_values(
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
            if let Some(close) =
                crate::domain::suggest::closest(value, known.iter().map(String::as_str))
            {
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
        let parent = crate::domain::config::Pattern::parse(&segments[..at].join("/"))
            .ok()
            .and_then(|parent| parent.expand(|var| vars.value(var)).ok());
        let Some(parent) = parent else { continue };
        if let Some(entries) = tree.list(&config.templates.join(parent))? {
            known.extend(
                entries
                    .iter()
                    .filter(|entry| {
                        entry.kind == Kind::Dir
                            && is_staged(&entry.name)
                            && !literal_names.contains(entry.name.as_str())
                    })
                    .filter(|entry| !config.images.contains(&entry.name))
                    .map(|entry| entry.name.clone()),
            );
        }
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::stage::tree::{Bytes, Entry, MODE_FILE};

    /// A tree of the given files (each parent a directory).
    struct Files(BTreeMap<PathBuf, Vec<Entry>>);

    impl Files {
        fn new(files: &[&str]) -> Files {
            let mut dirs: BTreeMap<PathBuf, Vec<Entry>> = BTreeMap::new();
            for file in files {
                let mut kind = Kind::File { mode: MODE_FILE };
                let mut path = Path::new(file);
                while let Some(parent) = path.parent() {
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    let entries = dirs.entry(parent.to_path_buf()).or_default();
                    if !entries.iter().any(|entry| entry.name == name) {
                        entries.push(Entry { name, kind });
                        entries.sort_by(|a, b| a.name.cmp(&b.name));
                    }
                    kind = Kind::Dir;
                    path = parent;
                }
            }
            Files(dirs)
        }
    }

    impl Tree for Files {
        fn list(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>> {
            Ok(self.0.get(dir).map(|entries| entries.clone().into()))
        }

        fn read(&self, _: &Path) -> Result<Bytes> {
            Ok(Bytes::Owned(Vec::new()))
        }
    }

    fn layers(dirs: &[&str]) -> Vec<Layer> {
        dirs.iter()
            .map(|dir| Layer {
                dir: PathBuf::from(dir),
                exists: true,
            })
            .collect()
    }

    /// Staged path → source path.
    fn staged(files: &[&str], dirs: &[&str]) -> Vec<(String, String)> {
        overlay(&Files::new(files), &layers(dirs), "img")
            .unwrap()
            .into_iter()
            .map(|(staged, source)| (staged, source.path.display().to_string()))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_more_specific_file_hides_a_less_specific_directory() {
        let files = ["t/a/img/x/y", "t/a/img/x/z/w", "t/a/img/xy", "t/b/img/x"];
        assert_eq!(
            staged(&files, &["t/a", "t/b"]),
            pairs(&[("x", "t/b/img/x"), ("xy", "t/a/img/xy")])
        );
    }

    #[test]
    fn a_more_specific_directory_hides_a_less_specific_file() {
        let files = ["t/a/img/x", "t/a/x", "t/b/img/x/y", "t/b/img/x/z/w"];
        assert_eq!(
            staged(&files, &["t/a", "t/b"]),
            pairs(&[("x/y", "t/b/img/x/y"), ("x/z/w", "t/b/img/x/z/w")])
        );
    }

    #[test]
    fn an_image_directory_hides_a_loose_file_of_its_own_layer() {
        let files = ["t/a/x", "t/a/img/x/y"];
        assert_eq!(staged(&files, &["t/a"]), pairs(&[("x/y", "t/a/img/x/y")]));
    }

    #[test]
    fn the_most_specific_layer_decides_over_several() {
        let files = ["t/a/img/x/old", "t/b/img/x", "t/c/img/x/new"];
        assert_eq!(
            staged(&files, &["t/a", "t/b", "t/c"]),
            pairs(&[("x/new", "t/c/img/x/new")])
        );
    }

    #[test]
    fn git_entries_are_never_staged() {
        let files = [
            "t/a/.git",
            "t/a/img/.git/config",
            "t/a/img/sub/.git",
            "t/a/img/sub/f",
        ];
        assert_eq!(
            staged(&files, &["t/a"]),
            pairs(&[("sub/f", "t/a/img/sub/f")])
        );
    }

    #[test]
    fn a_control_character_in_a_name_is_an_error() {
        let tree = Files::new(&["t/a/img/bad\nname", "t/a/img/ok"]);
        let err = overlay(&tree, &layers(&["t/a"]), "img").unwrap_err();
        assert_eq!(
            err.to_string(),
            "template file `t/a/img/bad\\nname` has a control character in its name, which \
             `files-sources` cannot list: rename it"
        );
    }

    #[test]
    fn patterns_matching_no_directory_of_any_flavor() {
        let config = Config::parse(
            Path::new("/r"),
            Path::new("/r/flavors/matriochka.toml"),
            r#"
            [layout]
            layers = ["src", "rel/ALL", "rel/{CEPH_VERSION}", "rel/{CEPH_VERSION}/{DISTRO}", "typo/{DISTRO}"]
            images = ["img"]
            staging_dir = "staging/{CEPH_VERSION}-{DISTRO}"
            image_tag = "{IMAGE}:{CEPH_VERSION}"
            "#,
        )
        .unwrap();
        let tree = Files::new(&[
            "templates/src/img/Dockerfile",
            "templates/rel/squid/f",
            "templates/rel/reef/centos/f",
            "templates/typos/centos/f",
        ]);
        let defaults = crate::domain::flavor::ShortFormDefaults {
            host_arch: "x86_64".into(),
            baseos_registry: None,
            baseos_repo: None,
            baseos_tag: None,
        };
        let vars: Vec<Vars> = ["squid,centos,9", "reef,centos,9"]
            .iter()
            .map(|text| {
                let flavor = crate::domain::flavor::Flavor::parse(text, &defaults).unwrap();
                let git = crate::domain::git_facts::GitFacts::unknown();
                Vars::for_flavor(&flavor, &config, &crate::domain::vars::Env::default(), &git)
                    .unwrap()
            })
            .collect();
        let all: Vec<&Vars> = vars.iter().collect();
        assert_eq!(
            unmatched_patterns(&config, &all, &tree).unwrap(),
            ["rel/ALL", "typo/{DISTRO}"]
        );
        // `rel/{CEPH_VERSION}/{DISTRO}` exists for reef only.
        assert_eq!(
            unmatched_patterns(&config, &all[..1], &tree).unwrap(),
            ["rel/ALL", "rel/{CEPH_VERSION}/{DISTRO}", "typo/{DISTRO}"]
        );
    }

    #[test]
    fn place_returns_what_it_hides() {
        let mut out = BTreeMap::new();
        for path in ["a", "b/c", "b/d/e", "bc"] {
            place(&mut out, path.to_string(), 1);
        }
        let hidden = place(&mut out, "b".to_string(), 2);
        assert_eq!(hidden, [("b/c".to_string(), 1), ("b/d/e".to_string(), 1)]);
        let hidden = place(&mut out, "a/x/y".to_string(), 3);
        assert_eq!(hidden, [("a".to_string(), 1)]);
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a/x/y", "b", "bc"]);
    }
}
