//! The `manifest` command: joins the per-arch images of each manifest group into one manifest list
//! (OCI image index) per image, read from the registry, and pushes it under the manifest tag and
//! the rolling tags.
//!
//! It needs no local image. A list holds every arch of `flavors.buildable` (or `ARCHES`) for its
//! tag; nothing is pushed for a group when a run covers fewer (unless `FORCE=1`), when an arch is
//! not in the registry, has another platform than its flavor's, or another content id than this
//! checkout's plan; a list the registry already holds is not pushed again; a rolling tag never
//! moves back to an older point release.

use std::io::Write;

use anyhow::{anyhow, bail, Context as _, Result};
use sha2::{Digest, Sha256};

use crate::app::groups::{groups, Group, Member};
use crate::app::project::Project;
use crate::app::report::{self, ManifestAction};
use crate::domain::digest::hex;
use crate::domain::env_names;
use crate::domain::vars::PointRelease;
use crate::error::EXIT_SUCCESS;
use crate::infra::engine::{Engine, Kind};
use crate::infra::process::{Cmd, Runner};
use crate::infra::registry::{self as engine, Access, Entry, Platform};

/// The labels of each image copied to its entry's annotations in a list.
const ANNOTATED_LABELS: &[&str] = &[
    "org.opencontainers.image.created",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.source",
    "org.opencontainers.image.version",
    "org.opencontainers.image.base.name",
    "org.opencontainers.image.base.digest",
];
const CONTENT_ID_LABEL: &str = crate::plan::labels::CONTENT_ID_LABEL;
/// The annotation, on each entry of a list, holding the point release it was made for.
pub(crate) const VERSION_ANNOTATION: &str = "io.matriochka.ceph-version";
const FLAVOR_LABEL: &str = crate::plan::labels::FLAVOR_LABEL;

/// A per-arch image as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteImage {
    pub(crate) digest: String,
    pub(crate) platform: Platform,
    /// Its labels.
    pub(crate) labels: std::collections::BTreeMap<String, String>,
}

/// A manifest list as the registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteList {
    /// The digests of its entries, sorted.
    pub(crate) digests: Vec<String>,
    /// The point release it records: an entry's annotation, else its first image's flavor label.
    pub(crate) version: Option<PointRelease>,
}

/// Reads the registry with skopeo.
pub(crate) struct Registry<'a> {
    pub(crate) runner: &'a mut dyn Runner,
    pub(crate) access: Access,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn is_list(manifest: &serde_json::Value) -> bool {
    manifest.get("manifests").is_some_and(|m| m.is_array())
}

impl Registry<'_> {
    /// The raw manifest of a reference; `None` when the registry does not hold it.
    fn raw(&mut self, reference: &str) -> Result<Option<Vec<u8>>> {
        let output = self
            .runner
            .run(&engine::inspect_raw(&self.access, reference))?;
        if output.success {
            return Ok(Some(output.stdout));
        }
        if engine::is_not_found(&output.stderr) {
            return Ok(None);
        }
        bail!(
            "failed to read `{reference}` from the registry: {}",
            last_line(&output.stderr)
        )
    }

    fn config(&mut self, reference: &str) -> Result<serde_json::Value> {
        let output = self
            .runner
            .run(&engine::inspect_config(&self.access, reference))?;
        if !output.success {
            bail!(
                "failed to read the config of `{reference}` from the registry: {}",
                last_line(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout)
            .with_context(|| format!("failed to read the config of `{reference}`: not JSON"))
    }

    /// A per-arch image; `None` when the tag is not in the registry. A tag holding an index (as
    /// BuildKit pushes an image with its provenance) gives its `want` platform's image.
    pub(crate) fn image(&mut self, tag: &str, want: &Platform) -> Result<Option<RemoteImage>> {
        let Some(mut raw) = self.raw(tag)? else {
            return Ok(None);
        };
        let repository = crate::domain::reference::repository(tag);
        let manifest: serde_json::Value = serde_json::from_slice(&raw)
            .with_context(|| format!("failed to read the manifest of `{tag}`: not JSON"))?;
        if is_list(&manifest) {
            let digest = manifest["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|entry| platform_matches(&entry["platform"], want))
                .and_then(|entry| entry["digest"].as_str())
                .ok_or_else(|| anyhow!("`{tag}` is a list without a {want} image"))?;
            let reference = format!("{repository}@{digest}");
            raw = self.raw(&reference)?.ok_or_else(|| {
                anyhow!("`{tag}` names `{reference}`, which the registry does not hold")
            })?;
        }
        let digest = sha256(&raw);
        let config = self.config(&format!("{repository}@{digest}"))?;
        let text = |key: &str| {
            config
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let platform = Platform {
            os: text("os").unwrap_or_else(|| "linux".into()),
            architecture: text("architecture")
                .ok_or_else(|| anyhow!("the config of `{tag}` names no architecture"))?,
            variant: text("variant"),
        };
        let labels = config
            .get("config")
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        Ok(Some(RemoteImage {
            digest,
            platform,
            labels,
        }))
    }

    /// The list under a tag; `None` when the registry holds nothing there. An image (not a list)
    /// under the tag reads as a list of that one image.
    pub(crate) fn list(&mut self, tag: &str) -> Result<Option<RemoteList>> {
        let Some(raw) = self.raw(tag)? else {
            return Ok(None);
        };
        let manifest: serde_json::Value = serde_json::from_slice(&raw)
            .with_context(|| format!("failed to read the manifest of `{tag}`: not JSON"))?;
        if !is_list(&manifest) {
            return Ok(Some(RemoteList {
                digests: vec![sha256(&raw)],
                version: None,
            }));
        }
        let entries = manifest["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut digests: Vec<String> = entries
            .iter()
            .filter_map(|e| e.get("digest").and_then(|d| d.as_str()).map(str::to_string))
            .collect();
        digests.sort();
        let mut version = entries.iter().find_map(|e| {
            e.get("annotations")
                .and_then(|a| a.get(VERSION_ANNOTATION))
                .and_then(|v| v.as_str())
                .and_then(PointRelease::of)
        });
        if version.is_none() {
            if let Some(first) = digests.first() {
                let config = self.config(&format!(
                    "{}@{first}",
                    crate::domain::reference::repository(tag)
                ))?;
                version = label(&config, FLAVOR_LABEL).and_then(|flavor| flavor_version(&flavor));
            }
        }
        Ok(Some(RemoteList { digests, version }))
    }
}

/// Whether an index entry's platform is `want` (an entry without a variant matches any).
fn platform_matches(platform: &serde_json::Value, want: &Platform) -> bool {
    let text = |key: &str| platform.get(key).and_then(|v| v.as_str());
    text("os") == Some(want.os.as_str())
        && text("architecture") == Some(want.architecture.as_str())
        && text("variant").is_none_or(|v| Some(v) == want.variant.as_deref())
}

fn label(config: &serde_json::Value, name: &str) -> Option<String> {
    config
        .get("config")
        .and_then(|c| c.get("Labels"))
        .and_then(|l| l.get(name))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// The point release of a flavor label (`squid=19.2.1-1,x86_64,…` → 19.2.1).
fn flavor_version(flavor: &str) -> Option<PointRelease> {
    let release = flavor.split(',').next()?;
    release
        .char_indices()
        .filter(|(_, c)| *c == '=' || *c == '-')
        .find_map(|(i, _)| PointRelease::of(&release[i..]))
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string()
}

/// What happened to one list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pushed,
    UpToDate,
    KeptNewer(PointRelease),
    Refused(String),
    Failed(String),
}

/// Runs `manifest` for the flavors given (else `$FLAVORS`, else the default flavors).
pub(crate) fn command(
    project: &Project,
    args: &[String],
    runner: &mut dyn Runner,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let texts = project.requested_texts(args)?;
    crate::app::groups::check_tags(project, &texts)?;
    let prepared = project.prepare(&texts)?;
    for p in &prepared {
        project.refuse_test_flavor(&p.flavor, "joined into a manifest list")?;
    }
    let mut groups = groups(project, &prepared)?;
    let force = project.env.get(env_names::FORCE) == Some("1");
    let tree = crate::stage::tree::FsTree::of(&project.config);
    let mut refusals = Vec::new();
    for group in &mut groups {
        let first = prepared
            .iter()
            .find(|p| p.flavor.text == group.members[0].flavor)
            .expect("a member is a prepared flavor");
        let expected = crate::app::groups::expected_arches(project, group, first)?;
        group.members.retain(|m| expected.contains(&m.arch));
        let missing: Vec<String> = expected
            .iter()
            .filter(|arch| !group.members.iter().any(|m| &m.arch == *arch))
            .map(|arch| format!("`{arch}`"))
            .collect();
        let from = if project.env.get_nonempty(env_names::ARCHES).is_some() {
            "`ARCHES`"
        } else {
            "`flavors.buildable`"
        };
        refusals.push((!missing.is_empty() && !force).then(|| {
            let run: Vec<String> = group.members.iter().map(|m| format!("`{}`", m.arch)).collect();
            format!(
                "arch {} of {from} is not in this run (it has {}): add its flavors, or set FORCE=1 to join these alone",
                missing.join(", "),
                if run.is_empty() { "none".to_string() } else { run.join(", ") }
            )
        }));
        for member in &mut group.members {
            let p = prepared
                .iter()
                .find(|p| p.flavor.text == member.flavor)
                .expect("a member is a prepared flavor");
            let staged = crate::stage::compute(&tree, &project.config, p)
                .with_context(|| format!("failed to stage `{}`", p.flavor.text))?;
            member.content_ids = crate::plan::build_plan::plans(&staged, project.git())
                .into_iter()
                .map(|(image, plan)| (image, plan.content_id))
                .collect();
        }
    }
    let engine = crate::app::project::engine(project)?;
    let access = project.registry_access();
    let mut registry = Registry { runner, access };
    let mut bad = 0;
    let mut total = 0;
    let mut recorded = Vec::new();
    for (group, refusal) in groups.iter().zip(refusals) {
        if group.members.is_empty() {
            continue;
        }
        if group.version.is_none() && !project.config.rolling_tags.is_empty() {
            writeln!(
                err,
                "note: `{}` gets no rolling tags: its flavors pin no (or different) point releases",
                group.tags[0].1
            )?;
        }
        for (image, tag) in &group.tags {
            let mut found = Vec::new();
            let outcomes = match &refusal {
                Some(why) => refuse_all(group, image, tag, why),
                None => join_image(&engine, &mut registry, group, image, tag, &mut found, out)?,
            };
            found.sort();
            for (tag, outcome) in outcomes {
                let reason = match &outcome {
                    Outcome::Pushed | Outcome::UpToDate => None,
                    Outcome::KeptNewer(newer) => Some(format!(
                        "it holds {newer}, newer than {}",
                        group.version.map(|v| v.to_string()).unwrap_or_default()
                    )),
                    Outcome::Refused(why) | Outcome::Failed(why) => Some(why.clone()),
                };
                let action = match &outcome {
                    Outcome::Pushed => ManifestAction::Pushed,
                    Outcome::UpToDate => ManifestAction::UpToDate,
                    Outcome::KeptNewer(_) => ManifestAction::KeptNewer,
                    Outcome::Refused(_) => ManifestAction::Refused,
                    Outcome::Failed(_) => ManifestAction::Failed,
                };
                recorded.push(report::ManifestEntry {
                    tag: tag.clone(),
                    platforms: found.iter().map(|(platform, _)| platform.clone()).collect(),
                    digests: found.iter().map(|(_, digest)| digest.clone()).collect(),
                    action,
                    reason: reason.clone(),
                });
                total += 1;
                let line = match (&outcome, reason) {
                    (Outcome::Pushed, _) => format!("pushed {tag}"),
                    (Outcome::UpToDate, _) => {
                        format!("up-to-date {tag}: the registry holds this list already")
                    }
                    (_, reason) => {
                        format!("{} {tag}: {}", action.word(), reason.unwrap_or_default())
                    }
                };
                if matches!(outcome, Outcome::Refused(_) | Outcome::Failed(_)) {
                    bad += 1;
                }
                writeln!(out, "{line}")?;
            }
        }
    }
    report::record_manifests(project, &recorded)?;
    if bad > 0 {
        bail!(
            "{bad} of {total} manifest lists were refused or failed: nothing was pushed for them"
        );
    }
    Ok(EXIT_SUCCESS)
}

/// `podman manifest add`: the program and the two words after its options, for messages.
fn subcommand(engine: &Engine, cmd: &Cmd) -> String {
    let words = cmd.words();
    let skip = 1 + engine.options.len();
    let shown: Vec<&String> = words[..1]
        .iter()
        .chain(words.iter().skip(skip).take(2))
        .collect();
    crate::infra::process::display(&shown)
}

/// Joins one image of a group: the manifest tag, then its rolling tags. `found` gets the
/// platform and digest of each arch the registry holds.
fn join_image(
    engine: &Engine,
    registry: &mut Registry,
    group: &Group,
    image: &str,
    tag: &str,
    found_out: &mut Vec<(String, String)>,
    out: &mut dyn Write,
) -> Result<Vec<(String, Outcome)>> {
    let rolling = group.rolling.get(image).cloned().unwrap_or_default();
    // Every arch, as the registry holds it.
    let mut found: Vec<(&Member, RemoteImage)> = Vec::new();
    let mut missing = Vec::new();
    for member in &group.members {
        let arch_tag = &member.image_tags[image];
        match registry.image(arch_tag, &member.platform) {
            Ok(Some(remote)) => found.push((member, remote)),
            Ok(None) => missing.push(format!(
                "arch `{}` is missing (`{arch_tag}` is not in the registry)",
                member.arch
            )),
            Err(err) => missing.push(format!("arch `{}`: {err:#}", member.arch)),
        }
    }
    found_out.extend(
        found
            .iter()
            .map(|(_, remote)| (remote.platform.to_string(), remote.digest.clone())),
    );
    for (index, (member, remote)) in found.iter().enumerate() {
        missing.extend(member_problem(member, remote, image, &found[..index]));
    }
    if !missing.is_empty() {
        return Ok(refuse_all(group, image, tag, &missing.join("; ")));
    }
    let version: Vec<(String, String)> = group
        .version
        .map(|v| (VERSION_ANNOTATION.to_string(), v.to_string()))
        .into_iter()
        .collect();
    let mut entries: Vec<Entry> =
        found
            .iter()
            .map(|(member, remote)| Entry {
                reference: format!(
                    "{}@{}",
                    crate::domain::reference::repository(&member.image_tags[image]),
                    remote.digest
                ),
                platform: member.platform.clone(),
                annotations: version
                    .iter()
                    .cloned()
                    .chain(ANNOTATED_LABELS.iter().filter_map(|&key| {
                        Some((key.to_string(), remote.labels.get(key)?.clone()))
                    }))
                    .collect(),
            })
            .collect();
    entries.sort_by(|a, b| a.platform.cmp(&b.platform));
    let mut digests: Vec<String> = found.iter().map(|(_, r)| r.digest.clone()).collect();
    digests.sort();

    let mut outcomes = Vec::new();
    let mut destinations = Vec::new();
    for (index, destination) in std::iter::once(tag.to_string()).chain(rolling).enumerate() {
        let existing = match registry.list(&destination) {
            Ok(existing) => existing,
            Err(err) => {
                outcomes.push((destination, Outcome::Failed(format!("{err:#}"))));
                continue;
            }
        };
        let outcome = match existing {
            Some(list) if list.digests == digests => Outcome::UpToDate,
            Some(RemoteList {
                version: Some(theirs),
                ..
            }) if index > 0 && group.version.is_some_and(|ours| theirs > ours) => {
                Outcome::KeptNewer(theirs)
            }
            _ => {
                destinations.push(destination.clone());
                Outcome::Pushed
            }
        };
        outcomes.push((destination, outcome));
    }
    if destinations.is_empty() {
        return Ok(outcomes);
    }
    let list = format!(
        "localhost/matriochka-list/{}",
        &sha256(tag.as_bytes())[7..19]
    );
    if engine.kind == Kind::Podman {
        // A list left by an interrupted run; a missing one is what we expect.
        registry.runner.run(&engine::remove_list(engine, &list))?;
    }
    let push = |registry: &mut Registry, destinations: &[String], out: &mut dyn Write| {
        let commands =
            engine::create_and_push(engine, &registry.access, &list, &entries, destinations);
        run_all(engine, registry, &list, commands, out)
    };
    if let Err(why) = push(registry, &destinations, out)? {
        for (destination, outcome) in &mut outcomes {
            if destinations.contains(destination) {
                *outcome = Outcome::Failed(why.clone());
            }
        }
        return Ok(outcomes);
    }
    // Two manifest runs that overlap may both have read a rolling tag before either pushed: read
    // each rolling tag again, and push again where an older release landed after ours.
    for (destination, outcome) in outcomes.iter_mut().skip(1) {
        if *outcome != Outcome::Pushed {
            continue;
        }
        for attempt in 0..2 {
            // A failed read leaves the outcome as it is: the push itself succeeded.
            let Ok(Some(now)) = registry.list(destination) else {
                break;
            };
            if now.digests == digests {
                break;
            }
            match (now.version, group.version) {
                (Some(theirs), Some(ours)) if theirs > ours => {
                    *outcome = Outcome::KeptNewer(theirs);
                    break;
                }
                _ if attempt == 0 => {
                    let theirs = now.version.map(|v| v.to_string());
                    writeln!(
                        out,
                        "repairing {destination}: an overlapping run moved it back to {} after this run pushed it",
                        theirs.as_deref().unwrap_or("another list")
                    )?;
                    if let Err(why) = push(registry, std::slice::from_ref(destination), out)? {
                        *outcome = Outcome::Refused(format!(
                            "an overlapping run moved it back, and pushing it again failed: {why}"
                        ));
                        break;
                    }
                }
                _ => {
                    *outcome = Outcome::Refused(
                        "an overlapping run moved it back twice: run `make manifest` again once the other runs are done".into(),
                    );
                }
            }
        }
    }
    Ok(outcomes)
}

/// Every tag of one image of a group (its manifest tag, then its rolling tags), refused.
fn refuse_all(group: &Group, image: &str, tag: &str, why: &str) -> Vec<(String, Outcome)> {
    let rolling = group.rolling.get(image).into_iter().flatten();
    std::iter::once(tag)
        .chain(rolling.map(String::as_str))
        .map(|t| (t.to_string(), Outcome::Refused(why.to_string())))
        .collect()
}

/// Why a member's image, as the registry holds it, cannot join the list: another platform than
/// its flavor's, the image of an arch before it, or another content id than the plan's.
fn member_problem(
    member: &Member,
    remote: &RemoteImage,
    image: &str,
    before: &[(&Member, RemoteImage)],
) -> Option<String> {
    let arch_tag = &member.image_tags[image];
    let want = &member.platform;
    let got = &remote.platform;
    if got.os != want.os
        || got.architecture != want.architecture
        || got
            .variant
            .as_ref()
            .is_some_and(|v| Some(v) != want.variant.as_ref())
    {
        return Some(format!(
            "arch `{}`: `{arch_tag}` is a {got} image, not {want}",
            member.arch
        ));
    }
    if let Some((other, _)) = before.iter().find(|(_, r)| r.digest == remote.digest) {
        return Some(format!(
            "arch `{}`: `{arch_tag}` is the image of arch `{}` (`{}`)",
            member.arch, other.arch, remote.digest
        ));
    }
    let planned = member.content_ids.get(image).map(String::as_str);
    let held = remote.labels.get(CONTENT_ID_LABEL).map(String::as_str);
    if planned.is_some() && held != planned {
        return Some(format!(
            "arch `{}`: `{arch_tag}` holds content id `{}`, this checkout's plan is `{}`: push it from this checkout",
            member.arch,
            held.unwrap_or("none"),
            planned.unwrap_or_default()
        ));
    }
    None
}

/// Runs the commands that create and push a list, printing each; the first failure stops them
/// (and removes podman's local list) and is the error.
fn run_all(
    engine: &Engine,
    registry: &mut Registry,
    list: &str,
    commands: Vec<Cmd>,
    out: &mut dyn Write,
) -> Result<Result<(), String>> {
    for cmd in commands {
        writeln!(out, "+ {}", cmd.display())?;
        out.flush()?;
        let output = registry.runner.run(&cmd)?;
        if !output.success {
            let why = format!(
                "`{}` failed: {}",
                subcommand(engine, &cmd),
                last_line(&output.stderr)
            );
            if engine.kind == Kind::Podman {
                registry.runner.run(&engine::remove_list(engine, list))?;
            }
            return Ok(Err(why));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::process::Output;
    use std::collections::BTreeMap;

    /// Answers from a table of `command line → (success, stdout, stderr)`; records every call.
    ///
    /// A `manifest push` of a list to `docker://r/d:<tag>` makes the tag read as `pushed`, then
    /// as the next of `after_push[<tag>]` (another run's list landing after ours).
    #[derive(Default)]
    struct Fake {
        answers: BTreeMap<String, Output>,
        calls: Vec<String>,
        pushed: Vec<String>,
        after_push: BTreeMap<String, Vec<String>>,
    }

    impl Fake {
        fn answer(&mut self, line: &str, stdout: &str) {
            self.answers.insert(
                line.to_string(),
                Output {
                    success: true,
                    stdout: stdout.as_bytes().to_vec(),
                    stderr: String::new(),
                },
            );
        }

        /// An image under `tag` in repo `r/d`, with its config.
        fn image(&mut self, tag: &str, manifest: &str, arch: &str, content_id: &str) {
            self.answer(
                &format!("skopeo inspect --raw docker://r/d:{tag}"),
                manifest,
            );
            let digest = sha256(manifest.as_bytes());
            self.answer(
                &format!("skopeo inspect --config docker://r/d@{digest}"),
                &format!(
                    r#"{{"os":"linux","architecture":"{arch}","config":{{"Labels":{{"{CONTENT_ID_LABEL}":"{content_id}","org.opencontainers.image.revision":"abc","{FLAVOR_LABEL}":"s=19.2.2,x"}}}}}}"#
                ),
            );
        }

        fn list(&mut self, tag: &str, digests: &[String], version: Option<&str>) {
            let annotations = version
                .map(|v| format!(r#","annotations":{{"{VERSION_ANNOTATION}":"{v}"}}"#))
                .unwrap_or_default();
            let entries: Vec<String> = digests
                .iter()
                .map(|d| format!(r#"{{"digest":"{d}"{annotations}}}"#))
                .collect();
            self.answer(
                &format!("skopeo inspect --raw docker://r/d:{tag}"),
                &format!(r#"{{"manifests":[{}]}}"#, entries.join(",")),
            );
        }
    }

    impl Runner for Fake {
        fn run(&mut self, cmd: &Cmd) -> Result<Output> {
            let argv = cmd.words();
            let line = cmd.display();
            self.calls.push(line.clone());
            if argv[1..3] == ["manifest", "push"] {
                let tag = argv.last().unwrap().trim_start_matches("docker://r/d:");
                let later = self.after_push.get_mut(tag).and_then(|l| l.pop());
                let body = later.unwrap_or_else(|| {
                    let entries: Vec<String> = self
                        .pushed
                        .iter()
                        .map(|d| format!(r#"{{"digest":"{d}"}}"#))
                        .collect();
                    format!(r#"{{"manifests":[{}]}}"#, entries.join(","))
                });
                self.answer(&format!("skopeo inspect --raw docker://r/d:{tag}"), &body);
            }
            Ok(self.answers.get(&line).cloned().unwrap_or_else(|| {
                let read = argv[0] == "skopeo";
                Output {
                    success: !read,
                    stdout: Vec::new(),
                    stderr: if read {
                        "manifest unknown".into()
                    } else {
                        String::new()
                    },
                }
            }))
        }
    }

    fn group(version: Option<&str>, rolling: &[&str]) -> Group {
        let member = |arch: &str, go: &str| Member {
            arch: arch.into(),
            flavor: format!("s,{arch}"),
            image_tags: BTreeMap::from([("d".to_string(), format!("r/d:t-{arch}"))]),
            platform: Platform {
                os: "linux".into(),
                architecture: go.into(),
                variant: (go == "arm64").then(|| "v8".into()),
            },
            content_ids: BTreeMap::from([("d".to_string(), format!("id-{arch}"))]),
        };
        Group {
            tags: vec![("d".into(), "r/d:t".into())],
            rolling: BTreeMap::from([(
                "d".to_string(),
                rolling.iter().map(|t| format!("r/d:{t}")).collect(),
            )]),
            version: version.and_then(PointRelease::of),
            members: vec![member("x86_64", "amd64"), member("aarch64", "arm64")],
        }
    }

    fn join(fake: &mut Fake, group: &Group) -> (Vec<(String, Outcome)>, String) {
        fake.pushed = digests();
        let mut out = Vec::new();
        let mut registry = Registry {
            runner: fake,
            access: Access::default(),
        };
        let outcomes = join_image(
            &Engine::new("podman").unwrap(),
            &mut registry,
            group,
            "d",
            "r/d:t",
            &mut Vec::new(),
            &mut out,
        )
        .unwrap();
        (outcomes, String::from_utf8(out).unwrap())
    }

    const AMD: &str = r#"{"schemaVersion":2,"layers":["amd"]}"#;
    const ARM: &str = r#"{"schemaVersion":2,"layers":["arm"]}"#;

    fn both(fake: &mut Fake, arm_content_id: &str) {
        fake.image("t-x86_64", AMD, "amd64", "id-x86_64");
        fake.image("t-aarch64", ARM, "arm64", arm_content_id);
    }

    fn digests() -> Vec<String> {
        let mut d = vec![sha256(AMD.as_bytes()), sha256(ARM.as_bytes())];
        d.sort();
        d
    }

    #[test]
    fn a_missing_arch_refuses_the_list_and_pushes_nothing() {
        let mut fake = Fake::default();
        fake.image("t-x86_64", AMD, "amd64", "id-x86_64");
        let (outcomes, out) = join(&mut fake, &group(None, &[]));
        assert_eq!(
            outcomes,
            [(
                "r/d:t".to_string(),
                Outcome::Refused(
                    "arch `aarch64` is missing (`r/d:t-aarch64` is not in the registry)".into()
                )
            )]
        );
        assert_eq!(out, "");
        assert!(
            fake.calls.iter().all(|c| c.starts_with("skopeo")),
            "{:?}",
            fake.calls
        );
    }

    #[test]
    fn a_member_of_other_content_than_the_plan_refuses_the_list() {
        let mut fake = Fake::default();
        both(&mut fake, "id-other");
        let (outcomes, _) = join(&mut fake, &group(None, &[]));
        assert_eq!(
            outcomes[0].1,
            Outcome::Refused(
                "arch `aarch64`: `r/d:t-aarch64` holds content id `id-other`, this checkout's plan is `id-aarch64`: push it from this checkout".into()
            )
        );
        assert!(fake.calls.iter().all(|c| c.starts_with("skopeo")));
    }

    #[test]
    fn an_amd64_image_under_the_aarch64_tag_refuses_the_list() {
        let mut fake = Fake::default();
        fake.image("t-x86_64", AMD, "amd64", "id-x86_64");
        fake.image("t-aarch64", AMD, "amd64", "id-x86_64");
        let (outcomes, _) = join(&mut fake, &group(None, &[]));
        assert_eq!(
            outcomes[0].1,
            Outcome::Refused(
                "arch `aarch64`: `r/d:t-aarch64` is a linux/amd64 image, not linux/arm64/v8".into()
            )
        );
        assert!(fake.calls.iter().all(|c| c.starts_with("skopeo")));
    }

    #[test]
    fn one_image_under_two_arch_tags_refuses_the_list() {
        let mut fake = Fake::default();
        fake.image("t-x86_64", AMD, "amd64", "id-x86_64");
        fake.image("t-aarch64", AMD, "amd64", "id-x86_64");
        let mut group = group(None, &[]);
        group.members[1].platform = group.members[0].platform.clone();
        group.members[1].content_ids = group.members[0].content_ids.clone();
        let (outcomes, _) = join(&mut fake, &group);
        let amd = sha256(AMD.as_bytes());
        assert_eq!(
            outcomes[0].1,
            Outcome::Refused(format!(
                "arch `aarch64`: `r/d:t-aarch64` is the image of arch `x86_64` (`{amd}`)"
            ))
        );
    }

    #[test]
    fn a_per_arch_tag_holding_an_index_gives_its_platforms_image() {
        let mut fake = Fake::default();
        fake.image("t-x86_64", AMD, "amd64", "id-x86_64");
        let arm = sha256(ARM.as_bytes());
        fake.image(&arm, ARM, "arm64", "id-aarch64");
        fake.answers
            .remove(&format!("skopeo inspect --raw docker://r/d:{arm}"));
        fake.answer(&format!("skopeo inspect --raw docker://r/d@{arm}"), ARM);
        fake.answer(
            "skopeo inspect --raw docker://r/d:t-aarch64",
            &format!(
                r#"{{"manifests":[{{"digest":"sha256:provenance","platform":{{"os":"unknown","architecture":"unknown"}}}},{{"digest":"{arm}","platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#
            ),
        );
        let (outcomes, out) = join(&mut fake, &group(None, &[]));
        assert_eq!(outcomes, [("r/d:t".to_string(), Outcome::Pushed)]);
        assert!(
            out.contains(&format!(
                "--os linux --arch arm64 --variant v8 {}",
                "localhost/"
            )),
            "{out}"
        );
        assert!(out.contains(&format!("docker://r/d@{arm}\n")), "{out}");
    }

    #[test]
    fn a_new_list_is_created_by_digest_with_platforms_from_the_configs() {
        let mut fake = Fake::default();
        both(&mut fake, "id-aarch64");
        let (outcomes, out) = join(&mut fake, &group(Some("19.2.1"), &["v19"]));
        assert_eq!(
            outcomes,
            [
                ("r/d:t".to_string(), Outcome::Pushed),
                ("r/d:v19".to_string(), Outcome::Pushed)
            ]
        );
        let amd = sha256(AMD.as_bytes());
        let arm = sha256(ARM.as_bytes());
        let list = format!("localhost/matriochka-list/{}", &sha256(b"r/d:t")[7..19]);
        assert_eq!(
            out,
            format!(
                "+ podman manifest create {list}\n\
                 + podman manifest add --annotation io.matriochka.ceph-version=19.2.1 --annotation org.opencontainers.image.revision=abc --os linux --arch amd64 {list} docker://r/d@{amd}\n\
                 + podman manifest add --annotation io.matriochka.ceph-version=19.2.1 --annotation org.opencontainers.image.revision=abc --os linux --arch arm64 --variant v8 {list} docker://r/d@{arm}\n\
                 + podman manifest push --all {list} docker://r/d:t\n\
                 + podman manifest push --all {list} docker://r/d:v19\n\
                 + podman manifest rm {list}\n"
            )
        );
    }

    #[test]
    fn a_list_the_registry_holds_is_not_pushed_again() {
        let mut fake = Fake::default();
        both(&mut fake, "id-aarch64");
        fake.list("t", &digests(), None);
        let (outcomes, out) = join(&mut fake, &group(None, &[]));
        assert_eq!(outcomes, [("r/d:t".to_string(), Outcome::UpToDate)]);
        assert_eq!(out, "");
    }

    #[test]
    fn a_rolling_tag_is_not_moved_back_to_an_older_point_release() {
        let mut fake = Fake::default();
        both(&mut fake, "id-aarch64");
        fake.list("v19", &["sha256:older".to_string()], Some("19.2.2"));
        fake.list("v19.2.0", &["sha256:older".to_string()], Some("19.1.9"));
        let (outcomes, out) = join(&mut fake, &group(Some("19.2.1"), &["v19", "v19.2.0"]));
        assert_eq!(
            outcomes,
            [
                ("r/d:t".to_string(), Outcome::Pushed),
                (
                    "r/d:v19".to_string(),
                    Outcome::KeptNewer(PointRelease::of("19.2.2").unwrap())
                ),
                ("r/d:v19.2.0".to_string(), Outcome::Pushed),
            ]
        );
        assert!(out.contains("docker://r/d:v19.2.0\n"), "{out}");
        assert!(!out.contains("docker://r/d:v19\n"), "{out}");
    }

    #[test]
    fn a_rolling_tag_an_overlapping_run_moved_back_is_pushed_again() {
        let mut fake = Fake::default();
        both(&mut fake, "id-aarch64");
        let older = r#"{"manifests":[{"digest":"sha256:older","annotations":{"io.matriochka.ceph-version":"19.2.0"}}]}"#;
        fake.after_push.insert("v19".into(), vec![older.into()]);
        let (outcomes, out) = join(&mut fake, &group(Some("19.2.1"), &["v19"]));
        assert_eq!(
            outcomes,
            [
                ("r/d:t".to_string(), Outcome::Pushed),
                ("r/d:v19".to_string(), Outcome::Pushed)
            ]
        );
        assert!(
            out.contains("repairing r/d:v19: an overlapping run moved it back to 19.2.0 after this run pushed it\n"),
            "{out}"
        );
        assert_eq!(
            fake.calls
                .iter()
                .filter(|c| c.starts_with("podman manifest push") && c.ends_with("docker://r/d:v19"))
                .count(),
            2,
            "{:?}",
            fake.calls
        );
    }

    #[test]
    fn a_rolling_tag_moved_back_twice_is_refused() {
        let mut fake = Fake::default();
        both(&mut fake, "id-aarch64");
        let older = r#"{"manifests":[{"digest":"sha256:older","annotations":{"io.matriochka.ceph-version":"19.2.0"}}]}"#;
        fake.after_push
            .insert("v19".into(), vec![older.into(), older.into()]);
        let (outcomes, _) = join(&mut fake, &group(Some("19.2.1"), &["v19"]));
        assert_eq!(
            outcomes[1].1,
            Outcome::Refused("an overlapping run moved it back twice: run `make manifest` again once the other runs are done".into())
        );
    }

    #[test]
    fn a_rolling_tag_a_newer_run_took_after_ours_is_kept_newer() {
        let mut fake = Fake::default();
        both(&mut fake, "id-aarch64");
        let newer = r#"{"manifests":[{"digest":"sha256:newer","annotations":{"io.matriochka.ceph-version":"19.2.3"}}]}"#;
        fake.after_push.insert("v19".into(), vec![newer.into()]);
        let (outcomes, _) = join(&mut fake, &group(Some("19.2.1"), &["v19"]));
        assert_eq!(
            outcomes[1].1,
            Outcome::KeptNewer(PointRelease::of("19.2.3").unwrap())
        );
    }

    #[test]
    fn without_an_annotation_the_version_comes_from_the_flavor_label() {
        let mut fake = Fake::default();
        both(&mut fake, "id-aarch64");
        let amd = sha256(AMD.as_bytes());
        fake.list("v19", std::slice::from_ref(&amd), None);
        let (outcomes, _) = join(&mut fake, &group(Some("19.2.1"), &["v19"]));
        assert_eq!(
            outcomes[1].1,
            Outcome::KeptNewer(PointRelease::of("19.2.2").unwrap())
        );
    }

    #[test]
    fn a_registry_error_is_not_a_missing_arch() {
        let mut fake = Fake::default();
        fake.image("t-x86_64", AMD, "amd64", "id-x86_64");
        fake.answers.insert(
            "skopeo inspect --raw docker://r/d:t-aarch64".into(),
            Output {
                success: false,
                stdout: Vec::new(),
                stderr: "pinging container registry r: connection refused\n".into(),
            },
        );
        let (outcomes, _) = join(&mut fake, &group(None, &[]));
        assert_eq!(
            outcomes[0].1,
            Outcome::Refused(
                "arch `aarch64`: failed to read `r/d:t-aarch64` from the registry: pinging container registry r: connection refused".into()
            )
        );
    }

    #[test]
    fn flavor_versions() {
        assert_eq!(
            flavor_version("squid=19.2.1-1jammy,x86_64,ubuntu"),
            PointRelease::of("19.2.1")
        );
        assert_eq!(flavor_version("squid,x86_64"), None);
        assert_eq!(
            crate::domain::reference::repository("127.0.0.1:5000/e2e/d:t"),
            "127.0.0.1:5000/e2e/d"
        );
    }
}
