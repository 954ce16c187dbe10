//! Header and footer (`HEADER=<file>`, `FOOTER=<file>`, `stage --header/--footer`): lines
//! added to the staged Dockerfiles, as Kolla's `--template-override` header/footer.
//!
//! The header goes right after the first `FROM` of every image built on a base from outside the
//! flavor, the footer at the end of every Dockerfile. Both files are read once, when the project
//! is loaded, so a missing one fails before anything is written; their bytes then are part of the
//! staged contexts (digests, the fast path's fingerprint, make's up-to-date check) and
//! `files-sources` names them. Only a regular file of at most the size of a staged file is read:
//! a FIFO would block `stage`, `/dev/zero` would fill the memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::domain::decor::{Decor, Part};
use crate::domain::dockerfile::{after_first_from, references, DOCKERFILE};
use crate::stage::model::StagedImage;
use crate::stage::render::MAX_EXPANDED;

/// Reads the files named by `header` and `footer` (empty: none); `root` is the project's.
pub(crate) fn load(root: &Path, header: Option<&str>, footer: Option<&str>) -> Result<Decor> {
    let part = |what: &str, path: Option<&str>| -> Result<Option<Part>> {
        let Some(path) = path.filter(|path| !path.is_empty()) else {
            return Ok(None);
        };
        let path = PathBuf::from(path);
        let mut text = crate::infra::fs::read_regular(&path, MAX_EXPANDED)
            .with_context(|| format!("failed to read {what} `{}`", path.display()))?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        let in_root = match (path.canonicalize(), root.canonicalize()) {
            (Ok(path), Ok(root)) => path.strip_prefix(&root).ok().map(Path::to_path_buf),
            _ => None,
        };
        Ok(Some(Part {
            path,
            in_root,
            text,
        }))
    };
    Ok(Decor {
        header: part("header", header)?,
        footer: part("footer", footer)?,
    })
}

/// Adds the header and footer to the Dockerfiles of `images`, whose parents are linked;
/// `HEADER` and `FOOTER` are recorded as fragments of the Dockerfile (for `files-sources`).
/// Digests are the caller's to compute again.
pub(crate) fn apply(
    decor: &Decor,
    images: &mut [StagedImage],
    build_args: &BTreeMap<String, BTreeMap<String, String>>,
) {
    if decor.header.is_none() && decor.footer.is_none() {
        return;
    }
    let tags: Vec<String> = images.iter().map(|image| image.tag.clone()).collect();
    for image in images.iter_mut() {
        let Some(file) = image.files.get_mut(DOCKERFILE) else {
            continue;
        };
        if let Some(header) = &decor.header {
            let text = String::from_utf8_lossy(&file.bytes);
            let refs = references(&text, build_args.get(&image.name));
            let external = refs
                .from_images
                .first()
                .is_some_and(|base| !tags.contains(base));
            if external {
                if let Some(at) = after_first_from(&file.bytes) {
                    let mut bytes = file.bytes[..at].to_vec();
                    if !bytes.ends_with(b"\n") {
                        bytes.push(b'\n');
                    }
                    bytes.extend(&header.text);
                    bytes.extend(&file.bytes[at..]);
                    file.bytes = bytes;
                    file.fragments.insert("HEADER".into(), header.path.clone());
                }
            }
        }
        if let Some(footer) = &decor.footer {
            if !file.bytes.is_empty() && !file.bytes.ends_with(b"\n") {
                file.bytes.push(b'\n');
            }
            file.bytes.extend(&footer.text);
            file.fragments.insert("FOOTER".into(), footer.path.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::render::StagedFile;
    use std::collections::BTreeMap;

    fn image(name: &str, dockerfile: &str) -> StagedImage {
        let file = StagedFile {
            bytes: dockerfile.as_bytes().to_vec(),
            mode: 0o644,
            source: PathBuf::from("t/Dockerfile"),
            fragments: BTreeMap::new(),
        };
        StagedImage {
            name: name.into(),
            tag: format!("r/{name}:1"),
            files: BTreeMap::from([(DOCKERFILE.to_string(), file)]),
            digest: String::new(),
            parents: Vec::new(),
            external_base: true,
        }
    }

    fn part(path: &str, text: &str) -> Option<Part> {
        Some(Part {
            path: path.into(),
            in_root: None,
            text: text.as_bytes().to_vec(),
        })
    }

    #[test]
    fn the_header_follows_the_first_external_from_and_the_footer_ends_every_dockerfile() {
        let decor = Decor {
            header: part("h", "ENV http_proxy=p\n"),
            footer: part("f", "ENV http_proxy=\n"),
        };
        let mut images = [
            image(
                "core",
                "# syntax\nFROM --platform=x \\\n  base:1 AS b\nRUN a\nFROM b\nRUN c",
            ),
            image("app", "FROM r/core:1\nRUN b\n"),
        ];
        apply(&decor, &mut images, &BTreeMap::new());
        let text = |i: usize| String::from_utf8(images[i].files[DOCKERFILE].bytes.clone()).unwrap();
        assert_eq!(
            text(0),
            "# syntax\nFROM --platform=x \\\n  base:1 AS b\nENV http_proxy=p\nRUN a\nFROM b\nRUN c\nENV http_proxy=\n"
        );
        assert_eq!(text(1), "FROM r/core:1\nRUN b\nENV http_proxy=\n");
        assert_eq!(
            images[0].files[DOCKERFILE].fragments,
            BTreeMap::from([
                ("FOOTER".to_string(), PathBuf::from("f")),
                ("HEADER".to_string(), PathBuf::from("h"))
            ])
        );
        assert_eq!(
            images[1].files[DOCKERFILE]
                .fragments
                .keys()
                .collect::<Vec<_>>(),
            ["FOOTER"]
        );
    }

    #[test]
    fn a_missing_file_is_one_line() {
        let err = load(Path::new("."), Some("/nonexistent/h"), None).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "failed to read header `/nonexistent/h`: No such file or directory (os error 2)"
        );
        assert_eq!(
            load(Path::new("."), Some(""), None).unwrap(),
            Decor::default()
        );
    }
}
