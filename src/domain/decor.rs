//! Header and footer (`HEADER=<file>`, `FOOTER=<file>`): the bytes of a run's header and
//! footer, read by [`crate::stage::decor`]; pure data, part of the fast path's fingerprint.

use std::path::{Path, PathBuf};

/// One file's lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Part {
    /// As given (relative to the current directory, or absolute).
    pub(crate) path: PathBuf,
    /// Relative to the project root, when the file lies below it: a change to it in git changes
    /// every flavor.
    pub(crate) in_root: Option<PathBuf>,
    /// The bytes, ending with a newline.
    pub(crate) text: Vec<u8>,
}

/// The header and the footer of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decor {
    pub(crate) header: Option<Part>,
    pub(crate) footer: Option<Part>,
}

impl Decor {
    /// Whether a path relative to the root is the header or the footer.
    pub(crate) fn is_source(&self, path: &Path) -> bool {
        [&self.header, &self.footer]
            .into_iter()
            .flatten()
            .any(|part| part.in_root.as_deref() == Some(path))
    }

    /// The bytes the fast path's fingerprint takes: both files, with their names.
    pub(crate) fn fingerprint(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in [&self.header, &self.footer] {
            match part {
                Some(part) => {
                    out.extend(part.path.as_os_str().as_encoded_bytes());
                    out.push(0);
                    out.extend((part.text.len() as u64).to_le_bytes());
                    out.extend(&part.text);
                }
                None => out.push(1),
            }
        }
        out
    }
}
