//! Hints: what a failed engine run's output says the user can fix, recognised in one place and
//! said once, on the run's `FAILED` line.

use std::path::Path;

/// What podman prints for each `RUN` when its default isolation cannot work on this host (a
/// cgroups v1/v2 hybrid, as on some CI machines).
const NEEDS_CHROOT: &str = "cgroups in hybrid mode";

/// The hint for a failed build whose log is `log`: podman needing `--isolation chroot`;
/// `None` when the log shows nothing we know.
pub(crate) fn failed_build(log: &Path) -> Option<&'static str> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.contains(NEEDS_CHROOT).then_some(
        ": podman cannot isolate RUN steps here (cgroups in hybrid mode): set BUILD_ARGS=\"--isolation chroot\"",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hybrid_cgroups_message_asks_for_chroot_isolation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("core.log");
        std::fs::write(
            &log,
            "STEP 2/3: RUN true\nerror running container: cgroups in hybrid mode are not supported\nError: building at STEP \"RUN true\": exit status 1\n",
        )
        .unwrap();
        assert_eq!(
            failed_build(&log),
            Some(": podman cannot isolate RUN steps here (cgroups in hybrid mode): set BUILD_ARGS=\"--isolation chroot\"")
        );
        std::fs::write(
            &log,
            "Error: building at STEP \"RUN false\": exit status 1\n",
        )
        .unwrap();
        assert_eq!(failed_build(&log), None);
        assert_eq!(failed_build(&dir.path().join("none")), None);
    }
}
