//! `matriochka modified`: real git repositories with a bare `origin`, a main and a feature branch.

use std::path::{Path, PathBuf};

use crate::common::{modified_json as json, modified_json_array as json_lines, GitHome, Test};

const CONFIG: &str = r#"
[layout]
templates = "templates"
layers = ["src", "rel/ALL", "rel/ALL/{DISTRO}", "rel/ALL/{DISTRO}/{DISTRO_VERSION}", "rel/{CEPH_VERSION}", "rel/{CEPH_VERSION}/{DISTRO}"]
images = ["daemon-base", "daemon"]
staging_dir = "staging/{CEPH_VERSION}-{DISTRO}-{DISTRO_VERSION}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{HOST_ARCH}"

[flavors]
default = ["squid,centos,9"]
buildable = [
  "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
  "reef,x86_64,centos,9,quay.io,centos/centos,stream9",
  "squid,ubuntu,22.04",
]

[modified]
always = ["flavors/**", "Makefile"]
"#;

/// The buildable flavors as written, and their ids.
const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const REEF: &str = "reef,x86_64,centos,9,quay.io,centos/centos,stream9";
const UBUNTU: &str = "squid,ubuntu,22.04";

const ALL: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9
reef,x86_64,centos,9,quay.io,centos/centos,stream9
squid,ubuntu,22.04
";

const NOTE: &str = "note: comparing with `origin/main`\n";

/// What a run that finds no changed flavor says, after [`NOTE`].
const NOTHING: &str = "note: comparing with `origin/main`\nno flavor changed since `origin/main`\n";

/// The templates at the fork point: (path, text, mode).
const TEMPLATES: &[(&str, &str, u32)] = &[
    (
        "templates/src/entrypoint.sh",
        "#!/bin/sh\nexec \"$@\"\n",
        0o755,
    ),
    (
        "templates/rel/ALL/daemon-base/Dockerfile",
        "FROM __ENV_[BASE_IMAGE]__\nLABEL repo=__CEPH_REPO__\nRUN __INSTALL__\n",
        0o644,
    ),
    (
        "templates/rel/ALL/daemon/Dockerfile",
        "FROM __ENV_[DAEMON_BASE_IMAGE]__\nCOPY entrypoint.sh motd /\n",
        0o644,
    ),
    ("templates/rel/ALL/daemon/motd", "welcome\n", 0o644),
    ("templates/rel/ALL/__CEPH_REPO__", "default", 0o644),
    (
        "templates/rel/ALL/__UNUSED__",
        "not used by anything\n",
        0o644,
    ),
    (
        "templates/rel/ALL/centos/__INSTALL__",
        "dnf install -y ceph",
        0o644,
    ),
    (
        "templates/rel/ALL/ubuntu/__INSTALL__",
        "apt-get install -y -t __CODENAME__ ceph",
        0o644,
    ),
    (
        "templates/rel/ALL/ubuntu/22.04/__CODENAME__",
        "jammy",
        0o644,
    ),
    ("templates/rel/squid/__CEPH_REPO__", "squid", 0o644),
    ("templates/rel/reef/__CEPH_REPO__", "reef", 0o644),
    (
        "templates/rel/squid/centos/daemon/extra.conf",
        "extra\n",
        0o644,
    ),
    ("Makefile", "all:\n", 0o644),
    (".gitignore", "/staging/\n", 0o644),
];

/// A project in a git repository: the fork point committed on `main` and pushed to a bare
/// `origin`, then a `feature` branch checked out.
struct Repo {
    test: Test,
    home: GitHome,
    /// The project's directory inside the repository (`""` at the top).
    prefix: String,
}

impl Repo {
    fn new() -> Repo {
        Repo::in_dir("")
    }

    fn in_dir(prefix: &str) -> Repo {
        let repo = Repo::init(prefix);
        repo.write("flavors/matriochka.toml", CONFIG);
        for (path, text, mode) in TEMPLATES {
            repo.write_mode(path, text, *mode);
        }
        repo.commit("fork point");
        let origin = repo.home.path().join("origin.git");
        repo.git(&[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap(),
        ]);
        repo.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
        repo.git(&["push", "-q", "origin", "main"]);
        repo.git(&["checkout", "-q", "-b", "feature"]);
        repo
    }

    /// An empty repository.
    fn init(prefix: &str) -> Repo {
        let home = GitHome::new();
        let test = Test::new().git_home(&home);
        let repo = Repo {
            test,
            home,
            prefix: prefix.to_string(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    fn root(&self) -> PathBuf {
        self.test.path().join(&self.prefix)
    }

    fn write(&self, path: &str, text: &str) {
        self.write_mode(path, text, 0o644);
    }

    fn write_mode(&self, path: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let full = self.root().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, text).unwrap();
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn remove(&self, path: &str) {
        std::fs::remove_file(self.root().join(path)).unwrap();
    }

    /// Runs git at the repository's top with a fixed identity and dates; returns stdout.
    #[track_caller]
    fn git(&self, args: &[&str]) -> String {
        self.git_in(self.test.path(), args)
    }

    #[track_caller]
    fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        self.home.git(dir, args)
    }

    /// Commits everything.
    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    fn origin(&self) -> PathBuf {
        self.home.path().join("origin.git")
    }

    /// Runs matriochka with `args` and checks stdout, stderr and the exit code.
    #[track_caller]
    fn check(self, args: &[&str], stdout: &str, stderr: &str, code: i32) -> Repo {
        let Repo { test, home, prefix } = self;
        let test = test.args(args).stdout(stdout).stderr(stderr).status(code);
        test.run();
        Repo { test, home, prefix }
    }

    /// `modified` in exact mode and `modified --by-path` print the same.
    #[track_caller]
    fn both_modes(self, args: &[&str], stdout: &str, stderr: &str) -> Repo {
        let mut by_path = args.to_vec();
        by_path.push("--by-path");
        self.check(args, stdout, stderr, 0)
            .check(&by_path, stdout, stderr, 0)
    }
}

/// A flavor, its id and the images expected in `--json`.
type Expected<'a> = (&'a str, &'a str, &'a [&'a str]);

#[test]
fn a_file_in_every_kind_of_layer() {
    let both = ["daemon-base", "daemon"];
    let daemon = ["daemon"];
    let cases: &[(&str, &[Expected])] = &[
        (
            "templates/src/entrypoint.sh",
            &[
                (SQUID, "squid-centos-9-x86_64", &both),
                (REEF, "reef-centos-9-x86_64", &both),
                (UBUNTU, "squid-ubuntu-22.04-x86_64", &both),
            ],
        ),
        (
            "templates/rel/ALL/daemon/motd",
            &[
                (SQUID, "squid-centos-9-x86_64", &daemon),
                (REEF, "reef-centos-9-x86_64", &daemon),
                (UBUNTU, "squid-ubuntu-22.04-x86_64", &daemon),
            ],
        ),
        (
            "templates/rel/ALL/centos/__INSTALL__",
            &[
                (SQUID, "squid-centos-9-x86_64", &both),
                (REEF, "reef-centos-9-x86_64", &both),
            ],
        ),
        (
            "templates/rel/ALL/ubuntu/22.04/__CODENAME__",
            &[(UBUNTU, "squid-ubuntu-22.04-x86_64", &both)],
        ),
        (
            "templates/rel/reef/__CEPH_REPO__",
            &[(REEF, "reef-centos-9-x86_64", &both)],
        ),
        (
            "templates/rel/squid/centos/daemon/extra.conf",
            &[(SQUID, "squid-centos-9-x86_64", &daemon)],
        ),
    ];
    for (path, expected) in cases {
        let repo = Repo::new();
        repo.write(path, "changed\n");
        repo.commit("change");
        let items: Vec<String> = expected
            .iter()
            .map(|(flavor, id, images)| json(flavor, id, images, &[path]))
            .collect();
        repo.both_modes(&["modified", "--json"], &json_lines(&items), NOTE);
    }
}

#[test]
fn a_shadowed_file_is_reported_by_path_only() {
    let repo = Repo::new();
    repo.write(
        "templates/rel/ALL/__CEPH_REPO__",
        "changed but always overridden",
    );
    repo.commit("change");
    repo.check(&["modified", "--by-path"], ALL, NOTE, 0)
        .check(&["modified"], "", NOTHING, 0);
}

#[test]
fn an_unused_fragment_is_reported_by_path_only() {
    let repo = Repo::new();
    repo.write("templates/rel/ALL/__UNUSED__", "still not used\n");
    repo.commit("change");
    repo.check(&["modified", "--by-path"], ALL, NOTE, 0)
        .check(&["modified"], "", NOTHING, 0);
}

#[test]
fn a_deleted_file() {
    let repo = Repo::new();
    repo.remove("templates/rel/squid/centos/daemon/extra.conf");
    repo.commit("delete");
    let items = [json(
        SQUID,
        "squid-centos-9-x86_64",
        &["daemon"],
        &["templates/rel/squid/centos/daemon/extra.conf"],
    )];
    repo.both_modes(&["modified", "--json"], &json_lines(&items), NOTE);
}

#[test]
fn a_renamed_file_counts_at_both_paths() {
    let repo = Repo::new();
    std::fs::create_dir_all(repo.root().join("templates/rel/squid/daemon")).unwrap();
    repo.git(&[
        "mv",
        "templates/rel/squid/centos/daemon/extra.conf",
        "templates/rel/squid/daemon/extra.conf",
    ]);
    repo.commit("rename");
    let old = "templates/rel/squid/centos/daemon/extra.conf";
    let new = "templates/rel/squid/daemon/extra.conf";
    // squid on centos stages the same file from another layer: only ubuntu gains it.
    let exact = [json(
        UBUNTU,
        "squid-ubuntu-22.04-x86_64",
        &["daemon"],
        &[new],
    )];
    let by_path = [
        json(SQUID, "squid-centos-9-x86_64", &["daemon"], &[old, new]),
        json(UBUNTU, "squid-ubuntu-22.04-x86_64", &["daemon"], &[new]),
    ];
    repo.check(&["modified", "--json"], &json_lines(&exact), NOTE, 0)
        .check(
            &["modified", "--json", "--by-path"],
            &json_lines(&by_path),
            NOTE,
            0,
        );
}

#[test]
fn an_untracked_file() {
    let repo = Repo::new();
    repo.write("templates/rel/ALL/ubuntu/daemon/notes.txt", "new\n");
    let items = [json(
        UBUNTU,
        "squid-ubuntu-22.04-x86_64",
        &["daemon"],
        &["templates/rel/ALL/ubuntu/daemon/notes.txt"],
    )];
    repo.both_modes(&["modified", "--json"], &json_lines(&items), NOTE);
}

#[test]
fn an_ignored_file_is_not_a_change() {
    let repo = Repo::new();
    repo.write(".gitignore", "/staging/\n*.swp\n");
    repo.commit("ignore swap files");
    repo.write(
        "templates/rel/ALL/ubuntu/daemon/.notes.swp",
        "editor state\n",
    );
    repo.both_modes(&["modified"], "", NOTHING);
}

#[test]
fn uncommitted_edits_staged_or_not() {
    let repo = Repo::new();
    repo.write(
        "templates/rel/ALL/centos/__INSTALL__",
        "dnf install -y ceph-common",
    );
    repo.both_modes(
        &["modified"],
        "squid,x86_64,centos,9,quay.io,centos/centos,stream9\nreef,x86_64,centos,9,quay.io,centos/centos,stream9\n",
        NOTE,
    );
    let repo = Repo::new();
    repo.write("templates/rel/ALL/ubuntu/22.04/__CODENAME__", "noble");
    repo.git(&["add", "templates/rel/ALL/ubuntu/22.04/__CODENAME__"]);
    repo.both_modes(&["modified"], "squid,ubuntu,22.04\n", NOTE);
}

#[test]
fn a_mode_change() {
    let repo = Repo::new();
    repo.write_mode("templates/rel/ALL/daemon/motd", "welcome\n", 0o755);
    let items = [
        json(
            SQUID,
            "squid-centos-9-x86_64",
            &["daemon"],
            &["templates/rel/ALL/daemon/motd"],
        ),
        json(
            REEF,
            "reef-centos-9-x86_64",
            &["daemon"],
            &["templates/rel/ALL/daemon/motd"],
        ),
        json(
            UBUNTU,
            "squid-ubuntu-22.04-x86_64",
            &["daemon"],
            &["templates/rel/ALL/daemon/motd"],
        ),
    ];
    repo.both_modes(&["modified", "--json"], &json_lines(&items), NOTE);
}

#[test]
fn a_commit_alone_changes_nothing() {
    let repo = Repo::new();
    repo.write("docs/notes.md", "not a template\n");
    repo.commit("docs");
    repo.both_modes(&["modified"], "", NOTHING)
        .both_modes(&["modified", "--json"], "[]\n", NOTHING)
        .both_modes(&["modified", "--make"], "FLAVORS=\"\"\n", NOTHING);
}

#[test]
fn changes_on_the_target_after_the_fork_point_are_not_reported() {
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "main"]);
    repo.write("templates/rel/reef/__CEPH_REPO__", "reef-next");
    repo.commit("main moves on");
    repo.git(&["push", "-q", "origin", "main"]);
    repo.git(&["checkout", "-q", "feature"]);
    repo.write("templates/rel/ALL/ubuntu/22.04/__CODENAME__", "noble");
    repo.commit("feature");
    repo.both_modes(&["modified"], "squid,ubuntu,22.04\n", NOTE);
}

#[test]
fn an_always_glob_reports_every_flavor_and_image() {
    let repo = Repo::new();
    repo.write("Makefile", "all:\n\t@true\n");
    repo.write("templates/rel/ALL/ubuntu/22.04/__CODENAME__", "noble");
    repo.commit("change");
    let both = ["daemon-base", "daemon"];
    let codename = "templates/rel/ALL/ubuntu/22.04/__CODENAME__";
    let items = [
        json(SQUID, "squid-centos-9-x86_64", &both, &["Makefile"]),
        json(REEF, "reef-centos-9-x86_64", &both, &["Makefile"]),
        json(
            UBUNTU,
            "squid-ubuntu-22.04-x86_64",
            &both,
            &["Makefile", codename],
        ),
    ];
    repo.both_modes(&["modified", "--json"], &json_lines(&items), NOTE)
        .both_modes(
            &["modified", "--make"],
            &format!("FLAVORS=\"{SQUID} {REEF} {UBUNTU}\"\n"),
            NOTE,
        );
    // A layout change of the configuration still reaches every flavor.
    let repo = Repo::new();
    repo.write(
        "flavors/matriochka.toml",
        &CONFIG.replace(
            "images = [\"daemon-base\", \"daemon\"]",
            "images = [\"daemon-base\", \"daemon\"]\nenv = [\"X\"]",
        ),
    );
    repo.both_modes(&["modified"], ALL, NOTE);
}

/// Issue 21: any edit of flavors/matriochka.toml (`flavors/**` in `[modified] always`) marked
/// every flavor; the parsed configurations of both sides are compared now.
#[test]
fn an_edit_of_the_flavor_lists_marks_only_the_flavors_it_adds() {
    let repo = Repo::new();
    repo.write("flavors/matriochka.toml", &format!("# a comment\n{CONFIG}"));
    let repo = repo.both_modes(&["modified"], "", NOTHING);
    let added = "squid,x86_64,ubuntu,24.04,_,ubuntu,24.04";
    repo.write(
        "flavors/matriochka.toml",
        &CONFIG.replace(
            "  \"squid,ubuntu,22.04\",\n",
            &format!("  \"squid,ubuntu,22.04\",\n  \"{added}\",\n"),
        ),
    );
    repo.write("templates/rel/ALL/ubuntu/24.04/__CODENAME__", "noble");
    repo.commit("ubuntu 24.04");
    let both = ["daemon-base", "daemon"];
    let items = [json(
        added,
        "squid-ubuntu-24.04-x86_64",
        &both,
        &[
            "flavors/matriochka.toml",
            "templates/rel/ALL/ubuntu/24.04/__CODENAME__",
        ],
    )];
    repo.both_modes(&["modified", "--json"], &json_lines(&items), NOTE);
}

const MISSING_FRAGMENT: &str = "templates/rel/ALL/ubuntu/__INSTALL__:1: fragment `__MISSING__` not found (staged as `daemon-base/__INSTALL__`; searched `templates/src`, `templates/src/daemon-base`, `templates/rel/ALL`, `templates/rel/ALL/daemon-base`, `templates/rel/ALL/ubuntu`, `templates/rel/ALL/ubuntu/daemon-base`, `templates/rel/ALL/ubuntu/22.04`, `templates/rel/ALL/ubuntu/22.04/daemon-base`, `templates/rel/squid`, `templates/rel/squid/daemon-base`, `templates/rel/squid/ubuntu`, `templates/rel/squid/ubuntu/daemon-base`)";

/// Makes `squid,ubuntu,22.04` fail to stage: its `__INSTALL__` uses a missing fragment.
fn break_ubuntu(repo: &Repo) {
    repo.write(
        "templates/rel/ALL/ubuntu/__INSTALL__",
        "apt-get install -y __MISSING__",
    );
}

/// Breaks ubuntu on `main` and pushes it to origin.
fn break_ubuntu_on_origin_main(repo: &Repo) {
    repo.git(&["checkout", "-q", "main"]);
    break_ubuntu(repo);
    repo.commit("break ubuntu");
    repo.git(&["push", "-q", "origin", "main"]);
}

#[test]
fn a_flavor_failing_in_the_working_tree_is_reported() {
    let repo = Repo::new();
    break_ubuntu(&repo);
    repo.check(
        &["modified"],
        "squid,ubuntu,22.04\n",
        &format!(
            "{NOTE}warning: failed to stage `squid,ubuntu,22.04` in the working tree: {MISSING_FRAGMENT}\n"
        ),
        0,
    );
}

#[test]
fn a_flavor_failing_at_the_merge_base_is_reported() {
    let repo = Repo::new();
    break_ubuntu_on_origin_main(&repo);
    repo.git(&["checkout", "-q", "-b", "fix"]);
    repo.write(
        "templates/rel/ALL/ubuntu/__INSTALL__",
        "apt-get install -y ceph",
    );
    repo.commit("fix ubuntu");
    repo.check(
        &["modified", "--vs", "origin/main"],
        "squid,ubuntu,22.04\n",
        &format!(
            "warning: failed to stage `squid,ubuntu,22.04` at the merge-base with `origin/main`: {MISSING_FRAGMENT}\n"
        ),
        0,
    );
}

#[test]
fn a_flavor_failing_the_same_way_on_both_sides_is_not_reported() {
    let repo = Repo::new();
    break_ubuntu_on_origin_main(&repo);
    repo.git(&["checkout", "-q", "-b", "unrelated"]);
    repo.write("templates/rel/ALL/ubuntu/__UNUSED__", "unused\n");
    repo.commit("unused fragment");
    repo.check(
        &["modified"],
        "",
        &format!(
            "{NOTE}warning: failed to stage `squid,ubuntu,22.04` at the merge-base with `origin/main`: {MISSING_FRAGMENT}\n\
             warning: failed to stage `squid,ubuntu,22.04` in the working tree: {MISSING_FRAGMENT}\n\
             no flavor changed since `origin/main`\n"
        ),
        0,
    );
}

#[test]
fn a_change_through_a_symbolic_link() {
    let repo = Repo::init("");
    repo.write("flavors/matriochka.toml", CONFIG);
    for (path, text, mode) in TEMPLATES {
        repo.write_mode(path, text, *mode);
    }
    repo.remove("templates/rel/ALL/ubuntu/22.04/__CODENAME__");
    repo.write("templates/shared/jammy", "jammy");
    std::os::unix::fs::symlink(
        "../../../../shared/jammy",
        repo.root()
            .join("templates/rel/ALL/ubuntu/22.04/__CODENAME__"),
    )
    .unwrap();
    repo.commit("fork point");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("templates/shared/jammy", "jammy-updates");
    repo.commit("through the link");
    repo.check(&["modified", "--vs", "main"], "squid,ubuntu,22.04\n", "", 0)
        .check(
            &["modified", "--vs", "main", "--by-path"],
            "",
            "no flavor changed since `main`\n",
            0,
        );
}

#[test]
fn a_project_in_a_subdirectory() {
    let repo = Repo::in_dir("project");
    repo.write("templates/rel/reef/__CEPH_REPO__", "reef-next");
    std::fs::write(repo.test.path().join("outside.txt"), "not in the project\n").unwrap();
    repo.commit("change");
    repo.both_modes(
        &["-C", "project", "modified", "--json"],
        &json_lines(&[json(
            REEF,
            "reef-centos-9-x86_64",
            &["daemon-base", "daemon"],
            &["templates/rel/reef/__CEPH_REPO__"],
        )]),
        NOTE,
    );
}

#[test]
fn the_default_branch_falls_back_to_local_main() {
    let repo = Repo::new();
    repo.git(&["remote", "remove", "origin"]);
    repo.write("templates/rel/reef/__CEPH_REPO__", "reef-next");
    repo.both_modes(
        &["modified"],
        "reef,x86_64,centos,9,quay.io,centos/centos,stream9\n",
        "note: comparing with `main`\n",
    );
}

#[test]
fn no_default_branch() {
    let repo = Repo::new();
    repo.git(&["remote", "remove", "origin"]);
    repo.git(&["branch", "-q", "-D", "main"]);
    repo.check(
        &["modified"],
        "",
        "error: failed to find a branch to compare with: none of `origin/main`, `origin/master`, `main`, `master` exists; pass `--vs REF`\n",
        1,
    );
}

#[test]
fn a_ref_that_does_not_exist() {
    Repo::new().check(
        &["modified", "--vs", "origin/nope"],
        "",
        "error: failed to resolve `origin/nope`: no branch, tag or commit has that name\n",
        1,
    );
}

#[test]
fn a_ref_that_looks_like_an_option() {
    Repo::new()
        .check(
            &["modified", "--vs=--output=/tmp/x"],
            "",
            "error: invalid `--vs` `--output=/tmp/x`: a branch, tag or commit does not start with `-`\n",
            1,
        )
        .check(
            &["modified", "--vs="],
            "",
            "error: invalid `--vs` ``: name a branch, tag or commit\n",
            1,
        );
}

#[test]
fn refs_of_every_kind() {
    let repo = Repo::new();
    let fork = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["tag", "v1"]);
    repo.write("templates/rel/reef/__CEPH_REPO__", "reef-next");
    let reef = "reef,x86_64,centos,9,quay.io,centos/centos,stream9\n";
    repo.check(&["modified", "--vs", "v1"], reef, "", 0)
        .check(&["modified", "--vs", fork.trim()], reef, "", 0)
        .check(&["modified", "--vs", "HEAD~0"], reef, "", 0);
}

#[test]
fn no_common_history() {
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "--orphan", "other"]);
    repo.commit("unrelated");
    repo.git(&["checkout", "-q", "feature"]);
    repo.check(
        &["modified", "--vs", "other"],
        "",
        "error: failed to find the merge-base of `other` and `HEAD`: they have no common history\n",
        1,
    );
}

#[test]
fn a_shallow_clone_without_the_merge_base() {
    let repo = Repo::new();
    repo.write("templates/rel/ALL/ubuntu/22.04/__CODENAME__", "noble");
    repo.commit("feature");
    repo.git(&["push", "-q", "origin", "feature"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.write("templates/rel/reef/__CEPH_REPO__", "reef-next");
    repo.commit("main moves on");
    repo.git(&["push", "-q", "origin", "main"]);
    let url = format!("file://{}", repo.origin().display());
    let clone = repo.home.path().join("clone");
    repo.git(&[
        "clone",
        "-q",
        "--depth",
        "1",
        "--branch",
        "feature",
        &url,
        clone.to_str().unwrap(),
    ]);
    repo.git_in(
        &clone,
        &[
            "fetch",
            "-q",
            "--depth",
            "1",
            "origin",
            "+refs/heads/main:refs/remotes/origin/main",
        ],
    );
    let Repo { test, home, prefix } = repo;
    let test = test
        .args(&["-C", clone.to_str().unwrap(), "modified"])
        .stdout("")
        .stderr(&format!(
            "{NOTE}error: failed to find the merge-base of `origin/main` and `HEAD`: this clone is shallow and does not reach it; deepen it (`git fetch --deepen=100`) or fetch the whole history (`git fetch --unshallow`)\n"
        ))
        .status(1);
    test.run();
    drop((home, prefix));
}

#[test]
fn fetch_updates_the_target_first() {
    let repo = Repo::new();
    repo.write("templates/rel/reef/__CEPH_REPO__", "reef-next");
    repo.commit("merged upstream meanwhile");
    // Straight to the URL, so that the local `origin/main` stays behind.
    repo.git(&["push", "-q", repo.origin().to_str().unwrap(), "HEAD:main"]);
    repo.write("templates/rel/ALL/ubuntu/22.04/__CODENAME__", "noble");
    repo.commit("feature");
    let both = "reef,x86_64,centos,9,quay.io,centos/centos,stream9\nsquid,ubuntu,22.04\n";
    repo.check(&["modified"], both, NOTE, 0).check(
        &["modified", "--fetch"],
        "squid,ubuntu,22.04\n",
        NOTE,
        0,
    );
}

#[test]
fn fetch_errors() {
    Repo::new()
        .check(
            &["modified", "--fetch", "--vs", "main"],
            "",
            "error: failed to fetch `main`: no remote is named `main`; `--fetch` needs a remote branch such as `origin/main`\n",
            1,
        )
        .check(
            &["modified", "--fetch", "--vs", "origin/nope"],
            "",
            "error: failed to fetch `origin/nope`: fatal: couldn't find remote ref refs/heads/nope\n",
            1,
        );
}

#[test]
fn outside_a_git_repository() {
    Test::new()
        .write("flavors/matriochka.toml", CONFIG)
        .args(&["modified"])
        .stderr("error: failed to read the git history of `.`: it is not in a git repository\n")
        .status(1)
        .run();
}

#[test]
fn a_repository_without_commits() {
    let repo = Repo::init("");
    repo.write("flavors/matriochka.toml", CONFIG);
    repo.check(
        &["modified"],
        "",
        "error: failed to resolve `HEAD`: the repository has no commit yet\n",
        1,
    );
}

#[test]
fn a_changed_header_file_changes_every_flavor() {
    let repo = Repo::new();
    repo.write("docker/header", "ENV http_proxy=http://proxy:3128\n");
    let Repo { test, home, prefix } = repo.both_modes(&["modified"], "", NOTHING);
    let repo = Repo {
        test: test.env("HEADER", "docker/header"),
        home,
        prefix,
    };
    repo.both_modes(&["modified"], ALL, NOTE);
}
