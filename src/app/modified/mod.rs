//! Modified: which buildable flavors, and which of their images, a branch changes.
//!
//! The change set comes from git: the merge-base with the target branch to HEAD, plus the working
//! tree. Path mode maps changed paths to flavors through their layer directories. Exact mode
//! stages the flavors those paths reach twice, in memory, from the merge-base's tree and from the
//! working tree, and reports the ones whose image contexts differ. Nothing is written.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::domain::config::{normal_path, Config};
use crate::infra::pool;
use crate::stage::tree::Tree;
use crate::stage::{self, Prepared, StagedFlavor};

/// A flavor the change affects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Affected {
    /// Index of the flavor in the prepared flavors.
    pub(crate) flavor: usize,
    /// The images to rebuild, in `layout.images` order.
    pub(crate) images: Vec<String>,
    /// Indexes of the changed paths that affect it, in path order.
    pub(crate) because: Vec<usize>,
}

/// Which tree a flavor was staged from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    MergeBase,
    WorkTree,
}

/// A flavor that failed to stage on one side.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) flavor: usize,
    pub(crate) side: Side,
    pub(crate) error: anyhow::Error,
}

/// What exact mode finds.
#[derive(Debug, Default)]
pub(crate) struct Exact {
    pub(crate) affected: Vec<Affected>,
    pub(crate) failures: Vec<Failure>,
}

/// How the changed paths reach one flavor, by path alone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reach {
    /// A loose file of a layer changed: every image is reached.
    loose: bool,
    /// Indexes into `layout.images` of the images whose sub-tree holds a changed path.
    images: BTreeSet<usize>,
    because: BTreeSet<usize>,
}

/// The paths reaching each flavor (`None`: not reached), and the paths matching `modified.always`.
pub(crate) fn reach(
    config: &Config,
    prepared: &[Prepared],
    changes: &[PathBuf],
) -> (Vec<Option<Reach>>, Vec<usize>) {
    let mut by_dir: HashMap<PathBuf, Vec<usize>> = HashMap::new();
    for (index, p) in prepared.iter().enumerate() {
        for dir in layer_dirs(config, p) {
            let flavors = by_dir.entry(dir).or_default();
            if flavors.last() != Some(&index) {
                flavors.push(index);
            }
        }
    }
    let mut reach: Vec<Option<Reach>> = vec![None; prepared.len()];
    let mut always = Vec::new();
    for (change, path) in changes.iter().enumerate() {
        if config.always_matches(path) || config.decor.is_source(path) {
            always.push(change);
        }
        let names: Vec<&std::ffi::OsStr> = path.iter().collect();
        let mut dir = PathBuf::new();
        for (depth, name) in names.iter().enumerate() {
            let rest = names.len() - depth;
            if rest == 1 {
                for &flavor in by_dir.get(&dir).into_iter().flatten() {
                    let reach = reach[flavor].get_or_insert_with(Reach::default);
                    reach.loose = true;
                    reach.because.insert(change);
                }
            } else if let Some(image) = config
                .images
                .iter()
                .position(|image| image.as_str() == *name)
            {
                for &flavor in by_dir.get(&dir).into_iter().flatten() {
                    let reach = reach[flavor].get_or_insert_with(Reach::default);
                    reach.images.insert(image);
                    reach.because.insert(change);
                }
            }
            dir.push(name);
        }
    }
    (reach, always)
}

/// A flavor's layer directories, relative to the root, whether they exist or not. A layer naming
/// a variable the flavor does not set has no directory.
pub(crate) fn layer_dirs(config: &Config, prepared: &Prepared) -> Vec<PathBuf> {
    config
        .layers
        .iter()
        .filter_map(|pattern| pattern.expand(|name| prepared.vars.value(name)).ok())
        .map(|rel| normal_path(&config.templates.join(rel)))
        .collect()
}

/// Whether a changed path lies in the templates tree, outside what the tree leaves out (the
/// staging root, the configuration) when the templates are the root.
pub(crate) fn in_templates(config: &Config, path: &Path) -> bool {
    path.starts_with(&config.templates)
        && !config
            .excluded_from_templates()
            .iter()
            .any(|excluded| path.starts_with(excluded))
}

/// Path mode: a changed path affects a flavor when it matches `modified.always`, is a file
/// directly inside one of its layer directories, or lies below `<layer>/<image>/`.
///
/// Without reading the Dockerfiles the image graph is unknown, so every image after an affected
/// one in `layout.images` (the build order) is taken as its possible child.
pub(crate) fn by_path(
    config: &Config,
    prepared: &[Prepared],
    changes: &[PathBuf],
) -> Vec<Affected> {
    let (reach, always) = reach(config, prepared, changes);
    let all = config.images.clone();
    reach
        .into_iter()
        .enumerate()
        .filter_map(|(flavor, reach)| {
            if reach.is_none() && always.is_empty() {
                return None;
            }
            let reach = reach.unwrap_or_default();
            let images = if reach.loose || !always.is_empty() {
                all.clone()
            } else {
                let first = *reach.images.first().expect("a reached flavor has an image");
                all[first..].to_vec()
            };
            let because = reach.because.into_iter().chain(always.iter().copied());
            Some(Affected {
                flavor,
                images,
                because: sorted(because),
            })
        })
        .collect()
}

/// Exact mode: a flavor is affected when a changed path matches `modified.always`, or when its
/// image contexts (paths, modes and bytes) staged from `before` and from `after` differ. A flavor
/// that fails on one side only is affected; one that fails on both is when the errors differ.
///
/// Only the flavors that changed paths reach (see [`by_path`]) are staged, in parallel. With
/// symbolic links in the templates (`links`) a changed file can stand for another path, so then
/// every flavor is staged when any changed path lies below the templates.
pub(crate) fn exact(
    config: &Config,
    prepared: &[Prepared],
    changes: &[PathBuf],
    before: &dyn Tree,
    after: &dyn Tree,
    links: bool,
) -> Exact {
    let (reach, always) = reach(config, prepared, changes);
    if !always.is_empty() {
        let affected = reach
            .into_iter()
            .enumerate()
            .map(|(flavor, reach)| Affected {
                flavor,
                images: config.images.clone(),
                because: sorted(
                    reach
                        .map(|reach| reach.because)
                        .unwrap_or_default()
                        .into_iter()
                        .chain(always.iter().copied()),
                ),
            })
            .collect();
        return Exact {
            affected,
            failures: Vec::new(),
        };
    }
    let in_templates: Vec<usize> = (0..changes.len())
        .filter(|&change| in_templates(config, &changes[change]))
        .collect();
    let candidates: Vec<(usize, Vec<usize>)> = reach
        .into_iter()
        .enumerate()
        .filter_map(|(flavor, reach)| match reach {
            Some(reach) => Some((flavor, reach.because.into_iter().collect())),
            None if links && !in_templates.is_empty() => Some((flavor, in_templates.clone())),
            None => None,
        })
        .collect();
    let staged = stage_both(config, prepared, &candidates, before, after);
    let mut result = Exact::default();
    for ((flavor, reached), (before, after)) in candidates.into_iter().zip(staged) {
        let affected = match (before, after) {
            (Ok(before), Ok(after)) => compare(config, &before, &after, changes, &reached),
            (before, after) => {
                let before = before.err();
                let after = after.err();
                let same = match (&before, &after) {
                    (Some(before), Some(after)) => format!("{before:#}") == format!("{after:#}"),
                    _ => false,
                };
                let sides = [(Side::MergeBase, before), (Side::WorkTree, after)];
                for (side, error) in sides {
                    if let Some(error) = error {
                        result.failures.push(Failure {
                            flavor,
                            side,
                            error,
                        });
                    }
                }
                (!same).then(|| (config.images.clone(), reached))
            }
        };
        if let Some((images, because)) = affected {
            result.affected.push(Affected {
                flavor,
                images,
                because,
            });
        }
    }
    result
}

/// The images whose contexts differ, with their children, and the changed paths that made the
/// differing files; `None` when the contexts are the same.
pub(crate) fn compare(
    config: &Config,
    before: &StagedFlavor,
    after: &StagedFlavor,
    changes: &[PathBuf],
    reached: &[usize],
) -> Option<(Vec<String>, Vec<usize>)> {
    let mut changed = BTreeSet::new();
    let mut sources: BTreeSet<&Path> = BTreeSet::new();
    let empty = Default::default();
    for image in &after.images {
        let old = before.images.iter().find(|old| old.name == image.name);
        if old.is_some_and(|old| old.digest == image.digest) {
            continue;
        }
        changed.insert(image.name.clone());
        let old_files = old.map_or(&empty, |old| &old.files);
        let paths: BTreeSet<&String> = old_files.keys().chain(image.files.keys()).collect();
        for path in paths {
            let (old, new) = (old_files.get(path), image.files.get(path));
            let same = match (old, new) {
                (Some(old), Some(new)) => old.bytes == new.bytes && old.mode == new.mode,
                _ => false,
            };
            if !same {
                for file in old.into_iter().chain(new) {
                    sources.insert(&file.source);
                    sources.extend(file.fragments.values().map(PathBuf::as_path));
                }
            }
        }
    }
    if changed.is_empty() {
        return None;
    }
    // Children of a changed image are rebuilt too: the graph is the one that will be built.
    loop {
        let children: Vec<String> = after
            .images
            .iter()
            .filter(|image| !changed.contains(&image.name))
            .filter(|image| image.parents.iter().any(|parent| changed.contains(parent)))
            .map(|image| image.name.clone())
            .collect();
        if children.is_empty() {
            break;
        }
        changed.extend(children);
    }
    let images = config
        .images
        .iter()
        .filter(|image| changed.contains(*image))
        .cloned()
        .collect();
    let made: Vec<usize> = reached
        .iter()
        .copied()
        .filter(|&change| sources.contains(changes[change].as_path()))
        .collect();
    // A difference no changed file explains directly (a link's target, a directory that
    // appeared) is put down to every path that reached the flavor.
    let because = if made.is_empty() {
        reached.to_vec()
    } else {
        made
    };
    Some((images, because))
}

type Pair = (Result<StagedFlavor>, Result<StagedFlavor>);

/// Stages each candidate from both trees, on as many threads as there are cores.
pub(crate) fn stage_both(
    config: &Config,
    prepared: &[Prepared],
    candidates: &[(usize, Vec<usize>)],
    before: &dyn Tree,
    after: &dyn Tree,
) -> Vec<Pair> {
    let jobs: Vec<(usize, Side)> = candidates
        .iter()
        .flat_map(|(flavor, _)| [(*flavor, Side::MergeBase), (*flavor, Side::WorkTree)])
        .collect();
    let mut results = pool::map(pool::cores_for(jobs.len()), jobs.len(), |job| {
        let (flavor, side) = jobs[job];
        let tree = match side {
            Side::MergeBase => before,
            Side::WorkTree => after,
        };
        stage::compute(tree, config, &prepared[flavor])
    })
    .into_iter();
    let mut pairs = Vec::with_capacity(candidates.len());
    while let (Some(before), Some(after)) = (results.next(), results.next()) {
        pairs.push((before, after));
    }
    pairs
}

pub(crate) fn sorted(items: impl Iterator<Item = usize>) -> Vec<usize> {
    items.collect::<BTreeSet<_>>().into_iter().collect()
}

pub(crate) mod config_edit;
#[cfg(test)]
mod exact_property;

/// The flavors `texts` of `config`, prepared as buildable with no environment and no git (tests).
#[cfg(test)]
fn prepared_for_tests(config: &Config, texts: &[&str]) -> Vec<Prepared> {
    use crate::domain::flavor::Flavor;
    use crate::domain::git_facts::GitFacts;
    use crate::domain::vars::Env;
    let defaults = Env::default().short_form_defaults();
    texts
        .iter()
        .map(|text| {
            let flavor = Flavor::parse(text, &defaults).unwrap();
            Prepared::new(flavor, config, &Env::default(), &GitFacts::unknown(), true).unwrap()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[layout]
layers = ["src", "rel/ALL", "rel/ALL/{DISTRO}", "rel/{CEPH_VERSION}"]
images = ["core", "app", "tools"]
staging_dir = "staging/{CEPH_VERSION}-{DISTRO}"
image_tag = "{IMAGE}:{CEPH_VERSION}-{DISTRO}"

[modified]
always = ["flavors/**", "Makefile"]
"#;

    fn project() -> (Config, Vec<Prepared>) {
        project_with(CONFIG)
    }

    fn project_with(text: &str) -> (Config, Vec<Prepared>) {
        let config = Config::parse(Path::new("/r"), Path::new("/r/flavors/m.toml"), text).unwrap();
        let prepared = super::prepared_for_tests(
            &config,
            &[
                "squid,x86_64,centos,9,_,centos,9",
                "reef,x86_64,ubuntu,22.04,_,ubuntu,22.04",
            ],
        );
        (config, prepared)
    }

    /// Path mode as (flavor, images, because) with paths spelled out.
    fn by_path_of(paths: &[&str]) -> Vec<(usize, Vec<String>, Vec<String>)> {
        let (config, prepared) = project();
        let changes: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        by_path(&config, &prepared, &changes)
            .into_iter()
            .map(|a| {
                let because = a.because.iter().map(|&c| paths[c].to_string()).collect();
                (a.flavor, a.images, because)
            })
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn loose_files_reach_every_image_of_the_flavors_with_that_layer() {
        assert_eq!(
            by_path_of(&["templates/rel/ALL/centos/__INSTALL__"]),
            [(
                0,
                strings(&["core", "app", "tools"]),
                strings(&["templates/rel/ALL/centos/__INSTALL__"])
            )]
        );
        let run_sh = strings(&["templates/src/run.sh"]);
        let all = strings(&["core", "app", "tools"]);
        assert_eq!(
            by_path_of(&["templates/src/run.sh"]),
            [(0, all.clone(), run_sh.clone()), (1, all, run_sh)]
        );
    }

    #[test]
    fn an_image_sub_tree_reaches_that_image_and_the_ones_built_after_it() {
        let path = "templates/rel/reef/app/etc/conf";
        assert_eq!(
            by_path_of(&[path]),
            [(1, strings(&["app", "tools"]), strings(&[path]))]
        );
    }

    #[test]
    fn other_directories_reach_nothing() {
        assert!(by_path_of(&[
            "templates/rel/ALL/docs/README",
            "templates/rel/tentacle/x",
            "templates/rel/ALL/centosx/y",
            "docs/rel/ALL/z",
            "README.md",
        ])
        .is_empty());
    }

    #[test]
    fn templates_at_the_root_compare_paths_in_one_normal_form() {
        for templates in [".", "./"] {
            let text = CONFIG.replace(
                "[layout]",
                &format!("[layout]\ntemplates = \"{templates}\""),
            );
            let (config, prepared) = project_with(&text);
            let changes: Vec<PathBuf> = ["rel/reef/app/x", "./rel/ALL/centos/y", "staging/a/app/z"]
                .iter()
                .map(|path| normal_path(Path::new(path)))
                .collect();
            let found: Vec<(usize, Vec<String>, Vec<usize>)> =
                by_path(&config, &prepared, &changes)
                    .into_iter()
                    .map(|a| (a.flavor, a.images, a.because))
                    .collect();
            assert_eq!(
                found,
                [
                    (0, strings(&["core", "app", "tools"]), vec![1]),
                    (1, strings(&["app", "tools"]), vec![0]),
                ]
            );
            assert!(!in_templates(&config, Path::new("staging/a/app/z")));
            assert!(!in_templates(&config, Path::new("flavors/m.toml")));
            assert!(in_templates(&config, Path::new("rel/ALL/centos/y")));
        }
    }

    #[test]
    fn always_globs_reach_every_flavor() {
        let found = by_path_of(&["Makefile", "templates/rel/squid/tools/x"]);
        assert_eq!(
            found,
            [
                (
                    0,
                    strings(&["core", "app", "tools"]),
                    strings(&["Makefile", "templates/rel/squid/tools/x"])
                ),
                (
                    1,
                    strings(&["core", "app", "tools"]),
                    strings(&["Makefile"])
                ),
            ]
        );
    }
}
