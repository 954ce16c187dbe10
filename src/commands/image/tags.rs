//! What `image build` and `image push` do besides the engine build and the push of the image's
//! tag: extra tags (`layout.extra_tags`), the content tag, a retag when only tags are missing, and
//! reuse of an image the registry already holds (`REUSE=1`, see [`crate::commands::reuse`]).

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::time::SystemTime;

use anyhow::Result;

use super::{words, Image};
use crate::app::report::{Action, ImageRecord};
use crate::app::reuse::{self, Lookup};
use crate::app::uses;
use crate::domain::env_names;
use crate::domain::layout;
use crate::error::EXIT_SUCCESS;
use crate::infra::engine::{argv, Engine};
use crate::infra::process::ProcessRunner;
use crate::plan::build_plan::{self, BuildPlan};
use crate::plan::labels::FLAVOR_LABEL;

/// One command of the pushes after the image's own.
enum Step {
    /// Retried as the image's push.
    Push,
    Tag,
    /// Its output is not shown.
    Untag,
}

impl Image<'_> {
    /// Does the build's job without building when it can: only tags are missing (the image is
    /// there with its content id and make's other reasons do not hold), or `REUSE=1` and the
    /// registry holds the image's content tag. `Some(exit code)` when done.
    pub(super) fn without_build(
        &self,
        engine: &Engine,
        plan: &BuildPlan,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<Option<u8>> {
        for pattern in &plan.skipped_extra_tags {
            writeln!(
                err,
                "note: extra tag `{pattern}` not given to `{}`: the tree is dirty (GIT_CLEAN=False)",
                plan.tag
            )?;
        }
        if self.project.env.get_nonempty(env_names::FORCE).is_some() {
            return Ok(None);
        }
        if self.only_tags_missing(plan)? && reuse::is_local(engine, &plan.tag, &plan.content_id)? {
            let start = self.progress("build", &plan.tag);
            writeln!(out, "{start}")?;
            let (log_path, mut log) = self.log("build")?;
            // The stamp stays as it is: the image did not change, so its children need no build.
            return self.finish(
                engine, plan, &mut log, &log_path, &start, "tagged", false, out,
            );
        }
        if !reuse::enabled(self.project) {
            return Ok(None);
        }
        let reference = reuse::content_reference(self.project, plan)?;
        let record = reuse::record_path(&self.project.config.staging_root, &plan.content_id);
        let answer = match reuse::take_record(&self.path(&record)) {
            Some(answer) => answer,
            None if reuse::is_local(engine, &plan.tag, &plan.content_id)? => Lookup::Local,
            None => reuse::lookup(
                &mut ProcessRunner,
                &self.project.registry_access(),
                &reference,
            ),
        };
        match answer {
            Lookup::Hit => {}
            Lookup::Miss | Lookup::Local => return Ok(None),
            Lookup::Failed(cause) => {
                writeln!(
                    err,
                    "note: failed to look `{reference}` up in the registry: {cause}: building it"
                )?;
                return Ok(None);
            }
        }
        let start = self.progress("build", &plan.tag);
        writeln!(out, "{start}")?;
        // Its own log: when the pull fails, the build that follows writes the build log.
        let (log_path, mut log) = self.log("pull")?;
        let tls: Vec<String> = words(self.project, env_names::PUSH_ARGS)
            .into_iter()
            .filter(|arg| engine.kind == argv::Kind::Podman && arg == "--tls-verify=false")
            .collect();
        let pull = engine.args(argv::pull_from(&reference, &tls));
        let tag = engine.args(argv::tag(&reference, &plan.tag));
        // The content tag was a means to pull: the store keeps the image's own tags only.
        let untag = engine.args(argv::rmi(&reference));
        if !self.run_logged(engine, &pull, &mut log, out)? {
            writeln!(
                err,
                "note: failed to pull `{reference}` (see {}): building it",
                log_path.display()
            )?;
            return Ok(None);
        }
        // The tag holds 20 hex digits of the id: the label must hold all of it.
        if !reuse::is_local(engine, &reference, &plan.content_id)? {
            self.run_logged(engine, &untag, &mut log, &mut std::io::sink())?;
            writeln!(
                err,
                "note: `{reference}` does not carry content id `{}`: building it",
                plan.content_id
            )?;
            return Ok(None);
        }
        if !self.run_logged(engine, &tag, &mut log, out)? {
            writeln!(
                err,
                "note: failed to tag `{reference}` (see {}): building it",
                log_path.display()
            )?;
            return Ok(None);
        }
        self.run_logged(engine, &untag, &mut log, &mut std::io::sink())?;
        self.finish(
            engine, plan, &mut log, &log_path, &start, "reused", true, out,
        )
    }

    /// Tags the image with its extra tags, touches its stamp when asked and ends the progress
    /// line.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        engine: &Engine,
        plan: &BuildPlan,
        log: &mut File,
        log_path: &std::path::Path,
        start: &str,
        done: &str,
        touch: bool,
        out: &mut dyn Write,
    ) -> Result<Option<u8>> {
        // The report: a reused image as such, a retagged one as up to date (it did not change).
        let record = ImageRecord::build(self.project, &self.id, plan)?;
        if !self.tag_extras(engine, plan, log, out)? {
            record.finish(self.project, Action::Failed, log_path, || {
                Ok((false, String::new()))
            })?;
            writeln!(out, "{start}: FAILED (see {})", log_path.display())?;
            return Ok(Some(crate::error::EXIT_FAILURE));
        }
        if touch {
            self.touch_stamp()?;
        }
        let action = if done == "reused" {
            Action::Reused
        } else {
            Action::UpToDate
        };
        let image_id = || engine.capture(&engine.args(argv::image_id(&plan.tag)));
        record.finish(self.project, action, log_path, image_id)?;
        if action == Action::Reused {
            // Pulled by its content id: matriochka's to prune, as one it built. Unrecorded, prune
            // only keeps it.
            let tags = &plan.extra_tags;
            let _ = uses::record_build(self.project, engine, &plan.tag, &plan.content_id, tags);
        }
        writeln!(out, "{start}: {done}")?;
        Ok(Some(EXIT_SUCCESS))
    }

    /// Gives the built image its extra tags; whether every tag succeeded.
    pub(super) fn tag_extras(
        &self,
        engine: &Engine,
        plan: &BuildPlan,
        log: &mut File,
        out: &mut dyn Write,
    ) -> Result<bool> {
        for extra in &plan.extra_tags {
            let tag = engine.args(argv::tag(&plan.tag, extra));
            if !self.run_logged(engine, &tag, log, out)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The command lines that tag the built image with its extra tags (for dry runs).
    pub(super) fn extra_tag_lines(&self, engine: &Engine, plan: &BuildPlan) -> Vec<String> {
        plan.extra_tags
            .iter()
            .map(|extra| engine.display(&engine.args(argv::tag(&plan.tag, extra))))
            .collect()
    }

    /// The command lines that push the extra tags and the content tag, after the image's tag:
    /// The content tag is tagged for its push and untagged after it.
    fn further_pushes(
        &self,
        engine: &Engine,
        plan: &BuildPlan,
    ) -> Result<Vec<(Vec<OsString>, Step)>> {
        let push_args = words(self.project, env_names::PUSH_ARGS);
        let mut commands: Vec<(Vec<OsString>, Step)> = plan
            .extra_tags
            .iter()
            .map(|extra| (engine.args(argv::push(extra, &push_args)), Step::Push))
            .collect();
        let reference = reuse::content_reference(self.project, plan)?;
        commands.push((engine.args(argv::tag(&plan.tag, &reference)), Step::Tag));
        commands.push((engine.args(argv::push(&reference, &push_args)), Step::Push));
        commands.push((engine.args(argv::rmi(&reference)), Step::Untag));
        Ok(commands)
    }

    /// The further pushes' command lines (for dry runs).
    pub(super) fn further_push_lines(
        &self,
        engine: &Engine,
        plan: &BuildPlan,
    ) -> Result<Vec<String>> {
        Ok(self
            .further_pushes(engine, plan)?
            .iter()
            .map(|(args, _)| engine.display(args))
            .collect())
    }

    /// Pushes the extra tags and the content tag, pushes retried as the image's; whether all
    /// succeeded.
    pub(super) fn push_further(
        &self,
        engine: &Engine,
        plan: &BuildPlan,
        retries: u32,
        log: &mut File,
        out: &mut dyn Write,
    ) -> Result<bool> {
        for (args, step) in self.further_pushes(engine, plan)? {
            let ok = match step {
                Step::Push => {
                    let what = format!("push {}", args.last().unwrap().to_string_lossy());
                    crate::infra::process::with_retries(
                        retries,
                        &what,
                        out,
                        &mut std::thread::sleep,
                        &mut |out| self.run_logged(engine, &args, log, out),
                    )?
                }
                Step::Tag => self.run_logged(engine, &args, log, out)?,
                // "Untagged: …" is of no interest.
                Step::Untag => self.run_logged(engine, &args, log, &mut std::io::sink())?,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Removes the extra tags that carry this flavor's label (prints the commands under
    /// `--dry-run`); whether every removal succeeded.
    pub(super) fn clean_extra_tags(
        &self,
        engine: &Engine,
        plan: &BuildPlan,
        out: &mut dyn Write,
    ) -> Result<bool> {
        let mut ok = true;
        for extra in &plan.extra_tags {
            let inspect = engine.args(argv::inspect_label(extra, FLAVOR_LABEL));
            let rmi = engine.args(argv::rmi(extra));
            if self.args.dry_run {
                writeln!(out, "{}", engine.display(&inspect))?;
                writeln!(out, "{}", engine.display(&rmi))?;
                continue;
            }
            let (found, label) = engine.capture(&inspect)?;
            if found && Some(label.trim_end_matches('\n')) == plan.label(FLAVOR_LABEL) {
                writeln!(out, "{}", engine.display(&rmi))?;
                ok &= engine.run_teed(&rmi, &mut std::io::sink(), out)?;
            }
        }
        Ok(ok)
    }

    /// Writes the command line to the log and runs it, its output teed to the log and `out`.
    pub(super) fn run_logged(
        &self,
        engine: &Engine,
        args: &[OsString],
        log: &mut File,
        out: &mut dyn Write,
    ) -> Result<bool> {
        writeln!(log, "{}", engine.display(args))?;
        engine.run_teed(args, log, out)
    }

    /// Whether make ran the recipe only because a tag is missing: the stamp is newer than the
    /// context digest and every parent's stamp.
    fn only_tags_missing(&self, plan: &BuildPlan) -> Result<bool> {
        let root = &self.project.config.staging_root;
        let modified = |rel: &std::path::Path| -> Option<SystemTime> {
            std::fs::metadata(self.path(rel)).ok()?.modified().ok()
        };
        let Some(stamp) = modified(&build_plan::stamp(root, &self.id, &self.args.image)) else {
            return Ok(false);
        };
        let digest = self
            .args
            .staging_dir
            .join(layout::CONTEXT_DIR)
            .join(format!("{}.sha256", self.args.image));
        let mut inputs = vec![digest];
        inputs.extend(
            plan.parents
                .iter()
                .map(|parent| build_plan::stamp(root, &self.id, parent)),
        );
        Ok(inputs
            .iter()
            .all(|input| modified(input).is_some_and(|time| time <= stamp)))
    }
}
