//! Digests: bytes in lowercase hex, and the one context digest (each file's path, mode, length
//! and bytes, in path order) that staging computes in memory and a build checks on disk.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

/// The digest of a build context, fed file by file in path order.
#[derive(Default)]
pub(crate) struct ContextHasher(Sha256);

impl ContextHasher {
    /// Starts a file: its path relative to the context, its mode and length; its bytes follow
    /// through [`ContextHasher::bytes`].
    pub(crate) fn file(&mut self, path: &str, mode: u32, len: u64) {
        self.0.update(path.as_bytes());
        self.0.update([0]);
        self.0.update(format!("{mode:o}").as_bytes());
        self.0.update([0]);
        self.0.update(len.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// An entry that is neither a file nor a directory: a digest no staged context has.
    pub(crate) fn odd(&mut self) {
        self.0.update(b"\0not a file");
    }

    /// The digest in hex.
    pub(crate) fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_lowercase_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }
}
