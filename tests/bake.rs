//! `matriochka bake` and `make bake`: the bake file itself, byte for byte, and what bake would
//! read from it. `docker buildx` is not needed: where it is installed, `docker buildx bake
//! --print` also reads the file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{buildx_bake_print, copy_from_core_project, path_with, repo_make, Test};

const X86: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ARM: &str = "squid,aarch64,centos,9,quay.io,centos/centos,stream9";

const CONFIG: &str = r#"
[layout]
templates = "templates"
layers = ["src"]
images = ["core", "app"]
staging_dir = "staging/{CEPH_VERSION}{CEPH_POINT_RELEASE}-{DISTRO}-{DISTRO_VERSION}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{BASEOS_TAG}-{HOST_ARCH}"

[flavors]
default = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9"]
buildable = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9", "squid,aarch64,centos,9,quay.io,centos/centos,stream9"]
"#;

/// Two images, `app` built from `core` (by `FROM` and `COPY --from=`), on two arches.
fn project() -> Test {
    copy_from_core_project(CONFIG)
}

const STAGED: &str = "
    staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed
    staged staging/squid-centos-9-aarch64: 8 written, 0 unchanged, 0 removed
    wrote staging/docker-bake.json: 4 targets of 2 flavors
";

const STAGED_X86: &str = "
    staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed
    wrote staging/docker-bake.json: 2 targets of 1 flavors
";

/// `test` after `matriochka bake <x86>`, which stages the flavor and writes its two targets.
#[track_caller]
fn baked_x86(test: Test) -> Test {
    let test = test.args(&["bake", X86]).stdout(STAGED_X86).stderr("");
    test.run();
    test
}

const GOLDEN: &str = r#"{
  "group": {
    "app": {
      "targets": [
        "squid-centos-9-x86_64_app",
        "squid-centos-9-aarch64_app"
      ]
    },
    "core": {
      "targets": [
        "squid-centos-9-x86_64_core",
        "squid-centos-9-aarch64_core"
      ]
    },
    "default": {
      "targets": [
        "squid-centos-9-x86_64_core",
        "squid-centos-9-x86_64_app",
        "squid-centos-9-aarch64_core",
        "squid-centos-9-aarch64_app"
      ]
    },
    "squid-centos-9-aarch64": {
      "targets": [
        "squid-centos-9-aarch64_core",
        "squid-centos-9-aarch64_app"
      ]
    },
    "squid-centos-9-x86_64": {
      "targets": [
        "squid-centos-9-x86_64_core",
        "squid-centos-9-x86_64_app"
      ]
    }
  },
  "target": {
    "squid-centos-9-aarch64_app": {
      "context": "staging/squid-centos-9-aarch64/app",
      "contexts": {
        "ceph/core:test-squid-centos-stream9-aarch64": "target:squid-centos-9-aarch64_core"
      },
      "dockerfile": "Dockerfile",
      "labels": {
        "io.matriochka.content-id": "sha256:e87fbbacd363544e15dbbcd04e073b871fd9f003d1bcb46a5240e0b71e6a34e1",
        "io.matriochka.context": "sha256:a0d7d590e553e0e40c798d76eed4f3bc196a07212196801aa32bf6312f84d583",
        "io.matriochka.flavor": "squid,aarch64,centos,9,quay.io,centos/centos,stream9",
        "io.matriochka.git-clean": "False",
        "org.opencontainers.image.created": "",
        "org.opencontainers.image.revision": "Unknown commit hash",
        "org.opencontainers.image.source": "Unknown repo",
        "org.opencontainers.image.title": "app",
        "org.opencontainers.image.version": "test"
      },
      "platforms": [
        "linux/arm64"
      ],
      "tags": [
        "ceph/app:test-squid-centos-stream9-aarch64"
      ]
    },
    "squid-centos-9-aarch64_core": {
      "context": "staging/squid-centos-9-aarch64/core",
      "dockerfile": "Dockerfile",
      "labels": {
        "io.matriochka.content-id": "sha256:5bf07571981ddd0589ce652a50a0a0b8e8b2859b3d631b94967c7426b7577a39",
        "io.matriochka.context": "sha256:80d1b28018aed3007cd4b883ce5c0ac7568c915a84064bf70d5c421d10985912",
        "io.matriochka.flavor": "squid,aarch64,centos,9,quay.io,centos/centos,stream9",
        "io.matriochka.git-clean": "False",
        "org.opencontainers.image.created": "",
        "org.opencontainers.image.revision": "Unknown commit hash",
        "org.opencontainers.image.source": "Unknown repo",
        "org.opencontainers.image.title": "core",
        "org.opencontainers.image.version": "test"
      },
      "platforms": [
        "linux/arm64"
      ],
      "tags": [
        "ceph/core:test-squid-centos-stream9-aarch64"
      ]
    },
    "squid-centos-9-x86_64_app": {
      "context": "staging/squid-centos-9-x86_64/app",
      "contexts": {
        "ceph/core:test-squid-centos-stream9-x86_64": "target:squid-centos-9-x86_64_core"
      },
      "dockerfile": "Dockerfile",
      "labels": {
        "io.matriochka.content-id": "sha256:f6d432ed8991bf63080aa27f5a3cf21c66742b57347b79f3bf89364b04dc454f",
        "io.matriochka.context": "sha256:9d1a43f134d671915e63463b994f58b7b8964902b943c9b3ef5a391476d750a7",
        "io.matriochka.flavor": "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
        "io.matriochka.git-clean": "False",
        "org.opencontainers.image.created": "",
        "org.opencontainers.image.revision": "Unknown commit hash",
        "org.opencontainers.image.source": "Unknown repo",
        "org.opencontainers.image.title": "app",
        "org.opencontainers.image.version": "test"
      },
      "platforms": [
        "linux/amd64"
      ],
      "tags": [
        "ceph/app:test-squid-centos-stream9-x86_64"
      ]
    },
    "squid-centos-9-x86_64_core": {
      "context": "staging/squid-centos-9-x86_64/core",
      "dockerfile": "Dockerfile",
      "labels": {
        "io.matriochka.content-id": "sha256:9d7ae0666f45c1079b9bab686d73e99ffe0abc7e194811571fbdfd9b1416588d",
        "io.matriochka.context": "sha256:80d1b28018aed3007cd4b883ce5c0ac7568c915a84064bf70d5c421d10985912",
        "io.matriochka.flavor": "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
        "io.matriochka.git-clean": "False",
        "org.opencontainers.image.created": "",
        "org.opencontainers.image.revision": "Unknown commit hash",
        "org.opencontainers.image.source": "Unknown repo",
        "org.opencontainers.image.title": "core",
        "org.opencontainers.image.version": "test"
      },
      "platforms": [
        "linux/amd64"
      ],
      "tags": [
        "ceph/core:test-squid-centos-stream9-x86_64"
      ]
    }
  }
}
"#;

fn bake(test: &Test) -> Value {
    serde_json::from_str(&test.read("staging/docker-bake.json")).unwrap()
}

fn targets(file: &Value) -> &serde_json::Map<String, Value> {
    file["target"].as_object().unwrap()
}

#[test]
fn bake_writes_the_golden_file_for_a_parent_child_chain_on_two_arches() {
    let test = project()
        .args(&["bake", X86, ARM])
        .stdout(STAGED)
        .stderr("");
    test.run();
    let text = test.read("staging/docker-bake.json");
    crate::common::assert_text(&text, GOLDEN, "staging/docker-bake.json");
    // Same input, same bytes: the second run leaves the file alone.
    let again = test
        .args(&["bake", X86, ARM])
        .stdout(
            "
            staged staging/squid-centos-9-x86_64: 0 written, 8 unchanged, 0 removed
            staged staging/squid-centos-9-aarch64: 0 written, 8 unchanged, 0 removed
            unchanged staging/docker-bake.json: 4 targets of 2 flavors
            ",
        )
        .stderr("");
    again.run();
    assert_eq!(again.read("staging/docker-bake.json"), text);
}

#[test]
fn every_contexts_key_is_the_parent_reference_in_the_childs_from() {
    let test = project()
        .args(&["bake", X86, ARM])
        .stdout(STAGED)
        .stderr("");
    test.run();
    let file = bake(&test);
    let mut wired = 0;
    for (name, target) in targets(&file) {
        let dockerfile = test.read(&format!(
            "{}/{}",
            target["context"].as_str().unwrap(),
            target["dockerfile"].as_str().unwrap()
        ));
        let references: Vec<&str> = dockerfile
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                match words.next()? {
                    "FROM" => words.next(),
                    "COPY" => words.next()?.strip_prefix("--from="),
                    _ => None,
                }
            })
            .collect();
        let Some(contexts) = target.get("contexts") else {
            assert!(name.ends_with("_core"), "{name} has no contexts");
            continue;
        };
        for (key, value) in contexts.as_object().unwrap() {
            assert!(
                references.contains(&key.as_str()),
                "{name}: `{key}` is not a reference of\n{dockerfile}"
            );
            let parent = value.as_str().unwrap().strip_prefix("target:").unwrap();
            let parent_tags = &targets(&file)[parent]["tags"];
            assert_eq!(parent_tags[0].as_str().unwrap(), key, "{name} -> {parent}");
            assert_eq!(
                targets(&file)[parent]["platforms"],
                target["platforms"],
                "{name} -> {parent}"
            );
            wired += 1;
        }
    }
    assert_eq!(wired, 2);
}

#[test]
fn every_target_context_exists_and_holds_its_dockerfile() {
    let test = project()
        .args(&["bake", X86, ARM])
        .stdout(STAGED)
        .stderr("");
    test.run();
    let file = bake(&test);
    assert_eq!(targets(&file).len(), 4);
    for (name, target) in targets(&file) {
        let context = test.path().join(target["context"].as_str().unwrap());
        assert!(context.is_dir(), "{name}: {}", context.display());
        let dockerfile = context.join(target["dockerfile"].as_str().unwrap());
        assert!(dockerfile.is_file(), "{name}: {}", dockerfile.display());
    }
}

#[test]
fn bake_cache_adds_a_registry_cache_per_target() {
    let test = baked_x86(project().env("BAKE_CACHE", "127.0.0.1:5000/ceph/cache"));
    let file = bake(&test);
    let app = &targets(&file)["squid-centos-9-x86_64_app"];
    assert_eq!(
        app["cache-from"],
        serde_json::json!([
            "type=registry,ref=127.0.0.1:5000/ceph/cache:squid-centos-9-x86_64_app"
        ])
    );
    assert_eq!(
        app["cache-to"],
        serde_json::json!([
            "type=registry,ref=127.0.0.1:5000/ceph/cache:squid-centos-9-x86_64_app,mode=max"
        ])
    );
}

#[test]
fn bad_bake_cache_fails_before_staging() {
    let test = project()
        .env("BAKE_CACHE", "Registry/cache,mode=min")
        .args(&["bake", X86])
        .stdout("")
        .stderr(
            "error: bad `BAKE_CACHE` `Registry/cache,mode=min`: bad name component `Registry`\n",
        )
        .status(1);
    test.run();
    assert!(!test.path().join("staging").exists());
}

#[test]
fn proxies_become_bake_variables_and_their_values_stay_out_of_the_file() {
    let test = baked_x86(
        project()
            .env("https_proxy", "http://user:secret@proxy:3128")
            .env("NO_PROXY", "localhost"),
    );
    let text = test.read("staging/docker-bake.json");
    assert!(!text.contains("secret"), "{text}");
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        file["variable"],
        serde_json::json!({"NO_PROXY": {"default": ""}, "https_proxy": {"default": ""}})
    );
    for target in targets(&file).values() {
        assert_eq!(
            target["args"],
            serde_json::json!({"NO_PROXY": "${NO_PROXY}", "https_proxy": "${https_proxy}"})
        );
    }
}

#[test]
fn interpolation_in_labels_is_escaped_for_bake() {
    let test = project();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .current_dir(test.path())
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&[
        "remote",
        "add",
        "origin",
        "https://example.com/${HOME}/%{x}.git",
    ]);
    let test = baked_x86(test);
    let file = bake(&test);
    let labels = &targets(&file)["squid-centos-9-x86_64_core"]["labels"];
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://example.com/$${HOME}/%%{x}.git"
    );
}

#[test]
fn an_image_named_like_a_group_is_an_error() {
    let test = Test::new()
        .write(
            "flavors/matriochka.toml",
            &CONFIG.replace(r#"images = ["core", "app"]"#, r#"images = ["default"]"#),
        )
        .write("templates/src/default/Dockerfile", "FROM __ENV_[BASE_IMAGE]__\n")
        .args(&["bake", X86])
        .stdout("staged staging/squid-centos-9-x86_64: 5 written, 0 unchanged, 0 removed\n")
        .stderr(
            "error: bake name `default` stands for both the group of every target and the image name `default`: rename one of them\n",
        )
        .status(1);
    test.run();
    assert!(!test.path().join("staging/docker-bake.json").exists());
}

/// A directory holding `script` as `docker`.
fn stub_docker(test: &Test, script: &str) -> PathBuf {
    let bin = test.path().join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("docker"), script).unwrap();
    std::fs::set_permissions(bin.join("docker"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// A directory holding a `docker` without buildx: it fails as docker does for an unknown command.
fn docker_without_buildx(test: &Test) -> PathBuf {
    stub_docker(
        test,
        "#!/bin/sh\necho \"docker: unknown command: docker $1\" >&2\nexit 1\n",
    )
}

/// A directory holding a `docker` with buildx that prints the arguments of `buildx bake`, one
/// per line.
fn docker_with_buildx(test: &Test) -> PathBuf {
    stub_docker(
        test,
        "#!/bin/sh\n[ \"$2\" = version ] && exit 0\n\
         echo \"relative paths: ${BUILDX_BAKE_FILE_RELATIVE_PATHS-unset}\"\n\
         for arg; do echo \"arg: $arg\"; done\n",
    )
}

/// `make -f <repo>/Makefile bake FLAVORS=<x86> ARGS` in the project, with `bin` first in PATH.
fn make_bake(test: &Test, bin: &Path, args: &[&str]) -> std::process::Output {
    repo_make(test)
        .env("PATH", path_with(bin))
        .env("BUILDX_BAKE_FILE_RELATIVE_PATHS", "1")
        .arg("bake")
        .arg(format!("FLAVORS={X86}"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn make_bake_without_buildx_fails_with_one_line() {
    let test = project();
    let bin = docker_without_buildx(&test);
    let output = make_bake(&test, &bin, &[]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = regex::Regex::new(
        r"^\S*Makefile:\d+: \*\*\* `docker buildx` is not installed: install the buildx plugin to run `make bake`\.  Stop\.\n$",
    )
    .unwrap();
    assert!(line.is_match(&stderr), "{stderr}");
    assert_eq!(output.status.code(), Some(2));
    // The check comes first: nothing was staged.
    assert!(!test.path().join("staging").exists());
}

#[test]
fn make_bake_passes_bake_args_as_data() {
    let test = project();
    let bin = docker_with_buildx(&test);
    let output = make_bake(
        &test,
        &bin,
        &["BAKE_ARGS=--push $(shell touch made) `touch shell` ; *"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let ran = stdout
        .lines()
        .skip_while(|line| !line.starts_with("relative paths:"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        ran,
        "relative paths: unset\narg: buildx\narg: bake\narg: --file\narg: staging/docker-bake.json\n\
         arg: --push\narg: $(shell\narg: touch\narg: made)\narg: `touch\narg: shell`\narg: ;\narg: *"
    );
    let before: Vec<&str> = stdout
        .lines()
        .take_while(|line| !line.starts_with("relative paths:"))
        .collect();
    let matriochka = assert_cmd::cargo::cargo_bin("matriochka");
    assert_eq!(
        before,
        [
            format!("BAKE_CACHE=\"$_M_BAKE_CACHE\" {} bake", matriochka.display()).as_str(),
            "staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed",
            "wrote staging/docker-bake.json: 2 targets of 1 flavors",
            "set -f; cd \"$_M_BAKE_DIR\" && env -u BUILDX_BAKE_FILE_RELATIVE_PATHS docker buildx bake --file \"$_M_BAKE_FILE\" $_M_BAKE_ARGS",
        ]
    );
    assert!(!test.path().join("made").exists());
    assert!(!test.path().join("shell").exists());
}

/// Issue 21: `make bake` from a subdirectory ran `docker buildx bake` where neither the bake file
/// nor the contexts it names (relative to the root) are.
#[test]
fn make_bake_from_a_subdirectory_runs_at_the_root() {
    let test = project().write("sub/README", "");
    let bin = stub_docker(
        &test,
        "#!/bin/sh\n[ \"$2\" = version ] && exit 0\necho \"cwd: $(pwd)\"\n\
         [ -f \"$4\" ] && echo \"bake file: $4\"\n",
    );
    let output = repo_make(&test)
        .current_dir(test.path().join("sub"))
        .env("PATH", path_with(&bin))
        .arg("bake")
        .arg(format!("FLAVORS={X86}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let root = test.path().canonicalize().unwrap();
    assert!(
        stdout.ends_with(&format!(
            "cwd: {}\nbake file: staging/docker-bake.json\n",
            root.display()
        )),
        "{stdout}"
    );
    assert!(!test.path().join("sub/staging").exists());
}

#[test]
fn make_bake_passes_bake_cache_as_data() {
    let test = project();
    let bin = docker_with_buildx(&test);
    let output = make_bake(&test, &bin, &["BAKE_CACHE=$(shell touch made)"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().next(),
        Some("error: bad `BAKE_CACHE` `$(shell touch made)`: bad name component `$(shell touch made)`"),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!test.path().join("made").exists());
    let output = make_bake(&test, &bin, &["BAKE_CACHE=127.0.0.1:5000/cache"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(test
        .read("staging/docker-bake.json")
        .contains("type=registry,ref=127.0.0.1:5000/cache:squid-centos-9-x86_64_core,mode=max"));
}

#[test]
fn docker_buildx_bake_print_reads_the_same_targets() {
    let test = project()
        .args(&["bake", X86, ARM])
        .stdout(STAGED)
        .stderr("");
    test.run();
    let Some(printed) = buildx_bake_print(&test, "checked the bake file only") else {
        return;
    };
    let file = bake(&test);
    let names = |value: &Value| -> Vec<String> { targets(value).keys().cloned().collect() };
    assert_eq!(names(&printed), names(&file));
    for (name, target) in targets(&file) {
        let got = &targets(&printed)[name];
        for key in ["tags", "platforms", "labels", "contexts"] {
            assert_eq!(got.get(key), target.get(key), "{name}.{key}");
        }
    }
}
