//! Slices of a run for several machines: the flavors of some arches (`--arch`, `ARCHES`), a
//! deterministic shard (`--shard I/N`), and the check that this host can build a foreign arch
//! (a binfmt handler for qemu is registered) before any build starts.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};

use crate::app::project::Project;
use crate::domain::env_names;
pub(crate) use crate::domain::shard::Shard;
use crate::domain::vars::go_arch;
use crate::error::EXIT_SUCCESS;

/// Where the kernel lists its binfmt handlers.
pub(crate) const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Whether a flavor's arch is one of `arches` (`aarch64` or its Go name `arm64`).
fn arch_matches(arch: &str, arches: &[String]) -> bool {
    arches.iter().any(|a| a == arch || a == go_arch(arch))
}

/// `matriochka show flavors [--test] [--arch A]... [--shard I/N]`: the buildable (or test)
/// flavors of those arches (in configuration order), then the shard's part of them.
pub(crate) fn show_flavors(
    project: &Project,
    arches: &[String],
    shard: Option<Shard>,
    test: bool,
    out: &mut dyn Write,
) -> Result<u8> {
    let arches: Vec<String> = arches
        .iter()
        .flat_map(|a| a.split([' ', ',', '\t', '\n']))
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    let mut texts = Vec::new();
    let mut known: Vec<String> = Vec::new();
    let listed = if test {
        project.test_texts()?
    } else {
        project.buildable_texts()?
    };
    let kind = if test { "test" } else { "buildable" };
    for text in listed {
        let arch = project.parse(text)?.arch;
        if !known.contains(&arch) {
            known.push(arch.clone());
        }
        if arches.is_empty() || arch_matches(&arch, &arches) {
            texts.push(text);
        }
    }
    if texts.is_empty() && !arches.is_empty() {
        bail!(
            "no {kind} flavor for arch `{}`; {kind} arches: {}",
            arches.join(" "),
            known.join(", ")
        );
    }
    for (position, text) in texts.iter().enumerate() {
        if shard.is_none_or(|s| s.holds(position)) {
            writeln!(out, "{text}")?;
        }
    }
    Ok(EXIT_SUCCESS)
}

/// The qemu binfmt handler name for an arch (`aarch64` → `qemu-aarch64`).
fn handler(arch: &str) -> String {
    let qemu = match arch {
        "armv7l" | "armv6l" => "arm",
        "i686" | "i386" => "i386",
        other => other,
    };
    format!("qemu-{qemu}")
}

/// Whether this host can run binaries of `arch`: its own arch, or an enabled qemu handler in the
/// binfmt directory. The error is the one line the user needs.
pub(crate) fn can_run(arch: &str, host_arch: &str, binfmt_dir: &Path) -> Result<(), String> {
    if arch == host_arch {
        return Ok(());
    }
    let name = handler(arch);
    let entry = binfmt_dir.join(&name);
    match std::fs::read_to_string(&entry) {
        Ok(text) if text.lines().next() == Some("enabled") => Ok(()),
        Ok(_) => Err(format!(
            "this `{host_arch}` host cannot run `{arch}` images: the binfmt handler `{name}` is disabled; \
             enable it with `update-binfmts --enable {name}`"
        )),
        Err(_) => {
            let mounted = binfmt_dir.join("register").exists();
            let how = if mounted {
                "enable emulation with `apt-get install qemu-user-static`".to_string()
            } else {
                format!(
                    "mount `{}` (`mount -t binfmt_misc binfmt_misc {}`), then enable emulation with `apt-get install qemu-user-static`",
                    binfmt_dir.display(),
                    binfmt_dir.display()
                )
            };
            Err(format!(
                "this `{host_arch}` host cannot run `{arch}` images: no binfmt handler `{name}` in `{}`; {how}",
                binfmt_dir.display()
            ))
        }
    }
}

/// `matriochka check-arches [FLAVOR...]`: fails, one line per flavor, when a flavor's arch can
/// be neither run natively nor emulated. Nothing is printed when all can.
pub(crate) fn check_arches(
    project: &Project,
    args: &[String],
    push: bool,
    err: &mut dyn Write,
) -> Result<u8> {
    let texts = project.requested_texts(args)?;
    if push {
        for text in &texts {
            project.refuse_test_flavor(&project.parse(text)?, "pushed")?;
        }
    }
    let host = crate::domain::vars::host_arch();
    // Where binfmt_misc is mounted elsewhere (and in tests), `MATRIOCHKA_BINFMT_DIR` names it.
    let binfmt_dir = project
        .env
        .get_nonempty(env_names::BINFMT_DIR)
        .unwrap_or(BINFMT_DIR)
        .to_string();
    let mut failed = 0;
    for text in &texts {
        let flavor = project.parse(text)?;
        if let Err(why) = can_run(&flavor.arch, &host, Path::new(&binfmt_dir)) {
            failed += 1;
            writeln!(err, "error: flavor `{text}`: {why}")?;
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} flavors cannot be built on this host",
            texts.len()
        );
    }
    // SQUASH=1 on a docker daemon that cannot squash fails here, before any build.
    if crate::infra::engine::squash::wanted(&project.env)? {
        if let Some(engine) = project
            .env
            .get(env_names::CONTAINER_ENGINE)
            .and_then(crate::infra::engine::Engine::new)
        {
            crate::infra::engine::squash::check(&engine)?;
        }
    }
    Ok(EXIT_SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_deal_round_robin() {
        let shard = Shard::parse("2/3").unwrap();
        let held: Vec<usize> = (0..8).filter(|&i| shard.holds(i)).collect();
        assert_eq!(held, [1, 4, 7]);
        let all: usize = (1..=3)
            .map(|i| {
                let s = Shard { index: i, count: 3 };
                (0..8).filter(|&p| s.holds(p)).count()
            })
            .sum();
        assert_eq!(all, 8);
        assert_eq!(
            Shard::parse("0/2").unwrap_err(),
            "invalid shard `0/2`: expected `I/N` with 1 <= I <= N, e.g. `1/4`"
        );
        assert!(Shard::parse("3/2").is_err());
        assert!(Shard::parse("1").is_err());
        assert!(Shard::parse("a/b").is_err());
    }

    #[test]
    fn arches_match_by_uname_or_go_name() {
        let arches = ["arm64".to_string()];
        assert!(arch_matches("aarch64", &arches));
        assert!(!arch_matches("x86_64", &arches));
    }

    #[test]
    fn emulation_needs_an_enabled_qemu_handler() {
        let dir = tempfile::tempdir().unwrap();
        let binfmt = dir.path();
        assert_eq!(can_run("x86_64", "x86_64", binfmt), Ok(()));
        let path = binfmt.display();
        assert_eq!(
            can_run("aarch64", "x86_64", binfmt).unwrap_err(),
            format!(
                "this `x86_64` host cannot run `aarch64` images: no binfmt handler `qemu-aarch64` in `{path}`; \
                 mount `{path}` (`mount -t binfmt_misc binfmt_misc {path}`), then enable emulation with `apt-get install qemu-user-static`"
            )
        );
        std::fs::write(binfmt.join("register"), "").unwrap();
        assert_eq!(
            can_run("aarch64", "x86_64", binfmt).unwrap_err(),
            format!(
                "this `x86_64` host cannot run `aarch64` images: no binfmt handler `qemu-aarch64` in `{path}`; \
                 enable emulation with `apt-get install qemu-user-static`"
            )
        );
        std::fs::write(
            binfmt.join("qemu-aarch64"),
            "disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n",
        )
        .unwrap();
        assert_eq!(
            can_run("aarch64", "x86_64", binfmt).unwrap_err(),
            "this `x86_64` host cannot run `aarch64` images: the binfmt handler `qemu-aarch64` is disabled; \
             enable it with `update-binfmts --enable qemu-aarch64`"
        );
        std::fs::write(
            binfmt.join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n",
        )
        .unwrap();
        assert_eq!(can_run("aarch64", "x86_64", binfmt), Ok(()));
        std::fs::write(binfmt.join("qemu-arm"), "enabled\n").unwrap();
        assert_eq!(can_run("armv7l", "x86_64", binfmt), Ok(()));
    }
}
