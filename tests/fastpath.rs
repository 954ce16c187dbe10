//! The staging fast path: an unchanged flavor is recognized from its manifest without reading or
//! rendering anything, and every change of an input or an output still restages it.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::{mtimes, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const DIR: &str = "staging/squid-centos-9-x86_64";
const MANIFEST: &str = "staging/squid-centos-9-x86_64/.matriochka/manifest";
const NO_OP: &str = "staged staging/squid-centos-9-x86_64: 0 written, 10 unchanged, 0 removed\n";

/// A flavor staged from templates old enough to be recorded (a template changed within a second
/// of a run is not), with its manifest written.
fn staged() -> Test {
    let test = Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n__INSTALL__\n",
        )
        .write(
            "templates/src/core/__INSTALL__",
            "RUN install __ENV_[CEPH_DEVEL]__\n",
        )
        .write("templates/src/core/conf", "conf one\n")
        .write("templates/src/core/sub/deep", "deep\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .env("CEPH_DEVEL", "false");
    std::thread::sleep(Duration::from_millis(1100));
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n");
    test.run();
    assert!(test.path().join(MANIFEST).is_file(), "manifest written");
    test
}

fn path(test: &Test, rel: &str) -> PathBuf {
    test.path().join(rel)
}

/// The manifest's inode: a stage that goes past the fast path writes a new one.
fn manifest_inode(test: &Test) -> Option<u64> {
    std::fs::metadata(path(test, MANIFEST))
        .ok()
        .map(|m| m.ino())
}

/// Rewrites a file with `text` and gives it back its mtime: only its ctime tells.
fn replace_keeping_mtime(test: &Test, rel: &str, text: &str) {
    let file = path(test, rel);
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
}

#[test]
fn a_no_op_stage_reads_and_writes_nothing() {
    let test = staged();
    let before = mtimes(&path(&test, DIR));
    let inode = manifest_inode(&test);
    let test = test.stdout(NO_OP);
    test.run();
    assert_eq!(before, mtimes(&path(&test, DIR)), "nothing written");
    assert_eq!(
        inode,
        manifest_inode(&test),
        "the manifest was trusted, not rewritten"
    );
}

#[test]
fn a_first_stage_right_after_a_template_edit_writes_no_manifest() {
    let test = Test::with_config()
        .write("templates/src/Dockerfile", "FROM scratch\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 8 written, 0 unchanged, 0 removed\n");
    test.run();
    assert!(!path(&test, MANIFEST).exists());
}

#[test]
fn a_hand_edited_staged_file_is_restored() {
    let test = staged();
    std::fs::write(path(&test, &format!("{DIR}/core/conf")), "edited by hand\n").unwrap();
    let test =
        test.stdout("staged staging/squid-centos-9-x86_64: 1 written, 9 unchanged, 0 removed\n");
    test.run();
    assert_eq!(test.read(&format!("{DIR}/core/conf")), "conf one\n");
}

#[test]
fn a_staged_file_with_other_bytes_of_the_same_size_and_mtime_is_restored() {
    let test = staged();
    replace_keeping_mtime(&test, &format!("{DIR}/core/conf"), "conf two\n");
    let test =
        test.stdout("staged staging/squid-centos-9-x86_64: 1 written, 9 unchanged, 0 removed\n");
    test.run();
    assert_eq!(test.read(&format!("{DIR}/core/conf")), "conf one\n");
    // Written again after that stage: trusted from now on.
    let test = test.stdout(NO_OP);
    test.run();
}

#[test]
fn a_template_edited_with_the_same_size_and_mtime_is_picked_up() {
    let test = staged();
    replace_keeping_mtime(
        &test,
        "templates/src/core/__INSTALL__",
        "RUN INSTALL __ENV_[CEPH_DEVEL]__\n",
    );
    let test =
        test.stdout("staged staging/squid-centos-9-x86_64: 5 written, 5 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read(&format!("{DIR}/core/Dockerfile")),
        "FROM quay.io/centos/centos:stream9\nRUN INSTALL false\n"
    );
}

#[test]
fn a_new_template_file_is_picked_up() {
    let test = staged()
        .write("templates/rel/squid/core/added", "added\n")
        .stdout("staged staging/squid-centos-9-x86_64: 6 written, 5 unchanged, 0 removed\n");
    test.run();
    assert_eq!(test.read(&format!("{DIR}/core/added")), "added\n");
}

#[test]
fn a_removed_template_file_is_picked_up() {
    let test = staged();
    std::fs::remove_file(path(&test, "templates/src/core/sub/deep")).unwrap();
    let test =
        test.stdout("staged staging/squid-centos-9-x86_64: 5 written, 4 unchanged, 1 removed\n");
    test.run();
    assert!(!path(&test, &format!("{DIR}/core/sub")).exists());
}

#[test]
fn a_changed_allowed_environment_variable_is_picked_up() {
    let test = staged()
        .env("CEPH_DEVEL", "true")
        .stdout("staged staging/squid-centos-9-x86_64: 5 written, 5 unchanged, 0 removed\n");
    test.run();
    assert!(test
        .read(&format!("{DIR}/core/Dockerfile"))
        .ends_with("RUN install true\n"));
}

#[test]
fn a_changed_tag_registry_rewrites_flavor_mk() {
    let test = staged();
    assert!(!test
        .read(&format!("{DIR}/flavor.mk"))
        .contains("example.org"));
    // The app's Dockerfile names the core image, whose tag changes too.
    let test = test
        .env("TAG_REGISTRY", "example.org/ceph")
        .stdout("staged staging/squid-centos-9-x86_64: 5 written, 5 unchanged, 0 removed\n");
    test.run();
    assert!(test
        .read(&format!("{DIR}/flavor.mk"))
        .contains("$(call _m_missing,example.org/ceph/core:test-squid-centos-stream9-x86_64)"));
}

#[test]
fn a_changed_configuration_is_picked_up() {
    let test = staged();
    let config = test.read("flavors/matriochka.toml");
    let test = test
        .write(
            "flavors/matriochka.toml",
            &config.replace("[layout]", "[layout]\nkeep_fragments = true"),
        )
        .stdout("staged staging/squid-centos-9-x86_64: 6 written, 5 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read(&format!("{DIR}/core/__INSTALL__")),
        "RUN install __ENV_[CEPH_DEVEL]__\n"
    );
}

#[test]
fn stray_files_and_directories_are_removed() {
    let test = staged()
        .write(&format!("{DIR}/core/stray"), "stray\n")
        .stdout("staged staging/squid-centos-9-x86_64: 0 written, 10 unchanged, 1 removed\n");
    test.run();
    assert!(!path(&test, &format!("{DIR}/core/stray")).exists());

    std::fs::create_dir(path(&test, &format!("{DIR}/empty"))).unwrap();
    let test = test.stdout(NO_OP);
    test.run();
    assert!(!path(&test, &format!("{DIR}/empty")).exists());
}

#[test]
fn a_removed_staged_file_is_written_again() {
    let test = staged();
    std::fs::remove_file(path(&test, &format!("{DIR}/app/Dockerfile"))).unwrap();
    let test =
        test.stdout("staged staging/squid-centos-9-x86_64: 1 written, 9 unchanged, 0 removed\n");
    test.run();
    assert_eq!(
        test.read(&format!("{DIR}/app/Dockerfile")),
        "FROM ceph/core:test-squid-centos-stream9-x86_64\n"
    );
}
