//! Manifest lists, slices of a run and foreign arches: `manifest` against fake `skopeo` and
//! `podman` programs (the real ones run in tests/e2e/release.sh), `show flavors --arch/--shard`,
//! `check-arches` and the configuration keys.

use sha2::{Digest, Sha256};

use crate::common::Test;

const CONFIG: &str = r#"
[layout]
templates = "templates"
layers = ["src"]
images = ["core", "app"]
staging_dir = "staging/{CEPH_VERSION}{CEPH_POINT_RELEASE}-{DISTRO}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{HOST_ARCH}"
manifest_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}"
rolling_tags = ["{IMAGE}:v{CEPH_MAJOR}-{DISTRO}"]

[flavors]
buildable = [
  "squid,x86_64,centos,9,_,centos,9",
  "squid,aarch64,centos,9,_,centos,9",
  "reef,x86_64,centos,9,_,centos,9",
  "reef,aarch64,centos,9,_,centos,9",
  "reef,x86_64,ubuntu,22.04,_,ubuntu,22.04",
]
"#;

pub(crate) const SQUID_AMD: &str = "squid,x86_64,centos,9,_,centos,9";
pub(crate) const SQUID_ARM: &str = "squid,aarch64,centos,9,_,centos,9";
pub(crate) const NO_ROLLING: &str = "note: `r.io/ceph/core:test-squid-centos` gets no rolling tags: its flavors pin no (or different) point releases\n";

/// A registry holding `core` and `app` of squid for both arches (the arm64 ones unless NO_ARM
/// is set), nothing else; `podman` only logs its arguments.
const SKOPEO: &str = r#"#!/bin/sh
amd='{"layers":["amd"]}'
arm='{"layers":["arm"]}'
d() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
for a; do last=$a; done
# The content id this checkout's plan gives the image named in the reference, for an arch.
cid() { image=${last#docker://r.io/ceph/}; cat "$CIDS/${image%%@*}-$1"; }
case "$2 $last" in
  "--raw docker://r.io/ceph/"*:test-squid-centos-x86_64) printf %s "$amd" ;;
  "--raw docker://r.io/ceph/"*:test-squid-centos-aarch64)
    if [ -n "$NO_ARM" ]; then echo 'manifest unknown: manifest unknown' >&2; exit 1; fi
    printf %s "$arm" ;;
  "--config docker://r.io/ceph/"*@sha256:$(d "$amd"))
    printf '{"os":"linux","architecture":"amd64","config":{"Labels":{"io.matriochka.content-id":"%s"}}}' "$(cid amd64)" ;;
  "--config docker://r.io/ceph/"*@sha256:$(d "$arm"))
    printf '{"os":"linux","architecture":"arm64","variant":"v8","config":{"Labels":{"io.matriochka.content-id":"%s"}}}' "$(cid arm64)" ;;
  *) echo 'manifest unknown: manifest unknown' >&2; exit 1 ;;
esac
"#;

const PODMAN: &str = "#!/bin/sh\necho \"podman $*\" >> \"$PODMAN_LOG\"\n";

pub(crate) fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn project() -> Test {
    let bin = "bin";
    let test = Test::new()
        .write("flavors/matriochka.toml", CONFIG)
        .write_bytes(&format!("{bin}/skopeo"), SKOPEO.as_bytes(), 0o755)
        .write_bytes(&format!("{bin}/podman"), PODMAN.as_bytes(), 0o755);
    let path = format!(
        "{}:{}",
        test.path().join(bin).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = test.path().join("podman.log").display().to_string();
    let test = test
        .write("templates/src/core/Dockerfile", "FROM busybox\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .env("TAG_REGISTRY", "r.io/ceph");
    // The registry's images carry the content ids this checkout's plan gives them.
    let staged = test
        .command()
        .args(["stage", SQUID_AMD, SQUID_ARM])
        .output()
        .unwrap();
    assert!(staged.status.success(), "{staged:?}");
    let cids = test.path().join("cids");
    std::fs::create_dir(&cids).unwrap();
    for (arch, go) in [("x86_64", "amd64"), ("aarch64", "arm64")] {
        for image in ["core", "app"] {
            let plan = test.read(&format!(
                "staging/squid-centos-{arch}/.matriochka/{image}.json"
            ));
            let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
            let id = plan["content_id"].as_str().unwrap();
            std::fs::write(cids.join(format!("{image}-{go}")), id).unwrap();
        }
    }
    let cids = cids.display().to_string();
    test.env("CIDS", &cids)
        .env("PATH", &path)
        .env("PODMAN_LOG", &log)
        .env("TAG_REGISTRY", "r.io/ceph")
        .env("CONTAINER_ENGINE", "podman")
}

/// The local list `manifest` builds for a manifest tag.
fn list_of(tag: &str) -> String {
    format!("localhost/matriochka-list/{}", &sha256(tag)[..12])
}

/// What `manifest` prints joining both arches of `core` and `app` of squid 19.2.1: `engine` as it
/// shows the engine, `push_args` the words its pushes take after `--all`.
fn joins(engine: &str, push_args: &str) -> String {
    let amd = sha256(r#"{"layers":["amd"]}"#);
    let arm = sha256(r#"{"layers":["arm"]}"#);
    let mut expected = String::new();
    for image in ["core", "app"] {
        let list = list_of(&format!("r.io/ceph/{image}:test-squid-centos"));
        expected.push_str(&format!(
            "+ {engine} manifest create {list}\n\
             + {engine} manifest add --annotation io.matriochka.ceph-version=19.2.1 --os linux --arch amd64 {list} docker://r.io/ceph/{image}@sha256:{amd}\n\
             + {engine} manifest add --annotation io.matriochka.ceph-version=19.2.1 --os linux --arch arm64 --variant v8 {list} docker://r.io/ceph/{image}@sha256:{arm}\n\
             + {engine} manifest push --all{push_args} {list} docker://r.io/ceph/{image}:test-squid-centos\n\
             + {engine} manifest push --all{push_args} {list} docker://r.io/ceph/{image}:v19-centos\n\
             + {engine} manifest rm {list}\n\
             pushed r.io/ceph/{image}:test-squid-centos\n\
             pushed r.io/ceph/{image}:v19-centos\n"
        ));
    }
    expected
}

#[test]
fn manifest_joins_both_arches_by_digest_with_platforms_from_the_registry() {
    let test = project();
    let core = list_of("r.io/ceph/core:test-squid-centos");
    let expected = joins("podman", " --retry 0");
    let test = test
        .env("PUSH_ARGS", "--retry 0")
        .args(&[
            "manifest",
            "squid-19.2.1,x86_64,centos,9,_,centos,9",
            "squid-19.2.1,aarch64,centos,9,_,centos,9",
        ])
        .stdout(&expected)
        .stderr("");
    test.run();
    let log = test.read("podman.log");
    assert_eq!(log.lines().count(), 14, "{log}");
    assert!(
        log.starts_with(&format!(
            "podman manifest rm {core}\npodman manifest create {core}\n"
        )),
        "{log}"
    );
}

#[test]
fn manifest_refuses_a_group_with_a_missing_arch_and_pushes_nothing() {
    let test = project()
        .env("NO_ARM", "1")
        .env("FLAVORS", &format!("{SQUID_AMD} {SQUID_ARM}"))
        .args(&["manifest"])
        .stdout(
            "
            refused r.io/ceph/core:test-squid-centos: arch `aarch64` is missing (`r.io/ceph/core:test-squid-centos-aarch64` is not in the registry)
            refused r.io/ceph/app:test-squid-centos: arch `aarch64` is missing (`r.io/ceph/app:test-squid-centos-aarch64` is not in the registry)
            ",
        )
        .stderr(&format!("{NO_ROLLING}error: 2 of 2 manifest lists were refused or failed: nothing was pushed for them\n"))
        .status(1);
    test.run();
    assert!(!test.path().join("podman.log").exists(), "podman ran");
}

#[test]
fn manifest_notes_that_unpinned_flavors_get_no_rolling_tags() {
    let test = project();
    let out = test
        .env("FORCE", "1")
        .args(&["manifest", SQUID_AMD])
        .any_stdout()
        .stderr(NO_ROLLING)
        .run();
    assert!(
        out.stdout
            .ends_with("pushed r.io/ceph/app:test-squid-centos\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn manifest_needs_a_manifest_tag() {
    Test::new()
        .write(
            "flavors/matriochka.toml",
            &CONFIG
                .replace("manifest_tag = \"{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}\"\n", "")
                .replace("rolling_tags = [\"{IMAGE}:v{CEPH_MAJOR}-{DISTRO}\"]\n", ""),
        )
        .env("CONTAINER_ENGINE", "podman")
        .args(&["manifest", SQUID_AMD])
        .stdout("")
        .stderr("error: `layout.manifest_tag` is not set in `flavors/matriochka.toml`: add the tag of the manifest lists, e.g. `manifest_tag = \"{IMAGE}:{RELEASE}-{CEPH_VERSION}\"`\n")
        .status(1)
        .run();
}

#[test]
fn manifest_tag_naming_the_arch_is_an_error_with_its_line() {
    Test::new()
        .write(
            "flavors/matriochka.toml",
            &CONFIG.replace("{RELEASE}-{CEPH_VERSION}-{DISTRO}\"", "{RELEASE}-{GO_ARCH}\""),
        )
        .args(&["show", "flavors"])
        .stdout("")
        .stderr("error: failed to load `flavors/matriochka.toml`: line 7: `layout.manifest_tag` pattern `{IMAGE}:{RELEASE}-{GO_ARCH}` names `{GO_ARCH}`: a manifest list holds every arch, so its tag must not name one\n")
        .status(1)
        .run();
}

#[test]
fn manifest_refuses_two_flavors_of_one_arch_in_a_group() {
    project()
        .args(&["manifest", SQUID_AMD, "squid-19.2.1,x86_64,centos,9,_,centos,9"])
        .stdout("")
        .stderr("error: flavors `squid,x86_64,centos,9,_,centos,9` and `squid-19.2.1,x86_64,centos,9,_,centos,9` have the same manifest tag `r.io/ceph/core:test-squid-centos` and the same arch `x86_64`: add the differing field to `layout.manifest_tag`\n")
        .status(1)
        .run();
}

#[test]
fn show_flavors_of_one_arch() {
    let test = Test::new()
        .write("flavors/matriochka.toml", CONFIG)
        .args(&["show", "flavors", "--arch", "aarch64"])
        .stdout(
            "
            squid,aarch64,centos,9,_,centos,9
            reef,aarch64,centos,9,_,centos,9
            ",
        )
        .stderr("");
    test.run();
    let test = test
        .args(&["show", "flavors", "--arch", "arm64,x86_64"])
        .stdout(
            "
            squid,x86_64,centos,9,_,centos,9
            squid,aarch64,centos,9,_,centos,9
            reef,x86_64,centos,9,_,centos,9
            reef,aarch64,centos,9,_,centos,9
            reef,x86_64,ubuntu,22.04,_,ubuntu,22.04
            ",
        )
        .stderr("");
    test.run();
    test.args(&["show", "flavors", "--arch", "s390x"])
        .stdout("")
        .stderr("error: no buildable flavor for arch `s390x`; buildable arches: x86_64, aarch64\n")
        .status(1)
        .run();
}

#[test]
fn show_flavors_shards_split_the_list_the_same_way_every_time() {
    let test = Test::new().write("flavors/matriochka.toml", CONFIG);
    let test = test
        .args(&["show", "flavors", "--shard", "1/2"])
        .stdout(
            "
            squid,x86_64,centos,9,_,centos,9
            reef,x86_64,centos,9,_,centos,9
            reef,x86_64,ubuntu,22.04,_,ubuntu,22.04
            ",
        )
        .stderr("");
    test.run();
    let test = test
        .args(&["show", "flavors", "--arch", "x86_64", "--shard", "2/2"])
        .stdout("reef,x86_64,centos,9,_,centos,9\n")
        .stderr("");
    test.run();
    test.args(&["show", "flavors", "--shard", "3/2"])
        .stdout("")
        .stderr(
            "error: invalid value '3/2' for '--shard <I/N>': invalid shard `3/2`: expected `I/N` with 1 <= I <= N, e.g. `1/4`\n\nFor more information, try '--help'.\n",
        )
        .status(2)
        .run();
}

#[test]
fn check_arches_passes_native_flavors_silently() {
    let host = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => panic!("no test flavor for host arch {other}"),
    };
    Test::new()
        .write("flavors/matriochka.toml", CONFIG)
        .args(&["check-arches", &format!("squid,{host},centos,9,_,centos,9")])
        .stdout("")
        .stderr("")
        .run();
}

#[test]
fn check_arches_names_the_flavor_it_cannot_emulate() {
    // A mounted binfmt_misc (it has `register`) with no handler for s390x.
    let flavor = "squid,s390x,centos,9,_,centos,9";
    let test = Test::new();
    let binfmt = test.path().join("binfmt");
    let out = test
        .write("binfmt/register", "")
        .env("MATRIOCHKA_BINFMT_DIR", binfmt.to_str().unwrap())
        .write("flavors/matriochka.toml", CONFIG)
        .args(&["check-arches", flavor])
        .stdout("")
        .any_stderr()
        .status(1)
        .run();
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "error: flavor `{flavor}`: this `{}` host cannot run `s390x` images: ",
            std::env::consts::ARCH
        )) && first.ends_with("`apt-get install qemu-user-static`"),
        "{}",
        out.stderr
    );
    assert!(out
        .stderr
        .ends_with("error: 1 of 1 flavors cannot be built on this host\n"));
}

#[test]
fn a_group_of_different_point_releases_gets_no_rolling_tags() {
    let out = project()
        .args(&[
            "manifest",
            "squid-19.2.1,x86_64,centos,9,_,centos,9",
            "squid-19.2.2,aarch64,centos,9,_,centos,9",
        ])
        .any_stdout()
        .stderr(NO_ROLLING)
        .run();
    assert_eq!(
        out.stdout
            .lines()
            .filter(|line| !line.starts_with("+ "))
            .collect::<Vec<_>>(),
        [
            "pushed r.io/ceph/core:test-squid-centos",
            "pushed r.io/ceph/app:test-squid-centos"
        ]
    );
}

/// `CONTAINER_ENGINE=/path/to/podman --option` works for `image build`; `manifest` refused it
/// with "unknown container engine" (two engine types, one of them knowing only bare names).
#[test]
fn manifest_takes_an_engine_given_by_path_with_options() {
    let test = project();
    let podman = test.path().join("bin/podman").display().to_string();
    let engine = format!("{podman} --root /t/store");
    let core = list_of("r.io/ceph/core:test-squid-centos");
    let expected = joins(&engine, "");
    let test = test
        .env("CONTAINER_ENGINE", &engine)
        .args(&[
            "manifest",
            "squid-19.2.1,x86_64,centos,9,_,centos,9",
            "squid-19.2.1,aarch64,centos,9,_,centos,9",
        ])
        .stdout(&expected);
    test.run();
    let log = test.read("podman.log");
    assert_eq!(log.lines().count(), 14, "{log}");
    assert!(
        log.starts_with(&format!(
            "podman --root /t/store manifest rm {core}\npodman --root /t/store manifest create {core}\n"
        )),
        "{log}"
    );
}

/// The configuration the project shipped with: `v{CEPH_MAJOR}` for every distro of a release.
fn with_shared_rolling_tag() -> Test {
    project().write(
        "flavors/matriochka.toml",
        &CONFIG.replace("v{CEPH_MAJOR}-{DISTRO}", "v{CEPH_MAJOR}"),
    )
}

const SHARED_ROLLING: &str = "error: manifest groups `r.io/ceph/core:test-reef-centos` and `r.io/ceph/core:test-reef-ubuntu` both get tag `r.io/ceph/core:v{CEPH_MAJOR of reef}` (`layout.rolling_tags` `{IMAGE}:v{CEPH_MAJOR}`): a tag names one list; name in the pattern what separates the groups (e.g. `{DISTRO}-{BASEOS_TAG}`)\n";

#[test]
fn two_groups_with_one_rolling_tag_fail_check_stage_and_manifest() {
    for args in [
        &["check"][..],
        &["stage", SQUID_AMD],
        &["manifest", SQUID_AMD],
    ] {
        let test = with_shared_rolling_tag()
            .args(args)
            .stdout("")
            .stderr(SHARED_ROLLING)
            .status(1);
        std::fs::remove_dir_all(test.path().join("staging")).unwrap();
        test.run();
        assert!(!test.path().join("staging").exists(), "{args:?}");
        assert!(!test.path().join("podman.log").exists(), "{args:?}");
    }
}

#[test]
fn two_groups_with_one_extra_tag_fail_at_load() {
    project()
        .write(
            "flavors/matriochka.toml",
            &CONFIG.replace("rolling_tags =", "extra_tags = [\"{IMAGE}:candidate\"]\nrolling_tags ="),
        )
        .args(&["check"])
        .stdout("")
        .stderr("error: manifest groups `r.io/ceph/core:test-squid-centos` and `r.io/ceph/core:test-reef-centos` both get tag `r.io/ceph/core:candidate` (`layout.extra_tags` `{IMAGE}:candidate`): a tag names one list; name in the pattern what separates the groups (e.g. `{DISTRO}-{BASEOS_TAG}`)\n")
        .status(1)
        .run();
}

#[test]
fn a_run_of_fewer_arches_than_buildable_is_refused_unless_forced() {
    let test = project()
        .args(&["manifest", SQUID_AMD])
        .stdout(
            "
            refused r.io/ceph/core:test-squid-centos: arch `aarch64` of `flavors.buildable` is not in this run (it has `x86_64`): add its flavors, or set FORCE=1 to join these alone
            refused r.io/ceph/app:test-squid-centos: arch `aarch64` of `flavors.buildable` is not in this run (it has `x86_64`): add its flavors, or set FORCE=1 to join these alone
            ",
        )
        .stderr(&format!("{NO_ROLLING}error: 2 of 2 manifest lists were refused or failed: nothing was pushed for them\n"))
        .status(1);
    test.run();
    assert!(!test.path().join("podman.log").exists(), "podman ran");
    let out = test
        .env("ARCHES", "x86_64")
        .any_stdout()
        .stderr(NO_ROLLING)
        .status(0)
        .run();
    assert!(
        out.stdout
            .ends_with("pushed r.io/ceph/app:test-squid-centos\n"),
        "{}",
        out.stdout
    );
}
