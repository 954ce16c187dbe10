//! The make interface as users type it (issue 13): `REGISTRY`, `make -f` from elsewhere, image
//! targets at the top level, `test.staging` / `matriochka check`, pulls only when asked or missing,
//! the first-run line, `lint` in another project. A stub engine records its arguments.

use std::process::Output;

use crate::common::stub::{calls_of, recording_engine};
use crate::common::{
    assert_make_output as assert_output, bin, build_project, fake_checkout, make_in,
    make_text as text, path_with, repo_makefile_text, Test, CONFIG,
};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ID: &str = "squid-centos-9-x86_64";
const CORE_TAG: &str = "ceph/core:test-squid-centos-stream9-x86_64";
const APP_TAG: &str = "ceph/app:test-squid-centos-stream9-x86_64";

/// The recording engine; a build prints `$STUB_BUILD_OUTPUT` and exits `$STUB_BUILD_STATUS`.
fn stub_engine() -> String {
    recording_engine(
        r#" echo "${STUB_BUILD_OUTPUT:-stub build}"; exit "${STUB_BUILD_STATUS:-0}";;"#,
    )
}

fn project() -> Test {
    let engine = stub_engine();
    build_project()
        .write_bytes("engine", engine.as_bytes(), 0o755)
        .write_bytes("podman-stub", engine.as_bytes(), 0o755)
        .env("CONTAINER_ENGINE", "./engine")
        .env("STUB_DIR", ".")
}

/// The `-t` value of each recorded build.
fn built_tags(test: &Test) -> Vec<String> {
    calls_of(test, "build")
        .iter()
        .map(|call| call[call.iter().position(|a| a == "-t").unwrap() + 1].clone())
        .collect()
}

/// `make -f <repo>/Makefile MATRIOCHKA=<test binary> ARGS` in the project.
fn make(test: &Test, env: &[(&str, &str)], args: &[&str]) -> Output {
    let makefile = format!("{}/Makefile", env!("CARGO_MANIFEST_DIR"));
    let matriochka = format!("MATRIOCHKA={}", bin());
    let mut all = vec![matriochka.as_str()];
    all.extend(args);
    make_in(test.path(), &makefile, env, &all)
}

#[test]
fn make_push_with_registry_pushes_there() {
    let test = project();
    let output = make(
        &test,
        &[],
        &["push", &format!("FLAVORS={SQUID}"), "REGISTRY=quay.io/x"],
    );
    assert_eq!(text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let tags = [
        "quay.io/x/core:test-squid-centos-stream9-x86_64",
        "quay.io/x/app:test-squid-centos-stream9-x86_64",
    ];
    assert_eq!(built_tags(&test), tags);
    // Each image's tag, then its content tag, in the same repository.
    let pushed: Vec<String> = calls_of(&test, "push")
        .iter()
        .map(|call| call.last().unwrap().clone())
        .collect();
    assert_eq!(pushed.len(), 4, "{pushed:?}");
    assert_eq!([&pushed[0], &pushed[2]], tags);
    assert!(pushed[1].starts_with("quay.io/x/core:mcid-"), "{pushed:?}");
    assert!(pushed[3].starts_with("quay.io/x/app:mcid-"), "{pushed:?}");
}

#[test]
fn make_clean_all_with_registry_removes_that_registrys_images() {
    let test = project();
    let images = "ceph/core:a\nquay.io/x/core:b\nlocalhost/quay.io/x/app:c\nquay.io/y/core:d\n";
    let output = make(
        &test,
        &[("STUB_IMAGES", images)],
        &["clean.all", "REGISTRY=quay.io/x"],
    );
    assert_output(
        &output,
        "<matriochka> clean --all\n\
         ./engine rmi localhost/quay.io/x/app:c\n\
         Untagged: localhost/quay.io/x/app:c\n\
         ./engine rmi quay.io/x/core:b\n\
         Untagged: quay.io/x/core:b\n",
        "",
        0,
    );
}

#[test]
fn registry_and_tag_registry_that_differ_are_one_error() {
    let test = project();
    let error = "error: `REGISTRY` `quay.io/x` and `TAG_REGISTRY` `quay.io/y` differ: set one of \
                 them (`REGISTRY` is a synonym of `TAG_REGISTRY`)\n";
    let output = make(
        &test,
        &[],
        &["push", "REGISTRY=quay.io/x", "TAG_REGISTRY=quay.io/y"],
    );
    assert_output(
        &output,
        "<matriochka> stage\n",
        &format!("{error}make: *** [<repo>/Makefile:N: stage] Error 1\n"),
        2,
    );
    let output = make(
        &test,
        &[],
        &["clean.all", "REGISTRY=quay.io/x", "TAG_REGISTRY=quay.io/y"],
    );
    assert_output(
        &output,
        "<matriochka> clean --all\n",
        &format!("{error}make: *** [<repo>/Makefile:N: clean.all] Error 1\n"),
        2,
    );
    assert!(calls_of(&test, "build").is_empty() && calls_of(&test, "rmi").is_empty());
}

/// Issue 13: `make -f path/to/Makefile build.all` from another directory said "No rule to make
/// target 'build.parallel'": the recursive call read `./Makefile`.
#[test]
fn make_f_build_all_from_another_directory_recurses_into_the_same_makefile() {
    let test = project().write("elsewhere/Makefile", &repo_makefile_text());
    // A `Makefile` in the working directory that must not be read.
    let test = test.write(
        "Makefile",
        "build.parallel:\n\t@echo wrong makefile; exit 3\n",
    );
    let matriochka = format!("MATRIOCHKA={}", bin());
    for target in ["build.all", "push.all"] {
        let output = make_in(
            test.path(),
            "elsewhere/Makefile",
            &[("CONTAINER_ENGINE", "./engine")],
            &[&matriochka, target, "JOBS=1", "ARCHES=x86_64"],
        );
        assert_eq!(text(&output.stderr), "", "{target}");
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    }
    let reef_core = "ceph/core:test-reef-centos-stream9-x86_64";
    let reef_app = "ceph/app:test-reef-centos-stream9-x86_64";
    let ubuntu_core = "ceph/core:test-squid-ubuntu-22.04-x86_64";
    let ubuntu_app = "ceph/app:test-squid-ubuntu-22.04-x86_64";
    let mut tags = built_tags(&test);
    tags.sort();
    let mut expected = [
        CORE_TAG,
        APP_TAG,
        reef_core,
        reef_app,
        ubuntu_core,
        ubuntu_app,
    ]
    .repeat(2);
    expected.sort();
    assert_eq!(tags, expected);
    // Each image's tag and its content tag.
    assert_eq!(calls_of(&test, "push").len(), 12);
}

#[test]
fn image_targets_work_from_the_top_level_makefile() {
    let test = project();
    let output = make(&test, &[], &[&format!("build.{ID}.app")]);
    let stage = |verb: &str| {
        format!(
            "<matriochka> stage --target \"$_M_TARGET\" && {{ make --no-print-directory -f staging/build.mk \"$_M_TARGET\"; \
             MATRIOCHKA_TARGET=\"$_M_TARGET\" <matriochka> report --finish {verb} --status $?; }}\n\
             staged staging/{ID}: 9 written, 0 unchanged, 0 removed\n"
        )
    };
    assert_output(
        &output,
        &format!(
            "{}[1/2] build {CORE_TAG}\nstub build\n[1/2] build {CORE_TAG}: ok\n\
             [2/2] build {APP_TAG}\nstub build\n[2/2] build {APP_TAG}: ok\n\
             report: staging/report.json\n  built           2\n",
            stage("build")
        ),
        "",
        0,
    );
    let stage = stage("push")
        .replace("9 written", "0 written")
        .replace("0 unchanged", "9 unchanged");
    // Images the engine holds, stamps up to date: a push only.
    let images = format!("{CORE_TAG}\n{APP_TAG}\n");
    let output = make(
        &test,
        &[("STUB_IMAGES", &images)],
        &[&format!("push.{ID}.core")],
    );
    assert_output(
        &output,
        // The image's tag, then its content tag (`mcid-…`).
        &format!(
            "{stage}[1/2] push {CORE_TAG}\nstub push\nstub push\n[1/2] push {CORE_TAG}: ok\n\
             report: staging/report.json\n  pushed          1\n"
        ),
        "",
        0,
    );
    let output = make(
        &test,
        &[("STUB_LABEL", SQUID)],
        &[&format!("clean.{ID}.core")],
    );
    assert_output(
        &output,
        &format!(
            "<matriochka> stage --target \"$_M_TARGET\" && make --no-print-directory -f staging/build.mk \"$_M_TARGET\"\n\
             staged staging/{ID}: 0 written, 9 unchanged, 0 removed\n\
             ./engine rmi {CORE_TAG}\nUntagged: {CORE_TAG}\n"
        ),
        "",
        0,
    );
    // A buildable flavor outside the default ones, by its id: both images.
    let output = make(&test, &[], &["build.reef-centos-9-x86_64"]);
    assert_eq!(text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        built_tags(&test)[2..],
        [
            "ceph/core:test-reef-centos-stream9-x86_64",
            "ceph/app:test-reef-centos-stream9-x86_64"
        ]
    );
}

#[test]
fn an_image_target_naming_no_flavor_is_one_error() {
    let test = project();
    let output = make(&test, &[], &[&format!("build.{ID}.ap")]);
    assert_output(
        &output,
        "<matriochka> stage --target \"$_M_TARGET\" && { make --no-print-directory -f staging/build.mk \"$_M_TARGET\"; \
         MATRIOCHKA_TARGET=\"$_M_TARGET\" <matriochka> report --finish build --status $?; }\n",
        &format!(
            "error: no flavor of FLAVORS, `flavors.default` or `flavors.buildable` has the id of \
             target `build.{ID}.ap`; did you mean `build.{ID}.app`?\n\
             make: *** [<repo>/Makefile:N: build.{ID}.ap] Error 1\n"
        ),
        2,
    );
    assert!(!test.path().join("staging").exists());
}

/// Empty directories for every layer pattern of [`CONFIG`], so that `check` finds each pattern
/// used (git keeps no empty directory; a test's file system does).
fn with_layer_dirs(test: Test) -> Test {
    for dir in ["templates/rel/ALL/centos/9", "templates/rel/squid/centos"] {
        std::fs::create_dir_all(test.path().join(dir)).unwrap();
    }
    test
}

/// `matriochka check` on a project with one defect of each kind.
fn defective() -> Test {
    let config = CONFIG.replace(
        "images = [\"core\", \"app\"]",
        "images = [\"core\", \"app\", \"tool\"]",
    );
    with_layer_dirs(Test::new())
        .write("flavors/matriochka.toml", &config)
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nCOPY . /\n",
        )
        .write(
            "templates/src/core/conf.tera",
            "a={{ \"__LEFT\" ~ \"__\" }}\n",
        )
        .write(
            "templates/src/core/broken.sh",
            "#!/bin/bash\nif true; then\n  echo x\n",
        )
        .write("templates/src/core/lint.sh", "#!/bin/sh\necho $1\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM ceph/core:other\nCOPY --from=__ENV_[CORE_IMAGE]__ / /\n",
        )
        .write("templates/src/tool/Dockerfile", "# no base\nRUN true\n")
}

/// `check` told to use `__ENV_[FOO.BAR_IMAGE]__` for an image `foo.bar`: the variable is
/// `FOO_BAR_IMAGE`, as staging names it.
#[test]
fn check_suggests_the_image_variable_staging_defines_for_a_dotted_image() {
    let config = CONFIG.replace(
        "images = [\"core\", \"app\"]",
        "images = [\"foo.bar\", \"app\"]",
    );
    let dir = format!("staging/{ID}");
    with_layer_dirs(Test::new())
        .write("flavors/matriochka.toml", &config)
        .write("templates/src/foo.bar/Dockerfile", "FROM scratch\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM ceph/foo.bar:other\nRUN true\n",
        )
        .args(&["check", SQUID])
        .env("SHELLCHECK", "/nonexistent/shellcheck")
        .stdout(&format!(
            "{dir}/app/Dockerfile:1: `ceph/foo.bar:other` names image `foo.bar`, which this flavor tags \
             `ceph/foo.bar:test-squid-centos-stream9-x86_64`: use `__ENV_[FOO_BAR_IMAGE]__` (from \
             `templates/src/app/Dockerfile`)\n\
             checked 1 flavor (bash -n; shellcheck is not installed): 1 problem in 1 flavor\n"
        ))
        .status(1)
        .run();
}

#[test]
fn check_reports_each_kind_of_defect() {
    let dir = format!("staging/{ID}");
    let problems = format!(
        "{dir}/core/broken.sh: bash -n: line 4: syntax error: unexpected end of file (from `templates/src/core/broken.sh`)\n\
         {dir}/core/conf:1: `__LEFT__` is left unreplaced (from `templates/src/core/conf.tera`)\n\
         {dir}/core/lint.sh:2: shellcheck: note: Double quote to prevent globbing and word splitting. [SC2086] (from `templates/src/core/lint.sh`)\n\
         {dir}/app/Dockerfile:1: `ceph/core:other` names image `core`, which this flavor tags `{CORE_TAG}`: use `__ENV_[CORE_IMAGE]__` (from `templates/src/app/Dockerfile`)\n\
         {dir}/tool/Dockerfile: no `FROM` instruction (from `templates/src/tool/Dockerfile`)\n"
    );
    defective()
        .args(&["check", SQUID])
        .stdout(&format!(
            "{problems}checked 1 flavor (bash -n, shellcheck): 5 problems in 1 flavor\n"
        ))
        .status(1)
        .run();
    // Without shellcheck: said in the summary, an error when CI is set.
    let without = problems
        .lines()
        .filter(|line| !line.contains("shellcheck"))
        .map(|line| format!("{line}\n"))
        .collect::<String>();
    defective()
        .env("SHELLCHECK", "/nonexistent/shellcheck")
        .args(&["check", SQUID])
        .stdout(&format!(
            "{without}checked 1 flavor (bash -n; shellcheck is not installed): 4 problems in 1 flavor\n"
        ))
        .status(1)
        .run();
    defective()
        .env("SHELLCHECK", "/nonexistent/shellcheck")
        .env("CI", "1")
        .args(&["check", SQUID])
        .stderr(
            "error: `/nonexistent/shellcheck` is not installed and CI is set: install shellcheck\n",
        )
        .status(1)
        .run();
}

#[test]
fn check_passes_every_buildable_flavor_of_a_clean_project_and_writes_nothing() {
    let test = with_layer_dirs(project())
        .write(
            "templates/src/core/entrypoint.sh",
            "#!/bin/bash\necho \"$1\"\n",
        )
        .args(&["check"])
        .stdout("checked 3 flavors (bash -n, shellcheck): no problem\n");
    test.run();
    assert!(!test.path().join("staging").exists());
}

#[test]
fn test_staging_and_lint_work_in_a_project_that_copied_the_makefile() {
    let test = defective().write("Makefile", &repo_makefile_text());
    let matriochka = format!("MATRIOCHKA={}", bin());
    for target in ["test.staging", "lint"] {
        let output = make_in(test.path(), "Makefile", &[], &[&matriochka, target]);
        let stdout = text(&output.stdout);
        assert!(
            stdout.starts_with("<matriochka> check\n")
                && stdout.ends_with(": 11 problems in 3 flavors\n"),
            "{stdout}"
        );
        assert_eq!(
            text(&output.stderr),
            "make: *** [Makefile:N: test.staging] Error 1\n"
        );
        assert_eq!(output.status.code(), Some(2));
    }
}

#[test]
fn builds_pull_a_base_image_only_when_asked_or_missing() {
    let test = project().args(&["stage", SQUID]).stdout(&format!(
        "staged staging/{ID}: 9 written, 0 unchanged, 0 removed\n"
    ));
    test.run();
    let test = test.args(&[]);
    let plan = |image: &str| {
        let bytes = test.read(&format!("staging/{ID}/.matriochka/{image}.json"));
        let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes.as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let (core, app) = (plan("core"), plan("app"));
    let cases: [(&str, Option<&str>, Option<&str>); 6] = [
        ("./podman-stub", None, Some("--pull=missing")),
        ("./podman-stub", Some("1"), Some("--pull=always")),
        ("./podman-stub", Some("0"), Some("--pull=never")),
        ("./engine", None, None),
        ("./engine", Some("0"), None),
        ("./engine", Some("1"), Some("--pull")),
    ];
    let mut seen = 0;
    for (engine, pull, option) in cases {
        for (image, sha, tag) in [("core", &core, CORE_TAG), ("app", &app, APP_TAG)] {
            let mut command = test.command();
            command
                .args([
                    "image",
                    "build",
                    &format!("staging/{ID}"),
                    image,
                    "--plan",
                    sha,
                ])
                .env("CONTAINER_ENGINE", engine)
                .env_remove("PULL");
            if let Some(pull) = pull {
                command.env("PULL", pull);
            }
            let output = command.output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                format!("build {tag}\nstub build\nbuild {tag}: ok\n"),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(output.status.code(), Some(0));
            let builds = calls_of(&test, "build");
            let args = &builds[seen];
            seen += 1;
            let pulls: Vec<&String> = args.iter().filter(|a| a.starts_with("--pull")).collect();
            // Only an image on a base from outside the flavor pulls; one on a parent of the
            // flavor never does (podman is told so).
            let expected: Vec<&str> = match (image, engine) {
                ("core", _) => option.into_iter().collect(),
                (_, "./podman-stub") => vec!["--pull=never"],
                _ => Vec::new(),
            };
            assert_eq!(pulls, expected, "{engine} PULL={pull:?} {image}");
        }
    }
}

#[test]
fn a_build_that_failed_to_pull_says_to_use_pull_0() {
    let test = project().args(&["stage", SQUID]).stdout(&format!(
        "staged staging/{ID}: 9 written, 0 unchanged, 0 removed\n"
    ));
    test.run();
    let bytes = test.read(&format!("staging/{ID}/.matriochka/core.json"));
    let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes.as_bytes());
    let sha: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let pull_error = "Error: creating build container: initializing source docker://quay.io/centos/centos:stream9: pinging container registry quay.io: dial tcp: lookup quay.io: no such host";
    let log = format!("staging/logs/{ID}/core.log");
    let test = test
        .env("CONTAINER_ENGINE", "./podman-stub")
        .env("STUB_BUILD_STATUS", "125")
        .env("STUB_BUILD_OUTPUT", pull_error)
        .args(&["image", "build", &format!("staging/{ID}"), "core", "--plan", &sha])
        .stdout(&format!(
            "build {CORE_TAG}\n{pull_error}\nbuild {CORE_TAG}: FAILED (see {log}): pulling the base \
             image failed: to build offline, load the base image locally and set PULL=0\n"
        ))
        .status(1);
    test.run();
    // Another failure: no word of pulling.
    let test = test
        .env("CONTAINER_ENGINE", "./podman-stub")
        .env("STUB_BUILD_STATUS", "1")
        .env("STUB_BUILD_OUTPUT", "Error: building at STEP \"RUN false\": exit status 1")
        .args(&["image", "build", &format!("staging/{ID}"), "core", "--plan", &sha])
        .stdout(&format!(
            "build {CORE_TAG}\nError: building at STEP \"RUN false\": exit status 1\nbuild {CORE_TAG}: FAILED (see {log})\n"
        ))
        .status(1);
    test.run();
}

/// Issue 13: the first `make` compiled for minutes without a word.
#[test]
fn the_first_build_of_the_tool_says_so() {
    let checkout = fake_checkout(project());
    let dir = checkout.path();
    let path = path_with(&dir.join("bin"));
    let run = || {
        let output = make_in(dir, "Makefile", &[("PATH", &path)], &["show.flavors"]);
        assert_eq!(text(&output.stderr), "");
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8_lossy(&output.stdout).replace(&format!("{}/", dir.display()), "<dir>/")
    };
    let flavors = format!(
        "{SQUID}\nreef,x86_64,centos,9,quay.io,centos/centos,stream9\nsquid,x86_64,ubuntu,22.04,_,ubuntu,22.04\n"
    );
    assert_eq!(
        run(),
        format!(
            "building matriochka (first run, a few minutes)\n\
             cd <dir>/ && cargo build --release --locked\n{flavors}"
        )
    );
    // Once built, nothing more; after a source change, no first-run line.
    assert_eq!(run(), flavors);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(dir.join("src/main.rs"), "// changed\n").unwrap();
    assert_eq!(
        run(),
        format!("cd <dir>/ && cargo build --release --locked\n{flavors}")
    );
}

/// Issue 13: from a subdirectory of the project, matriochka found the root but make looked for
/// `staging/build.mk` in the working directory.
#[test]
fn make_build_from_a_subdirectory_of_the_project() {
    let test = project().write("sub/README", "");
    let engine = test.path().join("engine");
    let root = test.path().display().to_string();
    let output = make_in(
        &test.path().join("sub"),
        &format!("{}/Makefile", env!("CARGO_MANIFEST_DIR")),
        &[
            ("CONTAINER_ENGINE", engine.to_str().unwrap()),
            ("STUB_DIR", &root),
        ],
        &[&format!("MATRIOCHKA={}", bin()), "build", "IMAGES=core"],
    );
    assert_eq!(
        text(&output.stdout).replace(&root, "<root>"),
        format!(
            "<matriochka> stage\n\
             staged staging/{ID}: 9 written, 0 unchanged, 0 removed\n\
             make --no-print-directory -C <root> -f staging/build.mk build; <matriochka> report --finish build --status $?\n\
             [1/1] build {CORE_TAG}\nstub build\n[1/1] build {CORE_TAG}: ok\n\
             report: ../staging/report.json\n  built           1\n"
        )
    );
    assert_eq!(text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(built_tags(&test), [CORE_TAG]);
}

#[test]
fn stage_target_errors() {
    project()
        .args(&["stage", "--target", "squid-centos-9-x86_64"])
        .stderr("error: target `squid-centos-9-x86_64` is not `build.<id>[.<image>]`, `push.…` or `clean.…`\n")
        .status(1)
        .run();
    project()
        .args(&["stage", "--target", "push.nothing", SQUID])
        .stderr(
            "error: the argument '--target <TARGET>' cannot be used with '[FLAVORS]...'\n\n\
             Usage: matriochka stage --target <TARGET> [FLAVORS]...\n\n\
             For more information, try '--help'.\n",
        )
        .status(2)
        .run();
}

#[test]
fn make_manifest_with_registry_joins_that_registrys_images() {
    // The fake registry and podman of tests/manifest.rs, which serve `r.io/ceph`.
    let test = crate::manifest::project();
    let path = format!(
        "{}:{}",
        test.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = test.path().join("podman.log").display().to_string();
    let output = make(
        &test,
        &[
            ("PATH", &path),
            ("PODMAN_LOG", &log),
            ("CONTAINER_ENGINE", "podman"),
            ("CIDS", &test.path().join("cids").display().to_string()),
        ],
        &[
            "manifest",
            "REGISTRY=r.io/ceph",
            "PUSH_ARGS=--retry 0",
            "FLAVORS=squid-19.2.1,x86_64,centos,9,_,centos,9 squid-19.2.1,aarch64,centos,9,_,centos,9",
        ],
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(
            "<matriochka> manifest; <matriochka> report --finish manifest --status $?\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("report: staging/report.json\n  list pushed     4\n"),
        "{stdout}"
    );
    for pushed in [
        "r.io/ceph/core:test-squid-centos",
        "r.io/ceph/core:v19-centos",
        "r.io/ceph/app:test-squid-centos",
        "r.io/ceph/app:v19-centos",
    ] {
        assert!(stdout.contains(&format!("\npushed {pushed}\n")), "{stdout}");
    }
    assert_eq!(text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0));
}
