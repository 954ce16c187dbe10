//! Stand-ins for the container engine: a script that records its arguments, and the reading of
//! what it recorded.

use super::Test;

/// An engine that records its arguments in `$STUB_DIR/engine.log` (one per line, then `--`);
/// `build` runs `build` (shell lines of a `case` branch, ending in `;;`), `push` writes
/// `$STUB_DIGEST` to the file of `--digestfile FILE` (podman's), prints `$STUB_PUSH_OUTPUT`
/// (`stub push` by default) and exits `$STUB_PUSH_STATUS`, `image` prints `$STUB_LABEL` (the layers asked:
/// `layer`, or `other` for the tag `$STUB_OTHER_LAYERS`; the content id and platform asked: those
/// the tag was built or tagged with, in `$STUB_DIR/content-ids`, and `linux/$STUB_ARCH`, amd64 by
/// default), `images` prints `$STUB_IMAGES` and exits
/// `$STUB_IMAGES_STATUS`, `rmi` untags.
pub fn recording_engine(build: &str) -> String {
    format!(
        r#"#!/bin/sh
log="$STUB_DIR/engine.log"
for arg in "$@"; do printf '%s\n' "$arg" >> "$log"; done
echo -- >> "$log"
{CONTENT_IDS}
case "$1" in
  build){build}
  push)
    prev=
    for a; do [ "$prev" = --digestfile ] && printf '%s\n' "$STUB_DIGEST" > "$a"; prev=$a; done
    echo "${{STUB_PUSH_OUTPUT:-stub push}}"; exit "${{STUB_PUSH_STATUS:-0}}";;
  image)
    case "$4" in
      *RootFS*) if [ "$last" = "$STUB_OTHER_LAYERS" ]; then echo "other "; else echo "layer "; fi;;
      *Architecture*) content_id "$last";;
      *) printf '%s\n' "$STUB_LABEL";;
    esac;;
  images) printf '%s' "$STUB_IMAGES"; exit "${{STUB_IMAGES_STATUS:-0}}";;
  rmi) echo "Untagged: $2";;
esac
"#
    )
}

/// Shell lines of a stub engine: `build -t TAG … --label io.matriochka.content-id=ID` and
/// `tag FROM TO` record the tag's content id in `$STUB_DIR/content-ids`; `content_id TAG` prints
/// it and `linux/$STUB_ARCH` (and fails for a tag never built nor tagged).
pub const CONTENT_IDS: &str = r#"for last; do :; done
ids="$STUB_DIR/content-ids"
content_id() { awk -v t="$1" '$1 == t { c = $2 } END { if (c == "") exit 1; print c " linux/" a }' a="${STUB_ARCH:-amd64}" "$ids" 2>/dev/null; }
case "$1" in
  build)
    prev=
    for a; do
      [ "$prev" = -t ] && t=$a
      case "$a" in io.matriochka.content-id=*) printf '%s %s
' "$t" "${a#*=}" >> "$ids";; esac
      prev=$a
    done;;
  tag) c=$(content_id "$2") && printf '%s %s
' "$3" "${c%% *}" >> "$ids";;
esac"#;

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
