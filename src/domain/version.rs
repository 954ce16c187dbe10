//! Version: ordering tags by version (`v19.2.10` above `v19.2.9`, a release above its
//! pre-releases).

/// The highest of `tags` by version: `v19.2.10` above `v19.2.9`, a release above its
/// pre-releases (`v19.2.0` above `v19.2.0-rc1`), any version above a tag without one.
pub(crate) fn highest_version<'a>(tags: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    tags.filter(|tag| !tag.is_empty())
        .max_by(|a, b| version_key(a).cmp(&version_key(b)).then_with(|| a.cmp(b)))
}

/// How a tag sorts: whether it holds a version, the version's numbers, whether nothing follows
/// them, then the rest compared number by number.
fn version_key(tag: &str) -> (bool, Vec<u64>, bool, Vec<Chunk<'_>>) {
    let Some(start) = tag.find(|c: char| c.is_ascii_digit()) else {
        return (false, Vec::new(), false, Vec::new());
    };
    let version = &tag[start..];
    let end = version
        .char_indices()
        .scan(false, |after_dot, (at, c)| {
            let keep = c.is_ascii_digit() || (c == '.' && !*after_dot);
            *after_dot = c == '.';
            keep.then_some(at + c.len_utf8())
        })
        .last()
        .unwrap_or(0);
    let numbers_text = version[..end].trim_end_matches('.');
    let numbers = numbers_text
        .split('.')
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect();
    let rest = &version[numbers_text.len()..];
    (true, numbers, rest.is_empty(), chunks(rest))
}

/// A run of digits (compared as a number) or of other characters.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Chunk<'a> {
    Text(&'a str),
    Number(u64),
}

fn chunks(text: &str) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        let digit = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(end);
        out.push(if digit {
            Chunk::Number(chunk.parse().unwrap_or(u64::MAX))
        } else {
            Chunk::Text(chunk)
        });
        rest = tail;
    }
    out
}
