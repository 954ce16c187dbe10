//! Dockerfile: the one reader of Dockerfile instructions (continuation lines, comments, `FROM`
//! and `COPY --from=`), shared by the parent graph, the header/footer and `check`. A `FROM` naming
//! a variable (`FROM ${BASE}`) is read as the engine reads it: the global `ARG`s (those before the
//! first `FROM`) with their defaults, overridden by the image's build arguments.

use std::collections::{BTreeMap, BTreeSet};

/// The file of each context whose instructions are read.
pub(crate) const DOCKERFILE: &str = "Dockerfile";

/// What a Dockerfile refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct References {
    /// Images named by `FROM` and `COPY --from=`, with the line, stage names left out.
    pub(crate) images: Vec<(String, usize)>,
    /// Whether some `FROM` names an image rather than a stage or `scratch`.
    pub(crate) from_images: Vec<String>,
    /// `FROM` arguments naming a variable that has no value (no default, no build argument), as
    /// written, with the line and the variable.
    pub(crate) unresolved: Vec<(String, usize, String)>,
}

/// Reads `FROM` and `COPY --from=` out of a Dockerfile; `build_args` are the image's build
/// arguments (`--build-arg NAME=value`), which override the global `ARG` defaults.
pub(crate) fn references(
    dockerfile: &str,
    build_args: Option<&BTreeMap<String, String>>,
) -> References {
    let mut refs = References::default();
    let mut stages = BTreeSet::new();
    // The global ARGs: their values where known, `None` for one declared without any.
    let mut globals: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut seen_from = false;
    for (line, instruction) in instructions(dockerfile) {
        let mut words = instruction.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let args: Vec<&str> = words.collect();
        if keyword.eq_ignore_ascii_case("ARG") && !seen_from {
            for arg in &args {
                let (name, default) = match arg.split_once('=') {
                    Some((name, default)) => (name, Some(unquote(default))),
                    None => (*arg, None),
                };
                let given = build_args.and_then(|given| given.get(name)).cloned();
                let default = default.and_then(|text| expand(text, &globals).ok());
                globals.insert(name.to_string(), given.or(default));
            }
        } else if keyword.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            let mut positional = args.iter().filter(|arg| !arg.starts_with("--"));
            let Some(written) = positional.next() else {
                continue;
            };
            let image = match expand(written, &globals) {
                Ok(image) => image,
                Err(variable) => {
                    refs.unresolved.push((written.to_string(), line, variable));
                    continue;
                }
            };
            let image = image.as_str();
            if let (Some(as_kw), Some(name)) = (positional.next(), positional.next()) {
                if as_kw.eq_ignore_ascii_case("AS") {
                    stages.insert(name.to_ascii_lowercase());
                }
            }
            if !stages.contains(&image.to_ascii_lowercase())
                && !image.eq_ignore_ascii_case("scratch")
            {
                refs.images.push((image.to_string(), line));
                refs.from_images.push(image.to_string());
            }
        } else if keyword.eq_ignore_ascii_case("COPY") {
            for arg in args {
                if let Some(from) = arg.strip_prefix("--from=") {
                    if !stages.contains(&from.to_ascii_lowercase())
                        && from.parse::<usize>().is_err()
                    {
                        refs.images.push((from.to_string(), line));
                    }
                }
            }
        }
    }
    refs
}

/// `"x"` or `'x'` → `x`.
fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

/// `text` with `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}` replaced from `vars`;
/// `Err(name)` for a variable without a value (the engine would put an empty string there).
fn expand(text: &str, vars: &BTreeMap<String, Option<String>>) -> Result<String, String> {
    let value = |name: &str| vars.get(name).cloned().flatten();
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(braced) = rest.strip_prefix('{') {
            let Some(end) = braced.find('}') else {
                return Err(braced.to_string());
            };
            let inner = &braced[..end];
            rest = &braced[end + 1..];
            if let Some((name, word)) = inner.split_once(":-") {
                out.push_str(&value(name).filter(|v| !v.is_empty()).unwrap_or(word.into()));
            } else if let Some((name, word)) = inner.split_once(":+") {
                if value(name).is_some_and(|v| !v.is_empty()) {
                    out.push_str(word);
                }
            } else {
                out.push_str(&value(inner).ok_or_else(|| inner.to_string())?);
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            rest = &rest[end..];
            out.push_str(&value(name).ok_or_else(|| name.to_string())?);
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether the Dockerfile has a `FROM` instruction at all (an image, a stage or `scratch`).
pub(crate) fn has_from(dockerfile: &str) -> bool {
    instructions(dockerfile).iter().any(|(_, instruction)| {
        instruction
            .split_whitespace()
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("FROM"))
    })
}

/// Instructions with their first line, continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') && current.is_none() || line.is_empty() && current.is_none() {
            continue;
        }
        let (body, continued) = match line.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        let entry = current.get_or_insert_with(|| (index + 1, String::new()));
        if !line.starts_with('#') {
            entry.1.push_str(body);
            entry.1.push(' ');
        }
        if !continued {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

/// The byte offset just after the first `FROM` instruction (its continuation lines included).
pub(crate) fn after_first_from(bytes: &[u8]) -> Option<usize> {
    let mut offset = 0;
    let mut in_from = false;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let end = offset + line.len();
        let text = String::from_utf8_lossy(line);
        let trimmed = text.trim();
        if !in_from {
            let mut words = trimmed.split_whitespace();
            in_from = words
                .next()
                .is_some_and(|word| word.eq_ignore_ascii_case("FROM"));
        }
        if in_from && !trimmed.ends_with('\\') && !trimmed.starts_with('#') {
            return Some(end);
        }
        offset = end;
    }
    in_from.then_some(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 21: `FROM ${BASE}` with `ARG BASE` hid the parent.
    #[test]
    fn a_from_naming_a_global_arg_is_read_with_its_value() {
        let text = "ARG BASE=ceph/core:1\nARG TAG\nARG REG=\"quay.io\"\nFROM ${BASE}\n\
                    FROM $REG/x:${TAG:-latest} AS b\nFROM ${NONE}\nFROM ceph/y:${TAG}\n";
        let refs = references(text, None);
        assert_eq!(
            refs.from_images,
            ["ceph/core:1", "quay.io/x:latest"],
            "{refs:?}"
        );
        assert_eq!(
            refs.unresolved,
            [
                ("${NONE}".to_string(), 6, "NONE".to_string()),
                ("ceph/y:${TAG}".to_string(), 7, "TAG".to_string())
            ]
        );
        let args = BTreeMap::from([
            ("BASE".to_string(), "ceph/other:2".to_string()),
            ("TAG".to_string(), "3".to_string()),
        ]);
        let refs = references(text, Some(&args));
        assert_eq!(
            refs.from_images,
            ["ceph/other:2", "quay.io/x:3", "ceph/y:3"]
        );
        assert_eq!(refs.unresolved.len(), 1);
        // An ARG after the first FROM is the stage's own: FROM cannot use it.
        let refs = references("FROM a\nARG LATE=b\nFROM ${LATE}\n", None);
        assert_eq!(refs.from_images, ["a"]);
        assert_eq!(
            refs.unresolved,
            [("${LATE}".to_string(), 3, "LATE".to_string())]
        );
    }
}
