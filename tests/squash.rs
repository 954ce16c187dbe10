//! `SQUASH=1`: `--squash` on every build; docker without an experimental daemon fails with one
//! line before any build (`check-arches`, which make runs first, and `image build` itself).

use sha2::{Digest, Sha256};

use crate::common::Test;

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ID: &str = "squid-centos-9-x86_64";

/// A docker stand-in: `info` prints `$STUB_EXPERIMENTAL`; anything else is logged to `calls`.
const STUB_DOCKER: &str = r#"#!/bin/sh
if [ "$1" = info ]; then printf '%s\n' "$STUB_EXPERIMENTAL"; exit 0; fi
echo "$@" >> calls
"#;

const NO_SQUASH: &str = "error: SQUASH=1 needs docker's experimental daemon (ExperimentalBuild is `false`): set `\"experimental\": true` in /etc/docker/daemon.json and restart docker, or use podman\n";

fn staged() -> Test {
    let test = Test::with_config()
        .write(
            "templates/rel/ALL/centos/9/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n",
        )
        .write(
            "templates/rel/ALL/centos/9/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .write("templates/rel/squid/centos/.keep", "")
        .write_bytes("docker", STUB_DOCKER.as_bytes(), 0o755)
        .env("RELEASE", "test")
        .env("SQUASH", "1")
        .args(&["stage", SQUID])
        .stdout(&format!(
            "staged staging/{ID}: 10 written, 0 unchanged, 0 removed\n"
        ));
    test.run();
    test
}

fn build_args(test: &Test, dry_run: bool) -> Vec<String> {
    let plan = test.read(&format!("staging/{ID}/.matriochka/core.json"));
    let sha = format!("{:x}", Sha256::digest(plan.as_bytes()));
    let mut args = vec![
        "image".to_string(),
        "build".into(),
        format!("staging/{ID}"),
        "core".into(),
        "--plan".into(),
        sha,
    ];
    if dry_run {
        args.push("--dry-run".into());
    }
    args
}

#[test]
fn squash_adds_the_option_to_every_build() {
    let test = staged().env("CONTAINER_ENGINE", "podman");
    let args = build_args(&test, true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let test = test.args(&args).any_stdout();
    let output = test.run();
    assert!(
        output.stdout.starts_with(&format!(
            "podman build --platform linux/amd64 -t ceph/core:test-squid-centos-stream9-x86_64 --file staging/{ID}/core/Dockerfile --pull=missing --squash --label "
        )),
        "{}",
        output.stdout
    );
    let test = test
        .env("SQUASH", "yes")
        .args(&args)
        .stderr("error: SQUASH `yes` is not 0 or 1\n")
        .status(1);
    test.run();
}

#[test]
fn docker_without_an_experimental_daemon_fails_before_any_build() {
    let test = staged()
        .env("CONTAINER_ENGINE", "./docker")
        .env("STUB_EXPERIMENTAL", "false")
        .args(&["check-arches", SQUID])
        .stderr(NO_SQUASH)
        .status(1);
    test.run();
    let args = build_args(&test, false);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let test = test.args(&args).stderr(NO_SQUASH).status(1);
    test.run();
    assert!(!test.path().join("calls").exists(), "no build ran");
    let test = test
        .env("STUB_EXPERIMENTAL", "true")
        .args(&["check-arches", SQUID])
        .stderr("")
        .status(0);
    test.run();
    let test = test
        .env("STUB_EXPERIMENTAL", "true")
        .env("SQUASH", "0")
        .args(&args)
        .any_stdout()
        .stderr("")
        .status(0);
    test.run();
    assert!(
        !test.read("calls").contains("--squash"),
        "{}",
        test.read("calls")
    );
}
