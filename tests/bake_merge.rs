//! `matriochka bake --merge-arches`: one target per image of each manifest group, its arches as
//! `platforms`, the per-arch labels as per-platform manifest annotations; refused with one line
//! when the arches' contexts differ.

use serde_json::Value;

use crate::common::{buildx_bake_print, copy_from_core_project, Test};

const X86: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ARM: &str = "squid,aarch64,centos,9,quay.io,centos/centos,stream9";

const CONFIG: &str = r#"
[layout]
templates = "templates"
layers = ["src"]
images = ["core", "app"]
staging_dir = "staging/{CEPH_VERSION}-{DISTRO}-{DISTRO_VERSION}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{BASEOS_TAG}-{HOST_ARCH}"
manifest_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{BASEOS_TAG}"

[flavors]
default = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9"]
buildable = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9", "squid,aarch64,centos,9,quay.io,centos/centos,stream9"]
"#;

/// `app` built from `core` (by `FROM` and `COPY --from=`, each naming core's per-arch tag).
fn project() -> Test {
    copy_from_core_project(CONFIG)
}

const STAGED: &str = "
    staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed
    staged staging/squid-centos-9-aarch64: 8 written, 0 unchanged, 0 removed
    wrote staging/docker-bake.json: 2 targets of 2 flavors
";

const GOLDEN: &str = r#"{
  "group": {
    "app": {
      "targets": [
        "ceph_app_test-squid-centos-stream9"
      ]
    },
    "core": {
      "targets": [
        "ceph_core_test-squid-centos-stream9"
      ]
    },
    "default": {
      "targets": [
        "ceph_core_test-squid-centos-stream9",
        "ceph_app_test-squid-centos-stream9"
      ]
    },
    "test-squid-centos-stream9": {
      "targets": [
        "ceph_core_test-squid-centos-stream9",
        "ceph_app_test-squid-centos-stream9"
      ]
    }
  },
  "target": {
    "ceph_app_test-squid-centos-stream9": {
      "annotations": [
        "manifest[linux/amd64]:io.matriochka.content-id=sha256:f6d432ed8991bf63080aa27f5a3cf21c66742b57347b79f3bf89364b04dc454f",
        "manifest[linux/amd64]:io.matriochka.context=sha256:9d1a43f134d671915e63463b994f58b7b8964902b943c9b3ef5a391476d750a7",
        "manifest[linux/amd64]:io.matriochka.flavor=squid,x86_64,centos,9,quay.io,centos/centos,stream9",
        "manifest[linux/arm64]:io.matriochka.content-id=sha256:e87fbbacd363544e15dbbcd04e073b871fd9f003d1bcb46a5240e0b71e6a34e1",
        "manifest[linux/arm64]:io.matriochka.context=sha256:a0d7d590e553e0e40c798d76eed4f3bc196a07212196801aa32bf6312f84d583",
        "manifest[linux/arm64]:io.matriochka.flavor=squid,aarch64,centos,9,quay.io,centos/centos,stream9"
      ],
      "context": "staging/squid-centos-9-x86_64/app",
      "contexts": {
        "ceph/core:test-squid-centos-stream9-x86_64": "target:ceph_core_test-squid-centos-stream9"
      },
      "dockerfile": "Dockerfile",
      "labels": {
        "io.matriochka.git-clean": "False",
        "org.opencontainers.image.created": "",
        "org.opencontainers.image.revision": "Unknown commit hash",
        "org.opencontainers.image.source": "Unknown repo",
        "org.opencontainers.image.title": "app",
        "org.opencontainers.image.version": "test"
      },
      "platforms": [
        "linux/amd64",
        "linux/arm64"
      ],
      "tags": [
        "ceph/app:test-squid-centos-stream9"
      ]
    },
    "ceph_core_test-squid-centos-stream9": {
      "annotations": [
        "manifest[linux/amd64]:io.matriochka.content-id=sha256:9d7ae0666f45c1079b9bab686d73e99ffe0abc7e194811571fbdfd9b1416588d",
        "manifest[linux/amd64]:io.matriochka.flavor=squid,x86_64,centos,9,quay.io,centos/centos,stream9",
        "manifest[linux/arm64]:io.matriochka.content-id=sha256:5bf07571981ddd0589ce652a50a0a0b8e8b2859b3d631b94967c7426b7577a39",
        "manifest[linux/arm64]:io.matriochka.flavor=squid,aarch64,centos,9,quay.io,centos/centos,stream9"
      ],
      "context": "staging/squid-centos-9-x86_64/core",
      "dockerfile": "Dockerfile",
      "labels": {
        "io.matriochka.context": "sha256:80d1b28018aed3007cd4b883ce5c0ac7568c915a84064bf70d5c421d10985912",
        "io.matriochka.git-clean": "False",
        "org.opencontainers.image.created": "",
        "org.opencontainers.image.revision": "Unknown commit hash",
        "org.opencontainers.image.source": "Unknown repo",
        "org.opencontainers.image.title": "core",
        "org.opencontainers.image.version": "test"
      },
      "platforms": [
        "linux/amd64",
        "linux/arm64"
      ],
      "tags": [
        "ceph/core:test-squid-centos-stream9"
      ]
    }
  }
}
"#;

#[test]
fn merge_arches_writes_the_golden_file_for_a_parent_child_chain_on_two_arches() {
    let test = project()
        .args(&["bake", "--merge-arches", X86, ARM])
        .stdout(STAGED);
    test.run();
    let text = test.read("staging/docker-bake.json");
    crate::common::assert_text(&text, GOLDEN, "staging/docker-bake.json");
    let file: Value = serde_json::from_str(&text).unwrap();
    // The child's context names core by the x86_64 tag; bake resolves it to the merged target,
    // for each platform.
    let from = test.read("staging/squid-centos-9-x86_64/app/Dockerfile");
    assert!(from.starts_with("FROM ceph/core:test-squid-centos-stream9-x86_64\n"));
    assert_eq!(
        file["target"]["ceph_app_test-squid-centos-stream9"]["contexts"]
            ["ceph/core:test-squid-centos-stream9-x86_64"],
        "target:ceph_core_test-squid-centos-stream9"
    );
}

const STAGED_ONLY: &str = "
    staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed
    staged staging/squid-centos-9-aarch64: 8 written, 0 unchanged, 0 removed
";

#[test]
fn merge_arches_refuses_a_file_that_differs_by_arch() {
    let test = project()
        .write("templates/src/core/arch.txt", "__ENV_[HOST_ARCH]__\n")
        .args(&["bake", "--merge-arches", X86, ARM])
        .stdout(&STAGED_ONLY.replace("8 written", "9 written"))
        .stderr("error: cannot merge the arches of image `core`: its contexts in `staging/squid-centos-9-x86_64` and `staging/squid-centos-9-aarch64` differ: `arch.txt` differs\n")
        .status(1);
    test.run();
    assert!(!test.path().join("staging/docker-bake.json").exists());
}

#[test]
fn merge_arches_refuses_a_from_that_names_an_arch_specific_base() {
    let test = project()
        .write(
            "templates/src/core/Dockerfile",
            "FROM quay.io/ceph/base:__ENV_[HOST_ARCH]__\nRUN true\n",
        )
        .args(&["bake", "--merge-arches", X86, ARM])
        .stdout(STAGED_ONLY)
        .stderr("error: cannot merge the arches of image `core`: its contexts in `staging/squid-centos-9-x86_64` and `staging/squid-centos-9-aarch64` differ: `Dockerfile` line 1 is `FROM quay.io/ceph/base:x86_64` and `FROM quay.io/ceph/base:aarch64` (only the tags of the flavor's own images may differ by arch)\n")
        .status(1);
    test.run();
}

#[test]
fn merge_arches_without_manifest_tag_fails_before_staging() {
    let test = Test::new()
        .write(
            "flavors/matriochka.toml",
            &CONFIG.replace("manifest_tag = \"{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{BASEOS_TAG}\"\n", ""),
        )
        .write("templates/src/core/Dockerfile", "FROM scratch\n")
        .write("templates/src/app/Dockerfile", "FROM scratch\n")
        .args(&["bake", "--merge-arches", X86])
        .stderr("error: `layout.manifest_tag` is not set in `flavors/matriochka.toml`: add the tag of the manifest lists, e.g. `manifest_tag = \"{IMAGE}:{RELEASE}-{CEPH_VERSION}\"`\n")
        .status(1);
    test.run();
    assert!(!test.path().join("staging").exists());
}

#[test]
fn without_merge_arches_the_manifest_tag_changes_nothing() {
    let test = project()
        .args(&["bake", X86, ARM])
        .stdout(&STAGED.replace("2 targets", "4 targets"));
    test.run();
    let file: Value = serde_json::from_str(&test.read("staging/docker-bake.json")).unwrap();
    let names: Vec<&String> = file["target"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "squid-centos-9-aarch64_app",
            "squid-centos-9-aarch64_core",
            "squid-centos-9-x86_64_app",
            "squid-centos-9-x86_64_core"
        ]
    );
}

#[test]
fn make_bake_merge_arches_writes_the_merged_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let test = project();
    let bin = test.path().join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A docker with buildx that runs nothing.
    std::fs::write(bin.join("docker"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = crate::common::repo_make(&test)
        .env("PATH", crate::common::path_with(&bin))
        .args([
            "bake",
            &format!("FLAVORS={X86} {ARM}"),
            "BAKE_MERGE_ARCHES=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(" bake --merge-arches\n"), "{stdout}");
    crate::common::assert_text(
        &test.read("staging/docker-bake.json"),
        GOLDEN,
        "staging/docker-bake.json",
    );
}

#[test]
fn docker_buildx_bake_print_reads_the_merged_targets() {
    let test = project()
        .args(&["bake", "--merge-arches", X86, ARM])
        .stdout(STAGED);
    test.run();
    let Some(printed) = buildx_bake_print(&test, "checked the merged bake file only") else {
        return;
    };
    let file: Value = serde_json::from_str(GOLDEN).unwrap();
    let targets = |value: &Value| value["target"].as_object().unwrap().clone();
    assert_eq!(
        targets(&printed).keys().collect::<Vec<_>>(),
        targets(&file).keys().collect::<Vec<_>>()
    );
    for (name, target) in targets(&file) {
        let got = &targets(&printed)[&name];
        for key in ["tags", "platforms", "labels", "contexts", "annotations"] {
            assert_eq!(got.get(key), target.get(key), "{name}.{key}");
        }
    }
}
