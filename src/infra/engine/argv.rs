//! Engine argument lists, as `Vec<OsString>` without the program: never a shell string.
//!
//! docker and podman take the same arguments for everything matriochka runs but one: whether an
//! image exists (`podman image exists`; docker has only `image inspect`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::infra::process::{self, Cmd, ProcessRunner, Runner};

/// The engine program, the options it always takes, and which of the two engines it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Engine {
    pub(crate) program: OsString,
    /// Given with the program in `CONTAINER_ENGINE` (`podman --root /x`): before every command.
    pub(crate) options: Vec<OsString>,
    pub(crate) kind: Kind,
}

/// The two engines matriochka knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Docker,
    Podman,
}

impl Engine {
    /// The engine named by `CONTAINER_ENGINE`, a program and options split at whitespace:
    /// podman when the program's file name says so, else docker. `None` when empty.
    pub(crate) fn new(text: &str) -> Option<Engine> {
        let mut words = text.split_whitespace();
        let program = words.next()?;
        let name = Path::new(program)
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = if name.contains("podman") {
            Kind::Podman
        } else {
            Kind::Docker
        };
        Some(Engine {
            program: program.into(),
            options: words.map(OsString::from).collect(),
            kind,
        })
    }

    /// The engine's options, then `args`: what to run the program with.
    pub(crate) fn args(&self, args: Vec<OsString>) -> Vec<OsString> {
        self.options.iter().cloned().chain(args).collect()
    }

    /// The command `program options… args…`; `args` already hold the options ([`Engine::args`]).
    pub(crate) fn cmd(&self, args: &[OsString]) -> Cmd {
        Cmd::new(&self.program).args(args.iter().cloned())
    }

    /// The command line as a user would type it, for logs and dry runs.
    pub(crate) fn display(&self, args: &[OsString]) -> String {
        self.cmd(args).display()
    }

    /// Runs the engine; whether it succeeded and what it printed on stdout.
    pub(crate) fn capture(&self, args: &[OsString]) -> Result<(bool, String)> {
        let output = ProcessRunner.run(&self.cmd(args))?;
        Ok((output.success, output.text()))
    }

    /// Runs the engine, its output teed to `log` and `out` ([`process::run_teed`]).
    pub(crate) fn run_teed(
        &self,
        args: &[OsString],
        log: &mut dyn Write,
        out: &mut dyn Write,
    ) -> Result<bool> {
        process::run_teed(&self.cmd(args), log, out)
    }
}

/// When a build pulls its base image, from `PULL`: `1` always, `0` never, else only when the
/// image is missing from the engine's store, so an offline machine builds on a local base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pull {
    Always,
    Missing,
    Never,
}

impl Pull {
    /// `PULL=1` → always, `PULL=0` → never, anything else (unset, empty) → when missing.
    pub(crate) fn from_env(value: Option<&str>) -> Pull {
        match value {
            Some("1") => Pull::Always,
            Some("0") => Pull::Never,
            _ => Pull::Missing,
        }
    }

    /// The pull option of an image's build: an image built on a parent of its flavor never pulls
    /// (podman `--pull=never`; docker's classic builder takes the local image, and `--pull` is
    /// not given), so the parent this run built is never replaced by an older one from the
    /// registry under the same tag; an image built on outside bases only pulls as asked.
    pub(crate) fn for_build(
        self,
        kind: Kind,
        has_parent: bool,
        external_base: bool,
    ) -> Option<&'static str> {
        if has_parent {
            Pull::Never.option(kind)
        } else if external_base {
            self.option(kind)
        } else {
            None
        }
    }

    /// The build option that asks `kind` for this: podman `--pull=always|missing|never`; docker's
    /// classic builder takes only `--pull` (always) and otherwise pulls a missing base itself.
    pub(crate) fn option(self, kind: Kind) -> Option<&'static str> {
        match (kind, self) {
            (Kind::Podman, Pull::Always) => Some("--pull=always"),
            (Kind::Podman, Pull::Missing) => Some("--pull=missing"),
            (Kind::Podman, Pull::Never) => Some("--pull=never"),
            (Kind::Docker, Pull::Always) => Some("--pull"),
            (Kind::Docker, _) => None,
        }
    }
}

/// What one image build is made of.
#[derive(Clone, Debug)]
pub(crate) struct Build<'a> {
    pub(crate) tag: &'a str,
    pub(crate) platform: &'a str,
    pub(crate) dockerfile: &'a Path,
    pub(crate) context: &'a Path,
    /// The pull option ([`Pull::option`]), for an image built on a base from outside the flavor.
    pub(crate) pull: Option<&'static str>,
    /// `--squash`: this build's layers merged into one (`SQUASH=1`).
    pub(crate) squash: bool,
    /// `--timestamp SECONDS` (podman): the creation time of the image and of its layers' files,
    /// so the same inputs give the same image digest.
    pub(crate) timestamp: Option<i64>,
    /// Names of build arguments the engine takes from its environment (`--build-arg NAME`).
    pub(crate) env_build_args: &'a [String],
    /// `[images.<name>]` build arguments (`--build-arg NAME=value`), after those of the environment.
    pub(crate) build_args: &'a BTreeMap<String, String>,
    pub(crate) labels: &'a BTreeMap<String, String>,
    /// `BUILD_ARGS`, word by word, before the context.
    pub(crate) extra: &'a [String],
}

/// `build --platform P -t TAG --file F [PULL] [--squash] [--timestamp S] [--build-arg NAME]… [--build-arg NAME=V]…
/// [--label K=V]… EXTRA… CONTEXT`
pub(crate) fn build(build: &Build) -> Vec<OsString> {
    let mut args = words(&["build", "--platform", build.platform, "-t", build.tag]);
    args.push("--file".into());
    args.push(build.dockerfile.into());
    if let Some(pull) = build.pull {
        args.push(pull.into());
    }
    if build.squash {
        args.push("--squash".into());
    }
    if let Some(seconds) = build.timestamp {
        args.push("--timestamp".into());
        args.push(seconds.to_string().into());
    }
    for name in build.env_build_args {
        args.push("--build-arg".into());
        args.push(name.into());
    }
    for (name, value) in build.build_args {
        args.push("--build-arg".into());
        args.push(format!("{name}={value}").into());
    }
    for (key, value) in build.labels {
        args.push("--label".into());
        args.push(format!("{key}={value}").into());
    }
    args.extend(build.extra.iter().map(OsString::from));
    args.push(build.context.into());
    args
}

/// `push PUSH_ARGS… TAG`
pub(crate) fn push(tag: &str, extra: &[String]) -> Vec<OsString> {
    let mut args = words(&["push"]);
    args.extend(extra.iter().map(OsString::from));
    args.push(tag.into());
    args
}

/// `push PUSH_ARGS… --digestfile FILE TAG` (podman): FILE then holds the digest the registry
/// gave the pushed manifest.
pub(crate) fn push_with_digestfile(tag: &str, extra: &[String], file: &Path) -> Vec<OsString> {
    let mut args = push(tag, extra);
    args.insert(args.len() - 1, "--digestfile".into());
    args.insert(args.len() - 1, file.into());
    args
}

/// `tag SOURCE TARGET`
pub(crate) fn tag(source: &str, target: &str) -> Vec<OsString> {
    words(&["tag", source, target])
}

/// `rmi TAG`
pub(crate) fn rmi(tag: &str) -> Vec<OsString> {
    words(&["rmi", tag])
}

/// `pull EXTRA… TAG` (`--tls-verify=false` for podman reading a plain-HTTP registry)
pub(crate) fn pull_from(tag: &str, extra: &[String]) -> Vec<OsString> {
    let mut args = words(&["pull"]);
    args.extend(extra.iter().map(OsString::from));
    args.push(tag.into());
    args
}

/// `image inspect --format {{index .Config.Labels "LABEL"}} TAG`: prints the label's value.
pub(crate) fn inspect_label(tag: &str, label: &str) -> Vec<OsString> {
    let format = format!("{{{{index .Config.Labels \"{label}\"}}}}");
    words(&["image", "inspect", "--format", &format, tag])
}

/// `image inspect --format {{range .RootFS.Layers}}{{.}} {{end}} TAG`: the image's layer digests,
/// bottom first, each followed by a space.
pub(crate) fn inspect_layers(tag: &str) -> Vec<OsString> {
    words(&[
        "image",
        "inspect",
        "--format",
        "{{range .RootFS.Layers}}{{.}} {{end}}",
        tag,
    ])
}

/// `image inspect --format {{index .Config.Labels "LABEL"}} {{.Os}}/{{.Architecture}} TAG`: the
/// label's value and the image's platform.
pub(crate) fn inspect_label_and_platform(tag: &str, label: &str) -> Vec<OsString> {
    let format =
        format!("{{{{index .Config.Labels \"{label}\"}}}} {{{{.Os}}}}/{{{{.Architecture}}}}");
    words(&["image", "inspect", "--format", &format, tag])
}

/// `image inspect --format {{.Id}} TAG`: prints the image's id.
pub(crate) fn image_id(tag: &str) -> Vec<OsString> {
    words(&["image", "inspect", "--format", "{{.Id}}", tag])
}

/// `images --filter label=LABEL --format {{.Repository}}:{{.Tag}}`: one reference per line.
pub(crate) fn images_labelled(label: &str) -> Vec<OsString> {
    let filter = format!("label={label}");
    words(&[
        "images",
        "--filter",
        &filter,
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])
}

/// `images --quiet --no-trunc --filter label=LABEL`: the ids of the labelled images, one a line.
pub(crate) fn image_ids_labelled(label: &str) -> Vec<OsString> {
    let filter = format!("label={label}");
    words(&["images", "--quiet", "--no-trunc", "--filter", &filter])
}

/// `image inspect --format ID\tCREATED\tLABEL\tTAGS ID…`: one tab-separated line per image, the
/// creation time in unix seconds (podman) or RFC 3339 (docker, whose `.Created` is a string), the
/// tags each followed by a space. The tags are ranged over, not joined: docker's templates see
/// the inspect JSON untyped, where `join` refuses `.RepoTags` ("expected []string").
pub(crate) fn inspect_for_prune(kind: Kind, label: &str, ids: &[&str]) -> Vec<OsString> {
    let created = match kind {
        Kind::Podman => "{{.Created.Unix}}",
        Kind::Docker => "{{.Created}}",
    };
    let format = format!(
        "{{{{.Id}}}}\t{created}\t{{{{index .Config.Labels \"{label}\"}}}}\t{{{{range .RepoTags}}}}{{{{.}}}} {{{{end}}}}"
    );
    let mut args = words(&["image", "inspect", "--format", &format]);
    args.extend(ids.iter().map(OsString::from));
    args
}

/// `ps --all --quiet --no-trunc`: every container's id, one a line.
pub(crate) fn all_containers() -> Vec<OsString> {
    words(&["ps", "--all", "--quiet", "--no-trunc"])
}

/// `container inspect --format {{.Image}} ID…`: the id of each container's own image, one a line
/// (`sha256:…` from docker, bare hex from podman). Not `ps --filter ancestor=`: docker's matches
/// the images a container's image was built on too (the parent links of its classic builder),
/// podman's the container's own image only.
pub(crate) fn images_of_containers(ids: &[&str]) -> Vec<OsString> {
    let mut args = words(&["container", "inspect", "--format", "{{.Image}}"]);
    args.extend(ids.iter().map(OsString::from));
    args
}

/// `rmi NAME…`
pub(crate) fn rmi_all(names: &[String]) -> Vec<OsString> {
    let mut args = words(&["rmi"]);
    args.extend(names.iter().map(OsString::from));
    args
}

fn words(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|arg| arg.to_str().unwrap()).collect()
    }

    #[test]
    fn build_with_everything() {
        let labels = BTreeMap::from([
            ("title".to_string(), "it's $HOME".to_string()),
            (
                "io.matriochka.flavor".to_string(),
                "squid,x86_64".to_string(),
            ),
        ]);
        let args = build(&Build {
            tag: "ceph/core:v1",
            platform: "linux/amd64",
            dockerfile: Path::new("staging/a b/core/Dockerfile"),
            context: Path::new("staging/a b/core"),
            pull: Some("--pull=missing"),
            squash: true,
            timestamp: Some(1_714_564_800),
            env_build_args: &["HTTP_PROXY".to_string()],
            build_args: &BTreeMap::from([("CEPH_REF".to_string(), "squid $x".to_string())]),
            labels: &labels,
            extra: &["--isolation".to_string(), "chroot".to_string()],
        });
        assert_eq!(
            strings(&args),
            [
                "build",
                "--platform",
                "linux/amd64",
                "-t",
                "ceph/core:v1",
                "--file",
                "staging/a b/core/Dockerfile",
                "--pull=missing",
                "--squash",
                "--timestamp",
                "1714564800",
                "--build-arg",
                "HTTP_PROXY",
                "--build-arg",
                "CEPH_REF=squid $x",
                "--label",
                "io.matriochka.flavor=squid,x86_64",
                "--label",
                "title=it's $HOME",
                "--isolation",
                "chroot",
                "staging/a b/core",
            ]
        );
    }

    #[test]
    fn build_without_pull_or_extras() {
        let args = build(&Build {
            tag: "app:v1",
            platform: "linux/arm64",
            dockerfile: Path::new("s/app/Dockerfile"),
            context: Path::new("s/app"),
            pull: None,
            squash: false,
            timestamp: None,
            env_build_args: &[],
            build_args: &BTreeMap::new(),
            labels: &BTreeMap::new(),
            extra: &[],
        });
        assert_eq!(
            strings(&args),
            [
                "build",
                "--platform",
                "linux/arm64",
                "-t",
                "app:v1",
                "--file",
                "s/app/Dockerfile",
                "s/app"
            ]
        );
    }

    #[test]
    fn other_commands() {
        let extra = ["--tls-verify=false".to_string()];
        assert_eq!(
            strings(&push("r/app:v1", &extra)),
            ["push", "--tls-verify=false", "r/app:v1"]
        );
        assert_eq!(strings(&push("app:v1", &[])), ["push", "app:v1"]);
        assert_eq!(
            strings(&push_with_digestfile(
                "r/app:v1",
                &extra,
                Path::new("logs/app.push.digest")
            )),
            [
                "push",
                "--tls-verify=false",
                "--digestfile",
                "logs/app.push.digest",
                "r/app:v1"
            ]
        );
        assert_eq!(strings(&tag("a:1", "b:2")), ["tag", "a:1", "b:2"]);
        assert_eq!(strings(&rmi("a:1")), ["rmi", "a:1"]);
        assert_eq!(
            strings(&pull_from(
                "r/a:mcid-1",
                &["--tls-verify=false".to_string()]
            )),
            ["pull", "--tls-verify=false", "r/a:mcid-1"]
        );
        assert_eq!(
            strings(&inspect_label("a:1", "io.matriochka.flavor")),
            [
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"io.matriochka.flavor\"}}",
                "a:1"
            ]
        );
        assert_eq!(
            strings(&images_labelled("io.matriochka.flavor")),
            [
                "images",
                "--filter",
                "label=io.matriochka.flavor",
                "--format",
                "{{.Repository}}:{{.Tag}}"
            ]
        );
    }

    #[test]
    fn containers_and_their_images() {
        assert_eq!(
            strings(&all_containers()),
            ["ps", "--all", "--quiet", "--no-trunc"]
        );
        assert_eq!(
            strings(&images_of_containers(&["c1", "c2"])),
            ["container", "inspect", "--format", "{{.Image}}", "c1", "c2"]
        );
    }

    #[test]
    fn prune_inspect_ranges_over_tags_as_docker_requires() {
        // `join .RepoTags` fails on docker ("expected []string; got []interface {}").
        let tags = "{{range .RepoTags}}{{.}} {{end}}";
        assert_eq!(
            strings(&inspect_for_prune(
                Kind::Docker,
                "l",
                &["sha256:a", "sha256:b"]
            )),
            [
                "image".to_string(),
                "inspect".to_string(),
                "--format".to_string(),
                format!(
                    "{{{{.Id}}}}\t{{{{.Created}}}}\t{{{{index .Config.Labels \"l\"}}}}\t{tags}"
                ),
                "sha256:a".to_string(),
                "sha256:b".to_string(),
            ]
        );
        assert_eq!(
            strings(&inspect_for_prune(Kind::Podman, "l", &["a"]))[3],
            format!(
                "{{{{.Id}}}}\t{{{{.Created.Unix}}}}\t{{{{index .Config.Labels \"l\"}}}}\t{tags}"
            )
        );
    }

    #[test]
    fn pull_options_by_engine() {
        let cases = [
            (None, Kind::Podman, Some("--pull=missing")),
            (Some(""), Kind::Podman, Some("--pull=missing")),
            (Some("1"), Kind::Podman, Some("--pull=always")),
            (Some("0"), Kind::Podman, Some("--pull=never")),
            (None, Kind::Docker, None),
            (Some("0"), Kind::Docker, None),
            (Some("1"), Kind::Docker, Some("--pull")),
        ];
        for (value, kind, option) in cases {
            assert_eq!(
                Pull::from_env(value).option(kind),
                option,
                "{value:?} {kind:?}"
            );
        }
    }

    #[test]
    fn an_image_on_a_parent_never_pulls() {
        for pull in [Pull::Always, Pull::Missing, Pull::Never] {
            assert_eq!(
                pull.for_build(Kind::Podman, true, false),
                Some("--pull=never")
            );
            assert_eq!(
                pull.for_build(Kind::Podman, true, true),
                Some("--pull=never")
            );
            assert_eq!(pull.for_build(Kind::Docker, true, true), None);
            assert_eq!(pull.for_build(Kind::Podman, false, false), None);
            assert_eq!(
                pull.for_build(Kind::Podman, false, true),
                pull.option(Kind::Podman)
            );
        }
        assert_eq!(
            Pull::Always.for_build(Kind::Docker, false, true),
            Some("--pull")
        );
        assert_eq!(
            strings(&inspect_layers("a:1")),
            [
                "image",
                "inspect",
                "--format",
                "{{range .RootFS.Layers}}{{.}} {{end}}",
                "a:1"
            ]
        );
        assert_eq!(
            strings(&inspect_label_and_platform("a:1", "l")),
            [
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"l\"}} {{.Os}}/{{.Architecture}}",
                "a:1"
            ]
        );
    }

    #[test]
    fn the_kind_comes_from_the_program_name() {
        assert_eq!(Engine::new("/usr/bin/podman").unwrap().kind, Kind::Podman);
        assert_eq!(Engine::new("docker").unwrap().kind, Kind::Docker);
        assert_eq!(
            Engine::new("/opt/podman-4 --root /x").unwrap().kind,
            Kind::Podman
        );
    }

    #[test]
    fn an_engine_with_options() {
        let engine = Engine::new(" podman --root /tmp/x  --storage-driver vfs ").unwrap();
        assert_eq!(engine.program, "podman");
        assert_eq!(engine.kind, Kind::Podman);
        assert_eq!(
            strings(&engine.args(rmi("a:1"))),
            ["--root", "/tmp/x", "--storage-driver", "vfs", "rmi", "a:1"]
        );
        assert_eq!(Engine::new("  "), None);
    }
}
