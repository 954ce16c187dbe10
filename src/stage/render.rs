//! Render: fragments, `__ENV_[NAME]__` variables and `.tera` templates, in memory.
//!
//! Turns an image's overlay (staged path → source) into the staged files' bytes. Every error
//! names the template file and line to fix, the staged file, and what was searched.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;

use crate::domain::config::Config;
use crate::domain::vars::{Lookup, Vars};
use crate::stage::overlay::{Layer, Source};
use crate::stage::tree::Tree;

/// `__NAME__` or `__ENV_[NAME]__`. A name holds at least one letter or digit, so that a line of
/// underscores is not a token.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"__ENV_\[([A-Za-z_][A-Za-z0-9_]*)\]__|__([A-Z0-9_]*[A-Z0-9][A-Z0-9_]*)__").unwrap()
});
static FRAGMENT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^__[A-Z0-9_]*[A-Z0-9][A-Z0-9_]*__").unwrap());

/// How deep fragments (and variables holding tokens) may nest.
pub(crate) const MAX_DEPTH: usize = 100;
/// How large expanding fragments may make a staged file.
pub(crate) const MAX_EXPANDED: usize = 64 << 20;
/// The file every image context must have.
use crate::domain::dockerfile::DOCKERFILE;

/// A file of a staged image context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StagedFile {
    pub(crate) bytes: Vec<u8>,
    pub(crate) mode: u32,
    /// The template file it was made from.
    pub(crate) source: PathBuf,
    /// The fragments it used, directly or through other fragments: token → template file.
    pub(crate) fragments: BTreeMap<String, PathBuf>,
}

/// Whether a file name makes the file a fragment.
pub(crate) fn is_fragment_name(name: &str) -> bool {
    FRAGMENT_NAME.is_match(name)
}

/// Where a token was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    /// The template file holding the token.
    pub(crate) source: PathBuf,
    pub(crate) line: usize,
    /// The staged file being rendered (`daemon/Dockerfile`).
    pub(crate) staged: String,
    /// Set when the token came from a variable's value.
    pub(crate) in_variable: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source.display(), self.line)
    }
}

/// A template error the user fixes in a template or in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RenderError {
    MissingFragment {
        at: Location,
        token: String,
        searched: Vec<PathBuf>,
        suggestion: Option<String>,
    },
    UnsetVariable {
        at: Location,
        name: String,
    },
    DisallowedVariable {
        at: Location,
        name: String,
        config: String,
    },
    Cycle {
        at: Location,
        chain: Vec<String>,
    },
    TooDeep {
        at: Location,
        /// The staged file being rendered.
        file: String,
        chain: Vec<String>,
    },
    TooLarge {
        at: Location,
        /// The staged file being rendered.
        file: String,
    },
    /// No layer holds a file for the image (a wrong `layout.templates` or `layout.layers`).
    Empty {
        image: String,
        searched: Vec<PathBuf>,
        config: String,
    },
    NoDockerfile {
        image: String,
        searched: Vec<PathBuf>,
    },
    NotText {
        at: Location,
        token: String,
        fragment: PathBuf,
    },
    Tera {
        source: PathBuf,
        /// Line and column in the text after fragment expansion, when Tera tells them.
        at: Option<(usize, usize)>,
        staged: String,
        message: String,
    },
    Clash {
        staged: String,
        first: PathBuf,
        second: PathBuf,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let context = |at: &Location| {
            let mut text = format!("staged as `{}`", at.staged);
            if let Some(name) = &at.in_variable {
                text.push_str(&format!(", in the value of `{name}`"));
            }
            text
        };
        match self {
            RenderError::MissingFragment { at, token, searched, suggestion } => {
                let searched = itertools::join(searched.iter().map(|dir| format!("`{}`", dir.display())), ", ");
                write!(f, "{at}: fragment `{token}` not found ({}; searched {searched})", context(at))?;
                if let Some(suggestion) = suggestion {
                    write!(f, "; did you mean `{suggestion}`?")?;
                }
                Ok(())
            }
            RenderError::UnsetVariable { at, name } => write!(
                f,
                "{at}: variable `{name}` is not set ({}); set it in the environment",
                context(at)
            ),
            RenderError::DisallowedVariable { at, name, config } => write!(
                f,
                "{at}: `{name}` is not a flavor variable and not allowed by `layout.env` in `{config}` ({})",
                context(at)
            ),
            RenderError::Cycle { at, chain } => write!(
                f,
                "{at}: fragment cycle {} ({})",
                itertools::join(chain.iter().map(|token| format!("`{token}`")), " -> "),
                context(at)
            ),
            RenderError::TooDeep { at, file, chain } => write!(
                f,
                "{at}: fragments nested more than {MAX_DEPTH} deep: {} (staged as `{file}`)",
                abbreviated_chain(chain)
            ),
            RenderError::TooLarge { at, file } => write!(
                f,
                "{at}: expanding fragments makes `{file}` larger than {} MiB, the limit for a \
                 staged file",
                MAX_EXPANDED >> 20
            ),
            RenderError::Empty { image, searched, config } => write!(
                f,
                "image `{image}` has no file at all (searched {}): check `layout.templates` and \
                 `layout.layers` in `{config}`",
                quoted_paths(searched)
            ),
            RenderError::NoDockerfile { image, searched } => write!(
                f,
                "image `{image}` has no `{DOCKERFILE}` (searched {})",
                quoted_paths(searched)
            ),
            RenderError::NotText { at, token, fragment } => write!(
                f,
                "{at}: fragment `{token}` (`{}`) is not UTF-8 text ({})",
                fragment.display(),
                context(at)
            ),
            RenderError::Tera { source, at, staged, message } => {
                write!(f, "{}", source.display())?;
                if let Some((line, column)) = at {
                    write!(f, ":{line}:{column}")?;
                }
                write!(f, ": {message} (staged as `{staged}`)")
            }
            RenderError::Clash { staged, first, second } => write!(
                f,
                "`{}` and `{}` both make `{staged}` in the same layer: remove one",
                first.display(),
                second.display()
            ),
        }
    }
}

impl std::error::Error for RenderError {}

fn quoted_paths(paths: &[PathBuf]) -> String {
    itertools::join(
        paths.iter().map(|path| format!("`{}`", path.display())),
        ", ",
    )
}

/// A chain of tokens, its middle left out when long: `a` -> `b` -> … 95 more … -> `y` -> `z`.
fn abbreviated_chain(chain: &[String]) -> String {
    const ENDS: usize = 3;
    let quoted = |tokens: &[String]| {
        itertools::join(tokens.iter().map(|token| format!("`{token}`")), " -> ")
    };
    if chain.len() <= 2 * ENDS + 1 {
        return quoted(chain);
    }
    format!(
        "{} -> … {} more … -> {}",
        quoted(&chain[..ENDS]),
        chain.len() - 2 * ENDS,
        quoted(&chain[chain.len() - ENDS..])
    )
}

/// A text with its tokens replaced.
struct Expansion {
    text: String,
    /// The fragments used: token → template file.
    fragments: BTreeMap<String, PathBuf>,
    /// How many levels of tokens it went through.
    depth: usize,
}

type Expanded = Rc<Expansion>;

struct Renderer<'a> {
    tree: &'a dyn Tree,
    overlay: &'a BTreeMap<String, Source>,
    vars: &'a Vars,
    config: &'a Config,
    layers: &'a [Layer],
    image: &'a str,
    memo: HashMap<String, Expanded>,
    /// The staged file being rendered (`core/Dockerfile`).
    file: String,
}

/// Where the text being expanded comes from.
struct Origin<'a> {
    source: &'a Path,
    staged: &'a str,
    /// For a variable's value: its name and the line of the token that brought it in.
    variable: Option<(&'a str, usize)>,
}

impl Origin<'_> {
    fn at(&self, line: usize) -> Location {
        let (in_variable, line) = match self.variable {
            Some((name, line)) => (Some(name.to_string()), line),
            None => (None, line),
        };
        Location {
            source: self.source.to_path_buf(),
            line,
            staged: self.staged.to_string(),
            in_variable,
        }
    }
}

impl Renderer<'_> {
    fn expand(
        &mut self,
        text: &str,
        origin: &Origin,
        stack: &mut Vec<String>,
    ) -> Result<Expanded, anyhow::Error> {
        let mut out = String::with_capacity(text.len());
        let mut used = BTreeMap::new();
        let mut depth = 0;
        let mut last = 0;
        let mut line = 1;
        for captures in TOKEN.captures_iter(text) {
            let whole = captures.get(0).unwrap();
            line += text[last..whole.start()]
                .bytes()
                .filter(|&b| b == b'\n')
                .count();
            out.push_str(&text[last..whole.start()]);
            last = whole.end();
            let key = whole.as_str().to_string();
            if stack.contains(&key) {
                let start = stack.iter().position(|frame| *frame == key).unwrap();
                let mut chain = stack[start..].to_vec();
                chain.push(key);
                return Err(RenderError::Cycle {
                    at: origin.at(line),
                    chain,
                }
                .into());
            }
            // An expansion made lower in another chain may be too deep here: it is then made
            // again, so that the error names this chain.
            let memoized = self
                .memo
                .get(&key)
                .filter(|expanded| stack.len() + expanded.depth <= MAX_DEPTH);
            let expanded = match memoized {
                Some(expanded) => expanded.clone(),
                None => {
                    if stack.len() == MAX_DEPTH {
                        let mut chain = stack.clone();
                        chain.push(key);
                        return Err(RenderError::TooDeep {
                            at: origin.at(line),
                            file: self.file.clone(),
                            chain,
                        }
                        .into());
                    }
                    stack.push(key.clone());
                    let result = match captures.get(1) {
                        Some(name) => self.expand_variable(name.as_str(), origin, line, stack),
                        None => self.expand_fragment(&key, origin, line, stack),
                    };
                    stack.pop();
                    let expanded = result?;
                    self.memo.insert(key.clone(), expanded.clone());
                    expanded
                }
            };
            // Checked before the copy, so that a fan-out of fragments fails before it allocates.
            if out.len() + expanded.text.len() > MAX_EXPANDED {
                return Err(RenderError::TooLarge {
                    at: origin.at(line),
                    file: self.file.clone(),
                }
                .into());
            }
            out.push_str(&expanded.text);
            used.extend(
                expanded
                    .fragments
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            depth = depth.max(expanded.depth);
        }
        out.push_str(&text[last..]);
        Ok(Rc::new(Expansion {
            text: out,
            fragments: used,
            depth,
        }))
    }

    fn expand_variable(
        &mut self,
        name: &str,
        origin: &Origin,
        line: usize,
        stack: &mut Vec<String>,
    ) -> Result<Expanded, anyhow::Error> {
        let value = match self.vars.lookup_in(name, self.config) {
            Lookup::Value(value) => value,
            Lookup::Unset => {
                return Err(RenderError::UnsetVariable {
                    at: origin.at(line),
                    name: name.into(),
                }
                .into())
            }
            Lookup::NotAllowed => {
                return Err(RenderError::DisallowedVariable {
                    at: origin.at(line),
                    name: name.into(),
                    config: self.config.display_path(),
                }
                .into())
            }
        };
        let line = origin.variable.map_or(line, |(_, line)| line);
        let inner = Origin {
            source: origin.source,
            staged: origin.staged,
            variable: Some((name, line)),
        };
        // The memo is keyed by token only, and a variable's value does not depend on where it is used.
        Ok(nested(self.expand(value, &inner, stack)?, None))
    }

    fn expand_fragment(
        &mut self,
        token: &str,
        origin: &Origin,
        line: usize,
        stack: &mut Vec<String>,
    ) -> Result<Expanded, anyhow::Error> {
        let Some(source) = self.overlay.get(token) else {
            let searched = searched(self.layers, self.image);
            let known = self
                .overlay
                .keys()
                .filter(|path| !path.contains('/') && is_fragment_name(path));
            let suggestion = crate::domain::suggest::closest(token, known.map(String::as_str))
                .map(str::to_string);
            return Err(RenderError::MissingFragment {
                at: origin.at(line),
                token: token.into(),
                searched,
                suggestion,
            }
            .into());
        };
        let bytes = self.tree.read(&source.path)?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return Err(RenderError::NotText {
                at: origin.at(line),
                token: token.into(),
                fragment: source.path.clone(),
            }
            .into());
        };
        let staged = format!("{}/{token}", self.image);
        let inner = Origin {
            source: &source.path,
            staged: &staged,
            variable: None,
        };
        let expanded = self.expand(text.trim_end(), &inner, stack)?;
        Ok(nested(expanded, Some((token, &source.path))))
    }
}

/// The expansion of a token's content, one level deeper, with the fragment it read.
fn nested(expanded: Expanded, fragment: Option<(&str, &Path)>) -> Expanded {
    // The expansion of a text is not memoized (its token's is), so this takes it without a copy.
    let mut expansion = Rc::try_unwrap(expanded).unwrap_or_else(|rc| Expansion {
        text: rc.text.clone(),
        fragments: rc.fragments.clone(),
        depth: rc.depth,
    });
    if let Some((token, source)) = fragment {
        expansion
            .fragments
            .insert(token.to_string(), source.to_path_buf());
    }
    expansion.depth += 1;
    Rc::new(expansion)
}

/// Renders the files of one image's overlay.
pub(crate) fn render_image(
    tree: &dyn Tree,
    overlay: &BTreeMap<String, Source>,
    image: &str,
    vars: &Vars,
    config: &Config,
    layers: &[Layer],
) -> anyhow::Result<BTreeMap<String, StagedFile>> {
    let mut renderer = Renderer {
        tree,
        overlay,
        vars,
        config,
        layers,
        image,
        memo: HashMap::new(),
        file: String::new(),
    };
    // What each template makes, with its layer, in overlay order.
    let mut made: Vec<(String, usize, StagedFile)> = Vec::new();
    // Checked on what the overlay holds, not on which layer directories exist, so that the error
    // changes only with the files `modified` sees reach the image.
    if overlay.is_empty() {
        return Err(RenderError::Empty {
            image: image.to_string(),
            searched: searched(layers, image),
            config: config.display_path(),
        }
        .into());
    }
    let mut tera_context = None;
    for (path, source) in overlay {
        let name = path.rsplit('/').next().unwrap_or(path);
        let fragment = is_fragment_name(name);
        if fragment && !config.keep_fragments {
            continue;
        }
        let bytes = tree.read(&source.path)?;
        let staged_name = format!("{image}/{path}");
        let mut path = path.clone();
        let file = match (fragment, std::str::from_utf8(&bytes)) {
            (false, Ok(text)) => {
                let origin = Origin {
                    source: &source.path,
                    staged: &staged_name,
                    variable: None,
                };
                renderer.file.clone_from(&staged_name);
                let expanded = renderer.expand(text, &origin, &mut Vec::new())?;
                // The top-level expansion is not memoized, so this takes it without a copy.
                let Expansion {
                    text, fragments, ..
                } = Rc::try_unwrap(expanded).unwrap_or_else(|rc| Expansion {
                    text: rc.text.clone(),
                    fragments: rc.fragments.clone(),
                    depth: rc.depth,
                });
                let bytes = match path.strip_suffix(".tera") {
                    Some(stem) if !stem.ends_with('/') && !stem.is_empty() => {
                        let stem = stem.to_string();
                        let staged = format!("{image}/{stem}");
                        let context = match &tera_context {
                            Some(context) => context,
                            None => tera_context.insert(
                                tera::Context::from_serialize(vars.all())
                                    .map_err(|err| tera_error(err, &source.path, &staged))?,
                            ),
                        };
                        path = stem;
                        render_tera(&text, context, &source.path, &staged)?.into_bytes()
                    }
                    _ => text.into_bytes(),
                };
                StagedFile {
                    bytes,
                    mode: source.mode,
                    source: source.path.clone(),
                    fragments,
                }
            }
            _ => StagedFile {
                bytes: bytes.into_vec(),
                mode: source.mode,
                source: source.path.clone(),
                fragments: BTreeMap::new(),
            },
        };
        made.push((path, source.layer, file));
    }
    // `x.tera` makes `x`, which may meet a file `x` or a directory `x/` of another layer: as in
    // the overlay, the more specific layer wins whatever the kinds; in one layer it is a clash.
    made.sort_by_key(|(_, layer, _)| *layer);
    let mut out: BTreeMap<String, (usize, StagedFile)> = BTreeMap::new();
    for (path, layer, file) in made {
        let second = file.source.clone();
        for (hidden, (hidden_layer, other)) in
            crate::stage::overlay::place(&mut out, path.clone(), (layer, file))
        {
            if hidden_layer == layer {
                let shorter = if hidden.len() < path.len() {
                    hidden
                } else {
                    path
                };
                return Err(RenderError::Clash {
                    staged: format!("{image}/{shorter}"),
                    first: other.source,
                    second,
                }
                .into());
            }
        }
    }
    if !out.contains_key(DOCKERFILE) {
        return Err(RenderError::NoDockerfile {
            image: image.to_string(),
            searched: searched(layers, image),
        }
        .into());
    }
    Ok(out
        .into_iter()
        .map(|(path, (_, file))| (path, file))
        .collect())
}

/// The directories searched for an image's files, least specific first.
fn searched(layers: &[Layer], image: &str) -> Vec<PathBuf> {
    layers
        .iter()
        .flat_map(|layer| [layer.dir.clone(), layer.dir.join(image)])
        .collect()
}

/// Tera's error as one line: its parser's position and explanation, without the wrappers that
/// repeat the template's name.
fn tera_error(err: tera::Error, source: &Path, staged: &str) -> RenderError {
    static POSITION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"-->\s*(\d+):(\d+)").unwrap());
    let mut at = None;
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&err);
    while let Some(error) = cause {
        let text = error.to_string();
        if let Some(position) = POSITION.captures(&text) {
            at = Some((
                position[1].parse().unwrap_or(0),
                position[2].parse().unwrap_or(0),
            ));
            let explained = text
                .lines()
                .filter_map(|line| line.trim().strip_prefix("= "));
            parts.extend(explained.map(str::to_string));
        } else if !text.starts_with("Failed to parse '") && !text.starts_with("Failed to render '")
        {
            parts.push(text.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        cause = error.source();
    }
    if parts.is_empty() {
        parts.push(
            err.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    RenderError::Tera {
        source: source.to_path_buf(),
        at,
        staged: staged.to_string(),
        message: parts.join(": "),
    }
}

/// Parsed templates by source and text: flavors that expand a `.tera` file to the same text
/// parse it once. Cleared when full, so that memory does not grow with the number of flavors.
static TERA_CACHE: LazyLock<Mutex<TeraCache>> = LazyLock::new(Mutex::default);
const TERA_CACHE_ENTRIES: usize = 256;

#[derive(Default)]
struct TeraCache {
    entries: usize,
    by_source: HashMap<PathBuf, HashMap<String, Arc<tera::Tera>>>,
}

fn render_tera(
    text: &str,
    context: &tera::Context,
    source: &Path,
    staged: &str,
) -> anyhow::Result<String> {
    let name = source.display().to_string();
    let cached = TERA_CACHE
        .lock()
        .unwrap()
        .by_source
        .get(source)
        .and_then(|texts| texts.get(text))
        .cloned();
    let tera = match cached {
        Some(tera) => tera,
        None => {
            let mut tera = tera::Tera::default();
            tera.autoescape_on(vec![]);
            // Templates see the flavor's variables only: the environment goes through `layout.env`.
            tera.register_function("get_env", |_: &HashMap<String, tera::Value>| {
                Err(tera::Error::msg(
                    "`get_env` is disabled: use a variable allowed by `layout.env`",
                ))
            });
            tera.add_raw_template(&name, text)
                .map_err(|err| tera_error(err, source, staged))?;
            let tera = Arc::new(tera);
            let mut cache = TERA_CACHE.lock().unwrap();
            if cache.entries >= TERA_CACHE_ENTRIES {
                *cache = TeraCache::default();
            }
            cache.entries += 1;
            cache
                .by_source
                .entry(source.to_path_buf())
                .or_default()
                .insert(text.to_string(), tera.clone());
            tera
        }
    };
    Ok(tera.render(&name, context).map_err(|err| {
        let mut error = tera_error(err, source, staged);
        if let RenderError::Tera { at, message, .. } = &mut error {
            *at = at.or_else(|| runtime_position(text, message));
        }
        error
    })?)
}

/// Where a Tera runtime error (which carries no position) happened: the first tag (`{{ … }}`,
/// `{% … %}`) of `text` that holds a name the message quotes (the variable, function or filter).
fn runtime_position(text: &str, message: &str) -> Option<(usize, usize)> {
    static NAMED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[`']([A-Za-z_][A-Za-z0-9_.]*)[`']").unwrap());
    static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{\{.*?\}\}|\{%.*?%\}").unwrap());
    NAMED.captures_iter(message).find_map(|named| {
        let name = &named[1];
        let word = Regex::new(&format!(r"\b{}\b", regex::escape(name))).ok()?;
        text.lines().enumerate().find_map(|(index, line)| {
            TAG.find_iter(line).find_map(|tag| {
                let found = word.find(tag.as_str())?;
                Some((index + 1, tag.start() + found.start() + 1))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let found: Vec<_> = TOKEN
            .find_iter("a __FOO__ b __ENV_[X_1]__ __init__ ______ __A__B__ __9__")
            .map(|m| m.as_str())
            .collect();
        assert_eq!(found, ["__FOO__", "__ENV_[X_1]__", "__A__B__", "__9__"]);
    }

    #[test]
    fn long_chains_are_abbreviated() {
        let chain = |n: usize| -> Vec<String> { (0..n).map(|i| format!("__F{i}__")).collect() };
        assert_eq!(abbreviated_chain(&chain(2)), "`__F0__` -> `__F1__`");
        assert_eq!(
            abbreviated_chain(&chain(7)),
            "`__F0__` -> `__F1__` -> `__F2__` -> `__F3__` -> `__F4__` -> `__F5__` -> `__F6__`"
        );
        assert_eq!(
            abbreviated_chain(&chain(8)),
            "`__F0__` -> `__F1__` -> `__F2__` -> … 2 more … -> `__F5__` -> `__F6__` -> `__F7__`"
        );
    }

    #[test]
    fn fragment_names() {
        assert!(is_fragment_name("__CEPH_PACKAGES__"));
        assert!(is_fragment_name("__README__.md"));
        assert!(!is_fragment_name("Dockerfile"));
        assert!(!is_fragment_name("__init__.py"));
    }
}
