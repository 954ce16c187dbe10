//! Stage: a flavor computed completely in memory, then written incrementally.
//!
//! Guarantees: a flavor that fails to compute writes nothing; a file is rewritten (temp file +
//! rename) only when its bytes or mode changed, so unchanged files keep their mtime; files no
//! longer produced are removed; nothing outside the staging root is written or removed.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::git::GitFacts;
use crate::graph;
use crate::overlay::{self, Layer};
use crate::render::{self, StagedFile};
use crate::tree::{Tree, MODE_FILE};

pub mod manifest;

pub use crate::model::{Prepared, StagedFlavor, StagedImage};

/// The name of the provenance file in each staging dir.
pub const FILES_SOURCES: &str = "files-sources";
/// The directory, in each staging dir, of the per-image context digests.
pub const CONTEXT_DIR: &str = ".matriochka";

/// Computes every image of a flavor; reads templates only.
pub fn compute(tree: &dyn Tree, config: &Config, prepared: &Prepared) -> Result<StagedFlavor> {
    let layers = checked_layers(tree, config, prepared)?;
    compute_on(tree, config, prepared, &layers)
}

/// [`compute`] on layers already found by [`checked_layers`].
pub fn compute_on(
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
    graph::link(&mut images)?;
    Ok(StagedFlavor {
        prepared: prepared.clone(),
        images,
    })
}

/// A flavor's layers; for a flavor outside `flavors.buildable`, checked to exist.
pub fn checked_layers(tree: &dyn Tree, config: &Config, prepared: &Prepared) -> Result<Vec<Layer>> {
    let layers = overlay::layers(config, &prepared.vars, tree)?;
    if !prepared.buildable {
        overlay::check_known_values(config, &prepared.vars, &layers, tree)?;
    }
    Ok(layers)
}

/// sha256 over each file's path, mode and bytes, in path order.
pub fn context_digest(files: &BTreeMap<String, StagedFile>) -> String {
    let mut hasher = Sha256::new();
    for (path, file) in files {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(format!("{:o}", file.mode).as_bytes());
        hasher.update([0]);
        hasher.update((file.bytes.len() as u64).to_le_bytes());
        hasher.update(&file.bytes);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// The `files-sources` text: every staged file, its source and the fragments it used.
pub fn files_sources(staged: &StagedFlavor, git: &GitFacts) -> String {
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
pub struct WriteStats {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// A file to write, relative to the directory it is written in.
pub struct Output<'a> {
    pub bytes: &'a [u8],
    pub mode: u32,
}

/// All the files of a flavor's staging dir: image contexts, digests, provenance and extras.
pub fn outputs<'a>(
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
        FILES_SOURCES.to_string(),
        Output {
            bytes: sources.as_bytes(),
            mode: MODE_FILE,
        },
    );
    out
}

/// The digest files: `.matriochka/<image>.sha256`, whose mtimes make reports exact.
pub fn digest_files(staged: &StagedFlavor) -> BTreeMap<String, String> {
    staged
        .images
        .iter()
        .map(|image| {
            (
                format!("{CONTEXT_DIR}/{}.sha256", image.name),
                format!("{}\n", image.digest),
            )
        })
        .collect()
}

/// Makes `dir` (relative to `root`) hold exactly `files`, touching only what differs.
///
/// `dir` must lie below `staging_root`; links found below `staging_root` are replaced, never
/// followed, so nothing outside it is written.
pub fn write_dir(
    root: &Path,
    staging_root: &Path,
    dir: &Path,
    files: &BTreeMap<String, Output>,
) -> Result<WriteStats> {
    assert!(
        dir.starts_with(staging_root),
        "staging dir outside the staging root"
    );
    let base = root.join(dir);
    let mut current = root.join(staging_root);
    std::fs::create_dir_all(&current)
        .with_context(|| format!("failed to create `{}`", current.display()))?;
    for component in dir.strip_prefix(staging_root).unwrap().components() {
        current.push(component);
        ensure_real_dir(&current)?;
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
    // Directories holding something that stays are not empty; the others are tried for removal.
    let mut occupied = HashSet::new();
    for rel in existing.keys() {
        let keep = files.contains_key(rel.as_str()) || is_own_temp(rel);
        if keep {
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
            // The manifest goes before anything is written and comes back last: not an output.
            if rel != manifest::MANIFEST {
                stats.removed += 1;
            }
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
    let mut buffer = vec![0; COMPARE_CHUNK];
    for (rel, output) in files {
        let path = base.join(rel);
        match existing.get(rel.as_str()) {
            Some(true) if same_contents(&path, output, &mut buffer)? => {
                stats.unchanged += 1;
                continue;
            }
            // Found by the walk, so its parents are real directories already.
            Some(_) => write_through_temp(&path, output)?,
            None => {
                if real_dirs.contains(rel.as_str()) {
                    std::fs::remove_dir_all(&path)
                        .with_context(|| format!("failed to remove `{}`", path.display()))?;
                    real_dirs.retain(|dir| !is_same_or_below(dir, rel));
                }
                if let Some((parent, _)) = rel.rsplit_once('/') {
                    ensure_dirs(&base, parent, &mut real_dirs)?;
                }
                create_file(&base, rel, output)?;
            }
        }
        stats.written += 1;
    }
    Ok(stats)
}

/// How much of an existing file is read at a time to compare it.
const COMPARE_CHUNK: usize = 64 * 1024;

fn is_own_temp(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with(".tmp-matriochka-"))
}

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
fn create_file(base: &Path, rel: &str, output: &Output) -> Result<()> {
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
            replace_file(base, rel, output)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&path);
            Err(err).with_context(|| format!("failed to write `{}`", path.display()))
        }
    }
}

/// Replaces a file through a temp file and a rename, so that readers see the old or the new
/// bytes, never a mix.
fn replace_file(base: &Path, rel: &str, output: &Output) -> Result<()> {
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
    write_through_temp(&path, output)
}

/// Writes `path` (whose parent is a real directory) as a temp file renamed over it.
fn write_through_temp(path: &Path, output: &Output) -> Result<()> {
    let name = path.file_name().unwrap().to_string_lossy();
    let temp = path.with_file_name(format!(".tmp-matriochka-{}-{name}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(output.bytes)?;
        file.set_permissions(std::fs::Permissions::from_mode(output.mode))?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("failed to write `{}`", path.display()))
}

/// Writes one file below the staging root when its bytes changed; true when written.
pub fn write_one(root: &Path, staging_root: &Path, rel: &Path, text: &str) -> Result<bool> {
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
    )?;
    Ok(true)
}
