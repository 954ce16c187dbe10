//! "Did you mean …?" for near misses.

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| {
            *distance > 0 && *distance <= (word.len().max(candidate.len()) / 3).max(1)
        })
        .min()
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses() {
        assert_eq!(
            closest("sqiud", ["reef", "squid", "tentacle"]),
            Some("squid")
        );
        assert_eq!(closest("centso", ["centos", "ubuntu"]), Some("centos"));
        assert_eq!(closest("fedora", ["centos", "ubuntu"]), None);
        assert_eq!(closest("squid", ["squid"]), None);
    }
}
