//! The test builder: a temp project, a command line, and what must come out of it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub mod schema;
pub mod stub;

/// A minimal configuration: two images, layers by release and distro.
pub const CONFIG: &str = r#"
[layout]
templates = "templates"
layers = ["src", "rel/ALL", "rel/ALL/{DISTRO}", "rel/ALL/{DISTRO}/{DISTRO_VERSION}", "rel/{CEPH_VERSION}", "rel/{CEPH_VERSION}/{DISTRO}"]
images = ["core", "app"]
staging_dir = "staging/{CEPH_VERSION}{CEPH_POINT_RELEASE}-{DISTRO}-{DISTRO_VERSION}-{HOST_ARCH}"
image_tag = "{IMAGE}:{RELEASE}-{CEPH_VERSION}-{DISTRO}-{BASEOS_TAG}-{HOST_ARCH}"
env = ["CEPH_DEVEL", "OPT_*"]

[flavors]
default = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9"]
buildable = ["squid,x86_64,centos,9,quay.io,centos/centos,stream9", "reef,x86_64,centos,9,quay.io,centos/centos,stream9", "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04"]
"#;

/// Removes the common indentation and a leading newline, so expected text can be indented.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|line| {
            if line.len() >= indent {
                &line[indent..]
            } else {
                line.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n')
        || text.ends_with("\n    ")
        || text.lines().last().is_some_and(|l| l.trim().is_empty())
    {
        out = out.trim_end_matches([' ']).to_string();
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// What a run printed.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// What a stream must hold: exact text (empty unless a test says otherwise), or anything.
#[derive(Clone, Debug)]
enum Expected {
    Text(String),
    Any,
}

impl Expected {
    fn empty() -> Expected {
        Expected::Text(String::new())
    }
}

/// A temp project and a command to run in it. Its expected stdout and stderr are empty until a
/// test sets them, so every run also checks that nothing unexpected was printed; `.any_stdout()`
/// and `.any_stderr()` opt out where the output is genuinely variable.
pub struct Test {
    pub dir: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdout: Expected,
    stderr: Expected,
    code: i32,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    /// An empty project.
    pub fn new() -> Test {
        Test {
            dir: tempfile::Builder::new()
                .prefix("matriochka-test")
                .tempdir()
                .unwrap(),
            args: Vec::new(),
            env: vec![
                ("RELEASE".into(), "test".into()),
                ("HOST_ARCH".into(), "x86_64".into()),
            ],
            stdout: Expected::empty(),
            stderr: Expected::empty(),
            code: 0,
        }
    }

    /// A project with [`CONFIG`].
    pub fn with_config() -> Test {
        Test::new().write("flavors/matriochka.toml", CONFIG)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (parents made), text unindented only when it starts with a newline.
    #[track_caller]
    pub fn write(self, path: &str, text: &str) -> Test {
        let text = if text.starts_with('\n') {
            unindent(text)
        } else {
            text.to_string()
        };
        self.write_bytes(path, text.as_bytes(), 0o644)
    }

    #[track_caller]
    pub fn write_bytes(self, path: &str, bytes: &[u8], mode: u32) -> Test {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, bytes).unwrap();
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// The command line; expects empty output again, whatever an earlier command expected.
    pub fn args(mut self, args: &[&str]) -> Test {
        self.args = args.iter().map(|arg| arg.to_string()).collect();
        self.stdout = Expected::empty();
        self.stderr = Expected::empty();
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Test {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.into(), value.into()));
        self
    }

    /// Git's home for matriochka's own git calls: `home`, and no system configuration.
    pub fn git_home(self, home: &GitHome) -> Test {
        self.env("HOME", home.path().to_str().unwrap())
            .env("GIT_CONFIG_NOSYSTEM", "1")
    }

    pub fn unset(mut self, name: &str) -> Test {
        self.env.retain(|(n, _)| n != name);
        self
    }

    /// The exact stdout, unindented.
    pub fn stdout(mut self, text: &str) -> Test {
        self.stdout = Expected::Text(unindent(text));
        self
    }

    /// The exact stderr, unindented.
    pub fn stderr(mut self, text: &str) -> Test {
        self.stderr = Expected::Text(unindent(text));
        self
    }

    /// Leaves stdout unchecked: only where it is genuinely variable, and the test checks it.
    pub fn any_stdout(mut self) -> Test {
        self.stdout = Expected::Any;
        self
    }

    /// Leaves stderr unchecked: only where it is genuinely variable, and the test checks it.
    pub fn any_stderr(mut self) -> Test {
        self.stderr = Expected::Any;
        self
    }

    pub fn status(mut self, code: i32) -> Test {
        self.code = code;
        self
    }

    /// The command, run in the project with a clean environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("matriochka"));
        command.current_dir(self.dir.path()).env_clear();
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command.env("GIT_CEILING_DIRECTORIES", self.dir.path().parent().unwrap());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command.args(&self.args);
        command
    }

    /// The command, started with stdout and stderr piped.
    pub fn spawn(&self) -> std::process::Child {
        self.command()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs and checks stdout, stderr (both empty unless set) and the exit code.
    #[track_caller]
    pub fn run(&self) -> Output {
        let output = self.command().output().unwrap();
        let out = Output {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        };
        if let Expected::Text(expected) = &self.stdout {
            assert_text(&out.stdout, expected, "stdout");
        }
        if let Expected::Text(expected) = &self.stderr {
            assert_text(&out.stderr, expected, "stderr");
        }
        assert_eq!(
            out.code, self.code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out
    }

    /// The text of a file of the project.
    #[track_caller]
    pub fn read(&self, path: &str) -> String {
        match std::fs::read_to_string(self.dir.path().join(path)) {
            Ok(text) => text,
            Err(err) => panic!("read {path}: {err}"),
        }
    }

    #[track_caller]
    pub fn expect_file(&self, path: &str, text: &str) {
        assert_text(&self.read(path), &unindent(text), path);
    }

    /// Every file below `dir`: relative path → (mode, bytes).
    pub fn tree(&self, dir: &str) -> BTreeMap<String, (u32, Vec<u8>)> {
        snapshot(&self.dir.path().join(dir))
    }

    /// The text files below `dir`, leaving out the staging bookkeeping files.
    pub fn texts(&self, dir: &str) -> BTreeMap<String, String> {
        self.tree(dir)
            .into_iter()
            .filter(|(path, _)| {
                !path.starts_with(".matriochka/") && path != "flavor.mk" && path != "files-sources"
            })
            .map(|(path, (_, bytes))| (path, String::from_utf8(bytes).unwrap()))
            .collect()
    }
}

/// Every file below `dir`: relative path → (mode, bytes).
pub fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            out.insert(rel, (mode, std::fs::read(entry.path()).unwrap()));
        }
    }
    out
}

/// Modification times of every file below `dir`.
pub fn mtimes(dir: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            (
                entry.path().to_path_buf(),
                entry.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

/// Expected text files: `[("base/Dockerfile", "...")]` → map, each unindented.
pub fn texts(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(path, text)| (path.to_string(), unindent(text)))
        .collect()
}

#[track_caller]
pub fn assert_text(actual: &str, expected: &str, what: &str) {
    if actual != expected {
        panic!("{what} differs\n--- expected\n{expected}\n--- actual\n{actual}\n---");
    }
}

/// The test binary's path, as make's `MATRIOCHKA=` takes it.
pub fn bin() -> String {
    assert_cmd::cargo::cargo_bin("matriochka")
        .display()
        .to_string()
}

/// `dir` first, then the test's own PATH.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `make` in `dir` with a clean environment: PATH, `RELEASE=test`, and git kept out of the
/// directories above the temp dir.
pub fn make_command(dir: &Path) -> Command {
    let mut command = Command::new("make");
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RELEASE", "test")
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap());
    command
}

/// `make --no-print-directory -f <repo>/Makefile MATRIOCHKA=<test binary>` in the project, with
/// the environment of [`make_command`]; the caller adds the rest.
pub fn repo_make(test: &Test) -> Command {
    let mut command = make_command(test.path());
    command
        .arg("--no-print-directory")
        .arg("-f")
        .arg(format!("{}/Makefile", env!("CARGO_MANIFEST_DIR")))
        .arg(format!("MATRIOCHKA={}", bin()));
    command
}

/// A project of [`CONFIG`] with two images to build: `core` (from `BASE_IMAGE`, copying a
/// `release.txt` that holds `RELEASE`) and `app` (from `CORE_IMAGE`).
pub fn build_project() -> Test {
    Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nCOPY release.txt /\n",
        )
        .write("templates/src/core/release.txt", "__ENV_[RELEASE]__\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
}

/// Runs git in `dir` with a fixed identity and dates, `home` as HOME, no system configuration and
/// no repository looked for above `ceiling`; returns its stdout, and fails the test if git fails.
#[track_caller]
pub fn git(dir: &Path, home: &Path, ceiling: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CEILING_DIRECTORIES", ceiling)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A project of `config` whose `app` is built from `core` by `FROM` and `COPY --from=`, each
/// naming core's tag.
pub fn copy_from_core_project(config: &str) -> Test {
    Test::new()
        .write("flavors/matriochka.toml", config)
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nRUN true\n",
        )
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\nCOPY --from=__ENV_[CORE_IMAGE]__ /etc/hostname /core-hostname\n",
        )
}

/// A home for git outside the project (a temp dir of its own), so that nothing but the project
/// lies in its tree; git runs with it by [`git`].
pub struct GitHome(TempDir);

impl Default for GitHome {
    fn default() -> Self {
        Self::new()
    }
}

impl GitHome {
    pub fn new() -> GitHome {
        GitHome(
            tempfile::Builder::new()
                .prefix("matriochka-home")
                .tempdir()
                .unwrap(),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Runs git in `dir` with this home; returns its stdout.
    #[track_caller]
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        git(dir, self.path(), self.path().parent().unwrap(), args)
    }
}

/// What `docker buildx bake --print` reads from the project's `staging/docker-bake.json`; `None`,
/// after printing `docker buildx is not installed: <without>`, where docker has no buildx.
#[track_caller]
pub fn buildx_bake_print(test: &Test, without: &str) -> Option<serde_json::Value> {
    let buildx = Command::new("docker")
        .args(["buildx", "version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !buildx {
        println!("docker buildx is not installed: {without}");
        return None;
    }
    let output = Command::new("docker")
        .current_dir(test.path())
        .env_remove("BUILDX_BAKE_FILE_RELATIVE_PATHS")
        .args([
            "buildx",
            "bake",
            "--print",
            "--file",
            "staging/docker-bake.json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

/// One element of the array `matriochka modified --json` prints.
pub fn modified_json(flavor: &str, id: &str, images: &[&str], because: &[&str]) -> String {
    let list =
        |items: &[&str]| itertools::join(items.iter().map(|item| format!("\"{item}\"")), ",");
    format!(
        r#"{{"flavor":"{flavor}","id":"{id}","images":[{}],"because":[{}]}}"#,
        list(images),
        list(because)
    )
}

/// The array of `items` and a newline, as `matriochka modified --json` prints it.
pub fn modified_json_array(items: &[String]) -> String {
    format!("[{}]\n", items.join(","))
}

/// A project of [`CONFIG`] with two images and nothing to copy: `core` (from `BASE_IMAGE`, one
/// `RUN`) and `app` (from `CORE_IMAGE`).
pub fn two_image_project() -> Test {
    Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\nRUN true\n",
        )
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
}

/// Make's output as text: the test binary's path `<matriochka>`, the repository's `<repo>`,
/// make's line numbers `N`.
pub fn make_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes)
        .replace(&bin(), "<matriochka>")
        .replace(env!("CARGO_MANIFEST_DIR"), "<repo>");
    regex::Regex::new(r"Makefile:[0-9]+:")
        .unwrap()
        .replace_all(&text, "Makefile:N:")
        .into_owned()
}

/// `make --no-print-directory -f MAKEFILE ARGS` in `dir` with a clean environment plus `env`.
pub fn make_in(
    dir: &Path,
    makefile: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    make_command(dir)
        .env("HOST_ARCH", "x86_64")
        .env("STUB_DIR", dir)
        // Never a real engine: the stub unless a test names another.
        .env("CONTAINER_ENGINE", "./engine")
        .envs(env.iter().copied())
        .arg("--no-print-directory")
        .arg("-f")
        .arg(makefile)
        .args(args)
        .output()
        .unwrap()
}

/// Checks make's stdout and stderr, as [`make_text`], and its exit code.
#[track_caller]
pub fn assert_make_output(output: &std::process::Output, stdout: &str, stderr: &str, code: i32) {
    assert_eq!(make_text(&output.stdout), stdout, "stdout");
    assert_eq!(make_text(&output.stderr), stderr, "stderr");
    assert_eq!(output.status.code(), Some(code));
}

/// The repository's Makefile, to copy into a test's project.
pub fn repo_makefile_text() -> String {
    std::fs::read_to_string(format!("{}/Makefile", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `test` made a checkout of matriochka with the repository's Makefile: `Cargo.toml`,
/// `Cargo.lock`, sources, and a `bin/cargo` whose build copies the test binary to
/// `target/release/matriochka`; run make with [`path_with`]`(bin)` as PATH.
pub fn fake_checkout(test: Test) -> Test {
    test.write("Cargo.toml", "[package]\n")
        .write("Cargo.lock", "")
        .write("src/main.rs", "")
        // Sources named like the image targets' patterns: no "Circular … dependency dropped".
        .write("src/commands/clean.rs", "")
        .write("src/build.rs", "")
        .write("Makefile", &repo_makefile_text())
        .write_bytes(
            "bin/cargo",
            format!(
                "#!/bin/sh\nmkdir -p target/release && cp '{}' target/release/matriochka\n",
                bin()
            )
            .as_bytes(),
            0o755,
        )
}
