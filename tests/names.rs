//! The names users already type: `REGISTRY` for `TAG_REGISTRY`, and `RELEASE` on a detached HEAD
//! (CI building a tag), in real git repositories.

use crate::common::{GitHome, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";

/// `plan`'s lines for SQUID with tags `<registry>core:<release>-…`.
fn plan(registry: &str, release: &str) -> String {
    let dir = "staging/squid-centos-9-x86_64";
    format!(
        "squid-centos-9-x86_64 core {registry}core:{release}-squid-centos-stream9-x86_64 {dir}/core\n\
         squid-centos-9-x86_64 app {registry}app:{release}-squid-centos-stream9-x86_64 {dir}/app\n"
    )
}

fn project() -> Test {
    Test::with_config()
        .write("templates/src/core/Dockerfile", "FROM scratch\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
}

#[test]
fn registry_is_a_synonym_of_tag_registry() {
    let test = project()
        .env("REGISTRY", "quay.io/x")
        .args(&["plan", SQUID])
        .stdout(&plan("quay.io/x/", "test"));
    test.run();
    let test = test
        .env("TAG_REGISTRY", "quay.io/x")
        .args(&["plan", SQUID])
        .stdout(&plan("quay.io/x/", "test"));
    test.run();
    // Empty, as make may pass it: unset.
    let test = test
        .unset("TAG_REGISTRY")
        .env("REGISTRY", "")
        .args(&["plan", SQUID])
        .stdout(&plan("ceph/", "test"));
    test.run();
}

#[test]
fn registry_and_tag_registry_that_differ_are_an_error() {
    for (registry, tag_registry) in [("quay.io/x", "quay.io/y"), ("quay.io/x", "")] {
        let mut test = project()
            .env("REGISTRY", registry)
            .env("TAG_REGISTRY", tag_registry);
        for args in [
            &["plan", SQUID][..],
            &["stage", SQUID],
            &["show", "vars", SQUID],
        ] {
            test = test
                .args(args)
                .stderr(&format!(
                    "error: `REGISTRY` `{registry}` and `TAG_REGISTRY` `{tag_registry}` differ: set \
                     one of them (`REGISTRY` is a synonym of `TAG_REGISTRY`)\n"
                ))
                .status(1);
            test.run();
        }
        assert!(!test.path().join("staging").exists(), "nothing staged");
    }
}

/// A project committed on `main` in a git repository, with RELEASE unset.
struct Repo {
    test: Test,
    home: GitHome,
}

impl Repo {
    fn new() -> Repo {
        let home = GitHome::new();
        let test = project()
            .unset("RELEASE")
            .git_home(&home)
            .write(".gitignore", "/staging/\n");
        let repo = Repo { test, home };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "start"]);
        repo
    }

    #[track_caller]
    fn git(&self, args: &[&str]) -> String {
        self.home.git(self.test.path(), args)
    }

    /// `plan` tags the images with `release`.
    #[track_caller]
    fn release_is(self, release: &str) -> Repo {
        let Repo { test, home } = self;
        let test = test.args(&["plan", SQUID]).stdout(&plan("ceph/", release));
        test.run();
        Repo { test, home }
    }
}

#[test]
fn a_detached_head_took_release_head() {
    let repo = Repo::new();
    repo.git(&["tag", "v19.2.9"]);
    repo.git(&["tag", "v19.2.10"]);
    repo.git(&["tag", "v19.2.10-rc1"]);
    repo.git(&["checkout", "-q", "--detach", "v19.2.9"]);
    let repo = repo.release_is("v19.2.10");
    // An annotated tag points at HEAD as well.
    repo.git(&["tag", "-a", "-m", "next", "v19.2.11"]);
    let repo = repo.release_is("v19.2.11");
    // Built from a branch, the branch names the release, whatever tags HEAD has.
    repo.git(&["checkout", "-q", "main"]);
    repo.release_is("main");
}

#[test]
fn a_detached_head_without_a_tag_is_named_by_its_short_commit() {
    let repo = Repo::new();
    repo.git(&["tag", "v1.0.0"]);
    repo.git(&["commit", "-q", "--allow-empty", "-m", "after the tag"]);
    repo.git(&["checkout", "-q", "--detach", "HEAD"]);
    let short = repo.git(&["rev-parse", "--short", "HEAD"]);
    let short = short.trim();
    assert!(short.len() >= 7, "{short}");
    let repo = repo.release_is(short);
    // RELEASE still wins.
    let Repo { test, home: _home } = repo;
    test.env("RELEASE", "r1")
        .args(&["plan", SQUID])
        .stdout(&plan("ceph/", "r1"))
        .run();
}

#[test]
fn a_tag_is_folded_to_a_valid_image_tag() {
    let repo = Repo::new();
    repo.git(&["tag", "release/été+1"]);
    repo.git(&["checkout", "-q", "--detach", "release/été+1"]);
    repo.release_is("release-ete-1");
}

/// Every file under `dir`, recursively, as text.
fn all_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    text
}

#[test]
fn credentials_in_the_origin_url_reach_no_file_nor_output() {
    let repo = Repo::new();
    repo.git(&[
        "remote",
        "add",
        "origin",
        "https://ada:ghp_s3cret@github.com/ceph/ceph-container.git",
    ]);
    let Repo {
        mut test,
        home: _home,
    } = repo;
    test = test.env("RELEASE", "r1");
    for args in [
        &["show", "vars", SQUID][..],
        &["stage", SQUID],
        &["plan", "--json", SQUID],
        &["bake", SQUID],
    ] {
        test = test.args(args).any_stdout().any_stderr();
        let output = test.run();
        let printed = output.stdout + &output.stderr;
        assert!(!printed.contains("s3cret"), "{args:?}: {printed}");
        if args[0] == "show" {
            assert!(
                printed.contains("GIT_REPO=https://github.com/ceph/ceph-container.git\n"),
                "{printed}"
            );
        }
    }
    let staged = all_text(&test.path().join("staging"));
    assert!(
        staged.contains(
            "\"org.opencontainers.image.source\": \"https://github.com/ceph/ceph-container.git\""
        ),
        "the plan's source label: {staged}"
    );
    assert!(test.path().join("staging/docker-bake.json").exists());
    assert!(
        !staged.contains("s3cret") && !staged.contains("ada:"),
        "{staged}"
    );
}
