//! `SQUASH=1`: each build's new layers merged into one, its base's layers kept (`--squash`).
//!
//! podman always can; docker's classic builder only with an experimental daemon, so for docker
//! the daemon is asked first (`docker info --format {{.ExperimentalBuild}}`) and a daemon without
//! it fails the run with one line before any build.

use std::ffi::OsString;

use anyhow::{bail, Result};

use crate::domain::env_names;
use crate::domain::vars::Env;
use crate::infra::engine::argv::{Engine, Kind};

/// Whether `SQUASH` asks for squashed builds: `1` yes, unset, empty or `0` no, else an error.
pub(crate) fn wanted(env: &Env) -> Result<bool> {
    match env.get(env_names::SQUASH).unwrap_or_default() {
        "" | "0" => Ok(false),
        "1" => Ok(true),
        other => bail!("SQUASH `{other}` is not 0 or 1"),
    }
}

/// `info --format {{.ExperimentalBuild}}`: `true` when docker's daemon runs experimental.
pub(crate) fn docker_experimental_query() -> Vec<OsString> {
    ["info", "--format", "{{.ExperimentalBuild}}"]
        .iter()
        .map(OsString::from)
        .collect()
}

/// Checks that `engine` can squash: podman always, docker when its daemon is experimental.
pub(crate) fn check(engine: &Engine) -> Result<()> {
    if engine.kind == Kind::Podman {
        return Ok(());
    }
    let args = engine.args(docker_experimental_query());
    let (ok, out) = engine.capture(&args)?;
    let answer = out.trim();
    if !ok || answer != "true" {
        let said = if ok {
            format!("ExperimentalBuild is `{answer}`")
        } else {
            "`docker info` failed".to_string()
        };
        bail!(
            "SQUASH=1 needs docker's experimental daemon ({said}): set `\"experimental\": true` in /etc/docker/daemon.json and restart docker, or use podman"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(value: Option<&str>) -> Env {
        let mut env = Env::default();
        if let Some(value) = value {
            env.set(crate::domain::env_names::SQUASH, value);
        }
        env
    }

    #[test]
    fn squash_values() {
        assert!(!wanted(&env(None)).unwrap());
        assert!(!wanted(&env(Some("0"))).unwrap());
        assert!(wanted(&env(Some("1"))).unwrap());
        assert_eq!(
            wanted(&env(Some("yes"))).unwrap_err().to_string(),
            "SQUASH `yes` is not 0 or 1"
        );
    }
}
