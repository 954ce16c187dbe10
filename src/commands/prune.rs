//! `matriochka prune`: removes matriochka's images (those labelled `io.matriochka.flavor`, of every
//! flavor and registry) whose last use is older than `PRUNE_HOURS` (default 48), keeping the
//! `PRUNE_KEEP` (default 24) most recently used whatever their age, every image a container uses,
//! and the current flavors' images unless `PRUNE_CURRENT=1`.
//!
//! An image's last use is the later of its creation and the last use recorded in
//! `<staging root>/.uses/<image id>` (unix seconds): `matriochka image build` records the image it
//! built, and `matriochka prune --record` (run by make after every build and push) records the
//! current flavors' images, which make found up to date and so ran no recipe for. A label cannot
//! record this: it cannot change after the build.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::{bail, Result};

use crate::app::project::engine;
use crate::app::project::Project;
use crate::app::uses::{current_tags, now, read_uses, uses_dir, Use};
use crate::domain::date::rfc3339_seconds;
use crate::domain::env_names;
use crate::error::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::infra::engine::argv::{self, Kind};
use crate::infra::engine::Engine;
use crate::infra::lock::Access;
use crate::plan::labels::{CONTENT_ID_LABEL, FLAVOR_LABEL};

/// What prune keeps and whether it only lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) hours: u64,
    pub(crate) keep: usize,
    pub(crate) current: bool,
    pub(crate) dry_run: bool,
}

impl Settings {
    /// `PRUNE_HOURS`, `PRUNE_KEEP`, `PRUNE_CURRENT=1`, `PRUNE_DRY=1` (or `--dry-run`).
    pub(crate) fn from_env(env: &crate::domain::vars::Env, dry_run: bool) -> Result<Settings> {
        let number = |name: &str, default: u64| -> Result<u64> {
            match env.get_nonempty(name) {
                None => Ok(default),
                Some(text) => text.parse().map_err(|_| {
                    anyhow::anyhow!("{name} `{text}` is not a number: set it to 0 or more")
                }),
            }
        };
        let hours = number(env_names::PRUNE_HOURS, 48)?;
        // In seconds it must fit the clock's i64: a larger value wrapped to a negative age.
        const MAX_HOURS: u64 = (i64::MAX / 3600) as u64;
        if hours > MAX_HOURS {
            bail!(
                "{} `{hours}` is out of range: set it to at most {MAX_HOURS}",
                env_names::PRUNE_HOURS
            );
        }
        Ok(Settings {
            hours,
            keep: number(env_names::PRUNE_KEEP, 24)? as usize,
            current: env.get(env_names::PRUNE_CURRENT) == Some("1"),
            dry_run: dry_run || env.get(env_names::PRUNE_DRY) == Some("1"),
        })
    }
}

/// A matriochka image as the engine describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Hex, without `sha256:`.
    pub(crate) id: String,
    /// Unix seconds.
    pub(crate) created: i64,
    pub(crate) flavor: String,
    pub(crate) tags: Vec<String>,
}

/// Why an image stays, or that it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Recent,
    AmongKept,
    Current,
    Goes,
}

/// Each image with its last use and verdict, most recently used first (the containers' check
/// comes after, from the engine).
pub(crate) fn choose(
    images: &[Listed],
    uses: &BTreeMap<String, i64>,
    current_tags: &BTreeSet<String>,
    now: i64,
    settings: &Settings,
) -> Vec<(Listed, i64, Verdict)> {
    let mut ranked: Vec<(Listed, i64)> = images
        .iter()
        .map(|image| {
            let used = uses.get(&image.id).copied().unwrap_or(i64::MIN);
            (image.clone(), image.created.max(used))
        })
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
    let hours = i64::try_from(settings.hours).unwrap_or(i64::MAX);
    let limit = now.saturating_sub(hours.saturating_mul(3600));
    ranked
        .into_iter()
        .enumerate()
        .map(|(rank, (image, last_use))| {
            let is_current = image.tags.iter().any(|tag| current_tags.contains(tag));
            let verdict = if rank < settings.keep {
                Verdict::AmongKept
            } else if last_use > limit {
                Verdict::Recent
            } else if is_current && !settings.current {
                Verdict::Current
            } else {
                Verdict::Goes
            };
            (image, last_use, verdict)
        })
        .collect()
}

/// The names an engine may list a tag under (podman prefixes `localhost/` to names without a
/// registry, docker `docker.io/`).
fn tag_forms(tag: &str) -> [String; 4] {
    [
        tag.to_string(),
        format!("localhost/{tag}"),
        format!("docker.io/{tag}"),
        format!("docker.io/library/{tag}"),
    ]
}

/// Lists matriochka's images, then removes those [`choose`] lets go and no container uses.
pub(crate) fn prune(
    project: &Project,
    flavors: &[String],
    dry_run: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let settings = Settings::from_env(&project.env, dry_run)?;
    let engine = engine(project)?;
    let current: BTreeSet<String> = current_tags(project, flavors)?
        .iter()
        .flat_map(|tag| tag_forms(tag))
        .collect();
    // No build reads a base image while images go.
    let _lock = if settings.dry_run {
        None
    } else {
        Some(project.lock(Access::Exclusive, err)?)
    };
    let uses = read_uses(project);
    // Only what matriochka built itself: not an image built FROM one (it inherits the labels).
    let images: Vec<Listed> = list(&engine)?
        .into_iter()
        .filter(|image| uses.get(&image.id).is_some_and(|u| u.content_id.is_some()))
        .collect();
    let in_use = images_of_containers(&engine)?;
    let last_uses = uses.iter().map(|(id, u)| (id.clone(), u.seconds)).collect();
    let now = now();
    let chosen = choose(&images, &last_uses, &current, now, &settings);
    let total = chosen.len();
    let mut gone = 0;
    let mut code = EXIT_SUCCESS;
    for (image, last_use, verdict) in chosen {
        if verdict != Verdict::Goes {
            continue;
        }
        let short = &image.id[..image.id.len().min(12)];
        let names = if image.tags.is_empty() {
            "<none>".to_string()
        } else {
            image.tags.join(" ")
        };
        if in_use.contains(&image.id) {
            writeln!(out, "kept {short} {names}: a container uses it")?;
            continue;
        }
        let record = &uses[&image.id];
        if let Some(why) = not_ours(&engine, &image, record)? {
            writeln!(out, "kept {short} {names}: {why}")?;
            continue;
        }
        let hours = (now - last_use).max(0) / 3600;
        gone += 1;
        if settings.dry_run {
            writeln!(
                out,
                "would remove {short} {names} (flavor {}, last used {hours}h ago)",
                image.flavor
            )?;
            continue;
        }
        // Untagged one name at a time, then by id when no name is left: an id with several
        // names is refused by docker.
        let targets: Vec<String> = if image.tags.is_empty() {
            vec![image.id.clone()]
        } else {
            image.tags.clone()
        };
        let rmi = engine.args(argv::rmi_all(&targets));
        writeln!(out, "{}", engine.display(&rmi))?;
        let mut said = Vec::new();
        let removed = engine.run_teed(&rmi, &mut said, &mut std::io::sink())?;
        if !removed && held_by_a_container(&String::from_utf8_lossy(&said)) {
            // A leftover build container (buildah's, which `ps` does not list) holds it.
            writeln!(
                out,
                "kept {short} {names}: a container holds it (a leftover build container?)"
            )?;
            gone -= 1;
            continue;
        }
        out.write_all(&said)?;
        if !removed {
            code = EXIT_FAILURE;
            continue;
        }
        let _ = std::fs::remove_file(uses_dir(project).join(&image.id));
    }
    let verb = if settings.dry_run {
        "would remove"
    } else {
        "removed"
    };
    writeln!(out, "{verb} {gone} of {total} matriochka images")?;
    Ok(code)
}

/// Why the image the engine lists under `image.id` is not what matriochka recorded building
/// there: another content id (`record`'s must equal the image's label), or a tag matriochka
/// did not give it (a user's own name for it stays, and the image with it); `None` when it is.
fn not_ours(engine: &Engine, image: &Listed, record: &Use) -> Result<Option<String>> {
    let (found, label) =
        engine.capture(&engine.args(argv::inspect_label(&image.id, CONTENT_ID_LABEL)))?;
    if !found || Some(label.trim_end_matches('\n')) != record.content_id.as_deref() {
        return Ok(Some(
            "not the image matriochka built there (another content id)".into(),
        ));
    }
    let foreign: Vec<&str> = image
        .tags
        .iter()
        .filter(|tag| !record.tags.iter().any(|ours| tag_forms(ours).contains(tag)))
        .map(String::as_str)
        .collect();
    Ok((!foreign.is_empty()).then(|| {
        format!(
            "tagged {} outside matriochka",
            itertools::join(foreign.iter().map(|tag| format!("`{tag}`")), ", ")
        )
    }))
}

/// Whether a failed `rmi`'s output says a container holds the image (podman, docker).
fn held_by_a_container(said: &str) -> bool {
    const SIGNS: [&str; 3] = [
        "in use by a container",
        "is being used by",
        "is using its referenced image",
    ];
    let said = said.to_lowercase();
    SIGNS.iter().any(|sign| said.contains(sign))
}

/// The ids (hex) of the images containers were created from, of every container.
fn images_of_containers(engine: &Engine) -> Result<BTreeSet<String>> {
    let ps = engine.args(argv::all_containers());
    let (listed, text) = engine.capture(&ps)?;
    if !listed {
        bail!(
            "failed to list containers: `{}` failed",
            engine.display(&ps)
        );
    }
    let ids: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let inspect = engine.args(argv::images_of_containers(&ids));
    let (ok, text) = engine.capture(&inspect)?;
    if !ok {
        bail!(
            "failed to inspect containers: `{}` failed",
            engine.display(&inspect)
        );
    }
    Ok(image_ids(&text))
}

/// The image ids of [`argv::images_of_containers`]'s lines, without `sha256:`.
fn image_ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| line.trim().trim_start_matches("sha256:"))
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

/// The labelled images, newest first.
fn list(engine: &Engine) -> Result<Vec<Listed>> {
    let ids_args = engine.args(argv::image_ids_labelled(FLAVOR_LABEL));
    let (listed, text) = engine.capture(&ids_args)?;
    if !listed {
        bail!(
            "failed to list images: `{}` failed",
            engine.display(&ids_args)
        );
    }
    let mut ids: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let inspect = engine.args(argv::inspect_for_prune(engine.kind, FLAVOR_LABEL, &ids));
    let (ok, text) = engine.capture(&inspect)?;
    if !ok {
        bail!(
            "failed to inspect images: `{}` failed",
            engine.display(&inspect)
        );
    }
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| parse_listed(line, engine.kind))
        .collect()
}

/// One line of [`argv::inspect_for_prune`]: id, created, flavor label, tags, tab-separated.
fn parse_listed(line: &str, kind: Kind) -> Result<Listed> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [id, created, flavor, tags] = fields[..] else {
        bail!("failed to read the engine's image listing: `{line}`");
    };
    let created = match kind {
        Kind::Podman => created.trim().parse().ok(),
        Kind::Docker => rfc3339_seconds(created.trim()),
    }
    .ok_or_else(|| {
        anyhow::anyhow!("failed to read the creation time `{created}` of image `{id}`")
    })?;
    Ok(Listed {
        id: id.trim().trim_start_matches("sha256:").to_string(),
        created,
        flavor: flavor.to_string(),
        tags: tags
            .split_whitespace()
            .filter(|tag| !tag.contains("<none>"))
            .map(str::to_string)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, created: i64, tags: &[&str]) -> Listed {
        Listed {
            id: id.into(),
            created,
            flavor: "f".into(),
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
        }
    }

    const SETTINGS: Settings = Settings {
        hours: 48,
        keep: 1,
        current: false,
        dry_run: true,
    };

    #[test]
    fn the_most_recent_and_the_recently_used_stay() {
        let hour = 3600;
        let now = 1000 * hour;
        let images = [
            image("a", now - 100 * hour, &["r/a:1"]),
            image("b", now - 100 * hour, &["r/b:1"]),
            image("c", now - 90 * hour, &[]),
            image("d", now - 200 * hour, &["r/d:1"]),
            image("e", now - 300 * hour, &["r/e:1"]),
        ];
        // b was reused 10 hours ago; e belongs to a current flavor.
        let uses = BTreeMap::from([("b".to_string(), now - 10 * hour)]);
        let current = BTreeSet::from(["r/e:1".to_string()]);
        let verdicts: Vec<(String, Verdict)> = choose(&images, &uses, &current, now, &SETTINGS)
            .into_iter()
            .map(|(image, _, verdict)| (image.id, verdict))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("b".to_string(), Verdict::AmongKept),
                ("c".to_string(), Verdict::Goes),
                ("a".to_string(), Verdict::Goes),
                ("d".to_string(), Verdict::Goes),
                ("e".to_string(), Verdict::Current),
            ]
        );
        let all = Settings {
            keep: 3,
            current: true,
            ..SETTINGS
        };
        let goes: Vec<String> = choose(&images, &uses, &current, now, &all)
            .into_iter()
            .filter(|(_, _, verdict)| *verdict == Verdict::Goes)
            .map(|(image, _, _)| image.id)
            .collect();
        assert_eq!(goes, ["d", "e"]);
    }

    #[test]
    fn creation_times_of_both_engines() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_seconds("2024-05-01T12:00:00.123456789Z"),
            Some(1_714_564_800)
        );
        assert_eq!(
            rfc3339_seconds("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800)
        );
        let line = "sha256:ab12\t1714564800\tsquid,x86_64\tr/a:1 <none>:<none>";
        assert_eq!(
            parse_listed(line, Kind::Podman).unwrap(),
            Listed {
                id: "ab12".into(),
                created: 1_714_564_800,
                flavor: "squid,x86_64".into(),
                tags: vec!["r/a:1".into()],
            }
        );
        // What docker prints: RFC 3339 (here from an image dated at the epoch), the tags each
        // followed by a space; an image without tags.
        let line = "sha256:cd34\t1970-01-01T00:00:00Z\tsquid,x86_64\tr/a:1 r/b:2 ";
        assert_eq!(
            parse_listed(line, Kind::Docker).unwrap(),
            Listed {
                id: "cd34".into(),
                created: 0,
                flavor: "squid,x86_64".into(),
                tags: vec!["r/a:1".into(), "r/b:2".into()],
            }
        );
        let line = "sha256:cd34\t2024-05-01T12:00:00.5Z\tsquid,x86_64\t";
        assert_eq!(
            parse_listed(line, Kind::Docker).unwrap().created,
            1_714_564_800
        );
        assert!(parse_listed(line, Kind::Docker).unwrap().tags.is_empty());
        assert_eq!(
            format!("{:#}", parse_listed("x\ty\tz", Kind::Podman).unwrap_err()),
            "failed to read the engine's image listing: `x\ty\tz`"
        );
    }

    #[test]
    fn container_images_of_both_engines() {
        // docker prints `sha256:…`, podman bare hex; a listing line per container.
        assert_eq!(
            image_ids("sha256:ab12\ncd34\n\nsha256:ab12\n"),
            BTreeSet::from(["ab12".to_string(), "cd34".to_string()])
        );
    }

    #[test]
    fn settings_from_the_environment() {
        let mut env = crate::domain::vars::Env::default();
        let settings = Settings::from_env(&env, false).unwrap();
        assert_eq!(
            settings,
            Settings {
                hours: 48,
                keep: 24,
                current: false,
                dry_run: false
            }
        );
        env.set("PRUNE_DRY", "1");
        env.set("PRUNE_KEEP", "x");
        assert_eq!(
            Settings::from_env(&env, false).unwrap_err().to_string(),
            "PRUNE_KEEP `x` is not a number: set it to 0 or more"
        );
        env.set("PRUNE_KEEP", "0");
        assert!(Settings::from_env(&env, false).unwrap().dry_run);
    }
}
