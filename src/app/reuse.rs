//! Reuse (`REUSE=1`): looking an image up in the registry by its content id, and the answers
//! recorded by the concurrent lookup step for the image builds to take.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::app::project::Project;
use crate::domain::env_names;
use crate::domain::layout;
use crate::domain::reference::check_reference;
use crate::infra::engine::{argv, Engine};
use crate::infra::process::Runner;
use crate::infra::registry::{self, Access};
use crate::plan::build_plan::BuildPlan;
use crate::plan::labels::{self, CONTENT_ID_LABEL};

/// Whether `REUSE=1` is set.
pub(crate) fn enabled(project: &Project) -> bool {
    project.env.get(env_names::REUSE) == Some("1")
}

/// The repository content tags are pushed to and looked up in (`CACHE_REPO`), checked; `None`
/// (unset or empty): each image's own repository.
pub(crate) fn cache_repo(project: &Project) -> Result<Option<&str>> {
    let Some(repo) = project.env.get_nonempty(env_names::CACHE_REPO) else {
        return Ok(None);
    };
    if let Err(why) = check_reference(&format!("{repo}/image:tag")) {
        bail!(
            "CACHE_REPO `{repo}` is not a registry repository ({why}): set it to `[host[:port]/]path`, e.g. `quay.io/ceph/cache`"
        );
    }
    Ok(Some(repo))
}

/// The content tag of a planned image, in `CACHE_REPO` when it is set.
pub(crate) fn content_reference(project: &Project, plan: &BuildPlan) -> Result<String> {
    Ok(plan.content_reference(cache_repo(project)?))
}

/// What the registry said about a content tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The registry holds it.
    Hit,
    /// It is not in the registry.
    Miss,
    /// The image is in the engine already with this content id: nothing was asked.
    Local,
    /// The registry could not be asked; the cause, one line.
    Failed(String),
}

impl Lookup {
    pub(crate) fn record(&self) -> String {
        match self {
            Lookup::Hit => "hit\n".into(),
            Lookup::Miss => "miss\n".into(),
            Lookup::Local => "local\n".into(),
            Lookup::Failed(cause) => format!("failed {cause}\n"),
        }
    }

    fn parse(text: &str) -> Option<Lookup> {
        let line = text.strip_suffix('\n')?;
        match line {
            "hit" => Some(Lookup::Hit),
            "miss" => Some(Lookup::Miss),
            "local" => Some(Lookup::Local),
            _ => line
                .strip_prefix("failed ")
                .map(|cause| Lookup::Failed(cause.to_string())),
        }
    }
}

/// Asks the registry whether it holds `reference`: one `skopeo inspect --raw`.
pub(crate) fn lookup(runner: &mut dyn Runner, access: &Access, reference: &str) -> Lookup {
    let argv = registry::inspect_raw(access, reference);
    match runner.run(&argv) {
        Ok(output) if output.success => Lookup::Hit,
        Ok(output) if registry::is_not_found(&output.stderr) => Lookup::Miss,
        Ok(output) => Lookup::Failed(last_line(&output.stderr)),
        Err(err) => Lookup::Failed(format!("{err:#}")),
    }
}

fn last_line(text: &str) -> String {
    let line = text.lines().rev().find(|line| !line.trim().is_empty());
    match line {
        Some(line) => line.trim().to_string(),
        None => "no output".into(),
    }
}

/// The record of a content id, relative to the project root.
pub(crate) fn record_path(staging_root: &Path, content_id: &str) -> PathBuf {
    staging_root
        .join(layout::REUSE_DIR)
        .join(labels::content_tag(content_id))
}

/// Takes the record of `content_id` (removing it: a record serves one build), if there is one.
pub(crate) fn take_record(path: &Path) -> Option<Lookup> {
    let text = std::fs::read_to_string(path).ok()?;
    let _ = std::fs::remove_file(path);
    Lookup::parse(&text)
}

/// Whether the engine holds `tag` with the content id `content_id`.
pub(crate) fn is_local(engine: &Engine, tag: &str, content_id: &str) -> Result<bool> {
    let inspect = engine.args(argv::inspect_label(tag, CONTENT_ID_LABEL));
    let (found, label) = engine.capture(&inspect)?;
    Ok(found && label.trim_end_matches('\n') == content_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::process::{Cmd, Output};

    struct Fake(Result<Output, String>, Vec<Vec<String>>);

    impl Runner for Fake {
        fn run(&mut self, cmd: &Cmd) -> Result<Output> {
            self.1.push(cmd.words());
            self.0.clone().map_err(|err| anyhow::anyhow!(err))
        }
    }

    fn output(success: bool, stderr: &str) -> Result<Output, String> {
        Ok(Output {
            success,
            stdout: Vec::new(),
            stderr: stderr.into(),
        })
    }

    #[test]
    fn one_skopeo_request_per_lookup() {
        let access = Access {
            push_args: vec!["--tls-verify=false".into()],
            registries_conf: Some("/r.conf".into()),
        };
        let mut fake = Fake(output(true, ""), Vec::new());
        assert_eq!(lookup(&mut fake, &access, "r/ceph/app:mcid-1"), Lookup::Hit);
        assert_eq!(
            fake.1,
            [[
                "skopeo",
                "inspect",
                "--raw",
                "--registries-conf=/r.conf",
                "--tls-verify=false",
                "docker://r/ceph/app:mcid-1"
            ]]
        );
    }

    #[test]
    fn misses_and_failures() {
        let access = Access::default();
        let mut miss = Fake(
            output(
                false,
                "level=fatal msg=\"manifest unknown: manifest unknown\"\n",
            ),
            Vec::new(),
        );
        assert_eq!(lookup(&mut miss, &access, "r/a:t"), Lookup::Miss);
        let mut down = Fake(
            output(
                false,
                "warn\nlevel=fatal msg=\"dial tcp: connection refused\"\n\n",
            ),
            Vec::new(),
        );
        assert_eq!(
            lookup(&mut down, &access, "r/a:t"),
            Lookup::Failed("level=fatal msg=\"dial tcp: connection refused\"".into())
        );
        let mut missing = Fake(Err("failed to run `skopeo`".into()), Vec::new());
        assert_eq!(
            lookup(&mut missing, &access, "r/a:t"),
            Lookup::Failed("failed to run `skopeo`".into())
        );
    }

    #[test]
    fn records_read_back() {
        for lookup in [
            Lookup::Hit,
            Lookup::Miss,
            Lookup::Local,
            Lookup::Failed("x y".into()),
        ] {
            assert_eq!(Lookup::parse(&lookup.record()), Some(lookup));
        }
        assert_eq!(Lookup::parse("hit"), None);
        assert_eq!(Lookup::parse("maybe\n"), None);
        assert_eq!(
            record_path(Path::new("staging"), "sha256:0123456789abcdef0123456789"),
            Path::new("staging/.reuse/mcid-0123456789abcdef0123")
        );
    }
}
