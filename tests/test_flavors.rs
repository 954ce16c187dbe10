//! `flavors.test`: flavors the tests build and run but nothing pushes (issue 20). Listed by
//! `show flavors --test`, staged and checked like any flavor, refused by push, manifest and
//! `make push`.

use crate::common::stub::recording_engine;
use crate::common::{build_project, repo_make, Test, CONFIG};

const TEST_FLAVOR: &str = "reef,x86_64,ubuntu,22.04,_,ubuntu,22.04";
const ID: &str = "reef-ubuntu-22.04-x86_64";

fn with_test_flavor(test: Test) -> Test {
    let config = CONFIG.replace(
        "buildable = [",
        &format!("test = [\"{TEST_FLAVOR}\"]\nbuildable = ["),
    );
    assert_ne!(config, CONFIG);
    test.write("flavors/matriochka.toml", &config)
        .write("templates/rel/ALL/ubuntu/22.04/.keep", "")
}

#[test]
fn show_flavors_test_lists_the_test_flavors_only() {
    let test = with_test_flavor(Test::new())
        .args(&["show", "flavors", "--test"])
        .stdout(&format!("{TEST_FLAVOR}\n"));
    test.run();
    let test = test.args(&["show", "flavors"]).stdout(
        "
            squid,x86_64,centos,9,quay.io,centos/centos,stream9
            reef,x86_64,centos,9,quay.io,centos/centos,stream9
            squid,x86_64,ubuntu,22.04,_,ubuntu,22.04
            ",
    );
    test.run();
    test.args(&["show", "flavors", "--test", "--arch", "aarch64"])
        .stderr("error: no test flavor for arch `aarch64`; test arches: x86_64\n")
        .status(1)
        .run();
}

#[test]
fn a_test_flavor_stages_without_the_not_buildable_warning() {
    let test = with_test_flavor(build_project())
        .args(&["stage", TEST_FLAVOR])
        .stdout(&format!(
            "staged staging/{ID}: 11 written, 0 unchanged, 0 removed\n"
        ));
    test.run();
    assert!(test
        .path()
        .join("staging")
        .join(ID)
        .join("flavor.mk")
        .is_file());
}

#[test]
fn a_bad_test_flavor_names_its_list() {
    let config = CONFIG.replace("buildable = [", "test = [\"reef,x86_64\"]\nbuildable = [");
    Test::new()
        .write("flavors/matriochka.toml", &config)
        .args(&["show", "flavors", "--test"])
        .stderr(
            "error: bad `flavors.test` in `flavors/matriochka.toml`: invalid flavor `reef,x86_64`: expected 7 comma-separated fields `<ceph rel>,<arch>,<os name>,<os version>,<base registry>,<base repo>,<base tag>` or 3 `<ceph rel>,<os name>,<os version>`, found 2\n",
        )
        .status(1)
        .run();
}

#[test]
fn push_and_manifest_refuse_a_test_flavor_with_one_line() {
    let refused = |what: &str| {
        format!(
            "error: flavor `{TEST_FLAVOR}` is a test flavor (`flavors.test` of `flavors/matriochka.toml`): it is built and run by the tests, never {what}\n"
        )
    };
    let test = with_test_flavor(build_project())
        .args(&["check-arches", "--push", TEST_FLAVOR])
        .stderr(&refused("pushed"))
        .status(1);
    test.run();
    // Without --push, the test flavor is a flavor like any other.
    let test = test.args(&["check-arches", TEST_FLAVOR]).status(0);
    test.run();
    test.args(&["manifest", TEST_FLAVOR])
        .env("CONTAINER_ENGINE", "podman")
        .stderr(&refused("joined into a manifest list"))
        .status(1)
        .run();
}

#[test]
fn make_push_of_a_test_flavor_builds_and_pushes_nothing() {
    let test = with_test_flavor(build_project()).write_bytes(
        "engine",
        recording_engine(r#" echo "stub build";;"#).as_bytes(),
        0o755,
    );
    let log = test.path().join("engine.log");
    let output = repo_make(&test)
        .arg("push")
        .arg(format!("FLAVORS={TEST_FLAVOR}"))
        .arg(format!(
            "CONTAINER_ENGINE={}",
            test.path().join("engine").display()
        ))
        .env("STUB_DIR", test.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|line| line.starts_with("error:"))
            .collect::<Vec<_>>(),
        [format!(
            "error: flavor `{TEST_FLAVOR}` is a test flavor (`flavors.test` of `flavors/matriochka.toml`): it is built and run by the tests, never pushed"
        )]
    );
    assert!(
        !log.exists(),
        "the engine ran: {}",
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn check_covers_the_test_flavors_with_the_buildable_ones() {
    with_test_flavor(build_project())
        .write("templates/rel/reef/.keep", "")
        .write("templates/rel/ALL/centos/9/.keep", "")
        .write("templates/rel/squid/centos/.keep", "")
        .env("SHELLCHECK", "/nonexistent/shellcheck")
        .args(&["check"])
        .stdout("checked 4 flavors (bash -n; shellcheck is not installed): no problem\n")
        .run();
}
