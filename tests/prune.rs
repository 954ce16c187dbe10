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
    case "$4" in *content-id*) echo "sha256:c-${STUB_CONTENT:-$5}"; exit 0;; esac
    printf 'aaa111111111111\t1000\tsquid,x86_64\tceph/core:old%s\n' "$STUB_MORE_TAGS"
    printf 'bbb222222222222\t2000\treef,x86_64\t\n'
    printf 'ccc333333333333\t500\tsquid,x86_64\tlocalhost/ceph/core:test-squid-centos-stream9-x86_64\n';;
  "ps --all") echo c0ffee;;
  "container inspect") [ "$3 $4 $5" = "--format {{.Image}} c0ffee" ] && echo "$STUB_USED";;
  "rmi $STUB_HELD") echo "$@" >> calls
    echo "Error: image used by 5e7: image is in use by a container: consider listing external containers and force-removing image"; exit 2;;
  *) echo "$@" >> calls; echo "Untagged: $2";;
esac
"#;

/// What `image build` records for an image it built: its last use, content id and tags.
fn built(id: &str, seconds: i64, tags: &[&str]) -> String {
    let mut text = format!("{seconds}\ncontent-id sha256:c-{id}\n");
    for tag in tags {
        text.push_str(&format!("tag {tag}\n"));
    }
    text
}

/// [`project`] with the three images recorded as built by matriochka (bbb used at 3600).
fn recorded() -> Test {
    project()
        .write(
            "staging/.uses/aaa111111111111",
            &built("aaa111111111111", 0, &["ceph/core:old"]),
        )
        .write(
            "staging/.uses/bbb222222222222",
            &built("bbb222222222222", 3600, &[]),
        )
        .write(
            "staging/.uses/ccc333333333333",
            &built(
                "ccc333333333333",
                0,
                &["ceph/core:test-squid-centos-stream9-x86_64"],
            ),
        )
}

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
    // bbb's recorded use (3600) is later than its creation (2000); the hours depend on now.
    let test = recorded()
        .env("PRUNE_KEEP", "0")
        .env("PRUNE_DRY", "1")
        .args(&["prune"]);
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
        "rmi ceph/core:old\nrmi bbb222222222222\nrmi localhost/ceph/core:test-squid-centos-stream9-x86_64\n",
        "aaa's record went with it: what the engine lists under its id is no longer matriochka's"
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

/// Issue 21: prune removed a user's own image built FROM a matriochka image (it inherits the
/// flavor label): only an image matriochka recorded building is matriochka's.
#[test]
fn prune_leaves_images_matriochka_did_not_build() {
    // Only aaa is recorded as built; bbb and ccc carry the label, as a child image would.
    let test = project()
        .write(
            "staging/.uses/aaa111111111111",
            &built("aaa111111111111", 0, &["ceph/core:old"]),
        )
        .write("staging/.uses/bbb222222222222", "3600\n")
        .env("PRUNE_KEEP", "0")
        .env("PRUNE_CURRENT", "1")
        .args(&["prune"])
        .stdout(
            "./podman rmi ceph/core:old\nUntagged: ceph/core:old\n\
             removed 1 of 1 matriochka images\n",
        );
    test.run();
    assert_eq!(test.read("calls"), "rmi ceph/core:old\n");
    // The record names another content id than the image's label: not the image it built.
    let test = test
        .write(
            "staging/.uses/aaa111111111111",
            &built("aaa111111111111", 0, &["ceph/core:old"]),
        )
        .env("STUB_CONTENT", "other")
        .args(&["prune"])
        .stdout(
            "kept aaa111111111 ceph/core:old: not the image matriochka built there (another content id)\n\
             removed 0 of 1 matriochka images\n",
        );
    test.run();
    assert_eq!(test.read("calls"), "rmi ceph/core:old\n");
}

/// Issue 21: prune untagged a user's own extra tag on a matriochka image.
#[test]
fn prune_keeps_an_image_a_user_tagged() {
    let test = recorded()
        .env("PRUNE_KEEP", "0")
        .env("PRUNE_CURRENT", "1")
        .env("STUB_MORE_TAGS", " mine/core:keep")
        .env("STUB_HELD", "bbb222222222222")
        .args(&["prune"])
        .stdout(
            "./podman rmi bbb222222222222\n\
             kept bbb222222222 <none>: a container holds it (a leftover build container?)\n\
             kept aaa111111111 ceph/core:old mine/core:keep: tagged `mine/core:keep` outside matriochka\n\
             ./podman rmi localhost/ceph/core:test-squid-centos-stream9-x86_64\n\
             Untagged: localhost/ceph/core:test-squid-centos-stream9-x86_64\n\
             removed 1 of 3 matriochka images\n",
        );
    test.run();
    assert_eq!(
        test.read("calls"),
        "rmi bbb222222222222\nrmi localhost/ceph/core:test-squid-centos-stream9-x86_64\n"
    );
}

/// Issue 21: `PRUNE_HOURS=18446744073709551615` wrapped to a negative age and pruned images used
/// a minute ago.
#[test]
fn prune_hours_out_of_range_are_refused() {
    let test = recorded()
        .env("PRUNE_KEEP", "0")
        .env("PRUNE_HOURS", "18446744073709551615")
        .args(&["prune"])
        .stderr(
            "error: PRUNE_HOURS `18446744073709551615` is out of range: set it to at most 2562047788015215\n",
        )
        .status(1);
    test.run();
    assert!(!test.path().join("calls").exists());
}
