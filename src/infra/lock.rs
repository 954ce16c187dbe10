//! Lock: one writer at a time on a staging root, as git does with `index.lock`.
//!
//! A run that writes below the staging root (stage, clean) holds the exclusive lock for its whole
//! write phase; a build holds the shared lock while it checks and reads its context, so no stage
//! rewrites a context under a build. The lock is an advisory `flock` on the staging root
//! directory itself (std's `File::lock`), not on a file in it: a file can be deleted or replaced
//! under a running holder, letting a second run in beside it; the directory cannot be swapped
//! while runs write below it. The kernel releases the lock when the process dies, so a killed run
//! never leaves a stale lock behind.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

/// What the holder may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Writes below the staging root: alone.
    Exclusive,
    /// Reads staged contexts (builds): with other readers, never with a writer.
    Shared,
}

/// Whether a run waits for another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    Yes,
    No,
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub(crate) struct StagingLock {
    file: File,
    path: PathBuf,
}

impl StagingLock {
    /// Takes the lock of `root/staging_root`, creating the staging root when missing. When another run holds it, writes one line to `note` and waits, or fails at once
    /// with `Wait::No`.
    pub(crate) fn acquire(
        root: &Path,
        staging_root: &Path,
        access: Access,
        wait: Wait,
        note: &mut dyn Write,
    ) -> Result<StagingLock> {
        let dir = root.join(staging_root);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("failed to create `{}`", dir.display()))?;
        let path = dir;
        let file =
            File::open(&path).with_context(|| format!("failed to open `{}`", path.display()))?;
        let tried = match access {
            Access::Exclusive => file.try_lock(),
            Access::Shared => file.try_lock_shared(),
        };
        match tried {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let shown = format!("{}/", staging_root.display());
                if wait == Wait::No {
                    bail!(
                        "another matriochka run holds `{shown}`: wait for it, or unset --no-wait / MATRIOCHKA_NO_WAIT"
                    );
                }
                writeln!(note, "waiting for another matriochka run on `{shown}`")?;
                note.flush()?;
                let locked = match access {
                    Access::Exclusive => file.lock(),
                    Access::Shared => file.lock_shared(),
                };
                locked.with_context(|| format!("failed to lock `{}`", path.display()))?;
            }
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("failed to lock `{}`", path.display()))
            }
        }
        Ok(StagingLock { file, path })
    }

    /// The locked directory: the staging root.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StagingLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// `Wait::No` when `MATRIOCHKA_NO_WAIT` is set to something other than empty or `0`.
pub(crate) fn wait_from_env(value: Option<&str>) -> Wait {
    match value {
        Some(v) if !v.is_empty() && v != "0" => Wait::No,
        _ => Wait::Yes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(dir: &Path, access: Access, wait: Wait) -> (Result<StagingLock>, String) {
        let mut note = Vec::new();
        let lock = StagingLock::acquire(dir, Path::new("staging"), access, wait, &mut note);
        (lock, String::from_utf8(note).unwrap())
    }

    #[test]
    fn a_second_writer_fails_at_once_with_no_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (held, note) = lock(dir.path(), Access::Exclusive, Wait::Yes);
        let held = held.unwrap();
        assert_eq!(note, "");
        assert_eq!(held.path(), dir.path().join("staging"));
        let (second, note) = lock(dir.path(), Access::Exclusive, Wait::No);
        assert_eq!(
            second.unwrap_err().to_string(),
            "another matriochka run holds `staging/`: wait for it, or unset --no-wait / MATRIOCHKA_NO_WAIT"
        );
        assert_eq!(note, "");
        let (reader, _) = lock(dir.path(), Access::Shared, Wait::No);
        assert!(reader.is_err(), "a reader must not enter under a writer");
        drop(held);
        assert!(lock(dir.path(), Access::Exclusive, Wait::No).0.is_ok());
    }

    /// Issue 21: deleting `staging/.lock` let a second run in beside the holder.
    #[test]
    fn a_deleted_lock_file_lets_no_second_run_in() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path(), Access::Exclusive, Wait::Yes).0.unwrap();
        let file = dir.path().join("staging/.lock");
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, "").unwrap();
        let (second, _) = lock(dir.path(), Access::Exclusive, Wait::No);
        assert!(second.is_err(), "a second writer beside the holder");
        let (reader, _) = lock(dir.path(), Access::Shared, Wait::No);
        assert!(reader.is_err(), "a reader beside the holder");
        drop(held);
        assert!(lock(dir.path(), Access::Exclusive, Wait::No).0.is_ok());
    }

    #[test]
    fn readers_share_and_keep_writers_out() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), Access::Shared, Wait::No).0.unwrap();
        let second = lock(dir.path(), Access::Shared, Wait::No).0.unwrap();
        assert!(lock(dir.path(), Access::Exclusive, Wait::No).0.is_err());
        drop((first, second));
        assert!(lock(dir.path(), Access::Exclusive, Wait::No).0.is_ok());
    }

    #[test]
    fn a_waiting_writer_says_so_once_and_gets_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path(), Access::Exclusive, Wait::Yes).0.unwrap();
        let root = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || lock(&root, Access::Exclusive, Wait::Yes));
        // The waiter blocks until the holder lets go; the lock is per open file, so a thread
        // of the same process waits like another process would.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiter.is_finished());
        drop(held);
        let (got, note) = waiter.join().unwrap();
        assert!(got.is_ok());
        assert_eq!(note, "waiting for another matriochka run on `staging/`\n");
    }

    #[test]
    fn no_wait_from_the_environment() {
        assert_eq!(wait_from_env(None), Wait::Yes);
        assert_eq!(wait_from_env(Some("")), Wait::Yes);
        assert_eq!(wait_from_env(Some("0")), Wait::Yes);
        assert_eq!(wait_from_env(Some("1")), Wait::No);
    }
}
