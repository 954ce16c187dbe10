//! `matriochka prune` with a stub podman: what it lists and removes, the uses it reads and
//! records, its settings' errors. Real images: tests/e2e/images.sh.

use crate::common::Test;

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";

/// A podman stand-in: `images` lists ids `aaa…`, `bbb…`, `ccc…`; `image inspect` describes them
/// (`ccc` is the current flavor's daemon-base, `bbb` has no tag); `ps` lists a container
/// (`c0ffee`), and `container inspect` says it was created from `$STUB_USED`; other calls are
/// logged to `calls`.
const STUB_PODMAN: &str = r#"#!/bin/sh
case "$1 $2" in
  "images --quiet") printf 'sha256:aaa111111111111\nsha256:bbb222222222222\nsha256:ccc333333333333\n';;
  "image inspect")
    if [ "$3" = --format ] && [ "$4" = '{{.Id}}' ]; then echo "ddd444444444444"; exit 0; fi
    printf 'aaa111111111111\t1000\tsquid,x86_64\tceph/core:old\n'
    printf 'bbb222222222222\t2000\treef,x86_64\t\n'
    printf 'ccc333333333333\t500\tsquid,x86_64\tlocalhost/ceph/core:test-squid-centos-stream9-x86_64\n';;
  "ps --all") echo c0ffee;;
  "container inspect") [ "$3 $4 $5" = "--format {{.Image}} c0ffee" ] && echo "$STUB_USED";;
  *) echo "$@" >> calls; echo "Untagged: $2";;
esac
"#;

fn project() -> Test {
    Test::with_config()
        .write("templates/rel/ALL/centos/9/core/Dockerfile", "FROM x\n")
        .write("templates/rel/squid/centos/.keep", "")
        .write_bytes("podman", STUB_PODMAN.as_bytes(), 0o755)
        .env("CONTAINER_ENGINE", "./podman")
        .env("RELEASE", "test")
        .env("FLAVORS", SQUID)
}

#[test]
fn prune_lists_then_removes_old_images_but_the_current_ones() {
    let test = project()
        .env("PRUNE_KEEP", "0")
        .env("PRUNE_DRY", "1")
        .args(&["prune"]);
    // bbb's recorded use (3600) is later than its creation (2000); the hours depend on now.
    let test = test.write("staging/.uses/bbb222222222222", "3600\n");
    let output = test.command().output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let hours = |since: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        (now - since) / 3600
    };
    assert_eq!(
        stdout,
        format!(
            "would remove bbb222222222 <none> (flavor reef,x86_64, last used {}h ago)\n\
             would remove aaa111111111 ceph/core:old (flavor squid,x86_64, last used {}h ago)\n\
             would remove 2 of 3 matriochka images\n",
            hours(3600),
            hours(1000)
        )
    );
    assert!(
        !test.path().join("calls").exists(),
        "a dry run removes nothing"
    );
    let test = test
        .env("PRUNE_DRY", "0")
        .env("STUB_USED", "bbb222222222222")
        .args(&["prune"])
        .stdout(
            "kept bbb222222222 <none>: a container uses it\n\
             ./podman rmi ceph/core:old\nUntagged: ceph/core:old\n\
             removed 1 of 3 matriochka images\n",
        );
    test.run();
    assert_eq!(test.read("calls"), "rmi ceph/core:old\n");
    let test = test
        .env("PRUNE_CURRENT", "1")
        .env("STUB_USED", "")
        .args(&["prune"])
        .any_stdout();
    test.run();
    assert_eq!(
        test.read("calls"),
        "rmi ceph/core:old\nrmi bbb222222222222\nrmi ceph/core:old\nrmi localhost/ceph/core:test-squid-centos-stream9-x86_64\n"
    );
}

#[test]
fn prune_record_writes_the_use_of_the_current_images() {
    let test = project().args(&["prune", "--record"]);
    test.run();
    let seconds: u64 = test
        .read("staging/.uses/ddd444444444444")
        .trim()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now - seconds < 60);
}

#[test]
fn prune_settings_and_engine_errors() {
    project()
        .env("PRUNE_HOURS", "two days")
        .args(&["prune"])
        .stderr("error: PRUNE_HOURS `two days` is not a number: set it to 0 or more\n")
        .status(1)
        .run();
    project()
        .env("CONTAINER_ENGINE", "")
        .args(&["prune"])
        .stderr("error: no container engine: set CONTAINER_ENGINE to docker or podman\n")
        .status(1)
        .run();
    project()
        .env("CONTAINER_ENGINE", "")
        .args(&["prune", "--record"])
        .stderr("warning: uses not recorded: no container engine: set CONTAINER_ENGINE to docker or podman\n")
        .run();
}
