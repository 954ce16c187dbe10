//! Modified: which buildable flavors, and which of their images, a branch changes.
//!
//! The change set comes from git: the merge-base with the target branch to HEAD, plus the working
//! tree. Path mode maps changed paths to flavors through their layer directories. Exact mode
//! stages the flavors those paths reach twice, in memory, from the merge-base's tree and from the
//! working tree, and reports the ones whose image contexts differ. Nothing is written.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::config::Config;
use crate::run::{ModifiedOutput, Project, EXIT_SUCCESS};
use crate::stage::{self, Prepared, StagedFlavor};
use crate::tree::{FsTree, GitTree, Tree};

/// The branches compared with when `--vs` is not given, in order of preference.
pub const DEFAULT_REFS: &[&str] = &["origin/main", "origin/master", "main", "master"];

/// Runs `matriochka modified`.
pub fn command(
    project: &Project,
    vs: Option<&str>,
    fetch: bool,
    by_path: bool,
    output: ModifiedOutput,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let config = &project.config;
    let git = Git::open(project.root())?;
    let target = git.target(vs, fetch, err)?;
    let merge_base = git.merge_base(&target)?;
    let changes: Vec<PathBuf> = git.changes(&merge_base)?.into_iter().collect();
    let prepared = project.prepare(project.buildable()?)?;
    let affected = if by_path {
        self::by_path(config, &prepared, &changes)
    } else {
        let before = GitTree::new(project.root(), &git.prefix, &merge_base, &config.templates)?;
        let after = FsTree::new(project.root(), &config.templates);
        let links = before.has_links()
            || changes.iter().any(|path| {
                path.starts_with(&config.templates)
                    && std::fs::symlink_metadata(project.root().join(path))
                        .is_ok_and(|meta| meta.is_symlink())
            });
        let exact = exact(config, &prepared, &changes, &before, &after, links);
        for failure in &exact.failures {
            let side = match failure.side {
                Side::MergeBase => format!("at the merge-base with `{}`", target.name),
                Side::WorkTree => "in the working tree".to_string(),
            };
            writeln!(
                err,
                "warning: failed to stage `{}` {side}: {:#}",
                prepared[failure.flavor].flavor.text, failure.error
            )?;
        }
        exact.affected
    };
    print(output, &prepared, &changes, &affected, out)?;
    Ok(EXIT_SUCCESS)
}

/// A flavor the change affects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Affected {
    /// Index of the flavor in the prepared flavors.
    pub flavor: usize,
    /// The images to rebuild, in `layout.images` order.
    pub images: Vec<String>,
    /// Indexes of the changed paths that affect it, in path order.
    pub because: Vec<usize>,
}

/// Which tree a flavor was staged from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    MergeBase,
    WorkTree,
}

/// A flavor that failed to stage on one side.
#[derive(Debug)]
pub struct Failure {
    pub flavor: usize,
    pub side: Side,
    pub error: anyhow::Error,
}

/// What exact mode finds.
#[derive(Debug, Default)]
pub struct Exact {
    pub affected: Vec<Affected>,
    pub failures: Vec<Failure>,
}

/// How the changed paths reach one flavor, by path alone.
#[derive(Clone, Debug, Default)]
struct Reach {
    /// A loose file of a layer changed: every image is reached.
    loose: bool,
    /// Indexes into `layout.images` of the images whose sub-tree holds a changed path.
    images: BTreeSet<usize>,
    because: BTreeSet<usize>,
}

/// The paths reaching each flavor (`None`: not reached), and the paths matching `modified.always`.
fn reach(
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
        if config.always_matches(path) {
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
fn layer_dirs(config: &Config, prepared: &Prepared) -> Vec<PathBuf> {
    config
        .layers
        .iter()
        .filter_map(|pattern| pattern.expand(|name| prepared.vars.value(name)).ok())
        .map(|rel| config.templates.join(rel))
        .collect()
}

/// Path mode: a changed path affects a flavor when it matches `modified.always`, is a file
/// directly inside one of its layer directories, or lies below `<layer>/<image>/`.
///
/// Without reading the Dockerfiles the image graph is unknown, so every image after an affected
/// one in `layout.images` (the build order) is taken as its possible child.
pub fn by_path(config: &Config, prepared: &[Prepared], changes: &[PathBuf]) -> Vec<Affected> {
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
pub fn exact(
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
        .filter(|&change| changes[change].starts_with(&config.templates))
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
fn compare(
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
fn stage_both(
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
    let results: Vec<Mutex<Option<Result<StagedFlavor>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let job = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(flavor, side)) = jobs.get(job) else {
                    break;
                };
                let tree = match side {
                    Side::MergeBase => before,
                    Side::WorkTree => after,
                };
                let staged = stage::compute(tree, config, &prepared[flavor]);
                *results[job].lock().unwrap() = Some(staged);
            });
        }
    });
    let mut results = results
        .into_iter()
        .map(|slot| slot.into_inner().unwrap().expect("every job ran"));
    let mut pairs = Vec::with_capacity(candidates.len());
    while let (Some(before), Some(after)) = (results.next(), results.next()) {
        pairs.push((before, after));
    }
    pairs
}

fn sorted(items: impl Iterator<Item = usize>) -> Vec<usize> {
    items.collect::<BTreeSet<_>>().into_iter().collect()
}

#[derive(Serialize)]
struct JsonFlavor<'a> {
    flavor: &'a str,
    id: String,
    images: &'a [String],
    because: Vec<String>,
}

fn print(
    output: ModifiedOutput,
    prepared: &[Prepared],
    changes: &[PathBuf],
    affected: &[Affected],
    out: &mut dyn Write,
) -> Result<()> {
    let text = |a: &Affected| prepared[a.flavor].flavor.text.as_str();
    match output {
        ModifiedOutput::Lines => {
            for a in affected {
                writeln!(out, "{}", text(a))?;
            }
        }
        ModifiedOutput::Make => {
            writeln!(
                out,
                "FLAVORS=\"{}\"",
                itertools::join(affected.iter().map(text), " ")
            )?;
        }
        ModifiedOutput::Json => {
            let items: Vec<JsonFlavor> = affected
                .iter()
                .map(|a| JsonFlavor {
                    flavor: text(a),
                    id: prepared[a.flavor].id(),
                    images: &a.images,
                    because: a
                        .because
                        .iter()
                        .map(|&change| changes[change].display().to_string())
                        .collect(),
                })
                .collect();
            // One line, so that CI can put it in an output variable as it is.
            serde_json::to_writer(&mut *out, &items)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// The branch compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As the user gave it, or the default that was found.
    pub name: String,
    pub commit: String,
}

/// The git repository holding the project root.
struct Git {
    root: PathBuf,
    /// The root's path inside the repository, with a trailing `/` (empty at the top).
    prefix: String,
}

impl Git {
    fn open(root: &Path) -> Result<Git> {
        let mut git = Git {
            root: root.to_path_buf(),
            prefix: String::new(),
        };
        let output = git.output(&["rev-parse", "--show-prefix"])?;
        if !output.status.success() {
            bail!(
                "failed to read the git history of `{}`: it is not in a git repository",
                root.display()
            );
        }
        git.prefix = String::from_utf8_lossy(&output.stdout)
            .trim_end_matches('\n')
            .to_string();
        if git.resolve("HEAD")?.is_none() {
            bail!("failed to resolve `HEAD`: the repository has no commit yet");
        }
        Ok(git)
    }

    fn output(&self, args: &[&str]) -> Result<Output> {
        Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .arg("--no-optional-locks")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("failed to run `git {}`", args[0]))
    }

    /// Runs git; a failure is an error with git's message.
    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let output = self.output(args)?;
        if !output.status.success() {
            bail!(
                "failed to run `git {}`: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.stdout)
    }

    /// The commit `rev` names, if any.
    fn resolve(&self, rev: &str) -> Result<Option<String>> {
        let spec = format!("{rev}^{{commit}}");
        let output = self.output(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }

    /// The branch to compare with: `vs`, else the first of [`DEFAULT_REFS`] that exists (said
    /// on `err`); fetched first when asked.
    fn target(&self, vs: Option<&str>, fetch: bool, err: &mut dyn Write) -> Result<Target> {
        if let Some(name) = vs {
            check_rev(name)?;
            if fetch {
                self.fetch(name)?;
            }
            return match self.resolve(name)? {
                Some(commit) => Ok(Target {
                    name: name.to_string(),
                    commit,
                }),
                None => bail!("failed to resolve `{name}`: no branch, tag or commit has that name"),
            };
        }
        if fetch {
            // `origin/main`, else `origin/master`; the first error is the telling one.
            if let Err(error) = self.fetch(DEFAULT_REFS[0]) {
                self.fetch(DEFAULT_REFS[1]).map_err(|_| error)?;
            }
        }
        for name in DEFAULT_REFS {
            if let Some(commit) = self.resolve(name)? {
                writeln!(err, "note: comparing with `{name}`")?;
                return Ok(Target {
                    name: name.to_string(),
                    commit,
                });
            }
        }
        bail!(
            "failed to find a branch to compare with: none of {} exists; pass `--vs REF`",
            itertools::join(DEFAULT_REFS.iter().map(|name| format!("`{name}`")), ", ")
        )
    }

    /// Fetches `<remote>/<branch>` into its remote-tracking branch.
    fn fetch(&self, name: &str) -> Result<()> {
        let remotes = self.run(&["remote"])?;
        let remotes = String::from_utf8_lossy(&remotes);
        let found = remotes
            .lines()
            .filter_map(|remote| {
                let branch = name.strip_prefix(remote)?.strip_prefix('/')?;
                Some((remote, branch))
            })
            .max_by_key(|(remote, _)| remote.len());
        let Some((remote, branch)) = found else {
            let remote = name.split('/').next().unwrap_or(name);
            bail!(
                "failed to fetch `{name}`: no remote is named `{remote}`; `--fetch` needs a \
                 remote branch such as `origin/main`"
            );
        };
        let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
        let output = self.output(&[
            "fetch",
            "--quiet",
            "--no-tags",
            "--end-of-options",
            remote,
            &refspec,
        ])?;
        if !output.status.success() {
            bail!(
                "failed to fetch `{name}`: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// The commit where HEAD forked from the target.
    fn merge_base(&self, target: &Target) -> Result<String> {
        let output = self.output(&["merge-base", &target.commit, "HEAD"])?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let shallow = self.run(&["rev-parse", "--is-shallow-repository"])?;
        if String::from_utf8_lossy(&shallow).trim() == "true" {
            bail!(
                "failed to find the merge-base of `{}` and `HEAD`: this clone is shallow and does \
                 not reach it; deepen it (`git fetch --deepen=100`) or fetch the whole history \
                 (`git fetch --unshallow`)",
                target.name
            );
        }
        bail!(
            "failed to find the merge-base of `{}` and `HEAD`: they have no common history",
            target.name
        )
    }

    /// Paths, relative to the root, changed from `base` to HEAD or in the working tree (staged,
    /// unstaged, untracked and not ignored); both sides of a rename.
    fn changes(&self, base: &str) -> Result<BTreeSet<PathBuf>> {
        let committed = self.run(&[
            "diff",
            "--name-only",
            "--no-renames",
            "--no-relative",
            "-z",
            base,
            "HEAD",
            "--",
        ])?;
        let status = self.run(&[
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=all",
            "--no-renames",
        ])?;
        let mut paths = BTreeSet::new();
        let committed = String::from_utf8_lossy(&committed);
        let status = String::from_utf8_lossy(&status);
        for path in committed
            .split('\0')
            .filter(|p| !p.is_empty())
            .chain(status_paths(&status))
        {
            if let Some(rel) = path.strip_prefix(&self.prefix) {
                paths.insert(PathBuf::from(rel));
            }
        }
        Ok(paths)
    }
}

/// The paths of `git status --porcelain -z`, as the repository names them.
fn status_paths(status: &str) -> Vec<&str> {
    let mut paths = Vec::new();
    let mut entries = status.split('\0');
    while let Some(entry) = entries.next() {
        let Some(path) = entry.get(3..).filter(|path| !path.is_empty()) else {
            continue;
        };
        paths.push(path);
        // A rename or copy is followed by its source.
        if entry.starts_with(['R', 'C']) {
            paths.extend(entries.next().filter(|path| !path.is_empty()));
        }
    }
    paths
}

/// A revision given by the user is never passed where git could read it as an option.
fn check_rev(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("invalid `--vs` ``: name a branch, tag or commit");
    }
    if name.starts_with('-') {
        bail!("invalid `--vs` `{name}`: a branch, tag or commit does not start with `-`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_paths_include_both_sides_of_a_rename() {
        let status = " M a/b\0?? new file\0R  to\0from\0D  gone\0";
        assert_eq!(
            status_paths(status),
            ["a/b", "new file", "to", "from", "gone"]
        );
    }

    #[test]
    fn revisions_that_look_like_options_are_rejected() {
        assert!(check_rev("origin/main").is_ok());
        assert_eq!(
            check_rev("--output=x").unwrap_err().to_string(),
            "invalid `--vs` `--output=x`: a branch, tag or commit does not start with `-`"
        );
        assert_eq!(
            check_rev("").unwrap_err().to_string(),
            "invalid `--vs` ``: name a branch, tag or commit"
        );
    }
}
