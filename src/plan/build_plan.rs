//! Build plans: what `matriochka image build|push|clean` does to one image, computed by stage
//! and written beside the image's context digest (`<staging dir>/.matriochka/<image>.json`).
//!
//! `flavor.mk` names each plan by the sha256 of its bytes, so a build knows whether the plan and
//! the context it is about to use are still those make read; the bytes are the same for the same
//! staged flavor.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::digest::{hex, ContextHasher};
use crate::domain::layout;

use crate::domain::dockerfile::DOCKERFILE;
use crate::domain::git_facts::GitFacts;
use crate::plan::labels;
use crate::stage::model::StagedFlavor;

/// One image's build, as staged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildPlan {
    pub(crate) image: String,
    pub(crate) tag: String,
    /// `linux/<GO_ARCH>`.
    pub(crate) platform: String,
    /// Relative to the project root.
    pub(crate) dockerfile: PathBuf,
    /// The context directory, relative to the project root.
    pub(crate) context: PathBuf,
    /// `sha256:<hex>` over the context's paths, modes and bytes.
    pub(crate) context_digest: String,
    pub(crate) content_id: String,
    /// Images of the same flavor this one is built from.
    pub(crate) parents: Vec<String>,
    /// Whether a FROM names an image outside the flavor (the build then pulls it).
    pub(crate) external_base: bool,
    pub(crate) labels: BTreeMap<String, String>,
    /// `[images.<name>]` build arguments, passed as `--build-arg NAME=value`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) build_args: BTreeMap<String, String>,
    /// Further tags (`layout.extra_tags`): given at build time, pushed with the image; not part
    /// of the content id, so changing them retags and never rebuilds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) extra_tags: Vec<String>,
    /// `layout.extra_tags` patterns left out because the tree is dirty (they name GIT_COMMIT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) skipped_extra_tags: Vec<String>,
}

impl BuildPlan {
    /// The plan's file, relative to the project root.
    pub(crate) fn path(staging_dir: &Path, image: &str) -> PathBuf {
        staging_dir
            .join(layout::CONTEXT_DIR)
            .join(format!("{image}.json"))
    }

    /// The file's bytes: pretty JSON and a newline.
    pub(crate) fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan serializes");
        text.push('\n');
        text
    }

    /// The image's content tag, pushed beside its tag: `<repo>:mcid-<20 hex>` in its own
    /// repository, or `<cache repo>/<name>:mcid-<20 hex>` under a cache repository (`CACHE_REPO`).
    pub(crate) fn content_reference(&self, cache_repo: Option<&str>) -> String {
        let content_tag = labels::content_tag(&self.content_id);
        match cache_repo {
            None => {
                let repo = crate::domain::reference::repository(&self.tag);
                format!("{repo}:{content_tag}")
            }
            Some(cache) => {
                let name = crate::domain::reference::name(&self.tag);
                format!("{cache}/{name}:{content_tag}")
            }
        }
    }

    /// A label's value.
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// The plan of every image of a staged flavor, by image name.
pub(crate) fn plans(staged: &StagedFlavor, git: &GitFacts) -> BTreeMap<String, BuildPlan> {
    let vars = &staged.prepared.vars;
    let dir = vars.staging_dir();
    let platform = labels::platform(staged);
    let build_args = &staged.prepared.vars.build_args;
    let content_ids = labels::content_ids(&staged.images, &platform, build_args, &vars.run_inputs);
    staged
        .images
        .iter()
        .map(|image| {
            let context = dir.join(&image.name);
            let content_id = content_ids[&image.name].clone();
            let labels = labels::image_labels(staged, image, &content_id, git)
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect();
            let plan = BuildPlan {
                image: image.name.clone(),
                tag: image.tag.clone(),
                platform: platform.clone(),
                dockerfile: context.join(DOCKERFILE),
                context,
                context_digest: format!("sha256:{}", image.digest),
                content_id,
                parents: image.parents.clone(),
                external_base: image.external_base,
                labels,
                build_args: build_args.get(&image.name).cloned().unwrap_or_default(),
                extra_tags: vars
                    .extra_tags
                    .get(&image.name)
                    .cloned()
                    .unwrap_or_default(),
                skipped_extra_tags: vars.skipped_extra_tags.clone(),
            };
            (image.name.clone(), plan)
        })
        .collect()
}

/// sha256 of some bytes, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The digest of a context directory as it is on disk, `sha256:<hex>`, by the algorithm of
/// `stage::context_digest`: each file's path, mode, length and bytes, in path order. Anything
/// that is neither a file nor a directory makes the digest one no staged context has.
pub(crate) fn context_digest_on_disk(dir: &Path) -> Result<String> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut odd = false;
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        if entry.file_type().is_dir() {
            continue;
        }
        if !entry.file_type().is_file() {
            odd = true;
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap();
        files.insert(
            rel.to_string_lossy().into_owned(),
            entry.path().to_path_buf(),
        );
    }
    let mut hasher = ContextHasher::default();
    let mut buffer = vec![0; 64 * 1024];
    for (rel, path) in &files {
        let read_error = || format!("failed to read `{}`", path.display());
        let mut file = std::fs::File::open(path).with_context(read_error)?;
        let meta = file.metadata().with_context(read_error)?;
        hasher.file(rel, meta.permissions().mode() & 0o7777, meta.len());
        loop {
            let read = file.read(&mut buffer).with_context(read_error)?;
            if read == 0 {
                break;
            }
            hasher.bytes(&buffer[..read]);
        }
    }
    if odd {
        hasher.odd();
    }
    Ok(format!("sha256:{}", hasher.finish()))
}

pub(crate) use crate::domain::layout::{log, stamp};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::render::StagedFile;

    fn staged(bytes: &[u8], mode: u32) -> StagedFile {
        StagedFile {
            bytes: bytes.to_vec(),
            mode,
            source: PathBuf::new(),
            fragments: BTreeMap::new(),
        }
    }

    #[test]
    fn the_digest_on_disk_is_the_staged_digest() {
        let mut files = BTreeMap::new();
        files.insert("Dockerfile".to_string(), staged(b"FROM x\n", 0o644));
        files.insert("bin/run.sh".to_string(), staged(b"#!/bin/sh\n", 0o755));
        files.insert("bin-x".to_string(), staged(b"", 0o644));
        let dir = tempfile::tempdir().unwrap();
        for (rel, file) in &files {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &file.bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode)).unwrap();
        }
        let expected = format!("sha256:{}", crate::stage::context_digest(&files));
        assert_eq!(context_digest_on_disk(dir.path()).unwrap(), expected);
        std::fs::set_permissions(
            dir.path().join("bin-x"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(context_digest_on_disk(dir.path()).unwrap(), expected);
        std::fs::set_permissions(
            dir.path().join("bin-x"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::os::unix::fs::symlink("Dockerfile", dir.path().join("link")).unwrap();
        assert_ne!(context_digest_on_disk(dir.path()).unwrap(), expected);
    }

    #[test]
    fn the_content_reference_keeps_the_repository_and_its_port() {
        let plan = BuildPlan {
            image: "parent".into(),
            tag: "127.0.0.1:5000/e2e/parent:e2e-x86_64".into(),
            platform: "linux/amd64".into(),
            dockerfile: PathBuf::from("s/parent/Dockerfile"),
            context: PathBuf::from("s/parent"),
            context_digest: "sha256:00".into(),
            content_id: "sha256:0123456789abcdef0123456789abcdef".into(),
            parents: Vec::new(),
            external_base: false,
            labels: BTreeMap::new(),
            build_args: BTreeMap::new(),
            extra_tags: Vec::new(),
            skipped_extra_tags: Vec::new(),
        };
        assert_eq!(
            plan.content_reference(None),
            "127.0.0.1:5000/e2e/parent:mcid-0123456789abcdef0123"
        );
        assert_eq!(
            plan.content_reference(Some("127.0.0.1:5000/cache")),
            "127.0.0.1:5000/cache/parent:mcid-0123456789abcdef0123"
        );
        // Without extra tags the plan's bytes are what they were before extra tags existed.
        assert!(!plan.to_json().contains("extra_tags"));
    }
}
