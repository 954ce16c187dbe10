//! Stage: a flavor computed completely in memory, then written incrementally.
//!
//! Guarantees: a flavor that fails to compute writes nothing; a file is rewritten (temp file +
//! rename) only when its bytes or mode changed, so unchanged files keep their mtime; files no
//! longer produced are removed; nothing outside the staging root is written or removed.
//!
//! Writes run under the staging root's exclusive lock ([`crate::infra::lock`]), and temporaries live in
//! `<staging root>/.tmp/`, which no build context sees and each run empties first: a killed run
//! leaves nothing a later run keeps. A flavor's context files are written before its digests,
//! then `flavor.mk`; a write that fails removes the flavor's digests and manifest, so neither the
//! fast path nor a build takes the half-written context.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use crate::domain::config::Config;
use crate::domain::digest::{hex, ContextHasher};
use crate::domain::git_facts::GitFacts;
use crate::domain::layout;
use crate::infra::lock::StagingLock;
use crate::stage::overlay::Layer;
use crate::stage::render::StagedFile;
use crate::stage::tree::{Tree, MODE_FILE};

pub(crate) mod cache;
pub(crate) mod decor;
pub(crate) mod fastpath;
pub(crate) mod model;
pub(crate) mod overlay;
pub(crate) mod parents;
pub(crate) mod render;
pub(crate) mod tree;

pub(crate) use crate::stage::model::{Prepared, StagedFlavor, StagedImage};

/// Where a run writes files before renaming them into place: `<staging root>/.tmp/`, on the
/// filesystem of the staging dirs (so the rename is atomic) and in no build context.
#[derive(Debug)]
pub(crate) struct Temps {
    dir: PathBuf,
    next: AtomicU64,
}

impl Temps {
    /// Empties (or makes) the temp directory of `root/staging_root`: whatever is in it was left
    /// by a killed run, since `lock`, the staging root's exclusive lock, keeps other runs out.
    pub(crate) fn clean(root: &Path, staging_root: &Path, lock: &StagingLock) -> Result<Temps> {
        debug_assert!(lock.path().starts_with(root.join(staging_root)));
        let dir = root.join(staging_root).join(layout::TEMP_DIR);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&dir),
            Ok(_) => std::fs::remove_file(&dir),
            Err(_) => Ok(()),
        }
        .with_context(|| format!("failed to remove `{}`", dir.display()))?;
        std::fs::create_dir(&dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        Ok(Temps {
            dir,
            next: AtomicU64::new(0),
        })
    }

    /// A new temp file path, unique in the run.
    fn path(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{}-{n}", std::process::id()))
    }

    /// Writes `bytes` with `mode` to a new temp file, then renames it to `path`; the temp file
    /// is removed when anything fails.
    fn write_then_rename(&self, path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
        crate::infra::fs::write_via(path, &self.path(), bytes, Some(mode)).map(drop)
    }
}

/// Computes every image of a flavor; reads templates only.
pub(crate) fn compute(
    tree: &dyn Tree,
    config: &Config,
    prepared: &Prepared,
) -> Result<StagedFlavor> {
    let layers = checked_layers(tree, config, prepared)?;
    compute_on(tree, config, prepared, &layers)
}

/// [`compute`] on layers already found by [`checked_layers`].
pub(crate) fn compute_on(
    tree: &dyn Tree,
    config: &Config,
    prepared: &Prepared,
    layers: &[Layer],
) -> Result<StagedFlavor> {
    let vars = &prepared.vars;
    let mut images = Vec::new();
    for (name, tag) in &vars.image_tags {
        let sources = overlay::overlay(tree, layers, name)?;
        let files = render::render_image(tree, &sources, name, vars, config, layers)?;
        let digest = context_digest(&files);
        images.push(StagedImage {
            name: name.clone(),
            tag: tag.clone(),
            files,
            digest,
            parents: Vec::new(),
            external_base: false,
        });
    }
    parents::link(&mut images, &vars.build_args)?;
    if config.decor != crate::domain::decor::Decor::default() {
        decor::apply(&config.decor, &mut images, &vars.build_args);
        for image in &mut images {
            image.digest = context_digest(&image.files);
        }
    }
    Ok(StagedFlavor {
        prepared: prepared.clone(),
        images,
    })
}

/// A flavor's layers; for a flavor outside `flavors.buildable`, checked to exist.
pub(crate) fn checked_layers(
    tree: &dyn Tree,
    config: &Config,
    prepared: &Prepared,
) -> Result<Vec<Layer>> {
    let layers = overlay::layers(config, &prepared.vars, tree)?;
    if !prepared.buildable && !prepared.test {
        overlay::check_known_values(config, &prepared.vars, &layers, tree)?;
    }
    Ok(layers)
}

/// sha256 over each file's path, mode and bytes, in path order.
pub(crate) fn context_digest(files: &BTreeMap<String, StagedFile>) -> String {
    let mut hasher = ContextHasher::default();
    for (path, file) in files {
        hasher.file(path, file.mode, file.bytes.len() as u64);
        hasher.bytes(&file.bytes);
    }
    hasher.finish()
}

/// The `files-sources` text: every staged file, its source and the fragments it used.
pub(crate) fn files_sources(staged: &StagedFlavor, git: &GitFacts) -> String {
    let mark = |path: &Path| if git.modified.contains(path) { "*" } else { "" };
    let mut out = format!(
        "# files of {} and the template each one comes from; `*` marks a source modified in git,\n\
         # indented lines are the fragments a file used\n",
        staged.prepared.flavor.tuple()
    );
    for image in &staged.images {
        for (path, file) in &image.files {
            let _ = writeln!(
                out,
                "{}/{path} <- {}{}",
                image.name,
                mark(&file.source),
                file.source.display()
            );
            for (token, source) in &file.fragments {
                let _ = writeln!(out, "    {token} <- {}{}", mark(source), source.display());
            }
        }
    }
    out
}

/// How many files a write changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WriteStats {
    pub(crate) written: usize,
    pub(crate) unchanged: usize,
    pub(crate) removed: usize,
}

/// A file to write, relative to the directory it is written in.
pub(crate) struct Output<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) mode: u32,
}

/// All the files of a flavor's staging dir: image contexts, digests, provenance and extras.
pub(crate) fn outputs<'a>(
    staged: &'a StagedFlavor,
    sources: &'a str,
    extra: &'a BTreeMap<String, String>,
    digests: &'a BTreeMap<String, String>,
) -> BTreeMap<String, Output<'a>> {
    let mut out = BTreeMap::new();
    for image in &staged.images {
        for (path, file) in &image.files {
            out.insert(
                format!("{}/{path}", image.name),
                Output {
                    bytes: &file.bytes,
                    mode: file.mode,
                },
            );
        }
    }
    for (path, text) in digests.iter().chain(extra) {
        out.insert(
            path.clone(),
            Output {
                bytes: text.as_bytes(),
                mode: MODE_FILE,
            },
        );
    }
    out.insert(
        layout::FILES_SOURCES.to_string(),
        Output {
            bytes: sources.as_bytes(),
            mode: MODE_FILE,
        },
    );
    out
}

/// The digest files: `.matriochka/<image>.sha256`, whose mtimes make reports exact.
pub(crate) fn digest_files(staged: &StagedFlavor) -> BTreeMap<String, String> {
    staged
        .images
        .iter()
        .map(|image| {
            (
                format!("{}/{}.sha256", layout::CONTEXT_DIR, image.name),
                format!("{}\n", image.digest),
            )
        })
        .collect()
}

/// Makes `dir` (relative to `root`) hold exactly `files`, touching only what differs.
///
/// `dir` must lie below `staging_root`; links found below `staging_root` are replaced, never
/// followed, so nothing outside it is written. The manifest goes first; then the context files
/// are written, then the digests of `.matriochka` (one that changes is removed before any context
/// file is written), then the files of the staging dir itself (`files-sources`, `flavor.mk`).
/// When anything fails, the flavor's digests and manifest are removed ([`unmark`]).
pub(crate) fn write_dir(
    root: &Path,
    staging_root: &Path,
    dir: &Path,
    files: &BTreeMap<String, Output>,
    temps: &Temps,
) -> Result<WriteStats> {
    assert!(
        dir.starts_with(staging_root),
        "staging dir outside the staging root"
    );
    check_not_reserved(staging_root, dir)?;
    let result = write_dir_in_order(root, staging_root, dir, files, temps);
    if result.is_err() {
        unmark(&root.join(dir));
    }
    result
}

/// Fails for a staging dir among the staging root's own entries (`.lock`, `.tmp`, the build
/// stamps): staged there, it would break the lock or be emptied by the next run.
fn check_not_reserved(staging_root: &Path, dir: &Path) -> Result<()> {
    let first = dir
        .strip_prefix(staging_root)
        .ok()
        .and_then(|rest| rest.iter().next());
    if first.is_some_and(|name| name.as_encoded_bytes().starts_with(b".")) {
        anyhow::bail!(
            "staging dir `{}` is reserved: the entries of `{}` starting with `.` are matriochka's own",
            dir.display(),
            staging_root.display()
        );
    }
    Ok(())
}

/// Removes the digests and the manifest of the staging dir `base`: the next run stages it fully,
/// and no build takes its context for one with a known digest.
pub(crate) fn unmark(base: &Path) {
    let _ = std::fs::remove_dir_all(base.join(layout::CONTEXT_DIR));
}

/// The order of writes: context files (0), then digests (1), then the staging dir's own files (2).
fn write_rank(rel: &str) -> u8 {
    if rel
        .strip_prefix(layout::CONTEXT_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
    {
        1
    } else if rel.contains('/') {
        0
    } else {
        2
    }
}

fn write_dir_in_order(
    root: &Path,
    staging_root: &Path,
    dir: &Path,
    files: &BTreeMap<String, Output>,
    temps: &Temps,
) -> Result<WriteStats> {
    let base = root.join(dir);
    let mut current = root.join(staging_root);
    std::fs::create_dir_all(&current)
        .with_context(|| format!("failed to create `{}`", current.display()))?;
    for component in dir.strip_prefix(staging_root).unwrap().components() {
        current.push(component);
        ensure_real_dir(&current)?;
    }
    // The manifest goes before anything is written, and comes back once all is written.
    let manifest = base.join(layout::MANIFEST);
    match std::fs::remove_file(&manifest) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("failed to remove `{}`", manifest.display()));
        }
        _ => {}
    }
    let mut stats = WriteStats::default();
    // What the directory holds: relative path → whether it is a regular file (links and other
    // kinds are replaced, never read). The walk's file types come from the directory entries.
    let mut existing: BTreeMap<String, bool> = BTreeMap::new();
    let mut dirs = Vec::new();
    for entry in walkdir::WalkDir::new(&base).min_depth(1) {
        let entry = entry.with_context(|| format!("failed to list `{}`", base.display()))?;
        let rel = entry
            .path()
            .strip_prefix(&base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().is_dir() {
            dirs.push(rel);
        } else {
            existing.insert(rel, entry.file_type().is_file());
        }
    }
    let mut buffer = vec![0; COMPARE_CHUNK];
    // A digest that changes goes before anything of its context does, so that a run killed in
    // the middle leaves no digest of a context that is not on disk.
    for (rel, output) in files.iter().filter(|(rel, _)| write_rank(rel) == 1) {
        let path = base.join(rel);
        let stale = match existing.get(rel.as_str()) {
            Some(true) => !same_contents(&path, output, &mut buffer)?,
            Some(false) => true,
            None => false,
        };
        if stale {
            std::fs::remove_file(&path)
                .with_context(|| format!("failed to remove `{}`", path.display()))?;
            existing.remove(rel.as_str());
        }
    }
    // Directories holding something that stays are not empty; the others are tried for removal.
    let mut occupied = HashSet::new();
    for rel in existing.keys() {
        if files.contains_key(rel.as_str()) {
            let mut dir = rel.as_str();
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if !occupied.insert(parent.to_string()) {
                    break;
                }
                dir = parent;
            }
        } else {
            let path = base.join(rel);
            std::fs::remove_file(&path)
                .with_context(|| format!("failed to remove `{}`", path.display()))?;
            stats.removed += 1;
        }
    }
    // The directories left once the empty ones are gone: known to be real directories, so
    // writing below them needs no check.
    let mut real_dirs = HashSet::new();
    for rel in dirs.iter().rev() {
        // Only empty directories go; the error for a non-empty one is expected.
        if occupied.contains(rel) || std::fs::remove_dir(base.join(rel)).is_err() {
            real_dirs.insert(rel.clone());
        }
    }
    let mut order: Vec<(&String, &Output)> = files.iter().collect();
    order.sort_by_key(|(rel, _)| write_rank(rel));
    for (rel, output) in order {
        let path = base.join(rel);
        match existing.get(rel.as_str()) {
            Some(true) if same_contents(&path, output, &mut buffer)? => {
                stats.unchanged += 1;
                continue;
            }
            // Found by the walk, so its parents are real directories already.
            Some(_) => write_through_temp(&path, output, temps)?,
            None => {
                if real_dirs.contains(rel.as_str()) {
                    std::fs::remove_dir_all(&path)
                        .with_context(|| format!("failed to remove `{}`", path.display()))?;
                    real_dirs.retain(|dir| !is_same_or_below(dir, rel));
                }
                if let Some((parent, _)) = rel.rsplit_once('/') {
                    ensure_dirs(&base, parent, &mut real_dirs)?;
                }
                if write_rank(rel) == 0 {
                    create_file(&base, rel, output, temps)?;
                } else {
                    // Read by builds and make: whole or absent.
                    write_through_temp(&path, output, temps)?;
                }
            }
        }
        stats.written += 1;
    }
    Ok(stats)
}

/// How much of an existing file is read at a time to compare it.
const COMPARE_CHUNK: usize = 64 * 1024;

fn is_same_or_below(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn ensure_real_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => std::fs::remove_file(path)
            .with_context(|| format!("failed to remove `{}`", path.display()))?,
        Err(_) => {}
    }
    std::fs::create_dir(path).with_context(|| format!("failed to create `{}`", path.display()))
}

/// Makes `base/rel_dir` and its parents real directories; `known` holds those already checked.
fn ensure_dirs(base: &Path, rel_dir: &str, known: &mut HashSet<String>) -> Result<()> {
    if known.contains(rel_dir) {
        return Ok(());
    }
    if let Some((parent, _)) = rel_dir.rsplit_once('/') {
        ensure_dirs(base, parent, known)?;
    }
    let path = base.join(rel_dir);
    match std::fs::create_dir(&path) {
        Ok(()) => {}
        // Something is there (a file or a link, stale ones are gone already): check and replace.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => ensure_real_dir(&path)?,
        Err(err) => {
            return Err(err).with_context(|| format!("failed to create `{}`", path.display()))
        }
    }
    known.insert(rel_dir.to_string());
    Ok(())
}

/// Whether the file at `path` has `output`'s mode and bytes; false when it is not a regular file.
fn same_file(path: &Path, output: &Output) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => same_contents(path, output, &mut vec![0; COMPARE_CHUNK]),
        _ => Ok(false),
    }
}

/// Compares a regular file with `output`, a chunk at a time through `buffer`, stopping at the
/// first difference; the size and mode come from the open file, so there is one path lookup.
fn same_contents(path: &Path, output: &Output, buffer: &mut [u8]) -> Result<bool> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(false);
    };
    let read_error =
        |err| anyhow::Error::new(err).context(format!("failed to read `{}`", path.display()));
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file()
        || meta.len() != output.bytes.len() as u64
        || meta.permissions().mode() & 0o7777 != output.mode
    {
        return Ok(false);
    }
    // The size matched, so reading that many bytes is the whole file.
    let mut rest = output.bytes;
    while !rest.is_empty() {
        let chunk = rest.len().min(buffer.len());
        let read = match file.read(&mut buffer[..chunk]) {
            Ok(0) => return Ok(false),
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(read_error(err)),
        };
        if buffer[..read] != rest[..read] {
            return Ok(false);
        }
        rest = &rest[read..];
    }
    Ok(true)
}

/// Writes a file that does not exist yet, in place: there is nothing to keep intact while it is
/// written, and an interrupted write differs in size or bytes, so the next run replaces it.
fn create_file(base: &Path, rel: &str, output: &Output, temps: &Temps) -> Result<()> {
    let path = base.join(rel);
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(output.bytes)?;
        file.set_permissions(std::fs::Permissions::from_mode(output.mode))
    })();
    match result {
        Ok(()) => Ok(()),
        // Appeared since the listing: replace it safely.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            replace_file(base, rel, output, temps)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&path);
            Err(err).with_context(|| format!("failed to write `{}`", path.display()))
        }
    }
}

/// Replaces a file through a temp file and a rename, so that readers see the old or the new
/// bytes, never a mix.
fn replace_file(base: &Path, rel: &str, output: &Output, temps: &Temps) -> Result<()> {
    let path = base.join(rel);
    let mut parent = base.to_path_buf();
    if let Some(dirs) = Path::new(rel).parent() {
        for component in dirs.components() {
            parent.push(component);
            ensure_real_dir(&parent)?;
        }
    }
    if std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.is_dir()) {
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("failed to remove `{}`", path.display()))?;
    }
    write_through_temp(&path, output, temps)
}

/// Writes `path` (whose parent is a real directory) as a temp file renamed over it.
fn write_through_temp(path: &Path, output: &Output, temps: &Temps) -> Result<()> {
    temps
        .write_then_rename(path, output.bytes, output.mode)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// Writes one file below the staging root when its bytes changed; true when written.
pub(crate) fn write_one(
    root: &Path,
    staging_root: &Path,
    rel: &Path,
    text: &str,
    temps: &Temps,
) -> Result<bool> {
    assert!(
        rel.starts_with(staging_root),
        "file outside the staging root"
    );
    let path = root.join(rel);
    let output = Output {
        bytes: text.as_bytes(),
        mode: MODE_FILE,
    };
    if same_file(&path, &output)? {
        return Ok(false);
    }
    let base = root.join(staging_root);
    std::fs::create_dir_all(&base)
        .with_context(|| format!("failed to create `{}`", base.display()))?;
    replace_file(
        &base,
        &rel.strip_prefix(staging_root).unwrap().to_string_lossy(),
        &output,
        temps,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_files_are_written_before_digests_and_digests_before_flavor_mk() {
        // In the order of the outputs' map, as `write_dir` gets them.
        let mut paths: Vec<&str> = std::collections::BTreeSet::from([
            "flavor.mk",
            ".matriochka/core.sha256",
            "files-sources",
            "core/Dockerfile",
            ".matriochka.d/x",
            "app/.matriochka/x",
        ])
        .into_iter()
        .collect();
        paths.sort_by_key(|rel| write_rank(rel));
        assert_eq!(
            paths,
            [
                ".matriochka.d/x",
                "app/.matriochka/x",
                "core/Dockerfile",
                ".matriochka/core.sha256",
                "files-sources",
                "flavor.mk",
            ]
        );
    }

    #[test]
    fn the_staging_roots_own_entries_are_no_staging_dirs() {
        let root = Path::new("staging");
        for dir in ["staging/.tmp", "staging/.lock", "staging/.stamps/x"] {
            assert!(check_not_reserved(root, Path::new(dir)).is_err(), "{dir}");
        }
        assert!(check_not_reserved(root, Path::new("staging/squid-centos-9-x86_64")).is_ok());
        assert!(check_not_reserved(root, Path::new("staging/a/.b")).is_ok());
    }
}
