//! What the top-level Makefile takes from users (issue 21): variables are data, never make or
//! shell code; paths make cannot hold are refused with one line; the staging root comes from the
//! configuration; `make install`; `build.parallel` output grouped per image.

use std::path::Path;
use std::process::Output;

use crate::common::stub::{calls_of, recording_engine};
use crate::common::{
    self, assert_make_output as assert_output, bin, build_project, fake_checkout, make_command,
    make_text, path_with, repo_make, repo_makefile_text, Test, CONFIG,
};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const REEF: &str = "reef,x86_64,centos,9,quay.io,centos/centos,stream9";
const ID: &str = "squid-centos-9-x86_64";
const CORE_TAG: &str = "ceph/core:test-squid-centos-stream9-x86_64";
const PWNED: &str = "$(shell touch PWNED)";

fn project() -> Test {
    build_project().write_bytes(
        "engine",
        recording_engine(r#" echo "stub build";;"#).as_bytes(),
        0o755,
    )
}

/// `make -f <repo>/Makefile MATRIOCHKA=<test binary> ARGS` in `dir`, the stub engine, plus `env`.
fn make_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let matriochka = format!("MATRIOCHKA={}", bin());
    let makefile = format!("{}/Makefile", env!("CARGO_MANIFEST_DIR"));
    common::make_in(
        dir,
        &makefile,
        env,
        &[&[matriochka.as_str()], args].concat(),
    )
}

/// `make ARGS` in a project holding a copy of the repository's Makefile at `makefile`.
fn make_copied(makefile: &str, args: &[&str]) -> (Test, Output) {
    let test = project().write(makefile, &repo_makefile_text());
    let output = make_command(test.path()).args(args).output().unwrap();
    (test, output)
}

/// No file named `PWNED` anywhere below `dir`.
#[track_caller]
fn assert_no_pwned(dir: &Path) {
    let found: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() == "PWNED")
        .map(|entry| entry.path().display().to_string())
        .collect();
    assert!(found.is_empty(), "{found:?}");
}

/// Issue 21: `$(if $(ARCHES),…)` in build.all/push.all expanded ARCHES from the environment as
/// make code, even under `make -n`.
#[test]
fn arches_from_the_environment_is_data() {
    let test = project();
    for target in ["build.all", "push.all"] {
        let output = make_in(test.path(), &[("ARCHES", PWNED)], &["-n", target]);
        assert_output(
            &output,
            &format!(
                "flavors=\"$(<matriochka> show flavors --arch \"$ARCHES\")\" && make \
                 --no-print-directory -f <repo>/Makefile {} FLAVORS=\"$flavors\"\n",
                target.replace(".all", ".parallel")
            ),
            &format!(
                "error: no buildable flavor for arch `{PWNED}`; buildable arches: x86_64\n\
                 make: *** [<repo>/Makefile:N: {target}] Error 1\n"
            ),
            2,
        );
        assert_no_pwned(test.path());
    }
}

/// Issue 21: STAGING_ROOT from the environment ran as make code, from the command line as shell
/// code. The staging root is `layout.staging_root`; STAGING_ROOT is not read.
#[test]
fn staging_root_from_the_environment_or_the_command_line_is_not_read() {
    let test = project();
    let stage = format!(
        "<matriochka> stage\n\
         staged staging/{ID}: 9 written, 0 unchanged, 0 removed\n\
         <matriochka> check-arches\n"
    );
    let sub = "make --no-print-directory -f staging/build.mk build; <matriochka> report --finish \
               build --dry-run --status $?\n";
    // Staged the second time: the sub-make's line is then the first.
    let staged_again =
        format!("{stage}{sub}").replace("9 written, 0 unchanged", "0 written, 9 unchanged");
    for (env, args, expected) in [
        (
            vec![("STAGING_ROOT", PWNED)],
            vec!["-n", "build"],
            format!("{stage}{sub}"),
        ),
        (
            vec![],
            vec!["-n", "build", "STAGING_ROOT=x;touch PWNED;"],
            staged_again,
        ),
    ] {
        let output = make_in(test.path(), &env, &args);
        let stdout = make_text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            make_text(&output.stderr)
        );
        assert!(stdout.starts_with(&expected), "{stdout}");
    }
    assert_no_pwned(test.path());
    assert!(calls_of(&test, "build").is_empty(), "make -n built nothing");
}

/// Issue 21: MATRIOCHKA and CONTAINER_ENGINE are run by make and the shell: values that would be
/// code are refused with one line before anything runs.
#[test]
fn a_matriochka_or_container_engine_holding_code_is_one_error() {
    let test = project();
    let makefile = "<repo>/Makefile:N: *** ";
    for (name, value, error) in [
        (
            "MATRIOCHKA",
            PWNED,
            format!(
                "MATRIOCHKA `{PWNED}` is not a plain path: use only letters, digits and `._+@/-`"
            ),
        ),
        (
            "MATRIOCHKA",
            "matriochka; touch PWNED",
            "MATRIOCHKA `matriochka; touch PWNED` is not a plain path: use only letters, digits \
             and `._+@/-`"
                .to_string(),
        ),
        (
            "CONTAINER_ENGINE",
            "podman $(shell touch PWNED)",
            "CONTAINER_ENGINE `podman $(shell touch PWNED)` is not a program and its options: use \
             only letters, digits, blanks and `._+@/=:,-`"
                .to_string(),
        ),
        (
            "CONTAINER_ENGINE",
            "podman; touch PWNED",
            "CONTAINER_ENGINE `podman; touch PWNED` is not a program and its options: use only \
             letters, digits, blanks and `._+@/=:,-`"
                .to_string(),
        ),
    ] {
        // From the environment, and from the command line (after make's own MATRIOCHKA=).
        let mut command = repo_make(&test);
        command.env(name, value).args(["-n", "build"]);
        if name == "MATRIOCHKA" {
            // repo_make's MATRIOCHKA= on the command line would win over the environment.
            command = make_command(test.path());
            command.env(name, value).args([
                "--no-print-directory",
                "-f",
                &format!("{}/Makefile", env!("CARGO_MANIFEST_DIR")),
                "-n",
                "build",
            ]);
        }
        let from_env = command.output().unwrap();
        let from_line = make_in(
            test.path(),
            &[],
            &["-n", "build", &format!("{name}={value}")],
        );
        for output in [from_env, from_line] {
            assert_output(&output, "", &format!("{makefile}{error}.  Stop.\n"), 2);
        }
    }
    // An engine with options is fine.
    let output = make_in(
        test.path(),
        &[(
            "CONTAINER_ENGINE",
            "./engine --root=/x,y --url unix:///run/p.sock",
        )],
        &["-n", "clean.nones"],
    );
    assert_output(
        &output,
        "set -f; $CONTAINER_ENGINE image prune --force --filter label=io.matriochka.flavor\n",
        "",
        0,
    );
    assert_no_pwned(test.path());
    assert!(!test.path().join("staging").exists());
}

/// Issue 21: the run id given to release's makes, and BENCH_ARGS, reached the shell (BENCH_ARGS
/// from the environment: make) as code.
#[test]
fn run_id_and_bench_args_are_data() {
    let test = project();
    let output = make_in(
        test.path(),
        &[],
        &["-n", "release", "MATRIOCHKA_RUN=x; touch PWNED;"],
    );
    assert!(
        make_text(&output.stdout).starts_with(
            "_M_IN_RELEASE=1 make --no-print-directory -f <repo>/Makefile push \
             MATRIOCHKA_RUN=\"$MATRIOCHKA_RUN\" \\\n"
        ),
        "{}",
        make_text(&output.stdout)
    );
    let output = make_in(test.path(), &[("BENCH_ARGS", PWNED)], &["-n", "bench"]);
    assert_output(
        &output,
        "set -f; cd <repo>/ && bench/run $_M_BENCH_ARGS\n",
        "",
        0,
    );
    assert_no_pwned(test.path());
}

/// A project below `parent` (a directory whose name make or the shell cannot take), with a
/// subdirectory `sub`.
fn project_in(parent: &str) -> (Test, std::path::PathBuf) {
    let test = project();
    let root = test.path().join(parent);
    for (path, (mode, bytes)) in test.tree(".") {
        let to = root.join(&path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, bytes).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(mode);
        std::fs::set_permissions(&to, mode).unwrap();
    }
    std::fs::create_dir_all(root.join("sub")).unwrap();
    (test, root)
}

/// Issue 21: a project path with a blank split the sub-make's `-C` in two; one holding shell
/// code ran it, even under `make -n` from a subdirectory. Make cannot quote a blank in a target
/// or in its functions' arguments, so such a path is refused at once, before anything runs.
#[test]
fn a_project_path_make_cannot_hold_is_one_error() {
    for parent in ["sp ace", "x;touch PWNED;", "x$(shell touch PWNED)", "x'y"] {
        let (test, root) = project_in(parent);
        for dir in [root.clone(), root.join("sub")] {
            let output = make_in(&dir, &[], &["-n", "build"]);
            assert_output(
                &output,
                "",
                &format!(
                    "<repo>/Makefile:N: *** the working directory `{}` holds a blank or a \
                     character make or the shell would read as code: use only letters, digits \
                     and `._+@/-` in the path of the project.  Stop.\n",
                    dir.display()
                ),
                2,
            );
        }
        assert_no_pwned(test.path());
        assert!(!root.join("staging").exists(), "{parent}");
    }
    // The Makefile's own path.
    let (_, output) = make_copied("sp ace/Makefile", &["-f", "sp ace/Makefile", "help"]);
    assert_output(
        &output,
        "",
        "sp ace/Makefile:N: *** the path of this Makefile holds a blank or a character make or \
         the shell would read as code: use only letters, digits and `._+@/-` in the directories \
         that hold it.  Stop.\n",
        2,
    );
}

/// `CONFIG` with `layout.staging_root` written as `root` and the staging dirs below `out/`.
fn config_with_staging_root(root: &str) -> String {
    let config = CONFIG
        .replace(
            "staging_dir = \"staging/",
            &format!("staging_root = {root}\nstaging_dir = \"out/"),
        )
        .replace("[layout]", "[layout]  # the staging root is out/");
    assert_ne!(config, CONFIG);
    config
}

/// Issue 18: with `layout.staging_root = "out"`, `make build` staged into `out/`, then failed
/// with "No rule to make target 'staging/build.mk'".
#[test]
fn make_build_uses_the_configured_staging_root() {
    for root in ["\"out\"", "'out'  # literal"] {
        let test = project().write("flavors/matriochka.toml", &config_with_staging_root(root));
        let output = make_in(test.path(), &[], &["build", "IMAGES=core"]);
        assert_output(
            &output,
            &format!(
                "<matriochka> stage\n\
                 staged out/{ID}: 9 written, 0 unchanged, 0 removed\n\
                 make --no-print-directory -f out/build.mk build; <matriochka> report --finish \
                 build --status $?\n\
                 [1/1] build {CORE_TAG}\nstub build\n[1/1] build {CORE_TAG}: ok\n\
                 report: out/report.json\n  built           1\n"
            ),
            "",
            0,
        );
        assert!(!test.path().join("staging").exists());
    }
}

/// The staging root as matriochka prints it (`show staging-root`), where the file says it in a
/// form the Makefile does not read; a root make cannot hold is one error.
#[test]
fn the_staging_root_matriochka_prints_wins_and_is_checked() {
    let test = project().write(
        "flavors/matriochka.toml",
        &config_with_staging_root("\"\"\"out\"\"\""),
    );
    let tool = |root: &str| {
        format!(
            "#!/bin/sh\nif [ \"$1 $2\" = 'show staging-root' ]; then echo '{root}'; exit 0; fi\n\
             exec '{}' \"$@\"\n",
            bin()
        )
    };
    let test = test.write_bytes("tool", tool("out").as_bytes(), 0o755);
    let matriochka = format!("MATRIOCHKA={}", test.path().join("tool").display());
    let output = make_in(test.path(), &[], &["-n", "build", &matriochka]);
    assert!(
        make_text(&output.stdout).contains("make --no-print-directory -f out/build.mk build;"),
        "{}",
        make_text(&output.stdout)
    );
    let test = test.write_bytes("tool", tool("a b;").as_bytes(), 0o755);
    let output = make_in(test.path(), &[], &["-n", "build", &matriochka]);
    assert_output(
        &output,
        "",
        "<repo>/Makefile:N: *** `layout.staging_root` `a b;` is not a plain relative path: use \
         only letters, digits and `._+@/=-`, not a `-` first.  Stop.\n",
        2,
    );
}

/// Issue 21: `make install PREFIX=…` puts the checkout's binary on PATH; an empty PREFIX, or a
/// Makefile outside a checkout, is one error.
#[test]
fn make_install_puts_the_binary_in_prefix() {
    let checkout = fake_checkout(project());
    let dir = checkout.path();
    let path = path_with(&dir.join("bin"));
    let prefix = dir.join("pre fix$HOME'");
    let install = |prefix: &str| {
        make_command(dir)
            .env("PATH", &path)
            .args([
                "--no-print-directory",
                "install",
                &format!("PREFIX={prefix}"),
            ])
            .output()
            .unwrap()
    };
    let output = install(prefix.to_str().unwrap());
    let shown = make_text(&output.stdout).replace(&format!("{}/", dir.display()), "<dir>/");
    assert_eq!(
        shown,
        "building matriochka (first run, a few minutes)\n\
         cd <dir>/ && cargo build --release --locked\n\
         install -d \"$_M_PREFIX/bin\"\n\
         install -m 755 <dir>/target/release/matriochka \"$_M_PREFIX/bin/.matriochka.tmp\" \\\n\
         \t&& mv -f \"$_M_PREFIX/bin/.matriochka.tmp\" \"$_M_PREFIX/bin/matriochka\" \\\n\
         \t|| { rm -f \"$_M_PREFIX/bin/.matriochka.tmp\"; exit 1; }\n"
    );
    assert_eq!(make_text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0));
    let installed = prefix.join("bin/matriochka");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(bin()).unwrap()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&installed).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o755);
    let names: Vec<_> = std::fs::read_dir(prefix.join("bin"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["matriochka"]);
    // The installed binary runs from PATH.
    let output = std::process::Command::new("matriochka")
        .env("PATH", path_with(&prefix.join("bin")))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "matriochka 0.1.0\n"
    );

    let before = crate::common::snapshot(dir);
    let output = install("");
    assert_output(
        &output,
        "",
        "error: PREFIX is empty: set it to a directory, e.g. /usr/local\n\
         make: *** [Makefile:N: install] Error 2\n",
        2,
    );
    assert_eq!(crate::common::snapshot(dir), before, "nothing written");

    // A copy of the Makefile in a project has no binary of its own to install.
    let (test, output) = make_copied("Makefile", &["--no-print-directory", "install", "PREFIX=p"]);
    assert_output(
        &output,
        "",
        "error: `make install` installs the binary of a matriochka checkout: run it in one\n\
         make: *** [Makefile:N: install] Error 2\n",
        2,
    );
    assert!(!test.path().join("p").exists());
}

/// Issue 21: `build.parallel` interleaved the output of images built at the same time, though
/// README and `make help` say it is grouped per image. Two builds meet halfway (a FIFO: the
/// first blocks until the second reads), so their lines would interleave unless grouped.
#[test]
fn build_parallel_groups_each_images_output() {
    let build = r#"
    case "$*" in
      *squid*) echo "squid: first"; timeout 20 sh -c 'echo go > "$STUB_DIR/meet"'; echo "squid: second";;
      *) echo "reef: first"; timeout 20 sh -c 'read line < "$STUB_DIR/meet"'; echo "reef: second";;
    esac;;"#;
    let test = project().write_bytes("engine", recording_engine(build).as_bytes(), 0o755);
    let status = std::process::Command::new("mkfifo")
        .arg(test.path().join("meet"))
        .status()
        .unwrap();
    assert!(status.success());
    let output = make_in(
        test.path(),
        &[],
        &[
            "build.parallel",
            "JOBS=2",
            "IMAGES=core",
            &format!("FLAVORS={SQUID} {REEF}"),
        ],
    );
    assert_eq!(make_text(&output.stderr), "");
    assert_eq!(output.status.code(), Some(0));
    let stdout = make_text(&output.stdout);
    let group = |n: u32, release: &str| {
        let tag = format!("ceph/core:test-{release}-centos-stream9-x86_64");
        format!(
            "[{n}/2] build {tag}\n{release}: first\n{release}: second\n[{n}/2] build {tag}: ok\n"
        )
    };
    let (squid, reef) = (group(1, "squid"), group(2, "reef"));
    assert!(
        stdout.contains(&format!("{squid}{reef}")) || stdout.contains(&format!("{reef}{squid}")),
        "{stdout}"
    );
}

/// `show staging-root` prints `layout.staging_root` as the Makefile needs it, however the TOML
/// writes it, and `staging` by default.
#[test]
fn show_staging_root_prints_the_configured_root() {
    project()
        .write(
            "flavors/matriochka.toml",
            &config_with_staging_root("\"\"\"out\"\"\""),
        )
        .args(&["show", "staging-root"])
        .stdout("out\n")
        .run();
    project()
        .args(&["show", "staging-root"])
        .stdout("staging\n")
        .run();
}

/// `show env` lists every variable matriochka reads, set or not, with what it does.
#[test]
fn show_env_lists_the_variables_read() {
    let out = project()
        .env("PULL", "0")
        .args(&["show", "env"])
        .any_stdout()
        .run()
        .stdout;
    assert!(
        out.contains("PULL=0  # 1: always pull bases; 0: never; else when missing\n"),
        "{out}"
    );
    assert!(
        out.contains("\nSQUASH (unset)  # 1: one layer for what each build adds\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 29, "{out}");
}
