//! Integrity of the staging root under concurrent, killed and failing runs (issue 10): whatever
//! happened before, one lone `stage` gives byte-for-byte what a clean stage gives, and nothing a
//! killed run leaves behind is taken as content.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{snapshot, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const REEF: &str = "reef,x86_64,centos,9,quay.io,centos/centos,stream9";
const UBUNTU: &str = "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04";
const DIR: &str = "staging/squid-centos-9-x86_64";
const MANIFEST: &str = "staging/squid-centos-9-x86_64/.matriochka/manifest";
const WAITING: &str = "waiting for another matriochka run on `staging/`\n";
const HELD: &str = "error: another matriochka run holds `staging/`: wait for it, or unset --no-wait / MATRIOCHKA_NO_WAIT\n";

/// A staging root's files: relative path → (mode, bytes).
type Snapshot = BTreeMap<String, (u32, Vec<u8>)>;

/// A project with a few templates, some of which name the release, and `small` more files.
fn project(small: usize) -> Test {
    let mut test = Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nLABEL release=__ENV_[RELEASE]__\n",
        )
        .write("templates/src/core/release", "__ENV_[RELEASE]__\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .write("templates/rel/squid/app/squid", "squid only\n");
    for n in 0..small {
        test = test.write(
            &format!("templates/src/core/small/{n}"),
            &format!("small {n} __ENV_[RELEASE]__\n"),
        );
    }
    test
}

/// Waits until the templates of a project just written are old enough for the fast path to
/// record them (a template changed within a second of a run is not).
fn age_templates() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// The staging root's files but the lock and the manifests (they hold inode numbers and times).
fn staged(test: &Test) -> Snapshot {
    snapshot(&test.path().join("staging"))
        .into_iter()
        .filter(|(path, _)| path != ".lock" && !path.ends_with("/.matriochka/manifest"))
        .collect()
}

/// Fails with the paths that differ between two [`staged`] snapshots.
#[track_caller]
fn assert_same(actual: &Snapshot, expected: &Snapshot, what: &str) {
    let differ: std::collections::BTreeSet<&String> = actual
        .keys()
        .chain(expected.keys())
        .filter(|path| actual.get(*path) != expected.get(*path))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: these differ from a clean stage: {differ:?}"
    );
}

/// What a clean stage of `project` gives with `release`.
fn clean_stage(project: Test, release: &str, flavors: &[&str]) -> Snapshot {
    clean_stage_timed(project, release, flavors).0
}

/// [`clean_stage`], and how long after its start the run began to write (made the staging dir of
/// its first flavor) and ended: what any version of the tool does, so that kills timed from these
/// land in the same phases whatever the code under test.
fn clean_stage_timed(
    project: Test,
    release: &str,
    flavors: &[&str],
) -> (Snapshot, Duration, Duration) {
    let started = Instant::now();
    let mut child = spawn_stage(&project, release, flavors);
    let deadline = started + Duration::from_secs(30);
    let first_dir = project.path().join(DIR);
    while !first_dir.exists() && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the run never began to write");
        std::thread::sleep(Duration::from_micros(200));
    }
    let writing = started.elapsed();
    succeeded(child);
    let ended = started.elapsed();
    (staged(&project), writing, ended)
}

/// Every path below `dir` (files, directories, links) whose name starts as older versions named
/// their temporaries, and every entry of the staging root's temp directory.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.unwrap().into_path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(".tmp-matriochka-"))
        })
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("staging/.tmp")) {
        found.extend(entries.map(|entry| entry.unwrap().path()));
    }
    found
}

/// Starts `matriochka stage` with `release` on `flavors`, its output captured.
fn spawn_stage(test: &Test, release: &str, flavors: &[&str]) -> Child {
    let mut command = test.command();
    command
        .arg("stage")
        .args(flavors)
        .env("RELEASE", release)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().unwrap()
}

/// Waits for a run started by [`spawn_stage`]: it succeeded, saying at most that it waited.
#[track_caller]
fn succeeded(child: Child) {
    if let Err(failure) = outcome(child) {
        panic!("{failure}");
    }
}

/// How a run started by [`spawn_stage`] ended: `Err` unless it succeeded, saying at most that it
/// waited.
fn outcome(child: Child) -> Result<(), String> {
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() && (stderr.is_empty() || stderr == WAITING) {
        Ok(())
    } else {
        Err(format!("status {}, stderr:\n{stderr}", output.status))
    }
}

/// Holds the staging root's lock, as another run would.
fn hold_lock(test: &Test) -> File {
    std::fs::create_dir_all(test.path().join("staging")).unwrap();
    let file = File::open(test.path().join("staging")).unwrap();
    file.lock().unwrap();
    file
}

/// `command` run through `sh -c script`, with its environment and directory.
fn through_shell(command: &Command, script: &str) -> Command {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(script).arg(command.get_program());
    shell.args(command.get_args());
    shell.env_clear();
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            shell.env(name, value);
        }
    }
    shell.current_dir(command.get_current_dir().unwrap());
    shell
}

/// A small xorshift generator: random kill points without a dependency, from a seed printed on
/// failure.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn a_stage_waits_while_another_run_holds_the_staging_root() {
    let test = project(0);
    let lock = hold_lock(&test);
    let mut child = spawn_stage(&test, "test", &[SQUID]);
    // The note comes before the run blocks: read up to it, then let the run go on.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut note = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut note).unwrap();
    assert_eq!(note, WAITING);
    assert!(
        !test.path().join(DIR).exists(),
        "nothing staged under another run's lock"
    );
    assert!(child.try_wait().unwrap().is_none(), "still waiting");
    drop(lock);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(rest, "");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n"
    );
    assert!(output.status.success());
}

#[test]
fn no_wait_fails_at_once_while_another_run_holds_the_staging_root() {
    let test = project(0);
    let lock = hold_lock(&test);
    let test = test
        .args(&["stage", "--no-wait", SQUID])
        .stdout("")
        .stderr(HELD)
        .status(1);
    test.run();
    let test = test
        .args(&["stage", SQUID])
        .env("MATRIOCHKA_NO_WAIT", "1")
        .stdout("")
        .stderr(HELD)
        .status(1);
    test.run();
    assert!(!test.path().join(DIR).exists(), "nothing staged");
    drop(lock);
    // Without: it stages (after a wait, when a process another test thread forked still holds the
    // lock's file for a moment).
    let test = test.unset("MATRIOCHKA_NO_WAIT").args(&[]);
    succeeded(spawn_stage(&test, "test", &[SQUID]));
    assert!(test.path().join(DIR).join("core/Dockerfile").is_file());
}

#[test]
fn a_lone_stage_after_concurrent_stages_gives_what_a_clean_stage_gives() {
    let all = [SQUID, REEF, UBUNTU];
    let test = project(10);
    let clean = clean_stage(project(10), "a", &all);
    age_templates();
    let mut test = test;
    for round in 0..4 {
        // From an empty staging root (the case that broke most), and over a staged one.
        if round % 2 == 0 {
            let _ = std::fs::remove_dir_all(test.path().join("staging"));
        }
        let runs = [
            spawn_stage(&test, "a", &all),
            spawn_stage(&test, "b", &all),
            spawn_stage(&test, "c", &[SQUID]),
        ];
        let outcomes: Vec<_> = runs.into_iter().map(outcome).collect();
        succeeded(spawn_stage(&test, "a", &all));
        assert_same(&staged(&test), &clean, "a lone stage after concurrent ones");
        // Checked after the lone stage, which must repair whatever they left.
        assert_eq!(outcomes, [Ok(()), Ok(()), Ok(())], "concurrent runs");
        // And a run after it changes nothing.
        test = test
            .env("RELEASE", "a")
            .args(&["stage", SQUID, REEF, UBUNTU])
            .stdout(
                "
                staged staging/squid-centos-9-x86_64: 0 written, 20 unchanged, 0 removed
                staged staging/reef-centos-9-x86_64: 0 written, 19 unchanged, 0 removed
                staged staging/squid-ubuntu-22.04-x86_64: 0 written, 20 unchanged, 0 removed
                ",
            )
            .stderr("");
        test.run();
        assert_same(&staged(&test), &clean, "a stage after it");
        test = test.args(&[]);
    }
}

#[test]
fn two_first_stages_at_once_both_succeed() {
    let all = [SQUID, REEF, UBUNTU];
    let test = project(40);
    let clean = clean_stage(project(40), "a", &all);
    for _ in 0..5 {
        let _ = std::fs::remove_dir_all(test.path().join("staging"));
        let runs = [spawn_stage(&test, "a", &all), spawn_stage(&test, "a", &all)];
        runs.into_iter().for_each(succeeded);
        assert_same(&staged(&test), &clean, "two first stages at once");
    }
}

/// The templates of the kill test: one big file and many small ones, in two variants, written as
/// the layer `dir` (`templates/rel/squid` is squid's release layer).
fn variant(test: Test, which: usize, dir: &str) -> Test {
    let mut big = vec![b"ab"[which]; 3 << 20];
    big[1 << 20] = b'\n';
    let mut test = test
        .write_bytes(&format!("{dir}/core/big"), &big, 0o644)
        .write(&format!("{dir}/app/squid"), "squid only\n");
    for n in 0..100 {
        test = test.write(
            &format!("{dir}/core/small/{n}"),
            &format!("small {n} of variant {which}\n"),
        );
    }
    if which == 0 {
        for n in 0..20 {
            test = test.write(&format!("{dir}/app/only-first/{n}"), "first\n");
        }
    }
    test
}

/// Checks, after a killed run, that each digest on disk describes the context on disk: it is the
/// digest of that image in one of the clean stages, and the context is that stage's.
#[track_caller]
fn digests_match_contexts(test: &Test, cleans: &[Snapshot], seed: u64) {
    let now = staged(test);
    for image in ["core", "app"] {
        let digest = format!("squid-centos-9-x86_64/.matriochka/{image}.sha256");
        let Some(on_disk) = now.get(&digest) else {
            continue;
        };
        let context = |files: &Snapshot| -> Vec<(String, (u32, Vec<u8>))> {
            let prefix = format!("squid-centos-9-x86_64/{image}/");
            files
                .iter()
                .filter(|(path, _)| path.starts_with(&prefix))
                .map(|(path, file)| (path.clone(), file.clone()))
                .collect()
        };
        let clean = cleans
            .iter()
            .find(|clean| clean.get(&digest) == Some(on_disk))
            .unwrap_or_else(|| panic!("seed {seed}: `{digest}` of no clean stage"));
        assert!(
            context(&now) == context(clean),
            "seed {seed}: `{digest}` names a context that is not on disk"
        );
    }
}

#[test]
fn a_killed_stage_leaves_nothing_that_a_later_stage_keeps() {
    const LAYER: &str = "templates/rel/squid";
    let (first, first_writing, first_ended) =
        clean_stage_timed(variant(project(0), 0, LAYER), "test", &[SQUID]);
    let (second, second_writing, second_ended) =
        clean_stage_timed(variant(project(0), 1, LAYER), "test", &[SQUID]);
    let cleans = [first, second];
    // Kills land anywhere from a little before the writes start to a little after a run ends (an
    // update takes about as long as a first stage).
    let from = first_writing.min(second_writing).as_micros() as u64 * 8 / 10;
    let to = first_ended.max(second_ended).as_micros() as u64 * 11 / 10;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut random = Random(seed);
    // Both variants written once; a rename puts one in place.
    let test = variant(variant(project(0), 0, "variants/0"), 1, "variants/1");
    std::fs::remove_dir_all(test.path().join(LAYER)).unwrap();
    for iteration in 0..30 {
        let which = iteration % 2;
        let layer = test.path().join(LAYER);
        let variants = test.path().join("variants");
        if iteration > 0 {
            std::fs::rename(&layer, variants.join((1 - which).to_string())).unwrap();
        }
        std::fs::rename(variants.join(which.to_string()), &layer).unwrap();
        let mut child = spawn_stage(&test, "test", &[SQUID]);
        std::thread::sleep(Duration::from_micros(from + random.below(to - from)));
        let _ = child.kill();
        child.wait().unwrap();
        digests_match_contexts(&test, &cleans, seed);
        let output = test.command().args(["stage", SQUID]).output().unwrap();
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "seed {seed}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_same(
            &staged(&test),
            &cleans[which],
            &format!("seed {seed}, iteration {iteration}"),
        );
        assert_eq!(
            temporaries(test.path()),
            Vec::<PathBuf>::new(),
            "seed {seed}"
        );
    }
}

#[test]
fn temporaries_of_a_killed_run_are_removed_by_the_next_run() {
    let test = project(0)
        .write("staging/.tmp/4242-0", "partial")
        .write(&format!("{DIR}/core/.tmp-matriochka-4242-big"), "partial")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 1 removed\n")
        .stderr("");
    test.run();
    assert_eq!(temporaries(test.path()), Vec::<PathBuf>::new());
    assert!(test.path().join("staging/.tmp").is_dir());
}

#[test]
fn a_template_named_like_a_staging_temporary_is_staged_and_removed_when_gone() {
    let test = project(0)
        .write("templates/src/core/.tmp-matriochka-1-notes", "notes\n")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 11 written, 0 unchanged, 0 removed\n")
        .stderr("");
    test.run();
    assert_eq!(
        test.read(&format!("{DIR}/core/.tmp-matriochka-1-notes")),
        "notes\n"
    );
    std::fs::remove_file(
        test.path()
            .join("templates/src/core/.tmp-matriochka-1-notes"),
    )
    .unwrap();
    let test =
        test.stdout("staged staging/squid-centos-9-x86_64: 5 written, 5 unchanged, 1 removed\n");
    test.run();
    assert!(!test
        .path()
        .join(format!("{DIR}/core/.tmp-matriochka-1-notes"))
        .exists());
}

#[test]
fn a_failed_write_leaves_the_flavor_without_digests_or_manifest_and_the_next_run_restages_it() {
    let test = project(3);
    age_templates();
    let test = test
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 13 written, 0 unchanged, 0 removed\n")
        .stderr("");
    test.run();
    assert!(test.path().join(MANIFEST).is_file());
    // An update whose big new file does not fit: a file size limit fails the write as a full
    // disk would (for root too), the signal it sends ignored so that the write returns an error.
    let test = test
        .write("templates/src/core/release", "changed __ENV_[RELEASE]__\n")
        .write_bytes("templates/src/core/small/big", &vec![b'x'; 1 << 20], 0o644)
        .write("templates/src/app/added", "added\n");
    let mut command = through_shell(
        &test.command(),
        r#"ulimit -f 256; trap "" XFSZ; exec "$0" "$@""#,
    );
    let output = command.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: failed to write `./staging/squid-centos-9-x86_64/core/small/big`: File too large (os error 27)\n"
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        !test.path().join(format!("{DIR}/.matriochka")).exists(),
        "no digest for make to build from, no manifest for the fast path"
    );
    // So make refuses to build the flavor's images on the half-written context.
    let make = Command::new("make")
        .current_dir(test.path())
        .args(["-n", "-f", "staging/build.mk", "build"])
        .output()
        .unwrap();
    let make_stderr = String::from_utf8_lossy(&make.stderr);
    assert_eq!(make.status.code(), Some(2), "make: {make_stderr}");
    assert!(
        make_stderr.contains("No rule to make target 'staging/squid-centos-9-x86_64/.matriochka/"),
        "make: {make_stderr}"
    );
    let clean = clean_stage(
        project(3)
            .write("templates/src/core/release", "changed __ENV_[RELEASE]__\n")
            .write_bytes("templates/src/core/small/big", &vec![b'x'; 1 << 20], 0o644)
            .write("templates/src/app/added", "added\n"),
        "test",
        &[SQUID],
    );
    let test = test
        .stdout("staged staging/squid-centos-9-x86_64: 7 written, 8 unchanged, 0 removed\n")
        .stderr("");
    test.run();
    assert_same(&staged(&test), &clean, "restaged fully");
}

#[test]
fn a_binary_rewritten_in_place_is_noticed_by_the_fast_path() {
    let test = project(0);
    let bin = tempfile::tempdir().unwrap();
    let exe = bin.path().join("matriochka");
    std::fs::copy(assert_cmd::cargo::cargo_bin("matriochka"), &exe).unwrap();
    let run = |test: &Test| {
        let built = test.command();
        let mut command = Command::new(&exe);
        command.args(built.get_args()).env_clear();
        for (name, value) in built.get_envs() {
            command.env(name, value.unwrap());
        }
        command.current_dir(built.get_current_dir().unwrap());
        // A fork of another test thread may still hold the copy open for writing a moment.
        let output = loop {
            match command.output() {
                Err(err) if err.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                output => break output.unwrap(),
            }
        };
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    age_templates();
    let test = test.args(&["stage", SQUID]);
    run(&test);
    // Written again (a new file, maybe with the inode just freed) by a stage past the fast path.
    let manifest = || {
        let meta = std::fs::metadata(test.path().join(MANIFEST)).unwrap();
        (meta.ino(), meta.ctime(), meta.ctime_nsec())
    };
    let recorded = manifest();
    let no_op = "staged staging/squid-centos-9-x86_64: 0 written, 10 unchanged, 0 removed\n";
    assert_eq!(run(&test), no_op);
    assert_eq!(
        manifest(),
        recorded,
        "the fast path took the unchanged flavor"
    );
    // The same bytes written in place, the mtime put back: only the ctime tells.
    let before = std::fs::metadata(&exe).unwrap();
    let bytes = std::fs::read(&exe).unwrap();
    let file = File::options().write(true).open(&exe).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &bytes[..1], 0).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    let after = std::fs::metadata(&exe).unwrap();
    assert_eq!(
        (after.ino(), after.len(), after.modified().unwrap()),
        (before.ino(), before.len(), before.modified().unwrap())
    );
    assert_eq!(run(&test), no_op);
    assert_ne!(
        manifest(),
        recorded,
        "a stage past the fast path records it again"
    );
}

#[test]
fn a_staging_dir_among_the_staging_roots_own_entries_is_an_error() {
    let test = project(0);
    let config = test.read("flavors/matriochka.toml");
    let staging_dir = config
        .lines()
        .find(|line| line.starts_with("staging_dir = "))
        .unwrap();
    let test = test
        .write(
            "flavors/matriochka.toml",
            &config.replace(staging_dir, r#"staging_dir = "staging/.tmp""#),
        )
        .args(&["stage", SQUID])
        .stdout("")
        .stderr(&format!(
            "error: failed to stage `{SQUID}`: staging dir `staging/.tmp` is reserved: the entries of `staging` starting with `.` are matriochka's own\n"
        ))
        .status(1);
    test.run();
    assert_eq!(temporaries(test.path()), Vec::<PathBuf>::new());
}
