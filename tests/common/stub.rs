//! Stand-ins for the container engine: a script that records its arguments, and the reading of
//! what it recorded.

use super::Test;

/// An engine that records its arguments in `$STUB_DIR/engine.log` (one per line, then `--`);
/// `build` runs `build` (shell lines of a `case` branch, ending in `;;`), `push` prints
/// `stub push` and exits `$STUB_PUSH_STATUS`, `image` prints `$STUB_LABEL`, `images` prints
/// `$STUB_IMAGES` and exits `$STUB_IMAGES_STATUS`, `rmi` untags.
pub fn recording_engine(build: &str) -> String {
    format!(
        r#"#!/bin/sh
log="$STUB_DIR/engine.log"
for arg in "$@"; do printf '%s\n' "$arg" >> "$log"; done
echo -- >> "$log"
case "$1" in
  build){build}
  push) echo "stub push"; exit "${{STUB_PUSH_STATUS:-0}}";;
  image) printf '%s\n' "$STUB_LABEL";;
  images) printf '%s' "$STUB_IMAGES"; exit "${{STUB_IMAGES_STATUS:-0}}";;
  rmi) echo "Untagged: $2";;
esac
"#
    )
}

/// The command lines [`recording_engine`] recorded in the project.
pub fn engine_calls(test: &Test) -> Vec<Vec<String>> {
    let log = std::fs::read_to_string(test.path().join("engine.log")).unwrap_or_default();
    let mut calls = vec![Vec::new()];
    for line in log.lines() {
        if line == "--" {
            calls.push(Vec::new());
        } else {
            calls.last_mut().unwrap().push(line.to_string());
        }
    }
    calls.pop();
    calls
}

/// The recorded calls whose first word is `verb`.
pub fn calls_of(test: &Test, verb: &str) -> Vec<Vec<String>> {
    engine_calls(test)
        .into_iter()
        .filter(|call| call.first().map(String::as_str) == Some(verb))
        .collect()
}
