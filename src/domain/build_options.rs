//! Build options: which words of `BUILD_ARGS` change what an image is made of. The content id
//! takes those (and `SQUASH`), so that another `--build-arg` rebuilds exactly the images it
//! affects, while options about how the engine runs (`--isolation chroot`, `--jobs 4`) never do.

/// Options (with their value, as one word `--x=v` or two `--x v`) that change how a build runs,
/// not what it produces.
const RUN_ONLY: &[&str] = &[
    "--isolation",
    "--jobs",
    "--layers",
    "--log-level",
    "--quiet",
    "-q",
    "--tls-verify",
    "--cgroup-manager",
    "--runtime",
    "--network",
    "--pull",
    "--pull-always",
    "--pull-never",
    "--force-rm",
    "--rm",
    "--no-cache",
    "--memory",
    "--memory-swap",
    "--cpu-shares",
    "--cpu-period",
    "--cpu-quota",
    "--cpuset-cpus",
    "--ulimit",
    "--progress",
    "--cache-from",
];

/// Options among [`RUN_ONLY`] that take no value.
const FLAGS: &[&str] = &[
    "--quiet",
    "-q",
    "--pull-always",
    "--pull-never",
    "--force-rm",
    "--rm",
    "--no-cache",
];

/// The words of `build_args` that change the image, in order: everything but [`RUN_ONLY`]
/// options and their values.
pub(crate) fn content_changing(build_args: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut words = build_args.iter();
    while let Some(word) = words.next() {
        let (name, inline_value) = match word.split_once('=') {
            Some((name, _)) if name.starts_with('-') => (name, true),
            _ => (word.as_str(), false),
        };
        if RUN_ONLY.contains(&name) {
            if !inline_value && !FLAGS.contains(&name) {
                words.next();
            }
            continue;
        }
        kept.push(word.clone());
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(words: &[&str]) -> Vec<String> {
        content_changing(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn run_options_are_left_out_with_their_values() {
        assert_eq!(
            kept(&["--isolation", "chroot", "--jobs=4", "--no-cache"]),
            Vec::<String>::new()
        );
        assert_eq!(
            kept(&[
                "--isolation",
                "chroot",
                "--build-arg",
                "X=1",
                "--label=a=b",
                "--squash"
            ]),
            ["--build-arg", "X=1", "--label=a=b", "--squash"]
        );
        assert_eq!(
            kept(&["--pull-always", "--timestamp", "0"]),
            ["--timestamp", "0"]
        );
    }
}
