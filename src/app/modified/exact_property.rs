//! Property test: exact mode reports a flavor if and only if staging it from the tree before and
//! the tree after an edit gives different image contexts (in memory, no git).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use crate::app::modified;
use crate::domain::config::Config;
use crate::stage::tree::{Bytes, Entry, Kind, Tree};
use crate::stage::{self, Prepared};

// Library level: exact mode reports a flavor if and only if staging it from the tree before and
// the tree after an edit gives different image contexts.

const PROP_CONFIG: &str = r#"
[layout]
layers = ["L0", "L1/{DISTRO}", "L2/{CEPH_VERSION}"]
images = ["a", "b"]
staging_dir = "staging/{CEPH_VERSION}-{DISTRO}"
image_tag = "{IMAGE}:{CEPH_VERSION}-{DISTRO}"
"#;

const PROP_FLAVORS: &[&str] = &[
    "squid,x86_64,centos,9,_,centos,9",
    "reef,x86_64,centos,9,_,centos,9",
    "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04",
];

/// Where generated files go: layer dirs, image sub-trees and directories no layer reads.
const PROP_DIRS: &[&str] = &[
    "templates/L0",
    "templates/L0/a",
    "templates/L0/b/sub",
    "templates/L1/centos",
    "templates/L1/centos/a",
    "templates/L1/ubuntu/b",
    "templates/L1/ubuntu",
    "templates/L2/squid",
    "templates/L2/squid/a",
    "templates/L2/reef/b",
    "templates/L1/centos/other",
    "templates/misc",
];
const PROP_NAMES: &[&str] = &["Dockerfile", "__F__", "__G__", "x.txt", "y.tera"];
const PROP_TEXTS: &[&str] = &[
    "1",
    "2\n",
    "uses __F__",
    "uses __G__ and __F__",
    "FROM __ENV_[A_IMAGE]__\n",
    "{{ CEPH_VERSION }}-__ENV_[DISTRO]__",
    "__MISSING__",
];

/// Files in memory: path → (mode, bytes).
#[derive(Clone, Debug, Default)]
struct MemTree {
    files: BTreeMap<PathBuf, (u32, Vec<u8>)>,
}

impl Tree for MemTree {
    fn list(&self, dir: &Path) -> anyhow::Result<Option<Arc<[Entry]>>> {
        let mut entries: BTreeMap<String, Kind> = BTreeMap::new();
        for (path, (mode, _)) in &self.files {
            let Ok(rest) = path.strip_prefix(dir) else {
                continue;
            };
            let mut names = rest.iter();
            let Some(first) = names.next() else { continue };
            let kind = if names.next().is_some() {
                Kind::Dir
            } else {
                Kind::File { mode: *mode }
            };
            entries.insert(first.to_string_lossy().into_owned(), kind);
        }
        if entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            entries
                .into_iter()
                .map(|(name, kind)| Entry { name, kind })
                .collect(),
        ))
    }

    fn read(&self, file: &Path) -> anyhow::Result<Bytes> {
        match self.files.get(file) {
            Some((_, bytes)) => Ok(Bytes::Owned(bytes.clone())),
            None => anyhow::bail!("no file `{}`", file.display()),
        }
    }
}

type FileKey = (usize, usize);
type FileValue = (usize, bool);

fn mem_tree(files: &BTreeMap<FileKey, FileValue>) -> MemTree {
    MemTree {
        files: files
            .iter()
            .map(|(&(dir, name), &(text, exec))| {
                let path = Path::new(PROP_DIRS[dir]).join(PROP_NAMES[name]);
                let mode = if exec { 0o755 } else { 0o644 };
                (path, (mode, PROP_TEXTS[text].as_bytes().to_vec()))
            })
            .collect(),
    }
}

fn prop_project() -> (Config, Vec<Prepared>) {
    let config = Config::parse(
        Path::new("/nowhere"),
        Path::new("/nowhere/flavors/matriochka.toml"),
        PROP_CONFIG,
    )
    .unwrap();
    let prepared = super::prepared_for_tests(&config, PROP_FLAVORS);
    (config, prepared)
}

/// Whether staging from `before` and from `after` gives different contexts, as exact mode
/// defines it: different digests, a failure on one side, or different failures.
fn differs(config: &Config, prepared: &Prepared, before: &MemTree, after: &MemTree) -> bool {
    match (
        stage::compute(before, config, prepared),
        stage::compute(after, config, prepared),
    ) {
        (Ok(before), Ok(after)) => {
            let digests = |staged: &stage::StagedFlavor| -> Vec<String> {
                staged
                    .images
                    .iter()
                    .map(|image| image.digest.clone())
                    .collect()
            };
            digests(&before) != digests(&after)
        }
        (Err(before), Err(after)) => format!("{before:#}") != format!("{after:#}"),
        _ => true,
    }
}

fn files() -> impl Strategy<Value = BTreeMap<FileKey, FileValue>> {
    prop::collection::btree_map(
        (0..PROP_DIRS.len(), 0..PROP_NAMES.len()),
        (0..PROP_TEXTS.len(), any::<bool>()),
        0..10,
    )
}

/// An edit: put a file (text, executable) or, with `None`, delete it.
fn edits() -> impl Strategy<Value = Vec<(FileKey, Option<FileValue>)>> {
    prop::collection::vec(
        (
            (0..PROP_DIRS.len(), 0..PROP_NAMES.len()),
            prop::option::of((0..PROP_TEXTS.len(), any::<bool>())),
        ),
        1..5,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn exact_mode_reports_exactly_the_flavors_whose_contexts_differ(
        start in files(),
        edits in edits(),
    ) {
        let (config, prepared) = prop_project();
        let mut end = start.clone();
        for (key, value) in edits {
            match value {
                Some(value) => { end.insert(key, value); }
                None => { end.remove(&key); }
            }
        }
        let (before, after) = (mem_tree(&start), mem_tree(&end));
        let changes: Vec<PathBuf> = before
            .files
            .keys()
            .chain(after.files.keys())
            .filter(|path| before.files.get(*path) != after.files.get(*path))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let exact = modified::exact(&config, &prepared, &changes, &before, &after, false);
        let reported: Vec<usize> = exact.affected.iter().map(|a| a.flavor).collect();
        let expected: Vec<usize> = (0..prepared.len())
            .filter(|&i| differs(&config, &prepared[i], &before, &after))
            .collect();
        prop_assert_eq!(&reported, &expected);
        // Path mode never misses what exact mode finds.
        let by_path: Vec<usize> = modified::by_path(&config, &prepared, &changes)
            .iter()
            .map(|a| a.flavor)
            .collect();
        prop_assert!(reported.iter().all(|flavor| by_path.contains(flavor)));
        for affected in &exact.affected {
            prop_assert!(!affected.images.is_empty());
            prop_assert!(!affected.because.is_empty());
        }
    }
}
