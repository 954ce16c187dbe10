//! The layers of src/ (README, "Development"): imports go `cli → commands → app → plan → stage →
//! infra → domain` (and `error`, beside `domain`), never up and never in a circle; no command
//! imports another (they share `commands::args` and `app/`); clap lives in `cli.rs` only.
//! Read from the `use crate::` paths of the sources, comments and unit tests left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The rank of each top-level module: a module may import only ranks at or below its own.
fn rank(layer: &str) -> Option<u8> {
    Some(match layer {
        "domain" | "error" => 0,
        "infra" => 1,
        "stage" => 2,
        "plan" => 3,
        "app" => 4,
        "commands" => 5,
        "cli" => 6,
        _ => return None,
    })
}

/// Modules of `commands/` that are not commands: every command may import them.
const SHARED_IN_COMMANDS: &[&str] = &["args"];

/// `src/a/b/c.rs` → `["a", "b", "c"]`; `mod.rs` names its directory.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts
}

/// The code of a source file without its `#[cfg(test)]` module and comment lines.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` path in `code`, as `["a", "b"]` (one or two segments).
fn crate_paths(code: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let segments: Vec<String> = rest
            .split("::")
            .take(2)
            .map(|s| {
                s.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        if !segments.is_empty() {
            out.insert(segments);
        }
    }
    out
}

/// The violations of the layering in `files` (path relative to src/ → text).
fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let module = module_of(Path::new(rel));
        let Some(layer) = module.first().cloned() else {
            continue;
        };
        if layer == "main" || layer == "lib" {
            continue;
        }
        let code = code(text);
        if layer != "cli" && (code.contains("use clap") || code.contains("clap::")) {
            found.push(format!(
                "src/{rel} uses clap, which lives in src/cli.rs only"
            ));
        }
        let from_rank = rank(&layer);
        for path in crate_paths(&code) {
            let to = &path[0];
            match (from_rank, rank(to)) {
                (Some(from), Some(to_rank)) if to_rank > from => {
                    found.push(format!(
                        "src/{rel} imports `crate::{}` from a layer above",
                        path.join("::")
                    ));
                }
                (_, None) => found.push(format!(
                    "src/{rel} imports `crate::{to}`, which is no layer"
                )),
                _ => {}
            }
            if layer == "commands" && to == "commands" && module.len() > 1 && path.len() > 1 {
                let (own, other) = (&module[1], &path[1]);
                if own != other && !SHARED_IN_COMMANDS.contains(&other.as_str()) {
                    found.push(format!(
                        "src/{rel}: command `{own}` imports command `{other}` (share through app/)"
                    ));
                }
            }
            let key = |m: &[String]| m.iter().take(2).cloned().collect::<Vec<_>>().join("::");
            let (a, b) = (key(&module), key(&path));
            if a != b {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        found.push(format!("import circle: {}", cycle.join(" → ")));
    }
    found
}

/// A circle in the module graph, as the chain of modules, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn sources() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    walkdir::WalkDir::new(&src)
        .into_iter()
        .map(|entry| entry.expect("walk src/"))
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "rs"))
        .map(|entry| {
            let rel = entry
                .path()
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                rel,
                std::fs::read_to_string(entry.path()).expect("read a source"),
            )
        })
        .collect()
}

#[test]
fn src_imports_only_downwards_without_circles() {
    let files = sources();
    assert!(files.len() > 40, "src/ has {} files", files.len());
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

/// Environment names are read through `domain/env_names.rs` only: a literal name in a
/// `get("…")` or `get_nonempty("…")` elsewhere is a second list.
#[test]
fn environment_names_come_from_the_one_list() {
    let mut found = Vec::new();
    for (rel, text) in sources() {
        if rel == "domain/env_names.rs" {
            continue;
        }
        for line in code(&text).lines() {
            for call in ["get(\"", "get_nonempty(\""] {
                if let Some(at) = line.find(call) {
                    let name: String = line[at + call.len()..]
                        .chars()
                        .take_while(|c| *c != '"')
                        .collect();
                    if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                    {
                        found.push(format!("src/{rel}: `{name}`"));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "environment names outside domain/env_names.rs:\n{}",
        found.join("\n")
    );
}

fn files(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect()
}

#[test]
fn an_upward_import_is_named() {
    let found = violations(&files(&[
        ("domain/vars.rs", "use crate::infra::git::read;\n"),
        (
            "infra/git.rs",
            "// use crate::app::project; in a comment\nuse crate::domain::vars;\n",
        ),
    ]));
    assert_eq!(
        found,
        [
            "src/domain/vars.rs imports `crate::infra::git` from a layer above",
            "import circle: domain::vars → infra::git → domain::vars"
        ]
    );
}

#[test]
fn a_command_importing_another_and_clap_outside_cli_are_named() {
    let found = violations(&files(&[
        (
            "commands/bake.rs",
            "use crate::commands::args::Command;\nuse crate::commands::graph::x;\n",
        ),
        ("commands/graph.rs", "use clap::Parser;\n"),
        ("commands/args.rs", ""),
    ]));
    assert_eq!(
        found,
        [
            "src/commands/bake.rs: command `bake` imports command `graph` (share through app/)",
            "src/commands/graph.rs uses clap, which lives in src/cli.rs only",
        ]
    );
}

#[test]
fn a_circle_within_one_layer_is_named_and_unit_tests_are_left_out() {
    let found = violations(&files(&[
        ("stage/a.rs", "use crate::stage::b;\n"),
        ("stage/b.rs", "use crate::stage::a;\n"),
        (
            "stage/c.rs",
            "fn f() {}\n#[cfg(test)]\nmod tests { use crate::app::x; }\n",
        ),
    ]));
    assert_eq!(found, ["import circle: stage::a → stage::b → stage::a"]);
}
