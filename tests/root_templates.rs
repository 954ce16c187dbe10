//! Templates at the repository root (`templates = "."`), laid out like ceph-container: layers at
//! the top (`src/`, `ceph-releases/ALL/…`, `ceph-releases/<release>/…`) beside a `Makefile`,
//! `maint-lib/` and the `staging/` and `flavors/` directories, which are never layer content.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::common::{
    modified_json as json, modified_json_array as json_list, texts, GitHome, Test,
};

const CONFIG: &str = r#"
[layout]
templates = "."
layers = [
  "src",
  "ceph-releases/ALL",
  "ceph-releases/ALL/{DISTRO}",
  "ceph-releases/ALL/{DISTRO}/{DISTRO_VERSION}",
  "ceph-releases/{CEPH_VERSION}",
  "ceph-releases/{CEPH_VERSION}/{DISTRO}",
]
images = ["daemon-base", "daemon"]
staging_dir = "staging/{CEPH_VERSION}-{DISTRO}-{DISTRO_VERSION}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{HOST_ARCH}"

[flavors]
default = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9"]
buildable = [
  "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
  "reef,x86_64,centos,9,quay.io,centos/centos,stream9",
  "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04",
]

[modified]
always = ["flavors/**", "Makefile", "maint-lib/**"]
"#;

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const REEF: &str = "reef,x86_64,centos,9,quay.io,centos/centos,stream9";
const UBUNTU: &str = "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04";
const SQUID_DIR: &str = "staging/squid-centos-9-x86_64";

/// ceph-container's shape: (path, text, mode).
const FILES: &[(&str, &str, u32)] = &[
    ("Makefile", "build:\n\tmatriochka stage\n", 0o644),
    ("README.md", "# images\n", 0o644),
    (".gitignore", "/staging/\n", 0o644),
    ("maint-lib/ceph_version.sh", "#!/bin/sh\n", 0o755),
    ("src/__DOCKERFILE_MAINTAINER__", "LABEL maintainer=ceph", 0o644),
    ("src/daemon/entrypoint.sh", "#!/bin/sh\nexec \"$@\"\n", 0o755),
    (
        "ceph-releases/ALL/daemon-base/Dockerfile",
        "FROM __ENV_[BASE_IMAGE]__\n__DOCKERFILE_MAINTAINER__\nRUN __DOCKERFILE_INSTALL__ __CEPH_REPO__\n",
        0o644,
    ),
    (
        "ceph-releases/ALL/daemon/Dockerfile",
        "FROM __ENV_[DAEMON_BASE_IMAGE]__\nCOPY entrypoint.sh /\n",
        0o644,
    ),
    ("ceph-releases/ALL/__CEPH_REPO__", "default", 0o644),
    (
        "ceph-releases/ALL/centos/__DOCKERFILE_INSTALL__",
        "dnf install -y",
        0o644,
    ),
    (
        "ceph-releases/ALL/ubuntu/__DOCKERFILE_INSTALL__",
        "apt-get install -y -t __CODENAME__",
        0o644,
    ),
    ("ceph-releases/ALL/ubuntu/22.04/__CODENAME__", "jammy", 0o644),
    ("ceph-releases/squid/__CEPH_REPO__", "rpm-squid", 0o644),
    ("ceph-releases/reef/__CEPH_REPO__", "rpm-reef", 0o644),
    (
        "ceph-releases/squid/centos/daemon/extra.conf",
        "extra\n",
        0o644,
    ),
];

/// The fixture committed on `main` in a git repository, with `feature` checked out. Git's home
/// is outside the project, so that nothing but the fixture lies in the templates tree.
struct Repo {
    test: Test,
    home: GitHome,
}

impl Repo {
    fn new() -> Repo {
        let home = GitHome::new();
        let mut test = Test::new()
            .git_home(&home)
            .write("flavors/matriochka.toml", CONFIG);
        for (path, text, mode) in FILES {
            test = test.write_bytes(path, text.as_bytes(), *mode);
        }
        let repo = Repo { test, home };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.commit("fork point");
        repo.git(&["checkout", "-q", "-b", "feature"]);
        repo
    }

    fn write(self, path: &str, text: &str) -> Repo {
        let Repo { test, home } = self;
        Repo {
            test: test.write(path, text),
            home,
        }
    }

    #[track_caller]
    fn git(&self, args: &[&str]) -> String {
        self.home.git(self.test.path(), args)
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Runs matriochka and checks stdout, stderr and the exit code.
    #[track_caller]
    fn check(self, args: &[&str], stdout: &str, stderr: &str, code: i32) -> Repo {
        let Repo { test, home } = self;
        let test = test.args(args).stdout(stdout).stderr(stderr).status(code);
        test.run();
        Repo { test, home }
    }

    /// `modified --vs main` and `modified --vs main --by-path` with `--json`.
    #[track_caller]
    fn modified(self, exact: &str, by_path: &str) -> Repo {
        self.check(&["modified", "--vs", "main", "--json"], exact, "", 0)
            .check(
                &["modified", "--vs", "main", "--json", "--by-path"],
                by_path,
                "",
                0,
            )
    }
}

/// A flavor, its id and its images a change reaches in exact mode.
type Reached<'a> = (&'a str, &'a str, &'a [&'a str]);

const BOTH: &[&str] = &["daemon-base", "daemon"];
const DAEMON: &[&str] = &["daemon"];

#[test]
fn stage_plan_and_show_with_the_templates_at_the_root() {
    let repo = Repo::new().check(
        &["stage"],
        "staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n",
        "",
        0,
    );
    assert_eq!(
        repo.test.texts(SQUID_DIR),
        texts(&[
            (
                "daemon-base/Dockerfile",
                "FROM quay.io/centos/centos:stream9\nLABEL maintainer=ceph\nRUN dnf install -y rpm-squid\n"
            ),
            (
                "daemon/Dockerfile",
                "FROM ceph/daemon-base:test-squid-centos-x86_64\nCOPY entrypoint.sh /\n"
            ),
            ("daemon/entrypoint.sh", "#!/bin/sh\nexec \"$@\"\n"),
            ("daemon/extra.conf", "extra\n"),
        ])
    );
    repo.test.expect_file(
        &format!("{SQUID_DIR}/files-sources"),
        "
        # files of squid,x86_64,centos,9,quay.io,centos/centos,stream9 and the template each one comes from; `*` marks a source modified in git,
        # indented lines are the fragments a file used
        daemon-base/Dockerfile <- ceph-releases/ALL/daemon-base/Dockerfile
            __CEPH_REPO__ <- ceph-releases/squid/__CEPH_REPO__
            __DOCKERFILE_INSTALL__ <- ceph-releases/ALL/centos/__DOCKERFILE_INSTALL__
            __DOCKERFILE_MAINTAINER__ <- src/__DOCKERFILE_MAINTAINER__
        daemon/Dockerfile <- ceph-releases/ALL/daemon/Dockerfile
        daemon/entrypoint.sh <- src/daemon/entrypoint.sh
        daemon/extra.conf <- ceph-releases/squid/centos/daemon/extra.conf
        ",
    );
    let commit = repo.git(&["rev-parse", "HEAD"]);
    repo.check(
        &["stage", UBUNTU],
        "staged staging/squid-ubuntu-22.04-x86_64: 9 written, 0 unchanged, 0 removed\n",
        "",
        0,
    )
    .check(
        &["plan", REEF],
        "reef-centos-9-x86_64 daemon-base ceph/daemon-base:test-reef-centos-x86_64 staging/reef-centos-9-x86_64/daemon-base\n\
         reef-centos-9-x86_64 daemon ceph/daemon:test-reef-centos-x86_64 staging/reef-centos-9-x86_64/daemon\n",
        "",
        0,
    )
    .check(&["show", "flavors"], &format!("{SQUID}\n{REEF}\n{UBUNTU}\n"), "", 0)
    .check(&["show", "default"], &format!("{SQUID}\n"), "", 0)
    .check(
        &["show", "vars", REEF],
        &format!(
            "BASEOS_REGISTRY=quay.io
BASEOS_REPO=centos/centos
BASEOS_TAG=stream9
BASE_IMAGE=quay.io/centos/centos:stream9
CEPH_POINT_RELEASE=
CEPH_POINT_RELEASE_TAG=
CEPH_VERSION=reef
DAEMON_BASE_IMAGE=ceph/daemon-base:test-reef-centos-x86_64
DAEMON_IMAGE=ceph/daemon:test-reef-centos-x86_64
DISTRO=centos
DISTRO_VERSION=9
GIT_BRANCH=feature
GIT_CLEAN=True
GIT_COMMIT={}
GIT_REPO=Unknown repo
GO_ARCH=amd64
HOST_ARCH=x86_64
IMAGES_TO_BUILD=daemon-base daemon
RELEASE=test
STAGING_DIR=staging/reef-centos-9-x86_64
TAG_REGISTRY=ceph
",
            commit.trim()
        ),
        "",
        0,
    );
}

#[test]
fn the_fast_path_with_the_templates_at_the_root() {
    let repo = Repo::new();
    // Templates changed within a second of a run are not recorded.
    std::thread::sleep(Duration::from_millis(1100));
    let repo = repo.check(
        &["stage", SQUID],
        "staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n",
        "",
        0,
    );
    let manifest = repo
        .test
        .path()
        .join(SQUID_DIR)
        .join(".matriochka/manifest");
    let inode = std::fs::metadata(&manifest).unwrap().ino();
    let no_op = "staged staging/squid-centos-9-x86_64: 0 written, 10 unchanged, 0 removed\n";
    let repo = repo.check(&["stage", SQUID], no_op, "", 0);
    assert_eq!(
        std::fs::metadata(&manifest).unwrap().ino(),
        inode,
        "the manifest was trusted, not rewritten"
    );
    // Another flavor staged beside it, inside the templates tree, changes nothing of it.
    let repo = repo
        .check(
            &["stage", REEF],
            "staged staging/reef-centos-9-x86_64: 9 written, 0 unchanged, 0 removed\n",
            "",
            0,
        )
        .check(&["stage", SQUID], no_op, "", 0);
    assert_eq!(std::fs::metadata(&manifest).unwrap().ino(), inode);
    let repo = repo.write("src/daemon/entrypoint.sh", "#!/bin/sh\nexec tini \"$@\"\n");
    repo.check(
        &["stage", SQUID],
        "staged staging/squid-centos-9-x86_64: 6 written, 4 unchanged, 0 removed\n",
        "",
        0,
    );
}

#[test]
fn a_change_in_every_kind_of_root_layer_in_both_modified_modes() {
    let cases: &[(&str, &[Reached], &[&str])] = &[
        (
            "src/daemon/entrypoint.sh",
            &[
                (SQUID, "squid-centos-9-x86_64", DAEMON),
                (REEF, "reef-centos-9-x86_64", DAEMON),
                (UBUNTU, "squid-ubuntu-22.04-x86_64", DAEMON),
            ],
            DAEMON,
        ),
        (
            "src/__DOCKERFILE_MAINTAINER__",
            &[
                (SQUID, "squid-centos-9-x86_64", BOTH),
                (REEF, "reef-centos-9-x86_64", BOTH),
                (UBUNTU, "squid-ubuntu-22.04-x86_64", BOTH),
            ],
            BOTH,
        ),
        (
            "ceph-releases/ALL/centos/__DOCKERFILE_INSTALL__",
            &[
                (SQUID, "squid-centos-9-x86_64", BOTH),
                (REEF, "reef-centos-9-x86_64", BOTH),
            ],
            BOTH,
        ),
        (
            "ceph-releases/ALL/ubuntu/22.04/__CODENAME__",
            &[(UBUNTU, "squid-ubuntu-22.04-x86_64", BOTH)],
            BOTH,
        ),
        (
            "ceph-releases/reef/__CEPH_REPO__",
            &[(REEF, "reef-centos-9-x86_64", BOTH)],
            BOTH,
        ),
        (
            "ceph-releases/squid/centos/daemon/extra.conf",
            &[(SQUID, "squid-centos-9-x86_64", DAEMON)],
            DAEMON,
        ),
    ];
    for (path, flavors, by_path_images) in cases {
        let exact: Vec<String> = flavors
            .iter()
            .map(|(flavor, id, images)| json(flavor, id, images, &[path]))
            .collect();
        let by_path: Vec<String> = flavors
            .iter()
            .map(|(flavor, id, _)| json(flavor, id, by_path_images, &[path]))
            .collect();
        // Committed on the feature branch, and only in the working tree.
        let repo = Repo::new().write(path, "changed\n");
        repo.commit("change");
        repo.modified(&json_list(&exact), &json_list(&by_path));
        Repo::new()
            .write(path, "changed\n")
            .modified(&json_list(&exact), &json_list(&by_path));
    }
}

#[test]
fn a_feature_branch_changing_four_layers() {
    let repo = Repo::new()
        .write("src/daemon/entrypoint.sh", "#!/bin/sh\nexec tini \"$@\"\n")
        .write(
            "ceph-releases/ALL/centos/__DOCKERFILE_INSTALL__",
            "dnf -y install",
        )
        .write("ceph-releases/squid/centos/daemon/extra.conf", "more\n")
        .write("README.md", "# the images\n");
    repo.commit("four changes");
    let all = format!("{SQUID}\n{REEF}\n{UBUNTU}\n");
    repo.check(&["modified", "--vs", "main"], &all, "", 0)
        .check(&["modified", "--vs", "main", "--by-path"], &all, "", 0)
        .check(
            &["modified", "--vs", "main", "--make"],
            &format!("FLAVORS=\"{SQUID} {REEF} {UBUNTU}\"\n"),
            "",
            0,
        );
}

#[test]
fn makefile_and_maint_lib_are_always_globs() {
    for path in ["Makefile", "maint-lib/ceph_version.sh"] {
        let repo = Repo::new().write(path, "changed\n");
        repo.commit("change");
        let items: Vec<String> = [
            (SQUID, "squid-centos-9-x86_64"),
            (REEF, "reef-centos-9-x86_64"),
            (UBUNTU, "squid-ubuntu-22.04-x86_64"),
        ]
        .iter()
        .map(|(flavor, id)| json(flavor, id, BOTH, &[path]))
        .collect();
        repo.modified(&json_list(&items), &json_list(&items));
    }
}

#[test]
fn files_beside_the_layers_change_no_flavor() {
    let nothing = "no flavor changed since `main`\n";
    let repo = Repo::new()
        .write("README.md", "# other\n")
        .write("docs/adopting.md", "notes\n")
        .write("ceph-releases/ALL/docs/README", "not a layer\n");
    repo.commit("docs");
    repo.check(&["modified", "--vs", "main"], "", nothing, 0)
        .check(&["modified", "--vs", "main", "--by-path"], "", nothing, 0);
}

#[test]
fn a_staging_root_git_does_not_ignore_is_not_a_change() {
    let nothing = "no flavor changed since `main`\n";
    let repo = Repo::new().write(".gitignore", "");
    repo.commit("staging not ignored");
    let repo = repo.write(
        "staging/squid-centos-9-x86_64/daemon/Dockerfile",
        "FROM stray\n",
    );
    // Untracked files below `staging/` are in the change set: no layer holds them.
    let changed = repo.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert_eq!(
        changed,
        "?? staging/squid-centos-9-x86_64/daemon/Dockerfile\n"
    );
    repo.check(&["modified", "--vs", "main"], "", nothing, 0)
        .check(&["modified", "--vs", "main", "--by-path"], "", nothing, 0);
}

/// With a layer named by the release at the top of the templates, the staging root and the
/// configuration's directory would have been layers of a flavor named after them.
#[test]
fn a_release_named_after_the_staging_root_is_not_a_layer() {
    let config = r#"
[layout]
templates = "."
layers = ["{CEPH_VERSION}"]
images = ["daemon"]
staging_dir = "staging/{CEPH_VERSION}-{DISTRO}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}"

[flavors]
buildable = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9"]
"#;
    let mut test = Test::new()
        .write("flavors/matriochka.toml", config)
        .write("squid/daemon/Dockerfile", "FROM scratch\n")
        .write("reef/daemon/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos: 5 written, 0 unchanged, 0 removed\n");
    test.run();
    let absolute = test.path().join("flavors/matriochka.toml");
    let absolute = absolute.to_str().unwrap();
    for release in ["staging", "flavors"] {
        let flavor = format!("{release},x86_64,centos,9,quay.io,centos/centos,stream9");
        for args in [
            &["plan", &flavor][..],
            &["--config", absolute, "plan", &flavor],
        ] {
            test = test
                .args(args)
                .stderr(&format!(
                "error: invalid flavor `{flavor}`: CEPH_VERSION `{release}` has no layer directory \
                 (looked for `{release}`); known values: reef, squid\n"
            ))
                .status(2);
            test.run();
        }
    }
}

#[test]
fn templates_above_the_root_are_refused() {
    for templates in ["..", "/templates", "x/../.."] {
        let config = CONFIG.replace("templates = \".\"", &format!("templates = \"{templates}\""));
        Test::new()
            .write("flavors/matriochka.toml", &config)
            .args(&["plan"])
            .stderr(&format!(
                "error: failed to load `flavors/matriochka.toml`: `layout.templates` `{templates}` \
                 must be a relative path without `..` (`.` for the root)\n"
            ))
            .status(1)
            .run();
    }
}

#[test]
fn templates_written_with_a_dot_prefix() {
    let config = CONFIG.replace("templates = \".\"", "templates = \"./tpl\"");
    let mut test = Test::new().write("flavors/matriochka.toml", &config);
    for (path, text, mode) in FILES {
        if path.starts_with("src/") || path.starts_with("ceph-releases/") {
            test = test.write_bytes(&format!("tpl/{path}"), text.as_bytes(), *mode);
        }
    }
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n");
    test.run();
    assert!(Path::new(&test.path().join(SQUID_DIR).join("daemon/extra.conf")).is_file());
}

#[test]
fn graph_and_bake_with_the_templates_at_the_root() {
    Repo::new()
        .check(
            &["graph", SQUID],
            r#"digraph "matriochka" {
  node [shape="box"];
  subgraph "cluster_0" {
    label="squid-centos-9-x86_64";
    "squid-centos-9-x86_64/daemon-base" [label="daemon-base\nceph/daemon-base:test-squid-centos-x86_64"];
    "squid-centos-9-x86_64/daemon" [label="daemon\nceph/daemon:test-squid-centos-x86_64"];
  }
  "quay.io/centos/centos:stream9" [shape="ellipse", style="dashed"];
  "quay.io/centos/centos:stream9" -> "squid-centos-9-x86_64/daemon-base";
  "squid-centos-9-x86_64/daemon-base" -> "squid-centos-9-x86_64/daemon";
}
"#,
            "",
            0,
        )
        .check(
            &["bake", SQUID],
            "staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n\
             wrote staging/docker-bake.json: 2 targets of 1 flavors\n",
            "",
            0,
        );
}
