//! The loader: YAML in, [`Scenario`]s out, or one [`LoadError`] that says
//! `file:line:column: path: what is wrong and what is allowed`.
//!
//! A file holds one or more YAML documents, each a nodekit `Scenario`
//! (`apiVersion: nodekit.dev/v1alpha1`) or a Chainsaw `Test`
//! (`apiVersion: chainsaw.kyverno.io/v1alpha1`, see [`crate::chainsaw`]). Everything is checked
//! before anything runs: every field name (unknown ones are refused with the list of allowed
//! ones; Chainsaw features nodekit does not do are refused by name), every duration (Go syntax,
//! [`crate::duration`]), every `file:` (read relative to the scenario's directory, every
//! document of it), every host a fault, `traffic` or `capture` names, every fault name a `heal`
//! uses, every `(expression)` in `assert`/`error` objects ([`crate::matcher::check_expressions`]).
//!
//! How it works: the YAML is first read into a tree where every node, keys included, carries
//! its line and column (serde-saphyr's [`serde_saphyr::Spanned`], which also handles anchors,
//! merge keys, duplicate keys and the size/depth budget); the tree is then walked by hand, so
//! each message can point at the exact key or value at fault. A missing field is reported at
//! the key of the mapping that lacks it. Errors that have no position in the file (it cannot be
//! read) have line 0 and print as `file: message`.
//!
//! The parts: `yaml` the spanned tree, `text` paths and names, `fields` the walker's
//! state and typed field access, `document` documents and steps, `world` the world and its
//! hosts, `ops` operations and actions, `objects` and `checks` the objects of apply…delete and
//! assert/error, `queries` wait/get/describe/events/podLogs, `exec` script/command, `faults`
//! fault/heal, `traffic` traffic/capture, `discover` finding scenario files.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::Scenario;

mod checks;
mod discover;
mod document;
mod exec;
mod faults;
mod fields;
mod objects;
mod ops;
mod queries;
mod text;
mod traffic;
mod world;
mod yaml;

pub use discover::discover;
/// `*` matches any run of characters and `?` one character (file names, event messages).
pub use text::wildcard;
#[cfg(test)]
pub(crate) use text::dns_label_problem;
pub(crate) use yaml::{Node, Yaml};

use fields::Loader;
use yaml::parse_yaml;

/// Why a file was refused: where (`line` and `column` are 1-based; 0 when the problem has no
/// place in the file), the field's path (`spec.steps[1].try[0].fault.partition.direction`,
/// empty for the document itself) and what is wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
}

impl fmt::Display for LoadError {
    /// `file:line:column: path: message` (the path left out when empty; `line:column` left out
    /// when the error has no place in the file).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Loads every scenario of a file (a file may hold several YAML documents). `file:` references
/// are read relative to the file's directory.
pub fn load_file(path: &Path) -> Result<Vec<Scenario>, LoadError> {
    let text = read_text(path).map_err(|message| LoadError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        path: String::new(),
        message,
    })?;
    load_str(&text, path)
}

/// Loads every scenario of `text` as if it were the file `origin` (used in messages and in
/// [`Scenario::file`]; `file:` references are read relative to its directory).
pub fn load_str(text: &str, origin: &Path) -> Result<Vec<Scenario>, LoadError> {
    with_big_stack(|| load_str_here(text, origin)).unwrap_or_else(|| {
        Err(LoadError {
            file: origin.to_path_buf(),
            line: 1,
            column: 1,
            path: String::new(),
            message: INTERNAL.to_string(),
        })
    })
}

const INTERNAL: &str = "the loader failed on this input (a bug in nodekit: please report it with the file)";

/// Runs `f` on a thread with a large stack: the parser and the walkers recurse once per level
/// of nesting (at most 64, the parser's budget), and a debug build's frames are large; the
/// caller's stack may be small (a test thread's is 2 MiB). `None`: the thread could not be
/// started, or `f` panicked (the panic is contained).
fn with_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    const STACK: usize = 256 << 20;
    std::thread::scope(|scope| {
        let handle =
            std::thread::Builder::new().name("scenario-load".into()).stack_size(STACK).spawn_scoped(scope, f).ok()?;
        handle.join().ok()
    })
}

fn load_str_here(text: &str, origin: &Path) -> Result<Vec<Scenario>, LoadError> {
    let docs = parse_yaml(text).map_err(|e| LoadError {
        file: origin.to_path_buf(),
        line: e.line,
        column: e.column,
        path: String::new(),
        message: e.message,
    })?;
    if docs.is_empty() {
        return Err(LoadError {
            file: origin.to_path_buf(),
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("no scenario in this file; {KINDS_ALLOWED}"),
        });
    }
    let mut out = Vec::with_capacity(docs.len());
    let mut loader = Loader::new(origin);
    for doc in &docs {
        out.push(loader.document(doc)?);
    }
    Ok(out)
}

/// The kinds a scenario file may hold, for messages.
pub(crate) const KINDS_ALLOWED: &str = "allowed: apiVersion nodekit.dev/v1alpha1 with kind Scenario, or apiVersion chainsaw.kyverno.io/v1alpha1 with kind Test";

/// Larger files are refused: a scenario and what it references are small.
const MAX_FILE_BYTES: u64 = 16 << 20;

fn read_text(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("cannot read: not a regular file".to_string());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("cannot read: larger than {} MiB", MAX_FILE_BYTES >> 20));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
}
