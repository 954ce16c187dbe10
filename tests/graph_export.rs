//! `matriochka graph` and `make graph`: the image graph as Graphviz and JSON, byte for byte, and
//! the parents and children of one image.

use std::process::Command;

use crate::common::{repo_make, Test};

const X86: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ARM: &str = "squid,aarch64,centos,9,quay.io,centos/centos,stream9";

const CONFIG: &str = r#"
[layout]
templates = "templates"
layers = ["src"]
images = ["core", "app", "tool"]
staging_dir = "staging/{CEPH_VERSION}{CEPH_POINT_RELEASE}-{DISTRO}-{DISTRO_VERSION}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{BASEOS_TAG}-{HOST_ARCH}"

[flavors]
default = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9"]
buildable = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9", "squid,aarch64,centos,9,quay.io,centos/centos,stream9"]
"#;

/// `app` is built from `core`; `tool` from busybox, copying from `core`; on two arches.
fn project() -> Test {
    Test::new()
        .write("flavors/matriochka.toml", CONFIG)
        .write("templates/src/core/Dockerfile", "FROM __ENV_[BASE_IMAGE]__\n")
        .write("templates/src/app/Dockerfile", "FROM __ENV_[CORE_IMAGE]__\n")
        .write(
            "templates/src/tool/Dockerfile",
            "FROM docker.io/library/busybox:1.36 AS tools\nFROM tools\nCOPY --from=__ENV_[CORE_IMAGE]__ /etc /core-etc\n",
        )
}

const DOT: &str = r#"digraph "matriochka" {
  node [shape="box"];
  subgraph "cluster_0" {
    label="squid-centos-9-x86_64";
    "squid-centos-9-x86_64/core" [label="core\nceph/core:test-squid-centos-stream9-x86_64"];
    "squid-centos-9-x86_64/app" [label="app\nceph/app:test-squid-centos-stream9-x86_64"];
    "squid-centos-9-x86_64/tool" [label="tool\nceph/tool:test-squid-centos-stream9-x86_64"];
  }
  subgraph "cluster_1" {
    label="squid-centos-9-aarch64";
    "squid-centos-9-aarch64/core" [label="core\nceph/core:test-squid-centos-stream9-aarch64"];
    "squid-centos-9-aarch64/app" [label="app\nceph/app:test-squid-centos-stream9-aarch64"];
    "squid-centos-9-aarch64/tool" [label="tool\nceph/tool:test-squid-centos-stream9-aarch64"];
  }
  "docker.io/library/busybox:1.36" [shape="ellipse", style="dashed"];
  "quay.io/centos/centos:stream9" [shape="ellipse", style="dashed"];
  "quay.io/centos/centos:stream9" -> "squid-centos-9-x86_64/core";
  "squid-centos-9-x86_64/core" -> "squid-centos-9-x86_64/app";
  "docker.io/library/busybox:1.36" -> "squid-centos-9-x86_64/tool";
  "squid-centos-9-x86_64/core" -> "squid-centos-9-x86_64/tool";
  "quay.io/centos/centos:stream9" -> "squid-centos-9-aarch64/core";
  "squid-centos-9-aarch64/core" -> "squid-centos-9-aarch64/app";
  "docker.io/library/busybox:1.36" -> "squid-centos-9-aarch64/tool";
  "squid-centos-9-aarch64/core" -> "squid-centos-9-aarch64/tool";
}
"#;

#[test]
fn graph_prints_graphviz_with_a_cluster_per_flavor() {
    project()
        .args(&["graph", X86, ARM])
        .stdout(DOT)
        .stderr("")
        .run();
    // `--dot` is the default; nothing is staged.
    let test = project()
        .args(&["graph", "--dot", X86, ARM])
        .stdout(DOT)
        .stderr("");
    test.run();
    assert!(!test.path().join("staging").exists());
}

#[test]
fn graph_prints_json() {
    project()
        .args(&["graph", "--json", X86])
        .stdout(
            r#"
            {
              "external": [
                "docker.io/library/busybox:1.36",
                "quay.io/centos/centos:stream9"
              ],
              "flavors": [
                {
                  "flavor": "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
                  "id": "squid-centos-9-x86_64",
                  "images": [
                    {
                      "external": [
                        "quay.io/centos/centos:stream9"
                      ],
                      "image": "core",
                      "name": "squid-centos-9-x86_64/core",
                      "parents": [],
                      "tag": "ceph/core:test-squid-centos-stream9-x86_64"
                    },
                    {
                      "external": [],
                      "image": "app",
                      "name": "squid-centos-9-x86_64/app",
                      "parents": [
                        "squid-centos-9-x86_64/core"
                      ],
                      "tag": "ceph/app:test-squid-centos-stream9-x86_64"
                    },
                    {
                      "external": [
                        "docker.io/library/busybox:1.36"
                      ],
                      "image": "tool",
                      "name": "squid-centos-9-x86_64/tool",
                      "parents": [
                        "squid-centos-9-x86_64/core"
                      ],
                      "tag": "ceph/tool:test-squid-centos-stream9-x86_64"
                    }
                  ]
                }
              ]
            }
            "#,
        )
        .stderr("")
        .run();
}

/// `matriochka graph ARGS` prints `stdout` and nothing on stderr.
#[track_caller]
fn graph_prints(args: &[&str], stdout: &str) {
    project()
        .args(&[&["graph"], args].concat())
        .stdout(stdout)
        .stderr("")
        .run();
}

#[test]
fn parents_of_an_image_in_one_flavor_or_in_every_flavor() {
    graph_prints(
        &["--parents", "squid-centos-9-aarch64/tool", X86, ARM],
        "
        squid-centos-9-aarch64/core
        docker.io/library/busybox:1.36
        ",
    );
    graph_prints(
        &["--parents", "app", X86, ARM],
        "
        squid-centos-9-x86_64/core
        squid-centos-9-aarch64/core
        ",
    );
    graph_prints(
        &["--json", "--parents", "core", X86, ARM],
        r#"
        [
          "quay.io/centos/centos:stream9"
        ]
        "#,
    );
}

#[test]
fn children_of_an_image_or_of_an_external_base() {
    graph_prints(
        &["--children", "squid-centos-9-x86_64/core", X86, ARM],
        "
        squid-centos-9-x86_64/app
        squid-centos-9-x86_64/tool
        ",
    );
    graph_prints(
        &["--children", "docker.io/library/busybox:1.36", X86, ARM],
        "
        squid-centos-9-x86_64/tool
        squid-centos-9-aarch64/tool
        ",
    );
    graph_prints(&["--children", "app", X86], "");
}

#[test]
fn an_unknown_image_is_a_one_line_error() {
    project()
        .args(&["graph", "--parents", "tol", X86])
        .stdout("")
        .stderr("error: unknown image `tol`: did you mean `tool`?\n")
        .status(1)
        .run();
    project()
        .args(&["graph", "--children", "daemon-base", X86])
        .stdout("")
        .stderr("error: unknown image `daemon-base`: name an image (`app`, `core`, `tool`) or `<flavor id>/<image>`\n")
        .status(1)
        .run();
}

#[test]
fn parents_and_children_are_exclusive() {
    let output = project()
        .args(&["graph", "--parents", "app", "--children", "core"])
        .command()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with(
            "error: the argument '--parents <IMAGE>' cannot be used with '--children <IMAGE>'\n"
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn has_dot() -> bool {
    let found = Command::new("dot").arg("-V").output().is_ok();
    assert!(
        found || std::env::var_os("CI").is_none(),
        "`dot` (graphviz) is not installed and CI is set"
    );
    if !found {
        println!("dot is not installed: the graph was not checked by Graphviz");
    }
    found
}

#[test]
fn graphviz_accepts_the_graph() {
    let test = project().args(&["graph", X86, ARM]).stdout(DOT).stderr("");
    test.run();
    if !has_dot() {
        return;
    }
    let test = test.write("graph.dot", DOT);
    let output = Command::new("dot")
        .args(["-Tsvg", "graph.dot"])
        .current_dir(test.path())
        .output()
        .unwrap();
    let svg = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One cluster per flavor, every node and edge drawn.
    assert_eq!(svg.matches("class=\"cluster\"").count(), 2, "{svg}");
    assert_eq!(svg.matches("class=\"node\"").count(), 8, "{svg}");
    assert_eq!(svg.matches("class=\"edge\"").count(), 8, "{svg}");
}

#[test]
fn make_graph_writes_the_dot_file_and_the_svg() {
    let test = project();
    let output = repo_make(&test)
        .arg("graph")
        .arg(format!("FLAVORS={X86} {ARM}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    test.expect_file("staging/graph.dot", DOT);
    let names: Vec<String> = std::fs::read_dir(test.path().join("staging"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("graph"))
        .collect();
    if has_dot() {
        assert_eq!(stdout, "wrote staging/graph.dot\nwrote staging/graph.svg\n");
        assert!(test.read("staging/graph.svg").contains("<svg"));
        let mut names = names;
        names.sort();
        assert_eq!(names, ["graph.dot", "graph.svg"]);
    } else {
        assert_eq!(
            stdout,
            "wrote staging/graph.dot\ndot is not installed: staging/graph.svg not written\n"
        );
        assert_eq!(names, ["graph.dot"]);
    }
}

/// Issue 21: `make graph` from a subdirectory wrote `sub/staging/graph.dot`, not the root's.
#[test]
fn make_graph_from_a_subdirectory_writes_at_the_root() {
    let test = project().write("sub/README", "");
    let output = repo_make(&test)
        .current_dir(test.path().join("sub"))
        .arg("graph")
        .arg(format!("FLAVORS={X86} {ARM}"))
        .output()
        .unwrap();
    let root = test.path().display().to_string();
    let stdout = String::from_utf8_lossy(&output.stdout).replace(&root, "<root>");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("wrote <root>/staging/graph.dot\n"),
        "{stdout}"
    );
    test.expect_file("staging/graph.dot", DOT);
    assert!(!test.path().join("sub/staging").exists());
}
