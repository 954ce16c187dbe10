//! Bake: the image graph of a run's flavors as a BuildKit bake file
//! (`<staging root>/docker-bake.json`, docs.docker.com/build/bake/reference), for
//! `docker buildx bake` on a builder of one or many nodes.
//!
//! A target per image of each flavor, built from its staged context with the labels `make build`
//! gives it; a parent built in the same run is wired to its children by `contexts`, so BuildKit
//! builds the chain in one graph and never pulls a parent it is building. The file is the same
//! bytes for the same input, and every string in it is escaped for JSON and for bake's `${…}`
//! interpolation.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use crate::app::project::Project;
use crate::domain::dockerfile::{self, DOCKERFILE};
use crate::domain::env_names;
use crate::domain::git_facts::GitFacts;
use crate::domain::layout;
use crate::domain::vars::Env;
use crate::error::EXIT_SUCCESS;
use crate::infra::lock::Access;
use crate::plan::labels;
use crate::stage;
use crate::stage::model::{StagedFlavor, StagedImage};

mod merge;

/// What a bake file is made from besides the staged flavors.
#[derive(Clone, Debug, Default)]
pub(crate) struct BakeOptions {
    /// Proxy variables set in the environment: each becomes a bake variable (read again from the
    /// environment by `docker buildx bake`, so no proxy value is written) and a build argument.
    pub(crate) proxies: Vec<String>,
    /// `BAKE_CACHE`: a registry repository for `cache-from`/`cache-to`, one tag per target.
    pub(crate) cache: Option<String>,
    /// `--merge-arches`: one multi-platform target per image of each manifest group.
    pub(crate) merge_arches: bool,
}

impl BakeOptions {
    /// The options the environment sets; a bad `BAKE_CACHE` is an error.
    pub(crate) fn from_env(env: &Env) -> Result<BakeOptions> {
        let cache = env.get_nonempty(env_names::BAKE_CACHE).map(str::to_string);
        if let Some(cache) = &cache {
            check_cache(cache, "target")?;
        }
        Ok(BakeOptions {
            // As `make build` passes them.
            proxies: crate::domain::vars::set_proxies(env),
            cache,
            merge_arches: false,
        })
    }
}

/// The cache reference of a target, `<BAKE_CACHE>:<target>`, checked.
fn check_cache(cache: &str, target: &str) -> Result<String> {
    let reference = format!("{cache}:{target}");
    crate::domain::reference::check_reference(&reference)
        .map_err(|why| anyhow::anyhow!("bad `BAKE_CACHE` `{cache}`: {why}"))?;
    Ok(reference)
}

/// A bake target or group name: characters bake does not allow (`[a-zA-Z0-9_-]` only) become `_`.
pub(crate) fn bake_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The target of one image: `<flavor id>_<image>`.
pub(crate) fn target_name(id: &str, image: &str) -> String {
    bake_name(&format!("{id}_{image}"))
}

/// A string as bake reads it literally: `${` and `%{` would start an interpolation.
fn literal(text: &str) -> Value {
    Value::String(text.replace("${", "$${").replace("%{", "%%{"))
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Array(items.into_iter().map(literal).collect())
}

/// The targets and groups of a bake file as they are gathered, every name bake will see claimed
/// once with what it stands for, so that two never share one.
struct Gathered {
    names: BTreeMap<String, String>,
    targets: Map<String, Value>,
    groups: BTreeMap<String, Vec<String>>,
    all: Vec<String>,
}

impl Gathered {
    /// Nothing gathered yet; `default` is the group of every target.
    fn new() -> Result<Gathered> {
        let mut gathered = Gathered {
            names: BTreeMap::new(),
            targets: Map::new(),
            groups: BTreeMap::new(),
            all: Vec::new(),
        };
        gathered.claim("default", "the group of every target".into())?;
        Ok(gathered)
    }

    /// `name` stands for `what`; an error when it already stands for something else.
    fn claim(&mut self, name: &str, what: String) -> Result<()> {
        if let Some(first) = self.names.get(name) {
            if *first != what {
                bail!("bake name `{name}` stands for both {first} and {what}: rename one of them");
            }
        }
        self.names.insert(name.to_string(), what);
        Ok(())
    }

    /// A target, in `groups` and in `default`.
    fn add(&mut self, target: String, body: Map<String, Value>, groups: [String; 2]) {
        self.targets.insert(target.clone(), Value::Object(body));
        for group in groups {
            self.groups.entry(group).or_default().push(target.clone());
        }
        self.all.push(target);
    }

    /// The bake file, as JSON text ending with a newline.
    fn text(mut self, options: &BakeOptions) -> Result<String> {
        self.groups.insert("default".into(), self.all);
        let groups: Map<String, Value> = self
            .groups
            .into_iter()
            .map(|(name, targets)| {
                (
                    name,
                    json!({ "targets": strings(targets.iter().map(String::as_str)) }),
                )
            })
            .collect();
        let mut file = Map::new();
        if !options.proxies.is_empty() {
            let variables: Map<String, Value> = options
                .proxies
                .iter()
                .map(|name| (name.clone(), json!({ "default": "" })))
                .collect();
            file.insert("variable".into(), Value::Object(variables));
        }
        file.insert("group".into(), Value::Object(groups));
        file.insert("target".into(), Value::Object(self.targets));
        let mut text = serde_json::to_string_pretty(&Value::Object(file))?;
        text.push('\n');
        Ok(text)
    }
}

/// Each proxy variable as the build argument `${NAME}`, which bake reads from its environment.
fn proxy_args(options: &BakeOptions) -> Map<String, Value> {
    options
        .proxies
        .iter()
        .map(|name| (name.clone(), Value::String(format!("${{{name}}}"))))
        .collect()
}

/// `cache-from` and `cache-to` of the target, with `BAKE_CACHE`.
fn insert_cache(body: &mut Map<String, Value>, options: &BakeOptions, target: &str) -> Result<()> {
    if let Some(cache) = &options.cache {
        let reference = check_cache(cache, target)?;
        body.insert(
            "cache-from".into(),
            strings([format!("type=registry,ref={reference}").as_str()]),
        );
        body.insert(
            "cache-to".into(),
            strings([format!("type=registry,ref={reference},mode=max").as_str()]),
        );
    }
    Ok(())
}

/// The bake file of staged flavors, as JSON text ending with a newline.
///
/// Contexts are the staging dirs, relative to the project root where `docker buildx bake` runs:
/// bake resolves a relative `context` from its working directory, not from the file's (unless
/// `BUILDX_BAKE_FILE_RELATIVE_PATHS` is set, which `make bake` unsets).
pub(crate) fn bake_file(
    staged: &[StagedFlavor],
    git: &GitFacts,
    options: &BakeOptions,
) -> Result<String> {
    let mut file = Gathered::new()?;
    for flavor in staged {
        let id = flavor.prepared.id();
        let dir = flavor.prepared.vars.staging_dir();
        let platform = labels::platform(flavor);
        let build_args = &flavor.prepared.vars.build_args;
        let content_ids = labels::content_ids(
            &flavor.images,
            &platform,
            build_args,
            &flavor.prepared.vars.run_inputs,
        );
        let flavor_group = bake_name(&id);
        file.claim(&flavor_group, format!("the flavor `{id}`"))?;
        for image in &flavor.images {
            let target = target_name(&id, &image.name);
            file.claim(&target, format!("the image `{id}/{}`", image.name))?;
            let image_group = bake_name(&image.name);
            file.claim(&image_group, format!("the image name `{}`", image.name))?;
            let mut body = Map::new();
            let context = dir.join(&image.name);
            body.insert("context".into(), literal(&context.display().to_string()));
            body.insert("dockerfile".into(), literal(DOCKERFILE));
            body.insert("tags".into(), strings([image.tag.as_str()]));
            let labels: Map<String, Value> =
                labels::image_labels(flavor, image, &content_ids[&image.name], git)
                    .into_iter()
                    .map(|(key, value)| (key.to_string(), literal(&value)))
                    .collect();
            body.insert("labels".into(), Value::Object(labels));
            body.insert("platforms".into(), strings([platform.as_str()]));
            let image_args = build_args.get(&image.name);
            if !options.proxies.is_empty() || image_args.is_some() {
                let mut args = proxy_args(options);
                for (name, value) in image_args.into_iter().flatten() {
                    args.insert(name.clone(), literal(value));
                }
                body.insert("args".into(), Value::Object(args));
            }
            let contexts = parent_contexts(flavor, &id, image);
            if !contexts.is_empty() {
                body.insert("contexts".into(), Value::Object(contexts));
            }
            insert_cache(&mut body, options, &target)?;
            file.add(target, body, [flavor_group.clone(), image_group]);
        }
    }
    file.text(options)
}

/// `{"<reference as written in the Dockerfile>": "target:<parent target>"}` for each reference
/// (`FROM`, `COPY --from=`) to another image of the flavor.
fn parent_contexts(flavor: &StagedFlavor, id: &str, image: &StagedImage) -> Map<String, Value> {
    contexts_of_parents(flavor, image, |parent| Some(target_name(id, &parent.name)))
}

/// `{"<reference as written in the Dockerfile>": "target:<target>"}` for each reference to
/// another image of `flavor` for which `target` names a target.
fn contexts_of_parents(
    flavor: &StagedFlavor,
    image: &StagedImage,
    target: impl Fn(&StagedImage) -> Option<String>,
) -> Map<String, Value> {
    let Some(file) = image.files.get(DOCKERFILE) else {
        return Map::new();
    };
    let refs = dockerfile::references(
        &String::from_utf8_lossy(&file.bytes),
        flavor.prepared.vars.build_args.get(&image.name),
    );
    refs.images
        .iter()
        .filter_map(|(reference, _)| {
            let parent = flavor.images.iter().find(|i| i.tag == *reference)?;
            Some((
                reference.clone(),
                literal(&format!("target:{}", target(parent)?)),
            ))
        })
        .collect()
}

/// `matriochka bake`, once the flavors are staged: computes them again in memory and writes the
/// bake file.
pub(crate) fn command(
    project: &Project,
    args: &[String],
    options: &BakeOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let staged = crate::app::staging::compute_flavors(project, args)?;
    let (text, targets) = if options.merge_arches {
        let prepared: Vec<_> = staged
            .iter()
            .map(|flavor| flavor.prepared.clone())
            .collect();
        let groups = crate::app::groups::groups(project, &prepared)?;
        let text = merge::bake_file(&staged, &groups, project.git(), options)?;
        (
            text,
            groups.iter().map(|group| group.tags.len()).sum::<usize>(),
        )
    } else {
        let text = bake_file(&staged, project.git(), options)?;
        (text, staged.iter().map(|flavor| flavor.images.len()).sum())
    };
    let staging_root = &project.config.staging_root;
    let rel = staging_root.join(layout::BAKE_FILE);
    // A write below the staging root, like stage's: under the exclusive lock.
    let held = project.lock(Access::Exclusive, err)?;
    let temps = stage::Temps::clean(project.root(), staging_root, &held)?;
    let written = stage::write_one(project.root(), staging_root, &rel, &text, &temps)?;
    writeln!(
        out,
        "{} {}: {targets} targets of {} flavors",
        if written { "wrote" } else { "unchanged" },
        rel.display(),
        staged.len()
    )?;
    Ok(EXIT_SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_what_bake_allows() {
        assert_eq!(
            target_name("squid-19.2.1-centos-9-x86_64", "daemon-base"),
            "squid-19_2_1-centos-9-x86_64_daemon-base"
        );
        assert_eq!(bake_name("a b/c"), "a_b_c");
    }

    #[test]
    fn interpolation_is_escaped() {
        assert_eq!(literal("a${B}c%{d}"), Value::String("a$${B}c%%{d}".into()));
    }
}
