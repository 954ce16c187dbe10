//! Every user-facing error: its exact message, its exit code, and that nothing was written.

use crate::common::{snapshot, Test, CONFIG};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";

/// A project staged once, so that each test can check the failure left it untouched.
fn staged() -> Test {
    let test = Test::with_config()
        .write(
            "templates/src/core/Dockerfile",
            "FROM __ENV_[BASE_IMAGE]__\n__INSTALL__\n",
        )
        .write("templates/src/core/__INSTALL__", "RUN install\n")
        .write(
            "templates/src/app/Dockerfile",
            "FROM __ENV_[CORE_IMAGE]__\n",
        )
        .write("templates/rel/ALL/centos/9/.keep", "")
        .write("templates/rel/squid/centos/.keep", "")
        .write("templates/rel/reef/.keep", "")
        .args(&["stage", SQUID])
        .stdout("staged staging/squid-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n");
    test.run();
    test
}

/// Runs `args` in `test`, expecting exit 1 with `stderr`, no stdout, and nothing below
/// `staging/` changed.
#[track_caller]
fn fails(test: Test, args: &[&str], stderr: &str) {
    fails_with(1, test, args, stderr);
}

/// Like [`fails`] for a usage error (a bad flavor argument): exit 2.
#[track_caller]
fn usage(test: Test, args: &[&str], stderr: &str) {
    fails_with(2, test, args, stderr);
}

#[track_caller]
fn fails_with(code: i32, test: Test, args: &[&str], stderr: &str) {
    let before = snapshot(&test.path().join("staging"));
    let test = test.args(args).stdout("").stderr(stderr).status(code);
    test.run();
    assert!(
        before == snapshot(&test.path().join("staging")),
        "staging/ changed"
    );
}

#[test]
fn flavor_with_wrong_arity() {
    usage(
        staged(),
        &["stage", "squid,centos"],
        "error: invalid flavor `squid,centos`: expected 7 comma-separated fields `<ceph rel>,<arch>,<os name>,<os version>,<base registry>,<base repo>,<base tag>` or 3 `<ceph rel>,<os name>,<os version>`, found 2\n",
    );
}

#[test]
fn flavor_with_an_empty_field() {
    usage(
        staged(),
        &["stage", "squid,x86_64,,9,_,centos,9"],
        "error: invalid flavor `squid,x86_64,,9,_,centos,9`: field 3 (os name) is empty\n",
    );
}

#[test]
fn flavor_with_shell_characters() {
    for (flavor, problem) in [
        (
            "squid,x86_64,cen;tos,9,_,centos,9",
            "field 3 (os name) `cen;tos` contains `;`",
        ),
        (
            "squid,x86_64,centos,$9,_,centos,9",
            "field 4 (os version) `$9` contains `$`",
        ),
        (
            "squid,x86'64,centos,9,_,centos,9",
            "field 2 (arch) `x86'64` contains `'`",
        ),
        (
            "squid,x86_64,centos,9,_,centos,9\"",
            "field 7 (base tag) `9\"` contains `\"`",
        ),
    ] {
        let rule = if problem.starts_with("field 7") {
            "an image tag: letters, digits, `_`, `.` and `-`, at most 128"
        } else {
            "letters, digits, `.`, `_` and `-`, starting with a letter or digit, no `..`"
        };
        usage(
            staged(),
            &["stage", SQUID, flavor],
            &format!("error: invalid flavor `{flavor}`: {problem}: use {rule}\n"),
        );
    }
}

#[test]
fn flavors_separated_by_whitespace_in_one_argument_are_split() {
    usage(
        staged(),
        &["stage", "squid,x86_64,centos,9,_,centos,9 reef,x86 64"],
        "error: invalid flavor `reef,x86`: expected 7 comma-separated fields `<ceph rel>,<arch>,<os name>,<os version>,<base registry>,<base repo>,<base tag>` or 3 `<ceph rel>,<os name>,<os version>`, found 2\n",
    );
}

#[test]
fn flavor_with_slash_or_dots() {
    usage(
        staged(),
        &["stage", "squid,x86_64,centos,../9,_,centos,9"],
        "error: invalid flavor `squid,x86_64,centos,../9,_,centos,9`: field 4 (os version) `../9` contains `/`, allowed only in the base repo: use letters, digits, `.`, `_` and `-`, starting with a letter or digit, no `..`\n",
    );
    usage(
        staged(),
        &["stage", "squid,x86_64,centos,9..1,_,centos,9"],
        "error: invalid flavor `squid,x86_64,centos,9..1,_,centos,9`: field 4 (os version) `9..1` contains `..`: use letters, digits, `.`, `_` and `-`, starting with a letter or digit, no `..`\n",
    );
    usage(
        staged(),
        &["stage", "squid,x86_64,centos,9,_,Centos/Stream,9"],
        "error: invalid flavor `squid,x86_64,centos,9,_,Centos/Stream,9`: field 6 (base repo) `Centos/Stream` is not allowed: use an image repository path: lowercase letters and digits separated by `.`, `_`, `-` or `/`, such as `centos/centos`\n",
    );
}

#[test]
fn unknown_release_suggests_the_closest() {
    usage(
        staged(),
        &["stage", "sqiud,x86_64,centos,9,quay.io,centos/centos,stream9"],
        "
        error: invalid flavor `sqiud,x86_64,centos,9,quay.io,centos/centos,stream9`: CEPH_VERSION `sqiud` has no layer directory (looked for `templates/rel/sqiud`, `templates/rel/sqiud/centos`); known values: reef, squid; did you mean `squid`?
        ",
    );
}

#[test]
fn unknown_distro_lists_the_known_ones() {
    usage(
        staged(),
        &["stage", "squid,x86_64,centso,9,_,centos,9"],
        "
        error: invalid flavor `squid,x86_64,centso,9,_,centos,9`: DISTRO `centso` has no layer directory (looked for `templates/rel/ALL/centso`, `templates/rel/ALL/centso/9`, `templates/rel/squid/centso`); known values: centos; did you mean `centos`?
        ",
    );
}

#[test]
fn one_failing_flavor_does_not_stop_the_others_but_fails_the_run() {
    let test = staged();
    let reef = "reef,x86_64,centos,9,quay.io,centos/centos,stream9";
    let test = test
        .write("templates/rel/squid/core/__INSTALL__", "RUN __MISSING__\n")
        .args(&["stage", reef, SQUID])
        .status(1)
        .stdout("staged staging/reef-centos-9-x86_64: 10 written, 0 unchanged, 0 removed\n")
        .stderr(
            "
            error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/rel/squid/core/__INSTALL__:1: fragment `__MISSING__` not found (staged as `core/__INSTALL__`; searched `templates/src`, `templates/src/core`, `templates/rel/ALL`, `templates/rel/ALL/core`, `templates/rel/ALL/centos`, `templates/rel/ALL/centos/core`, `templates/rel/ALL/centos/9`, `templates/rel/ALL/centos/9/core`, `templates/rel/squid`, `templates/rel/squid/core`, `templates/rel/squid/centos`, `templates/rel/squid/centos/core`)
            ",
        );
    let before = snapshot(&test.path().join("staging/squid-centos-9-x86_64"));
    let build_mk = test.read("staging/build.mk");
    test.run();
    assert!(before == snapshot(&test.path().join("staging/squid-centos-9-x86_64")));
    assert_eq!(
        test.read("staging/build.mk"),
        build_mk,
        "a failed run leaves build.mk as the last successful run wrote it"
    );
}

#[test]
fn unknown_config_key_names_its_line() {
    let config = CONFIG.replace("env = [", "envs = [\"X\"]\nenv = [");
    fails(
        staged().write("flavors/matriochka.toml", &config),
        &["stage", SQUID],
        "error: failed to load `flavors/matriochka.toml`: line 7: unknown field `envs`, expected one of `templates`, `layers`, `images`, `staging_dir`, `staging_root`, `image_tag`, `keep_fragments`, `env`, `manifest_tag`, `rolling_tags`, `extra_tags`\n",
    );
}

#[test]
fn missing_config_file() {
    fails(
        staged(),
        &["--config", "nope.toml", "stage"],
        "error: failed to read `nope.toml`: No such file or directory (os error 2)\n",
    );
}

#[test]
fn pattern_with_an_unknown_variable() {
    let config = CONFIG.replace("{DISTRO_VERSION}\",", "{DISTRO_VERSON}\",");
    fails(
        staged().write("flavors/matriochka.toml", &config),
        &["stage", SQUID],
        "error: failed to load `flavors/matriochka.toml`: `layout.layers` pattern `rel/ALL/{DISTRO}/{DISTRO_VERSON}` names unknown variable `{DISTRO_VERSON}`; known: BASEOS_REGISTRY, BASEOS_REPO, BASEOS_TAG, BASE_IMAGE, CEPH_POINT_RELEASE, CEPH_POINT_RELEASE_TAG, CEPH_VERSION, DISTRO, DISTRO_VERSION, GIT_BRANCH, GIT_CLEAN, GIT_COMMIT, GIT_REPO, GO_ARCH, HOST_ARCH, IMAGES_TO_BUILD, RELEASE, STAGING_DIR, TAG_REGISTRY, CORE_IMAGE, APP_IMAGE\n",
    );
}

#[test]
fn image_named_after_a_flavor_variable() {
    let config = CONFIG.replace(
        "images = [\"core\", \"app\"]",
        "images = [\"base\", \"app\"]",
    );
    fails(
        staged().write("flavors/matriochka.toml", &config),
        &["stage", SQUID],
        "error: failed to load `flavors/matriochka.toml`: `layout.images`: image `base` would set `BASE_IMAGE`, a flavor variable: rename the image\n",
    );
}

#[test]
fn missing_fragment_names_file_line_layers_and_suggestion() {
    fails(
        staged().write("templates/rel/squid/centos/core/Dockerfile", "FROM x\n# line 2\nRUN __INSTAL__\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/rel/squid/centos/core/Dockerfile:3: fragment `__INSTAL__` not found (staged as `core/Dockerfile`; searched `templates/src`, `templates/src/core`, `templates/rel/ALL`, `templates/rel/ALL/core`, `templates/rel/ALL/centos`, `templates/rel/ALL/centos/core`, `templates/rel/ALL/centos/9`, `templates/rel/ALL/centos/9/core`, `templates/rel/squid`, `templates/rel/squid/core`, `templates/rel/squid/centos`, `templates/rel/squid/centos/core`); did you mean `__INSTALL__`?
        ",
    );
}

#[test]
fn missing_fragment_inside_a_fragment_points_at_the_fragment() {
    fails(
        staged().write("templates/rel/squid/__INSTALL__", "RUN a\nRUN __NOPE__\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/rel/squid/__INSTALL__:2: fragment `__NOPE__` not found (staged as `core/__INSTALL__`; searched `templates/src`, `templates/src/core`, `templates/rel/ALL`, `templates/rel/ALL/core`, `templates/rel/ALL/centos`, `templates/rel/ALL/centos/core`, `templates/rel/ALL/centos/9`, `templates/rel/ALL/centos/9/core`, `templates/rel/squid`, `templates/rel/squid/core`, `templates/rel/squid/centos`, `templates/rel/squid/centos/core`)
        ",
    );
}

#[test]
fn unset_allowed_variable() {
    fails(
        staged().write("templates/src/core/devel", "#\n#\ndevel=__ENV_[CEPH_DEVEL]__\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/src/core/devel:3: variable `CEPH_DEVEL` is not set (staged as `core/devel`); set it in the environment
        ",
    );
}

#[test]
fn disallowed_variable() {
    fails(
        staged().env("HOME", "/root").write("templates/src/app/home", "__ENV_[HOME]__\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/src/app/home:1: `HOME` is not a flavor variable and not allowed by `layout.env` in `flavors/matriochka.toml` (staged as `app/home`)
        ",
    );
}

#[test]
fn token_in_a_variable_value_is_reported_where_the_variable_is_used() {
    fails(
        staged().env("OPT_X", "a __ENV_[OPT_Y]__").write("templates/src/app/x", "# x\nx=__ENV_[OPT_X]__\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/src/app/x:2: variable `OPT_Y` is not set (staged as `app/x`, in the value of `OPT_X`); set it in the environment
        ",
    );
}

#[test]
fn fragment_cycle_shows_the_chain() {
    fails(
        staged()
            .write("templates/src/core/__INSTALL__", "RUN __A__\n")
            .write("templates/src/core/__A__", "a\n__B__\n")
            .write("templates/rel/squid/core/__B__", "b __A__"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/rel/squid/core/__B__:1: fragment cycle `__A__` -> `__B__` -> `__A__` (staged as `core/__B__`)
        ",
    );
}

#[test]
fn tera_error_names_the_file_and_line() {
    fails(
        staged().write("templates/src/core/conf.tera", "ok\n{% if %}\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/src/core/conf.tera:2:7: expected a value that can be negated (staged as `core/conf`)
        ",
    );
}

#[test]
fn tera_unknown_variable() {
    fails(
        staged().write("templates/src/core/conf.tera", "x={{ NOPE }}\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/src/core/conf.tera:1:6: Variable `NOPE` not found in context while rendering 'templates/src/core/conf.tera' (staged as `core/conf`)
        ",
    );
}

/// Issue 21: Tera's runtime errors carried no line: the tag naming the culprit gives it.
#[test]
fn tera_runtime_errors_name_the_line() {
    fails(
        staged().write(
            "templates/src/core/conf.tera",
            "a\n{{ CEPH_VERSION }}\nb={{ CEPH_VERSION | nope }}\n",
        ),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/src/core/conf.tera:3:21: Filter 'nope' not found (staged as `core/conf`)
        ",
    );
}

#[test]
fn tera_cannot_read_the_environment() {
    fails(
        staged()
            .env("SECRET", "x")
            .write("templates/src/core/conf.tera", "{{ get_env(name=\"SECRET\") }}\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: templates/src/core/conf.tera:1:4: Function call 'get_env' failed: `get_env` is disabled: use a variable allowed by `layout.env` (staged as `core/conf`)
        ",
    );
}

#[test]
fn flavor_with_a_bad_base_registry() {
    usage(
        staged(),
        &["stage", "squid,x86_64,centos,9,quay.io:bad,centos,9"],
        "error: invalid flavor `squid,x86_64,centos,9,quay.io:bad,centos,9`: field 5 (base registry) `quay.io:bad` is not allowed: use a registry host[:port] such as `quay.io` or `127.0.0.1:5000`, or `_` for none\n",
    );
    usage(
        staged(),
        &["stage", "squid,x86_64,centos,9,quay.io/x,centos,9"],
        "error: invalid flavor `squid,x86_64,centos,9,quay.io/x,centos,9`: field 5 (base registry) `quay.io/x` contains `/`, allowed only in the base repo: use a registry host[:port] such as `quay.io` or `127.0.0.1:5000`, or `_` for none\n",
    );
}

#[test]
fn flavor_with_a_space_inside_a_field_is_two_flavors() {
    // Whitespace separates flavors, so a space never reaches a field: each half is judged.
    usage(
        staged(),
        &["stage", "squid,x86_64,centos,9,quay.io,centos/centos,stream 9"],
        "error: invalid flavor `9`: expected 7 comma-separated fields `<ceph rel>,<arch>,<os name>,<os version>,<base registry>,<base repo>,<base tag>` or 3 `<ceph rel>,<os name>,<os version>`, found 1\n",
    );
}

#[test]
fn symlink_out_of_the_templates() {
    let test = staged();
    std::fs::write(test.path().join("outside"), "secret\n").unwrap();
    std::os::unix::fs::symlink(
        "../../../outside",
        test.path().join("templates/src/core/leak"),
    )
    .unwrap();
    let target = test.path().canonicalize().unwrap().join("outside");
    fails(
        test,
        &["stage", SQUID],
        &format!(
            "error: failed to stage `{SQUID}`: symbolic link `templates/src/core/leak` points outside the templates tree (to `{}`): copy the file into the templates instead\n",
            target.display()
        ),
    );
}

#[test]
fn two_flavors_in_one_staging_dir() {
    fails(
        staged(),
        &["stage", SQUID, "squid,x86_64,centos,9,_,centos,9"],
        "
        error: flavors `squid,x86_64,centos,9,quay.io,centos/centos,stream9` and `squid,x86_64,centos,9,_,centos,9` both stage into `staging/squid-centos-9-x86_64`: add the differing field to `layout.staging_dir`
        ",
    );
}

#[test]
fn invalid_image_tag() {
    fails(
        staged().env("TAG_REGISTRY", "My Registry"),
        &["stage", SQUID],
        "error: flavor `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: image `core` gets tag `My Registry/core:test-squid-centos-stream9-x86_64`, which is not a valid image reference (bad name component `My Registry`); check `layout.image_tag`, TAG_REGISTRY, RELEASE and CORE_TAG\n",
    );
}

#[test]
fn image_dependency_cycle() {
    fails(
        staged().write("templates/src/core/Dockerfile", "FROM x\nCOPY --from=__ENV_[APP_IMAGE]__ /a /a\n"),
        &["stage", SQUID],
        "
        error: failed to stage `squid,x86_64,centos,9,quay.io,centos/centos,stream9`: image dependency cycle core -> app -> core: `core/Dockerfile` line 2 uses `app`, `app/Dockerfile` line 1 uses `core`
        ",
    );
}

#[test]
fn usage_errors_exit_2() {
    Test::with_config()
        .args(&["stage", "--frobnicate"])
        .stderr(
            "
            error: unexpected argument '--frobnicate' found

              tip: to pass '--frobnicate' as a value, use '-- --frobnicate'

            Usage: matriochka stage [OPTIONS] [FLAVORS]...

            For more information, try '--help'.
            ",
        )
        .status(2)
        .run();
    Test::with_config()
        .args(&["show"])
        .stderr(
            "
            Show flavors, the default flavors, a flavor's variables, the staging root or the environment

            Usage: matriochka show [OPTIONS] <COMMAND>

            Commands:
              flavors       The buildable flavors, one per line
              default       The default flavors, one per line
              vars          A flavor's variables, as sorted NAME=value lines
              staging-root  The staging root (`layout.staging_root`), relative to the project root
              env           The environment variables matriochka reads, with their values here and what they do
              help          Print this message or the help of the given subcommand(s)

            Options:
              -C <DIR>             Run as if started in DIR (the project root) [default: the nearest directory
                                   upwards that holds flavors/matriochka.toml, as git and cargo find theirs]
                  --config <FILE>  Configuration file [default: <root>/flavors/matriochka.toml]
              -h, --help           Print help

            Example:
              matriochka show flavors
              matriochka show vars reef,x86_64,ubuntu,22.04,_,ubuntu,22.04
            ",
        )
        .status(2)
        .run();
}

#[test]
fn no_flavor_at_all() {
    let config = CONFIG.replace(
        "default = [\"squid,x86_64,centos,9,quay.io,centos/centos,stream9\"]",
        "default = []",
    );
    fails(
        staged().write("flavors/matriochka.toml", &config),
        &["stage"],
        "error: no flavor given: pass flavors, set FLAVORS or `flavors.default` in `flavors/matriochka.toml`\n",
    );
}
