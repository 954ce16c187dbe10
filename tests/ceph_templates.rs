//! The repository's own Ceph templates: every buildable flavor of `flavors/matriochka.toml`
//! stages, its Dockerfiles start with the expected `FROM`, its contexts hold the expected files,
//! no token is left, `RUN` bodies parse and shell scripts pass shellcheck, `packages.txt` is the
//! table of docs/packages.md; the daemon entrypoint is run against stub `ceph-*` binaries in a
//! temp root. What is expected comes from data (docs/packages.md, tests/ceph_templates.toml, the
//! `PKG_FAMILY` map), so a new distro needs no code here. Nothing here uses the network or a
//! container engine (tests/e2e/ceph_stub.sh builds the images against stubs).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;
use tempfile::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const IMAGES: [&str; 2] = ["daemon-base", "daemon"];
const ENTRYPOINT: &str = "templates/src/daemon/entrypoint.sh";

/// One flavor tuple of the configuration, split into its fields.
#[derive(Debug)]
struct Flavor {
    tuple: String,
    ceph_version: String,
    point_release: String,
    arch: String,
    distro: String,
    distro_version: String,
    registry: String,
    repo: String,
    tag: String,
}

impl Flavor {
    fn parse(tuple: &str) -> Flavor {
        let fields: Vec<&str> = tuple.split(',').collect();
        assert_eq!(
            fields.len(),
            7,
            "buildable flavor `{tuple}` does not have 7 fields"
        );
        let release = fields[0];
        let split = release.find(['=', '-']).unwrap_or(release.len());
        Flavor {
            tuple: tuple.to_string(),
            ceph_version: release[..split].to_string(),
            point_release: release[split..].to_string(),
            arch: fields[1].to_string(),
            distro: fields[2].to_string(),
            distro_version: fields[3].to_string(),
            registry: fields[4].to_string(),
            repo: fields[5].to_string(),
            tag: fields[6].to_string(),
        }
    }

    /// The staging dir's name, from the configuration's `staging_dir` pattern.
    /// The staging dir's name: a pinned apt release's `=` is written `@` (a make-safe id).
    fn id(&self) -> String {
        format!(
            "{}{}-{}-{}-{}",
            self.ceph_version, self.point_release, self.distro, self.distro_version, self.arch
        )
        .replace('=', "@")
    }

    fn base_image(&self) -> String {
        match self.registry.as_str() {
            "" | "_" => format!("{}:{}", self.repo, self.tag),
            registry => format!("{registry}/{}:{}", self.repo, self.tag),
        }
    }

    /// The full tag of one of the flavor's images, with `RELEASE=test` and the default
    /// `TAG_REGISTRY`.
    fn image_tag(&self, image: &str) -> String {
        format!(
            "ceph/{image}:test-{}{}-{}-{}-{}",
            self.ceph_version,
            self.point_release.replace('=', "-"),
            self.distro,
            self.tag,
            self.arch
        )
    }

    fn expected_from(&self, image: &str) -> String {
        match image {
            "daemon-base" => format!("FROM {}", self.base_image()),
            "daemon" => format!("FROM {}", self.image_tag("daemon-base")),
            _ => panic!("no expected FROM for image `{image}`"),
        }
    }

    /// The files each image context must hold, and nothing else.
    fn expected_files(&self, image: &str) -> BTreeSet<String> {
        let data = expected();
        let files = match data.data["files"].get(image) {
            Some(files) => files,
            None => &data.family(self)[image],
        };
        strings(files).into_iter().collect()
    }

    /// The point release the packages come from: the pinned one, a fixed one
    /// (`[fixed_release]`), else the release name (the rolling repository).
    fn repo_release(&self) -> String {
        let pin = self.point_release.trim_start_matches(['=', '-']);
        if let Some(version) = pin.split('-').next().filter(|version| !version.is_empty()) {
            return version.to_string();
        }
        let key = format!(
            "{}-{}-{}",
            self.ceph_version, self.distro, self.distro_version
        );
        match expected().data["fixed_release"].get(&key) {
            Some(version) => version.as_str().unwrap().to_string(),
            None => self.ceph_version.clone(),
        }
    }
}

/// What the tests expect, from data: tests/ceph_templates.toml, the `PKG_FAMILY` map of
/// flavors/matriochka.toml and the package table of docs/packages.md.
struct Expected {
    data: toml::Value,
    families: toml::Value,
    table: Vec<BTreeMap<String, String>>,
}

fn strings(value: &toml::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|item| item.as_str().unwrap().to_string())
        .collect()
}

fn expected() -> Expected {
    let read = |path: &str| {
        fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
    };
    let data: toml::Value = toml::from_str(&read("tests/ceph_templates.toml")).unwrap();
    let config: toml::Value = toml::from_str(&read("flavors/matriochka.toml")).unwrap();
    let families = config["variables"]["PKG_FAMILY"]["map"].clone();
    Expected {
        data,
        families,
        table: package_table(&read("docs/packages.md")),
    }
}

/// The rows of the table between `<!-- packages` and `<!-- /packages -->`, as header → cell.
fn package_table(markdown: &str) -> Vec<BTreeMap<String, String>> {
    let lines: Vec<&str> = markdown
        .lines()
        .skip_while(|line| !line.starts_with("<!-- packages"))
        .skip(1)
        .take_while(|line| !line.starts_with("<!-- /packages"))
        .collect();
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_string())
            .collect()
    };
    let header = cells(lines[0]);
    let rows: Vec<BTreeMap<String, String>> = lines[2..]
        .iter()
        .map(|line| header.iter().cloned().zip(cells(line)).collect())
        .collect();
    assert!(rows.len() > 10, "docs/packages.md: no package table found");
    rows
}

/// `all`, `all but a, b` or `a, b`.
fn selects(rule: &str, value: &str) -> bool {
    let list = |text: &str| text.split(',').map(str::trim).any(|item| item == value);
    match rule.strip_prefix("all but ") {
        _ if rule == "all" => true,
        Some(rest) => !list(rest),
        None => list(rule),
    }
}

impl Expected {
    /// The flavor's package family, from the configuration's `PKG_FAMILY` map.
    fn family_name(&self, flavor: &Flavor) -> String {
        self.families
            .get(&flavor.distro)
            .and_then(|family| family.as_str())
            .unwrap_or_else(|| panic!("no PKG_FAMILY for `{}`", flavor.distro))
            .to_string()
    }

    fn family(&self, flavor: &Flavor) -> &toml::Value {
        let family = self.family_name(flavor);
        self.data["family"]
            .get(&family)
            .unwrap_or_else(|| panic!("tests/ceph_templates.toml has no [family.{family}]"))
    }

    /// The packages of the flavor's daemon-base, staged without `OSD_FLAVOR`, in table order.
    fn packages(&self, flavor: &Flavor) -> Vec<String> {
        let family = self.family_name(flavor);
        self.table
            .iter()
            .filter(|row| row["when"].is_empty())
            .filter(|row| selects(&row["releases"], &flavor.ceph_version))
            .filter(|row| selects(&row["arches"], &flavor.arch))
            .filter_map(|row| {
                let name = row
                    .get(&family)
                    .unwrap_or_else(|| panic!("docs/packages.md has no `{family}` column"));
                let pin = if row["pin"] == "yes" {
                    flavor.point_release.as_str()
                } else {
                    ""
                };
                (name != "—").then(|| format!("{name}{pin}"))
            })
            .collect()
    }

    /// The line of the Ceph repository file naming the repository.
    fn repository_line(&self, flavor: &Flavor) -> String {
        let family = self.family(flavor);
        let key = format!("{}-{}", flavor.distro, flavor.distro_version);
        let codename = self.data["codename"]
            .get(&key)
            .and_then(|codename| codename.as_str())
            .unwrap_or("");
        family["repository_line"]
            .as_str()
            .unwrap()
            .replace("{REPO_RELEASE}", &flavor.repo_release())
            .replace("{DISTRO_VERSION}", &flavor.distro_version)
            .replace("{CODENAME}", codename)
    }
}

fn buildable_flavors() -> Vec<Flavor> {
    let path = Path::new(ROOT).join("flavors/matriochka.toml");
    let text = fs::read_to_string(&path).unwrap();
    let config: toml::Value = toml::from_str(&text).unwrap();
    let buildable = config["flavors"]["buildable"]
        .as_array()
        .expect("`flavors.buildable`");
    let flavors: Vec<Flavor> = buildable
        .iter()
        .map(|tuple| Flavor::parse(tuple.as_str().unwrap()))
        .collect();
    assert!(!flavors.is_empty(), "`flavors.buildable` is empty");
    flavors
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A temporary copy of the repository's `flavors/` and `templates/` with every buildable flavor
/// staged into it.
struct Staged {
    dir: TempDir,
    flavors: Vec<Flavor>,
}

impl Staged {
    fn new() -> Staged {
        let dir = TempDir::new().unwrap();
        for tree in ["flavors", "templates"] {
            copy_tree(&Path::new(ROOT).join(tree), &dir.path().join(tree));
        }
        let flavors = buildable_flavors();
        let output = Command::new(env!("CARGO_BIN_EXE_matriochka"))
            .arg("-C")
            .arg(dir.path())
            .arg("stage")
            .args(flavors.iter().map(|flavor| &flavor.tuple))
            .current_dir(dir.path())
            .env("RELEASE", "test")
            .env_remove("TAG_REGISTRY")
            .env_remove("FLAVORS")
            .env_remove("CEPH_DEVEL")
            .env_remove("OSD_FLAVOR")
            .env_remove("DAEMON_BASE_TAG")
            .env_remove("DAEMON_TAG")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "staging the buildable flavors failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "",
            "staging the buildable flavors prints no warning"
        );
        Staged { dir, flavors }
    }

    fn context(&self, flavor: &Flavor, image: &str) -> PathBuf {
        self.dir
            .path()
            .join("staging")
            .join(flavor.id())
            .join(image)
    }

    fn dockerfile(&self, flavor: &Flavor, image: &str) -> String {
        let path = self.context(flavor, image).join("Dockerfile");
        fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    /// Every staged file of every image context: (path, contents).
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        for flavor in &self.flavors {
            for image in IMAGES {
                for relative in files_under(&self.context(flavor, image)) {
                    let path = self.context(flavor, image).join(relative);
                    let bytes = fs::read(&path).unwrap();
                    files.push((path, bytes));
                }
            }
        }
        files
    }
}

/// The files below `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, "", &mut out);
    out
}

/// A Dockerfile's instructions, with `\` continuations joined and comments left out, as the
/// builder reads them.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => current.push_str(start),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continuation:\n{dockerfile}"
    );
    instructions
}

/// The shell bodies of the `RUN` instructions in shell form.
fn run_bodies(dockerfile: &str) -> Vec<String> {
    instructions(dockerfile)
        .iter()
        .filter_map(|instruction| instruction.strip_prefix("RUN "))
        .filter(|body| !body.trim_start().starts_with('['))
        .map(str::to_string)
        .collect()
}

/// Runs `program args` with `input` on stdin.
fn run_with_input(program: &str, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("failed to run `{program}`: {err}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Whether shellcheck can run here; prints why a check is skipped otherwise. CI installs it, so
/// with `CI` set a missing shellcheck fails the test instead of skipping it.
#[track_caller]
fn have_shellcheck() -> bool {
    let found = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none_or(|ci| ci.is_empty()),
            "shellcheck is not installed and CI is set: install it (apt-get install shellcheck)"
        );
        eprintln!("note: shellcheck is not installed; skipping the shellcheck part of this test");
    }
    found
}

#[test]
fn every_buildable_flavor_stages_with_the_expected_from() {
    let staged = Staged::new();
    for flavor in &staged.flavors {
        for image in IMAGES {
            let dockerfile = staged.dockerfile(flavor, image);
            let first = instructions(&dockerfile)
                .into_iter()
                .next()
                .unwrap_or_default();
            assert_eq!(
                first,
                flavor.expected_from(image),
                "first instruction of {image}/Dockerfile of `{}`",
                flavor.tuple
            );
        }
    }
}

#[test]
fn staged_contexts_hold_exactly_the_expected_files() {
    let staged = Staged::new();
    for flavor in &staged.flavors {
        for image in IMAGES {
            assert_eq!(
                files_under(&staged.context(flavor, image)),
                flavor.expected_files(image),
                "files of {image} of `{}`",
                flavor.tuple
            );
        }
    }
}

#[test]
fn staged_files_have_no_token_or_template_syntax_left() {
    let staged = Staged::new();
    // `{{` and `{%` outside a `.tera` file mean a Tera fragment was used in a file that is not
    // rendered by Tera.
    let leftover = Regex::new(r"__[A-Z0-9_]+__|__ENV_\[|\{\{|\{%").unwrap();
    for (path, bytes) in staged.files() {
        let text = String::from_utf8(bytes).unwrap();
        for (number, line) in text.lines().enumerate() {
            if let Some(found) = leftover.find(line) {
                panic!(
                    "{}:{}: `{}` left in `{line}`",
                    path.display(),
                    number + 1,
                    found.as_str()
                );
            }
        }
    }
}

#[test]
fn daemon_base_installs_the_release_from_its_repository() {
    let staged = Staged::new();
    let data = expected();
    for flavor in &staged.flavors {
        let dockerfile = staged.dockerfile(flavor, "daemon-base");
        let major = data.data["release"][flavor.ceph_version.as_str()]
            .as_str()
            .unwrap_or_else(|| panic!("no major version for `{}`", flavor.ceph_version));
        // A repository fixed to one point release is checked for that release.
        let version = match flavor.repo_release() {
            release if release == flavor.ceph_version => format!("{major}."),
            release => format!("{release} "),
        };
        let check = format!(
            "\"ceph version $expected\"*\" {} (\"*) ;;",
            flavor.ceph_version
        );
        assert!(
            dockerfile.contains(&check),
            "no `{check}` in daemon-base of `{}`",
            flavor.tuple
        );
        let fallback = format!("expected=\"${{expected:-{major}.}}\"");
        assert!(
            dockerfile.contains(&fallback),
            "no `{fallback}` in daemon-base of `{}`",
            flavor.tuple
        );
        let held = if version.ends_with(' ') {
            version.trim_end()
        } else {
            ""
        };
        let label = format!("CEPH_RELEASE_VERSION=\"{held}\"");
        assert_eq!(
            dockerfile.matches(&label).count(),
            2,
            "label and env `{label}` in daemon-base of `{}`",
            flavor.tuple
        );
        let context = staged.context(flavor, "daemon-base");
        let family = data.family(flavor);
        let file = family["repository_file"].as_str().unwrap();
        let repository = fs::read_to_string(context.join(file)).unwrap();
        let line = repository
            .lines()
            .find(|line| line.starts_with("baseurl=") || line.starts_with("deb "))
            .unwrap();
        assert_eq!(
            line,
            data.repository_line(flavor),
            "repository of `{}`",
            flavor.tuple
        );
    }
}

#[test]
fn daemon_base_installs_the_packages_of_docs_packages_md() {
    let staged = Staged::new();
    let data = expected();
    for flavor in &staged.flavors {
        let path = staged.context(flavor, "daemon-base").join("packages.txt");
        let listed: Vec<String> = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(
            listed,
            data.packages(flavor),
            "{} against docs/packages.md",
            path.display()
        );
    }
}

#[test]
fn daemon_base_labels_and_environment_are_upstreams() {
    let staged = Staged::new();
    let data = expected();
    for flavor in &staged.flavors {
        let dockerfile = staged.dockerfile(flavor, "daemon-base");
        let base = flavor.base_image();
        for wanted in [
            "org.opencontainers.image.authors=\"matriochka\"".to_string(),
            "org.opencontainers.image.vendor=\"matriochka\"".to_string(),
            "printf '%s\\n' \"$ceph_version\" >/etc/ceph-container-version".to_string(),
            "org.opencontainers.image.documentation=\"https://docs.ceph.com/\"".to_string(),
            "ceph=\"True\"".to_string(),
            format!("CEPH_REF=\"{}\"", flavor.ceph_version),
            "CEPH_SHA1=\"\"".to_string(),
            "OSD_FLAVOR=\"default\"".to_string(),
            format!("FROM_IMAGE=\"{base}\""),
            "CEPH_OSD_FLAVOR=\"default\"".to_string(),
            "CEPH_IS_DEVEL=\"false\"".to_string(),
            data.family(flavor)["verify"].as_str().unwrap().to_string(),
        ] {
            assert!(
                dockerfile.contains(&wanted),
                "no `{wanted}` in daemon-base of `{}`",
                flavor.tuple
            );
        }
    }
}

#[test]
fn pinned_point_releases_install_from_the_versioned_repository() {
    let dir = TempDir::new().unwrap();
    for tree in ["flavors", "templates"] {
        copy_tree(&Path::new(ROOT).join(tree), &dir.path().join(tree));
    }
    // Pinned flavor → whether its .debs ship ceph-exporter (reef from 18.2.4, squid from 19.2.3).
    let cases = [
        (
            "squid-19.2.1,x86_64,centos,9,quay.io,centos/centos,stream9",
            true,
        ),
        (
            "squid=19.2.1-1jammy,x86_64,ubuntu,22.04,_,ubuntu,22.04",
            false,
        ),
        (
            "squid=19.2.3-1jammy,x86_64,ubuntu,22.04,_,ubuntu,22.04",
            true,
        ),
        (
            "reef=18.2.2-1jammy,x86_64,ubuntu,22.04,_,ubuntu,22.04",
            false,
        ),
        (
            "reef=18.2.4-1jammy,x86_64,ubuntu,22.04,_,ubuntu,22.04",
            true,
        ),
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_matriochka"))
        .arg("-C")
        .arg(dir.path())
        .arg("stage")
        .args(cases.iter().map(|(tuple, _)| tuple))
        .env("RELEASE", "test")
        .env_remove("OSD_FLAVOR")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let data = expected();
    for (tuple, exporter) in cases {
        let flavor = Flavor::parse(tuple);
        let context = dir
            .path()
            .join("staging")
            .join(flavor.id())
            .join("daemon-base");
        let file = data.family(&flavor)["repository_file"].as_str().unwrap();
        let repository = fs::read_to_string(context.join(file)).unwrap();
        let line = data.repository_line(&flavor);
        assert!(
            repository.lines().any(|found| found == line),
            "no `{line}` in {file} of `{tuple}`:\n{repository}"
        );
        let mut packages = data.packages(&flavor);
        if !exporter {
            packages.retain(|package| !package.starts_with("ceph-exporter"));
        }
        assert!(packages.contains(&format!("ceph-mon{}", flavor.point_release)));
        let listed: Vec<String> = fs::read_to_string(context.join("packages.txt"))
            .unwrap()
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(listed, packages, "packages.txt of `{tuple}`");
        let dockerfile = fs::read_to_string(context.join("Dockerfile")).unwrap();
        let version = flavor.repo_release();
        for wanted in [
            format!("CEPH_POINT_RELEASE=\"{}\"", flavor.point_release),
            format!("CEPH_RELEASE_VERSION=\"{version}\""),
            format!("expected=\"{version}\"; \\"),
        ] {
            assert!(
                dockerfile.contains(&wanted),
                "no `{wanted}` in daemon-base of `{tuple}`"
            );
        }
    }
}

#[test]
fn run_bodies_pass_bash_n() {
    let staged = Staged::new();
    for flavor in &staged.flavors {
        for image in IMAGES {
            for body in run_bodies(&staged.dockerfile(flavor, image)) {
                let output = run_with_input("bash", &["-n"], &body);
                assert!(
                    output.status.success(),
                    "`bash -n` fails on a RUN of {image} of `{}`:\n{}\n{body}",
                    flavor.tuple,
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
}

#[test]
fn run_bodies_pass_shellcheck_as_posix_sh() {
    if !have_shellcheck() {
        return;
    }
    let staged = Staged::new();
    for flavor in &staged.flavors {
        for image in IMAGES {
            // RUN uses /bin/sh, which is dash on Ubuntu.
            for body in run_bodies(&staged.dockerfile(flavor, image)) {
                let output = run_with_input("shellcheck", &["--shell=sh", "-"], &body);
                assert!(
                    output.status.success(),
                    "shellcheck fails on a RUN of {image} of `{}`:\n{}",
                    flavor.tuple,
                    String::from_utf8_lossy(&output.stdout)
                );
            }
        }
    }
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let staged = Staged::new();
    let scripts: Vec<PathBuf> = staged
        .files()
        .into_iter()
        .filter(|(_, bytes)| bytes.starts_with(b"#!/bin/bash") || bytes.starts_with(b"#!/bin/sh"))
        .map(|(path, _)| path)
        .collect();
    let entrypoints = scripts
        .iter()
        .filter(|path| path.ends_with("daemon/entrypoint.sh"))
        .count();
    assert_eq!(
        entrypoints,
        staged.flavors.len(),
        "staged entrypoints: {scripts:?}"
    );
    if !have_shellcheck() {
        return;
    }
    for script in &scripts {
        let output = Command::new("shellcheck").arg(script).output().unwrap();
        assert!(
            output.status.success(),
            "shellcheck fails on {}:\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn entrypoint_is_staged_unchanged_and_executable() {
    let staged = Staged::new();
    let source = fs::read(Path::new(ROOT).join(ENTRYPOINT)).unwrap();
    for flavor in &staged.flavors {
        let path = staged.context(flavor, "daemon").join("entrypoint.sh");
        assert_eq!(fs::read(&path).unwrap(), source, "{}", path.display());
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{} has mode {mode:o}", path.display());
    }
}

// The entrypoint, run against stubs.

const USAGE: &str = r#"usage: entrypoint.sh DAEMON [ARG...]

Runs one Ceph daemon in the foreground, configured from /etc/ceph.

DAEMON is one of:
  mon            ceph-mon       --id $MON_ID
  mgr            ceph-mgr       --id $MGR_ID
  osd            ceph-osd       --id $OSD_ID (the OSD's number)
  mds            ceph-mds       --id $MDS_ID
  rgw            radosgw        --name client.rgw.$RGW_ID
  rbd-mirror     rbd-mirror     --name client.rbd-mirror.$RBD_MIRROR_ID
  cephfs-mirror  cephfs-mirror  --name client.cephfs-mirror.$CEPHFS_MIRROR_ID
  ceph-exporter  ceph-exporter  --name client.ceph-exporter.$CEPH_EXPORTER_ID
  demo           ceph-mon, ceph-mgr and ceph-osd of a new one-node cluster (below)

The ID must stay the same when the container is re-created, as the daemon's data dir and key
are named after it: it is never taken from the container's host name. When its variable is not
set, it is the short form of $NODE_NAME (e.g. Kubernetes' spec.nodeName); with neither, the
daemon does not start. OSD_ID has no default.

The daemon is started as
  BINARY -f --cluster $CLUSTER --conf $CEPH_CONF ID-OPTION
         --setuser $CEPH_USER --setgroup $CEPH_USER LOG-OPTIONS [ARG...]
where LOG-OPTIONS send the logs to stderr instead of files. First, $CEPH_RUN_DIR and the
daemon's data dir ($CEPH_DATA_DIR/<type>/$CLUSTER-<id> for mon, mgr, osd, mds and rgw) are
created and given to $CEPH_USER (the whole data dir when any entry in it has another owner,
e.g. a keyring written by root). Switching a cluster between the images of the two package
families (ceph is uid 167 on CentOS/Rocky, 64045 on Ubuntu/Debian) is not supported.
An osd gets an open-files limit of $OSD_OPEN_FILES (default 1048576, or the hard limit when
lower).

demo bootstraps, on its first start, a cluster of one mon, one mgr and one OSD (BlueStore on a
sparse file of $DEMO_OSD_SIZE bytes, default 10 GiB) on 127.0.0.1, keeping its configuration
and keys in $CEPH_DATA_DIR/demo, then runs the three daemons; `ceph` works inside the container
(podman exec). Mount a volume on $CEPH_DATA_DIR to keep the cluster. For trying the image out,
never for production. This image is not ceph-container's `daemon` image: it has neither its
commands nor its variables.

Environment:
  CLUSTER        cluster name (default: ceph)
  CEPH_CONF      configuration file (default: /etc/ceph/$CLUSTER.conf); it must exist
  CEPH_USER      user and group the daemon switches to and owning its dirs; empty to keep the
                 current one and change no ownership (default: ceph)
  CEPH_RUN_DIR   admin sockets (default: /var/run/ceph)
  CEPH_DATA_DIR  data dirs (default: /var/lib/ceph)
  OSD_FSID       osd only: when set, `ceph-volume lvm activate --no-systemd $OSD_ID $OSD_FSID`
                 runs first, and `ceph-volume lvm deactivate $OSD_ID $OSD_FSID` once the OSD
                 has exited
  TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES  exported to the daemons (default 134217728)
IDs are made of letters, digits, `.`, `_` and `-`.

SIGTERM and SIGINT stop the daemon with SIGTERM (before it started: it is not started, exit 0);
SIGHUP is passed on (logs are reopened). When one daemon of demo exits, the others are stopped.
Exit status: the daemon's (demo: the first non-zero); 1 if it cannot be started; 2 for a usage
error.
"#;

const LOG_ARGS: &str =
    "[--default-log-to-file=false] [--default-log-to-stderr=true] [--default-err-to-stderr=true]";
const MON_LOG_ARGS: &str =
    "[--default-mon-cluster-log-to-file=false] [--default-mon-cluster-log-to-stderr=true]";

/// Records its name and arguments (`ceph-mon [-f] [--cluster] ...`) in `$STUB_LOG`; with
/// `STUB_WAIT` set, also its pid, then waits for SIGTERM (10 s at most, so that a broken
/// entrypoint cannot leave it running); else exits with `$STUB_EXIT`.
const STUB: &str = r#"#!/bin/bash
{ printf '%s' "${0##*/}"; printf ' [%s]' "$@"; printf '\n'; } >>"$STUB_LOG"
if [[ -n ${STUB_NOFILE-} ]]; then echo "nofile $(ulimit -n)" >>"$STUB_LOG"; fi
if [[ -n ${STUB_TCMALLOC-} ]]; then
  echo "tcmalloc ${TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES-unset}" >>"$STUB_LOG"
fi
if [[ -n ${STUB_WAIT-} ]]; then
  trap 'echo "${0##*/} got SIGTERM" >>"$STUB_LOG"; exit 0' TERM
  trap 'echo "${0##*/} got SIGHUP" >>"$STUB_LOG"' HUP
  echo "pid $$" >>"$STUB_LOG"
  for _ in {1..200}; do sleep 0.05; done
  echo "${0##*/} timed out" >>"$STUB_LOG"
  exit 124
fi
exit "${STUB_EXIT:-0}"
"#;

const STUBS: [&str; 9] = [
    "ceph-mon",
    "ceph-mgr",
    "ceph-osd",
    "ceph-mds",
    "radosgw",
    "rbd-mirror",
    "cephfs-mirror",
    "ceph-exporter",
    "ceph-volume",
];

/// Records its arguments in `$CHOWN_LOG` instead of changing an owner (the tests do not run as
/// root, and the image's `ceph` user does not exist here).
const CHOWN_STUB: &str = r#"#!/bin/bash
{ printf 'chown'; printf ' [%s]' "$@"; printf '\n'; } >>"$CHOWN_LOG"
"#;

/// A temp dir with the stubs in `bin/`, a `ceph.conf` and the log the stubs write.
struct Stubs {
    dir: TempDir,
}

impl Stubs {
    fn new() -> Stubs {
        let dir = TempDir::new().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        for name in STUBS {
            let path = bin.join(name);
            fs::write(&path, STUB).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let chown = bin.join("chown");
        fs::write(&chown, CHOWN_STUB).unwrap();
        fs::set_permissions(&chown, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.path().join("ceph.conf"), "[global]\n").unwrap();
        Stubs { dir }
    }

    fn conf(&self) -> String {
        self.dir.path().join("ceph.conf").display().to_string()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn chown_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("chown.log")).unwrap_or_default()
    }

    /// The temp root's `name` (`run/ceph`, `lib/ceph/mon/ceph-a`).
    fn root(&self, name: &str) -> PathBuf {
        self.dir.path().join("root").join(name)
    }

    /// The entrypoint with a clean environment: the stubs first on PATH, `CEPH_CONF` set, the
    /// run and data dirs in the temp root, and the host name `node1.example.com`.
    fn entrypoint(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(Path::new(ROOT).join(ENTRYPOINT));
        command
            .args(args)
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display()),
            )
            .env("STUB_LOG", self.dir.path().join("log"))
            .env("CHOWN_LOG", self.dir.path().join("chown.log"))
            .env("CEPH_RUN_DIR", self.root("run/ceph"))
            .env("CEPH_DATA_DIR", self.root("lib/ceph"))
            .env("CEPH_CONF", self.conf())
            .env("HOSTNAME", "node1.example.com");
        for (name, value) in env {
            command.env(name, value);
        }
        command
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.entrypoint(args, env).output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn usage_error(message: &str) -> String {
    format!("entrypoint.sh: error: {message}\n\n{USAGE}")
}

/// Asserts a usage error: exit 2, the message then the usage on stderr, nothing run.
fn assert_usage_error(stubs: &Stubs, output: &Output, message: &str) {
    assert_eq!(text(&output.stderr), usage_error(message));
    assert_eq!(text(&output.stdout), "");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stubs.log(), "", "a daemon ran after a usage error");
}

#[test]
fn entrypoint_help_prints_the_usage() {
    let stubs = Stubs::new();
    for flag in ["--help", "-h"] {
        let output = stubs.run(&[flag], &[]);
        assert_eq!(text(&output.stdout), USAGE);
        assert_eq!(text(&output.stderr), "");
        assert_eq!(output.status.code(), Some(0));
    }
}

#[test]
fn entrypoint_without_a_daemon_is_a_usage_error() {
    let stubs = Stubs::new();
    let output = stubs.run(&[], &[]);
    assert_usage_error(&stubs, &output, "no daemon given");
}

#[test]
fn entrypoint_rejects_an_unknown_daemon() {
    let stubs = Stubs::new();
    let output = stubs.run(&["osds"], &[("OSD_ID", "0")]);
    assert_usage_error(&stubs, &output, "unknown daemon `osds`");
}

#[test]
fn entrypoint_requires_osd_id_for_osd() {
    let stubs = Stubs::new();
    let output = stubs.run(&["osd"], &[]);
    assert_usage_error(&stubs, &output, "`OSD_ID` is required for `osd`");
}

#[test]
fn entrypoint_rejects_an_osd_id_that_is_not_a_number() {
    let stubs = Stubs::new();
    let output = stubs.run(&["osd"], &[("OSD_ID", "osd.1")]);
    assert_usage_error(&stubs, &output, "`OSD_ID` must be a number, not `osd.1`");
}

#[test]
fn entrypoint_rejects_ids_with_other_characters() {
    let stubs = Stubs::new();
    let output = stubs.run(&["mon"], &[("MON_ID", "a b")]);
    assert_usage_error(
        &stubs,
        &output,
        "`MON_ID` must be made of letters, digits, `.`, `_` and `-`, not `a b`",
    );
    let output = stubs.run(&["mgr"], &[("CLUSTER", "../x"), ("MGR_ID", "x")]);
    assert_usage_error(
        &stubs,
        &output,
        "`CLUSTER` must be made of letters, digits, `.`, `_` and `-`, not `../x`",
    );
}

#[test]
fn entrypoint_never_takes_the_id_from_the_container_host_name() {
    let stubs = Stubs::new();
    let output = stubs.run(&["mds"], &[]);
    assert_usage_error(
        &stubs,
        &output,
        "`MDS_ID` is not set (nor `NODE_NAME`): set it to a name that stays the same when the \
         container is re-created",
    );
    assert!(
        !stubs.root("run/ceph").exists(),
        "a dir was created after a usage error"
    );
}

#[test]
fn entrypoint_runs_each_daemon_with_its_command_line() {
    let cases: [(&str, (&str, &str), &str); 8] = [
        (
            "mon",
            ("MON_ID", "a"),
            "ceph-mon [-f] [--cluster] [ceph] [--conf] [{conf}] [--id] [a]",
        ),
        (
            "mgr",
            ("MGR_ID", "x"),
            "ceph-mgr [-f] [--cluster] [ceph] [--conf] [{conf}] [--id] [x]",
        ),
        (
            "osd",
            ("OSD_ID", "12"),
            "ceph-osd [-f] [--cluster] [ceph] [--conf] [{conf}] [--id] [12]",
        ),
        (
            "mds",
            ("MDS_ID", "fs.a"),
            "ceph-mds [-f] [--cluster] [ceph] [--conf] [{conf}] [--id] [fs.a]",
        ),
        (
            "rgw",
            ("RGW_ID", "gw_1"),
            "radosgw [-f] [--cluster] [ceph] [--conf] [{conf}] [--name] [client.rgw.gw_1]",
        ),
        (
            "rbd-mirror",
            ("RBD_MIRROR_ID", "m-1"),
            "rbd-mirror [-f] [--cluster] [ceph] [--conf] [{conf}] [--name] [client.rbd-mirror.m-1]",
        ),
        (
            "cephfs-mirror",
            ("CEPHFS_MIRROR_ID", "node1"),
            "cephfs-mirror [-f] [--cluster] [ceph] [--conf] [{conf}] [--name] [client.cephfs-mirror.node1]",
        ),
        (
            "ceph-exporter",
            ("CEPH_EXPORTER_ID", "node1"),
            "ceph-exporter [-f] [--cluster] [ceph] [--conf] [{conf}] [--name] [client.ceph-exporter.node1]",
        ),
    ];
    for (daemon, id, command) in cases {
        let stubs = Stubs::new();
        let output = stubs.run(&[daemon], &[id]);
        let command = command.replace("{conf}", &stubs.conf());
        let mut expected = format!("{command} [--setuser] [ceph] [--setgroup] [ceph] {LOG_ARGS}");
        if daemon == "mon" {
            expected = format!("{expected} {MON_LOG_ARGS}");
        }
        assert_eq!(
            stubs.log(),
            format!("{expected}\n"),
            "command line of `{daemon}`"
        );
        let binary = command.split(' ').next().unwrap();
        let started = expected.replace(['[', ']'], "");
        assert_eq!(
            text(&output.stderr),
            format!(
                "entrypoint.sh: starting {started}\nentrypoint.sh: {binary} exited with status 0\n"
            ),
            "stderr of `{daemon}`"
        );
        assert_eq!(text(&output.stdout), "");
        assert_eq!(output.status.code(), Some(0), "exit status of `{daemon}`");
    }
}

#[test]
fn entrypoint_derives_ids_from_node_name() {
    for (daemon, expected) in [
        (
            "mon",
            "ceph-mon [-f] [--cluster] [ceph] [--conf] [{conf}] [--id] [worker-3]",
        ),
        (
            "rgw",
            "radosgw [-f] [--cluster] [ceph] [--conf] [{conf}] [--name] [client.rgw.worker-3]",
        ),
    ] {
        let stubs = Stubs::new();
        let output = stubs.run(&[daemon], &[("NODE_NAME", "worker-3.k8s.example.com")]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let log = stubs.log();
        let expected = expected.replace("{conf}", &stubs.conf());
        assert!(log.starts_with(&format!("{expected} [--setuser]")), "{log}");
    }
}

#[test]
fn entrypoint_creates_the_run_and_data_dirs_and_gives_them_to_the_ceph_user() {
    let cases = [
        ("mon", ("MON_ID", "a"), Some("lib/ceph/mon/ceph-a")),
        ("mgr", ("MGR_ID", "x"), Some("lib/ceph/mgr/ceph-x")),
        ("osd", ("OSD_ID", "3"), Some("lib/ceph/osd/ceph-3")),
        ("mds", ("MDS_ID", "fs.a"), Some("lib/ceph/mds/ceph-fs.a")),
        (
            "rgw",
            ("RGW_ID", "gw"),
            Some("lib/ceph/radosgw/ceph-rgw.gw"),
        ),
        ("rbd-mirror", ("RBD_MIRROR_ID", "m"), None),
        ("cephfs-mirror", ("CEPHFS_MIRROR_ID", "m"), None),
        ("ceph-exporter", ("CEPH_EXPORTER_ID", "e"), None),
    ];
    for (daemon, id, data) in cases {
        let stubs = Stubs::new();
        let output = stubs.run(&[daemon], &[id]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let mut expected = format!(
            "chown [-R] [ceph:ceph] [{}]\n",
            stubs.root("run/ceph").display()
        );
        assert!(stubs.root("run/ceph").is_dir(), "run dir of `{daemon}`");
        if let Some(data) = data {
            assert!(stubs.root(data).is_dir(), "data dir of `{daemon}`");
            expected.push_str(&format!(
                "chown [-R] [ceph:ceph] [{}]\n",
                stubs.root(data).display()
            ));
        }
        assert_eq!(
            stubs.chown_log(),
            expected,
            "ownership changes of `{daemon}`"
        );
    }
    // A data dir already owned by the user is left as it is; no user, no ownership change.
    let stubs = Stubs::new();
    let me = text(&Command::new("id").arg("-un").output().unwrap().stdout);
    let output = stubs.run(&["mgr"], &[("MGR_ID", "x"), ("CEPH_USER", me.trim())]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(stubs.chown_log(), "");
    let stubs = Stubs::new();
    let output = stubs.run(&["mgr"], &[("MGR_ID", "x"), ("CEPH_USER", "")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(stubs.chown_log(), "");
    assert!(stubs.root("lib/ceph/mgr/ceph-x").is_dir());
}

#[test]
fn entrypoint_gives_the_data_dir_to_the_ceph_user_when_an_entry_below_has_another_owner() {
    // A keyring written by root into a data dir the ceph user owns: the daemon could not read
    // it. Giving a file away needs root; CI runs as root.
    let me = text(&Command::new("id").arg("-u").output().unwrap().stdout);
    if me.trim() != "0" {
        assert!(
            std::env::var_os("CI").is_none_or(|ci| ci.is_empty()),
            "CI is set and this test needs root"
        );
        eprintln!("note: not root; skipping the test of an entry with another owner");
        return;
    }
    let stubs = Stubs::new();
    let dir = stubs.root("lib/ceph/mgr/ceph-x");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("keyring"), "[mgr.x]\n").unwrap();
    let chown = |path: &Path, owner: &str| {
        let status = Command::new("chown").arg(owner).arg(path).status().unwrap();
        assert!(status.success());
    };
    chown(&dir.join("keyring"), "4242:4242");
    let output = stubs.run(&["mgr"], &[("MGR_ID", "x"), ("CEPH_USER", "root")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        stubs.chown_log(),
        format!("chown [-R] [root:root] [{}]\n", dir.display())
    );
    // The same tree with every entry owned by the user is left as it is.
    chown(&dir.join("keyring"), "root:root");
    let stubs_again = Stubs::new();
    let again = stubs_again.root("lib/ceph/mgr/ceph-x");
    fs::create_dir_all(&again).unwrap();
    fs::write(again.join("keyring"), "[mgr.x]\n").unwrap();
    let output = stubs_again.run(&["mgr"], &[("MGR_ID", "x"), ("CEPH_USER", "root")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(stubs_again.chown_log(), "");
}

#[test]
fn entrypoint_exports_tcmalloc_thread_cache_bytes_as_upstream() {
    // The environment's value → what the daemon sees.
    for (given, seen) in [("", "134217728"), ("67108864", "67108864")] {
        let stubs = Stubs::new();
        let mut env = vec![("MON_ID", "a"), ("STUB_TCMALLOC", "1")];
        if !given.is_empty() {
            env.push(("TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES", given));
        }
        let output = stubs.run(&["mon"], &env);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let log = stubs.log();
        assert!(log.ends_with(&format!("\ntcmalloc {seen}\n")), "{log}");
    }
}

#[test]
fn entrypoint_raises_the_open_files_limit_for_osds() {
    let hard = Command::new("bash")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    let hard = text(&hard.stdout).trim().to_string();
    let expected = match hard.parse::<u64>() {
        Ok(hard) => hard.min(1_048_576).to_string(),
        Err(_) => "1048576".to_string(),
    };
    let stubs = Stubs::new();
    let output = stubs.run(&["osd"], &[("OSD_ID", "1"), ("STUB_NOFILE", "1")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(
        stubs.log().ends_with(&format!("\nnofile {expected}\n")),
        "{}",
        stubs.log()
    );

    let stubs = Stubs::new();
    let output = stubs.run(
        &["osd"],
        &[
            ("OSD_ID", "1"),
            ("STUB_NOFILE", "1"),
            ("OSD_OPEN_FILES", "512"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(stubs.log().ends_with("\nnofile 512\n"), "{}", stubs.log());

    let stubs = Stubs::new();
    let output = stubs.run(&["osd"], &[("OSD_ID", "1"), ("OSD_OPEN_FILES", "many")]);
    assert_usage_error(
        &stubs,
        &output,
        "`OSD_OPEN_FILES` must be a number, not `many`",
    );
}

#[test]
fn entrypoint_passes_cluster_user_and_extra_arguments() {
    let stubs = Stubs::new();
    let output = stubs.run(
        &["mgr", "--debug-mgr=20", "--mgr-module-path", "/x y"],
        &[("CLUSTER", "backup"), ("CEPH_USER", ""), ("MGR_ID", "b")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        stubs.log(),
        format!(
            "ceph-mgr [-f] [--cluster] [backup] [--conf] [{}] [--id] [b] {LOG_ARGS} \
             [--debug-mgr=20] [--mgr-module-path] [/x y]\n",
            stubs.conf()
        )
    );
}

#[test]
fn entrypoint_defaults_the_configuration_to_the_cluster_name() {
    let stubs = Stubs::new();
    let output = stubs
        .entrypoint(&["mon"], &[("CLUSTER", "backup"), ("MON_ID", "a")])
        .env_remove("CEPH_CONF")
        .output()
        .unwrap();
    assert_eq!(
        text(&output.stderr),
        "entrypoint.sh: error: configuration file `/etc/ceph/backup.conf` not found: \
         mount the cluster's /etc/ceph\n"
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stubs.log(), "");
}

#[test]
fn entrypoint_fails_when_the_daemon_is_not_installed() {
    let stubs = Stubs::new();
    fs::remove_file(stubs.dir.path().join("bin/rbd-mirror")).unwrap();
    let output = stubs.run(&["rbd-mirror"], &[("RBD_MIRROR_ID", "m")]);
    assert_eq!(
        text(&output.stderr),
        "entrypoint.sh: error: `rbd-mirror` not found on PATH\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn entrypoint_exits_with_the_daemon_status() {
    let stubs = Stubs::new();
    let output = stubs.run(&["mds"], &[("MDS_ID", "a"), ("STUB_EXIT", "3")]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        text(&output.stderr).ends_with("entrypoint.sh: ceph-mds exited with status 3\n"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn entrypoint_activates_the_osd_first_when_osd_fsid_is_set() {
    let stubs = Stubs::new();
    let fsid = "4f5c3a61-6a4b-4b7e-9a9d-0c1b2a3d4e5f";
    let output = stubs.run(&["osd"], &[("OSD_ID", "7"), ("OSD_FSID", fsid)]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        stubs.log(),
        format!(
            "ceph-volume [lvm] [activate] [--no-systemd] [7] [{fsid}]\n\
             ceph-osd [-f] [--cluster] [ceph] [--conf] [{}] [--id] [7] \
             [--setuser] [ceph] [--setgroup] [ceph] {LOG_ARGS}\n\
             ceph-volume [lvm] [deactivate] [7] [{fsid}]\n",
            stubs.conf()
        )
    );
    assert!(
        text(&output.stderr).ends_with(&format!(
            "entrypoint.sh: ceph-osd exited with status 0\n\
             entrypoint.sh: deactivating osd.7 ({fsid}) with ceph-volume\n"
        )),
        "{}",
        text(&output.stderr)
    );
    assert!(
        text(&output.stderr).starts_with(&format!(
            "entrypoint.sh: activating osd.7 ({fsid}) with ceph-volume\n"
        )),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn entrypoint_does_not_start_the_osd_when_activation_fails() {
    let stubs = Stubs::new();
    let output = stubs.run(
        &["osd"],
        &[("OSD_ID", "7"), ("OSD_FSID", "f"), ("STUB_EXIT", "5")],
    );
    assert_eq!(output.status.code(), Some(1));
    // What a failed activation left set up is closed too.
    assert_eq!(
        stubs.log(),
        "ceph-volume [lvm] [activate] [--no-systemd] [7] [f]\n\
         ceph-volume [lvm] [deactivate] [7] [f]\n"
    );
    assert_eq!(
        text(&output.stderr),
        "entrypoint.sh: activating osd.7 (f) with ceph-volume\n\
         entrypoint.sh: deactivating osd.7 (f) with ceph-volume\n\
         entrypoint.sh: warning: `ceph-volume lvm deactivate` failed for osd.7\n\
         entrypoint.sh: error: `ceph-volume lvm activate` failed for osd.7\n"
    );
}

/// Waits for `child` to exit, killing it after `timeout`.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            child.kill().unwrap();
            panic!("the entrypoint did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn entrypoint_forwards_sigterm_to_the_daemon() {
    let stubs = Stubs::new();
    let mut child = stubs
        .entrypoint(&["osd"], &[("OSD_ID", "2"), ("STUB_WAIT", "1")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let daemon_pid = loop {
        if let Some(line) = stubs.log().lines().find(|line| line.starts_with("pid ")) {
            break line["pid ".len()..].to_string();
        }
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("the stub daemon did not start: {:?}", stubs.log());
        }
        thread::sleep(Duration::from_millis(20));
    };
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    let output = child.wait_with_output().unwrap();

    assert_eq!(status.code(), Some(0));
    let command = format!(
        "ceph-osd [-f] [--cluster] [ceph] [--conf] [{}] [--id] [2] \
         [--setuser] [ceph] [--setgroup] [ceph] {LOG_ARGS}",
        stubs.conf()
    );
    assert_eq!(
        stubs.log(),
        format!("{command}\npid {daemon_pid}\nceph-osd got SIGTERM\n")
    );
    assert_eq!(
        text(&output.stderr),
        format!(
            "entrypoint.sh: starting {}\n\
             entrypoint.sh: received SIGTERM, sending SIGTERM to ceph-osd (pid {daemon_pid})\n\
             entrypoint.sh: ceph-osd exited with status 0\n",
            command.replace(['[', ']'], "")
        )
    );
}

#[test]
fn pinned_and_unpinned_flavors_get_different_tags() {
    let dir = TempDir::new().unwrap();
    for tree in ["flavors", "templates"] {
        copy_tree(&Path::new(ROOT).join(tree), &dir.path().join(tree));
    }
    let froms: Vec<String> = [
        "squid,x86_64,centos,9,quay.io,centos/centos,stream9",
        "squid-19.2.1,x86_64,centos,9,quay.io,centos/centos,stream9",
        "squid,x86_64,ubuntu,22.04,_,ubuntu,22.04",
        "squid=19.2.1-1jammy,x86_64,ubuntu,22.04,_,ubuntu,22.04",
    ]
    .iter()
    .map(|tuple| {
        let flavor = Flavor::parse(tuple);
        let output = Command::new(env!("CARGO_BIN_EXE_matriochka"))
            .arg("-C")
            .arg(dir.path())
            .args(["stage", tuple])
            .env("RELEASE", "test")
            .env_remove("TAG_REGISTRY")
            .env_remove("DAEMON_BASE_TAG")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        let daemon = dir.path().join("staging").join(flavor.id()).join("daemon");
        let dockerfile = fs::read_to_string(daemon.join("Dockerfile")).unwrap();
        instructions(&dockerfile).remove(0)
    })
    .collect();
    assert_eq!(
        froms,
        [
            "FROM ceph/daemon-base:test-squid-centos-stream9-x86_64",
            "FROM ceph/daemon-base:test-squid-19.2.1-centos-stream9-x86_64",
            "FROM ceph/daemon-base:test-squid-ubuntu-22.04-x86_64",
            "FROM ceph/daemon-base:test-squid-19.2.1-1jammy-ubuntu-22.04-x86_64",
        ]
    );
}

#[test]
fn entrypoint_passes_sighup_on_and_keeps_running() {
    let stubs = Stubs::new();
    let mut child = stubs
        .entrypoint(&["mgr"], &[("MGR_ID", "x"), ("STUB_WAIT", "1")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let wait_for = |line: &str, child: &mut Child| loop {
        if stubs.log().lines().any(|found| found.starts_with(line)) {
            break;
        }
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("no `{line}` in the stub's log: {:?}", stubs.log());
        }
        thread::sleep(Duration::from_millis(20));
    };
    wait_for("pid ", &mut child);
    let pid = child.id().to_string();
    let signal = |name: &str| {
        let kill = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(kill.success());
    };
    signal("-HUP");
    wait_for("ceph-mgr got SIGHUP", &mut child);
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the entrypoint exited on SIGHUP"
    );
    signal("-TERM");
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    let output = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0));
    let log = stubs.log();
    assert!(
        log.ends_with("ceph-mgr got SIGHUP\nceph-mgr got SIGTERM\n"),
        "{log}"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("entrypoint.sh: received SIGHUP, sending SIGHUP to ceph-mgr (pid ")
            && stderr.ends_with("entrypoint.sh: ceph-mgr exited with status 0\n"),
        "{stderr}"
    );
}
