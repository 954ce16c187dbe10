//! The build report: `make build` writes `staging/report.json` and prints a summary, also under
//! `make -k` with a failed build, and `matriochka report --failed` names the flavors to run
//! again. A stub engine stands in for docker (no podman needed).

use std::process::Output;

use crate::common::schema::{read_report, report_schema, validate};
use crate::common::stub::{calls_of, recording_engine};
use crate::common::{assert_text, bin, build_project, make_in, repo_make, Test};

const SQUID: &str = "squid,x86_64,centos,9,quay.io,centos/centos,stream9";
const REEF: &str = "reef,x86_64,centos,9,quay.io,centos/centos,stream9";

/// An engine whose builds succeed unless their tag is `$STUB_FAIL`; `images` lists
/// `$STUB_IMAGES`, and every image's id is `sha256:0123abcd` (its content id as built,
/// [`crate::common::stub::CONTENT_IDS`]).
const STUB_ENGINE: &str = r#"#!/bin/sh
STUB_DIR=.
CONTENT_IDS_HERE
case "$1" in
  build)
    case " $* " in *" -t $STUB_FAIL "*) echo "stub build failed"; exit 1;; esac
    echo "stub build";;
  push)
    case " $* " in *" $STUB_PUSH_FAIL "*) echo "stub push failed"; exit 1;; esac
    echo "stub push";;
  image)
    case "$4" in
      *RootFS*) echo "layer ";;
      *Architecture*) content_id "$last";;
      *) echo "sha256:0123abcd";;
    esac;;
  images) printf '%s' "$STUB_IMAGES";;
esac
"#;

fn tag(image: &str, release: &str) -> String {
    format!("ceph/{image}:test-{release}-centos-stream9-x86_64")
}

fn project() -> Test {
    let engine = STUB_ENGINE.replace("CONTENT_IDS_HERE", crate::common::stub::CONTENT_IDS);
    build_project().write_bytes("engine", engine.as_bytes(), 0o755)
}

/// `make -f <repo>/Makefile ARGS` for both flavors, with the stub engine.
fn make(test: &Test, env: &[(&str, &str)], args: &[&str]) -> Output {
    let images = [
        tag("core", "squid"),
        tag("app", "squid"),
        tag("core", "reef"),
        tag("app", "reef"),
    ]
    .join("\n");
    repo_make(test)
        .env("HOST_ARCH", "x86_64")
        .env("STUB_IMAGES", images)
        .envs(env.iter().copied())
        .arg("CONTAINER_ENGINE=./engine")
        .arg(format!("FLAVORS={SQUID} {REEF}"))
        .args(args)
        .output()
        .unwrap()
}

/// The content id of an image's staged plan.
fn content_id(test: &Test, id: &str, image: &str) -> String {
    let plan: serde_json::Value =
        serde_json::from_str(&test.read(&format!("staging/{id}/.matriochka/{image}.json")))
            .unwrap();
    plan["content_id"].as_str().unwrap().to_string()
}

/// The report, checked against its schema, with each number of seconds made `0.0`.
fn report(test: &Test) -> serde_json::Value {
    let mut report = read_report(test);
    for image in report["images"].as_array_mut().unwrap() {
        if image["seconds"].is_number() {
            image["seconds"] = serde_json::json!(0.0);
        }
    }
    report
}

/// One expected image entry.
#[allow(clippy::too_many_arguments)]
fn entry(
    test: &Test,
    flavor: &str,
    release: &str,
    image: &str,
    action: &str,
    log: bool,
    because: Option<&str>,
) -> serde_json::Value {
    let id = format!("{release}-centos-9-x86_64");
    let ran = matches!(action, "built" | "failed");
    serde_json::json!({
        "flavor": flavor,
        "id": id,
        "image": image,
        "tag": tag(image, release),
        "platform": "linux/amd64",
        "content_id": content_id(test, &id, image),
        "action": action,
        "digest": if action == "built" { Some("sha256:0123abcd") } else { None },
        "pushed_digest": None::<String>,
        "seconds": if ran { Some(0.0) } else { None },
        "log": if log { Some(format!("staging/logs/{id}/{image}.log")) } else { None },
        "because": because,
        "reason": None::<String>,
    })
}

/// The summary: the lines from `report:` on.
fn summary(output: &Output) -> String {
    let out = String::from_utf8_lossy(&output.stdout);
    let start = out
        .find("report: ")
        .unwrap_or_else(|| panic!("no summary in {out}"));
    out[start..].to_string()
}

#[test]
fn a_run_with_built_up_to_date_failed_and_skipped_images() {
    let test = project();
    let output = make(&test, &[], &["build"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let built = |flavor, release, image, because| {
        entry(&test, flavor, release, image, "built", true, Some(because))
    };
    assert_eq!(
        report(&test),
        serde_json::json!({
            "schema_version": 1,
            "commit": "Unknown commit hash",
            "images": [
                built(SQUID, "squid", "core", "not in engine"),
                built(SQUID, "squid", "app", "parent rebuilt"),
                built(REEF, "reef", "core", "not in engine"),
                built(REEF, "reef", "app", "parent rebuilt"),
            ],
            "manifests": [],
        })
    );

    // app changes in both flavors, reef's core changes and fails to build.
    let test = test
        .write("templates/src/app/extra.txt", "x\n")
        .write("templates/rel/reef/core/extra.txt", "y\n");
    let reef_core = tag("core", "reef");
    let output = make(&test, &[("STUB_FAIL", &reef_core)], &["-k", "build"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let changed = Some("context changed: extra.txt");
    assert_eq!(
        report(&test),
        serde_json::json!({
            "schema_version": 1,
            "commit": "Unknown commit hash",
            "images": [
                entry(&test, SQUID, "squid", "core", "up-to-date", false, None),
                entry(&test, SQUID, "squid", "app", "built", true, changed),
                entry(&test, REEF, "reef", "core", "failed", true, changed),
                entry(&test, REEF, "reef", "app", "skipped", false, None),
            ],
            "manifests": [],
        })
    );
    assert_text(
        &summary(&output),
        &format!(
            "report: staging/report.json
  built           1
  up-to-date      1
  failed          1
  skipped         1
failed reef-centos-9-x86_64/core ({reef_core}): see staging/logs/reef-centos-9-x86_64/core.log
skipped reef-centos-9-x86_64/app ({}): a parent failed or the run stopped
",
            tag("app", "reef")
        ),
        "summary",
    );
    let test = test
        .args(&["report", "--failed"])
        .stdout(&format!("{REEF}\n"));
    test.run();
    let test = test.args(&["report"]).stdout(&summary(&output));
    test.run();

    // Fixed: reef's core is built again (its context changed since its last successful build),
    // and its app also because its parent was.
    let output = make(&test, &[], &["build"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let images = report(&test)["images"].clone();
    assert_eq!(
        images,
        serde_json::json!([
            entry(&test, SQUID, "squid", "core", "up-to-date", false, None),
            entry(&test, SQUID, "squid", "app", "up-to-date", false, None),
            entry(&test, REEF, "reef", "core", "built", true, changed),
            entry(
                &test,
                REEF,
                "reef",
                "app",
                "built",
                true,
                Some("context changed: extra.txt; parent rebuilt")
            ),
        ])
    );
    let test = test.args(&["report", "--failed"]).stdout("");
    test.run();
}

#[test]
fn manifest_lists_are_reported_with_their_platforms_and_digests() {
    use crate::manifest::{project, sha256, NO_ROLLING, SQUID_AMD, SQUID_ARM};
    let amd = format!("sha256:{}", sha256(r#"{"layers":["amd"]}"#));
    let arm = format!("sha256:{}", sha256(r#"{"layers":["arm"]}"#));
    let flavors = format!("{SQUID_AMD} {SQUID_ARM}");
    let test = project()
        .env("MATRIOCHKA_RUN", "run-1")
        .env("FLAVORS", &flavors)
        .env("NO_ARM", "1")
        .args(&["manifest"])
        .any_stdout()
        .stderr(&format!("{NO_ROLLING}error: 2 of 2 manifest lists were refused or failed: nothing was pushed for them\n"))
        .status(1);
    test.run();
    let test = test
        .args(&["report", "--finish", "manifest", "--status", "1"])
        .stdout("report: staging/report.json\n  list refused    2\n")
        .stderr("");
    test.run();
    let refused = |tag: &str| {
        serde_json::json!({
            "tag": tag, "platforms": ["linux/amd64"], "digests": [amd], "action": "refused",
            "reason": format!("arch `aarch64` is missing (`{tag}-aarch64` is not in the registry)"),
        })
    };
    let report = read_report(&test);
    assert_eq!(
        report,
        serde_json::json!({
            "schema_version": 1,
            "commit": "Unknown commit hash",
            "images": [],
            "manifests": [
                refused("r.io/ceph/core:test-squid-centos"),
                refused("r.io/ceph/app:test-squid-centos"),
            ],
        })
    );

    // The next run holds only its own lists, and the first run's entries are gone.
    let test = test
        .env("MATRIOCHKA_RUN", "run-2")
        .env("NO_ARM", "")
        .env("PUSH_ARGS", "--retry 0")
        .env(
            "FLAVORS",
            "squid-19.2.1,x86_64,centos,9,_,centos,9 squid-19.2.1,aarch64,centos,9,_,centos,9",
        )
        .args(&["manifest"])
        .any_stdout()
        .status(0);
    test.run();
    let test = test
        .args(&["report", "--finish", "manifest"])
        .stdout("report: staging/report.json\n  list pushed     4\n");
    test.run();
    let report = read_report(&test);
    let pushed = |tag: &str| {
        serde_json::json!({
            "tag": tag,
            "platforms": ["linux/amd64", "linux/arm64/v8"],
            "digests": [amd, arm],
            "action": "pushed",
            "reason": null,
        })
    };
    assert_eq!(
        report["manifests"],
        serde_json::json!([
            pushed("r.io/ceph/core:test-squid-centos"),
            pushed("r.io/ceph/core:v19-centos"),
            pushed("r.io/ceph/app:test-squid-centos"),
            pushed("r.io/ceph/app:v19-centos"),
        ])
    );
    assert_eq!(
        std::fs::read_dir(test.path().join("staging/.report"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>(),
        ["run-2"]
    );
}

#[test]
fn report_errors() {
    let test = project()
        .args(&["report"])
        .stderr("error: failed to read `staging/report.json`: no run wrote a report yet (run `make build`)\n")
        .status(1);
    test.run();
    let test = test
        .args(&["report", "--finish", "build"])
        .stderr("error: no run to finish: MATRIOCHKA_RUN is not set (the Makefile sets it)\n");
    test.run();
    let test = test
        .env("MATRIOCHKA_RUN", "../x")
        .stderr("error: run id `../x` of MATRIOCHKA_RUN is not a file name: use only letters, digits and `._-`\n");
    test.run();
}

#[test]
fn a_push_run_reports_pushed_images_and_why_they_were_built() {
    let test = project();
    let output = make(&test, &[], &["push", &format!("FLAVORS={SQUID}")]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let pushed = |image, because| {
        let mut entry = entry(&test, SQUID, "squid", image, "pushed", false, Some(because));
        entry["log"] = format!("staging/logs/squid-centos-9-x86_64/{image}.push.log").into();
        entry["digest"] = "sha256:0123abcd".into();
        entry["seconds"] = 0.0.into();
        entry
    };
    assert_eq!(
        report(&test)["images"],
        serde_json::json!([
            pushed("core", "not in engine"),
            pushed("app", "parent rebuilt")
        ])
    );
    assert!(summary(&output).ends_with("report: staging/report.json\n  pushed          2\n"));

    // core's push fails: make stops, app is never pushed.
    let core = tag("core", "squid");
    let output = make(
        &test,
        &[("STUB_PUSH_FAIL", &core), ("PUSH_RETRIES", "0")],
        &["push", &format!("FLAVORS={SQUID}")],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let mut failed = entry(&test, SQUID, "squid", "core", "push-failed", false, None);
    failed["log"] = "staging/logs/squid-centos-9-x86_64/core.push.log".into();
    failed["seconds"] = 0.0.into();
    assert_eq!(
        report(&test)["images"],
        serde_json::json!([
            failed,
            entry(&test, SQUID, "squid", "app", "skipped", false, None)
        ])
    );
    assert_text(
        &summary(&output),
        &format!(
            "report: staging/report.json
  skipped         1
  push-failed     1
push-failed squid-centos-9-x86_64/core ({core}): see staging/logs/squid-centos-9-x86_64/core.push.log
skipped squid-centos-9-x86_64/app ({}): a parent failed or the run stopped
",
            tag("app", "squid")
        ),
        "summary",
    );
}

/// The digest the registry gave each pushed image, for a signing step: podman writes it to the
/// file of `--digestfile` (beside the push's log), docker prints it.
#[test]
fn pushed_images_carry_the_digest_the_registry_gave() {
    let engine = recording_engine(r#" echo "stub build";;"#);
    let test = build_project()
        .write_bytes("engine", engine.as_bytes(), 0o755)
        .write_bytes("podman-stub", engine.as_bytes(), 0o755);
    let makefile = format!("{}/Makefile", env!("CARGO_MANIFEST_DIR"));
    let matriochka = format!("MATRIOCHKA={}", bin());
    let flavors = format!("FLAVORS={SQUID}");
    let push = |env: &[(&str, &str)]| {
        let output = make_in(
            test.path(),
            &makefile,
            env,
            &[&matriochka, "push", &flavors],
        );
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        read_report(&test)["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|image| {
                (
                    image["image"].as_str().unwrap().to_string(),
                    image["action"].as_str().unwrap().to_string(),
                    image["pushed_digest"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let podman = format!("sha256:{}", "a".repeat(64));
    let pushed = |image: &str, digest: &str| {
        (
            image.to_string(),
            "pushed".to_string(),
            serde_json::json!(digest),
        )
    };
    assert_eq!(
        push(&[
            ("CONTAINER_ENGINE", "./podman-stub"),
            ("STUB_DIGEST", &podman)
        ]),
        [pushed("core", &podman), pushed("app", &podman)]
    );
    let first_pushes: Vec<Vec<String>> = calls_of(&test, "push")
        .into_iter()
        .filter(|call| call.contains(&"--digestfile".to_string()))
        .collect();
    assert_eq!(
        first_pushes,
        [
            [
                "push".to_string(),
                "--digestfile".to_string(),
                "staging/logs/squid-centos-9-x86_64/core.push.digest".to_string(),
                tag("core", "squid"),
            ],
            [
                "push".to_string(),
                "--digestfile".to_string(),
                "staging/logs/squid-centos-9-x86_64/app.push.digest".to_string(),
                tag("app", "squid"),
            ],
        ]
    );

    let docker = format!("sha256:{}", "b".repeat(64));
    let line = format!("main: digest: {docker} size: 1570");
    assert_eq!(
        push(&[("STUB_PUSH_OUTPUT", &line)]),
        [pushed("core", &docker), pushed("app", &docker)]
    );
    // A push that printed no digest: none is reported.
    let unknown = |image: &str| {
        (
            image.to_string(),
            "pushed".to_string(),
            serde_json::Value::Null,
        )
    };
    assert_eq!(push(&[]), [unknown("core"), unknown("app")]);
}

/// A push refused before it ran (the local image under the tag is not the plan's) says why in
/// the report, not only in the log.
#[test]
fn a_refused_push_has_its_reason_in_the_report() {
    let test = project();
    let output = make(
        &test,
        &[("STUB_ARCH", "arm64")],
        &["push", &format!("FLAVORS={SQUID}")],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let core = tag("core", "squid");
    let mut refused = entry(
        &test,
        SQUID,
        "squid",
        "core",
        "push-failed",
        false,
        Some("not in engine"),
    );
    refused["log"] = "staging/logs/squid-centos-9-x86_64/core.push.log".into();
    refused["digest"] = "sha256:0123abcd".into();
    refused["seconds"] = 0.0.into();
    refused["reason"] = format!(
        "refused to push `{core}`: the local image's platform is `linux/arm64`, not the plan's `linux/amd64`"
    )
    .into();
    // app was built in this run, and is not in the registry.
    let mut skipped = entry(
        &test,
        SQUID,
        "squid",
        "app",
        "skipped",
        false,
        Some("parent rebuilt"),
    );
    skipped["digest"] = "sha256:0123abcd".into();
    skipped["seconds"] = 0.0.into();
    assert_eq!(
        report(&test)["images"],
        serde_json::json!([refused, skipped])
    );
}

#[test]
fn a_dry_run_writes_no_report() {
    let test = project();
    let output = make(&test, &[], &["-n", "build"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(!test.path().join("staging/report.json").exists());
    assert!(!test.path().join("staging/.report").exists());
}

#[test]
fn a_release_run_ends_with_one_report_of_its_pushes_and_lists() {
    let test = project();
    // The configuration has no `manifest_tag`: the pushes succeed, `manifest` fails.
    let output = make(&test, &[], &["release", &format!("FLAVORS={SQUID}")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(out.matches("report: ").count(), 1, "{out}");
    let report = report(&test);
    let actions: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["pushed", "pushed"]);
    assert_eq!(report["manifests"], serde_json::json!([]));
    assert!(summary(&output).ends_with("report: staging/report.json\n  pushed          2\n"));
}

/// A make started from another make's recipe (`make test.e2e` runs the e2e script's makes) took the
/// outer run's id from the environment: every later run added its entries to the first run's, and
/// `report.json` kept showing the first run's builds.
#[test]
fn a_run_id_in_the_environment_is_not_taken() {
    let test = project();
    let leaked = [("MATRIOCHKA_RUN", "outer-run")];
    let first = make(&test, &leaked, &["build"]);
    assert_eq!(first.status.code(), Some(0), "{}", summary(&first));
    assert_eq!(
        summary(&first),
        "report: staging/report.json\n  built           4\n"
    );
    let second = make(&test, &leaked, &["build"]);
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        summary(&second),
        "report: staging/report.json\n  up-to-date      4\n"
    );
    assert!(
        !test.path().join("staging/.report/outer-run").exists(),
        "the outer run's id was used"
    );
}

/// The checker of `docs/report.schema.json` that every report read here goes through.
#[test]
fn the_validator_finds_each_kind_of_break() {
    let schema = report_schema();
    let good = serde_json::json!({
        "schema_version": 1, "commit": "abc", "images": [],
        "manifests": [{"tag": "t", "platforms": ["linux/amd64"], "digests": ["sha256:1"], "action": "pushed", "reason": null}],
    });
    assert_eq!(validate(&schema, &good), Vec::<String>::new());
    let bad = serde_json::json!({
        "schema_version": 2, "images": {}, "extra": 1,
        "manifests": [{"tag": 1, "platforms": [], "digests": [], "action": "sent"}],
    });
    assert_eq!(
        validate(&schema, &bad),
        [
            "$.images: object is not array",
            "$.manifests[0].action: \"sent\" is not one of [\"pushed\",\"up-to-date\",\"refused\",\"kept-newer\",\"failed\"]",
            "$.manifests[0].tag: integer is not string",
            "$.manifests[0]: `reason` is missing",
            "$.schema_version: 2 is not 1",
            "$: `commit` is missing",
            "$: `extra` is not in the schema",
        ]
    );
}
