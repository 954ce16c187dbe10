//! The registry as a shared cache: content tags pushed beside each image, `REUSE=1` builds that
//! pull what the registry holds, and `layout.extra_tags`, which retag and never rebuild. A stub
//! engine keeps its store and the registry in two files (`<tag> <content id>` lines), a stub
//! skopeo reads the registry file.

use std::process::Output;

use sha2::Digest as _;

use crate::common::{bin, path_with, repo_make, Test, CONFIG};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ID: &str = "squid-centos-9-x86_64";
const CORE_TAG: &str = "ceph/core:test-squid-centos-stream9-x86_64";
const APP_TAG: &str = "ceph/app:test-squid-centos-stream9-x86_64";

/// An engine whose store is `store` and whose registry is `registry`; every call is a line of
/// `engine.log`.
const STUB_ENGINE: &str = r#"#!/bin/sh
d="$STUB_DIR"; reg="$d/registry"
touch "$d/store" "$reg"
printf '%s\n' "$*" >> "$d/engine.log"
get() { awk -v t="$2" '$1 == t { print $2; f = 1 } END { exit !f }' "$1"; }
put() { { grep -v "^$2 " "$1"; echo "$2 $3"; } > "$1.new"; mv "$1.new" "$1"; }
for last; do :; done
case "$1" in
  build)
    for a; do case "$a" in io.matriochka.content-id=*) cid=${a#*=};; esac; done
    put "$d/store" "$5" "$cid"; echo "stub build"; exit "${STUB_BUILD_STATUS:-0}";;
  tag) cid=$(get "$d/store" "$2") || exit 1; put "$d/store" "$3" "$cid";;
  push) cid=$(get "$d/store" "$last") || exit 1; put "$reg" "$last" "$cid"; echo "stub push";;
  pull)
    [ -n "$STUB_PULL_STATUS" ] && { echo "stub pull failed"; exit "$STUB_PULL_STATUS"; }
    cid=$(get "$reg" "$last") || exit 1; put "$d/store" "$last" "$cid"; echo "stub pull";;
  rmi) grep -v "^$2 " "$d/store" > "$d/store.new"; mv "$d/store.new" "$d/store"; echo "Untagged: $2";;
  image)
    cid=$(get "$d/store" "$last") || exit 1
    case "$4" in
      *io.matriochka.flavor*) echo "$STUB_FLAVOR";;
      *RootFS*) echo "layer ";;
      *Architecture*) echo "$cid linux/amd64";;
      *) echo "$cid";;
    esac;;
  images) awk '{ print $1 }' "$d/store";;
esac
"#;

/// `skopeo inspect --raw … docker://REF`: found when REF is in the registry file.
const STUB_SKOPEO: &str = r#"#!/bin/sh
printf '%s\n' "$*" >> "$STUB_DIR/skopeo.log"
for ref; do :; done
ref=${ref#docker://}
if [ -n "$SKOPEO_DOWN" ]; then
  echo 'time="x" level=fatal msg="pinging container registry r: connect: connection refused"' >&2
  exit 1
fi
if awk -v t="$ref" '$1 == t { f = 1 } END { exit !f }' "$STUB_DIR/registry" 2>/dev/null; then
  echo '{}'
else
  echo 'time="x" level=fatal msg="reading manifest: manifest unknown"' >&2
  exit 1
fi
"#;

fn project() -> Test {
    Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nCOPY release.txt /\n",
        )
        .write("templates/src/core/release.txt", "core\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\nCOPY __APP_FRAGMENT__ /\n",
        )
        .write("templates/src/app/__APP_FRAGMENT__", "app.txt")
        .write("templates/src/app/app.txt", "app\n")
        .write_bytes("engine", STUB_ENGINE.as_bytes(), 0o755)
        .write_bytes("bin/skopeo", STUB_SKOPEO.as_bytes(), 0o755)
}

fn with_extra_tags(test: Test, tags: &str) -> Test {
    let config = CONFIG.replace("env = [", &format!("extra_tags = {tags}\nenv = ["));
    test.write("flavors/matriochka.toml", &config)
}

/// `make -f <repo>/Makefile ARGS FLAVORS=<squid>` in the project, with the stub engine and skopeo.
fn make(test: &Test, args: &[&str]) -> Output {
    repo_make(test)
        .env("PATH", path_with(&test.path().join("bin")))
        .env("HOST_ARCH", "x86_64")
        .env("STUB_DIR", ".")
        .env("STUB_FLAVOR", SQUID)
        .env("CONTAINER_ENGINE", "./engine")
        .arg(format!("FLAVORS={SQUID}"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs make and checks its stdout (after the `stage` lines), stderr and success.
#[track_caller]
fn make_ok(test: &Test, args: &[&str], stdout: &str, stderr: &str) {
    let output = make(test, args);
    let text = String::from_utf8_lossy(&output.stdout);
    // The build report's summary ends the run; tests/report.rs pins it.
    let text = text
        .split("report: staging/report.json\n")
        .next()
        .unwrap_or_default();
    let after_stage: String = text
        .lines()
        .filter(|line| {
            !line.starts_with(&bin()) && !line.starts_with("staged ") && !line.starts_with("make ")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    crate::common::assert_text(&after_stage, stdout, "stdout");
    crate::common::assert_text(&String::from_utf8_lossy(&output.stderr), stderr, "stderr");
    assert_eq!(output.status.code(), Some(0));
}

/// The engine calls whose first word is `verb`, as lines.
fn calls(test: &Test, verb: &str) -> Vec<String> {
    let log = std::fs::read_to_string(test.path().join("engine.log")).unwrap_or_default();
    log.lines()
        .filter(|line| line.split(' ').next() == Some(verb))
        .map(str::to_string)
        .collect()
}

fn lines(test: &Test, file: &str) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(test.path().join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// An image's content id, from its plan.
fn content_id(test: &Test, image: &str) -> String {
    let plan: serde_json::Value =
        serde_json::from_str(&test.read(&format!("staging/{ID}/.matriochka/{image}.json")))
            .unwrap();
    plan["content_id"].as_str().unwrap().to_string()
}

/// An image's content tag in the stub registry.
fn content_ref(test: &Test, image: &str) -> String {
    let id = content_id(test, image);
    format!(
        "ceph/{image}:mcid-{}",
        &id["sha256:".len().."sha256:".len() + 20]
    )
}

/// A fresh machine: the store, stamps, logs and calls are gone; the registry stays.
fn forget_the_store(test: &Test) {
    for file in ["store", "engine.log", "skopeo.log"] {
        let _ = std::fs::remove_file(test.path().join(file));
    }
    let _ = std::fs::remove_dir_all(test.path().join("staging/.stamps"));
}

const BUILT: &str = "[1/2] build ceph/core:test-squid-centos-stream9-x86_64
stub build
[1/2] build ceph/core:test-squid-centos-stream9-x86_64: ok
[2/2] build ceph/app:test-squid-centos-stream9-x86_64
stub build
[2/2] build ceph/app:test-squid-centos-stream9-x86_64: ok
";

#[test]
fn push_pushes_each_image_under_its_content_tag_too() {
    let test = project();
    let pushed = format!(
        "{BUILT}[1/2] push {CORE_TAG}\nstub push\nstub push\n[1/2] push {CORE_TAG}: ok\n\
         [2/2] push {APP_TAG}\nstub push\nstub push\n[2/2] push {APP_TAG}: ok\n"
    );
    make_ok(&test, &["push"], &pushed, "");
    let (core, app) = (content_ref(&test, "core"), content_ref(&test, "app"));
    assert_eq!(
        calls(&test, "push"),
        [
            format!("push {CORE_TAG}"),
            format!("push {core}"),
            format!("push {APP_TAG}"),
            format!("push {app}"),
        ]
    );
    let registry: Vec<String> = lines(&test, "registry")
        .iter()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    let mut expected = vec![
        CORE_TAG.to_string(),
        APP_TAG.to_string(),
        core.clone(),
        app.clone(),
    ];
    expected.sort();
    assert_eq!(registry, expected);
    // The content tags were tagged for the push only.
    let store: Vec<String> = lines(&test, "store")
        .iter()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(store, [APP_TAG, CORE_TAG]);
    let log = test.read(&format!("staging/logs/{ID}/core.push.log"));
    assert_eq!(
        log,
        format!(
            "./engine push {CORE_TAG}\nstub push\n./engine tag {CORE_TAG} {core}\n./engine push {core}\nstub push\n./engine rmi {core}\nUntagged: {core}\n"
        )
    );
}

#[test]
fn a_fresh_machine_with_reuse_builds_nothing_the_registry_holds() {
    let test = pushed_by_another_machine();
    let (core, app) = (content_ref(&test, "core"), content_ref(&test, "app"));
    make_ok(
        &test,
        &["build", "REUSE=1"],
        &format!(
            "reuse: 2 of 2 looked-up images are in the registry\n\
             [1/2] build {CORE_TAG}\nstub pull\n[1/2] build {CORE_TAG}: reused\n\
             [2/2] build {APP_TAG}\nstub pull\n[2/2] build {APP_TAG}: reused\n"
        ),
        "",
    );
    assert_eq!(calls(&test, "build"), Vec::<String>::new());
    assert_eq!(
        calls(&test, "pull"),
        [format!("pull {core}"), format!("pull {app}")]
    );
    // One registry request per image, in one step before the builds.
    assert_eq!(
        lines(&test, "skopeo.log"),
        [
            format!("inspect --raw docker://{app}"),
            format!("inspect --raw docker://{core}"),
        ]
    );
    let store: Vec<String> = lines(&test, "store")
        .iter()
        .map(|line| line.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(store, [APP_TAG, CORE_TAG]);
    // What it pulled is recorded as matriochka's, for prune (the stub's image id is the content id).
    let cid = content_id(&test, "core");
    let record = test.read(&format!(
        "staging/.uses/{}",
        cid.trim_start_matches("sha256:")
    ));
    assert!(
        record.ends_with(&format!("\ncontent-id {cid}\ntag {CORE_TAG}\n")),
        "{record}"
    );
    // The records served their builds.
    assert_eq!(
        std::fs::read_dir(test.path().join("staging/.reuse"))
            .unwrap()
            .count(),
        0
    );
    // Up to date now: no lookup asks the registry again, nothing is built or pulled.
    make_ok(
        &test,
        &["build", "REUSE=1"],
        "reuse: 0 of 0 looked-up images are in the registry\n",
        "",
    );
    assert_eq!(lines(&test, "skopeo.log").len(), 2);
}

/// The project after a push, on a machine whose store holds none of the pushed images.
#[track_caller]
fn pushed_by_another_machine() -> Test {
    let test = project();
    make_ok(&test, &["push"], &any_push(), "");
    forget_the_store(&test);
    test
}

fn any_push() -> String {
    format!(
        "{BUILT}[1/2] push {CORE_TAG}\nstub push\nstub push\n[1/2] push {CORE_TAG}: ok\n\
         [2/2] push {APP_TAG}\nstub push\nstub push\n[2/2] push {APP_TAG}: ok\n"
    )
}

#[test]
fn reuse_builds_exactly_the_changed_image_and_its_child() {
    let test = pushed_by_another_machine();
    let test = test.write("templates/src/core/release.txt", "core 2\n");
    make_ok(
        &test,
        &["build", "REUSE=1"],
        &format!("reuse: 0 of 2 looked-up images are in the registry\n{BUILT}"),
        "",
    );
    assert_eq!(calls(&test, "pull"), Vec::<String>::new());
    // A fragment of the child only: the parent is reused, the child built.
    forget_the_store(&test);
    let test = test
        .write("templates/src/core/release.txt", "core\n")
        .write("templates/src/app/app.txt", "app 2\n");
    make_ok(
        &test,
        &["build", "REUSE=1"],
        &format!(
            "reuse: 1 of 2 looked-up images are in the registry\n\
             [1/2] build {CORE_TAG}\nstub pull\n[1/2] build {CORE_TAG}: reused\n\
             [2/2] build {APP_TAG}\nstub build\n[2/2] build {APP_TAG}: ok\n"
        ),
        "",
    );
    assert_eq!(calls(&test, "build").len(), 1);
    assert!(calls(&test, "build")[0].contains(&format!("-t {APP_TAG}")));
}

#[test]
fn cache_repo_holds_the_content_tags_and_reuse_looks_there() {
    let test = project();
    make_ok(
        &test,
        &["push", "CACHE_REPO=cache.example/c"],
        &any_push(),
        "",
    );
    let cached = |image: &str| {
        content_ref(&test, image).replace(
            &format!("ceph/{image}:"),
            &format!("cache.example/c/{image}:"),
        )
    };
    let (core, app) = (cached("core"), cached("app"));
    assert_eq!(
        calls(&test, "push"),
        [
            format!("push {CORE_TAG}"),
            format!("push {core}"),
            format!("push {APP_TAG}"),
            format!("push {app}"),
        ]
    );
    forget_the_store(&test);
    make_ok(
        &test,
        &["build", "REUSE=1", "CACHE_REPO=cache.example/c"],
        &format!(
            "reuse: 2 of 2 looked-up images are in the registry\n\
             [1/2] build {CORE_TAG}\nstub pull\n[1/2] build {CORE_TAG}: reused\n\
             [2/2] build {APP_TAG}\nstub pull\n[2/2] build {APP_TAG}: reused\n"
        ),
        "",
    );
    assert_eq!(
        calls(&test, "pull"),
        [format!("pull {core}"), format!("pull {app}")]
    );
    // Without it, the images' own repositories hold no content tag: both are built.
    forget_the_store(&test);
    make_ok(
        &test,
        &["build", "REUSE=1"],
        &format!("reuse: 0 of 2 looked-up images are in the registry\n{BUILT}"),
        "",
    );
}

#[test]
fn a_cache_repo_that_is_no_repository_is_refused_before_any_build() {
    let test = project();
    let output = make(&test, &["push", "CACHE_REPO=Cache/x:y"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: CACHE_REPO `Cache/x:y` is not a registry repository (bad name component `Cache`): set it to `[host[:port]/]path`, e.g. `quay.io/ceph/cache`\n"
        ),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(calls(&test, "build"), Vec::<String>::new());
    assert_eq!(calls(&test, "push"), Vec::<String>::new());
}

#[test]
fn a_failed_lookup_builds_with_a_note() {
    let test = pushed_by_another_machine();
    let output = make(&test, &["build", "REUSE=1", "SKOPEO_DOWN=1"]);
    let (core, app) = (content_ref(&test, "core"), content_ref(&test, "app"));
    let cause =
        "time=\"x\" level=fatal msg=\"pinging container registry r: connect: connection refused\"";
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "note: failed to look `{core}` up in the registry: {cause}: building it\n\
             note: failed to look `{app}` up in the registry: {cause}: building it\n"
        )
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(calls(&test, "build").len(), 2);
}

#[test]
fn a_failed_pull_builds_with_a_note() {
    let test = pushed_by_another_machine();
    let output = make(
        &test,
        &["build", "REUSE=1", "STUB_PULL_STATUS=1", "IMAGES=core"],
    );
    let core = content_ref(&test, "core");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "note: failed to pull `{core}` (see staging/logs/{ID}/core.pull.log): building it\n"
        )
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(calls(&test, "build").len(), 1);
}

#[test]
fn image_build_looks_up_by_itself_without_a_record() {
    let test = pushed_by_another_machine();
    let plan = test.read(&format!("staging/{ID}/.matriochka/core.json"));
    let sha: String = sha2::Sha256::digest(plan.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let core = content_ref(&test, "core");
    let path = format!(
        "{}:{}",
        test.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let test = test
        .env("PATH", &path)
        .env("CONTAINER_ENGINE", "./engine")
        .env("STUB_DIR", ".")
        .env("RELEASE", "test")
        .env("HOST_ARCH", "x86_64")
        .env("REUSE", "1")
        .args(&[
            "image",
            "build",
            &format!("staging/{ID}"),
            "core",
            "--plan",
            &sha,
        ])
        .stdout(&format!(
            "build {CORE_TAG}\nstub pull\nbuild {CORE_TAG}: reused\n"
        ));
    test.run();
    assert_eq!(
        lines(&test, "skopeo.log"),
        [format!("inspect --raw docker://{core}")]
    );
}

#[test]
fn reuse_lookup_takes_plans_below_the_staging_root_only() {
    project()
        .env("CONTAINER_ENGINE", "./engine")
        .args(&["reuse-lookup", "elsewhere/core.json"])
        .stderr("error: plan `elsewhere/core.json` is not below the staging root `staging`\n")
        .status(1)
        .run();
}

#[test]
fn extra_tags_are_given_at_build_time_and_pushed() {
    let test = with_extra_tags(
        project(),
        r#"["{IMAGE}:candidate", "{IMAGE}:{RELEASE}-latest"]"#,
    );
    make_ok(
        &test,
        &["push", "IMAGES=core"],
        &format!(
            "[1/1] build {CORE_TAG}\nstub build\n[1/1] build {CORE_TAG}: ok\n\
             [1/1] push {CORE_TAG}\nstub push\nstub push\nstub push\nstub push\n[1/1] push {CORE_TAG}: ok\n"
        ),
        "",
    );
    assert_eq!(
        calls(&test, "tag")[..2],
        [
            format!("tag {CORE_TAG} ceph/core:candidate"),
            format!("tag {CORE_TAG} ceph/core:test-latest"),
        ]
    );
    assert_eq!(
        calls(&test, "push")[..3],
        [
            format!("push {CORE_TAG}"),
            "push ceph/core:candidate".to_string(),
            "push ceph/core:test-latest".to_string(),
        ]
    );
}

#[test]
fn adding_an_extra_tag_retags_and_never_rebuilds() {
    let test = project();
    make_ok(&test, &["build"], BUILT, "");
    let test = with_extra_tags(test, r#"["{IMAGE}:candidate"]"#);
    make_ok(
        &test,
        &["build"],
        &format!(
            "[1/2] build {CORE_TAG}\n[1/2] build {CORE_TAG}: tagged\n\
             [2/2] build {APP_TAG}\n[2/2] build {APP_TAG}: tagged\n"
        ),
        "",
    );
    assert_eq!(calls(&test, "build").len(), 2, "the first build's two only");
    assert_eq!(
        calls(&test, "tag"),
        [
            format!("tag {CORE_TAG} ceph/core:candidate"),
            format!("tag {APP_TAG} ceph/app:candidate"),
        ]
    );
    // Everything is there now: make runs nothing.
    make_ok(
        &test,
        &["build"],
        "make[1]: Nothing to be done for 'build'.\n",
        "",
    );
    // Changing the pattern retags again, still without a build.
    let test = with_extra_tags(test, r#"["{IMAGE}:rc"]"#);
    make_ok(
        &test,
        &["build"],
        &format!(
            "[1/2] build {CORE_TAG}\n[1/2] build {CORE_TAG}: tagged\n\
             [2/2] build {APP_TAG}\n[2/2] build {APP_TAG}: tagged\n"
        ),
        "",
    );
    assert_eq!(calls(&test, "build").len(), 2);
}

#[test]
fn a_commit_tag_is_skipped_when_the_tree_is_dirty() {
    // Outside git, GIT_CLEAN is False.
    let test = with_extra_tags(
        project(),
        r#"["{IMAGE}:{GIT_COMMIT}", "{IMAGE}:candidate"]"#,
    );
    make_ok(
        &test,
        &["build", "IMAGES=core"],
        &format!("[1/1] build {CORE_TAG}\nstub build\n[1/1] build {CORE_TAG}: ok\n"),
        &format!(
            "note: extra tag `{{IMAGE}}:{{GIT_COMMIT}}` not given to `{CORE_TAG}`: the tree is dirty (GIT_CLEAN=False)\n"
        ),
    );
    assert_eq!(
        calls(&test, "tag"),
        [format!("tag {CORE_TAG} ceph/core:candidate")]
    );
}

#[test]
fn an_extra_tag_naming_an_unknown_variable_fails_at_load() {
    with_extra_tags(project(), r#"["{IMAGE}:{NOPE}"]"#)
        .args(&["show", "default"])
        .stderr(
            "error: failed to load `flavors/matriochka.toml`: `layout.extra_tags` pattern `{IMAGE}:{NOPE}` names unknown variable `{NOPE}`; known: BASEOS_REGISTRY, BASEOS_REPO, BASEOS_TAG, BASE_IMAGE, CEPH_POINT_RELEASE, CEPH_POINT_RELEASE_TAG, CEPH_VERSION, DISTRO, DISTRO_VERSION, GIT_BRANCH, GIT_CLEAN, GIT_COMMIT, GIT_REPO, GO_ARCH, HOST_ARCH, IMAGES_TO_BUILD, RELEASE, STAGING_DIR, TAG_REGISTRY, CORE_IMAGE, APP_IMAGE, IMAGE\n",
        )
        .status(1)
        .run();
}

#[test]
fn make_n_prints_the_lookup_and_asks_nothing() {
    let test = project();
    let output = make(&test, &["-n", "build", "REUSE=1"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    let lookup = format!(
        "{} reuse-lookup staging/{ID}/.matriochka/core.json staging/{ID}/.matriochka/app.json",
        bin()
    );
    assert!(text.lines().any(|line| line == lookup), "{text}");
    assert!(!test.path().join("skopeo.log").exists());
    assert!(!test.path().join("staging/.reuse").exists());
}

#[test]
fn clean_removes_the_extra_tags_too() {
    let test = with_extra_tags(project(), r#"["{IMAGE}:candidate"]"#);
    make_ok(
        &test,
        &["build", "IMAGES=core"],
        &format!("[1/1] build {CORE_TAG}\nstub build\n[1/1] build {CORE_TAG}: ok\n"),
        "",
    );
    assert_eq!(lines(&test, "store").len(), 2);
    make_ok(
        &test,
        &["clean"],
        &format!(
            "./engine rmi {CORE_TAG}\nUntagged: {CORE_TAG}\n\
             ./engine rmi ceph/core:candidate\nUntagged: ceph/core:candidate\n\
             rm -rf staging/{ID} staging/.stamps/{ID} staging/logs/{ID}\n"
        ),
        "",
    );
    assert_eq!(lines(&test, "store"), Vec::<String>::new());
}

#[test]
fn a_pulled_image_with_another_content_id_is_built() {
    let test = pushed_by_another_machine();
    let core = content_ref(&test, "core");
    // The registry's content tag holds another image (a prefix collision, or a tampered tag).
    let registry = test.read("registry");
    let other: String = registry
        .lines()
        .map(|line| match line.split_once(' ') {
            Some((tag, _)) if tag == core => format!("{tag} sha256:other\n"),
            _ => format!("{line}\n"),
        })
        .collect();
    let test = test.write("registry", &other);
    let output = make(&test, &["build", "REUSE=1", "IMAGES=core"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "note: `{core}` does not carry content id `{}`: building it\n",
            content_id(&test, "core")
        )
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(calls(&test, "build").len(), 1);
    assert_eq!(calls(&test, "rmi"), [format!("rmi {core}")]);
}
