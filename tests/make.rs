//! The Makefile front end, without an engine: `make -n` command lines, help, and bad input.
//! Real builds and pushes are in tests/e2e/run.sh (`make test.e2e`).

use std::process::Command;

use crate::common::{assert_text, repo_make, two_image_project, unindent, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";

fn project() -> Test {
    two_image_project()
}

/// `make -f <repo>/Makefile ARGS` in the project, with the test binary as MATRIOCHKA.
#[track_caller]
fn make(test: &Test, args: &[&str]) -> (i32, String) {
    let output = repo_make(test).args(args).output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

/// `make -n build CONTAINER_ENGINE=docker SETTING`.
#[track_caller]
fn dry_build(test: &Test, setting: &str) -> (i32, String) {
    make(test, &["-n", "build", "CONTAINER_ENGINE=docker", setting])
}

/// `text` with the parts that vary between checkouts and Makefile edits replaced: the path of the
/// binary by `<matriochka>`, of the repository by `<repo>`, make's line numbers by `N`.
fn normalized(text: &str) -> String {
    let binary = assert_cmd::cargo::cargo_bin("matriochka");
    let text = text
        .replace(binary.to_str().unwrap(), "<matriochka>")
        .replace(env!("CARGO_MANIFEST_DIR"), "<repo>");
    regex::Regex::new(r"(?m)(Makefile|\.mk):[0-9]+:")
        .unwrap()
        .replace_all(&text, "$1:N:")
        .into_owned()
}

/// The image references of the engine command lines for `verb` (`build`: the `-t` value,
/// `push`: the pushed reference), in order.
fn references(text: &str, verb: &str) -> Vec<String> {
    let pattern = match verb {
        "build" => r" build .*?-t (\S+)",
        _ => r" push (?:--?[a-z-]+(?:=\S+)? )*(\S+)$",
    };
    let pattern = regex::Regex::new(pattern).unwrap();
    engine_lines(text, verb)
        .iter()
        .map(|line| match pattern.captures(line) {
            Some(found) => found[1].to_string(),
            None => panic!("no image reference in `{line}`"),
        })
        .collect()
}

const CORE: &str = "ceph/core:test-squid-centos-stream9-x86_64";
const APP: &str = "ceph/app:test-squid-centos-stream9-x86_64";

/// The engine command lines, with runs of spaces (left by empty make variables) folded.
fn engine_lines(text: &str, verb: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.contains(&format!("docker {verb} ")))
        .map(|line| {
            line.split(' ')
                .filter(|word| !word.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn dry_run_prints_docker_builds_in_dependency_order() {
    let test = project();
    let (code, out) = make(
        &test,
        &[
            "-n",
            "build",
            &format!("FLAVORS={SQUID}"),
            "CONTAINER_ENGINE=docker",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(references(&out, "build"), [CORE, APP], "{out}");
    let builds = engine_lines(&out, "build");
    assert_eq!(builds.len(), 2, "{out}");
    let core = "docker build --platform linux/amd64 -t ceph/core:test-squid-centos-stream9-x86_64 \
                --file staging/squid-centos-9-x86_64/core/Dockerfile \
                --label io.matriochka.content-id=sha256:";
    assert!(builds[0].starts_with(core), "{}", builds[0]);
    assert!(builds[0].contains(
        "--label io.matriochka.flavor=squid,x86_64,centos,9,quay.io,centos/centos,stream9 \
         --label io.matriochka.git-clean=False --label org.opencontainers.image.created= \
         --label 'org.opencontainers.image.revision=Unknown commit hash' \
         --label 'org.opencontainers.image.source=Unknown repo' --label org.opencontainers.image.title=core \
         --label org.opencontainers.image.version=test staging/squid-centos-9-x86_64/core"
    ), "{}", builds[0]);
    assert!(
        builds[1].contains("-t ceph/app:test-squid-centos-stream9-x86_64 "),
        "the child comes second"
    );
    assert!(
        !builds[1].contains("--pull"),
        "a child of a flavor image does not pull: {}",
        builds[1]
    );
    for line in &builds {
        let status = Command::new("bash")
            .args(["-n", "-c", line.as_str()])
            .status()
            .unwrap();
        assert!(status.success(), "not valid shell: {line}");
    }
    // One matriochka start (`image dry-run`, while make reads build.mk) printed every image's
    // lines: no recipe starts it again, and its files are gone.
    assert!(!out.contains(" image build staging/"), "{out}");
    let staging: Vec<String> = std::fs::read_dir(test.path().join("staging"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".dry-run"))
        .collect();
    assert_eq!(staging, Vec::<String>::new());
}

#[test]
fn options_reach_the_build_command() {
    let test = project();
    let args = [
        "-n",
        "build",
        "CONTAINER_ENGINE=docker",
        "PULL=0",
        "BUILD_ARGS=--network=host",
        "HTTPS_PROXY=http://proxy:3128",
        "TAG_REGISTRY=registry.example:5000/team",
        "CORE_TAG=core:pinned",
    ];
    let (code, out) = make(&test, &args);
    assert_eq!(code, 0, "{out}");
    let builds = engine_lines(&out, "build");
    assert!(!builds[0].contains("--pull"), "{}", builds[0]);
    assert!(
        builds[0].contains("-t registry.example:5000/team/core:pinned "),
        "{}",
        builds[0]
    );
    assert!(
        builds[0].contains(" --build-arg HTTPS_PROXY --label "),
        "{}",
        builds[0]
    );
    assert!(
        builds[0].contains(" --network=host staging/"),
        "{}",
        builds[0]
    );
}

#[test]
fn pushes_come_after_every_build_of_the_set() {
    let test = project();
    let (code, out) = make(
        &test,
        &["-n", "push", "CONTAINER_ENGINE=docker", "PUSH_ARGS=--quiet"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(references(&out, "build"), [CORE, APP], "{out}");
    // Each image's tag, then its content tag.
    let pushed = references(&out, "push");
    assert_eq!(pushed.len(), 4, "{out}");
    assert_eq!([&pushed[0], &pushed[2]], [CORE, APP], "{out}");
    assert!(
        regex::Regex::new("^ceph/core:mcid-[0-9a-f]{20}$")
            .unwrap()
            .is_match(&pushed[1]),
        "{out}"
    );
    assert!(pushed[3].starts_with("ceph/app:mcid-"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let last_build = lines
        .iter()
        .rposition(|line| line.contains("docker build "))
        .unwrap();
    let first_push = lines
        .iter()
        .position(|line| line.contains("docker push "))
        .unwrap();
    assert!(last_build < first_push, "{out}");
    assert!(
        lines[first_push] == "docker push --quiet ceph/core:test-squid-centos-stream9-x86_64",
        "{out}"
    );
}

#[test]
fn images_selects_images_with_their_parents() {
    let test = project();
    let (code, out) = make(
        &test,
        &["-n", "build", "CONTAINER_ENGINE=docker", "IMAGES=app"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        references(&out, "build"),
        [CORE, APP],
        "app needs core: {out}"
    );
    let (code, out) = make(
        &test,
        &["-n", "build", "CONTAINER_ENGINE=docker", "IMAGES=core"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(references(&out, "build"), [CORE], "{out}");
}

#[test]
fn unknown_image_in_images() {
    let test = project();
    let (code, out) = make(
        &test,
        &["build", "CONTAINER_ENGINE=docker", "IMAGES=core ap"],
    );
    assert_eq!(code, 2);
    assert_text(
        &normalized(&out),
        &unindent(
            "
            <matriochka> stage
            staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed
            make --no-print-directory -f staging/build.mk build; <matriochka> report --finish build --status $?
            report: staging/report.json
              skipped         1
            skipped squid-centos-9-x86_64/core (ceph/core:test-squid-centos-stream9-x86_64): a parent failed or the run stopped
            staging/build.mk:N: *** unknown image(s) in IMAGES: ap; known: core app.  Stop.
            make: *** [<repo>/Makefile:N: build] Error 2
            ",
        ),
        "make output",
    );
}

#[test]
fn no_engine_is_a_one_line_error_and_stage_still_works() {
    let test = project();
    let (code, out) = make(&test, &["build", "CONTAINER_ENGINE="]);
    assert_eq!(code, 2);
    assert_text(&normalized(&out), &unindent(
            "
            <matriochka> stage
            staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed
            <repo>/Makefile:N: *** no container engine: install docker or podman, or run `make stage` to stage without building.  Stop.
            ",
        ), "make output");
    let (code, out) = make(&test, &["stage", "CONTAINER_ENGINE="]);
    assert_eq!(code, 0, "{out}");
    assert_text(
        &normalized(&out),
        &unindent(
            "
            <matriochka> stage
            staged staging/squid-centos-9-x86_64: 0 written, 8 unchanged, 0 removed
            ",
        ),
        "make output",
    );
    assert!(test
        .path()
        .join("staging/squid-centos-9-x86_64/core/Dockerfile")
        .exists());
}

#[test]
fn invalid_flavors_stop_make_before_any_build() {
    let test = project();
    let (code, out) = dry_build(&test, "FLAVORS=squid,x86_64,centos,9,_,centos,9;rm");
    assert_eq!(code, 2);
    assert_text(&normalized(&out), &unindent(
            "
            <matriochka> stage
            error: invalid flavor `squid,x86_64,centos,9,_,centos,9;rm`: field 7 (base tag) `9;rm` contains `;`: use an image tag: letters, digits, `_`, `.` and `-`, at most 128
            make: *** [<repo>/Makefile:N: stage] Error 2
            ",
        ), "make output");
}

#[test]
fn help_lists_every_target_within_100_columns() {
    let test = project();
    let (code, out) = make(&test, &["help"]);
    assert_eq!(code, 0);
    for target in [
        "stage",
        "build",
        "build.parallel",
        "build.all",
        "push",
        "push.parallel",
        "push.all",
        "clean",
        "clean.nones",
        "clean.all",
        "clean.nuke",
        "lint",
        "test",
        "test.e2e",
        "test.ceph-stub",
        "bench",
        "help",
        "show.flavors",
        "flavors.modified",
        "install",
    ] {
        assert!(
            out.lines()
                .any(|line| line.starts_with(&format!("  {target} "))),
            "{target} missing:\n{out}"
        );
    }
    for option in [
        "FLAVORS",
        "TAG_REGISTRY",
        "RELEASE",
        "<IMAGE>_TAG",
        "IMAGES",
        "CONTAINER_ENGINE",
        "BUILD_ARGS",
        "PUSH_ARGS",
        "PULL=0",
        "FORCE=1",
        "JOBS",
        "PUSH_RETRIES",
        "MATRIOCHKA",
    ] {
        assert!(
            out.contains(&format!("  {option} ")),
            "{option} missing:\n{out}"
        );
    }
    assert!(out.lines().all(|line| line.chars().count() <= 100), "{out}");
    assert!(out.contains("Risky"), "clean.nuke says it is risky");
}

#[test]
fn show_flavors_target() {
    let test = project();
    let (code, out) = make(&test, &["show.flavors"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "squid,x86_64,centos,9,quay.io,centos/centos,stream9\nreef,x86_64,centos,9,quay.io,centos/centos,stream9\nsquid,x86_64,ubuntu,22.04,_,ubuntu,22.04\n"
    );
}

#[test]
fn unknown_target() {
    let test = project();
    let (code, out) = make(&test, &["biuld"]);
    assert_eq!(code, 2);
    assert_eq!(out, "make: *** No rule to make target 'biuld'.  Stop.\n");
    assert!(!test.path().join("staging").exists(), "nothing staged");
}

/// Stages SQUID, runs `before`, then `make -f staging/build.mk ARGS` with docker and the test binary.
#[track_caller]
fn build_mk(test: &Test, before: impl Fn(&Test), args: &[&str]) -> std::process::Output {
    let (code, out) = make(test, &["stage", &format!("FLAVORS={SQUID}")]);
    assert_eq!(code, 0, "{out}");
    before(test);
    // A clean environment: under `make test`, an inherited MAKEFLAGS/MAKELEVEL would make this
    // make print "Entering directory".
    crate::common::make_command(test.path())
        .args(["-f", "staging/build.mk", "CONTAINER_ENGINE=docker"])
        .arg(format!(
            "MATRIOCHKA={}",
            assert_cmd::cargo::cargo_bin("matriochka").display()
        ))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_missing_flavor_mk_stops_make_with_its_path() {
    let test = project();
    let output = build_mk(
        &test,
        |test| {
            let flavor_mk = test.path().join("staging/squid-centos-9-x86_64/flavor.mk");
            std::fs::remove_file(flavor_mk).unwrap()
        },
        &["-n", "build"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(
        normalized(&String::from_utf8_lossy(&output.stderr)),
        "staging/build.mk:N: *** staging/squid-centos-9-x86_64/flavor.mk is missing: run `matriochka stage`.  Stop.\n"
    );
}

#[test]
fn push_waits_for_every_build_through_one_target() {
    // One `_m_built` target stands for every build of the set: each push names it alone, so
    // make's parse stays linear in the number of images (it was quadratic: every push named
    // every stamp).
    let test = project();
    let output = build_mk(&test, |_| {}, &["-p", "-n", "_m_force"]);
    let db = String::from_utf8_lossy(&output.stdout);
    let mut rules: Vec<&str> = db
        .lines()
        .filter(|line| {
            line.starts_with("push.squid-centos-9-x86_64.") || line.starts_with("_m_built:")
        })
        .collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        [
            "_m_built: staging/.stamps/squid-centos-9-x86_64/core staging/.stamps/squid-centos-9-x86_64/app",
            "push.squid-centos-9-x86_64.app: _m_built",
            "push.squid-centos-9-x86_64.core: _m_built",
        ],
        "{db}"
    );
}

#[test]
fn dry_run_values_stay_data() {
    // Given on the command line, a value reaches the one `image dry-run` start through `env`,
    // single-quoted: make does not expand it, the shell does not run it.
    let test = project();
    let (code, out) = dry_build(
        &test,
        "BUILD_ARGS=--network=host $(shell touch PWNED) 'x' `touch PWNED2`",
    );
    assert_eq!(code, 0, "{out}");
    assert!(!test.path().join("PWNED").exists() && !test.path().join("PWNED2").exists());
    let builds = engine_lines(&out, "build");
    assert_eq!(builds.len(), 2, "{out}");
    assert!(
        builds[0].contains(
            r" --network=host '$(shell' touch 'PWNED)' ''\''x'\''' '`touch' 'PWNED2`' staging/"
        ),
        "{}",
        builds[0]
    );
}

#[test]
fn an_image_the_dry_run_start_cannot_print_starts_matriochka_itself() {
    // The plan changed after make read flavor.mk: `image dry-run` leaves the image out, and its
    // recipe runs `image build --dry-run`, which says why.
    let test = project();
    let output = build_mk(
        &test,
        |test| {
            let plan = test
                .path()
                .join("staging/squid-centos-9-x86_64/.matriochka/core.json");
            let text = std::fs::read_to_string(&plan).unwrap();
            std::fs::write(&plan, text.replace("\"core\"", "\"core\" ")).unwrap()
        },
        &["-n", "build"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: context `staging/squid-centos-9-x86_64/core` changed since make read it"
        ),
        "{stderr}"
    );
}

#[test]
fn the_dry_run_start_is_given_only_the_command_line_variables() {
    // Listed before the flavors' variables exist: a list made later held a blank per variable,
    // and at 10,000 flavors the `env` command line outgrew what exec takes.
    let test = project();
    let output = build_mk(&test, |_| {}, &["-p", "-n", "_m_force", "PULL=0"]);
    let db = String::from_utf8_lossy(&output.stdout);
    let line = db
        .lines()
        .find(|line| line.starts_with("_M_COMMAND_LINE := "))
        .unwrap_or_else(|| panic!("{db}"));
    let mut names: Vec<&str> = line["_M_COMMAND_LINE := ".len()..].split(' ').collect();
    names.sort_unstable();
    assert_eq!(names, ["CONTAINER_ENGINE", "MATRIOCHKA", "PULL"]);
}
