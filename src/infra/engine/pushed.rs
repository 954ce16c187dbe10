//! The digest a registry gave the manifest of a pushed image: the file podman writes with
//! `push --digestfile FILE`, or docker's `<tag>: digest: sha256:… size: N` output line.

/// Whether `text` is `sha256:` and 64 lowercase hex digits.
fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The digest in podman's `--digestfile`, or `None` when it holds no digest.
pub(crate) fn from_digestfile(text: &str) -> Option<String> {
    Some(text.trim())
        .filter(|text| is_digest(text))
        .map(str::to_string)
}

/// The digest of docker's last `digest: sha256:… size: N` line in the output of a push, or
/// `None` when it printed none.
pub(crate) fn from_docker_output(text: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let (_, rest) = line.split_once("digest: ")?;
        let (digest, size) = rest.split_once(' ')?;
        (size.starts_with("size:") && is_digest(digest)).then(|| digest.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

    #[test]
    fn podman_digestfile_holds_the_digest_alone() {
        let digest = format!("sha256:{HEX}");
        assert_eq!(from_digestfile(&digest), Some(digest.clone()));
        assert_eq!(from_digestfile(&format!("{digest}\n")), Some(digest));
        assert_eq!(from_digestfile(""), None);
        assert_eq!(from_digestfile("sha256:0123abcd"), None);
        assert_eq!(
            from_digestfile(&format!("sha256:{}", HEX.to_uppercase())),
            None
        );
        assert_eq!(from_digestfile(&format!("sha512:{HEX}")), None);
    }

    #[test]
    fn docker_prints_the_digest_before_the_size() {
        let output = format!(
            "The push refers to repository [quay.io/ceph/daemon]\n\
             5f70bf18a086: Pushed\n\
             main-squid: digest: sha256:{HEX} size: 1570\n"
        );
        assert_eq!(from_docker_output(&output), Some(format!("sha256:{HEX}")));
        // A retried push: the last line is the one that succeeded.
        let other = HEX.replace('4', "5");
        let retried = format!("{output}x: digest: sha256:{other} size: 7\n");
        assert_eq!(
            from_docker_output(&retried),
            Some(format!("sha256:{other}"))
        );
        assert_eq!(from_docker_output("stub push\n"), None);
        assert_eq!(
            from_docker_output(&format!("x: digest: sha256:{HEX}\n")),
            None,
            "no size"
        );
        assert_eq!(from_docker_output("x: digest: sha256:0123 size: 1\n"), None);
    }
}
