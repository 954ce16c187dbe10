//! The same flavor checks in every command, usage errors exit 2, and help examples that work.

use crate::common::Test;

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";

fn project() -> Test {
    Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n",
        )
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .write("templates/rel/ALL/centos/9/.keep", "")
        .write("templates/rel/squid/centos/.keep", "")
        .write("templates/rel/reef/.keep", "")
}

#[test]
fn plan_and_show_vars_reject_a_flavor_that_stage_rejects() {
    let typo = "sqiud,x86_64,centos,9,quay.io,centos/centos,stream9";
    let message = "error: invalid flavor `sqiud,x86_64,centos,9,quay.io,centos/centos,stream9`: CEPH_VERSION `sqiud` has no layer directory (looked for `templates/rel/sqiud`, `templates/rel/sqiud/centos`); known values: reef, squid; did you mean `squid`?\n";
    let mut test = project();
    for args in [
        vec!["stage", typo],
        vec!["plan", typo],
        vec!["plan", "--json", typo],
        vec!["show", "vars", typo],
    ] {
        test = test.args(&args).stdout("").stderr(message).status(2);
        test.run();
    }
    assert!(!test.path().join("staging").exists(), "nothing staged");
}

#[test]
fn an_arch_spelled_the_go_way_is_refused_with_the_uname_spelling() {
    let mut test = project();
    for command in [&["stage"][..], &["plan"], &["show", "vars"]] {
        let mut args = command.to_vec();
        args.push("squid,arm64,centos,9,quay.io,centos/centos,stream9");
        test = test
            .args(&args)
            .stdout("")
            .stderr("error: invalid flavor `squid,arm64,centos,9,quay.io,centos/centos,stream9`: field 2 (arch) `arm64` is not a known arch (x86_64, aarch64, ppc64le, s390x): did you mean `aarch64`?\n")
            .status(2);
        test.run();
    }
    assert!(
        !test.path().join("staging").exists(),
        "no second staging dir"
    );
}

#[test]
fn a_bad_flavor_from_the_flavors_variable_is_a_usage_error_too() {
    project()
        .env("FLAVORS", "squid,x86-64,centos,9,quay.io,centos/centos,stream9")
        .args(&["plan"])
        .stdout("")
        .stderr("error: invalid flavor `squid,x86-64,centos,9,quay.io,centos/centos,stream9`: field 2 (arch) `x86-64` is not a known arch (x86_64, aarch64, ppc64le, s390x): did you mean `x86_64`?\n")
        .status(2)
        .run();
}

#[test]
fn a_bad_buildable_flavor_in_the_config_is_a_failed_run_not_usage() {
    let config = crate::common::CONFIG.replace(
        "buildable = [\"squid,x86_64",
        "buildable = [\"squid,amd64,centos,9,quay.io,centos/centos,stream9\", \"squid,x86_64",
    );
    project()
        .write("flavors/matriochka.toml", &config)
        .args(&["show", "flavors"])
        .stdout("")
        .stderr("error: bad `flavors.buildable` in `flavors/matriochka.toml`: invalid flavor `squid,amd64,centos,9,quay.io,centos/centos,stream9`: field 2 (arch) `amd64` is not a known arch (x86_64, aarch64, ppc64le, s390x): did you mean `x86_64`?\n")
        .status(1)
        .run();
}

/// Every flavor in a help example is buildable in the repository's own configuration.
#[test]
fn help_examples_use_buildable_flavors() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let bin = assert_cmd::cargo::cargo_bin("matriochka");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(["-C", repo])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let buildable = run(&["show", "flavors"]);
    let buildable: Vec<&str> = buildable.lines().collect();
    let mut seen = 0;
    for help in [
        vec!["--help"],
        vec!["stage", "--help"],
        vec!["plan", "--help"],
        vec!["show", "--help"],
        vec!["show", "vars", "--help"],
    ] {
        let text = run(&help);
        let example = text.split("Example:").nth(1).unwrap_or_default();
        for word in example.split([' ', '\n', '\'']) {
            if word.matches(',').count() >= 2 {
                seen += 1;
                assert!(
                    buildable.contains(&word),
                    "`{word}` in `matriochka {}` is not buildable",
                    help.join(" ")
                );
            }
        }
    }
    assert!(seen >= 5, "found {seen} example flavors");
}

#[test]
fn a_command_run_from_a_subdirectory_finds_the_project_root_upwards() {
    let test = project().args(&["plan", SQUID]).stdout(
        "
        squid-centos-9-x86_64 core ceph/core:test-squid-centos-stream9-x86_64 staging/squid-centos-9-x86_64/core
        squid-centos-9-x86_64 app ceph/app:test-squid-centos-stream9-x86_64 staging/squid-centos-9-x86_64/app
        ",
    );
    let from_root = test.run().stdout;
    let sub = test.path().join("templates/src/core");
    let out = test.command().current_dir(&sub).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), from_root);
    let test = test.args(&["stage", SQUID]);
    let out = test.command().current_dir(&sub).output().unwrap();
    assert!(out.status.success());
    assert!(test
        .path()
        .join("staging/squid-centos-9-x86_64/core/Dockerfile")
        .is_file());
    assert!(
        !sub.join("staging").exists(),
        "staged below the root, not in the working directory"
    );
}

/// Issue 10, item 6: a layer pattern with a typo dropped that layer's files without a word.
#[test]
fn check_names_a_layer_pattern_that_no_buildable_flavor_matches() {
    let config = crate::common::CONFIG.replace(
        "\"rel/ALL/{DISTRO}\",",
        "\"rel/ALL/{DISTRO}\", \"rel/al/{DISTRO}\",",
    );
    assert_ne!(config, crate::common::CONFIG);
    project()
        .write("flavors/matriochka.toml", &config)
        .write("templates/rel/ALL/ubuntu/22.04/.keep", "")
        .write("templates/rel/ALL/centos/.keep", "")
        .write("templates/rel/squid/ubuntu/.keep", "")
        .env("SHELLCHECK", "true")
        .args(&["check"])
        .stdout(
            "
            `flavors/matriochka.toml`: layer pattern `rel/al/{DISTRO}` matches no directory below `templates` for any buildable flavor: fix it or remove it
            checked 3 flavors (bash -n, shellcheck): 1 problem in 0 flavors
            ",
        )
        .stderr("")
        .status(1)
        .run();
}

/// Issue 21: `squid,x86_64,centos` was read as a distro named `x86_64`.
#[test]
fn a_short_flavor_with_an_arch_names_the_two_forms() {
    let test = project()
        .args(&["stage", "squid,x86_64,centos"])
        .stderr(
            "error: invalid flavor `squid,x86_64,centos`: field 2 `x86_64` is an arch, but the \
             3-field form is `<ceph rel>,<os name>,<os version>`: write `squid,centos,<os version>` \
             (the arch is HOST_ARCH) or all 7 fields `squid,x86_64,centos,<os version>,<base \
             registry>,<base repo>,<base tag>`\n",
        )
        .status(2);
    test.run();
    assert!(!test.path().join("staging").exists());
}
