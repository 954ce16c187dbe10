//! Staging: layers, fragments, variables, templates, modes, and incremental writes.

use std::collections::BTreeMap;

use crate::common::{mtimes, texts, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const SQUID_DIR: &str = "staging/squid-centos-9-x86_64";

/// A project where every layer level overrides a file named after it.
fn layered() -> Test {
    Test::with_config()
        .write("templates/src/level", "src\n")
        .write("templates/src/only-src", "from src\n")
        .write("templates/rel/ALL/level", "ALL\n")
        .write(
            "templates/rel/ALL/{DISTRO}/level",
            "not a layer of anything\n",
        )
        .write("templates/rel/ALL/centos/level", "ALL/centos\n")
        .write("templates/rel/ALL/centos/9/level", "ALL/centos/9\n")
        .write("templates/rel/ALL/ubuntu/level", "ALL/ubuntu\n")
        .write("templates/rel/squid/level", "squid\n")
        .write("templates/rel/squid/centos/level", "squid/centos\n")
        .write("templates/rel/reef/level", "reef\n")
        .write(
            "templates/rel/squid/centos/core/level",
            "squid/centos/core\n",
        )
        .write(
            "templates/rel/ALL/centos/app/nested/deep/file",
            "app only, nested\n",
        )
        .write(
            "templates/rel/ALL/centos/other/ignored",
            "not an image of the config\n",
        )
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n",
        )
        .write("templates/src/app/__UNUSED__", "unused fragment\n")
        .write("templates/src/app/.dockerignore", "*.md\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\nCOPY --from=__ENV_[BASE_IMAGE]__ /a /a\n",
        )
}

#[test]
fn layer_precedence_at_every_level_and_image_subtrees() {
    let test = layered().args(&["stage", SQUID]).stdout(
        "
        staged staging/squid-centos-9-x86_64: 14 written, 0 unchanged, 0 removed
        ",
    );
    test.run();
    assert_eq!(
        test.texts(SQUID_DIR),
        texts(&[
            ("app/.dockerignore", "*.md\n"),
            ("app/Dockerfile", "FROM ceph/core:test-squid-centos-stream9-x86_64\nCOPY --from=quay.io/centos/centos:stream9 /a /a\n"),
            ("app/level", "squid/centos\n"),
            ("app/nested/deep/file", "app only, nested\n"),
            ("app/only-src", "from src\n"),
            ("core/Dockerfile", "FROM quay.io/centos/centos:stream9\n"),
            ("core/level", "squid/centos/core\n"),
            ("core/only-src", "from src\n"),
        ])
    );
    let reef = "reef,x86_64,centos,9,quay.io,centos/centos,stream9";
    let test = test
        .args(&["stage", reef])
        .stdout("staged staging/reef-centos-9-x86_64: 14 written, 0 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read("staging/reef-centos-9-x86_64/app/level"),
        "reef\n"
    );
    let ubuntu = "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04";
    let test = test
        .args(&["stage", ubuntu])
        .stdout("staged staging/squid-ubuntu-22.04-x86_64: 13 written, 0 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read("staging/squid-ubuntu-22.04-x86_64/app/level"),
        "squid\n"
    );
    assert_eq!(
        test.read("staging/squid-ubuntu-22.04-x86_64/core/Dockerfile"),
        "FROM ubuntu:22.04\n"
    );
}

#[test]
fn a_more_specific_layer_replaces_a_file_loose_or_in_an_image_dir() {
    let test = Test::with_config()
        .write("templates/src/core/conf", "src image dir\n")
        .write("templates/rel/ALL/conf", "ALL loose\n")
        .write(
            "templates/rel/squid/centos/core/conf",
            "squid/centos image dir\n",
        )
        .write("templates/rel/squid/conf", "squid loose\n")
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read("staging/squid-centos-9-x86_64/core/conf"),
        "squid/centos image dir\n"
    );
    assert_eq!(
        test.read("staging/squid-centos-9-x86_64/app/conf"),
        "squid loose\n"
    );
}

#[test]
fn nested_and_repeated_fragments_with_env_tokens() {
    let test = Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "
            FROM __ENV_[BASE_IMAGE]__
            __INSTALL__
            # again: __INSTALL__
            ENV TOOL=__ENV_[OPT_TOOL]__
            ",
        )
        .write("templates/src/__INSTALL__", "RUN install __PACKAGES__ \n\n")
        .write(
            "templates/rel/ALL/centos/__PACKAGES__",
            "ceph-__ENV_[CEPH_VERSION]__ __EXTRA__",
        )
        .write("templates/rel/squid/__EXTRA__", "extra-for-squid")
        .write("templates/src/app/Dockerfile", "FROM scratch\n")
        .env("OPT_TOOL", "tool-for-__ENV_[DISTRO]__")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed\n");
    test.run();
    test.expect_file(
        "staging/squid-centos-9-x86_64/core/Dockerfile",
        "
        FROM quay.io/centos/centos:stream9
        RUN install ceph-squid extra-for-squid
        # again: RUN install ceph-squid extra-for-squid
        ENV TOOL=tool-for-centos
        ",
    );
    let files = test.texts(SQUID_DIR);
    assert!(
        !files.keys().any(|path| path.contains("__")),
        "fragments are not staged: {files:?}"
    );
    test.expect_file(
        "staging/squid-centos-9-x86_64/files-sources",
        "
        # files of squid,x86_64,centos,9,quay.io,centos/centos,stream9 and the template each one comes from; `*` marks a source modified in git,
        # indented lines are the fragments a file used
        core/Dockerfile <- templates/src/core/Dockerfile
            __EXTRA__ <- templates/rel/squid/__EXTRA__
            __INSTALL__ <- templates/src/__INSTALL__
            __PACKAGES__ <- templates/rel/ALL/centos/__PACKAGES__
        app/Dockerfile <- templates/src/app/Dockerfile
        ",
    );
}

#[test]
fn keep_fragments_stages_them_unrendered() {
    let config = crate::common::CONFIG.replace("env = [", "keep_fragments = true\nenv = [");
    let test = Test::new()
        .write("flavors/matriochka.toml", &config)
        .write("templates/src/core/Dockerfile", "__A__\n")
        .write("templates/src/core/__A__", "a __ENV_[DISTRO]__\n")
        .write("templates/src/app/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 9 written, 0 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.texts(SQUID_DIR),
        texts(&[
            ("app/Dockerfile", "FROM scratch\n"),
            ("core/Dockerfile", "a centos\n"),
            ("core/__A__", "a __ENV_[DISTRO]__\n")
        ])
    );
}

#[test]
fn tera_templates_are_rendered_after_fragments() {
    let test = Test::with_config()
        .write(
            "templates/src/core/repo.conf.tera",
            "
            [ceph]
            {% if DISTRO == \"centos\" %}baseurl=https://example.invalid/rpm-{{ CEPH_VERSION }}/el{{ DISTRO_VERSION }}{% endif %}
            packages=__PKGS__
            {% for image in IMAGES_TO_BUILD | split(pat=\" \") %}{{ image }};{% endfor %}
            ",
        )
        .write("templates/src/__PKGS__", "{{ HOST_ARCH }}")
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 9 written, 0 unchanged, 0 removed\n");
    test.run();
    test.expect_file(
        "staging/squid-centos-9-x86_64/core/repo.conf",
        "
        [ceph]
        baseurl=https://example.invalid/rpm-squid/el9
        packages=x86_64
        core;app;
        ",
    );
    assert!(!test
        .path()
        .join("staging/squid-centos-9-x86_64/core/repo.conf.tera")
        .exists());
}

#[test]
fn binary_files_are_copied_byte_for_byte_and_modes_kept() {
    let binary: Vec<u8> = vec![0xff, 0xfe, b'_', b'_', b'A', b'_', b'_', 0x00, 0x80];
    let test = Test::with_config()
        .write_bytes("templates/src/core/blob.bin", &binary, 0o644)
        .write_bytes(
            "templates/src/core/run.sh",
            b"#!/bin/sh\necho __ENV_[CEPH_VERSION]__\n",
            0o755,
        )
        .write_bytes("templates/src/core/data", b"plain\n", 0o600)
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 11 written, 0 unchanged, 0 removed\n");
    test.run();
    let tree = test.tree(SQUID_DIR);
    assert_eq!(tree["core/blob.bin"], (0o644, binary));
    assert_eq!(
        tree["core/run.sh"],
        (0o755, b"#!/bin/sh\necho squid\n".to_vec())
    );
}

#[test]
fn other_modes_are_staged_as_git_records_them() {
    // Git keeps only the executable bit: a context staged from a checkout or from the working
    // tree must not depend on the umask, so 0600 is staged as 0644 and 0700 as 0755.
    let test = Test::with_config()
        .write_bytes("templates/src/core/private", b"plain\n", 0o600)
        .write_bytes("templates/src/core/owner-exec", b"#!/bin/sh\n", 0o700)
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n");
    test.run();
    let tree = test.tree(SQUID_DIR);
    assert_eq!(tree["core/private"], (0o644, b"plain\n".to_vec()));
    assert_eq!(tree["core/owner-exec"], (0o755, b"#!/bin/sh\n".to_vec()));
}

#[test]
fn restaging_removes_stale_files_and_keeps_unchanged_mtimes() {
    let test = Test::with_config()
        .write("templates/src/core/keep", "same\n")
        .write("templates/src/core/change", "one\n")
        .write("templates/src/core/gone/deep", "bye\n")
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 11 written, 0 unchanged, 0 removed\n");
    test.run();
    let dir = test.path().join(SQUID_DIR);
    let before = mtimes(&dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::remove_dir_all(test.path().join("templates/src/core/gone")).unwrap();
    let test = test
        .write("templates/src/core/change", "two\n")
        .stdout("staged staging/squid-centos-9-x86_64: 5 written, 5 unchanged, 1 removed\n");
    test.run();
    let after = mtimes(&dir);
    let keep = dir.join("core/keep");
    assert_eq!(
        before[&keep], after[&keep],
        "an unchanged file keeps its mtime"
    );
    assert_ne!(
        before[&dir.join("core/change")],
        after[&dir.join("core/change")]
    );
    assert!(
        !dir.join("core/gone").exists(),
        "stale files and their empty dirs are removed"
    );
    assert_eq!(
        test.read("staging/squid-centos-9-x86_64/core/change"),
        "two\n"
    );
    // The base digest changed (and so did flavor.mk and files-sources); the app digest did not.
    let app_digest = dir.join(".matriochka/app.sha256");
    assert_eq!(before[&app_digest], after[&app_digest]);

    let test =
        test.stdout("staged staging/squid-centos-9-x86_64: 0 written, 10 unchanged, 0 removed\n");
    test.run();
    assert_eq!(after, mtimes(&dir), "a no-op stage writes nothing");
}

#[test]
fn files_in_the_staging_dir_that_are_no_longer_produced_are_removed() {
    let test = Test::with_config()
        .write("templates/src/core/a", "a\n")
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 9 written, 0 unchanged, 0 removed\n");
    test.run();
    let test = test
        .write("staging/squid-centos-9-x86_64/core/stray", "left by hand\n")
        .stdout("staged staging/squid-centos-9-x86_64: 0 written, 9 unchanged, 1 removed\n");
    test.run();
    assert!(!test
        .path()
        .join("staging/squid-centos-9-x86_64/core/stray")
        .exists());
}

#[test]
fn symlinks_inside_the_templates_are_followed() {
    let test = Test::with_config()
        .write("templates/rel/ALL/shared.txt", "shared\n")
        .write("templates/src/a", "a\n")
        .write("templates/src/Dockerfile", "FROM scratch\n");
    std::os::unix::fs::symlink(
        "../rel/ALL/shared.txt",
        test.path().join("templates/src/linked.txt"),
    )
    .unwrap();
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 14 written, 0 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read("staging/squid-centos-9-x86_64/core/linked.txt"),
        "shared\n"
    );
}

#[test]
fn flavors_come_from_arguments_then_flavors_variable_then_default() {
    let test = Test::with_config()
        .write("templates/src/core/a", "a\n")
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .write("templates/rel/ALL/centos/9/.keep", "")
        .write("templates/rel/reef/.keep", "")
        .args(&["stage"])
        .stdout("staged staging/squid-centos-9-x86_64: 11 written, 0 unchanged, 0 removed\n");
    test.run();
    let test = test
        .env("FLAVORS", " reef,centos,9\n squid,x86_64,ubuntu,22.04,_,ubuntu,22.04 ")
        .stdout(
            "
            staged staging/reef-centos-9-x86_64: 11 written, 0 unchanged, 0 removed
            staged staging/squid-ubuntu-22.04-x86_64: 9 written, 0 unchanged, 0 removed
            ",
        )
        .stderr("warning: flavor `reef,centos,9` is not in `flavors.buildable` of `flavors/matriochka.toml`\n");
    test.run();
    // Arguments and FLAVORS together: the arguments win, FLAVORS is not read at all.
    let test = test
        .env(
            "FLAVORS",
            "reef,centos,9 squid,x86_64,ubuntu,22.04,_,ubuntu,22.04",
        )
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 0 written, 11 unchanged, 0 removed\n");
    test.run();
    // FLAVORS and a default together: FLAVORS wins.
    let test = test
        .env("FLAVORS", "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04")
        .args(&["stage"])
        .stdout("staged staging/squid-ubuntu-22.04-x86_64: 0 written, 9 unchanged, 0 removed\n");
    test.run();
}

#[test]
fn short_form_takes_the_base_image_from_the_environment() {
    let test = Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n",
        )
        .write("templates/src/app/Dockerfile", "FROM scratch\n")
        .env("BASEOS_REGISTRY", "quay.io")
        .env("BASEOS_REPO", "centos/centos")
        .env("BASEOS_TAG", "stream9")
        .args(&["stage", "squid,centos,9"])
        // No warning on stderr: the short form expands to a buildable flavor.
        .stdout("staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read("staging/squid-centos-9-x86_64/core/Dockerfile"),
        "FROM quay.io/centos/centos:stream9\n"
    );
}

#[test]
fn point_release_is_part_of_the_staging_dir_and_variables() {
    let test = Test::with_config()
        .write(
            "templates/src/core/v",
            "__ENV_[CEPH_VERSION]__ [__ENV_[CEPH_POINT_RELEASE]__]\n",
        )
        .write("templates/rel/squid/centos/core/x", "x\n")
        .write("templates/rel/ALL/centos/9/core/x", "x\n")
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&[
            "stage",
            "squid=19.2.1-1,x86_64,centos,9,quay.io,centos/centos,stream9",
        ])
        .stdout("staged staging/squid@19.2.1-1-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n")
        .stderr("warning: flavor `squid=19.2.1-1,x86_64,centos,9,quay.io,centos/centos,stream9` is not in `flavors.buildable` of `flavors/matriochka.toml`\n");
    test.run();
    assert_eq!(
        test.read("staging/squid@19.2.1-1-centos-9-x86_64/core/v"),
        "squid [=19.2.1-1]\n"
    );
}

#[test]
fn show_flavors_default_and_vars() {
    let test = Test::with_config().args(&["show", "flavors"]).stdout(
        "
        squid,x86_64,centos,9,quay.io,centos/centos,stream9
        reef,x86_64,centos,9,quay.io,centos/centos,stream9
        squid,x86_64,ubuntu,22.04,_,ubuntu,22.04
        ",
    );
    test.run();
    test.args(&["show", "default"])
        .stdout("squid,x86_64,centos,9,quay.io,centos/centos,stream9\n")
        .run();
    // A flavor outside `flavors.buildable` needs a layer for each of its values, as in `stage`.
    Test::with_config()
        .write("templates/rel/ALL/ubuntu/22.04/.keep", "")
        .write("templates/rel/squid/.keep", "")
        .env("CEPH_DEVEL", "true")
        .env("HOME_NOT_ALLOWED", "x")
        .env("TAG_REGISTRY", "")
        .env("APP_TAG", "custom/app:1")
        .args(&[
            "show",
            "vars",
            "squid=19.2.1,aarch64,ubuntu,22.04,_,ubuntu,22.04",
        ])
        .stdout(
            "
            APP_IMAGE=custom/app:1
            BASEOS_REGISTRY=
            BASEOS_REPO=ubuntu
            BASEOS_TAG=22.04
            BASE_IMAGE=ubuntu:22.04
            CEPH_DEVEL=true
            CEPH_FULL_VERSION=19.2.1
            CEPH_MAJOR=19
            CEPH_MINOR=2
            CEPH_POINT_RELEASE==19.2.1
            CEPH_POINT_RELEASE_TAG=-19.2.1
            CEPH_VERSION=squid
            CORE_IMAGE=core:test-squid-ubuntu-22.04-aarch64
            DISTRO=ubuntu
            DISTRO_VERSION=22.04
            GIT_BRANCH=Unknown branch
            GIT_CLEAN=False
            GIT_COMMIT=Unknown commit hash
            GIT_REPO=Unknown repo
            GO_ARCH=arm64
            HOST_ARCH=aarch64
            IMAGES_TO_BUILD=core app
            RELEASE=test
            STAGING_DIR=staging/squid@19.2.1-ubuntu-22.04-aarch64
            TAG_REGISTRY=
            ",
        )
        .run();
}

#[test]
fn plan_prints_json_and_writes_nothing() {
    let test = Test::with_config().args(&["plan", "--json", SQUID]).stdout(
        r#"
        [
          {
            "flavor": "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
            "id": "squid-centos-9-x86_64",
            "images": [
              {
                "context": "staging/squid-centos-9-x86_64/core",
                "name": "core",
                "tag": "ceph/core:test-squid-centos-stream9-x86_64"
              },
              {
                "context": "staging/squid-centos-9-x86_64/app",
                "name": "app",
                "tag": "ceph/app:test-squid-centos-stream9-x86_64"
              }
            ],
            "staging_dir": "staging/squid-centos-9-x86_64",
            "vars": {
              "APP_IMAGE": "ceph/app:test-squid-centos-stream9-x86_64",
              "BASEOS_REGISTRY": "quay.io",
              "BASEOS_REPO": "centos/centos",
              "BASEOS_TAG": "stream9",
              "BASE_IMAGE": "quay.io/centos/centos:stream9",
              "CEPH_POINT_RELEASE": "",
              "CEPH_POINT_RELEASE_TAG": "",
              "CEPH_VERSION": "squid",
              "CORE_IMAGE": "ceph/core:test-squid-centos-stream9-x86_64",
              "DISTRO": "centos",
              "DISTRO_VERSION": "9",
              "GIT_BRANCH": "Unknown branch",
              "GIT_CLEAN": "False",
              "GIT_COMMIT": "Unknown commit hash",
              "GIT_REPO": "Unknown repo",
              "GO_ARCH": "amd64",
              "HOST_ARCH": "x86_64",
              "IMAGES_TO_BUILD": "core app",
              "RELEASE": "test",
              "STAGING_DIR": "staging/squid-centos-9-x86_64",
              "TAG_REGISTRY": "ceph"
            }
          }
        ]
        "#,
    );
    test.run();
    assert!(!test.path().join("staging").exists(), "plan writes nothing");
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let test = Test::with_config().args(&["show", "flavors"]);
    let mut child = test.spawn();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "no error printed"
    );
}

#[test]
fn build_mk_includes_the_flavors_of_the_run() {
    let test = Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n",
        )
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .args(&["stage", SQUID, "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04"])
        .stdout(
            "
            staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed
            staged staging/squid-ubuntu-22.04-x86_64: 8 written, 0 unchanged, 0 removed
            ",
        );
    test.run();
    let build_mk = test.read("staging/build.mk");
    let includes: Vec<&str> = build_mk
        .lines()
        .filter(|line| line.starts_with("$(call _m_include,"))
        .collect();
    assert_eq!(
        includes,
        [
            "$(call _m_include,staging/squid-centos-9-x86_64/flavor.mk)",
            "$(call _m_include,staging/squid-ubuntu-22.04-x86_64/flavor.mk)"
        ]
    );
    let flavor_mk = test.read("staging/squid-centos-9-x86_64/flavor.mk");
    assert!(
        flavor_mk.contains("_M_PARENTS.squid-centos-9-x86_64.app := squid-centos-9-x86_64.core\n")
    );
    assert!(flavor_mk.contains("_M_PARENTS.squid-centos-9-x86_64.core := \n"));
    let before = BTreeMap::from([("build.mk", build_mk), ("flavor.mk", flavor_mk)]);
    let test = test.stdout(
        "
        staged staging/squid-centos-9-x86_64: 0 written, 8 unchanged, 0 removed
        staged staging/squid-ubuntu-22.04-x86_64: 0 written, 8 unchanged, 0 removed
        ",
    );
    test.run();
    let after = BTreeMap::from([
        ("build.mk", test.read("staging/build.mk")),
        (
            "flavor.mk",
            test.read("staging/squid-centos-9-x86_64/flavor.mk"),
        ),
    ]);
    assert_eq!(before, after, "the generated text is deterministic");
}

#[test]
fn links_in_the_staging_dir_are_replaced_not_followed() {
    let test = Test::with_config()
        .write("templates/src/core/a", "a\n")
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .write("outside/keep", "keep\n");
    std::fs::create_dir_all(test.path().join("staging/squid-centos-9-x86_64")).unwrap();
    std::os::unix::fs::symlink(
        "../../outside",
        test.path().join("staging/squid-centos-9-x86_64/core"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../outside",
        test.path().join("staging/squid-centos-9-x86_64-link"),
    )
    .unwrap();
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 9 written, 0 unchanged, 1 removed\n");
    test.run();
    assert_eq!(
        crate::common::snapshot(&test.path().join("outside")),
        BTreeMap::from([("keep".to_string(), (0o644, b"keep\n".to_vec()))]),
        "nothing written through the link"
    );
    let core = test.path().join("staging/squid-centos-9-x86_64/core");
    assert!(std::fs::symlink_metadata(&core).unwrap().is_dir());
    assert_eq!(test.read("staging/squid-centos-9-x86_64/core/a"), "a\n");
}
