//! Engine command lines for manifest lists and registry reads: `skopeo inspect`, `podman manifest`
//! and `docker manifest`, built as argument lists (no shell) and run through a [`Runner`], so the
//! command logic is tested with a fake runner.
//!
//! The build, push, tag and pull command lines are in [`super::argv`].

use std::fmt;
use std::process::Stdio;

use anyhow::{bail, Context as _, Result};

/// The engine that creates and pushes manifest lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    /// From `CONTAINER_ENGINE`.
    pub fn from_name(name: Option<&str>) -> Result<Engine> {
        match name {
            Some("docker") => Ok(Engine::Docker),
            Some("podman") => Ok(Engine::Podman),
            Some(other) => bail!(
                "unknown container engine `{other}`: set CONTAINER_ENGINE to `docker` or `podman`"
            ),
            None => bail!("no container engine: set CONTAINER_ENGINE to `docker` or `podman`"),
        }
    }

    fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

/// What a command printed, and whether it succeeded.
#[derive(Clone, Debug, Default)]
pub struct Output {
    pub success: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs argument lists; `Err` when the program cannot be started.
pub trait Runner {
    fn run(&mut self, argv: &[String]) -> Result<Output>;
}

/// Runs commands as child processes, capturing their output.
pub struct ProcessRunner;

impl Runner for ProcessRunner {
    fn run(&mut self, argv: &[String]) -> Result<Output> {
        let output = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()
            .with_context(|| {
                let hint = if argv[0] == "skopeo" {
                    " (install it: `apt-get install skopeo`)"
                } else {
                    ""
                };
                format!("failed to run `{}`{hint}", argv[0])
            })?;
        Ok(Output {
            success: output.status.success(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// How the registry is reached: `PUSH_ARGS` split on white space; `--tls-verify=false` (podman)
/// or `--insecure` (docker) there also applies to reads. `registries_conf` is
/// `CONTAINERS_REGISTRIES_CONF`, which podman reads itself and skopeo 1.9 only as
/// `--registries-conf`.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub push_args: Vec<String>,
    pub registries_conf: Option<String>,
}

impl Access {
    pub fn from_push_args(push_args: &str) -> Access {
        Access {
            push_args: push_args.split_whitespace().map(str::to_string).collect(),
            registries_conf: None,
        }
    }

    fn insecure(&self) -> bool {
        self.push_args
            .iter()
            .any(|arg| arg == "--tls-verify=false" || arg == "--insecure")
    }
}

/// An image's platform, from its config.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// One image of a list: `repo@sha256:…` and its platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub reference: String,
    pub platform: Platform,
}

/// `skopeo inspect --raw docker://<reference>`: the manifest's bytes, as the registry holds them.
pub fn inspect_raw(access: &Access, reference: &str) -> Vec<String> {
    skopeo(access, "--raw", reference)
}

/// `skopeo inspect --config docker://<reference>`: the image's config (platform, labels).
pub fn inspect_config(access: &Access, reference: &str) -> Vec<String> {
    skopeo(access, "--config", reference)
}

fn skopeo(access: &Access, what: &str, reference: &str) -> Vec<String> {
    let mut argv = vec!["skopeo".to_string(), "inspect".into(), what.into()];
    if let Some(conf) = &access.registries_conf {
        argv.push(format!("--registries-conf={conf}"));
    }
    if access.insecure() {
        argv.push("--tls-verify=false".into());
    }
    argv.push(format!("docker://{reference}"));
    argv
}

/// Whether a failed read means the tag is not in the registry (rather than a registry error).
pub fn is_not_found(stderr: &str) -> bool {
    let stderr = stderr.to_ascii_lowercase();
    ["manifest unknown", "name unknown", "not found"]
        .iter()
        .any(|needle| stderr.contains(needle))
}

/// The commands that remove a stale local list of that name; their failure is ignored.
pub fn remove_list(engine: Engine, list: &str) -> Vec<String> {
    vec![
        engine.program().into(),
        "manifest".into(),
        "rm".into(),
        list.into(),
    ]
}

/// The commands that create a list of `entries`, with `annotations` on each entry (podman: OCI
/// descriptor annotations; docker cannot annotate), and push it to every destination.
///
/// podman builds one local list named `list` and pushes it to each destination; docker's local
/// list is named after its destination, so it is built once per destination.
pub fn create_and_push(
    engine: Engine,
    access: &Access,
    list: &str,
    entries: &[Entry],
    annotations: &[(String, String)],
    destinations: &[String],
) -> Vec<Vec<String>> {
    let s = |text: &str| text.to_string();
    let mut commands = Vec::new();
    match engine {
        Engine::Podman => {
            commands.push(vec![s("podman"), s("manifest"), s("create"), s(list)]);
            for entry in entries {
                let mut add = vec![s("podman"), s("manifest"), s("add")];
                if access.insecure() {
                    add.push(s("--tls-verify=false"));
                }
                for (key, value) in annotations {
                    add.extend([s("--annotation"), format!("{key}={value}")]);
                }
                add.extend(platform_args(&entry.platform));
                add.extend([s(list), format!("docker://{}", entry.reference)]);
                commands.push(add);
            }
            for destination in destinations {
                let mut push = vec![s("podman"), s("manifest"), s("push"), s("--all")];
                push.extend(access.push_args.iter().cloned());
                push.extend([s(list), format!("docker://{destination}")]);
                commands.push(push);
            }
            commands.push(remove_list(engine, list));
        }
        Engine::Docker => {
            for destination in destinations {
                let mut create = vec![s("docker"), s("manifest"), s("create")];
                if access.insecure() {
                    create.push(s("--insecure"));
                }
                create.extend([s("--amend"), s(destination)]);
                create.extend(entries.iter().map(|entry| entry.reference.clone()));
                commands.push(create);
                for entry in entries {
                    let mut annotate = vec![s("docker"), s("manifest"), s("annotate")];
                    annotate.extend(platform_args(&entry.platform));
                    annotate.extend([s(destination), entry.reference.clone()]);
                    commands.push(annotate);
                }
                let mut push = vec![s("docker"), s("manifest"), s("push"), s("--purge")];
                push.extend(access.push_args.iter().cloned());
                push.push(s(destination));
                commands.push(push);
            }
        }
    }
    commands
}

fn platform_args(platform: &Platform) -> Vec<String> {
    let mut args = vec![
        "--os".to_string(),
        platform.os.clone(),
        "--arch".into(),
        platform.architecture.clone(),
    ];
    if let Some(variant) = &platform.variant {
        args.extend(["--variant".to_string(), variant.clone()]);
    }
    args
}

/// An argument list as a shell would read it back, for the log.
pub fn display(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+%".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry {
                reference: "r:5000/ceph/daemon@sha256:aa".into(),
                platform: Platform {
                    os: "linux".into(),
                    architecture: "amd64".into(),
                    variant: None,
                },
            },
            Entry {
                reference: "r:5000/ceph/daemon@sha256:bb".into(),
                platform: Platform {
                    os: "linux".into(),
                    architecture: "arm64".into(),
                    variant: Some("v8".into()),
                },
            },
        ]
    }

    fn lines(commands: &[Vec<String>]) -> Vec<String> {
        commands.iter().map(|argv| display(argv)).collect()
    }

    #[test]
    fn podman_creates_adds_by_digest_and_pushes_each_destination() {
        let access = Access::from_push_args(" --tls-verify=false ");
        let annotations = [(
            "io.matriochka.ceph-version".to_string(),
            "19.2.1".to_string(),
        )];
        let commands = create_and_push(
            Engine::Podman,
            &access,
            "matriochka-list-1",
            &entries(),
            &annotations,
            &[
                "r:5000/ceph/daemon:s".into(),
                "r:5000/ceph/daemon:v19".into(),
            ],
        );
        assert_eq!(
            commands[1],
            [
                "podman",
                "manifest",
                "add",
                "--tls-verify=false",
                "--annotation",
                "io.matriochka.ceph-version=19.2.1",
                "--os",
                "linux",
                "--arch",
                "amd64",
                "matriochka-list-1",
                "docker://r:5000/ceph/daemon@sha256:aa"
            ]
        );
        assert_eq!(
            lines(&commands),
            [
                "podman manifest create matriochka-list-1",
                "podman manifest add --tls-verify=false --annotation io.matriochka.ceph-version=19.2.1 --os linux --arch amd64 matriochka-list-1 docker://r:5000/ceph/daemon@sha256:aa",
                "podman manifest add --tls-verify=false --annotation io.matriochka.ceph-version=19.2.1 --os linux --arch arm64 --variant v8 matriochka-list-1 docker://r:5000/ceph/daemon@sha256:bb",
                "podman manifest push --all --tls-verify=false matriochka-list-1 docker://r:5000/ceph/daemon:s",
                "podman manifest push --all --tls-verify=false matriochka-list-1 docker://r:5000/ceph/daemon:v19",
                "podman manifest rm matriochka-list-1",
            ]
        );
    }

    #[test]
    fn docker_builds_one_list_per_destination() {
        let access = Access::from_push_args("--insecure");
        let commands = create_and_push(
            Engine::Docker,
            &access,
            "unused",
            &entries(),
            &[],
            &["r:5000/ceph/daemon:s".into()],
        );
        assert_eq!(
            lines(&commands),
            [
                "docker manifest create --insecure --amend r:5000/ceph/daemon:s r:5000/ceph/daemon@sha256:aa r:5000/ceph/daemon@sha256:bb",
                "docker manifest annotate --os linux --arch amd64 r:5000/ceph/daemon:s r:5000/ceph/daemon@sha256:aa",
                "docker manifest annotate --os linux --arch arm64 --variant v8 r:5000/ceph/daemon:s r:5000/ceph/daemon@sha256:bb",
                "docker manifest push --purge --insecure r:5000/ceph/daemon:s",
            ]
        );
    }

    #[test]
    fn reads_are_skopeo_and_follow_tls_verify() {
        assert_eq!(
            inspect_raw(&Access::default(), "r/ceph/daemon:t"),
            ["skopeo", "inspect", "--raw", "docker://r/ceph/daemon:t"]
        );
        assert_eq!(
            inspect_config(
                &Access::from_push_args("--tls-verify=false"),
                "r/d@sha256:aa"
            ),
            [
                "skopeo",
                "inspect",
                "--config",
                "--tls-verify=false",
                "docker://r/d@sha256:aa"
            ]
        );
        let access = Access {
            registries_conf: Some("/t/registries.conf".into()),
            ..Access::default()
        };
        assert_eq!(
            inspect_raw(&access, "r/d:t"),
            [
                "skopeo",
                "inspect",
                "--raw",
                "--registries-conf=/t/registries.conf",
                "docker://r/d:t"
            ]
        );
        assert!(is_not_found(
            "time=\"...\" level=fatal msg=\"Error parsing image name: reading manifest t in r/d: manifest unknown: manifest unknown\""
        ));
        assert!(!is_not_found("connect: connection refused"));
    }

    #[test]
    fn engine_names() {
        assert_eq!(Engine::from_name(Some("podman")).unwrap(), Engine::Podman);
        assert_eq!(
            Engine::from_name(Some("buildah")).unwrap_err().to_string(),
            "unknown container engine `buildah`: set CONTAINER_ENGINE to `docker` or `podman`"
        );
        assert_eq!(display(&["a b".into(), "it's".into()]), r"'a b' 'it'\''s'");
    }
}
