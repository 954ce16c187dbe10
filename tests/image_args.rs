//! Per-image build arguments (`[images.<name>]` of the configuration): expanded per flavor,
//! passed as `--build-arg NAME=value`, in the plan, `plan --json`, the bake file and the content
//! id; unknown images and variables fail at load with their line.

use sha2::{Digest, Sha256};

use crate::common::{Test, CONFIG};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ID: &str = "squid-centos-9-x86_64";
const APP_ARGS: &str = "\n[images.app]\nbuild_args = { CEPH_REF = \"{CEPH_VERSION}\", FROM_TAG = \"{CORE_IMAGE}\" }\nplatform_args.aarch64 = { PAGE_SIZE = \"64k\" }\n";

fn project(images: &str) -> Test {
    Test::new()
        .write("flavors/matriochka.toml", &format!("{CONFIG}{images}"))
        .write(
            "templates/rel/ALL/centos/9/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n",
        )
        .write(
            "templates/rel/ALL/centos/9/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\nARG CEPH_REF\n",
        )
        .write("templates/rel/squid/.keep", "")
        .env("RELEASE", "test")
        .env("CONTAINER_ENGINE", "podman")
}

#[track_caller]
fn staged(test: Test) -> Test {
    let test = test.args(&["stage", SQUID]).stdout(&format!(
        "staged staging/{ID}: 10 written, 0 unchanged, 0 removed\n"
    ));
    test.run();
    test
}

fn plan(test: &Test, image: &str) -> serde_json::Value {
    serde_json::from_str(&test.read(&format!("staging/{ID}/.matriochka/{image}.json"))).unwrap()
}

#[test]
fn build_args_reach_the_plan_the_engine_and_the_content_id() {
    let test = staged(project(APP_ARGS));
    let app = plan(&test, "app");
    assert_eq!(
        app["build_args"],
        serde_json::json!({
            "CEPH_REF": "squid",
            "FROM_TAG": "ceph/app:test-squid-centos-stream9-x86_64".replace("app", "core"),
        })
    );
    assert_eq!(plan(&test, "core").get("build_args"), None);
    let sha = format!(
        "{:x}",
        Sha256::digest(test.read(&format!("staging/{ID}/.matriochka/app.json")))
    );
    let core = plan(&test, "core");
    let output = test
        .args(&[
            "image",
            "build",
            &format!("staging/{ID}"),
            "app",
            "--plan",
            &sha,
            "--dry-run",
        ])
        .any_stdout()
        .run();
    assert!(
        output.stdout.contains(
            " --build-arg CEPH_REF=squid --build-arg FROM_TAG=ceph/core:test-squid-centos-stream9-x86_64 --label "
        ),
        "{}",
        output.stdout
    );
    let without = staged(project(""));
    assert_eq!(plan(&without, "core")["content_id"], core["content_id"]);
    assert_ne!(plan(&without, "app")["content_id"], app["content_id"]);
}

#[test]
fn platform_args_apply_to_their_arch_only_and_plan_json_shows_them() {
    let output = project(APP_ARGS)
        .args(&[
            "plan",
            "--json",
            SQUID,
            "squid,aarch64,centos,9,quay.io,centos/centos,stream9",
        ])
        .any_stdout()
        .run();
    let plans: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(plans[0]["images"][0].get("build_args"), None);
    assert_eq!(
        plans[0]["images"][1]["build_args"],
        serde_json::json!({"CEPH_REF": "squid", "FROM_TAG": "ceph/core:test-squid-centos-stream9-x86_64"})
    );
    assert_eq!(
        plans[1]["images"][1]["build_args"],
        serde_json::json!({"CEPH_REF": "squid", "FROM_TAG": "ceph/core:test-squid-centos-stream9-aarch64", "PAGE_SIZE": "64k"})
    );
}

#[test]
fn bake_targets_carry_the_build_args() {
    let test = project(APP_ARGS).args(&["bake", SQUID]).any_stdout();
    test.run();
    let bake: serde_json::Value =
        serde_json::from_str(&test.read("staging/docker-bake.json")).unwrap();
    let targets = &bake["target"];
    assert_eq!(
        targets[format!("{ID}_app").replace('.', "_")]["args"],
        serde_json::json!({"CEPH_REF": "squid", "FROM_TAG": "ceph/core:test-squid-centos-stream9-x86_64"})
    );
    assert_eq!(targets[format!("{ID}_core")].get("args"), None);
}

#[test]
fn an_unknown_image_is_a_load_error_with_its_line() {
    project("\n[images.ap]\nbuild_args = { A = \"x\" }\n")
        .args(&["plan", SQUID])
        .stderr(
            "error: failed to load `flavors/matriochka.toml`: line 13: `images.ap` names an image \
             that is not in `layout.images`: did you mean `app`? known: core, app\n",
        )
        .status(1)
        .run();
}

#[test]
fn an_unknown_variable_is_a_load_error_with_its_line() {
    project("\n[images.core.build_args]\nA = \"{CEPH_VERSION}\"\nB = \"{CEPH_VERSON}\"\n")
        .args(&["plan", SQUID])
        .stderr(
            "error: failed to load `flavors/matriochka.toml`: line 15: `images.core.build_args.B` \
             pattern `{CEPH_VERSON}` names unknown variable `{CEPH_VERSON}`\n",
        )
        .status(1)
        .run();
}

#[test]
fn an_allowed_but_unset_variable_fails_the_flavor() {
    project("\n[images.core]\nbuild_args = { A = \"{OPT_X}\" }\n")
        .unset("OPT_X")
        .args(&["plan", SQUID])
        .stderr(&format!(
            "error: flavor `{SQUID}`: `images.core.build_args.A` names `{{OPT_X}}`, which is not set\n"
        ))
        .status(1)
        .run();
}

/// Issue 21: `FROM ${BASE}` with `ARG BASE` hid the parent: order, rebuilds and `graph` did not
/// see it. The global ARG's default and the image's build argument both name it now.
#[test]
fn a_from_naming_an_arg_has_its_parent() {
    let parents = |test: &Test| {
        test.read(&format!("staging/{ID}/flavor.mk"))
            .lines()
            .find(|line| line.starts_with(&format!("_M_PARENTS.{ID}.app")))
            .unwrap()
            .to_string()
    };
    let expected = format!("_M_PARENTS.{ID}.app := {ID}.core");
    // By the ARG's default.
    let test = staged(project("").write(
        "templates/rel/ALL/centos/9/app/Dockerfile",
        "ARG BASE=__ENV_[CORE_IMAGE]__\nFROM ${BASE}\n",
    ));
    assert_eq!(parents(&test), expected);
    // By the image's build argument, over another default.
    let test = staged(project(APP_ARGS).write(
        "templates/rel/ALL/centos/9/app/Dockerfile",
        "ARG FROM_TAG=quay.io/other:1\nFROM $FROM_TAG\n",
    ));
    assert_eq!(parents(&test), expected);
    let test = test.args(&["graph", SQUID]).any_stdout();
    let output = test.run();
    let edge = format!("  \"{ID}/core\" -> \"{ID}/app\";\n");
    assert!(output.stdout.contains(&edge), "{}", output.stdout);
    assert!(!output.stdout.contains("FROM_TAG"), "{}", output.stdout);
}

/// Issue 21: `check` says when a `FROM` names a variable without a value.
#[test]
fn check_names_a_from_it_cannot_resolve() {
    project("")
        .write(
            "templates/rel/ALL/centos/9/app/Dockerfile",
            "ARG BASE\nFROM ${BASE}\n",
        )
        .env("SHELLCHECK", "true")
        .args(&["check", SQUID])
        .stdout(&format!(
            "staging/{ID}/app/Dockerfile:2: `FROM ${{BASE}}` cannot be resolved: `BASE` is no global \
             `ARG` with a default or a build argument of the image, so its parent is not known (from \
             `templates/rel/ALL/centos/9/app/Dockerfile`)\n\
             checked 1 flavor (bash -n, shellcheck): 1 problem in 1 flavor\n"
        ))
        .status(1)
        .run();
}
