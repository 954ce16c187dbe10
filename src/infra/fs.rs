//! Fs: the one atomic write. A file is written whole to a temp path on the same filesystem, then
//! renamed over its destination, so a reader (make, a build, another run) sees the old bytes or
//! the new ones, never a part; the temp file is removed when anything fails. Also the one read of
//! a file a user names (header, footer): a regular file only, of bounded size.

use std::fs::Metadata;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// What a directory entry is when it is neither a regular file, a directory nor a link: a FIFO,
/// a socket or a device, which a template or a header must never be (reading a FIFO blocks,
/// reading `/dev/zero` never ends); `None` otherwise.
pub(crate) fn special_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_fifo() {
        Some("a FIFO")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else {
        None
    }
}

/// Reads the regular file `path` (links followed), failing for anything else without opening it
/// (so a FIFO cannot block) and for a file of more than `cap` bytes (so it cannot grow under the
/// read until memory runs out).
pub(crate) fn read_regular(path: &Path, cap: usize) -> std::io::Result<Vec<u8>> {
    let not_regular = |kind: &str| std::io::Error::other(format!("{kind}, not a regular file"));
    let file_type = std::fs::metadata(path)?.file_type();
    if let Some(kind) = special_kind(file_type) {
        return Err(not_regular(kind));
    }
    if file_type.is_dir() {
        return Err(not_regular("a directory"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > cap {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB, the limit for a staged file",
            cap >> 20
        )));
    }
    Ok(bytes)
}

/// Writes `bytes` (with `mode`, else the default) to `temp`, then renames it to `path`; the
/// written file's metadata (its mtime is what the fast path compares).
pub(crate) fn write_via(
    path: &Path,
    temp: &Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> std::io::Result<Metadata> {
    let result = (|| -> std::io::Result<Metadata> {
        let mut file = std::fs::File::create(temp)?;
        file.write_all(bytes)?;
        if let Some(mode) = mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        let meta = file.metadata()?;
        drop(file);
        std::fs::rename(temp, path)?;
        Ok(meta)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(temp);
    }
    result
}

/// Writes `path` atomically through a temp file beside it (`.name.<pid>`), making its directory
/// first.
pub(crate) fn write_beside(path: &Path, bytes: &[u8]) -> Result<()> {
    let failed = || format!("failed to write `{}`", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let name = path.file_name().with_context(failed)?.to_string_lossy();
    let temp: PathBuf = dir.join(format!(".{name}.{}", std::process::id()));
    write_via(path, &temp, bytes, None).with_context(failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        assert_eq!(
            read_regular(&file, 4).unwrap_err().to_string(),
            "larger than 0 MiB, the limit for a staged file"
        );
        assert_eq!(
            read_regular(dir.path(), 5).unwrap_err().to_string(),
            "a directory, not a regular file"
        );
        assert_eq!(
            read_regular(Path::new("/dev/zero"), 5)
                .unwrap_err()
                .to_string(),
            "a character device, not a regular file"
        );
    }

    #[test]
    fn writes_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.json");
        write_beside(&path, b"one\n").unwrap();
        write_beside(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn a_failed_rename_removes_the_temp_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should go: the rename fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"old").unwrap();
        let temp = dir.path().join("t");
        let err = write_via(&path, &temp, b"new", Some(0o644)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::IsADirectory);
        assert!(!temp.exists());
        assert_eq!(std::fs::read(path.join("keep")).unwrap(), b"old");
        let err = write_beside(&path, b"x").unwrap_err();
        assert_eq!(
            format!("{err}"),
            format!("failed to write `{}`", path.display())
        );
    }

    #[test]
    fn the_mode_is_set_before_the_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.sh");
        let meta = write_via(&path, &dir.path().join("t"), b"#!/bin/sh\n", Some(0o755)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }
}
