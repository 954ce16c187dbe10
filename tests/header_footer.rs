//! Header and footer (`HEADER`/`FOOTER`, `stage --header/--footer`): lines added after the first
//! FROM of the images built on an outside base and at the end of every Dockerfile, part of the
//! staged context.

use crate::common::Test;

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const ID: &str = "squid-centos-9-x86_64";

fn project() -> Test {
    Test::with_config()
        .write(
            "templates/rel/ALL/centos/9/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nRUN dnf install -y ceph\n",
        )
        .write(
            "templates/rel/ALL/centos/9/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\nRUN true",
        )
        .write("templates/rel/squid/centos/.keep", "")
        .write("header.txt", "ENV http_proxy=http://proxy:3128\n")
        .write("footer.txt", "ENV http_proxy=\"\"")
        .env("RELEASE", "test")
}

#[track_caller]
fn stage(test: Test, args: &[&str], written: usize, unchanged: usize) -> Test {
    let mut all = vec!["stage"];
    all.extend(args);
    all.push(SQUID);
    let test = test.args(&all).stdout(&format!(
        "staged staging/{ID}: {written} written, {unchanged} unchanged, 0 removed\n"
    ));
    test.run();
    test
}

#[test]
fn the_header_goes_to_external_bases_only_and_the_footer_everywhere() {
    let test = project()
        .env("HEADER", "header.txt")
        .env("FOOTER", "footer.txt");
    let test = stage(test, &[], 10, 0);
    test.expect_file(
        &format!("staging/{ID}/core/Dockerfile"),
        "FROM quay.io/centos/centos:stream9\nENV http_proxy=http://proxy:3128\nRUN dnf install -y ceph\nENV http_proxy=\"\"\n",
    );
    test.expect_file(
        &format!("staging/{ID}/app/Dockerfile"),
        "FROM ceph/core:test-squid-centos-stream9-x86_64\nRUN true\nENV http_proxy=\"\"\n",
    );
    let sources = test.read(&format!("staging/{ID}/files-sources"));
    assert!(
        sources.contains(
            "app/Dockerfile <- templates/rel/ALL/centos/9/app/Dockerfile\n    FOOTER <- footer.txt\n"
        ),
        "{sources}"
    );
    assert!(
        sources.contains(
            "core/Dockerfile <- templates/rel/ALL/centos/9/core/Dockerfile\n    FOOTER <- footer.txt\n    HEADER <- header.txt\n"
        ),
        "{sources}"
    );
}

#[test]
fn the_options_of_stage_stand_for_the_variables() {
    let test = stage(
        project(),
        &["--header", "header.txt", "--footer", "footer.txt"],
        10,
        0,
    );
    assert!(test
        .read(&format!("staging/{ID}/core/Dockerfile"))
        .contains("\nENV http_proxy=http://proxy:3128\nRUN dnf"));
}

#[test]
fn a_changed_header_restages_past_the_fast_path_and_changes_the_digest() {
    let test = project().env("HEADER", "header.txt");
    // Templates a second old, so that the stage records its manifest (the fast path).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let test = stage(test, &[], 10, 0);
    assert!(test
        .path()
        .join(format!("staging/{ID}/.matriochka/manifest"))
        .is_file());
    let digest = test.read(&format!("staging/{ID}/.matriochka/core.sha256"));
    let test = stage(test, &[], 0, 10);
    let before = test.tree("staging");
    let test = test.write("header.txt", "ENV http_proxy=http://other:3128\n");
    let test = test.args(&["stage", SQUID]).any_stdout();
    test.run();
    let after = test.tree("staging");
    let changed: Vec<&String> = after
        .keys()
        .filter(|path| before.get(*path) != after.get(*path))
        .collect();
    assert_eq!(
        changed,
        [
            &format!("{ID}/.matriochka/app.json"),
            &format!("{ID}/.matriochka/core.json"),
            &format!("{ID}/.matriochka/core.sha256"),
            &format!("{ID}/.matriochka/manifest"),
            &format!("{ID}/core/Dockerfile"),
            &format!("{ID}/flavor.mk"),
        ]
    );
    assert_ne!(
        test.read(&format!("staging/{ID}/.matriochka/core.sha256")),
        digest
    );
    let test = test
        .write("header.txt", "ENV http_proxy=http://proxy:3128\n")
        .args(&["stage", SQUID])
        .any_stdout();
    test.run();
    assert_eq!(
        test.read(&format!("staging/{ID}/.matriochka/core.sha256")),
        digest
    );
}

#[test]
fn a_missing_header_is_one_line_and_nothing_is_written() {
    let test = project()
        .env("FOOTER", "nothere.txt")
        .args(&["stage", SQUID])
        .stderr(
            "error: failed to read footer `nothere.txt`: No such file or directory (os error 2)\n",
        )
        .status(1);
    test.run();
    assert!(!test.path().join("staging").exists());
}

/// A FIFO's path, made with `mkfifo`.
fn mkfifo(test: &Test, path: &str) {
    let full = test.path().join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&full)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `test`'s command, killing it after 20 s (a run blocked on a FIFO fails the test instead
/// of hanging it); its exit code and stderr.
fn run_bounded(test: &Test) -> (Option<i32>, String) {
    let mut child = test.spawn();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() > 20 {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

/// Issue 21: a `HEADER` naming a FIFO hung `stage`, `/dev/zero` read until memory ran out: only a
/// regular file is read, and anything else is one line before anything is written.
#[test]
fn a_header_or_footer_that_is_no_regular_file_is_one_line() {
    for (name, path, kind) in [
        ("HEADER", "pipe", "a FIFO"),
        ("FOOTER", "/dev/zero", "a character device"),
        ("HEADER", "templates", "a directory"),
    ] {
        let test = project().env(name, path).args(&["stage", SQUID]);
        mkfifo(&test, "pipe");
        let (code, stderr) = run_bounded(&test);
        let what = name.to_lowercase();
        assert_eq!(
            stderr,
            format!("error: failed to read {what} `{path}`: {kind}, not a regular file\n")
        );
        assert_eq!(code, Some(1));
        assert!(!test.path().join("staging").exists());
    }
}

/// Issue 21: a FIFO, socket or device among the templates was silently left out of the image.
#[test]
fn a_template_that_is_a_fifo_is_an_error_naming_it() {
    let test = project();
    mkfifo(&test, "templates/rel/ALL/centos/9/core/pipe");
    let test = test
        .args(&["stage", SQUID])
        .stderr(
            "error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: \
             template `templates/rel/ALL/centos/9/core/pipe` is a FIFO, not a regular \
             file: templates hold only files, directories and links to them\n",
        )
        .status(1);
    test.run();
    assert!(!test.path().join(format!("staging/{ID}")).exists());
}
