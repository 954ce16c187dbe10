//! Registry: reads (`skopeo inspect`) and manifest lists (`podman manifest`, `docker manifest`),
//! built as [`Cmd`]s (no shell) and run through a [`crate::infra::process::Runner`], so the
//! command logic is tested with the recording fake.
//!
//! The build, push, tag and pull command lines are in [`crate::infra::engine::argv`].

use std::ffi::OsString;
use std::fmt;

use crate::infra::engine::{Engine, Kind};
use crate::infra::process::Cmd;

/// How the registry is reached: `PUSH_ARGS` split on white space; `--tls-verify=false` (podman)
/// or `--insecure` (docker) there also applies to reads. `registries_conf` is
/// `CONTAINERS_REGISTRIES_CONF`, which podman reads itself and skopeo 1.9 only as
/// `--registries-conf`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Access {
    pub(crate) push_args: Vec<String>,
    pub(crate) registries_conf: Option<String>,
}

impl Access {
    pub(crate) fn from_push_args(push_args: &str) -> Access {
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
pub(crate) struct Platform {
    pub(crate) os: String,
    pub(crate) architecture: String,
    pub(crate) variant: Option<String>,
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

/// One image of a list: `repo@sha256:…`, its platform and the annotations of its descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) reference: String,
    pub(crate) platform: Platform,
    pub(crate) annotations: Vec<(String, String)>,
}

/// `skopeo inspect --raw docker://<reference>`: the manifest's bytes, as the registry holds them.
pub(crate) fn inspect_raw(access: &Access, reference: &str) -> Cmd {
    skopeo(access, "--raw", reference)
}

/// `skopeo inspect --config docker://<reference>`: the image's config (platform, labels).
pub(crate) fn inspect_config(access: &Access, reference: &str) -> Cmd {
    skopeo(access, "--config", reference)
}

fn skopeo(access: &Access, what: &str, reference: &str) -> Cmd {
    let mut argv = vec!["skopeo".to_string(), "inspect".into(), what.into()];
    if let Some(conf) = &access.registries_conf {
        argv.push(format!("--registries-conf={conf}"));
    }
    if access.insecure() {
        argv.push("--tls-verify=false".into());
    }
    argv.push(format!("docker://{reference}"));
    Cmd::from_argv(&argv)
}

/// Whether a failed read means the tag is not in the registry (rather than a registry error).
pub(crate) fn is_not_found(stderr: &str) -> bool {
    let stderr = stderr.to_ascii_lowercase();
    ["manifest unknown", "name unknown", "not found"]
        .iter()
        .any(|needle| stderr.contains(needle))
}

/// The commands that remove a stale local list of that name; their failure is ignored.
pub(crate) fn remove_list(engine: &Engine, list: &str) -> Cmd {
    engine_cmd(engine, vec!["manifest".into(), "rm".into(), list.into()])
}

/// The engine (with its options) running `words`.
fn engine_cmd(engine: &Engine, words: Vec<String>) -> Cmd {
    engine.cmd(&engine.args(words.into_iter().map(OsString::from).collect()))
}

/// The commands that create a list of `entries`, with each entry's annotations (podman: OCI
/// descriptor annotations; docker cannot annotate), and push it to every destination.
///
/// podman builds one local list named `list` and pushes it to each destination; docker's local
/// list is named after its destination, so it is built once per destination.
pub(crate) fn create_and_push(
    engine: &Engine,
    access: &Access,
    list: &str,
    entries: &[Entry],
    destinations: &[String],
) -> Vec<Cmd> {
    let s = |text: &str| text.to_string();
    let mut commands = Vec::new();
    match engine.kind {
        Kind::Podman => {
            commands.push(engine_cmd(
                engine,
                vec![s("manifest"), s("create"), s(list)],
            ));
            for entry in entries {
                let mut add = vec![s("manifest"), s("add")];
                if access.insecure() {
                    add.push(s("--tls-verify=false"));
                }
                for (key, value) in &entry.annotations {
                    add.extend([s("--annotation"), format!("{key}={value}")]);
                }
                add.extend(platform_args(&entry.platform));
                add.extend([s(list), format!("docker://{}", entry.reference)]);
                commands.push(engine_cmd(engine, add));
            }
            for destination in destinations {
                let mut push = vec![s("manifest"), s("push"), s("--all")];
                push.extend(access.push_args.iter().cloned());
                push.extend([s(list), format!("docker://{destination}")]);
                commands.push(engine_cmd(engine, push));
            }
            commands.push(remove_list(engine, list));
        }
        Kind::Docker => {
            for destination in destinations {
                let mut create = vec![s("manifest"), s("create")];
                if access.insecure() {
                    create.push(s("--insecure"));
                }
                create.extend([s("--amend"), s(destination)]);
                create.extend(entries.iter().map(|entry| entry.reference.clone()));
                commands.push(engine_cmd(engine, create));
                for entry in entries {
                    let mut annotate = vec![s("manifest"), s("annotate")];
                    annotate.extend(platform_args(&entry.platform));
                    annotate.extend([s(destination), entry.reference.clone()]);
                    commands.push(engine_cmd(engine, annotate));
                }
                let mut push = vec![s("manifest"), s("push"), s("--purge")];
                push.extend(access.push_args.iter().cloned());
                push.push(s(destination));
                commands.push(engine_cmd(engine, push));
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
                annotations: vec![(
                    "io.matriochka.ceph-version".to_string(),
                    "19.2.1".to_string(),
                )],
            },
            Entry {
                reference: "r:5000/ceph/daemon@sha256:bb".into(),
                platform: Platform {
                    os: "linux".into(),
                    architecture: "arm64".into(),
                    variant: Some("v8".into()),
                },
                annotations: vec![(
                    "io.matriochka.ceph-version".to_string(),
                    "19.2.1".to_string(),
                )],
            },
        ]
    }

    fn lines(commands: &[Cmd]) -> Vec<String> {
        commands.iter().map(Cmd::display).collect()
    }

    fn engine(text: &str) -> Engine {
        Engine::new(text).unwrap()
    }

    #[test]
    fn podman_creates_adds_by_digest_and_pushes_each_destination() {
        let access = Access::from_push_args(" --tls-verify=false ");
        let commands = create_and_push(
            &engine("podman"),
            &access,
            "matriochka-list-1",
            &entries(),
            &[
                "r:5000/ceph/daemon:s".into(),
                "r:5000/ceph/daemon:v19".into(),
            ],
        );
        assert_eq!(
            commands[1].words(),
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
            &engine("docker"),
            &access,
            "unused",
            &entries(),
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
            inspect_raw(&Access::default(), "r/ceph/daemon:t").words(),
            ["skopeo", "inspect", "--raw", "docker://r/ceph/daemon:t"]
        );
        assert_eq!(
            inspect_config(
                &Access::from_push_args("--tls-verify=false"),
                "r/d@sha256:aa"
            )
            .words(),
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
            inspect_raw(&access, "r/d:t").words(),
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
    fn an_engine_given_by_path_and_with_options_runs_manifest_commands() {
        let commands = create_and_push(
            &engine("/usr/bin/podman --root /t/store"),
            &Access::default(),
            "l",
            &entries()[..1],
            &["r/d:s".into()],
        );
        assert_eq!(
            lines(&commands),
            [
                "/usr/bin/podman --root /t/store manifest create l",
                "/usr/bin/podman --root /t/store manifest add --annotation io.matriochka.ceph-version=19.2.1 --os linux --arch amd64 l docker://r:5000/ceph/daemon@sha256:aa",
                "/usr/bin/podman --root /t/store manifest push --all l docker://r/d:s",
                "/usr/bin/podman --root /t/store manifest rm l",
            ]
        );
    }
}
