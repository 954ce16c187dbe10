//! Project: the loaded configuration, the environment and lazy git facts; choosing and preparing
//! the flavors of a run. Every command starts from it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context as _, Result};

use crate::domain::config::Config;
use crate::domain::env_names;
use crate::domain::flavor::{Flavor, FlavorError, ShortFormDefaults};
use crate::domain::git_facts::GitFacts;
use crate::domain::vars::Env;
use crate::infra::engine::Engine;
use crate::stage::model::Prepared;
use crate::stage::overlay;
use crate::stage::tree::FsTree;

/// The project, the environment and the git facts a command works with.
pub(crate) struct Project {
    pub(crate) config: Config,
    pub(crate) env: Env,
    /// What the short form of a flavor takes from the host and the environment.
    defaults: ShortFormDefaults,
    git: OnceLock<GitFacts>,
}

impl Project {
    pub(crate) fn load(root: &Path, config: Option<&Path>, env: Env) -> Result<Project> {
        let mut config = Config::load(root, config)?;
        config.decor = crate::stage::decor::load(
            root,
            env.get(env_names::HEADER),
            env.get(env_names::FOOTER),
        )?;
        Ok(Project {
            config,
            defaults: env.short_form_defaults(),
            env,
            git: OnceLock::new(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.config.root
    }

    /// Git facts, read on first use.
    pub(crate) fn git(&self) -> &GitFacts {
        self.git
            .get_or_init(|| crate::infra::git::read(&self.config.root))
    }

    /// The flavors from the arguments, else `$FLAVORS`, else `flavors.default`, as written and
    /// checked. Each is parsed again where it is used, so that a run over many flavors holds a
    /// few parsed flavors at a time.
    pub(crate) fn requested_texts<'a>(&'a self, args: &'a [String]) -> Result<Vec<&'a str>> {
        let texts: Vec<&str> = if !args.is_empty() {
            Flavor::split_list(args)
        } else if let Some(flavors) = self
            .env
            .get_nonempty(env_names::FLAVORS)
            .filter(|f| !f.trim().is_empty())
        {
            flavors.split_whitespace().collect()
        } else {
            Flavor::split_list(&self.config.default_flavors)
        };
        for text in &texts {
            self.parse(text)?;
        }
        if texts.is_empty() {
            bail!(
                "no flavor given: pass flavors, set FLAVORS or `flavors.default` in `{}`",
                self.config.display_path()
            );
        }
        Ok(texts)
    }

    /// The buildable flavors, in configuration order, as written and checked.
    pub(crate) fn buildable_texts(&self) -> Result<Vec<&str>> {
        let texts = Flavor::split_list(&self.config.buildable);
        for text in &texts {
            self.parse(text).with_context(|| {
                format!(
                    "bad `flavors.buildable` in `{}`",
                    self.config.display_path()
                )
            })?;
        }
        Ok(texts)
    }

    /// The test flavors (`flavors.test`), in configuration order, as written and checked.
    pub(crate) fn test_texts(&self) -> Result<Vec<&str>> {
        let texts = Flavor::split_list(&self.config.test_flavors);
        for text in &texts {
            self.parse(text).with_context(|| {
                format!("bad `flavors.test` in `{}`", self.config.display_path())
            })?;
        }
        Ok(texts)
    }

    /// Whether `flavor` is a test flavor: built and run by the tests, never pushed.
    pub(crate) fn is_test(&self, flavor: &Flavor) -> Result<bool> {
        let tuple = flavor.tuple();
        for text in self.test_texts()? {
            if self.parse(text)?.tuple() == tuple {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Fails when `flavor` is a test flavor: `what` (a push, a manifest list) is refused.
    pub(crate) fn refuse_test_flavor(&self, flavor: &Flavor, what: &str) -> Result<()> {
        if self.is_test(flavor)? {
            bail!(
                "flavor `{}` is a test flavor (`flavors.test` of `{}`): it is built and run by the tests, never {what}",
                flavor.text,
                self.config.display_path()
            );
        }
        Ok(())
    }

    pub(crate) fn parse(&self, text: &str) -> Result<Flavor, FlavorError> {
        Flavor::parse(text, &self.defaults)
    }

    /// Computes each flavor's variables; two flavors in one staging dir are an error.
    pub(crate) fn prepare(&self, texts: &[&str]) -> Result<Vec<Prepared>> {
        self.prepare_with(texts, |_, prepared| prepared)
    }

    /// Like [`Project::prepare`], keeping of each flavor only what `keep` makes of its text and
    /// the rest.
    pub(crate) fn prepare_with<'t, T>(
        &self,
        texts: &[&'t str],
        keep: impl Fn(&'t str, Prepared) -> T,
    ) -> Result<Vec<T>> {
        let buildable: BTreeSet<String> = self
            .buildable_texts()?
            .iter()
            .map(|text| Ok(self.parse(text)?.tuple()))
            .collect::<Result<_>>()?;
        let test: BTreeSet<String> = self
            .test_texts()?
            .iter()
            .map(|text| Ok(self.parse(text)?.tuple()))
            .collect::<Result<_>>()?;
        let mut kept = Vec::new();
        // Each staging dir → the first flavor staged there.
        let mut by_dir: HashMap<PathBuf, &str> = HashMap::new();
        for &text in texts {
            let flavor = self.parse(text)?;
            let tuple = flavor.tuple();
            let is_buildable = buildable.contains(&tuple);
            let is_test = test.contains(&tuple);
            let mut prepared =
                Prepared::new(flavor, &self.config, &self.env, self.git(), is_buildable)?;
            prepared.test = is_test;
            if !is_buildable && !is_test {
                // The same check in every command (stage, plan, show vars), before anything runs.
                let tree = FsTree::of(&self.config);
                let layers = overlay::layers(&self.config, &prepared.vars, &tree)?;
                overlay::check_known_values(&self.config, &prepared.vars, &layers, &tree).map_err(
                    |problem| FlavorError {
                        flavor: text.to_string(),
                        problem: format!("{problem:#}"),
                    },
                )?;
            }
            let dir = prepared.vars.staging_dir();
            if let Some(&first) = by_dir.get(dir) {
                if self.parse(first)?.tuple() == tuple {
                    continue;
                }
                bail!(
                    "flavors `{first}` and `{text}` both stage into `{}`: add the differing field to `layout.staging_dir`",
                    dir.display()
                );
            }
            by_dir.insert(dir.to_path_buf(), text);
            kept.push(keep(text, prepared));
        }
        Ok(kept)
    }

    /// The flavor a make target names (`build.<id>.<image>`, `push.<id>`, `clean.<id>.<image>`):
    /// the first of `FLAVORS`, `flavors.default`, `flavors.buildable` and `flavors.test` whose id
    /// is `<id>`.
    pub(crate) fn flavor_of_target(&self, target: &str) -> Result<String> {
        let Some((verb, stem)) = ["build.", "push.", "clean."]
            .iter()
            .find_map(|verb| target.strip_prefix(verb).map(|stem| (verb, stem)))
        else {
            bail!("target `{target}` is not `build.<id>[.<image>]`, `push.…` or `clean.…`");
        };
        let mut candidates: Vec<&str> = Vec::new();
        if let Some(flavors) = self.env.get_nonempty(env_names::FLAVORS) {
            candidates.extend(flavors.split_whitespace());
        }
        candidates.extend(Flavor::split_list(&self.config.default_flavors));
        candidates.extend(self.buildable_texts()?);
        candidates.extend(self.test_texts()?);
        let mut stems = Vec::new();
        for text in candidates {
            let flavor = self.parse(text)?;
            let prepared = Prepared::new(flavor, &self.config, &self.env, self.git(), false)?;
            let id = prepared.id();
            let images = self
                .config
                .images
                .iter()
                .map(|image| format!("{id}.{image}"));
            let names: Vec<String> = std::iter::once(id.clone()).chain(images).collect();
            if names.iter().any(|name| name == stem) {
                return Ok(text.to_string());
            }
            stems.extend(names);
        }
        let hint = crate::domain::suggest::closest(stem, stems.iter().map(String::as_str))
            .map(|stem| format!("; did you mean `{verb}{stem}`?"))
            .unwrap_or_default();
        bail!(
            "no flavor of FLAVORS, `flavors.default` or `flavors.buildable` has the id of target `{target}`{hint}"
        )
    }
}

/// The nearest directory from `start` upwards that holds the default configuration, relative to
/// `start` (`.`, `..`, `../..`), so that paths print as they do from the root; `.` when there is
/// none (loading then names the missing file).
pub(crate) fn find_root(start: &Path) -> PathBuf {
    let mut relative = PathBuf::from(".");
    for dir in start.ancestors() {
        if dir.join(crate::domain::config::DEFAULT_CONFIG).is_file() {
            return relative;
        }
        relative = if relative == Path::new(".") {
            PathBuf::from("..")
        } else {
            relative.join("..")
        };
    }
    PathBuf::from(".")
}

impl Project {
    /// Takes the staging root's lock (`access`), waiting for another run unless
    /// `MATRIOCHKA_NO_WAIT` says not to; what it waits for is said on `note`.
    pub(crate) fn lock(
        &self,
        access: crate::infra::lock::Access,
        note: &mut dyn std::io::Write,
    ) -> Result<crate::infra::lock::StagingLock> {
        let wait = crate::infra::lock::wait_from_env(self.env.get(env_names::NO_WAIT));
        self.lock_with(access, wait, note)
    }

    /// [`Project::lock`] with the waiting decided by the caller (`stage --no-wait`).
    pub(crate) fn lock_with(
        &self,
        access: crate::infra::lock::Access,
        wait: crate::infra::lock::Wait,
        note: &mut dyn std::io::Write,
    ) -> Result<crate::infra::lock::StagingLock> {
        crate::infra::lock::StagingLock::acquire(
            self.root(),
            &self.config.staging_root,
            access,
            wait,
            note,
        )
    }

    /// How the registry is read and written: `PUSH_ARGS` (`--tls-verify=false`, `--insecure`)
    /// and `CONTAINERS_REGISTRIES_CONF`.
    pub(crate) fn registry_access(&self) -> crate::infra::registry::Access {
        let mut access = crate::infra::registry::Access::from_push_args(
            self.env.get(env_names::PUSH_ARGS).unwrap_or_default(),
        );
        access.registries_conf = self
            .env
            .get_nonempty(env_names::REGISTRIES_CONF)
            .map(str::to_string);
        access
    }
}

/// The container engine of `CONTAINER_ENGINE`.
pub(crate) fn engine(project: &Project) -> Result<Engine> {
    match project
        .env
        .get(env_names::CONTAINER_ENGINE)
        .and_then(Engine::new)
    {
        Some(engine) => Ok(engine),
        None => bail!("no container engine: set CONTAINER_ENGINE to docker or podman"),
    }
}

/// `root/rel`, or `rel` when the root is the current directory (as paths are shown to users).
pub(crate) fn at(root: &Path, rel: &Path) -> PathBuf {
    if root == Path::new(".") {
        rel.to_path_buf()
    } else {
        root.join(rel)
    }
}
