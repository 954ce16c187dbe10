//! Image names as each engine lists them: docker drops `docker.io/` and `docker.io/library/`,
//! podman adds `localhost/`. The generated fragments must find an image under either form, or
//! every `make build` rebuilds it.

use std::os::unix::fs::PermissionsExt as _;

use crate::common::{repo_make, two_image_project, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ID: &str = "squid-centos-9-x86_64";

/// A project whose engine is a script named `docker` (or `podman`) that lists `listing` for
/// `images` and fails on anything else.
fn project(engine: &str, listing: &str) -> Test {
    let test = two_image_project().write("listing", listing);
    let script = test.path().join("bin").join(engine);
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = images ] && exec cat '{}'\nexit 3\n",
            test.path().join("listing").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    test
}

/// `make -f <repo>/Makefile ARGS` in the project, the stub as CONTAINER_ENGINE.
#[track_caller]
fn make(test: &Test, engine: &str, args: &[&str]) -> String {
    let output = repo_make(test)
        .arg(format!(
            "CONTAINER_ENGINE={}",
            test.path().join("bin").join(engine).display()
        ))
        .arg(format!("FLAVORS={SQUID}"))
        .args(args)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    text
}

/// The images `make -n build` would build, after a stage and with both stamps up to date.
#[track_caller]
fn rebuilt(test: &Test, engine: &str, args: &[&str]) -> Vec<String> {
    make(test, engine, &[&["stage"], args].concat());
    for image in ["core", "app"] {
        let stamp = test.path().join(format!("staging/.stamps/{ID}/{image}"));
        std::fs::create_dir_all(stamp.parent().unwrap()).unwrap();
        std::fs::write(&stamp, "").unwrap();
    }
    let out = make(test, engine, &[&["-n", "build"], args].concat());
    let pattern = regex::Regex::new(r" build --platform \S+ -t (\S+)").unwrap();
    out.lines()
        .filter_map(|line| pattern.captures(line).map(|found| found[1].to_string()))
        .collect()
}

#[test]
fn docker_lists_docker_io_images_without_their_registry() {
    let listing = "ceph/core:test-squid-centos-stream9-x86_64\n\
                   ceph/app:test-squid-centos-stream9-x86_64\n\
                   <none>:<none>\n";
    let test = project("docker", listing);
    assert_eq!(
        rebuilt(&test, "docker", &["TAG_REGISTRY=docker.io/ceph"]),
        Vec::<String>::new()
    );
}

#[test]
fn docker_lists_library_images_by_their_name_only() {
    let listing = "core:test-squid-centos-stream9-x86_64\n";
    let test = project("docker", listing);
    assert_eq!(
        rebuilt(&test, "docker", &["TAG_REGISTRY=docker.io/library"]),
        ["docker.io/library/app:test-squid-centos-stream9-x86_64"]
    );
}

#[test]
fn podman_lists_images_without_registry_under_localhost() {
    let listing = "localhost/ceph/core:test-squid-centos-stream9-x86_64\n\
                   localhost/ceph/app:test-squid-centos-stream9-x86_64\n";
    let test = project("podman", listing);
    assert_eq!(rebuilt(&test, "podman", &[]), Vec::<String>::new());
}

#[test]
fn an_image_missing_from_the_listing_is_rebuilt() {
    let listing = "ceph/app:test-squid-centos-stream9-x86_64\n\
                   quay.io/ceph/core:test-squid-centos-stream9-x86_64\n";
    let test = project("docker", listing);
    // As a build would: the parent's build touches its stamp, so its child is rebuilt too.
    assert_eq!(
        rebuilt(&test, "docker", &[]),
        [
            "ceph/core:test-squid-centos-stream9-x86_64",
            "ceph/app:test-squid-centos-stream9-x86_64"
        ]
    );
}
