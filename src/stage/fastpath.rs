//! The staging fast path: a per-flavor manifest of what its last stage read and wrote, so that an
//! unchanged flavor is recognized from file metadata alone, the way git's index does it.
//!
//! `<staging dir>/.matriochka/manifest` holds an input fingerprint (tool, configuration,
//! variables, layers, and every template file's path and metadata) and the metadata of each
//! output and of each directory holding one, as found on disk after the write: a directory's
//! stamps change whenever an entry is added to it or removed, so a stray file shows without a
//! listing. `write_dir` removes the manifest before it writes anything and it is written last,
//! so a manifest on disk always describes outputs that were written completely.
//!
//! Timestamps are trusted only when a later change cannot go unnoticed:
//! - a template whose ctime is within [`SLACK`] of the run's start is not recorded (no manifest),
//!   so that an edit made while the run reads it, in the same timestamp tick, shows next time;
//! - an output or directory whose ctime is not older than the manifest's own mtime is "racily
//!   clean", as git calls it, and not trusted: the kernel stamps both from the same clock, so a
//!   change made after the manifest was written gets a ctime at least the manifest's mtime. A
//!   manifest written in the tick of its last output is written again once the clock moved on.
//!
//! ctime rather than mtime: every change of a file's bytes or metadata (`touch -d` too) sets it to
//! the current time, and nothing sets it by hand. What is not covered, as with git: an output
//! changed by another process while this run writes it (another matriochka run cannot: a run
//! stages under the staging root's exclusive lock, from its fast-path checks to its last write).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};

use super::{hex, Output, Prepared, Temps};
use crate::domain::config::Config;
use crate::domain::git_facts::GitFacts;
use crate::domain::layout;
use crate::stage::cache::Cache;
use crate::stage::overlay::{self, Layer};
use crate::stage::tree::Tree;

/// Bumped whenever what the fingerprint covers or the manifest's layout changes.
const FORMAT: &str = "matriochka-manifest 2";
/// How recent a template change must be for its flavor not to be recorded: more than a timestamp
/// tick of any common filesystem (1 s on some), so that a change during the run always shows.
const SLACK: Duration = Duration::from_secs(1);
/// How long, at the end of a run, a manifest may wait for the clock to pass its outputs' ctimes.
const SETTLE: Duration = Duration::from_millis(30);

/// What identifies a file's version: device, inode, mode, size, mtime and ctime (ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            size: meta.size(),
            mtime: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }

    fn hash(&self, hasher: &mut Sha256) {
        hasher.update(self.dev.to_le_bytes());
        hasher.update(self.ino.to_le_bytes());
        hasher.update(self.mode.to_le_bytes());
        hasher.update(self.size.to_le_bytes());
        hasher.update(self.mtime.to_le_bytes());
        hasher.update(self.ctime.to_le_bytes());
    }
}

fn nanos(secs: i64, nsecs: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsecs)
}

/// What a fingerprint takes of a template file: a digest of its stamps (the entry itself and,
/// for a link, what it leads to), and whether one of them is too recent to be trusted.
#[derive(Clone, Copy, Debug)]
struct SourceFacts {
    stamps: [u8; 16],
    recent: bool,
}

/// Bytes of template stamps and of overlay digests kept across flavors: enough for the flavors
/// around the one being staged, which share its layers.
const SOURCES_BUDGET: usize = 64 << 10;
const OVERLAYS_BUDGET: usize = 32 << 10;

/// What every flavor's fingerprint shares, read once per run, and the template stamps, cached
/// across flavors.
pub(crate) struct RunFacts {
    root: PathBuf,
    /// The hash state after the tool, the configuration and the git facts; `None` when they
    /// cannot be known (no `/proc/self/exe`, configuration unreadable): no fast path.
    shared: Option<Sha256>,
    /// The run's start (ns since the epoch), taken before any template is looked at.
    started: i128,
    /// Whether the configuration changed too recently for any flavor to be recorded.
    config_recent: bool,
    sources: Cache<PathBuf, Option<SourceFacts>>,
    /// Overlay digests by image and layers.
    overlays: Cache<String, OverlayDigest>,
}

impl RunFacts {
    pub(crate) fn new(root: &Path, config: &Config, git: &GitFacts) -> RunFacts {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i128);
        let mut config_recent = false;
        let shared = (|| {
            // The running binary itself, even when its file was replaced since it started.
            let exe = std::fs::metadata("/proc/self/exe").ok()?;
            let config_meta = std::fs::metadata(&config.path).ok()?;
            let config_bytes = std::fs::read(&config.path).ok()?;
            config_recent = is_recent(Stamp::of(&config_meta).ctime, started);
            let mut hasher = Sha256::new();
            field(&mut hasher, FORMAT.as_bytes());
            field(&mut hasher, env!("CARGO_PKG_VERSION").as_bytes());
            // Its ctime too: a binary rewritten in place keeps its inode, size and mtime (and a
            // hard link made to it, which also sets it, costs one full stage).
            Stamp::of(&exe).hash(&mut hasher);
            field(&mut hasher, config.path.as_os_str().as_encoded_bytes());
            field(&mut hasher, &config_bytes);
            field(&mut hasher, &config.decor.fingerprint());
            field(&mut hasher, git.commit_date.as_bytes());
            Some(hasher)
        })();
        RunFacts {
            root: root.to_path_buf(),
            shared,
            started,
            config_recent,
            sources: Cache::new(SOURCES_BUDGET),
            overlays: Cache::new(OVERLAYS_BUDGET),
        }
    }

    /// A template file's facts; `None` when it cannot be looked at.
    fn source_facts(&self, path: &Path) -> Option<SourceFacts> {
        self.sources.get_or_insert_with(
            path,
            |path, _| path.as_os_str().len(),
            || {
                let full = self.root.join(path);
                let meta = std::fs::symlink_metadata(&full).ok()?;
                let stamp = Stamp::of(&meta);
                let mut hasher = Sha256::new();
                stamp.hash(&mut hasher);
                let mut recent = is_recent(stamp.ctime, self.started);
                if meta.file_type().is_symlink() {
                    let target = Stamp::of(&std::fs::metadata(&full).ok()?);
                    hasher.update([1]);
                    target.hash(&mut hasher);
                    recent |= is_recent(target.ctime, self.started);
                } else {
                    hasher.update([0]);
                }
                let mut stamps = [0; 16];
                stamps.copy_from_slice(&hasher.finalize()[..16]);
                Some(SourceFacts { stamps, recent })
            },
        )
    }

    /// The fingerprint of a flavor's inputs; `None` when a template cannot be looked at (the
    /// full stage then reports why).
    pub(crate) fn fingerprint(
        &self,
        tree: &dyn Tree,
        prepared: &Prepared,
        layers: &[Layer],
        git: &GitFacts,
    ) -> Option<Fingerprint> {
        let mut hasher = self.shared.clone()?;
        let mut recordable = !self.config_recent;
        field(&mut hasher, prepared.flavor.tuple().as_bytes());
        hasher.update([u8::from(prepared.buildable)]);
        let vars = prepared.vars.all();
        hasher.update((vars.len() as u64).to_le_bytes());
        for (name, value) in vars {
            field(&mut hasher, name.as_bytes());
            field(&mut hasher, value.as_bytes());
        }
        let mut layers_key = String::new();
        for layer in layers {
            let _ = write!(layers_key, "{}\0{}\0", layer.dir.display(), layer.exists);
        }
        field(&mut hasher, layers_key.as_bytes());
        hasher.update((prepared.vars.image_tags.len() as u64).to_le_bytes());
        for (image, tag) in &prepared.vars.image_tags {
            field(&mut hasher, image.as_bytes());
            field(&mut hasher, tag.as_bytes());
            let (digest, fresh) = self.overlay_digest(tree, layers, &layers_key, image, git)?;
            hasher.update(digest);
            recordable &= fresh;
        }
        Some(Fingerprint {
            hex: hex(&hasher.finalize()),
            recordable,
        })
    }

    /// The digest of an image's overlay: each staged path, its source, the source's stamps and
    /// git mark; and whether all sources are old enough to be recorded. Flavors with the same
    /// layers (other arches, base images) share it.
    fn overlay_digest(
        &self,
        tree: &dyn Tree,
        layers: &[Layer],
        layers_key: &str,
        image: &str,
        git: &GitFacts,
    ) -> OverlayDigest {
        let key = format!("{image}\0{layers_key}");
        self.overlays.get_or_insert_with(
            &key,
            |key, _| key.len(),
            || self.overlay_digest_uncached(tree, layers, image, git),
        )
    }

    fn overlay_digest_uncached(
        &self,
        tree: &dyn Tree,
        layers: &[Layer],
        image: &str,
        git: &GitFacts,
    ) -> OverlayDigest {
        let sources = overlay::overlay(tree, layers, image).ok()?;
        let mut hasher = Sha256::new();
        let mut recordable = true;
        hasher.update((sources.len() as u64).to_le_bytes());
        for (staged, source) in &sources {
            field(&mut hasher, staged.as_bytes());
            field(&mut hasher, source.path.as_os_str().as_encoded_bytes());
            hasher.update(source.mode.to_le_bytes());
            hasher.update((source.layer as u64).to_le_bytes());
            // `files-sources` marks the sources git sees as modified.
            hasher.update([u8::from(git.modified.contains(&source.path))]);
            let facts = self.source_facts(&source.path)?;
            hasher.update(facts.stamps);
            recordable &= !facts.recent;
        }
        Some((hasher.finalize().into(), recordable))
    }
}

/// An overlay's digest and whether it may be recorded.
type OverlayDigest = Option<([u8; 32], bool)>;

/// Whether a ctime is too close to the run's start to be trusted.
fn is_recent(ctime: i128, started: i128) -> bool {
    ctime >= started - SLACK.as_nanos() as i128
}

/// A length-prefixed field, so that no two different inputs hash alike.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// The fingerprint of a flavor's inputs.
#[derive(Clone, Debug)]
pub(crate) struct Fingerprint {
    hex: String,
    /// False when an input changed too recently to be trusted later: no manifest is written.
    recordable: bool,
}

/// The number of outputs when the staging dir `dir` holds exactly what its manifest lists,
/// unchanged, and the manifest's fingerprint is `fingerprint`; reads nothing but the manifest.
/// `dir` is relative to `root` and below `staging_root`, whose directories must be real ones.
///
/// Every output and every directory is looked up: a directory's stamps change whenever an entry
/// is added to it or removed, so a stray file shows without listing it. `.matriochka`, which the
/// manifest itself is written to last, is listed instead.
pub(crate) fn unchanged_outputs(
    root: &Path,
    staging_root: &Path,
    dir: &Path,
    fingerprint: &Fingerprint,
) -> Option<usize> {
    let mut current = root.join(staging_root);
    for component in dir.strip_prefix(staging_root).ok()?.components() {
        current.push(component);
        if !std::fs::symlink_metadata(&current).ok()?.is_dir() {
            return None;
        }
    }
    let dir = current.as_path();
    let mut file = std::fs::File::open(dir.join(layout::MANIFEST)).ok()?;
    let written = Stamp::of(&file.metadata().ok()?).mtime;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    let mut lines = text.lines();
    if lines.next()? != FORMAT || lines.next()?.strip_prefix("fingerprint ")? != fingerprint.hex {
        return None;
    }
    let mut files = 0;
    let mut context_entries = HashSet::new();
    for line in lines {
        let (kind, rel, stamp) = parse_entry(line)?;
        // Racily clean: changed in the tick the manifest was written in, or since.
        if stamp.ctime >= written {
            return None;
        }
        let path = if rel == "." {
            dir.to_path_buf()
        } else {
            dir.join(rel)
        };
        if Stamp::of(&std::fs::symlink_metadata(path).ok()?) != stamp {
            return None;
        }
        match kind {
            FILE => files += 1,
            DIR => {}
            _ => return None,
        }
        if let Some(name) = in_context_dir(rel) {
            context_entries.insert(name);
        }
    }
    let context = dir.join(layout::CONTEXT_DIR);
    if !std::fs::symlink_metadata(&context).ok()?.is_dir() {
        return None;
    }
    for entry in std::fs::read_dir(&context).ok()? {
        let name = entry.ok()?.file_name().into_string().ok()?;
        let known = context_entries.contains(name.as_str())
            || in_context_dir(layout::MANIFEST) == Some(name.as_str());
        if !known {
            return None;
        }
    }
    Some(files)
}

/// The kinds of manifest entries.
const FILE: &str = "f";
const DIR: &str = "d";
/// `<kind> <dev> <ino> <mode> <size> <mtime> <ctime> <path>`.
fn parse_entry(line: &str) -> Option<(&str, &str, Stamp)> {
    let mut fields = line.splitn(8, ' ');
    let mut field = || fields.next();
    let kind = field()?;
    let dev = field()?.parse().ok()?;
    let ino = field()?.parse().ok()?;
    let mode = u32::from_str_radix(field()?, 8).ok()?;
    let size = field()?.parse().ok()?;
    let mtime = field()?.parse().ok()?;
    let ctime = field()?.parse().ok()?;
    let rel = fields.next()?;
    let stamp = Stamp {
        dev,
        ino,
        mode,
        size,
        mtime,
        ctime,
    };
    Some((kind, rel, stamp))
}

/// A manifest written in the same timestamp tick as an output: valid, but not trusted until it is
/// written again once the clock has moved on.
pub(crate) struct Pending {
    dir: PathBuf,
    text: String,
    newest: i128,
}

/// Writes the manifest of `dir` (absolute) once its `files` are written; `Some` when it must be
/// written again later to be trusted.
pub(crate) fn record(
    dir: &Path,
    files: &BTreeMap<String, Output>,
    fingerprint: &Fingerprint,
    temps: &Temps,
) -> Result<Option<Pending>> {
    if !fingerprint.recordable {
        return Ok(None);
    }
    let mut text = format!("{FORMAT}\nfingerprint {}\n", fingerprint.hex);
    let mut newest = i128::MIN;
    // The staging dir and every directory holding an output, but `.matriochka`.
    let mut dirs = BTreeSet::from(["."]);
    for rel in files.keys() {
        let mut parent = rel.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            if up != layout::CONTEXT_DIR && !dirs.insert(up) {
                break;
            }
            parent = up;
        }
    }
    let entries = files
        .keys()
        .map(|rel| (FILE, rel.as_str()))
        .chain(dirs.into_iter().map(|rel| (DIR, rel)));
    for (kind, rel) in entries {
        let path = if rel == "." {
            dir.to_path_buf()
        } else {
            dir.join(rel)
        };
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Ok(None);
        };
        let right_kind = if kind == FILE {
            meta.is_file()
        } else {
            meta.is_dir()
        };
        if !right_kind || rel.contains('\n') {
            return Ok(None);
        }
        let stamp = Stamp::of(&meta);
        newest = newest.max(stamp.ctime);
        let _ = writeln!(
            text,
            "{kind} {} {} {:o} {} {} {} {rel}",
            stamp.dev, stamp.ino, stamp.mode, stamp.size, stamp.mtime, stamp.ctime
        );
    }
    let pending = Pending {
        dir: dir.to_path_buf(),
        text,
        newest,
    };
    pending.write(temps)
}

impl Pending {
    /// Writes the manifest; `Some` when it is still racily clean.
    fn write(self, temps: &Temps) -> Result<Option<Pending>> {
        let path = self.dir.join(layout::MANIFEST);
        let written = crate::infra::fs::write_via(&path, &temps.path(), self.text.as_bytes(), None)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        if Stamp::of(&written).mtime > self.newest {
            Ok(None)
        } else {
            Ok(Some(self))
        }
    }
}

/// Writes again the manifests that were racily clean; with `settle`, waits (a little) for the
/// clock to move on rather than leave one behind.
pub(crate) fn retry(pending: &mut Vec<Pending>, settle: bool, temps: &Temps) {
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        // A manifest that fails to write is left out: the next run stages that flavor fully.
        *pending = std::mem::take(pending)
            .into_iter()
            .filter_map(|p| p.write(temps).ok().flatten())
            .collect();
        if pending.is_empty() || !settle || std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `name` of `.matriochka/name`.
fn in_context_dir(rel: &str) -> Option<&str> {
    rel.strip_prefix(layout::CONTEXT_DIR)?.strip_prefix('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::lock::{Access, StagingLock, Wait};
    use crate::stage::tree::MODE_FILE;

    /// The temp directory of `root/staging`, under its lock.
    fn temps(root: &Path) -> (StagingLock, Temps) {
        let staging = Path::new("staging");
        let lock =
            StagingLock::acquire(root, staging, Access::Exclusive, Wait::No, &mut Vec::new())
                .unwrap();
        let temps = Temps::clean(root, staging, &lock).unwrap();
        (lock, temps)
    }

    /// A staging dir `staging/x` with one output, recorded; returns the root and the outputs.
    fn recorded(root: &Path) -> (Fingerprint, BTreeMap<String, Output<'static>>) {
        let dir = root.join("staging/x");
        std::fs::create_dir_all(dir.join(layout::CONTEXT_DIR)).unwrap();
        let mut files = BTreeMap::new();
        for (rel, bytes) in [
            ("a/file", &b"bytes\n"[..]),
            (".matriochka/a.sha256", b"d\n"),
        ] {
            std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
            std::fs::write(dir.join(rel), bytes).unwrap();
            let mode = MODE_FILE;
            files.insert(rel.to_string(), Output { bytes, mode });
        }
        let fingerprint = Fingerprint {
            hex: "f".repeat(64),
            recordable: true,
        };
        let (_lock, temps) = temps(root);
        let mut pending: Vec<Pending> = record(&dir, &files, &fingerprint, &temps)
            .unwrap()
            .into_iter()
            .collect();
        retry(&mut pending, true, &temps);
        assert!(pending.is_empty(), "the clock moved past the outputs");
        (fingerprint, files)
    }

    fn unchanged(root: &Path, fingerprint: &Fingerprint) -> Option<usize> {
        unchanged_outputs(
            root,
            Path::new("staging"),
            Path::new("staging/x"),
            fingerprint,
        )
    }

    #[test]
    fn a_recorded_dir_is_unchanged_until_anything_changes() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        let (fingerprint, _) = recorded(root);
        assert_eq!(unchanged(root, &fingerprint), Some(2));
        let other = Fingerprint {
            hex: "0".repeat(64),
            recordable: true,
        };
        assert_eq!(unchanged(root, &other), None, "another fingerprint");
        std::fs::write(root.join("staging/.tmp/1-0"), "").unwrap();
        assert_eq!(
            unchanged(root, &fingerprint),
            Some(2),
            "temp files are in no staging dir"
        );
        // No name is set apart for temporaries: a file named as older versions named them is
        // a stray like any other.
        for stray in ["stray", ".tmp-matriochka-1-x"] {
            let path = root.join("staging/x/.matriochka").join(stray);
            std::fs::write(&path, "").unwrap();
            assert_eq!(unchanged(root, &fingerprint), None, "a stray digest");
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::write(root.join("staging/x/a/stray"), "").unwrap();
        assert_eq!(unchanged(root, &fingerprint), None, "a stray file below");
        std::fs::remove_file(root.join("staging/x/a/stray")).unwrap();
        assert_eq!(
            unchanged(root, &fingerprint),
            None,
            "a directory changed since"
        );
        let (fingerprint, _) = recorded(root);
        assert_eq!(unchanged(root, &fingerprint), Some(2), "recorded again");
        std::fs::create_dir(root.join("staging/x/empty")).unwrap();
        assert_eq!(unchanged(root, &fingerprint), None, "an empty directory");
        std::fs::remove_dir(root.join("staging/x/empty")).unwrap();
        std::fs::write(root.join("staging/x/stray"), "").unwrap();
        assert_eq!(unchanged(root, &fingerprint), None, "a stray file");
        std::fs::remove_file(root.join("staging/x/stray")).unwrap();
        let (fingerprint, _) = recorded(root);
        assert_eq!(unchanged(root, &fingerprint), Some(2));
        std::fs::set_permissions(
            root.join("staging/x/a/file"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(unchanged(root, &fingerprint), None, "a mode");
    }

    #[test]
    fn an_output_changed_in_the_tick_of_the_manifest_is_not_trusted() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path();
        let (fingerprint, _) = recorded(root);
        let manifest = root.join("staging/x").join(layout::MANIFEST);
        let output = std::fs::metadata(root.join("staging/x/a/file")).unwrap();
        // As if the manifest had been written in the same tick as the output's last change.
        let tick = UNIX_EPOCH + Duration::new(output.ctime() as u64, output.ctime_nsec() as u32);
        std::fs::File::options()
            .write(true)
            .open(&manifest)
            .unwrap()
            .set_modified(tick)
            .unwrap();
        assert_eq!(unchanged(root, &fingerprint), None);
    }

    #[test]
    fn a_recent_input_is_not_recorded() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let fingerprint = Fingerprint {
            hex: "f".repeat(64),
            recordable: false,
        };
        let (_lock, temps) = temps(dir);
        assert!(record(dir, &BTreeMap::new(), &fingerprint, &temps)
            .unwrap()
            .is_none());
        assert!(!dir.join(layout::MANIFEST).exists());
        assert!(is_recent(10_000_000_000, 10_500_000_000));
        assert!(!is_recent(9_000_000_000, 10_500_000_000));
    }
}
