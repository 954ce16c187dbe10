//! Trees: the only way overlay and render read template files.
//!
//! `FsTree` reads the working directory (following symbolic links only while they stay inside
//! the templates tree); other implementations (a git revision) plug in behind the same trait, so
//! staging never knows which one it reads.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

/// Mode of a regular file, as git knows it: executable or not.
pub const MODE_FILE: u32 = 0o644;
pub const MODE_EXEC: u32 = 0o755;

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File { mode: u32 },
    Dir,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
}

/// A read-only tree of files, addressed by paths relative to the project root.
pub trait Tree: Sync {
    /// The entries of a directory sorted by name, or `None` when it is not a directory.
    fn list(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>>;
    /// The bytes of a file.
    fn read(&self, file: &Path) -> Result<Arc<[u8]>>;
}

/// The working directory, with directory listings and file contents cached for the run.
pub struct FsTree {
    root: PathBuf,
    templates: Option<PathBuf>,
    lists: Mutex<HashMap<PathBuf, Option<Arc<[Entry]>>>>,
    files: Mutex<HashMap<PathBuf, Arc<[u8]>>>,
}

impl FsTree {
    /// A tree rooted at `root`; links must resolve inside `root/templates`.
    pub fn new(root: &Path, templates: &Path) -> FsTree {
        FsTree {
            root: root.to_path_buf(),
            templates: root.join(templates).canonicalize().ok(),
            lists: Mutex::default(),
            files: Mutex::default(),
        }
    }

    fn list_uncached(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>> {
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
                continue;
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

/// Executable when any execute bit is set, as git records it.
pub fn git_mode(mode: u32) -> u32 {
    if mode & 0o111 != 0 {
        MODE_EXEC
    } else {
        MODE_FILE
    }
}

impl Tree for FsTree {
    fn list(&self, dir: &Path) -> Result<Option<Arc<[Entry]>>> {
        if let Some(cached) = self.lists.lock().unwrap().get(dir) {
            return Ok(cached.clone());
        }
        let entries = self.list_uncached(dir)?;
        self.lists
            .lock()
            .unwrap()
            .insert(dir.to_path_buf(), entries.clone());
        Ok(entries)
    }

    fn read(&self, file: &Path) -> Result<Arc<[u8]>> {
        if let Some(cached) = self.files.lock().unwrap().get(file) {
            return Ok(cached.clone());
        }
        let path = self.root.join(file);
        let bytes: Arc<[u8]> = std::fs::read(&path)
            .with_context(|| format!("failed to read `{}`", path.display()))?
            .into();
        self.files
            .lock()
            .unwrap()
            .insert(file.to_path_buf(), bytes.clone());
        Ok(bytes)
    }
}
