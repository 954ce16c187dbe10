//! Labels and content ids: what every image of a flavor is stamped with, whatever builds it
//! (`make build`, a bake file).
//!
//! The content id is a digest of what an image is made of — its context (with each parent's tag
//! replaced by that parent's content id, so that `RELEASE` and `TAG_REGISTRY` do not leak in), its
//! platform, the build arguments matriochka passes, the content-changing words of `BUILD_ARGS`
//! and `SQUASH`, and its parents' content ids — and nothing else (no git facts, no dates, no
//! tags): equal content ids mean the same image, on any machine.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::domain::digest::{hex, ContextHasher};
use crate::domain::dockerfile::DOCKERFILE;

use crate::domain::git_facts::GitFacts;
use crate::stage::model::{StagedFlavor, StagedImage};

/// The label holding an image's content id.
pub(crate) const CONTENT_ID_LABEL: &str = "io.matriochka.content-id";
/// The label holding the flavor tuple; matriochka's own images are the ones that carry it.
pub(crate) const FLAVOR_LABEL: &str = "io.matriochka.flavor";
/// The label holding the commit's date, the image's creation time.
pub(crate) const CREATED_LABEL: &str = "org.opencontainers.image.created";
/// The label holding the context digest (`sha256:<hex>`).
pub(crate) const CONTEXT_LABEL: &str = "io.matriochka.context";

/// The platform an image of the flavor is built for: `linux/<GO_ARCH>`.
pub(crate) fn platform(staged: &StagedFlavor) -> String {
    format!(
        "linux/{}",
        staged.prepared.vars.value("GO_ARCH").unwrap_or_default()
    )
}

/// Content ids of every image of a flavor, by image name (`sha256:<hex>`).
///
/// `build_args` are the arguments matriochka passes to each image's build, by image name.
/// Parents come first whatever the order of the images; the graph has no cycle (checked when it
/// was linked).
pub(crate) fn content_ids(
    images: &[StagedImage],
    platform: &str,
    build_args: &BTreeMap<String, BTreeMap<String, String>>,
    run_inputs: &[String],
) -> BTreeMap<String, String> {
    let tags: BTreeMap<&str, &str> = images
        .iter()
        .map(|image| (image.name.as_str(), image.tag.as_str()))
        .collect();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    // Each round adds the images whose parents all have ids; bounded by the number of images.
    for _ in 0..=images.len() {
        for image in images {
            if ids.contains_key(&image.name)
                || !image.parents.iter().all(|parent| ids.contains_key(parent))
            {
                continue;
            }
            let mut hasher = Sha256::new();
            let mut line = |key: &str, value: &str| {
                hasher.update(key.as_bytes());
                hasher.update([0]);
                hasher.update(value.as_bytes());
                hasher.update([b'\n']);
            };
            line("matriochka-content-id", "2");
            line("context", &normalized_digest(image, &tags, &ids));
            line("platform", platform);
            let mut parents: Vec<&String> = image.parents.iter().collect();
            parents.sort();
            for parent in parents {
                line("parent", &ids[parent]);
            }
            for (name, value) in build_args.get(&image.name).into_iter().flatten() {
                line("arg", &format!("{name}={value}"));
            }
            for input in run_inputs {
                line("run", input);
            }
            let id = format!("sha256:{}", hex(&hasher.finalize()));
            ids.insert(image.name.clone(), id);
        }
    }
    ids
}

/// The context digest of `image` with every parent's tag in its Dockerfile replaced by the
/// parent's content id: the same context under another `RELEASE` or `TAG_REGISTRY` digests the
/// same. A context known only by its digest (no files in memory) is taken as it is.
fn normalized_digest(
    image: &StagedImage,
    tags: &BTreeMap<&str, &str>,
    ids: &BTreeMap<String, String>,
) -> String {
    if image.files.is_empty() {
        return image.digest.clone();
    }
    let mut hasher = ContextHasher::default();
    for (path, file) in &image.files {
        let mut bytes = file.bytes.clone();
        if path == DOCKERFILE {
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            // Longest tags first, so that a tag that is a prefix of another is not replaced in it.
            let mut parents: Vec<(&str, &String)> = image
                .parents
                .iter()
                .filter_map(|parent| Some((*tags.get(parent.as_str())?, ids.get(parent)?)))
                .collect();
            parents.sort_by_key(|(tag, _)| std::cmp::Reverse(tag.len()));
            for (tag, id) in parents {
                text = text.replace(tag, &format!("content-id:{id}"));
            }
            bytes = text.into_bytes();
        }
        hasher.file(path, file.mode, bytes.len() as u64);
        hasher.bytes(&bytes);
    }
    hasher.finish()
}

/// The short content tag of an image, `mcid-<first 20 hex digits>`, pushed beside its tag.
pub(crate) fn content_tag(content_id: &str) -> String {
    let hex = content_id.strip_prefix("sha256:").unwrap_or(content_id);
    format!("mcid-{}", &hex[..hex.len().min(20)])
}

/// The labels of one image, in a fixed order.
pub(crate) fn image_labels(
    staged: &StagedFlavor,
    image: &StagedImage,
    content_id: &str,
    git: &GitFacts,
) -> Vec<(&'static str, String)> {
    let var = |name: &str| {
        staged
            .prepared
            .vars
            .value(name)
            .unwrap_or_default()
            .to_string()
    };
    vec![
        ("org.opencontainers.image.title", image.name.clone()),
        ("org.opencontainers.image.version", var("RELEASE")),
        ("org.opencontainers.image.revision", var("GIT_COMMIT")),
        ("org.opencontainers.image.source", var("GIT_REPO")),
        (CREATED_LABEL, git.commit_date.clone()),
        (FLAVOR_LABEL, staged.prepared.flavor.tuple()),
        (CONTEXT_LABEL, format!("sha256:{}", image.digest)),
        (CONTENT_ID_LABEL, content_id.to_string()),
        ("io.matriochka.git-clean", var("GIT_CLEAN")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, digest: &str, parents: &[&str]) -> StagedImage {
        StagedImage {
            name: name.into(),
            tag: format!("{name}:t"),
            files: BTreeMap::new(),
            digest: digest.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            external_base: parents.is_empty(),
        }
    }

    fn ids(images: &[StagedImage], platform: &str) -> BTreeMap<String, String> {
        content_ids(images, platform, &BTreeMap::new(), &[])
    }

    #[test]
    fn a_child_listed_before_its_parent_still_gets_the_parents_id() {
        let child_first = [image("app", "bb", &["core"]), image("core", "aa", &[])];
        let parent_first = [image("core", "aa", &[]), image("app", "bb", &["core"])];
        let a = ids(&child_first, "linux/amd64");
        assert_eq!(a.len(), 2);
        assert_eq!(a, ids(&parent_first, "linux/amd64"));
        assert!(a["app"].starts_with("sha256:") && a["app"].len() == 7 + 64);
    }

    #[test]
    fn a_parent_change_changes_the_child_and_nothing_else_does() {
        let base = ids(
            &[image("core", "aa", &[]), image("app", "bb", &["core"])],
            "linux/amd64",
        );
        let parent_changed = ids(
            &[image("core", "a2", &[]), image("app", "bb", &["core"])],
            "linux/amd64",
        );
        assert_ne!(base["core"], parent_changed["core"]);
        assert_ne!(base["app"], parent_changed["app"]);
        let other_arch = ids(
            &[image("core", "aa", &[]), image("app", "bb", &["core"])],
            "linux/arm64",
        );
        assert_ne!(base["core"], other_arch["core"]);
        let mut args = BTreeMap::new();
        args.insert(
            "app".to_string(),
            BTreeMap::from([("CEPH_REF".to_string(), "squid".to_string())]),
        );
        let with_args = content_ids(
            &[image("core", "aa", &[]), image("app", "bb", &["core"])],
            "linux/amd64",
            &args,
            &[],
        );
        assert_eq!(base["core"], with_args["core"]);
        assert_ne!(base["app"], with_args["app"]);
    }

    /// Two images with contexts in memory, tagged for `release`: `app` is `FROM` `core`.
    fn released(release: &str) -> Vec<StagedImage> {
        let file = |text: &str| crate::stage::render::StagedFile {
            bytes: text.as_bytes().to_vec(),
            mode: 0o644,
            source: "t".into(),
            fragments: BTreeMap::new(),
        };
        let core_tag = format!("r.io/ceph/core:{release}-squid");
        let mut core = image("core", "unused", &[]);
        core.tag = core_tag.clone();
        core.files = BTreeMap::from([(DOCKERFILE.to_string(), file("FROM base\nRUN true\n"))]);
        let mut app = image("app", "unused", &["core"]);
        app.tag = format!("r.io/ceph/app:{release}-squid");
        app.files = BTreeMap::from([(DOCKERFILE.to_string(), file(&format!("FROM {core_tag}\n")))]);
        vec![core, app]
    }

    #[test]
    fn release_and_registry_stay_out_of_the_content_id() {
        let main = ids(&released("main"), "linux/amd64");
        let v1 = ids(&released("v1"), "linux/amd64");
        assert_eq!(main, v1);
        // The same bytes without the parent link are another image.
        let mut other = released("main");
        other[1].parents.clear();
        assert_ne!(ids(&other, "linux/amd64")["app"], main["app"]);
    }

    #[test]
    fn build_options_and_squash_are_in_the_content_id() {
        let images = released("main");
        let plain = content_ids(&images, "linux/amd64", &BTreeMap::new(), &[]);
        let squashed = content_ids(
            &images,
            "linux/amd64",
            &BTreeMap::new(),
            &["SQUASH=1".into()],
        );
        let with_arg = content_ids(
            &images,
            "linux/amd64",
            &BTreeMap::new(),
            &["--build-arg".into(), "X=1".into()],
        );
        for name in ["core", "app"] {
            assert_ne!(plain[name], squashed[name]);
            assert_ne!(plain[name], with_arg[name]);
            assert_ne!(squashed[name], with_arg[name]);
        }
    }

    #[test]
    fn content_tag_keeps_twenty_hex_digits() {
        assert_eq!(
            content_tag("sha256:0123456789abcdef0123456789abcdef"),
            "mcid-0123456789abcdef0123"
        );
    }
}
