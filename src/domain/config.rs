//! Configuration: loading and checking `flavors/matriochka.toml`.
//!
//! Everything that can be checked without a flavor is checked here, at load time: unknown keys
//! (with their line), patterns naming unknown variables, image names and globs.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// Where the configuration lives, relative to the root.
pub(crate) const DEFAULT_CONFIG: &str = "flavors/matriochka.toml";

/// Variables every flavor has (besides one `<IMAGE>_IMAGE` per image).
pub(crate) const FLAVOR_VARIABLES: &[&str] = &[
    "BASEOS_REGISTRY",
    "BASEOS_REPO",
    "BASEOS_TAG",
    "BASE_IMAGE",
    "CEPH_POINT_RELEASE",
    "CEPH_POINT_RELEASE_TAG",
    "CEPH_VERSION",
    "DISTRO",
    "DISTRO_VERSION",
    "GIT_BRANCH",
    "GIT_CLEAN",
    "GIT_COMMIT",
    "GIT_REPO",
    "GO_ARCH",
    "HOST_ARCH",
    "IMAGES_TO_BUILD",
    "RELEASE",
    "STAGING_DIR",
    "TAG_REGISTRY",
];

/// Variables set only for flavors that pin a point release (`squid=19.2.1-1`); rolling tags may
/// name them.
pub(crate) const POINT_RELEASE_VARIABLES: &[&str] =
    &["CEPH_FULL_VERSION", "CEPH_MAJOR", "CEPH_MINOR"];

/// Variables a manifest tag must not name: one list holds every arch.
const PER_ARCH_VARIABLES: &[&str] = &["GO_ARCH", "HOST_ARCH"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    layout: RawLayout,
    #[serde(default)]
    flavors: RawFlavors,
    #[serde(default)]
    modified: RawModified,
    #[serde(default)]
    variables: crate::domain::derived::RawVariables,
    #[serde(default)]
    images: crate::domain::image_args::RawImages,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    #[serde(default = "default_templates")]
    templates: String,
    layers: Vec<String>,
    images: Vec<String>,
    staging_dir: String,
    #[serde(default = "default_staging_root")]
    staging_root: String,
    image_tag: String,
    #[serde(default)]
    keep_fragments: bool,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    manifest_tag: Option<String>,
    #[serde(default)]
    rolling_tags: Vec<String>,
    #[serde(default)]
    extra_tags: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFlavors {
    #[serde(default)]
    default: Vec<String>,
    #[serde(default)]
    buildable: Vec<String>,
    /// Flavors the tests build and run but nothing pushes (`show flavors --test`).
    #[serde(default)]
    test: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawModified {
    #[serde(default)]
    always: Vec<String>,
}

fn default_templates() -> String {
    "templates".into()
}

fn default_staging_root() -> String {
    "staging".into()
}

pub(crate) use crate::domain::pattern::Pattern;

/// The checked configuration.
#[derive(Debug)]
pub(crate) struct Config {
    /// The project root: paths below are relative to it.
    pub(crate) root: PathBuf,
    /// The configuration file, as it was named.
    pub(crate) path: PathBuf,
    /// The templates tree, relative to the root, in normal form: empty when the templates are
    /// the root itself (`templates = "."`), never a `./` prefix.
    pub(crate) templates: PathBuf,
    /// Layer patterns, relative to `templates`, least to most specific.
    pub(crate) layers: Vec<Pattern>,
    pub(crate) images: Vec<String>,
    pub(crate) staging_dir: Pattern,
    pub(crate) staging_root: PathBuf,
    pub(crate) image_tag: Pattern,
    pub(crate) keep_fragments: bool,
    /// The tag of each image's manifest list (`layout.manifest_tag`), when set.
    pub(crate) manifest_tag: Option<Pattern>,
    /// Tags that follow the newest point release (`layout.rolling_tags`).
    pub(crate) rolling_tags: Vec<Pattern>,
    /// Further tags of every image, given at build time and pushed (`layout.extra_tags`).
    pub(crate) extra_tags: Vec<Pattern>,
    env: GlobSet,
    pub(crate) default_flavors: Vec<String>,
    pub(crate) buildable: Vec<String>,
    /// `flavors.test`: built and run by the tests, never pushed.
    pub(crate) test_flavors: Vec<String>,
    always: GlobSet,
    /// `[variables]`: values derived from a flavor's fields, in file order.
    pub(crate) derived: Vec<crate::domain::derived::Derived>,
    /// `[images.<name>]`: build arguments by image name.
    pub(crate) image_args: BTreeMap<String, crate::domain::image_args::ImageArgs>,
    /// The run's header and footer (`HEADER`, `FOOTER`): set by the project when it loads.
    pub(crate) decor: crate::domain::decor::Decor,
}

impl Config {
    /// Loads `<root>/flavors/matriochka.toml`, or `config` when given (relative to the current
    /// directory).
    pub(crate) fn load(root: &Path, config: Option<&Path>) -> Result<Config> {
        let path = match config {
            Some(path) => path.to_path_buf(),
            None if root == Path::new(".") => PathBuf::from(DEFAULT_CONFIG),
            None => root.join(DEFAULT_CONFIG),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        Config::parse(root, &path, &text)
            .with_context(|| format!("failed to load `{}`", path.display()))
    }

    /// Parses and checks a configuration's text.
    pub(crate) fn parse(root: &Path, path: &Path, text: &str) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            let message = err.message().trim_end().to_string();
            match line {
                Some(line) => anyhow::anyhow!("line {line}: {message}"),
                None => anyhow::anyhow!("{message}"),
            }
        })?;
        let layout = raw.layout;
        if layout.images.is_empty() {
            bail!("`layout.images` is empty: name at least one image");
        }
        for image in &layout.images {
            check_image_name(image)?;
            let variable = image_variable(image);
            if FLAVOR_VARIABLES.contains(&variable.as_str()) {
                bail!("`layout.images`: image `{image}` would set `{variable}`, a flavor variable: rename the image");
            }
        }
        if let Some(dup) = first_duplicate(&layout.images) {
            bail!("`layout.images` names `{dup}` twice");
        }
        let env = build_globs(&layout.env, "layout.env")?;
        let mut known: Vec<String> = FLAVOR_VARIABLES
            .iter()
            .map(|name| name.to_string())
            .collect();
        known.extend(layout.images.iter().map(|image| image_variable(image)));
        let checked: Vec<String> = raw
            .flavors
            .buildable
            .iter()
            .chain(&raw.flavors.test)
            .cloned()
            .collect();
        let derived = crate::domain::derived::check(raw.variables, text, &known, &checked)?;
        known.extend(derived.iter().map(|entry| entry.name.clone()));
        let is_known = |name: &str| known.iter().any(|known| known == name) || env.is_match(name);
        let pattern = |key: &str, text: &str, extra: &[&str]| -> Result<Pattern> {
            let pattern = Pattern::parse(text).map_err(|err| anyhow::anyhow!("`{key}`: {err}"))?;
            if let Some(name) = pattern
                .variables()
                .find(|name| !is_known(name) && !extra.contains(name))
            {
                bail!(
                    "`{key}` pattern `{text}` names unknown variable `{{{name}}}`; known: {}",
                    itertools::join(
                        known
                            .iter()
                            .map(String::as_str)
                            .chain(extra.iter().copied()),
                        ", "
                    )
                );
            }
            Ok(pattern)
        };
        let layers = layout
            .layers
            .iter()
            .map(|text| {
                let layer = pattern("layout.layers", text, &[])?;
                check_relative("layout.layers", text)?;
                Ok(layer)
            })
            .collect::<Result<Vec<_>>>()?;
        if layers.is_empty() {
            bail!("`layout.layers` is empty: name at least one layer directory");
        }
        check_templates(&layout.templates)?;
        check_relative("layout.staging_root", &layout.staging_root)?;
        check_relative("layout.staging_dir", &layout.staging_dir)?;
        let staging_dir = pattern("layout.staging_dir", &layout.staging_dir, &[])?;
        if !Path::new(&layout.staging_dir).starts_with(&layout.staging_root) {
            bail!(
                "`layout.staging_dir` `{}` is not inside `layout.staging_root` `{}`",
                layout.staging_dir,
                layout.staging_root
            );
        }
        let image_tag = pattern("layout.image_tag", &layout.image_tag, &["IMAGE"])?;
        let always = build_globs(&raw.modified.always, "modified.always")?;
        let config_text = text;
        let manifest_tag = match &layout.manifest_tag {
            Some(text) => {
                let tag = pattern("layout.manifest_tag", text, &["IMAGE"])?;
                check_not_per_arch(&tag, "manifest_tag", config_text)?;
                Some(tag)
            }
            None => None,
        };
        let mut rolling_extra = vec!["IMAGE"];
        rolling_extra.extend(POINT_RELEASE_VARIABLES);
        let rolling_tags = layout
            .rolling_tags
            .iter()
            .map(|text| {
                let tag = pattern("layout.rolling_tags", text, &rolling_extra)?;
                check_not_per_arch(&tag, "rolling_tags", config_text)?;
                Ok(tag)
            })
            .collect::<Result<Vec<_>>>()?;
        if !rolling_tags.is_empty() && manifest_tag.is_none() {
            bail!("`layout.rolling_tags` needs `layout.manifest_tag`: rolling tags name manifest lists");
        }
        let image_args = crate::domain::image_args::check(
            raw.images,
            config_text,
            &layout.images,
            &crate::domain::flavor::KNOWN_ARCHES,
            &is_known,
        )?;
        let extra_tags = layout
            .extra_tags
            .iter()
            .map(|text| pattern("layout.extra_tags", text, &["IMAGE"]))
            .collect::<Result<Vec<_>>>()?;
        Ok(Config {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
            templates: normal_path(Path::new(&layout.templates)),
            layers,
            images: layout.images,
            staging_dir,
            staging_root: PathBuf::from(layout.staging_root),
            image_tag,
            keep_fragments: layout.keep_fragments,
            manifest_tag,
            rolling_tags,
            extra_tags,
            env,
            default_flavors: raw.flavors.default,
            buildable: raw.flavors.buildable,
            test_flavors: raw.flavors.test,
            always,
            derived,
            image_args,
            decor: crate::domain::decor::Decor::default(),
        })
    }

    /// Whether templates may read the environment variable `name`.
    pub(crate) fn env_allowed(&self, name: &str) -> bool {
        self.env.is_match(name)
    }

    /// Whether a changed path always affects every flavor (`modified.always`).
    pub(crate) fn always_matches(&self, path: &Path) -> bool {
        self.always.is_match(path)
    }

    /// What lies inside the templates tree but is never layer content: the staging root, and
    /// the configuration's directory (or the file alone when it sits at the top of the
    /// templates). Relative to the root, in normal form; empty when the templates hold neither.
    pub(crate) fn excluded_from_templates(&self) -> Vec<PathBuf> {
        let mut excluded = Vec::new();
        let staging_root = normal_path(&self.staging_root);
        if staging_root.starts_with(&self.templates) {
            excluded.push(staging_root);
        }
        let mut config = PathBuf::from(self.display_path());
        if config.is_absolute() {
            // `--config /abs/path`: below the root all the same?
            if let (Ok(path), Ok(root)) = (self.path.canonicalize(), self.root.canonicalize()) {
                if let Ok(rel) = path.strip_prefix(&root) {
                    config = rel.to_path_buf();
                }
            }
        }
        if config.is_relative() && !config.starts_with("..") {
            let config = normal_path(&config);
            let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
            let excluded_path = if dir == self.templates { config } else { dir };
            if excluded_path.starts_with(&self.templates) && excluded_path != self.templates {
                excluded.push(excluded_path);
            }
        }
        excluded
    }

    /// The configuration file's path relative to the root when it lies below it.
    pub(crate) fn display_path(&self) -> String {
        self.path
            .strip_prefix(&self.root)
            .unwrap_or(&self.path)
            .display()
            .to_string()
    }
}

/// `daemon-base` → `DAEMON_BASE_IMAGE`.
pub(crate) fn image_variable(image: &str) -> String {
    format!("{}_IMAGE", image_stem(image))
}

/// `daemon-base` → `DAEMON_BASE_TAG`, the environment variable that overrides its tag.
pub(crate) fn image_tag_override(image: &str) -> String {
    format!("{}_TAG", image_stem(image))
}

fn image_stem(image: &str) -> String {
    image.to_ascii_uppercase().replace(['-', '.'], "_")
}

fn check_image_name(image: &str) -> Result<()> {
    let ok = !image.is_empty()
        && image.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!(
            "`layout.images`: `{image}` is not a valid image name: use lowercase letters and digits \
             separated by single `.`, `_` or `-`"
        );
    }
    Ok(())
}

/// A manifest or rolling tag names one list for every arch: naming the arch is an error, with the
/// line of the key in the configuration.
fn check_not_per_arch(pattern: &Pattern, key: &str, config_text: &str) -> Result<()> {
    if let Some(name) = pattern
        .variables()
        .find(|name| PER_ARCH_VARIABLES.contains(name))
    {
        let line = pattern_line(config_text, key, &pattern.text)
            .map(|line| format!("line {line}: "))
            .unwrap_or_default();
        bail!(
            "{line}`layout.{key}` pattern `{}` names `{{{name}}}`: a manifest list holds every arch, \
             so its tag must not name one",
            pattern.text
        );
    }
    Ok(())
}

/// The line (from 1) of the configuration where `pattern` is written as a value of `key`: the
/// first line from the key's own that holds the quoted pattern.
fn pattern_line(config_text: &str, key: &str, pattern: &str) -> Option<usize> {
    let lines: Vec<&str> = config_text.lines().collect();
    let start = lines.iter().position(|line| {
        line.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    })?;
    let quoted = [format!("\"{pattern}\""), format!("'{pattern}'")];
    let found = lines[start..]
        .iter()
        .position(|line| quoted.iter().any(|q| line.contains(q.as_str())))
        .map_or(start, |offset| start + offset);
    Some(found + 1)
}

/// `path` without `.` components: `./x` → `x`, `.` → the empty path.
pub(crate) fn normal_path(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// The templates may be the root itself (`.`) or start with `./`; never absolute or with `..`.
fn check_templates(text: &str) -> Result<()> {
    let path = Path::new(text);
    if text.is_empty()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        bail!(
            "`layout.templates` `{text}` must be a relative path without `..` (`.` for the root)"
        );
    }
    Ok(())
}

fn check_relative(key: &str, text: &str) -> Result<()> {
    let path = Path::new(text);
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        bail!("`{key}` `{text}` must be a relative path without `..`");
    }
    Ok(())
}

fn build_globs(globs: &[String], key: &str) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let glob = globset::GlobBuilder::new(glob)
            .literal_separator(true)
            .build()
            .or_else(|_| Glob::new(glob))
            .with_context(|| format!("`{key}`: bad glob `{glob}`"))?;
        builder.add(glob);
    }
    builder
        .build()
        .with_context(|| format!("`{key}`: bad globs"))
}

/// A tag the configuration gives to a manifest group: the tag, the group (named by its manifest
/// tag), and the key and pattern that give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupTag {
    pub(crate) tag: String,
    pub(crate) group: String,
    pub(crate) key: &'static str,
    pub(crate) pattern: String,
}

/// Fails on the first tag two manifest groups both get (a manifest, rolling or extra tag): a tag
/// names one list, and two groups pushing it would overwrite each other.
pub(crate) fn check_group_tags(tags: &[GroupTag]) -> Result<()> {
    let mut owners: BTreeMap<&str, &GroupTag> = BTreeMap::new();
    for tag in tags {
        match owners.get(tag.tag.as_str()) {
            Some(first) if first.group != tag.group => {
                let keys = if (first.key, &first.pattern) == (tag.key, &tag.pattern) {
                    format!("`layout.{}` `{}`", tag.key, tag.pattern)
                } else {
                    format!(
                        "`layout.{}` `{}`, `layout.{}` `{}`",
                        first.key, first.pattern, tag.key, tag.pattern
                    )
                };
                bail!(
                    "manifest groups `{}` and `{}` both get tag `{}` ({keys}): a tag names one list; name in the pattern what separates the groups (e.g. `{{DISTRO}}-{{BASEOS_TAG}}`)",
                    first.group,
                    tag.group,
                    tag.tag
                );
            }
            Some(_) => {}
            None => {
                owners.insert(&tag.tag, tag);
            }
        }
    }
    Ok(())
}

fn first_duplicate(items: &[String]) -> Option<&str> {
    items
        .iter()
        .enumerate()
        .find(|(i, item)| items[..*i].contains(item))
        .map(|(_, item)| item.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[layout]
layers = ["src", "rel/{CEPH_VERSION}"]
images = ["daemon-base", "daemon"]
staging_dir = "staging/{CEPH_VERSION}-{DISTRO}"
image_tag = "{IMAGE}:{RELEASE}"
env = ["CEPH_*"]

[flavors]
default = ["squid,centos,9"]
"#;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(
            Path::new("/r"),
            Path::new("/r/flavors/matriochka.toml"),
            text,
        )
    }

    #[test]
    fn loads_defaults() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.templates, Path::new("templates"));
        assert_eq!(config.staging_root, Path::new("staging"));
        assert!(!config.keep_fragments);
        assert!(config.env_allowed("CEPH_DEVEL"));
        assert!(!config.env_allowed("HOME"));
        assert_eq!(config.default_flavors, ["squid,centos,9"]);
    }

    #[test]
    fn templates_at_the_root() {
        let with = |templates: &str| {
            let text = GOOD.replace(
                "[layout]",
                &format!("[layout]\ntemplates = \"{templates}\""),
            );
            parse(&text).map_err(|err| format!("{err:#}"))
        };
        let config = with(".").unwrap();
        assert_eq!(config.templates, Path::new(""));
        assert_eq!(
            config.excluded_from_templates(),
            [PathBuf::from("staging"), PathBuf::from("flavors")]
        );
        assert_eq!(with("./").unwrap().templates, Path::new(""));
        assert_eq!(with("./x").unwrap().templates, Path::new("x"));
        assert_eq!(with("x/./y/").unwrap().templates, Path::new("x/y"));
        assert!(with("templates")
            .unwrap()
            .excluded_from_templates()
            .is_empty());
        for bad in ["", "..", "../x", "/abs", "x/../y"] {
            assert_eq!(
                with(bad).unwrap_err(),
                format!(
                    "`layout.templates` `{bad}` must be a relative path without `..` (`.` for the root)"
                )
            );
        }
    }

    #[test]
    fn a_configuration_at_the_top_of_the_templates_excludes_only_itself() {
        let text = GOOD.replace("[layout]", "[layout]\ntemplates = \".\"");
        let config = Config::parse(Path::new("."), Path::new("matriochka.toml"), &text).unwrap();
        assert_eq!(
            config.excluded_from_templates(),
            [PathBuf::from("staging"), PathBuf::from("matriochka.toml")]
        );
        let config = Config::parse(Path::new(".."), Path::new("../conf/m.toml"), &text).unwrap();
        assert_eq!(
            config.excluded_from_templates(),
            [PathBuf::from("staging"), PathBuf::from("conf")]
        );
    }

    #[test]
    fn unknown_key_names_its_line() {
        let text = GOOD.replace("env =", "colour = 1\nenv =");
        let err = format!("{:#}", parse(&text).err().unwrap());
        assert!(
            err.starts_with("line 7: unknown field `colour`, expected one of"),
            "{err}"
        );
    }

    #[test]
    fn unknown_variable_in_pattern() {
        let text = GOOD.replace("{RELEASE}", "{RELEAS}");
        let err = format!("{:#}", parse(&text).err().unwrap());
        assert!(
            err.starts_with(
                "`layout.image_tag` pattern `{IMAGE}:{RELEAS}` names unknown variable `{RELEAS}`"
            ),
            "{err}"
        );
        let text = GOOD.replace("rel/{CEPH_VERSION}", "rel/{IMAGE}");
        // IMAGE is only known in image_tag.
        assert_eq!(format!("{:#}", parse(&text).err().unwrap()), "`layout.layers` pattern `rel/{IMAGE}` names unknown variable `{IMAGE}`; known: BASEOS_REGISTRY, BASEOS_REPO, BASEOS_TAG, BASE_IMAGE, CEPH_POINT_RELEASE, CEPH_POINT_RELEASE_TAG, CEPH_VERSION, DISTRO, DISTRO_VERSION, GIT_BRANCH, GIT_CLEAN, GIT_COMMIT, GIT_REPO, GO_ARCH, HOST_ARCH, IMAGES_TO_BUILD, RELEASE, STAGING_DIR, TAG_REGISTRY, DAEMON_BASE_IMAGE, DAEMON_IMAGE");
    }

    #[test]
    fn staging_dir_must_be_inside_staging_root() {
        let text = GOOD.replace("staging/{CEPH", "elsewhere/{CEPH");
        let err = format!("{:#}", parse(&text).err().unwrap());
        assert_eq!(
            err,
            "`layout.staging_dir` `elsewhere/{CEPH_VERSION}-{DISTRO}` is not inside `layout.staging_root` `staging`"
        );
        let text = GOOD.replace("staging/{CEPH", "staging/../{CEPH");
        assert_eq!(format!("{:#}", parse(&text).err().unwrap()), "`layout.staging_dir` `staging/../{CEPH_VERSION}-{DISTRO}` must be a relative path without `..`");
    }

    #[test]
    fn pattern_expansion() {
        let pattern = Pattern::parse("a/{X}-{Y}").unwrap();
        assert_eq!(pattern.variables().collect::<Vec<_>>(), ["X", "Y"]);
        let lookup = |name: &str| match name {
            "X" => Some("1"),
            "Y" => Some("2"),
            _ => None,
        };
        assert_eq!(pattern.expand(lookup).unwrap(), "a/1-2");
        assert_eq!(
            Pattern::parse("{Z}").unwrap().expand(lookup).unwrap_err(),
            "Z"
        );
        assert_eq!(
            format!("{:#}", Pattern::parse("a/{X").err().unwrap()),
            "unclosed `{` in `a/{X`"
        );
    }

    #[test]
    fn manifest_tag_must_not_name_the_arch() {
        let text = GOOD.replace(
            "env =",
            "manifest_tag = \"{IMAGE}:{RELEASE}-{HOST_ARCH}\"\nenv =",
        );
        let err = format!("{:#}", parse(&text).err().unwrap());
        assert_eq!(
            err,
            "line 7: `layout.manifest_tag` pattern `{IMAGE}:{RELEASE}-{HOST_ARCH}` names `{HOST_ARCH}`: \
             a manifest list holds every arch, so its tag must not name one"
        );
        let text = GOOD.replace(
            "env =",
            "manifest_tag = \"{IMAGE}:{RELEASE}\"\nrolling_tags = [\n  \"{IMAGE}:v{CEPH_MAJOR}\",\n  \"{IMAGE}:{GO_ARCH}\",\n]\nenv =",
        );
        let err = format!("{:#}", parse(&text).err().unwrap());
        assert!(
            err.starts_with(
                "line 10: `layout.rolling_tags` pattern `{IMAGE}:{GO_ARCH}` names `{GO_ARCH}`"
            ),
            "{err}"
        );
    }

    fn group_tag(group: &str, key: &'static str, pattern: &str, tag: &str) -> GroupTag {
        GroupTag {
            tag: tag.into(),
            group: group.into(),
            key,
            pattern: pattern.into(),
        }
    }

    #[test]
    fn two_groups_with_one_tag_are_refused_naming_both_and_the_tag() {
        let rolling = "{IMAGE}:v{CEPH_MAJOR}";
        let tags = [
            group_tag("d:squid-centos", "manifest_tag", "m", "d:squid-centos"),
            group_tag("d:squid-centos", "rolling_tags", rolling, "d:v19"),
            group_tag("d:squid-ubuntu", "manifest_tag", "m", "d:squid-ubuntu"),
        ];
        check_group_tags(&tags).unwrap();
        let mut colliding = tags.to_vec();
        colliding.push(group_tag(
            "d:squid-ubuntu",
            "rolling_tags",
            rolling,
            "d:v19",
        ));
        assert_eq!(
            check_group_tags(&colliding).unwrap_err().to_string(),
            "manifest groups `d:squid-centos` and `d:squid-ubuntu` both get tag `d:v19` (`layout.rolling_tags` `{IMAGE}:v{CEPH_MAJOR}`): \
             a tag names one list; name in the pattern what separates the groups (e.g. `{DISTRO}-{BASEOS_TAG}`)"
        );
        let mut extra = tags.to_vec();
        extra.push(group_tag(
            "d:squid-ubuntu",
            "extra_tags",
            "{IMAGE}:v19",
            "d:v19",
        ));
        assert_eq!(
            check_group_tags(&extra).unwrap_err().to_string(),
            "manifest groups `d:squid-centos` and `d:squid-ubuntu` both get tag `d:v19` (`layout.rolling_tags` `{IMAGE}:v{CEPH_MAJOR}`, `layout.extra_tags` `{IMAGE}:v19`): \
             a tag names one list; name in the pattern what separates the groups (e.g. `{DISTRO}-{BASEOS_TAG}`)"
        );
    }

    #[test]
    fn extra_tags_are_patterns_checked_at_load() {
        let text = GOOD.replace(
            "env =",
            "extra_tags = [\"{IMAGE}:{GIT_COMMIT}\", \"{IMAGE}:candidate\"]\nenv =",
        );
        let config = parse(&text).unwrap();
        let texts: Vec<&str> = config.extra_tags.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["{IMAGE}:{GIT_COMMIT}", "{IMAGE}:candidate"]);
        assert!(parse(GOOD).unwrap().extra_tags.is_empty());
        let text = GOOD.replace("env =", "extra_tags = [\"{IMAGE}:{GIT_COMIT}\"]\nenv =");
        let err = format!("{:#}", parse(&text).err().unwrap());
        assert!(
            err.starts_with(
                "`layout.extra_tags` pattern `{IMAGE}:{GIT_COMIT}` names unknown variable `{GIT_COMIT}`; known: "
            ),
            "{err}"
        );
    }

    #[test]
    fn rolling_tags_name_point_release_variables_and_need_a_manifest_tag() {
        let text = GOOD.replace(
            "env =",
            "manifest_tag = \"{IMAGE}:{RELEASE}\"\nrolling_tags = [\"{IMAGE}:v{CEPH_MAJOR}.{CEPH_MINOR}\", \"{IMAGE}:v{CEPH_FULL_VERSION}\"]\nenv =",
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.manifest_tag.unwrap().text, "{IMAGE}:{RELEASE}");
        assert_eq!(config.rolling_tags.len(), 2);
        let text = GOOD.replace("env =", "rolling_tags = [\"{IMAGE}:v{CEPH_MAJOR}\"]\nenv =");
        let err = format!("{:#}", parse(&text).err().unwrap());
        assert_eq!(
            err,
            "`layout.rolling_tags` needs `layout.manifest_tag`: rolling tags name manifest lists"
        );
        let text = GOOD
            .replace("CEPH_*", "CEPH_DEVEL")
            .replace("env =", "manifest_tag = \"{IMAGE}:{CEPH_MAJOR}\"\nenv =");
        assert!(
            parse(&text).is_err(),
            "point release variables are for rolling tags only"
        );
    }

    #[test]
    fn image_variables() {
        assert_eq!(image_variable("daemon-base"), "DAEMON_BASE_IMAGE");
        assert_eq!(image_tag_override("daemon-base"), "DAEMON_BASE_TAG");
    }
}
