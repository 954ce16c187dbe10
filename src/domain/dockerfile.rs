//! Dockerfile: the one reader of Dockerfile instructions (continuation lines, comments, `FROM`
//! and `COPY --from=`), shared by the parent graph, the header/footer and `check`.

use std::collections::BTreeSet;

/// The file of each context whose instructions are read.
pub(crate) const DOCKERFILE: &str = "Dockerfile";

/// What a Dockerfile refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct References {
    /// Images named by `FROM` and `COPY --from=`, with the line, stage names left out.
    pub(crate) images: Vec<(String, usize)>,
    /// Whether some `FROM` names an image rather than a stage or `scratch`.
    pub(crate) from_images: Vec<String>,
}

/// Reads `FROM` and `COPY --from=` out of a Dockerfile.
pub(crate) fn references(dockerfile: &str) -> References {
    let mut refs = References::default();
    let mut stages = BTreeSet::new();
    for (line, instruction) in instructions(dockerfile) {
        let mut words = instruction.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let args: Vec<&str> = words.collect();
        if keyword.eq_ignore_ascii_case("FROM") {
            let mut positional = args.iter().filter(|arg| !arg.starts_with("--"));
            let Some(image) = positional.next() else {
                continue;
            };
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
