//! Every `--help` text, pinned whole in tests/help.txt: a change to an option, a description or
//! an example shows in review. `MATRIOCHKA_BLESS=1 cargo test help` rewrites the file.

use crate::common::bin;

/// The subcommands `matriochka <path> --help` lists under `Commands:`, `help` left out.
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .skip(1)
                .take_while(|line| !line.trim().is_empty())
                .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
                .filter_map(|line| line.split_whitespace().next())
                .filter(|name| *name != "help")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn help_of(path: &[String]) -> String {
    let output = std::process::Command::new(bin())
        .args(path)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(output.status.success(), "matriochka {path:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_help_text_is_pinned() {
    let mut text = String::new();
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let mut count = 0;
    while let Some(path) = queue.pop() {
        let help = help_of(&path);
        text.push_str(&format!("==> matriochka {} --help\n", path.join(" ")).replace("  ", " "));
        text.push_str(&help);
        text.push('\n');
        count += 1;
        let mut children: Vec<Vec<String>> = subcommands(&help)
            .into_iter()
            .map(|name| [path.clone(), vec![name]].concat())
            .collect();
        children.reverse();
        queue.extend(children);
    }
    assert!(count > 15, "only {count} help texts");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/help.txt");
    if std::env::var_os("MATRIOCHKA_BLESS").is_some() {
        std::fs::write(&file, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&file).unwrap_or_default();
    if expected != text {
        let first = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(text.lines().count()));
        panic!(
            "tests/help.txt differs from the help texts at line {} (run `MATRIOCHKA_BLESS=1 cargo test help` and review the diff):\nexpected: {:?}\nactual:   {:?}",
            first + 1,
            expected.lines().nth(first),
            text.lines().nth(first)
        );
    }
}
