//! Trees: the only way overlay and render read template files.
//!
//! `FsTree` reads the working directory and `GitTree` a git revision (both following symbolic
//! links only while they stay inside the templates tree), behind the same trait, so staging never
//! knows which one it reads.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use crate::domain::config::{normal_path, Config};
use crate::infra::process::{Cmd, ProcessRunner, Runner};
use crate::stage::cache::Cache;

/// Mode of a regular file, as git knows it: executable or not.
pub(crate) const MODE_FILE: u32 = 0o644;
pub(crate) const MODE_EXEC: u32 = 0o755;

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File { mode: u32 },
    Dir,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

/// A file's bytes: owned when read from disk for the caller, shared when the tree keeps them.
#[derive(Debug)]
pub(crate) enum Bytes {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Bytes {
    /// The bytes as a vector, copied only when shared.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Bytes::Owned(bytes) => bytes,
            Bytes::Shared(bytes) => bytes.to_vec(),
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(bytes) => bytes,
            Bytes::Shared(bytes) => bytes,
        }
    }
}

/// A read-only tree of files, addressed by paths relative to the project root.
pub(crate) trait Tree: Sync {
    /// The entries of a directory sorted by name, or `None` when it is not a directory.
    fn list(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>>;
    /// The bytes of a file.
    fn read(&self, file: &Path) -> Result<Bytes>;
}

/// Bytes of directory listings an `FsTree` keeps: the layers of a few flavors.
const LISTS_BUDGET: usize = 128 << 10;

/// The working directory, with recent directory listings cached.
pub(crate) struct FsTree {
    root: PathBuf,
    templates: Option<PathBuf>,
    /// Paths relative to the root that the tree does not hold (see [`FsTree::excluding`]).
    excluded: Vec<PathBuf>,
    lists: Cache<PathBuf, Option<Arc<[Entry]>>>,
}

impl FsTree {
    /// A tree rooted at `root`; links must resolve inside `root/templates`.
    pub(crate) fn new(root: &Path, templates: &Path) -> FsTree {
        FsTree {
            root: root.to_path_buf(),
            templates: root.join(templates).canonicalize().ok(),
            excluded: Vec::new(),
            lists: Cache::new(LISTS_BUDGET),
        }
    }

    /// The working directory as a project's configuration sees it: its templates, without the
    /// staging root and the configuration when they lie inside them.
    pub(crate) fn of(config: &Config) -> FsTree {
        FsTree::new(&config.root, &config.templates).excluding(config.excluded_from_templates())
    }

    /// The same tree without `excluded` (paths relative to the root) and what lies below them:
    /// listings leave them out and listing them finds nothing.
    pub(crate) fn excluding(mut self, excluded: Vec<PathBuf>) -> FsTree {
        self.excluded = excluded;
        self
    }

    fn list_uncached(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>> {
        if is_excluded(&self.excluded, dir) {
            return Ok(None);
        }
        let path = self.root.join(dir);
        let reader = match std::fs::read_dir(&path) {
            Ok(reader) => reader,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(err) => {
                return Err(err).with_context(|| format!("failed to list `{}`", path.display()))
            }
        };
        let mut entries = Vec::new();
        for entry in reader {
            let entry = entry.with_context(|| format!("failed to list `{}`", path.display()))?;
            let Ok(name) = entry.file_name().into_string() else {
                bail!("`{}` has a name that is not UTF-8", entry.path().display());
            };
            if is_excluded(&self.excluded, &dir.join(&name)) {
                continue;
            }
            let file_type = entry.file_type()?;
            let metadata = if file_type.is_symlink() {
                self.check_link(&entry.path(), &dir.join(&name))?;
                std::fs::metadata(entry.path())
            } else {
                entry.metadata()
            }
            .with_context(|| format!("failed to read `{}`", entry.path().display()))?;
            let kind = if metadata.is_dir() {
                Kind::Dir
            } else if metadata.is_file() {
                Kind::File {
                    mode: git_mode(metadata.permissions().mode()),
                }
            } else {
                // Never dropped without a word: a FIFO, a socket or a device.
                let kind = crate::infra::fs::special_kind(metadata.file_type()).unwrap_or("");
                bail!(
                    "template `{}` is {kind}, not a regular file: templates hold only files, \
                     directories and links to them",
                    dir.join(&name).display()
                );
            };
            entries.push(Entry { name, kind });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(entries.into()))
    }

    fn check_link(&self, path: &Path, shown: &Path) -> Result<()> {
        let target = path
            .canonicalize()
            .with_context(|| format!("symbolic link `{}` is broken", shown.display()))?;
        match &self.templates {
            Some(templates) if target.starts_with(templates) => Ok(()),
            _ => bail!(
                "symbolic link `{}` points outside the templates tree (to `{}`): copy the file into \
                 the templates instead",
                shown.display(),
                target.display()
            ),
        }
    }
}

/// Whether `path` is one of `excluded` or lies below one.
fn is_excluded(excluded: &[PathBuf], path: &Path) -> bool {
    !excluded.is_empty() && {
        let path = normal_path(path);
        excluded.iter().any(|excluded| path.starts_with(excluded))
    }
}

/// Whether a path a link leads to lies inside `templates` (which may be the root, the empty
/// path): never when it climbs above the root or is absolute.
fn inside(path: &Path, templates: &Path) -> bool {
    path.is_relative()
        && !matches!(path.components().next(), Some(Component::ParentDir))
        && path.starts_with(templates)
}

/// Executable when any execute bit is set, as git records it.
pub(crate) fn git_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 {
        MODE_EXEC
    } else {
        MODE_FILE
    }
}

/// The bytes a directory listing points to: its path, the shared slice (with its two counts) and
/// each name, each allocation with its header.
fn listing_weight(dir: &Path, entries: &Option<Arc<[Entry]>>) -> usize {
    const HEADER: usize = 16;
    let entries = entries.as_deref().unwrap_or_default();
    let names: usize = entries
        .iter()
        .map(|entry| std::mem::size_of::<Entry>() + entry.name.len() + HEADER)
        .sum();
    dir.as_os_str().len() + HEADER + 2 * HEADER + names
}

impl Tree for FsTree {
    fn list(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>> {
        self.lists
            .get_or_compute(dir, listing_weight, || self.list_uncached(dir))
    }

    /// Read each time: the kernel's page cache already holds the templates, and a copy of them
    /// all would make memory grow with the number of flavors staged.
    fn read(&self, file: &Path) -> Result<Bytes> {
        let path = self.root.join(file);
        let bytes =
            std::fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        Ok(Bytes::Owned(bytes))
    }
}

/// A git revision's files below the templates directory: listed once with `git ls-tree`, file
/// contents read lazily through one `git cat-file --batch` process and cached.
pub(crate) struct GitTree {
    root: PathBuf,
    templates: PathBuf,
    /// Each directory (relative to the project root) → its entries by name; the templates'
    /// ancestors are included so that paths resolve from the root.
    dirs: HashMap<PathBuf, BTreeMap<String, Node>>,
    lists: Cache<PathBuf, Option<Arc<[Entry]>>>,
    blobs: Cache<String, Arc<[u8]>>,
    cat_file: Mutex<Option<CatFile>>,
}

/// An entry of a git tree, before symbolic links are followed.
#[derive(Clone, Debug)]
enum Node {
    File { blob: String, mode: u32 },
    Link { blob: String },
    Dir,
}

/// Where a path leads once symbolic links are followed.
enum Resolved {
    File {
        blob: String,
        mode: u32,
        path: PathBuf,
    },
    Dir(PathBuf),
    /// Nothing there; the path where the walk stopped.
    Missing(PathBuf),
}

struct CatFile {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Links followed in one lookup before giving up, as the kernel does.
const MAX_LINKS: usize = 40;

impl GitTree {
    /// The tree of commit `rev` of the repository holding `root`; `prefix` is `root`'s path
    /// inside the repository (`git rev-parse --show-prefix`), `templates` is relative to `root`.
    #[cfg(test)]
    pub(crate) fn new(root: &Path, prefix: &str, rev: &str, templates: &Path) -> Result<GitTree> {
        GitTree::excluding(root, prefix, rev, templates, &[])
    }

    /// The tree of commit `rev` as a project's configuration sees it (see [`FsTree::of`]).
    pub(crate) fn of(config: &Config, prefix: &str, rev: &str) -> Result<GitTree> {
        let excluded = config.excluded_from_templates();
        GitTree::excluding(&config.root, prefix, rev, &config.templates, &excluded)
    }

    /// Like [`GitTree::new`], without `excluded` (paths relative to `root`) and what lies below.
    pub(crate) fn excluding(
        root: &Path,
        prefix: &str,
        rev: &str,
        templates: &Path,
        excluded: &[PathBuf],
    ) -> Result<GitTree> {
        let templates = normal_path(templates);
        // Templates at the top of the repository: the whole tree, no pathspec.
        let pathspec = format!("{prefix}{}", templates.display());
        let cmd = Cmd::new("git")
            .arg("-C")
            .arg(root)
            .args([
                "--literal-pathspecs",
                "ls-tree",
                "-r",
                "-z",
                "--full-tree",
                rev,
                "--",
            ])
            .args((!pathspec.is_empty()).then_some(&pathspec));
        let output = ProcessRunner
            .run(&cmd)
            .context("failed to run `git ls-tree`")?;
        if !output.success {
            bail!(
                "failed to list `{pathspec}` at `{rev}` with `git ls-tree`: {}",
                output.stderr.trim()
            );
        }
        let mut dirs: HashMap<PathBuf, BTreeMap<String, Node>> = HashMap::new();
        for record in output.stdout.split(|&byte| byte == 0) {
            if record.is_empty() {
                continue;
            }
            let Ok(record) = std::str::from_utf8(record) else {
                bail!(
                    "`{}` has a name that is not UTF-8",
                    String::from_utf8_lossy(record)
                );
            };
            let (meta, path) = record
                .split_once('\t')
                .with_context(|| format!("unexpected `git ls-tree` output `{record}`"))?;
            let mut fields = meta.split(' ');
            let (Some(mode), Some(_kind), Some(blob)) =
                (fields.next(), fields.next(), fields.next())
            else {
                bail!("unexpected `git ls-tree` output `{record}`");
            };
            let node = match mode {
                "120000" => Node::Link { blob: blob.into() },
                // A submodule: its files are not part of this tree.
                "160000" => continue,
                mode => Node::File {
                    blob: blob.into(),
                    mode: git_mode(u32::from_str_radix(mode, 8).unwrap_or(0o644)),
                },
            };
            let Some(path) = path.strip_prefix(prefix) else {
                continue;
            };
            let path = Path::new(path);
            if is_excluded(excluded, path) {
                continue;
            }
            let mut dir = PathBuf::new();
            let names: Vec<&str> = path.iter().filter_map(|name| name.to_str()).collect();
            let Some((last, parents)) = names.split_last() else {
                continue;
            };
            for name in parents {
                dirs.entry(dir.clone())
                    .or_default()
                    .insert(name.to_string(), Node::Dir);
                dir.push(name);
            }
            dirs.entry(dir).or_default().insert(last.to_string(), node);
        }
        Ok(GitTree {
            root: root.to_path_buf(),
            templates,
            dirs,
            lists: Cache::unbounded(),
            blobs: Cache::unbounded(),
            cat_file: Mutex::new(None),
        })
    }

    /// Whether the templates hold a symbolic link.
    pub(crate) fn has_links(&self) -> bool {
        self.dirs
            .values()
            .flat_map(BTreeMap::values)
            .any(|node| matches!(node, Node::Link { .. }))
    }

    /// Follows `path` through directories and symbolic links.
    fn resolve(&self, path: &Path) -> Result<Resolved> {
        let mut todo: Vec<String> = Vec::new();
        push_components(&mut todo, path);
        let mut current = PathBuf::new();
        let mut links = 0;
        while let Some(name) = todo.pop() {
            match name.as_str() {
                "." => continue,
                ".." => {
                    if !current.pop() {
                        return Ok(Resolved::Missing(PathBuf::from("..")));
                    }
                    continue;
                }
                _ => {}
            }
            let node = self
                .dirs
                .get(&current)
                .and_then(|entries| entries.get(&name));
            match node {
                None => return Ok(Resolved::Missing(current.join(name))),
                Some(Node::Dir) => current.push(name),
                Some(Node::File { blob, mode }) if todo.is_empty() => {
                    return Ok(Resolved::File {
                        blob: blob.clone(),
                        mode: *mode,
                        path: current.join(name),
                    })
                }
                Some(Node::File { .. }) => return Ok(Resolved::Missing(current.join(name))),
                Some(Node::Link { blob }) => {
                    links += 1;
                    if links > MAX_LINKS {
                        bail!("too many levels of symbolic links in `{}`", path.display());
                    }
                    let target = self.blob(blob)?;
                    let target = String::from_utf8_lossy(&target).into_owned();
                    if target.starts_with('/') {
                        return Ok(Resolved::Missing(PathBuf::from(target)));
                    }
                    // The link lives in `current`: its target is read from there.
                    push_components(&mut todo, Path::new(&target));
                }
            }
        }
        Ok(Resolved::Dir(current))
    }

    fn entries(&self, dir: &Path, shown: &Path) -> Result<Arc<[Entry]>> {
        let Some(nodes) = self.dirs.get(dir) else {
            return Ok(Arc::new([]));
        };
        let mut entries = Vec::with_capacity(nodes.len());
        for (name, node) in nodes {
            let kind = match node {
                Node::File { mode, .. } => Kind::File { mode: *mode },
                Node::Dir => Kind::Dir,
                Node::Link { .. } => {
                    let link = shown.join(name);
                    let (kind, target) = match self.resolve(&dir.join(name))? {
                        Resolved::File { mode, path, .. } => (Kind::File { mode }, path),
                        Resolved::Dir(path) => (Kind::Dir, path),
                        Resolved::Missing(path) if inside(&path, &self.templates) => {
                            bail!("symbolic link `{}` is broken", link.display())
                        }
                        Resolved::Missing(path) => (Kind::Dir, path),
                    };
                    if !inside(&target, &self.templates) {
                        bail!(
                            "symbolic link `{}` points outside the templates tree (to `{}`): copy \
                             the file into the templates instead",
                            link.display(),
                            target.display()
                        );
                    }
                    kind
                }
            };
            entries.push(Entry {
                name: name.clone(),
                kind,
            });
        }
        Ok(entries.into())
    }

    /// The bytes of a blob, read through the one `git cat-file --batch` process.
    fn blob(&self, blob: &str) -> Result<Arc<[u8]>> {
        self.blobs.get_or_compute(
            blob,
            |blob, bytes| blob.len() + bytes.len(),
            || self.read_blob_uncached(blob),
        )
    }

    fn read_blob_uncached(&self, blob: &str) -> Result<Arc<[u8]>> {
        let mut cat_file = self.cat_file.lock().unwrap();
        if cat_file.is_none() {
            *cat_file = Some(self.spawn_cat_file()?);
        }
        let process = cat_file.as_mut().unwrap();
        let bytes = match read_blob(process, blob) {
            Ok(bytes) => bytes,
            Err(err) => {
                // The protocol is out of step: start afresh next time.
                if let Some(mut process) = cat_file.take() {
                    let _ = process.child.kill();
                    let _ = process.child.wait();
                }
                return Err(err.context(format!("failed to read blob `{blob}` from git")));
            }
        };
        Ok(bytes.into())
    }

    fn spawn_cat_file(&self) -> Result<CatFile> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to run `git cat-file`")?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(CatFile {
            child,
            stdin,
            stdout,
        })
    }
}

/// Pushes `path`'s components so that the first one is popped first.
fn push_components(stack: &mut Vec<String>, path: &Path) {
    let names: Vec<String> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    stack.extend(names.into_iter().rev());
}

/// One request of the `git cat-file --batch` protocol: `<blob>\n` in, `<oid> <type> <size>\n`,
/// the bytes and `\n` out.
fn read_blob(process: &mut CatFile, blob: &str) -> Result<Vec<u8>> {
    writeln!(process.stdin, "{blob}")?;
    process.stdin.flush()?;
    let mut header = String::new();
    process.stdout.read_line(&mut header)?;
    let header = header.trim_end();
    let size = match header.split(' ').collect::<Vec<_>>()[..] {
        [_, "blob", size] => size
            .parse::<usize>()
            .with_context(|| format!("unexpected answer `{header}`"))?,
        _ => bail!("unexpected answer `{header}`"),
    };
    let mut bytes = vec![0; size + 1];
    process.stdout.read_exact(&mut bytes)?;
    bytes.pop();
    Ok(bytes)
}

impl Drop for GitTree {
    fn drop(&mut self) {
        if let Some(CatFile {
            mut child,
            stdin,
            stdout,
        }) = self.cat_file.get_mut().ok().and_then(Option::take)
        {
            // Closing its input ends `git cat-file`.
            drop(stdin);
            drop(stdout);
            let _ = child.wait();
        }
    }
}

impl Tree for GitTree {
    fn list(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>> {
        self.lists
            .get_or_compute(dir, listing_weight, || match self.resolve(dir)? {
                Resolved::Dir(real) => Ok(Some(self.entries(&real, dir)?)),
                Resolved::File { .. } | Resolved::Missing(_) => Ok(None),
            })
    }

    fn read(&self, file: &Path) -> Result<Bytes> {
        match self.resolve(file)? {
            Resolved::File { blob, .. } => Ok(Bytes::Shared(self.blob(&blob)?)),
            Resolved::Dir(_) | Resolved::Missing(_) => {
                bail!("failed to read `{}`: no such file", file.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "a")
            .env("GIT_COMMITTER_EMAIL", "a@example.com")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Every directory and file below `dir`, as a tree shows them.
    fn walk(tree: &dyn Tree, dir: &Path, out: &mut Vec<String>) {
        let entries = tree.list(dir).unwrap().unwrap();
        for entry in entries.iter() {
            let path = dir.join(&entry.name);
            match entry.kind {
                Kind::Dir => {
                    out.push(format!("{}/", path.display()));
                    walk(tree, &path, out);
                }
                Kind::File { mode } => {
                    let bytes = tree.read(&path).unwrap();
                    let text = String::from_utf8_lossy(&bytes);
                    out.push(format!("{} {mode:o} {text:?}", path.display()));
                }
            }
        }
    }

    #[test]
    fn a_git_revision_reads_like_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let write = |path: &str, text: &str, mode: u32| {
            let full = project.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("templates/a/run.sh", "#!/bin/sh\n", 0o755);
        write("templates/a/img/sub/file", "nested", 0o644);
        write("templates/b/__F__", "fragment", 0o644);
        write("templates/empty-name/.hidden", "", 0o644);
        write("outside/x", "outside", 0o644);
        std::os::unix::fs::symlink("../b/__F__", project.join("templates/a/link")).unwrap();
        std::os::unix::fs::symlink("../a/img", project.join("templates/b/img")).unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "c"]);
        let commit = git(dir.path(), &["rev-parse", "HEAD"]);
        let templates = Path::new("templates");
        let fs = FsTree::new(&project, templates);
        let at_commit = GitTree::new(&project, "project/", commit.trim(), templates).unwrap();
        let (mut expected, mut actual) = (Vec::new(), Vec::new());
        walk(&fs, templates, &mut expected);
        walk(&at_commit, templates, &mut actual);
        assert_eq!(actual, expected);
        assert!(actual.contains(&"templates/b/img/sub/file 644 \"nested\"".to_string()));
        assert!(actual.contains(&"templates/a/link 644 \"fragment\"".to_string()));
        assert!(at_commit.has_links());
        assert!(at_commit
            .list(Path::new("templates/nope"))
            .unwrap()
            .is_none());
        assert!(at_commit
            .list(Path::new("templates/a/run.sh"))
            .unwrap()
            .is_none());
        assert_eq!(
            at_commit
                .read(Path::new("templates/nope"))
                .unwrap_err()
                .to_string(),
            "failed to read `templates/nope`: no such file"
        );
    }

    #[test]
    fn templates_at_the_root_leave_out_the_staging_root_and_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str| {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, path).unwrap();
        };
        for path in [
            "src/run.sh",
            "ceph-releases/ALL/daemon/Dockerfile",
            "flavors/matriochka.toml",
            "staging/squid/daemon/Dockerfile",
            "stagingx/kept",
        ] {
            write(path);
        }
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "c"]);
        let excluded = vec![PathBuf::from("staging"), PathBuf::from("flavors")];
        let fs = FsTree::new(dir.path(), Path::new("")).excluding(excluded.clone());
        let at_head = GitTree::excluding(dir.path(), "", "HEAD", Path::new(""), &excluded).unwrap();
        let (mut expected, mut actual) = (Vec::new(), Vec::new());
        walk(&fs, Path::new(""), &mut expected);
        walk(&at_head, Path::new(""), &mut actual);
        // `.git` is left to the overlay, which never stages it.
        expected.retain(|path| !path.starts_with(".git"));
        assert_eq!(actual, expected);
        assert_eq!(
            actual,
            [
                "ceph-releases/",
                "ceph-releases/ALL/",
                "ceph-releases/ALL/daemon/",
                "ceph-releases/ALL/daemon/Dockerfile 644 \"ceph-releases/ALL/daemon/Dockerfile\"",
                "src/",
                "src/run.sh 644 \"src/run.sh\"",
                "stagingx/",
                "stagingx/kept 644 \"stagingx/kept\"",
            ]
        );
        for tree in [&fs as &dyn Tree, &at_head] {
            assert!(tree.list(Path::new("staging/squid")).unwrap().is_none());
            assert!(tree.list(Path::new("./flavors")).unwrap().is_none());
        }
    }

    #[test]
    fn a_link_out_of_templates_at_the_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join("a")).unwrap();
        std::os::unix::fs::symlink("../../secret", project.join("a/s")).unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "c"]);
        let tree = GitTree::new(&project, "project/", "HEAD", Path::new("")).unwrap();
        assert_eq!(
            tree.list(Path::new("a")).unwrap_err().to_string(),
            "symbolic link `a/s` points outside the templates tree (to `..`): copy the file into \
             the templates instead"
        );
    }

    #[test]
    fn a_link_out_of_the_templates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates/a")).unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink("../../secret", dir.path().join("templates/a/s")).unwrap();
        std::os::unix::fs::symlink("gone", dir.path().join("templates/a/broken")).unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "c"]);
        let tree = GitTree::new(dir.path(), "", "HEAD", Path::new("templates")).unwrap();
        assert_eq!(
            tree.list(Path::new("templates/a")).unwrap_err().to_string(),
            "symbolic link `templates/a/broken` is broken"
        );
        std::fs::remove_file(dir.path().join("templates/a/broken")).unwrap();
        git(dir.path(), &["commit", "-q", "-a", "-m", "d"]);
        let tree = GitTree::new(dir.path(), "", "HEAD", Path::new("templates")).unwrap();
        assert_eq!(
            tree.list(Path::new("templates/a")).unwrap_err().to_string(),
            "symbolic link `templates/a/s` points outside the templates tree (to `secret`): copy \
             the file into the templates instead"
        );
    }
}
