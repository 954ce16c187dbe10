//! Per-image build arguments: the configuration's `[images.<name>]` tables
//! (`build_args = { CEPH_REF = "{CEPH_VERSION}" }`, `platform_args.<arch> = { … }`).
//!
//! Checked at load (image names, argument names, variables, arches), each with its line;
//! expanded per flavor with its variables, like tags. The values are passed as
//! `--build-arg NAME=value`, written into the build plan and the bake file, and are part of the
//! content id.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::domain::pattern::Pattern;

/// One `[images.<name>]` table, as written.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImage {
    #[serde(default)]
    build_args: BTreeMap<String, Spanned<String>>,
    /// By the flavor's arch (`aarch64`): arguments added, or replaced, for that arch only.
    #[serde(default)]
    platform_args: BTreeMap<String, BTreeMap<String, Spanned<String>>>,
}

/// The `[images]` table as deserialized.
///
/// Not `Spanned` per image: toml cannot deserialize a span of a table that is only defined by
/// its sub-tables (`[images.core.build_args]`); the line is found in the text instead.
pub(crate) type RawImages = BTreeMap<String, RawImage>;

/// The checked build arguments of one image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ImageArgs {
    /// Every flavor's arguments, by name.
    pub(crate) build_args: BTreeMap<String, Pattern>,
    /// By arch: arguments for the flavors of that arch, over `build_args`.
    pub(crate) platform_args: BTreeMap<String, BTreeMap<String, Pattern>>,
}

/// Checks `[images]` of the configuration `text`: `images` are `layout.images`, `is_known` tells
/// the variables a pattern may name (`IMAGE` is the image's name).
pub(crate) fn check(
    raw: RawImages,
    text: &str,
    images: &[String],
    arches: &[&str],
    is_known: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, ImageArgs>> {
    let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut out = BTreeMap::new();
    for (image, raw) in raw {
        let at = table_line(text, &image);
        if !images.contains(&image) {
            let hint = crate::domain::suggest::closest(&image, images.iter().map(String::as_str))
                .map(|near| format!("did you mean `{near}`? "))
                .unwrap_or_default();
            bail!(
                "line {at}: `images.{image}` names an image that is not in `layout.images`: {hint}known: {}",
                images.join(", ")
            );
        }
        let table = |key: &str,
                     args: BTreeMap<String, Spanned<String>>|
         -> Result<BTreeMap<String, Pattern>> {
            args.into_iter()
                .map(|(name, value)| {
                    let at = line(value.span().start);
                    let key = format!("images.{image}.{key}.{name}");
                    if !is_arg_name(&name) {
                        bail!("line {at}: `{key}`: a build argument name is made of letters, digits and `_`, and does not start with a digit");
                    }
                    let value = value.into_inner();
                    let pattern = Pattern::parse(&value)
                        .map_err(|err| anyhow::anyhow!("line {at}: `{key}`: {err}"))?;
                    if let Some(name) = pattern
                        .variables()
                        .find(|name| *name != "IMAGE" && !is_known(name))
                    {
                        bail!("line {at}: `{key}` pattern `{value}` names unknown variable `{{{name}}}`");
                    }
                    if value.chars().any(char::is_control) {
                        bail!("line {at}: `{key}` holds a control character");
                    }
                    Ok((name, pattern))
                })
                .collect()
        };
        let build_args = table("build_args", raw.build_args)?;
        let mut platform_args = BTreeMap::new();
        for (arch, args) in raw.platform_args {
            if !arches.contains(&arch.as_str()) {
                let at = args
                    .values()
                    .next()
                    .map_or(at, |value| line(value.span().start));
                bail!(
                    "line {at}: `images.{image}.platform_args.{arch}`: `{arch}` is not an arch; known: {}",
                    arches.join(", ")
                );
            }
            let args = table(&format!("platform_args.{arch}"), args)?;
            platform_args.insert(arch, args);
        }
        out.insert(
            image,
            ImageArgs {
                build_args,
                platform_args,
            },
        );
    }
    Ok(out)
}

/// The line (from 1) of the first header or key that defines `images.<image>`: `[images.core]`,
/// `[images.core.build_args]`, `core = {…}` under `[images]`, or `images.core.… =`.
fn table_line(text: &str, image: &str) -> usize {
    let names = [format!("images.{image}"), format!("images.\"{image}\"")];
    let mut in_images = false;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        let mut rest = line;
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[').trim_start();
            in_images = header.trim_end().trim_end_matches(']').trim_end() == "images";
            rest = header;
        } else if in_images {
            if line.starts_with(image) && line[image.len()..].trim_start().starts_with(['=', '.']) {
                return index + 1;
            }
            continue;
        }
        for name in &names {
            if let Some(after) = rest.strip_prefix(name.as_str()) {
                if after.trim_start().starts_with([']', '.', '=']) {
                    return index + 1;
                }
            }
        }
    }
    1
}

fn is_arg_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The arguments of every image of a flavor of arch `arch`, expanded by `lookup`; the error is
/// the key and the variable that is not set.
pub(crate) fn expand<'a>(
    args: &BTreeMap<String, ImageArgs>,
    arch: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    let mut out = BTreeMap::new();
    for (image, image_args) in args {
        let mut values = BTreeMap::new();
        let platform = image_args.platform_args.get(arch);
        let entries = image_args
            .build_args
            .iter()
            .map(|entry| ("build_args".to_string(), entry))
            .chain(
                platform
                    .into_iter()
                    .flatten()
                    .map(|entry| (format!("platform_args.{arch}"), entry)),
            );
        for (key, (name, pattern)) in entries {
            let value = pattern
                .expand(|var| {
                    if var == "IMAGE" {
                        Some(image.as_str())
                    } else {
                        lookup(var)
                    }
                })
                .map_err(|var| {
                    format!("`images.{image}.{key}.{name}` names `{{{var}}}`, which is not set")
                })?;
            values.insert(name.clone(), value);
        }
        if !values.is_empty() {
            out.insert(image.clone(), values);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> Result<BTreeMap<String, ImageArgs>, String> {
        #[derive(Deserialize)]
        struct Wrap {
            images: RawImages,
        }
        let raw: Wrap = toml::from_str(text).unwrap();
        let known = |name: &str| ["CEPH_VERSION", "GO_ARCH", "OPT"].contains(&name);
        check(
            raw.images,
            text,
            &["core".to_string(), "app".to_string()],
            &["x86_64", "aarch64"],
            &known,
        )
        .map_err(|err| format!("{err:#}"))
    }

    #[test]
    fn platform_args_replace_build_args_for_their_arch() {
        let args = checked(
            "[images.app]\nbuild_args = { REF = \"{CEPH_VERSION}-{IMAGE}\", ARCH = \"{GO_ARCH}\" }\nplatform_args.aarch64 = { ARCH = \"arm\", PAGE = \"64k\" }\n",
        )
        .unwrap();
        let lookup = |name: &str| match name {
            "CEPH_VERSION" => Some("squid"),
            "GO_ARCH" => Some("amd64"),
            _ => None,
        };
        let x86 = expand(&args, "x86_64", lookup).unwrap();
        assert_eq!(
            x86["app"],
            BTreeMap::from([
                ("ARCH".to_string(), "amd64".to_string()),
                ("REF".to_string(), "squid-app".to_string())
            ])
        );
        assert!(!x86.contains_key("core"));
        let arm = expand(&args, "aarch64", lookup).unwrap();
        assert_eq!(arm["app"]["ARCH"], "arm");
        assert_eq!(arm["app"]["PAGE"], "64k");
        let unset = checked("[images.app]\nbuild_args = { X = \"{OPT}\" }\n").unwrap();
        assert_eq!(
            expand(&unset, "x86_64", lookup).unwrap_err(),
            "`images.app.build_args.X` names `{OPT}`, which is not set"
        );
    }

    #[test]
    fn load_errors_name_their_line() {
        assert_eq!(
            checked("\n[images.ap]\nbuild_args = {}\n").unwrap_err(),
            "line 2: `images.ap` names an image that is not in `layout.images`: did you mean `app`? known: core, app"
        );
        assert_eq!(
            checked("[images.app.build_args]\nA = \"x\"\nB = \"{CEPH_VERSON}\"\n")
                .unwrap_err(),
            "line 3: `images.app.build_args.B` pattern `{CEPH_VERSON}` names unknown variable `{CEPH_VERSON}`"
        );
        assert_eq!(
            checked("[x]\n[images]\napp = { build_args = { A = \"{X}\" } }\n").unwrap_err(),
            "line 3: `images.app.build_args.A` pattern `{X}` names unknown variable `{X}`"
        );
        assert_eq!(
            checked("[images.app]\nbuild_args = { 1A = \"x\" }\n").unwrap_err(),
            "line 2: `images.app.build_args.1A`: a build argument name is made of letters, digits and `_`, and does not start with a digit"
        );
        assert_eq!(
            checked("[images.app]\nplatform_args.arm64 = { A = \"x\" }\n").unwrap_err(),
            "line 2: `images.app.platform_args.arm64`: `arm64` is not an arch; known: x86_64, aarch64"
        );
        assert_eq!(
            checked("[images.app]\nbuild_args = { A = \"a\\nb\" }\n").unwrap_err(),
            "line 2: `images.app.build_args.A` holds a control character"
        );
    }
}
