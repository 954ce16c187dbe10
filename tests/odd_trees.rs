//! Odd template trees and values (issue 10, items 6 to 9 and 12): each test is named after what
//! broke, and checks the exact message, the exit code and that a failure left staging untouched.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::{snapshot, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const DIR: &str = "staging/squid-centos-9-x86_64";

/// A project with a Dockerfile per image, staged once.
fn staged() -> Test {
    let test = Test::with_config()
        .write("templates/src/core/Dockerfile", "FROM scratch\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .write("templates/rel/ALL/conf", "conf\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n")
        .stderr("");
    test.run();
    test
}

/// Runs `stage` expecting exit 1 with `stderr` (after the flavor's prefix), and staging untouched.
#[track_caller]
fn stage_fails(test: Test, stderr: &str) -> Test {
    let before = snapshot(&test.path().join("staging"));
    let test = test
        .args(&["stage", SQUID])
        .stdout("")
        .stderr(&format!("error: failed to stage `{SQUID}`: {stderr}\n"))
        .status(1);
    test.run();
    assert!(
        before == snapshot(&test.path().join("staging")),
        "staging/ changed"
    );
    test.status(0)
}

/// The paths of `files-sources` (its lines without the header and the fragments).
fn listed(test: &Test) -> Vec<String> {
    test.read(&format!("{DIR}/files-sources"))
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with(' '))
        .map(str::to_string)
        .collect()
}

/// Every file of the staged contexts (no bookkeeping).
fn on_disk(test: &Test) -> Vec<String> {
    test.texts(DIR).into_keys().collect()
}

/// The directories searched for `image` of the squid flavor, by the layers of [`CONFIG`] with
/// `templates`, `src` and `rel` named as given.
///
/// [`CONFIG`]: crate::common::CONFIG
fn searched(t: &str, src: &str, rel: &str, image: &str) -> String {
    format!(
        "`{t}/{src}`, `{t}/{src}/{image}`, `{t}/{rel}/ALL`, `{t}/{rel}/ALL/{image}`, \
         `{t}/{rel}/ALL/centos`, `{t}/{rel}/ALL/centos/{image}`, `{t}/{rel}/ALL/centos/9`, \
         `{t}/{rel}/ALL/centos/9/{image}`, `{t}/{rel}/squid`, `{t}/{rel}/squid/{image}`, \
         `{t}/{rel}/squid/centos`, `{t}/{rel}/squid/centos/{image}`"
    )
}

/// The error for `core` when no layer directory holds a file of it.
fn no_file_at_all(t: &str, src: &str, rel: &str) -> String {
    format!(
        "image `core` has no file at all (searched {}): check `layout.templates` and \
         `layout.layers` in `flavors/matriochka.toml`",
        searched(t, src, rel, "core")
    )
}

#[test]
fn a_missing_templates_directory_removed_every_staged_file() {
    let test = staged();
    let config =
        crate::common::CONFIG.replace("templates = \"templates\"", "templates = \"templatez\"");
    let test = test.write("flavors/matriochka.toml", &config);
    stage_fails(test, &no_file_at_all("templatez", "src", "rel"));
}

#[test]
fn layer_patterns_that_match_nothing_removed_every_staged_file() {
    let test = staged();
    let config = crate::common::CONFIG
        .replace("\"src\", \"rel/ALL\"", "\"srcs\", \"rels/ALL\"")
        .replace("\"rel/", "\"rels/");
    let test = test.write("flavors/matriochka.toml", &config);
    stage_fails(test, &no_file_at_all("templates", "srcs", "rels"));
}

#[test]
fn an_image_without_a_dockerfile_was_staged_and_built() {
    let test = staged();
    std::fs::remove_file(test.path().join("templates/src/app/Dockerfile")).unwrap();
    stage_fails(
        test,
        &format!(
            "image `app` has no `Dockerfile` (searched {})",
            searched("templates", "src", "rel", "app")
        ),
    );
}

/// Every staged file but the fast-path manifest, which holds stat stamps and is written only
/// when the templates are old enough.
fn staged_bytes(test: &Test) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    let mut files = snapshot(&test.path().join(DIR));
    files.remove(".matriochka/manifest");
    files
}

/// Stages, checks `files-sources` lists exactly the files on disk, and that a clean stage of the
/// same templates gives the same bytes (digests included).
#[track_caller]
fn stage_matches_a_clean_stage(test: Test, stdout: &str, files: &[&str]) -> Test {
    let test = test.args(&["stage", SQUID]).stdout(stdout).stderr("");
    test.run();
    let staged = staged_bytes(&test);
    assert_eq!(on_disk(&test), files);
    let mut sources: Vec<String> = listed(&test)
        .iter()
        .map(|line| line.split(" <- ").next().unwrap().to_string())
        .collect();
    sources.sort();
    assert_eq!(sources, files, "files-sources lists what is on disk");
    std::fs::remove_dir_all(test.path().join("staging")).unwrap();
    let count = files.len() + 6;
    let test = test.stdout(&format!(
        "staged staging/squid-centos-9-x86_64: {count} written, 0 unchanged, 0 removed\n"
    ));
    test.run();
    assert!(
        staged == staged_bytes(&test),
        "a clean stage gives the same bytes"
    );
    test
}

#[test]
fn a_file_and_a_directory_of_the_same_name_alternated_and_listed_files_not_on_disk() {
    // The file is in the more specific layer: it hides the directory's whole sub-tree.
    let test = Test::with_config()
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .write("templates/src/core/x/y", "y\n")
        .write("templates/src/core/x/z/w", "w\n")
        .write("templates/rel/squid/core/x", "file x\n");
    let test = stage_matches_a_clean_stage(
        test,
        "staged staging/squid-centos-9-x86_64: 9 written, 0 unchanged, 0 removed\n",
        &["app/Dockerfile", "core/Dockerfile", "core/x"],
    );
    test.expect_file(&format!("{DIR}/core/x"), "file x\n");
    // Again: the same result every time.
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 0 written, 9 unchanged, 0 removed\n");
    test.run();

    // Switched: the directory is now the more specific one, and hides the file.
    std::fs::rename(
        test.path().join("templates/rel/squid/core/x"),
        test.path().join("templates/src/core/x-file"),
    )
    .unwrap();
    std::fs::remove_dir_all(test.path().join("templates/src/core/x")).unwrap();
    std::fs::rename(
        test.path().join("templates/src/core/x-file"),
        test.path().join("templates/src/core/x"),
    )
    .unwrap();
    let test = test
        .write("templates/rel/squid/core/x/y", "y\n")
        .write("templates/rel/squid/core/x/z/w", "w\n");
    let test = stage_matches_a_clean_stage(
        test,
        "staged staging/squid-centos-9-x86_64: 6 written, 4 unchanged, 1 removed\n",
        &[
            "app/Dockerfile",
            "core/Dockerfile",
            "core/x/y",
            "core/x/z/w",
        ],
    );
    test.expect_file(&format!("{DIR}/core/x/z/w"), "w\n");

    // And back: the file wins again over the staged directory.
    std::fs::remove_dir_all(test.path().join("templates/rel/squid/core/x")).unwrap();
    std::fs::remove_file(test.path().join("templates/src/core/x")).unwrap();
    let test = test
        .write("templates/src/core/x/y", "y\n")
        .write("templates/rel/squid/core/x", "file x\n");
    stage_matches_a_clean_stage(
        test,
        "staged staging/squid-centos-9-x86_64: 5 written, 4 unchanged, 2 removed\n",
        &["app/Dockerfile", "core/Dockerfile", "core/x"],
    );
}

#[test]
fn a_loose_file_and_a_directory_of_an_image_in_one_layer_clashed() {
    // In one layer, the image's sub-tree is more specific than the loose files.
    let test = Test::with_config()
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .write("templates/src/x", "loose x\n")
        .write("templates/src/core/x/y", "y\n");
    let test = stage_matches_a_clean_stage(
        test,
        "staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n",
        &["app/Dockerfile", "app/x", "core/Dockerfile", "core/x/y"],
    );
    test.expect_file(&format!("{DIR}/app/x"), "loose x\n");
}

#[test]
fn a_tera_file_and_a_directory_of_its_name_clashed() {
    // `x.tera` makes `x`: the more specific layer wins whatever the kinds.
    let test = Test::with_config()
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .write("templates/src/core/x/y", "y\n")
        .write("templates/rel/squid/core/x.tera", "{{ DISTRO }}\n");
    let test = stage_matches_a_clean_stage(
        test,
        "staged staging/squid-centos-9-x86_64: 9 written, 0 unchanged, 0 removed\n",
        &["app/Dockerfile", "core/Dockerfile", "core/x"],
    );
    test.expect_file(&format!("{DIR}/core/x"), "centos\n");
    // In one layer, it is a clash to fix.
    let test = test.write("templates/rel/squid/core/x/y", "y\n");
    stage_fails(
        test,
        "`templates/rel/squid/core/x.tera` and `templates/rel/squid/core/x/y` both make \
         `core/x` in the same layer: remove one",
    );
}

#[test]
fn a_submodule_git_file_was_staged_into_the_context() {
    let test = Test::with_config()
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .write("templates/src/.git", "gitdir: ../.git/modules/src\n")
        .write("templates/src/core/vendored/.git", "gitdir: elsewhere\n")
        .write("templates/src/core/vendored/lib", "lib\n")
        .write("templates/rel/ALL/core/.git/config", "[core]\n")
        .write("templates/rel/ALL/core/.git/HEAD", "ref: refs/heads/main\n")
        .write("templates/rel/ALL/core/.gitignore", "*.o\n");
    stage_matches_a_clean_stage(
        test,
        "staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n",
        &[
            "app/Dockerfile",
            "core/.gitignore",
            "core/Dockerfile",
            "core/vendored/lib",
        ],
    );
}

#[test]
fn a_newline_in_a_template_name_made_files_sources_ambiguous() {
    let test = staged().write("templates/src/core/two\nlines", "x\n");
    let test = stage_fails(
        test,
        "template file `templates/src/core/two\\nlines` has a control character in its name, \
         which `files-sources` cannot list: rename it",
    );
    std::fs::remove_file(test.path().join("templates/src/core/two\nlines")).unwrap();
    let test = test.write("templates/rel/ALL/core/dir\tname/f", "x\n");
    stage_fails(
        test,
        "template file `templates/rel/ALL/core/dir\\tname` has a control character in its \
         name, which `files-sources` cannot list: rename it",
    );
}

/// The error of a chain of fragments deeper than the limit, from `__F0__`.
const TOO_DEEP: &str = "templates/src/core/__F99__:1: fragments nested more than 100 deep: \
    `__F0__` -> `__F1__` -> `__F2__` -> … 95 more … -> `__F98__` -> `__F99__` -> `__F100__` \
    (staged as `core/Dockerfile`)";

/// `test` with the fragments `__F<level>__` of `levels` in `templates/src/core`, each naming the
/// next and the last `end`.
fn fragment_chain(mut test: Test, levels: std::ops::RangeInclusive<usize>) -> Test {
    let last = *levels.end();
    for level in levels {
        let text = if level == last {
            "end".to_string()
        } else {
            format!("__F{}__", level + 1)
        };
        test = test.write(&format!("templates/src/core/__F{level}__"), &text);
    }
    test
}

#[test]
fn a_chain_of_2000_fragments_overflowed_the_stack() {
    let mut test = staged().write("templates/src/core/Dockerfile", "FROM scratch\n__F0__\n");
    for level in 0..2000 {
        let text = format!("level {level} __F{}__", level + 1);
        test = test.write(&format!("templates/src/core/__F{level}__"), &text);
    }
    stage_fails(test, TOO_DEEP);
}

#[test]
fn a_fragment_expanded_earlier_in_the_image_escaped_the_depth_limit() {
    // `__F50__` is expanded first (71 levels), then reached again 50 levels down.
    let test = fragment_chain(
        staged().write(
            "templates/src/core/Dockerfile",
            "FROM scratch\n__F50__\n__F0__\n",
        ),
        0..=120,
    );
    stage_fails(test, TOO_DEEP);
}

#[test]
fn a_chain_of_100_fragments_is_fine() {
    let test = fragment_chain(
        staged().write("templates/src/core/Dockerfile", "FROM scratch\n__F1__\n"),
        1..=100,
    );
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 6 written, 4 unchanged, 0 removed\n");
    test.run();
    test.expect_file(&format!("{DIR}/core/Dockerfile"), "FROM scratch\nend\n");
}

#[test]
fn ten_fragments_per_level_nine_levels_deep_exhausted_memory() {
    let mut test = staged().write("templates/src/core/Dockerfile", "FROM scratch\n__F0__\n");
    for level in 0..9 {
        let text = format!("__F{}__ ", level + 1).repeat(10);
        test = test.write(&format!("templates/src/core/__F{level}__"), &text);
    }
    let test = test.write("templates/src/core/__F9__", "0123456789");
    let started = Instant::now();
    stage_fails(
        test,
        "templates/src/core/__F2__:1: expanding fragments makes `core/Dockerfile` larger than \
         64 MiB, the limit for a staged file",
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed fast: {:?}",
        started.elapsed()
    );
}

/// A git repository holding a staged-once project, on branch `branch`.
fn on_branch(branch: &str) -> Test {
    let test = Test::with_config()
        .unset("RELEASE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .write("templates/src/core/Dockerfile", "FROM scratch\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .write("templates/rel/ALL/centos/9/.keep", "")
        .write("templates/rel/reef/.keep", "")
        .write(".gitignore", "/staging/\n");
    let home = test.path().join(".home");
    std::fs::create_dir_all(&home).unwrap();
    let test = test
        .env("HOME", home.to_str().unwrap())
        .write(".home/.keep", "");
    git(&test, &["init", "-q", "-b", "main"]);
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "start"]);
    git(&test, &["checkout", "-q", "-b", branch]);
    test
}

fn git(test: &Test, args: &[&str]) -> String {
    crate::common::git(
        test.path(),
        &test.path().join(".home"),
        test.path().parent().unwrap(),
        args,
    )
}

/// `stage`, `plan`, `show vars` and `modified` on branch `branch`, whose RELEASE is `release`.
#[track_caller]
fn branch_makes_release(branch: &str, release: &str) {
    let test = on_branch(branch);
    let tag = |image: &str| format!("ceph/{image}:{release}-squid-centos-stream9-x86_64");
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n")
        .stderr("");
    test.run();
    let test = test
        .args(&["plan", SQUID])
        .stdout(&format!(
            "squid-centos-9-x86_64 core {} {DIR}/core\nsquid-centos-9-x86_64 app {} {DIR}/app\n",
            tag("core"),
            tag("app")
        ))
        .stderr("");
    test.run();
    let commit = git(&test, &["rev-parse", "HEAD"]);
    let test = test
        .args(&["show", "vars", SQUID])
        .stdout(&format!(
            "APP_IMAGE={}
BASEOS_REGISTRY=quay.io
BASEOS_REPO=centos/centos
BASEOS_TAG=stream9
BASE_IMAGE=quay.io/centos/centos:stream9
CEPH_POINT_RELEASE=
CEPH_POINT_RELEASE_TAG=
CEPH_VERSION=squid
CORE_IMAGE={}
DISTRO=centos
DISTRO_VERSION=9
GIT_BRANCH={branch}
GIT_CLEAN=True
GIT_COMMIT={}
GIT_REPO=Unknown repo
GO_ARCH=amd64
HOST_ARCH=x86_64
IMAGES_TO_BUILD=core app
RELEASE={release}
STAGING_DIR={DIR}
TAG_REGISTRY=ceph
",
            tag("app"),
            tag("core"),
            commit.trim()
        ))
        .stderr("");
    test.run();
    let test = test.write("templates/rel/squid/app/extra", "extra\n");
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "change"]);
    test.args(&["modified", "--vs", "main"])
        .stdout(&format!(
            "{SQUID}\nsquid,x86_64,ubuntu,22.04,_,ubuntu,22.04\n"
        ))
        .stderr("")
        .run();
}

#[test]
fn a_branch_with_accents_made_an_invalid_tag() {
    branch_makes_release("été/ünïcode", "ete-unicode");
}

#[test]
fn a_branch_starting_with_plus_made_an_invalid_tag() {
    branch_makes_release("+plus", "plus");
}

#[test]
fn a_130_character_branch_made_an_invalid_tag() {
    let branch = format!("feature/{}", "x".repeat(122));
    assert_eq!(branch.len(), 130);
    let hash: String = Sha256::digest(branch.as_bytes())[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let release = format!("feature-{}-{hash}", "x".repeat(47));
    assert_eq!(release.len(), 64);
    branch_makes_release(&branch, &release);
}
