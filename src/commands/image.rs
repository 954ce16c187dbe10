//! `matriochka image build|push|clean <staging dir> <image> --plan <sha256>`: one action on one
//! staged image, as a make recipe runs it.
//!
//! A build holds the shared staging lock from its checks to the end of the engine build, so no
//! stage rewrites the context in between; it builds only when the plan still has the sha256 make
//! was generated with, its tag is the one this run's settings give, and the context on disk still
//! has the plan's digest. Engine output goes to
//! stdout and to the image's log; progress lines are `[n/N] <action> <tag>[: ok|: FAILED (see log)]`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::app::project::{at, engine, Project};
use crate::app::report::{Action, ImageRecord};
use crate::commands::args::{ImageAction, ImageArgs};
use crate::domain::date::rfc3339_seconds;
use crate::domain::env_names;
use crate::error::{EXIT_FAILURE, EXIT_SUCCESS};
use crate::infra::engine::{argv, Engine};
use crate::infra::lock::Access;
use crate::plan::build_plan::{self, BuildPlan};
use crate::plan::labels::{CONTENT_ID_LABEL, CREATED_LABEL, FLAVOR_LABEL};
use crate::plan::makefile;
use crate::stage::model::Prepared;

mod tags;

/// Runs one image action.
pub(crate) fn command(
    project: &Project,
    args: &ImageArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let image = Image::new(project, args)?;
    match args.action {
        ImageAction::Build => image.build(out, err),
        ImageAction::Push => image.push(out),
        ImageAction::Clean => image.clean(out),
    }
}

/// `image dry-run LIST`: the lines `image <action> … --dry-run` prints for each image LIST names
/// (`<build|push|clean> <make target> <build plan> <sha256>` groups, as build.mk writes them under
/// `make -n`), as `define _M_DRY.<action>.<target>` blocks that the recipes print instead of
/// starting matriochka once per image. An image whose dry run fails, or whose lines make would
/// read as more than text to print, is left out: its recipe starts matriochka, which prints the
/// lines or the error itself.
pub fn dry_run_all(project: &Project, list: &Path, out: &mut dyn Write) -> Result<u8> {
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("failed to read `{}`", list.display()))?;
    let words: Vec<&str> = text.split_whitespace().collect();
    for group in words.chunks(4) {
        let [action, target, plan, sha] = group else {
            bail!(
                "`{}`: `{}` is not `<action> <target> <plan> <sha256>`",
                list.display(),
                group.join(" ")
            );
        };
        let action = match *action {
            "build" => ImageAction::Build,
            "push" => ImageAction::Push,
            "clean" => ImageAction::Clean,
            other => bail!("`{}`: unknown action `{other}`", list.display()),
        };
        let plan = Path::new(plan);
        let (Some(image), Some(staging_dir)) = (
            plan.file_stem().and_then(|stem| stem.to_str()),
            plan.parent().and_then(Path::parent),
        ) else {
            continue;
        };
        let args = ImageArgs {
            action,
            staging_dir: staging_dir.to_path_buf(),
            image: image.to_string(),
            plan: sha.to_string(),
            progress: None,
            dry_run: true,
        };
        let mut lines = Vec::new();
        let printed = command(project, &args, &mut lines, &mut std::io::sink());
        let Ok(lines) = String::from_utf8(lines) else {
            continue;
        };
        if !matches!(printed, Ok(EXIT_SUCCESS))
            || makefile::check_make_word("make target", target, "build.mk").is_err()
            || !lines.lines().all(printable_recipe_line)
        {
            continue;
        }
        let name = makefile::mk(&format!("_M_DRY.{}.{target}", group[0]));
        write!(out, "define {name}\n{lines}endef\n")?;
    }
    Ok(EXIT_SUCCESS)
}

/// Whether make prints `line` of a recipe under `make -n` as it is and nothing else: a leading
/// `+` would run it, `@`, `-` or a blank would be taken off, `define`/`endef` would end the block.
fn printable_recipe_line(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or_default();
    !line.is_empty()
        && !line.starts_with(['+', '-', '@', ' ', '\t'])
        && !["define", "endef"].contains(&first)
}

/// An environment variable split into words (`BUILD_ARGS`, `PUSH_ARGS`).
fn words(project: &Project, name: &str) -> Vec<String> {
    project
        .env
        .get(name)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Whether a failed build's log shows that pulling an image failed (podman, docker).
fn pull_failed(log: &Path) -> bool {
    const SIGNS: [&str; 7] = [
        "initializing source",
        "pinging container registry",
        "error pulling",
        "unable to pull",
        "pull access denied",
        "failed to resolve source metadata",
        "manifest unknown",
    ];
    let text = std::fs::read_to_string(log)
        .unwrap_or_default()
        .to_lowercase();
    SIGNS.iter().any(|sign| text.contains(sign))
}

struct Image<'a> {
    project: &'a Project,
    args: &'a ImageArgs,
    /// The flavor's id: the staging dir's base name.
    id: String,
}

impl<'a> Image<'a> {
    fn new(project: &'a Project, args: &'a ImageArgs) -> Result<Image<'a>> {
        let root = &project.config.staging_root;
        let dir = &args.staging_dir;
        let id = crate::domain::layout::flavor_id(root, dir)?;
        // Checked before anything is built or pushed.
        crate::app::reuse::cache_repo(project)?;
        Ok(Image { project, args, id })
    }

    fn path(&self, rel: &Path) -> PathBuf {
        at(self.project.root(), rel)
    }

    /// The plan, checked to be the one make was generated with.
    fn plan(&self) -> Result<BuildPlan> {
        let rel = BuildPlan::path(&self.args.staging_dir, &self.args.image);
        let path = self.path(&rel);
        let bytes = match std::fs::read(&path) {
            // Cleaned since make read it: the same line as any other change.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!("{}", self.changed())
            }
            read => read.with_context(|| format!("failed to read `{}`", path.display()))?,
        };
        if build_plan::sha256_hex(&bytes) != self.args.plan {
            bail!("{}", self.changed());
        }
        let plan: BuildPlan = serde_json::from_slice(&bytes)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        self.check_tag(&plan)?;
        Ok(plan)
    }

    /// Checks that the plan's tag is the one this run's settings (RELEASE, TAG_REGISTRY,
    /// `<IMAGE>_TAG`…) give the image: another run may have staged the flavor with its own since
    /// this run's `stage`, and its plan is then consistent but not what this run asked for.
    fn check_tag(&self, plan: &BuildPlan) -> Result<()> {
        let project = self.project;
        let Some(text) = plan.label(FLAVOR_LABEL) else {
            return Ok(());
        };
        let flavor = project.parse(text)?;
        let prepared = Prepared::new(flavor, &project.config, &project.env, project.git(), true)?;
        let wanted = prepared
            .vars
            .image_tags
            .iter()
            .find(|(image, _)| *image == plan.image)
            .map(|(_, tag)| tag.as_str());
        if wanted.is_some_and(|wanted| wanted != plan.tag) {
            bail!(
                "image `{}` of `{}` is staged as `{}`, not `{}` as this run asks (another matriochka run staged it with other settings): run make again",
                plan.image,
                self.path(&self.args.staging_dir).display(),
                plan.tag,
                wanted.unwrap_or_default()
            );
        }
        Ok(())
    }

    fn changed(&self) -> String {
        format!(
            "context `{}` changed since make read it (another matriochka run staged it): run make again",
            self.path(&self.args.staging_dir.join(&self.args.image))
                .display()
        )
    }

    fn progress(&self, verb: &str, tag: &str) -> String {
        match &self.args.progress {
            Some(progress) => format!("[{progress}] {verb} {tag}"),
            None => format!("{verb} {tag}"),
        }
    }

    fn log(&self, action: &str) -> Result<(PathBuf, File)> {
        let staging_root = &self.project.config.staging_root;
        let path = self.path(&build_plan::log(
            staging_root,
            &self.id,
            &self.args.image,
            action,
        ));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create `{}`", parent.display()))?;
        }
        let file =
            File::create(&path).with_context(|| format!("failed to write `{}`", path.display()))?;
        Ok((path, file))
    }

    fn build(&self, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
        let project = self.project;
        let engine = engine(project)?;
        // Held until the engine has read the whole context.
        let _lock = if self.args.dry_run {
            None
        } else {
            Some(project.lock(Access::Shared, err)?)
        };
        let plan = self.plan()?;
        let squash = crate::infra::engine::squash::wanted(&project.env)?;
        if squash && !self.args.dry_run {
            crate::infra::engine::squash::check(&engine)?;
        }
        let context = self.path(&plan.context);
        if !self.args.dry_run
            && (!context.is_dir()
                || build_plan::context_digest_on_disk(&context)? != plan.context_digest)
        {
            bail!("{}", self.changed());
        }
        if !self.args.dry_run {
            if let Some(code) = self.without_build(&engine, &plan, out, err)? {
                return Ok(code);
            }
        }
        let pull = argv::Pull::from_env(project.env.get(env_names::PULL)).for_build(
            engine.kind,
            !plan.parents.is_empty(),
            plan.external_base,
        );
        let proxies = crate::domain::vars::set_proxies(&project.env);
        let extra = words(project, env_names::BUILD_ARGS);
        let dockerfile = self.path(&plan.dockerfile);
        // podman: the commit's date is the image's, so two machines build the same digest.
        let timestamp = plan
            .label(CREATED_LABEL)
            .and_then(rfc3339_seconds)
            .filter(|_| engine.kind == argv::Kind::Podman);
        let args = engine.args(argv::build(&argv::Build {
            tag: &plan.tag,
            platform: &plan.platform,
            dockerfile: &dockerfile,
            context: &context,
            pull,
            squash,
            timestamp,
            env_build_args: &proxies,
            build_args: &plan.build_args,
            labels: &plan.labels,
            extra: &extra,
        }));
        let line = engine.display(&args);
        if self.args.dry_run {
            writeln!(out, "{line}")?;
            for line in self.extra_tag_lines(&engine, &plan) {
                writeln!(out, "{line}")?;
            }
            return Ok(EXIT_SUCCESS);
        }
        let start = self.progress("build", &plan.tag);
        writeln!(out, "{start}")?;
        let record = ImageRecord::build(project, &self.id, &plan)?;
        let (log_path, mut log) = self.log("build")?;
        writeln!(log, "{line}")?;
        let built = engine.run_teed(&args, &mut log, out)?;
        if built {
            if let Some(problem) = self.not_on_parent(&engine, &plan)? {
                // Nothing stays under the tag that is not what the plan says.
                let rmi = engine.args(argv::rmi(&plan.tag));
                writeln!(log, "{problem}")?;
                self.run_logged_quietly(&engine, &rmi, &mut log)?;
                record
                    .reason(&problem)
                    .finish(project, Action::Failed, &log_path, || {
                        Ok((false, String::new()))
                    })?;
                writeln!(out, "{start}: FAILED: {problem}")?;
                return Ok(EXIT_FAILURE);
            }
        }
        if built && self.tag_extras(&engine, &plan, &mut log, out)? {
            self.touch_stamp()?;
            // The build is the image's first use (its creation time may be fixed, `--timestamp`).
            let tags = &plan.extra_tags;
            let recorded =
                crate::app::uses::record_build(project, &engine, &plan.tag, &plan.content_id, tags);
            if let Err(error) = recorded {
                writeln!(err, "warning: use not recorded: {error:#}")?;
            }
            let image_id = || engine.capture(&engine.args(argv::image_id(&plan.tag)));
            record.finish(project, Action::Built, &log_path, image_id)?;
            writeln!(out, "{start}: ok")?;
            Ok(EXIT_SUCCESS)
        } else {
            record.finish(project, Action::Failed, &log_path, || {
                Ok((false, String::new()))
            })?;
            let hint = if pull_failed(&log_path) {
                ": pulling the base image failed: to build offline, load the base image locally and set PULL=0"
            } else {
                crate::infra::engine::hints::failed_build(&log_path).unwrap_or("")
            };
            writeln!(out, "{start}: FAILED (see {}){hint}", log_path.display())?;
            Ok(EXIT_FAILURE)
        }
    }

    /// Why the built image is not built on the parent this run built (its layers must start
    /// with those of one of its parents), or `None`. Not checked for an image with an outside
    /// base too: its last stage may be built on that base.
    fn not_on_parent(&self, engine: &Engine, plan: &BuildPlan) -> Result<Option<String>> {
        if plan.parents.is_empty() || plan.external_base {
            return Ok(None);
        }
        let layers = |tag: &str| -> Result<Vec<String>> {
            let (found, text) = engine.capture(&engine.args(argv::inspect_layers(tag)))?;
            Ok(if found {
                text.split_whitespace().map(str::to_string).collect()
            } else {
                Vec::new()
            })
        };
        let own = layers(&plan.tag)?;
        let mut parent_tags = Vec::new();
        for parent in &plan.parents {
            let rel = BuildPlan::path(&self.args.staging_dir, parent);
            let path = self.path(&rel);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            let parent_plan: BuildPlan = serde_json::from_slice(&bytes)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            let theirs = layers(&parent_plan.tag)?;
            if !theirs.is_empty() && own.starts_with(&theirs) {
                return Ok(None);
            }
            parent_tags.push(format!("`{}`", parent_plan.tag));
        }
        Ok(Some(format!(
            "not built on its parent {} of this run: its layers do not start with the parent's",
            parent_tags.join(", ")
        )))
    }

    /// Why the local image under `tag` is not the one the plan says (another content id or
    /// platform, or none), or `None`.
    fn not_planned(&self, engine: &Engine, plan: &BuildPlan, tag: &str) -> Result<Option<String>> {
        let inspect = engine.args(argv::inspect_label_and_platform(tag, CONTENT_ID_LABEL));
        let (found, text) = engine.capture(&inspect)?;
        if !found {
            return Ok(Some("no local image has this tag".into()));
        }
        let text = text.trim_end_matches('\n');
        let (content_id, platform) = text.rsplit_once(' ').unwrap_or((text, ""));
        if content_id != plan.content_id {
            let found = if content_id.is_empty() || content_id == "<no value>" {
                "no content id".to_string()
            } else {
                format!("content id `{content_id}`")
            };
            return Ok(Some(format!(
                "the local image carries {found}, not the plan's `{}`",
                plan.content_id
            )));
        }
        if platform != plan.platform {
            return Ok(Some(format!(
                "the local image's platform is `{platform}`, not the plan's `{}`",
                plan.platform
            )));
        }
        Ok(None)
    }

    /// Runs the engine, its command and output to the log only.
    fn run_logged_quietly(
        &self,
        engine: &Engine,
        args: &[std::ffi::OsString],
        log: &mut File,
    ) -> Result<bool> {
        writeln!(log, "{}", engine.display(args))?;
        engine.run_teed(args, log, &mut std::io::sink())
    }

    fn touch_stamp(&self) -> Result<()> {
        let stamp = self.path(&build_plan::stamp(
            &self.project.config.staging_root,
            &self.id,
            &self.args.image,
        ));
        let touch = || -> std::io::Result<()> {
            std::fs::create_dir_all(stamp.parent().unwrap())?;
            File::create(&stamp)?.set_modified(std::time::SystemTime::now())
        };
        touch().with_context(|| format!("failed to write `{}`", stamp.display()))
    }

    fn push(&self, out: &mut dyn Write) -> Result<u8> {
        let project = self.project;
        let engine = engine(project)?;
        let plan = self.plan()?;
        if let Some(text) = plan.label(FLAVOR_LABEL) {
            project.refuse_test_flavor(&project.parse(text)?, "pushed")?;
        }
        let retries = match project.env.get_nonempty(env_names::PUSH_RETRIES) {
            None => 3,
            Some(text) => text.parse::<u32>().map_err(|_| {
                anyhow::anyhow!("PUSH_RETRIES `{text}` is not a number: set it to 0 or more")
            })?,
        };
        let push_args = words(project, env_names::PUSH_ARGS);
        let digestfile = self.digestfile(&engine);
        let args = engine.args(match &digestfile {
            Some(file) => argv::push_with_digestfile(&plan.tag, &push_args, file),
            None => argv::push(&plan.tag, &push_args),
        });
        let line = engine.display(&args);
        if self.args.dry_run {
            writeln!(out, "{line}")?;
            for line in self.further_push_lines(&engine, &plan)? {
                writeln!(out, "{line}")?;
            }
            return Ok(EXIT_SUCCESS);
        }
        let start = self.progress("push", &plan.tag);
        let record = ImageRecord::push(project, &self.id, &plan)?;
        let (log_path, mut log) = self.log("push")?;
        // Only what was planned is pushed: every tag first, before any push.
        for tag in std::iter::once(&plan.tag).chain(&plan.extra_tags) {
            if let Some(why) = self.not_planned(&engine, &plan, tag)? {
                let refusal = format!("refused to push `{tag}`: {why}");
                writeln!(log, "{refusal}")?;
                record
                    .reason(&refusal)
                    .finish(project, Action::PushFailed, &log_path, || {
                        Ok((false, String::new()))
                    })?;
                bail!("{refusal}");
            }
        }
        writeln!(out, "{start}")?;
        if let Some(file) = &digestfile {
            remove_if_present(file)?;
        }
        let pushed = crate::infra::process::with_retries(
            retries,
            &format!("push {}", plan.tag),
            out,
            &mut std::thread::sleep,
            &mut |out| {
                writeln!(log, "{line}")?;
                engine.run_teed(&args, &mut log, out)
            },
        )?;
        let digest = if pushed {
            self.pushed_digest(digestfile.as_deref(), &log_path)
        } else {
            None
        };
        let pushed = pushed && self.push_further(&engine, &plan, retries, &mut log, out)?;
        let action = if pushed {
            Action::Pushed
        } else {
            Action::PushFailed
        };
        record
            .pushed_digest(digest)
            .finish(project, action, &log_path, || Ok((false, String::new())))?;
        if pushed {
            writeln!(out, "{start}: ok")?;
            Ok(EXIT_SUCCESS)
        } else {
            writeln!(out, "{start}: FAILED (see {})", log_path.display())?;
            Ok(EXIT_FAILURE)
        }
    }

    /// The file podman writes the pushed image's digest to, beside the push's log; `None` for
    /// docker, which prints it.
    fn digestfile(&self, engine: &Engine) -> Option<PathBuf> {
        let log = build_plan::log(
            &self.project.config.staging_root,
            &self.id,
            &self.args.image,
            "push",
        );
        (engine.kind == argv::Kind::Podman).then(|| self.path(&log.with_extension("digest")))
    }

    /// The digest the registry gave the image just pushed: podman's digest file, else docker's
    /// line in the push's log. `None` when the engine did not tell.
    fn pushed_digest(&self, digestfile: Option<&Path>, log: &Path) -> Option<String> {
        match digestfile {
            Some(file) => std::fs::read_to_string(file)
                .ok()
                .and_then(|text| crate::infra::engine::pushed::from_digestfile(&text)),
            None => std::fs::read_to_string(log)
                .ok()
                .and_then(|text| crate::infra::engine::pushed::from_docker_output(&text)),
        }
    }

    fn clean(&self, out: &mut dyn Write) -> Result<u8> {
        let engine = engine(self.project)?;
        let plan = self.plan()?;
        let inspect = engine.args(argv::inspect_label(&plan.tag, FLAVOR_LABEL));
        let rmi = engine.args(argv::rmi(&plan.tag));
        if self.args.dry_run {
            writeln!(out, "{}", engine.display(&inspect))?;
            writeln!(out, "{}", engine.display(&rmi))?;
            self.clean_extra_tags(&engine, &plan, out)?;
            return Ok(EXIT_SUCCESS);
        }
        let (found, label) = engine.capture(&inspect)?;
        let mut code = EXIT_SUCCESS;
        if found && Some(label.trim_end_matches('\n')) == plan.label(FLAVOR_LABEL) {
            writeln!(out, "{}", engine.display(&rmi))?;
            if !engine.run_teed(&rmi, &mut std::io::sink(), out)? {
                code = EXIT_FAILURE;
            }
        }
        if !self.clean_extra_tags(&engine, &plan, out)? {
            code = EXIT_FAILURE;
        }
        let stamp = self.path(&build_plan::stamp(
            &self.project.config.staging_root,
            &self.id,
            &self.args.image,
        ));
        match std::fs::remove_file(&stamp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("failed to remove `{}`", stamp.display()))
            }
            _ => {}
        }
        Ok(code)
    }
}

/// Removes `path`, there or not.
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("failed to remove `{}`", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_lines_that_make_would_read_as_more_than_text() {
        assert!(printable_recipe_line("docker build -t 'a b' ctx"));
        assert!(printable_recipe_line(
            "podman tag x y # not a comment to make here"
        ));
        for line in [
            "",
            "+rm -rf x",
            "-x",
            "@x",
            " docker",
            "\tdocker",
            "endef",
            "define x",
        ] {
            assert!(!printable_recipe_line(line), "{line:?}");
        }
    }
}
