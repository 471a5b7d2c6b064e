//! The loader: YAML in, [`Scenario`]s out, or one [`LoadError`] that says
//! `file:line:column: path: what is wrong and what is allowed`.
//!
//! A file holds one or more YAML documents, each a nodekit `Scenario`
//! (`apiVersion: nodekit.dev/v1alpha1`) or a Chainsaw `Test`
//! (`apiVersion: chainsaw.kyverno.io/v1alpha1`, see [`crate::chainsaw`]). Everything is checked
//! before anything runs: every field name (unknown ones are refused with the list of allowed
//! ones; Chainsaw features nodekit does not do are refused by name), every duration (Go syntax,
//! [`crate::duration`]), every `file:` (read relative to the scenario's directory, every
//! document of it), every node name a fault uses, every fault name a `heal` uses, every
//! `(expression)` in `assert`/`error` objects ([`crate::matcher::check_expressions`]).
//!
//! How it works: the YAML is first read into a tree where every node, keys included, carries
//! its line and column (serde-saphyr's [`serde_saphyr::Spanned`], which also handles anchors,
//! merge keys, duplicate keys and the size/depth budget); the tree is then walked by hand, so
//! each message can point at the exact key or value at fault. A missing field is reported at
//! the key of the mapping that lacks it. Errors that have no position in the file (it cannot be
//! read) have line 0 and print as `file: message`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map as JsonMap, Value};

use crate::chainsaw;
use crate::duration;
use crate::model::{
    Action, ApiServerFault, Check, Command, Component, CountRule, Delete, Direction, EventExpectation, Events, Fault,
    FaultKind, Heal, LinkFault, NodeSpec, ObjectQuery, ObjectRef, Operation, Origin, PodLogs, ProxyMode, Resources,
    RuntimeFaults, RuntimeName, Scenario, Script, Step, Timeouts, Wait, WaitFor, WorldSpec,
};

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

/// The scenario files to run: files as given (each must hold a `Scenario` or a `Test`);
/// directories: every `*.yaml` / `*.yml` inside, recursively (hidden entries and symbolic links
/// to directories are not followed), sorted, skipping the files that hold no `Scenario` or
/// `Test` (objects that scenarios reference with `file:`, Chainsaw configurations…).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for path in paths {
        let io_err =
            |message: String| LoadError { file: path.clone(), line: 0, column: 0, path: String::new(), message };
        let meta = std::fs::metadata(path).map_err(|e| io_err(format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk_dir(path, 0, &mut found)?;
            found.sort();
            for file in found {
                if holds_scenario(&file)?.is_ok() {
                    out.push(file);
                }
            }
        } else {
            holds_scenario(path)??;
            out.push(path.clone());
        }
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

fn walk_dir(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io_err =
        |message: String| LoadError { file: dir.to_path_buf(), line: 0, column: 0, path: String::new(), message };
    if depth > 64 {
        return Err(io_err("directories nested more than 64 deep".to_string()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(format!("cannot read directory: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(format!("cannot read directory: {e}")))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| io_err(format!("cannot read directory: {e}")))?;
        if file_type.is_dir() {
            walk_dir(&path, depth + 1, found)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            // A symbolic link counts when it leads to a file.
            if file_type.is_file() || std::fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
                found.push(path);
            }
        }
    }
    Ok(())
}

/// `Ok(Ok(()))` when the file holds a Scenario or Test; `Ok(Err(why))` when it holds none;
/// `Err` when it cannot be read or is not YAML.
fn holds_scenario(path: &Path) -> Result<Result<(), LoadError>, LoadError> {
    let err = |line: usize, column: usize, message: String| LoadError {
        file: path.to_path_buf(),
        line,
        column,
        path: String::new(),
        message,
    };
    let text = read_text(path).map_err(|m| err(0, 0, m))?;
    let docs = with_big_stack(|| parse_yaml(&text))
        .ok_or_else(|| err(1, 1, INTERNAL.to_string()))?
        .map_err(|e| err(e.line, e.column, e.message))?;
    let mut first: Option<(usize, usize, String)> = None;
    for doc in &docs {
        let Yaml::Map(entries) = &doc.v else {
            first.get_or_insert((doc.line, doc.column, "a document that is not a mapping".to_string()));
            continue;
        };
        let get =
            |name: &str| entries.iter().find(|(k, _)| matches!(&k.v, Yaml::Str(s) if s == name)).map(|(k, v)| (k, v));
        let text_of = |e: Option<(&Node, &Node)>| match e {
            Some((_, v)) => match &v.v {
                Yaml::Str(s) => s.clone(),
                _ => String::new(),
            },
            None => String::new(),
        };
        let api_version = text_of(get("apiVersion"));
        let kind = text_of(get("kind"));
        if is_scenario_kind(&api_version, &kind) {
            return Ok(Ok(()));
        }
        let at = get("kind").map(|(k, _)| k).unwrap_or(doc);
        let what = if kind.is_empty() {
            "a document without a kind".to_string()
        } else if api_version.is_empty() {
            format!("kind {kind}")
        } else {
            format!("kind {kind} (apiVersion {api_version})")
        };
        first.get_or_insert((at.line, at.column, what));
    }
    let (line, column, what) = first.unwrap_or((1, 1, "no document".to_string()));
    Ok(Err(err(line, column, format!("not a scenario: this file holds {what}; {KINDS_ALLOWED}"))))
}

/// Whether a document looks like something the loader takes (it may still refuse it, e.g. an
/// unknown version: then the loader says why).
fn is_scenario_kind(api_version: &str, kind: &str) -> bool {
    (kind == "Scenario" && api_version.starts_with("nodekit.dev/"))
        || (kind == "Test" && api_version.starts_with("chainsaw.kyverno.io/"))
}

// ---------------------------------------------------------------------------------------------
// The YAML tree: every node with its position.

/// A YAML node and where it starts (1-based line and column, in characters).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) v: Yaml,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order (merge-key entries after the mapping's own).
    Map(Vec<(Node, Node)>),
}

impl Yaml {
    fn type_name(&self) -> &'static str {
        match self {
            Yaml::Null => "null",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) | Yaml::UInt(_) => "a number",
            Yaml::Float(_) => "a number",
            Yaml::Str(_) => "a string",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar (what Kubernetes' YAML-to-JSON would make of a key).
    fn scalar_text(&self) -> Option<String> {
        Some(match self {
            Yaml::Null => "null".to_string(),
            Yaml::Bool(b) => b.to_string(),
            Yaml::Int(i) => i.to_string(),
            Yaml::UInt(u) => u.to_string(),
            Yaml::Float(f) => f.to_string(),
            Yaml::Str(s) => s.clone(),
            Yaml::Seq(_) | Yaml::Map(_) => return None,
        })
    }
}

mod tree {
    use super::{Node, Yaml};
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_saphyr::Spanned;
    use std::fmt;

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s: Spanned<Yaml> = Spanned::deserialize(d)?;
            Ok(Node {
                v: s.value,
                line: usize::try_from(s.referenced.line()).unwrap_or(usize::MAX),
                column: usize::try_from(s.referenced.column()).unwrap_or(usize::MAX),
            })
        }
    }

    impl<'de> Deserialize<'de> for Yaml {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(AnyVisitor)
        }
    }

    struct AnyVisitor;

    impl<'de> Visitor<'de> for AnyVisitor {
        type Value = Yaml;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any YAML value")
        }
        fn visit_unit<E>(self) -> Result<Yaml, E> {
            Ok(Yaml::Null)
        }
        fn visit_none<E>(self) -> Result<Yaml, E> {
            Ok(Yaml::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
            Yaml::deserialize(d)
        }
        fn visit_bool<E>(self, b: bool) -> Result<Yaml, E> {
            Ok(Yaml::Bool(b))
        }
        fn visit_i64<E>(self, i: i64) -> Result<Yaml, E> {
            Ok(Yaml::Int(i))
        }
        fn visit_u64<E>(self, u: u64) -> Result<Yaml, E> {
            Ok(Yaml::UInt(u))
        }
        fn visit_i128<E>(self, i: i128) -> Result<Yaml, E> {
            Ok(match i64::try_from(i) {
                Ok(i) => Yaml::Int(i),
                Err(_) => Yaml::Float(i as f64),
            })
        }
        fn visit_u128<E>(self, u: u128) -> Result<Yaml, E> {
            Ok(match u64::try_from(u) {
                Ok(u) => Yaml::UInt(u),
                Err(_) => Yaml::Float(u as f64),
            })
        }
        fn visit_f64<E: de::Error>(self, f: f64) -> Result<Yaml, E> {
            if f.is_finite() { Ok(Yaml::Float(f)) } else { Err(E::custom("numbers must be finite")) }
        }
        fn visit_str<E>(self, s: &str) -> Result<Yaml, E> {
            Ok(Yaml::Str(s.to_string()))
        }
        fn visit_string<E>(self, s: String) -> Result<Yaml, E> {
            Ok(Yaml::Str(s))
        }
        fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Yaml, E> {
            match std::str::from_utf8(b) {
                Ok(s) => Ok(Yaml::Str(s.to_string())),
                Err(_) => Err(E::custom("binary values are not supported")),
            }
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<Node>()? {
                items.push(item);
            }
            Ok(Yaml::Seq(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
            let mut entries = Vec::new();
            while let Some(key) = map.next_key::<Node>()? {
                let value = map.next_value::<Node>()?;
                entries.push((key, value));
            }
            Ok(Yaml::Map(entries))
        }
    }
}

/// A YAML syntax (or budget) error.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Every non-empty document of `text`, as trees.
pub(crate) fn parse_yaml(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // YAML 1.2 booleans: only true and false; `y`, `no`, `on`… stay strings.
    options.strict_booleans = true;
    match serde_saphyr::from_str_multiple_with_options::<Node, Vec<Node>>(text, options) {
        Ok(docs) => Ok(docs),
        Err(e) => {
            use serde_saphyr::MessageFormatter;
            let (line, column) = e
                .location()
                .map(|l| (usize::try_from(l.line()).unwrap_or(0), usize::try_from(l.column()).unwrap_or(0)))
                .unwrap_or((0, 0));
            let raw = serde_saphyr::UserMessageFormatter.format_message(e.without_snippet()).into_owned();
            // Control characters (line breaks included) are escaped: one error, one line.
            let clean: String = raw
                .chars()
                .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
                .collect();
            let message = format!("YAML: {clean}");
            // Errors without a position are put at the top of the file.
            let (line, column) = if line == 0 { (1, 1) } else { (line, column) };
            Err(SyntaxError { line, column, message })
        }
    }
}

/// The node as JSON (what the API server sees).
pub(crate) fn to_json(node: &Node) -> Result<Value, (usize, usize, String)> {
    Ok(match &node.v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Int(i) => Value::from(*i),
        Yaml::UInt(u) => Value::from(*u),
        Yaml::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => return Err((node.line, node.column, "numbers must be finite".to_string())),
        },
        Yaml::Str(s) => Value::String(s.clone()),
        Yaml::Seq(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Map(entries) => {
            let mut map = JsonMap::new();
            for (k, v) in entries {
                let Some(key) = k.v.scalar_text() else {
                    return Err((k.line, k.column, "a key must be a string, not a list or a mapping".to_string()));
                };
                map.insert(key, to_json(v)?);
            }
            Value::Object(map)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Paths.

/// `parent.key`, or `parent["odd key"]` for keys that are not plain words.
pub(crate) fn child(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A close allowed name, for "did you mean".
fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    allowed
        .iter()
        .copied()
        .filter(|a| a.to_ascii_lowercase() == lower || edit_distance(&lower, &a.to_ascii_lowercase()) <= 2)
        .min_by_key(|a| edit_distance(&lower, &a.to_ascii_lowercase()))
        .filter(|_| key.chars().count() > 2)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------------------------
// The walker.

/// What kind of document is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Scenario,
    Test,
}

/// Which list of a step an operation is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Try,
    Catch,
    Finally,
    Cleanup,
    /// A Chainsaw Test's `spec.catch`.
    TestCatch,
}

impl Block {
    fn name(self) -> &'static str {
        match self {
            Block::Try => "try",
            Block::Catch | Block::TestCatch => "catch",
            Block::Finally => "finally",
            Block::Cleanup => "cleanup",
        }
    }
}

/// Every action, in the order messages list them.
const ALL_ACTIONS: &[&str] = &[
    "apply", "assert", "command", "create", "delete", "describe", "error", "events", "fault", "get", "heal", "patch",
    "podLogs", "script", "sleep", "update", "wait",
];
/// What a Chainsaw Test may use in `try`.
const TEST_ACTIONS: &[&str] = &[
    "apply", "assert", "command", "create", "delete", "describe", "error", "events", "get", "patch", "podLogs",
    "script", "sleep", "update", "wait",
];
/// What Chainsaw allows in catch, finally and cleanup.
const CATCH_ACTIONS: &[&str] =
    &["command", "delete", "describe", "events", "get", "podLogs", "script", "sleep", "wait"];

/// A value and the key it hangs from (the place to point at when something inside is missing).
#[derive(Clone)]
struct Item<'n> {
    key: Option<&'n Node>,
    node: &'n Node,
    path: String,
}

impl<'n> Item<'n> {
    fn root(node: &'n Node) -> Self {
        Item { key: None, node, path: String::new() }
    }
    /// Where to point when the value as a whole is wrong or lacks something.
    fn anchor(&self) -> &'n Node {
        self.key.unwrap_or(self.node)
    }
    fn is_null(&self) -> bool {
        matches!(self.node.v, Yaml::Null)
    }
}

/// A mapping whose keys have been checked.
struct Fields<'n> {
    item: Item<'n>,
    entries: Vec<(String, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The field, if present and not null.
    fn get(&self, name: &str) -> Option<Item<'n>> {
        self.has(name).filter(|i| !i.is_null())
    }
    /// The field, if present (even if null).
    fn has(&self, name: &str) -> Option<Item<'n>> {
        self.entries.iter().find(|(k, _, _)| k == name).map(|(k, key, node)| Item {
            key: Some(*key),
            node,
            path: child(&self.item.path, k),
        })
    }
    fn path(&self, name: &str) -> String {
        child(&self.item.path, name)
    }
}

pub(crate) struct Loader {
    file: PathBuf,
    dir: PathBuf,
    dialect: Dialect,
    /// The world of the scenario being read (node names, runtime).
    world: Option<WorldSpec>,
    /// Fault names seen so far, with the line that named them.
    faults: Vec<(String, usize)>,
    /// Faults seen so far (named or not).
    fault_count: usize,
    /// A Chainsaw Test's namespace (for `($namespace)`).
    namespace: Option<String>,
}

type R<T> = Result<T, LoadError>;

impl Loader {
    fn new(origin: &Path) -> Self {
        let dir = match origin.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Loader {
            file: origin.to_path_buf(),
            dir,
            dialect: Dialect::Scenario,
            world: None,
            faults: Vec::new(),
            fault_count: 0,
            namespace: None,
        }
    }

    fn err_at(&self, node: &Node, path: &str, message: impl Into<String>) -> LoadError {
        LoadError {
            file: self.file.clone(),
            line: node.line,
            column: node.column,
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Opens a mapping: every key must be in `allowed`; keys in `foreign` are Chainsaw fields
    /// nodekit refuses (or ignores when harmless, see [`chainsaw::foreign_field`]).
    fn fields<'n>(&self, item: &Item<'n>, what: &str, allowed: &[&str], foreign: &[&str]) -> R<Fields<'n>> {
        let Yaml::Map(entries) = &item.node.v else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!(
                    "{what} must be a mapping (found {}); allowed fields: {}",
                    item.node.v.type_name(),
                    allowed.join(", ")
                ),
            ));
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Yaml::Str(name) = &k.v else {
                let shown = k.v.scalar_text().unwrap_or_else(|| k.v.type_name().to_string());
                return Err(self.err_at(
                    k,
                    &item.path,
                    format!("field names are strings, found {shown}; allowed fields: {}", allowed.join(", ")),
                ));
            };
            if allowed.contains(&name.as_str()) {
                out.push((name.clone(), k, v));
                continue;
            }
            let path = child(&item.path, name);
            if foreign.contains(&name.as_str()) {
                match chainsaw::foreign_field(name, v) {
                    Some(message) => return Err(self.err_at(k, &path, message)),
                    None => continue,
                }
            }
            return Err(self.unknown_field(k, &path, name, allowed));
        }
        Ok(Fields { item: item.clone(), entries: out })
    }

    /// Refuses the first of `keys` present in the mapping (in document order) with `message`.
    fn refuse_keys(&self, item: &Item<'_>, keys: &[&str], message: impl Fn(&str) -> String) -> R<()> {
        if let Yaml::Map(entries) = &item.node.v {
            for (k, _) in entries {
                if let Yaml::Str(name) = &k.v
                    && keys.contains(&name.as_str())
                {
                    return Err(self.err_at(k, &child(&item.path, name), message(name)));
                }
            }
        }
        Ok(())
    }

    fn unknown_field(&self, key: &Node, path: &str, name: &str, allowed: &[&str]) -> LoadError {
        let hint = suggest(name, allowed).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
        self.err_at(key, path, format!("unknown field {name:?}{hint}; allowed: {}", allowed.join(", ")))
    }

    fn required<'n>(&self, f: &Fields<'n>, name: &str, why: &str) -> R<Item<'n>> {
        f.get(name).ok_or_else(|| self.err_at(f.item.anchor(), &f.path(name), format!("required: {why}")))
    }

    fn string(&self, item: &Item<'_>) -> R<String> {
        match &item.node.v {
            Yaml::Str(s) => Ok(s.clone()),
            other => Err(self.err_at(item.node, &item.path, format!("must be a string, found {}", other.type_name()))),
        }
    }

    fn nonempty_string(&self, item: &Item<'_>) -> R<String> {
        let s = self.string(item)?;
        if s.trim().is_empty() {
            return Err(self.err_at(item.node, &item.path, "must not be empty"));
        }
        Ok(s)
    }

    fn opt_string(&self, f: &Fields<'_>, name: &str) -> R<Option<String>> {
        f.get(name).map(|i| self.string(&i)).transpose()
    }

    fn opt_nonempty(&self, f: &Fields<'_>, name: &str) -> R<Option<String>> {
        f.get(name).map(|i| self.nonempty_string(&i)).transpose()
    }

    /// A scalar as text (numbers and booleans as written by YAML: `3`, `true`).
    fn scalar_string(&self, item: &Item<'_>) -> R<String> {
        match &item.node.v {
            Yaml::Null | Yaml::Seq(_) | Yaml::Map(_) => {
                Err(self.err_at(item.node, &item.path, format!("must be a string, found {}", item.node.v.type_name())))
            }
            other => Ok(other.scalar_text().unwrap_or_default()),
        }
    }

    fn boolean(&self, item: &Item<'_>) -> R<bool> {
        match &item.node.v {
            Yaml::Bool(b) => Ok(*b),
            other => {
                Err(self.err_at(item.node, &item.path, format!("must be true or false, found {}", other.type_name())))
            }
        }
    }

    fn opt_bool(&self, f: &Fields<'_>, name: &str) -> R<Option<bool>> {
        f.get(name).map(|i| self.boolean(&i)).transpose()
    }

    fn integer(&self, item: &Item<'_>) -> R<i64> {
        match &item.node.v {
            Yaml::Int(i) => Ok(*i),
            Yaml::UInt(u) => i64::try_from(*u).map_err(|_| self.err_at(item.node, &item.path, "number too large")),
            other => {
                Err(self.err_at(item.node, &item.path, format!("must be a whole number, found {}", other.type_name())))
            }
        }
    }

    fn unsigned(&self, item: &Item<'_>, min: u64, max: u64) -> R<u64> {
        let out_of_range = || self.err_at(item.node, &item.path, format!("must be a whole number from {min} to {max}"));
        match &item.node.v {
            Yaml::UInt(u) if (min..=max).contains(u) => Ok(*u),
            Yaml::UInt(_) | Yaml::Int(_) => Err(out_of_range()),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("must be a whole number from {min} to {max}, found {}", other.type_name()),
            )),
        }
    }

    fn number(&self, item: &Item<'_>) -> R<f64> {
        match &item.node.v {
            Yaml::Int(i) => Ok(*i as f64),
            Yaml::UInt(u) => Ok(*u as f64),
            Yaml::Float(f) => Ok(*f),
            other => Err(self.err_at(item.node, &item.path, format!("must be a number, found {}", other.type_name()))),
        }
    }

    fn list<'n>(&self, item: &Item<'n>, what: &str) -> R<Vec<Item<'n>>> {
        match &item.node.v {
            Yaml::Seq(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, node)| Item { key: None, node, path: index(&item.path, i) })
                .collect()),
            Yaml::Null => Ok(Vec::new()),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("must be a list of {what}, found {}", other.type_name()),
            )),
        }
    }

    fn string_list(&self, item: &Item<'_>) -> R<Vec<String>> {
        self.list(item, "strings")?.iter().map(|i| self.scalar_string(i)).collect()
    }

    fn string_map(&self, item: &Item<'_>) -> R<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        let Yaml::Map(entries) = &item.node.v else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!("must be a mapping of strings, found {}", item.node.v.type_name()),
            ));
        };
        for (k, v) in entries {
            let Some(key) = k.v.scalar_text().filter(|_| !matches!(k.v, Yaml::Null)) else {
                return Err(self.err_at(k, &item.path, "keys must be strings"));
            };
            let value = Item { key: Some(k), node: v, path: child(&item.path, &key) };
            out.insert(key, self.scalar_string(&value)?);
        }
        Ok(out)
    }

    fn json(&self, item: &Item<'_>) -> R<Value> {
        to_json(item.node).map_err(|(line, column, message)| LoadError {
            file: self.file.clone(),
            line,
            column,
            path: item.path.clone(),
            message,
        })
    }

    fn mapping_json(&self, item: &Item<'_>, what: &str) -> R<Value> {
        match &item.node.v {
            Yaml::Map(_) => self.json(item),
            Yaml::Null => Ok(Value::Object(JsonMap::new())),
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("{what} must be a mapping, found {}", other.type_name()),
            )),
        }
    }

    /// A Go duration; `positive`: zero is refused too (timeouts, periods).
    fn duration(&self, item: &Item<'_>, positive: bool) -> R<Duration> {
        let text = match &item.node.v {
            Yaml::Str(s) => s.clone(),
            Yaml::Int(_) | Yaml::UInt(_) | Yaml::Float(_) => {
                let shown = item.node.v.scalar_text().unwrap_or_default();
                return Err(self.err_at(
                    item.node,
                    &item.path,
                    format!("a duration needs a unit: write \"{shown}s\" for seconds; {}", duration::SYNTAX),
                ));
            }
            other => {
                return Err(self.err_at(
                    item.node,
                    &item.path,
                    format!("must be a duration, found {}; {}", other.type_name(), duration::SYNTAX),
                ));
            }
        };
        let d = duration::parse(&text).map_err(|m| self.err_at(item.node, &item.path, m))?;
        if positive && d.is_zero() {
            return Err(self.err_at(item.node, &item.path, format!("must be longer than 0 (found {text:?})")));
        }
        Ok(d)
    }

    fn opt_duration(&self, f: &Fields<'_>, name: &str, positive: bool) -> R<Option<Duration>> {
        f.get(name).map(|i| self.duration(&i, positive)).transpose()
    }

    fn dns_label(&self, item: &Item<'_>, what: &str) -> R<String> {
        let s = self.string(item)?;
        if let Some(why) = dns_label_problem(&s) {
            return Err(self.err_at(item.node, &item.path, format!("{what} {s:?} is not valid: {why}")));
        }
        Ok(s)
    }

    // -----------------------------------------------------------------------------------------
    // Documents.

    fn document(&mut self, doc: &Node) -> R<Scenario> {
        self.world = None;
        self.faults.clear();
        self.fault_count = 0;
        self.namespace = None;
        let root = Item::root(doc);
        if !matches!(doc.v, Yaml::Map(_)) {
            return Err(self.err_at(
                doc,
                "",
                format!("a scenario is a mapping with apiVersion, kind, metadata and spec; {KINDS_ALLOWED}"),
            ));
        }
        let top = self.fields(&root, "a scenario", &["apiVersion", "kind", "metadata", "spec"], &[])?;
        self.dialect = self.kind(&top)?;
        let metadata = self.required(&top, "metadata", "metadata.name names the scenario")?;
        let meta = self.fields(&metadata, "metadata", &["name", "labels", "annotations", "creationTimestamp"], &[])?;
        let name_item = self.required(&meta, "name", "the scenario's name")?;
        let name = self.dns_label(&name_item, "name")?;
        if let Some(labels) = meta.get("labels") {
            self.string_map(&labels)?;
        }
        if let Some(annotations) = meta.get("annotations") {
            self.string_map(&annotations)?;
        }
        if let Some(ts) = meta.get("creationTimestamp") {
            return Err(self.err_at(ts.node, &ts.path, "must be null or left out"));
        }
        let spec_item = self.required(&top, "spec", "spec.steps holds what the scenario does")?;
        match self.dialect {
            Dialect::Scenario => self.scenario_spec(&spec_item, name),
            Dialect::Test => self.test_spec(&spec_item, name, &name_item),
        }
    }

    fn kind(&self, top: &Fields<'_>) -> R<Dialect> {
        let api = top.has("apiVersion");
        let kind = top.has("kind");
        let Some(api) = api else {
            return Err(self.err_at(top.item.node, "apiVersion", format!("required; {KINDS_ALLOWED}")));
        };
        let Some(kind) = kind else {
            return Err(self.err_at(top.item.node, "kind", format!("required; {KINDS_ALLOWED}")));
        };
        let api_s = self.string(&api)?;
        let kind_s = self.string(&kind)?;
        match (api_s.as_str(), kind_s.as_str()) {
            ("nodekit.dev/v1alpha1", "Scenario") => Ok(Dialect::Scenario),
            ("chainsaw.kyverno.io/v1alpha1", "Test") => Ok(Dialect::Test),
            ("chainsaw.kyverno.io/v1alpha2", "Test") => Err(self.err_at(
                api.node,
                &api.path,
                "Chainsaw's v1alpha2 has no Test kind (it defines only Configuration); write the test as chainsaw.kyverno.io/v1alpha1",
            )),
            (_, "Scenario") => Err(self.err_at(
                api.node,
                &api.path,
                format!("unknown apiVersion {api_s:?} for kind Scenario; allowed: nodekit.dev/v1alpha1"),
            )),
            (a, "Test") if a.starts_with("chainsaw.kyverno.io/") => Err(self.err_at(
                api.node,
                &api.path,
                format!("unknown apiVersion {api_s:?} for kind Test; allowed: chainsaw.kyverno.io/v1alpha1"),
            )),
            ("chainsaw.kyverno.io/v1alpha1", "StepTemplate") => Err(self.err_at(
                kind.node,
                &kind.path,
                "not supported by nodekit (Chainsaw step templates); write the steps into the test",
            )),
            (a, "Configuration") if a.starts_with("chainsaw.kyverno.io/") => Err(self.err_at(
                kind.node,
                &kind.path,
                format!("a Chainsaw Configuration is not a test (nodekit takes its settings from the command line); {KINDS_ALLOWED}"),
            )),
            _ => Err(self.err_at(
                kind.node,
                &kind.path,
                format!("kind {kind_s} (apiVersion {api_s}) is not a scenario; {KINDS_ALLOWED}"),
            )),
        }
    }

    fn scenario_spec(&mut self, spec_item: &Item<'_>, name: String) -> R<Scenario> {
        let spec = self.fields(
            spec_item,
            "spec",
            &["description", "reproduces", "world", "timeouts", "steps"],
            chainsaw::TEST_SPEC_FOREIGN,
        )?;
        let description = self.opt_string(&spec, "description")?;
        let reproduces = match spec.get("reproduces") {
            Some(i) => self.list(&i, "strings")?.iter().map(|i| self.nonempty_string(i)).collect::<R<Vec<_>>>()?,
            None => Vec::new(),
        };
        let world = match spec.get("world") {
            Some(w) => self.world(&w)?,
            None => chainsaw::default_world(),
        };
        self.world = Some(world.clone());
        let timeouts = match spec.get("timeouts") {
            Some(t) => self.timeouts(&t, Timeouts::default())?,
            None => Timeouts::default(),
        };
        let steps_item = self.required(&spec, "steps", "a scenario has at least one step")?;
        let steps = self.steps(&steps_item, &timeouts, &[])?;
        Ok(Scenario {
            name,
            file: self.file.clone(),
            description,
            reproduces,
            origin: Origin::Scenario,
            world,
            timeouts,
            steps,
        })
    }

    fn test_spec(&mut self, spec_item: &Item<'_>, name: String, name_item: &Item<'_>) -> R<Scenario> {
        self.refuse_keys(spec_item, &["world", "reproduces"], chainsaw::nodekit_addition)?;
        let spec = self.fields(
            spec_item,
            "spec",
            &["description", "timeouts", "steps", "namespace", "catch", "concurrent", "failFast", "skip", "skipDelete"],
            chainsaw::TEST_SPEC_FOREIGN,
        )?;
        for ignored in ["concurrent", "failFast"] {
            self.opt_bool(&spec, ignored)?;
        }
        for harmless_when_false in ["skip", "skipDelete"] {
            if let Some(i) = spec.get(harmless_when_false)
                && self.boolean(&i)?
            {
                return Err(self.err_at(i.anchor(), &i.path, chainsaw::refused_true(harmless_when_false)));
            }
        }
        let description = self.opt_string(&spec, "description")?;
        let world = chainsaw::default_world();
        self.world = Some(world.clone());
        let timeouts = match spec.get("timeouts") {
            Some(t) => self.timeouts(&t, Timeouts::default())?,
            None => Timeouts::default(),
        };
        let namespace = match spec.get("namespace") {
            Some(ns) => {
                let s = self.dns_label(&ns, "namespace")?;
                Some((s, ns.node.line))
            }
            None => None,
        };
        self.namespace =
            Some(namespace.as_ref().map(|(n, _)| n.clone()).unwrap_or_else(|| chainsaw::namespace_for(&name)));
        let test_catch = match spec.get("catch") {
            Some(c) => self.operations(&c, Block::TestCatch)?,
            None => Vec::new(),
        };
        let steps_item = self.required(&spec, "steps", "a test has at least one step")?;
        let steps = self.steps(&steps_item, &timeouts, &test_catch)?;
        let mut scenario = Scenario {
            name,
            file: self.file.clone(),
            description,
            reproduces: Vec::new(),
            origin: Origin::ChainsawTest,
            world,
            timeouts,
            steps,
        };
        chainsaw::set_namespace(&mut scenario, namespace, name_item.node.line);
        Ok(scenario)
    }

    fn world(&self, item: &Item<'_>) -> R<WorldSpec> {
        let f = self.fields(
            item,
            "world",
            &["nodes", "runtime", "proxyMode", "kubeletConfig", "proxyConfig", "images", "timing"],
            &[],
        )?;
        let mut world = chainsaw::default_world();
        if let Some(nodes) = f.get("nodes") {
            world.nodes = self.nodes(&nodes)?;
        }
        if let Some(rt) = f.get("runtime") {
            world.runtime = Some(match self.string(&rt)?.as_str() {
                "fake-cri" => RuntimeName::FakeCri,
                "containerd" => RuntimeName::Containerd,
                other => {
                    return Err(self.err_at(
                        rt.node,
                        &rt.path,
                        format!("unknown runtime {other:?}; allowed: fake-cri, containerd"),
                    ));
                }
            });
        }
        if let Some(pm) = f.get("proxyMode") {
            world.proxy_mode = match self.string(&pm)?.as_str() {
                "nftables" => ProxyMode::Nftables,
                "iptables" => ProxyMode::Iptables,
                other => {
                    return Err(self.err_at(
                        pm.node,
                        &pm.path,
                        format!("unknown proxy mode {other:?}; allowed: nftables, iptables"),
                    ));
                }
            };
        }
        if let Some(kc) = f.get("kubeletConfig") {
            world.kubelet_config = self.mapping_json(&kc, "kubeletConfig (KubeletConfiguration fields)")?;
        }
        if let Some(pc) = f.get("proxyConfig") {
            world.proxy_config = self.mapping_json(&pc, "proxyConfig (KubeProxyConfiguration fields)")?;
        }
        if let Some(images) = f.get("images") {
            let list = self.list(&images, "images")?;
            if !list.is_empty() {
                return Err(self.err_at(
                    images.anchor(),
                    &images.path,
                    "serving image archives is not available yet; use the built-in images (nodekit.local/workload:1.0, registry.k8s.io/e2e-test-images/agnhost:2.53, registry.k8s.io/pause:3.10)",
                ));
            }
        }
        if let Some(timing) = f.get("timing") {
            let t = self.fields(&timing, "timing", &["nodeMonitorGracePeriod"], &[])?;
            if let Some(g) = self.opt_duration(&t, "nodeMonitorGracePeriod", true)? {
                world.node_monitor_grace_period = g;
            }
        }
        Ok(world)
    }

    fn nodes(&self, item: &Item<'_>) -> R<Vec<NodeSpec>> {
        const WHY: &str = "a world has 1 to 8 worker nodes";
        match &item.node.v {
            Yaml::Int(_) | Yaml::UInt(_) => {
                let n = match item.node.v {
                    Yaml::UInt(n) if (1..=8).contains(&n) => n,
                    _ => {
                        let shown = item.node.v.scalar_text().unwrap_or_default();
                        return Err(self.err_at(
                            item.node,
                            &item.path,
                            format!("{shown} nodes: {WHY} (a count from 1 to 8, or a list of names)"),
                        ));
                    }
                };
                Ok((0..n)
                    .map(|i| NodeSpec {
                        name: chainsaw::node_name(i as usize),
                        kubelet_config: Value::Object(JsonMap::new()),
                    })
                    .collect())
            }
            Yaml::Seq(list) => {
                if list.is_empty() || list.len() > 8 {
                    return Err(self.err_at(item.node, &item.path, format!("{} nodes: {WHY}", list.len())));
                }
                let mut out: Vec<NodeSpec> = Vec::with_capacity(list.len());
                for (i, node) in list.iter().enumerate() {
                    let el = Item { key: None, node, path: index(&item.path, i) };
                    let (name_item, kubelet_config) = match &node.v {
                        Yaml::Str(_) => (el.clone(), Value::Object(JsonMap::new())),
                        Yaml::Map(_) => {
                            let f = self.fields(&el, "a node", &["name", "kubeletConfig"], &[])?;
                            let name = self.required(&f, "name", "each node has a name")?;
                            let kc = match f.get("kubeletConfig") {
                                Some(kc) => self.mapping_json(&kc, "kubeletConfig (KubeletConfiguration fields)")?,
                                None => Value::Object(JsonMap::new()),
                            };
                            (name, kc)
                        }
                        other => {
                            return Err(self.err_at(
                                node,
                                &el.path,
                                format!("a node is a name or {{name, kubeletConfig}}, found {}", other.type_name()),
                            ));
                        }
                    };
                    let name = self.dns_label(&name_item, "node name")?;
                    if name == "cp" {
                        return Err(self.err_at(
                            name_item.node,
                            &name_item.path,
                            "\"cp\" names the control-plane host; choose another node name",
                        ));
                    }
                    if out.iter().any(|n| n.name == name) {
                        return Err(self.err_at(
                            name_item.node,
                            &name_item.path,
                            format!("node {name:?} is listed twice"),
                        ));
                    }
                    out.push(NodeSpec { name, kubelet_config });
                }
                Ok(out)
            }
            other => Err(self.err_at(
                item.node,
                &item.path,
                format!("nodes is a count from 1 to 8 or a list of names, found {}", other.type_name()),
            )),
        }
    }

    fn timeouts(&self, item: &Item<'_>, base: Timeouts) -> R<Timeouts> {
        let f = self.fields(item, "timeouts", &["apply", "assert", "cleanup", "delete", "error", "exec"], &[])?;
        let mut t = base;
        for (name, slot) in [
            ("apply", &mut t.apply),
            ("assert", &mut t.assert),
            ("cleanup", &mut t.cleanup),
            ("delete", &mut t.delete),
            ("error", &mut t.error),
            ("exec", &mut t.exec),
        ] {
            if let Some(d) = self.opt_duration(&f, name, true)? {
                *slot = d;
            }
        }
        Ok(t)
    }

    fn steps(&mut self, item: &Item<'_>, timeouts: &Timeouts, test_catch: &[Operation]) -> R<Vec<Step>> {
        let list = self.list(item, "steps")?;
        if list.is_empty() {
            return Err(self.err_at(item.anchor(), &item.path, "required: at least one step"));
        }
        let mut steps = Vec::with_capacity(list.len());
        for (i, el) in list.iter().enumerate() {
            steps.push(self.step(el, i, timeouts, test_catch)?);
        }
        Ok(steps)
    }

    fn step(&mut self, item: &Item<'_>, i: usize, timeouts: &Timeouts, test_catch: &[Operation]) -> R<Step> {
        let f = self.fields(
            item,
            "a step",
            &["name", "description", "timeouts", "try", "catch", "finally", "cleanup"],
            chainsaw::STEP_FOREIGN,
        )?;
        let name = match f.get("name") {
            Some(n) => self.nonempty_string(&n)?,
            None => format!("step-{}", i + 1),
        };
        let description = self.opt_string(&f, "description")?;
        let timeouts = match f.get("timeouts") {
            Some(t) => self.timeouts(&t, *timeouts)?,
            None => *timeouts,
        };
        let mut blocks: [Vec<Operation>; 4] = Default::default();
        for (slot, (key, block)) in blocks.iter_mut().zip([
            ("try", Block::Try),
            ("catch", Block::Catch),
            ("finally", Block::Finally),
            ("cleanup", Block::Cleanup),
        ]) {
            if let Some(ops) = f.get(key) {
                *slot = self.operations(&ops, block)?;
            }
        }
        let [try_, mut catch, finally, cleanup] = blocks;
        if try_.is_empty() && catch.is_empty() && finally.is_empty() && cleanup.is_empty() {
            return Err(self.err_at(
                item.node,
                &f.path("try"),
                "required: a step has operations in try (or catch, finally, cleanup)",
            ));
        }
        if !test_catch.is_empty() {
            // Chainsaw runs the test's catch before the step's.
            let mut all = test_catch.to_vec();
            all.append(&mut catch);
            catch = all;
        }
        Ok(Step { name, description, timeouts, try_, catch, finally, cleanup })
    }

    fn operations(&mut self, item: &Item<'_>, block: Block) -> R<Vec<Operation>> {
        let list = self.list(item, "operations")?;
        let mut out = Vec::with_capacity(list.len());
        for el in &list {
            out.push(self.operation(el, block)?);
        }
        Ok(out)
    }

    fn operation(&mut self, item: &Item<'_>, block: Block) -> R<Operation> {
        let (shared, actions): (&[&str], &[&str]) = match (block, self.dialect) {
            (Block::Try, Dialect::Scenario) => (&["description", "continueOnError"], ALL_ACTIONS),
            (Block::Try, Dialect::Test) => (&["description", "continueOnError"], TEST_ACTIONS),
            _ => (&["description"], CATCH_ACTIONS),
        };
        let allowed_text = || format!("allowed: {} and one action of {}", shared.join(", "), actions.join(", "));
        let Yaml::Map(entries) = &item.node.v else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!(
                    "an operation is a mapping with one action, found {}; {}",
                    item.node.v.type_name(),
                    allowed_text()
                ),
            ));
        };
        let mut found: Vec<(&str, &Node, &Node)> = Vec::new();
        let mut description = None;
        let mut continue_on_error = false;
        for (k, v) in entries {
            let Yaml::Str(key) = &k.v else {
                let shown = k.v.scalar_text().unwrap_or_else(|| k.v.type_name().to_string());
                return Err(self.err_at(k, &item.path, format!("unknown operation key {shown}; {}", allowed_text())));
            };
            let path = child(&item.path, key);
            let field = Item { key: Some(k), node: v, path: path.clone() };
            if shared.contains(&key.as_str()) {
                if !field.is_null() {
                    match key.as_str() {
                        "description" => description = Some(self.string(&field)?),
                        _ => continue_on_error = self.boolean(&field)?,
                    }
                }
                continue;
            }
            if actions.contains(&key.as_str()) {
                if !found.is_empty() {
                    let mut names: Vec<&str> = found.iter().map(|(n, _, _)| *n).collect();
                    names.push(key);
                    return Err(self.err_at(
                        k,
                        &path,
                        format!("an operation must have exactly one action, found {}", and_list(&names)),
                    ));
                }
                found.push((key.as_str(), k, v));
                continue;
            }
            let message = match key.as_str() {
                "proxy" => "Chainsaw's proxy operation is not supported by nodekit".to_string(),
                "compiler" => chainsaw::foreign_field("compiler", v).unwrap_or_default(),
                "fault" | "heal" if self.dialect == Dialect::Test => chainsaw::nodekit_addition(key),
                "continueOnError" => format!(
                    "continueOnError is not allowed in {} (Chainsaw runs every operation there); {}",
                    block.name(),
                    allowed_text()
                ),
                k if ALL_ACTIONS.contains(&k) => {
                    format!("{k} is not allowed in {}; allowed there: {}", block.name(), CATCH_ACTIONS.join(", "))
                }
                k => {
                    let mut names: Vec<&str> = shared.to_vec();
                    names.extend_from_slice(actions);
                    let hint = suggest(k, &names).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
                    format!("unknown operation key {k:?}{hint}; {}", allowed_text())
                }
            };
            if message.is_empty() {
                continue;
            }
            return Err(self.err_at(k, &path, message));
        }
        let Some((action_key, key_node, value)) = found.first().copied() else {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!("an operation must have exactly one action, found none; {}", allowed_text()),
            ));
        };
        let action_item = Item { key: Some(key_node), node: value, path: child(&item.path, action_key) };
        let (action, timeout) = self.action(action_key, &action_item)?;
        Ok(Operation { description, continue_on_error, timeout, line: item.node.line, action })
    }

    fn action(&mut self, key: &str, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        Ok(match key {
            "apply" | "create" | "patch" | "update" => {
                let (res, timeout) = self.resources(item, key)?;
                let action = match key {
                    "apply" => Action::Apply(res),
                    "create" => Action::Create(res),
                    "patch" => Action::Patch(res),
                    _ => Action::Update(res),
                };
                (action, timeout)
            }
            "assert" | "error" => {
                let (check, timeout) = self.check(item, key)?;
                let action = if key == "assert" { Action::Assert(check) } else { Action::Error(check) };
                (action, timeout)
            }
            "delete" => self.delete(item)?,
            "wait" => self.wait(item)?,
            "sleep" => {
                let f = self.fields(item, "sleep", &["duration"], &[])?;
                let d = self.required(&f, "duration", "how long to sleep, like \"2s\"")?;
                (Action::Sleep(self.duration(&d, false)?), None)
            }
            "script" => self.script(item)?,
            "command" => self.command(item)?,
            "events" => self.events(item)?,
            "podLogs" => self.pod_logs(item)?,
            "describe" | "get" => {
                let extra: &[&str] = if key == "describe" { &["showEvents"] } else { &["format"] };
                let (q, timeout) = self.query(item, key, extra)?;
                (if key == "describe" { Action::Describe(q) } else { Action::Get(q) }, timeout)
            }
            "fault" => (Action::Fault(self.fault(item)?), None),
            "heal" => (Action::Heal(self.heal(item)?), None),
            other => {
                return Err(self.err_at(
                    item.anchor(),
                    &item.path,
                    format!("unknown action {other:?}; allowed: {}", ALL_ACTIONS.join(", ")),
                ));
            }
        })
    }

    // -----------------------------------------------------------------------------------------
    // Objects.

    /// `file` or `resource` (exactly one).
    fn file_or_resource<'n>(&self, f: &Fields<'n>, what: &str) -> R<(Item<'n>, bool)> {
        match (f.get("file"), f.get("resource")) {
            (Some(file), None) => Ok((file, true)),
            (None, Some(res)) => Ok((res, false)),
            (Some(_), Some(res)) => {
                Err(self.err_at(res.anchor(), &res.path, format!("{what} takes file or resource, not both")))
            }
            (None, None) => Err(self.err_at(
                f.item.anchor(),
                &f.item.path,
                format!("required: file (a YAML file next to the scenario) or resource (an inline object) for {what}"),
            )),
        }
    }

    fn resources(&self, item: &Item<'_>, what: &str) -> R<(Resources, Option<Duration>)> {
        let foreign = if what == "patch" { chainsaw::PATCH_FOREIGN } else { chainsaw::RESOURCE_FOREIGN };
        let f = self.fields(item, what, &["file", "resource", "timeout"], foreign)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let (src, is_file) = self.file_or_resource(&f, what)?;
        let need_name = matches!(what, "patch" | "update");
        let objects = if is_file {
            let file_name = self.string(&src)?;
            let docs = self.read_objects(&src, &file_name)?;
            let mut out = Vec::with_capacity(docs.len());
            for (i, (doc, value)) in docs.iter().enumerate() {
                self.check_object_in_file(&src, &file_name, i, doc, need_name, what)?;
                out.push(value.clone());
            }
            (out, file_name)
        } else {
            let value = self.inline_object(&src, need_name, what)?;
            (vec![value], "inline".to_string())
        };
        Ok((Resources { objects: objects.0, source: objects.1 }, timeout))
    }

    /// The problem with an object to send to the API server, if any: (node at fault, path
    /// below the object, message).
    fn object_problem<'n>(
        &self,
        node: &'n Node,
        need_name: bool,
        what: &str,
        expected: bool,
    ) -> Option<(&'n Node, String, String)> {
        let Yaml::Map(entries) = &node.v else {
            return Some((node, String::new(), format!("an object is a mapping, found {}", node.v.type_name())));
        };
        let get = |name: &str| entries.iter().find(|(k, _)| matches!(&k.v, Yaml::Str(s) if s == name));
        for field in ["apiVersion", "kind"] {
            match get(field) {
                None => {
                    return Some((
                        node,
                        field.to_string(),
                        "required: every object needs apiVersion and kind".to_string(),
                    ));
                }
                Some((_, v)) => match &v.v {
                    Yaml::Str(s) if !s.is_empty() => {}
                    other => {
                        return Some((
                            v,
                            field.to_string(),
                            format!("must be a non-empty string, found {}", other.type_name()),
                        ));
                    }
                },
            }
        }
        if expected {
            return None;
        }
        let meta = get("metadata");
        let (has_name, has_generate) = match meta {
            Some((_, m)) => match &m.v {
                Yaml::Map(me) => {
                    let has = |n: &str| {
                        me.iter().any(|(k, v)| {
                            matches!(&k.v, Yaml::Str(s) if s == n) && matches!(&v.v, Yaml::Str(s) if !s.is_empty())
                        })
                    };
                    (has("name"), has("generateName"))
                }
                other => {
                    return Some((m, "metadata".to_string(), format!("must be a mapping, found {}", other.type_name())));
                }
            },
            None => (false, false),
        };
        if what != "delete" && need_name && !has_name {
            return Some((
                node,
                "metadata.name".to_string(),
                format!("required: {what} needs the name of an existing object"),
            ));
        }
        if what != "delete" && !has_name && !has_generate {
            return Some((
                node,
                "metadata.name".to_string(),
                format!("required: every object to {what} needs metadata.name (or metadata.generateName)"),
            ));
        }
        // Templating: nothing in an applied object is evaluated.
        self.template_problem(node, String::new())
    }

    /// Chainsaw would template `(…)` keys and `($binding)` values; nodekit sends objects as
    /// written (a Chainsaw Test's `($namespace)` is the one value it replaces).
    fn template_problem<'n>(&self, node: &'n Node, path: String) -> Option<(&'n Node, String, String)> {
        match &node.v {
            Yaml::Map(entries) => {
                for (k, v) in entries {
                    let key = k.v.scalar_text().unwrap_or_default();
                    let p = child(&path, &key);
                    if key.starts_with('(') && key.ends_with(')') {
                        return Some((k, p, chainsaw::templating(self.dialect == Dialect::Test)));
                    }
                    if let Some(found) = self.template_problem(v, p) {
                        return Some(found);
                    }
                }
                None
            }
            Yaml::Seq(items) => items.iter().enumerate().find_map(|(i, n)| self.template_problem(n, index(&path, i))),
            Yaml::Str(s) if s.starts_with("($") && s.ends_with(')') => {
                if self.dialect == Dialect::Test && s == "($namespace)" {
                    None
                } else {
                    Some((node, path, chainsaw::templating(self.dialect == Dialect::Test)))
                }
            }
            _ => None,
        }
    }

    /// Where to point for a problem with an inline object: the node inside it, or the
    /// `resource:` key when the object as a whole is at fault.
    fn inline_at<'n>(src: &Item<'n>, node: &'n Node) -> &'n Node {
        if std::ptr::eq(node, src.node) { src.anchor() } else { node }
    }

    fn inline_object(&self, src: &Item<'_>, need_name: bool, what: &str) -> R<Value> {
        if let Some((node, sub, message)) = self.object_problem(src.node, need_name, what, false) {
            return Err(self.err_at(Self::inline_at(src, node), &join_path(&src.path, &sub), message));
        }
        self.json(src)
    }

    fn check_object_in_file(
        &self,
        src: &Item<'_>,
        file_name: &str,
        i: usize,
        doc: &Node,
        need_name: bool,
        what: &str,
    ) -> R<()> {
        let expected = matches!(what, "assert" | "error");
        if let Some((node, sub, message)) = self.object_problem(doc, need_name, what, expected) {
            let sub = if sub.is_empty() { String::new() } else { format!(" {sub}") };
            return Err(self.err_at(
                src.node,
                &src.path,
                format!("{file_name}:{}:{} (document {}){sub}: {message}", node.line, node.column, i + 1),
            ));
        }
        Ok(())
    }

    /// The documents of a `file:` (relative to the scenario's directory; a `*` or `?` in the
    /// file name matches several files, read in name order).
    fn read_objects(&self, src: &Item<'_>, name: &str) -> R<Vec<(Node, Value)>> {
        let at = |message: String| self.err_at(src.node, &src.path, message);
        if name.trim().is_empty() {
            return Err(at("must not be empty".to_string()));
        }
        if name.contains("://") {
            return Err(at(format!(
                "{name}: not supported by nodekit (Chainsaw downloads URLs); put the file next to the scenario"
            )));
        }
        if name.starts_with('(') {
            return Err(at(format!(
                "{name}: not supported by nodekit (Chainsaw expressions in file); write the file's path"
            )));
        }
        let rel = Path::new(name);
        let full = if rel.is_absolute() { rel.to_path_buf() } else { self.dir.join(rel) };
        let files = if name.contains(['*', '?', '[']) {
            self.glob(&full, name).map_err(at)?
        } else {
            vec![(full, name.to_string())]
        };
        let mut out = Vec::new();
        for (path, shown) in files {
            let text = read_text(&path).map_err(|m| at(format!("{shown}: {m}")))?;
            let docs = parse_yaml(&text).map_err(|e| at(format!("{shown}:{}:{}: {}", e.line, e.column, e.message)))?;
            for doc in docs {
                let value = to_json(&doc).map_err(|(l, c, m)| at(format!("{shown}:{l}:{c}: {m}")))?;
                out.push((doc, value));
            }
        }
        if out.is_empty() {
            return Err(at(format!("{name}: holds no objects")));
        }
        Ok(out)
    }

    fn glob(&self, full: &Path, name: &str) -> Result<Vec<(PathBuf, String)>, String> {
        let pattern = full.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_else(|| self.dir.clone());
        if dir.to_string_lossy().contains(['*', '?', '[']) || pattern.contains('[') {
            return Err(format!(
                "{name}: only * and ? in the file name are supported, not in directories and not [...]"
            ));
        }
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("{name}: cannot read directory {}: {e}", dir.display()))?;
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if wildcard(&pattern, &file_name) && entry.path().is_file() {
                let shown = Path::new(name).with_file_name(&file_name).to_string_lossy().into_owned();
                found.push((entry.path(), shown));
            }
        }
        found.sort();
        if found.is_empty() {
            return Err(format!("{name}: no file matches"));
        }
        Ok(found)
    }

    fn check(&self, item: &Item<'_>, what: &str) -> R<(Check, Option<Duration>)> {
        let allowed: &[&str] = if what == "assert" && self.dialect == Dialect::Scenario {
            &["file", "resource", "timeout", "holdFor"]
        } else {
            &["file", "resource", "timeout"]
        };
        if !allowed.contains(&"holdFor") {
            self.refuse_keys(item, &["holdFor"], |_| {
                if what == "error" {
                    "holdFor is only for assert (an error check passes once nothing matches: there is nothing to hold); remove it".to_string()
                } else {
                    chainsaw::nodekit_addition("holdFor")
                }
            })?;
        }
        let f = self.fields(item, what, allowed, chainsaw::CHECK_FOREIGN)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let hold_for = self.opt_duration(&f, "holdFor", true)?;
        let (src, is_file) = self.file_or_resource(&f, what)?;
        let (expected, source) = if is_file {
            let file_name = self.string(&src)?;
            let docs = self.read_objects(&src, &file_name)?;
            let mut out = Vec::with_capacity(docs.len());
            for (i, (doc, value)) in docs.iter().enumerate() {
                self.check_object_in_file(&src, &file_name, i, doc, false, what)?;
                let mut value = value.clone();
                self.bind_namespace(&mut value);
                if let Err(e) = crate::matcher::check_expressions(&value) {
                    let (node, sub, message) = localize_expression_error(doc, &e, self.namespace.as_deref());
                    let sub = if sub.is_empty() { String::new() } else { format!(" {sub}") };
                    return Err(self.err_at(
                        src.node,
                        &src.path,
                        format!("{file_name}:{}:{} (document {}){sub}: {message}", node.line, node.column, i + 1),
                    ));
                }
                out.push(value);
            }
            (out, file_name)
        } else {
            if let Some((node, sub, message)) = self.object_problem(src.node, false, what, true) {
                return Err(self.err_at(Self::inline_at(&src, node), &join_path(&src.path, &sub), message));
            }
            let mut value = self.json(&src)?;
            self.bind_namespace(&mut value);
            if let Err(e) = crate::matcher::check_expressions(&value) {
                let (node, sub, message) = localize_expression_error(src.node, &e, self.namespace.as_deref());
                return Err(self.err_at(node, &join_path(&src.path, &sub), message));
            }
            (vec![value], "inline".to_string())
        };
        Ok((Check { expected, source, hold_for }, timeout))
    }

    /// In a Chainsaw Test, `($namespace)` is the test's namespace.
    fn bind_namespace(&self, value: &mut Value) {
        if let Some(ns) = &self.namespace {
            chainsaw::replace_binding(value, ns, 0);
        }
    }

    fn delete(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(item, "delete", &["file", "resource", "ref", "timeout"], chainsaw::DELETE_FOREIGN)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let given: Vec<Item<'_>> = ["file", "resource", "ref"].iter().filter_map(|k| f.get(k)).collect();
        if given.len() > 1 {
            return Err(self.err_at(given[1].anchor(), &given[1].path, "delete takes one of file, resource or ref"));
        }
        let Some(src) = given.first() else {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "required: file (a YAML file next to the scenario), resource (an inline object) or ref (apiVersion, kind and a name or labels)",
            ));
        };
        let action = if src.path.ends_with(".ref") {
            let r = self.fields(src, "ref", &["apiVersion", "kind", "namespace", "name", "labels"], &[])?;
            let api_version =
                self.nonempty_string(&self.required(&r, "apiVersion", "the objects' apiVersion, like v1")?)?;
            let kind = self.nonempty_string(&self.required(&r, "kind", "the objects' kind, like Pod")?)?;
            let labels = match r.get("labels") {
                Some(l) => self.string_map(&l)?,
                None => Default::default(),
            };
            Delete::Ref(ObjectRef {
                api_version,
                kind,
                namespace: self.opt_nonempty(&r, "namespace")?,
                name: self.opt_nonempty(&r, "name")?,
                labels,
            })
        } else if src.path.ends_with(".file") {
            let file_name = self.string(src)?;
            let docs = self.read_objects(src, &file_name)?;
            let mut out = Vec::with_capacity(docs.len());
            for (i, (doc, value)) in docs.iter().enumerate() {
                self.check_object_in_file(src, &file_name, i, doc, false, "delete")?;
                out.push(value.clone());
            }
            Delete::Objects(Resources { objects: out, source: file_name })
        } else {
            let value = self.inline_object(src, false, "delete")?;
            Delete::Objects(Resources { objects: vec![value], source: "inline".to_string() })
        };
        Ok((Action::Delete(action), timeout))
    }

    /// apiVersion, kind, namespace and a name or a selector.
    fn query(&self, item: &Item<'_>, what: &str, extra: &[&str]) -> R<(ObjectQuery, Option<Duration>)> {
        let mut allowed = vec!["apiVersion", "kind", "namespace", "name", "selector", "timeout"];
        allowed.extend_from_slice(extra);
        let f = self.fields(item, what, &allowed, chainsaw::COLLECTOR_FOREIGN)?;
        let q = self.object_query(&f, what)?;
        self.cosmetic(&f)?;
        Ok((q, self.opt_duration(&f, "timeout", true)?))
    }

    fn object_query(&self, f: &Fields<'_>, what: &str) -> R<ObjectQuery> {
        let api_version =
            self.nonempty_string(&self.required(f, "apiVersion", &format!("{what} needs apiVersion and kind"))?)?;
        let kind = self.nonempty_string(&self.required(f, "kind", &format!("{what} needs apiVersion and kind"))?)?;
        let (name, selector) = self.name_or_selector(f)?;
        Ok(ObjectQuery { api_version, kind, namespace: self.opt_nonempty(f, "namespace")?, name, selector })
    }

    fn name_or_selector(&self, f: &Fields<'_>) -> R<(Option<String>, Option<String>)> {
        let name = self.opt_nonempty(f, "name")?;
        let selector = self.opt_nonempty(f, "selector")?;
        if name.is_some()
            && let Some(s) = f.get("selector")
        {
            return Err(self.err_at(s.anchor(), &s.path, "name and selector are exclusive; give one"));
        }
        Ok((name, selector))
    }

    /// Fields that only change how Chainsaw prints things: checked, then ignored.
    fn cosmetic(&self, f: &Fields<'_>) -> R<()> {
        if let Some(format) = f.get("format") {
            let s = self.string(&format)?;
            if s != "json" && s != "yaml" {
                return Err(self.err_at(
                    format.node,
                    &format.path,
                    format!("unknown format {s:?}; allowed: json, yaml"),
                ));
            }
        }
        for flag in ["showEvents", "skipLogOutput", "skipCommandOutput"] {
            self.opt_bool(f, flag)?;
        }
        Ok(())
    }

    fn wait(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "wait",
            &["apiVersion", "kind", "namespace", "name", "selector", "timeout", "for", "format"],
            chainsaw::COLLECTOR_FOREIGN,
        )?;
        let target = self.object_query(&f, "wait")?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let for_item = self.required(&f, "for", "what to wait for: creation, deletion, condition or jsonPath")?;
        let w = self.fields(&for_item, "for", &["creation", "deletion", "condition", "jsonPath"], &[])?;
        if w.entries.len() != 1 {
            let names: Vec<&str> = w.entries.iter().map(|(k, _, _)| k.as_str()).collect();
            let (at, found) = match w.entries.get(1) {
                Some((_, k, _)) => (*k, format!("found {}", and_list(&names))),
                None => (for_item.anchor(), "found none".to_string()),
            };
            return Err(self.err_at(
                at,
                &for_item.path,
                format!("wait for exactly one of creation, deletion, condition, jsonPath; {found}"),
            ));
        }
        let for_ = if let Some(c) = w.has("creation") {
            if !c.is_null() {
                self.fields(&c, "creation", &[], &[])?;
            }
            WaitFor::Creation
        } else if let Some(d) = w.has("deletion") {
            if !d.is_null() {
                self.fields(&d, "deletion", &[], &[])?;
            }
            WaitFor::Deletion
        } else if let Some(c) = w.has("condition") {
            let cf = self.fields(&c, "condition", &["name", "value"], &[])?;
            let name = self.nonempty_string(&self.required(&cf, "name", "the condition's type, like Ready")?)?;
            let value = match cf.get("value") {
                Some(v) => self.scalar_string(&v)?,
                None => "true".to_string(),
            };
            WaitFor::Condition { name, value }
        } else if let Some(j) = w.has("jsonPath") {
            let jf = self.fields(&j, "jsonPath", &["path", "value"], &[])?;
            let path = self.nonempty_string(&self.required(&jf, "path", "a JSONPath like '{.status.phase}'")?)?;
            let value = self.scalar_string(&self.required(&jf, "value", "the value to wait for, like Running")?)?;
            WaitFor::JsonPath { path, value }
        } else {
            return Err(self.err_at(
                for_item.anchor(),
                &for_item.path,
                "wait for exactly one of creation, deletion, condition, jsonPath",
            ));
        };
        Ok((Action::Wait(Wait { target, for_ }), timeout))
    }

    fn env(&self, f: &Fields<'_>) -> R<Vec<(String, String)>> {
        let Some(env) = f.get("env") else { return Ok(Vec::new()) };
        let mut out: Vec<(String, String)> = Vec::new();
        for el in self.list(&env, "{name, value}")? {
            let e = self.fields(&el, "an environment variable", &["name", "value"], &["compiler"])?;
            let name_item = self.required(&e, "name", "the variable's name")?;
            let name = self.nonempty_string(&name_item)?;
            if out.iter().any(|(n, _)| *n == name) {
                return Err(self.err_at(name_item.node, &name_item.path, format!("{name} is set twice")));
            }
            let value = match e.get("value") {
                Some(v) => {
                    let s = self.scalar_string(&v)?;
                    if s.starts_with('(') && s.ends_with(')') {
                        return Err(self.err_at(
                            v.node,
                            &v.path,
                            "not supported by nodekit (Chainsaw binding expressions); write the value",
                        ));
                    }
                    s
                }
                None => String::new(),
            };
            out.push((name, value));
        }
        Ok(out)
    }

    fn check_tree(&self, f: &Fields<'_>) -> R<Option<Value>> {
        let Some(c) = f.get("check") else { return Ok(None) };
        let value = self.mapping_json(&c, "check (an assertion tree over $error, $stdout, $stderr)")?;
        Ok(Some(value))
    }

    fn script(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "script",
            &["content", "shell", "shellArgs", "env", "check", "timeout", "skipLogOutput", "skipCommandOutput"],
            chainsaw::EXEC_FOREIGN,
        )?;
        let content = self.nonempty_string(&self.required(&f, "content", "the script to run")?)?;
        let shell = self.opt_nonempty(&f, "shell")?;
        let shell_args = match f.get("shellArgs") {
            Some(a) => self.string_list(&a)?,
            None => Vec::new(),
        };
        if shell.is_none()
            && let Some(a) = f.get("shellArgs")
        {
            return Err(self.err_at(a.anchor(), &a.path, "shellArgs needs shell"));
        }
        let env = self.env(&f)?;
        let check = self.check_tree(&f)?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        Ok((Action::Script(Script { content, shell, shell_args, env, check }), timeout))
    }

    fn command(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "command",
            &["entrypoint", "args", "env", "check", "timeout", "skipLogOutput", "skipCommandOutput"],
            chainsaw::EXEC_FOREIGN,
        )?;
        let entrypoint =
            self.nonempty_string(&self.required(&f, "entrypoint", "the program to run, like kubectl")?)?;
        let args = match f.get("args") {
            Some(a) => self.string_list(&a)?,
            None => Vec::new(),
        };
        let env = self.env(&f)?;
        let check = self.check_tree(&f)?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        Ok((Action::Command(Command { entrypoint, args, env, check }), timeout))
    }

    fn events(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        const EXPECT: &[&str] = &["reason", "message", "type", "involvedObject", "count", "minCount"];
        let allowed: Vec<&str> = match self.dialect {
            Dialect::Scenario => {
                ["namespace", "name", "selector", "timeout", "format"].iter().chain(EXPECT).copied().collect()
            }
            Dialect::Test => vec!["namespace", "name", "selector", "timeout", "format"],
        };
        if self.dialect == Dialect::Test {
            self.refuse_keys(item, EXPECT, |k| chainsaw::nodekit_addition(&format!("events.{k}")))?;
        }
        let f = self.fields(item, "events", &allowed, chainsaw::COLLECTOR_FOREIGN)?;
        self.cosmetic(&f)?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        let (name, selector) = self.name_or_selector(&f)?;
        let namespace = self.opt_nonempty(&f, "namespace")?;
        let expect = if EXPECT.iter().any(|k| f.get(k).is_some()) {
            let type_ = match f.get("type") {
                Some(t) => {
                    let s = self.string(&t)?;
                    if s != "Normal" && s != "Warning" {
                        return Err(self.err_at(
                            t.node,
                            &t.path,
                            format!("unknown event type {s:?}; allowed: Normal, Warning"),
                        ));
                    }
                    Some(s)
                }
                None => None,
            };
            let (involved_kind, involved_name, involved_namespace) = match f.get("involvedObject") {
                Some(io) => {
                    let iof = self.fields(&io, "involvedObject", &["kind", "name", "namespace"], &[])?;
                    (
                        self.opt_nonempty(&iof, "kind")?,
                        self.opt_nonempty(&iof, "name")?,
                        self.opt_nonempty(&iof, "namespace")?,
                    )
                }
                None => (None, None, None),
            };
            let count = match (f.get("count"), f.get("minCount")) {
                (Some(_), Some(m)) => {
                    return Err(self.err_at(
                        m.anchor(),
                        &m.path,
                        "count (exactly) and minCount (at least) are exclusive; give one",
                    ));
                }
                (Some(c), None) => CountRule::Exactly(self.unsigned(&c, 0, u64::from(u32::MAX))? as u32),
                (None, Some(m)) => CountRule::AtLeast(self.unsigned(&m, 1, u64::from(u32::MAX))? as u32),
                (None, None) => CountRule::AtLeast(1),
            };
            Some(EventExpectation {
                reason: self.opt_nonempty(&f, "reason")?,
                message: self.opt_string(&f, "message")?,
                type_,
                involved_kind,
                involved_name,
                involved_namespace,
                count,
            })
        } else {
            None
        };
        Ok((Action::Events(Events { namespace, name, selector, expect }), timeout))
    }

    fn pod_logs(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(
            item,
            "podLogs",
            &["namespace", "name", "selector", "container", "tail", "timeout"],
            chainsaw::COLLECTOR_FOREIGN,
        )?;
        let (name, selector) = self.name_or_selector(&f)?;
        let tail = f.get("tail").map(|t| self.integer(&t)).transpose()?;
        Ok((
            Action::PodLogs(PodLogs {
                namespace: self.opt_nonempty(&f, "namespace")?,
                name,
                selector,
                container: self.opt_nonempty(&f, "container")?,
                tail,
            }),
            self.opt_duration(&f, "timeout", true)?,
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Faults.

    fn node_names(&self) -> Vec<String> {
        self.world.as_ref().map(|w| w.nodes.iter().map(|n| n.name.clone()).collect()).unwrap_or_default()
    }

    fn world_node(&self, f: &Fields<'_>) -> R<String> {
        let item = self.required(f, "node", "the node, one of spec.world.nodes")?;
        let name = self.string(&item)?;
        let names = self.node_names();
        if !names.contains(&name) {
            return Err(self.err_at(
                item.node,
                &item.path,
                format!("node {name:?} is not in spec.world.nodes ({})", names.join(", ")),
            ));
        }
        Ok(name)
    }

    fn fault(&mut self, item: &Item<'_>) -> R<Fault> {
        const KINDS: &[&str] = &["partition", "stop", "kill", "restart", "apiServer", "dropWatches", "runtime", "link"];
        let mut allowed = vec!["name", "duration"];
        allowed.extend_from_slice(KINDS);
        self.refuse_keys(item, &["pressure"], |_| {
            "not available yet; create a pod that uses the resource (see suites/examples/scenarios/besteffort-evicted-first.yaml)".to_string()
        })?;
        let f = self.fields(item, "fault", &allowed, &[])?;
        let kinds: Vec<(&str, &Node)> = f
            .entries
            .iter()
            .filter(|(k, _, _)| KINDS.contains(&k.as_str()))
            .map(|(k, key, _)| (k.as_str(), *key))
            .collect();
        if kinds.len() != 1 {
            let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
            let (at, found) = match kinds.get(1) {
                Some((_, key)) => (*key, format!("found {}", and_list(&names))),
                None => (item.anchor(), "found none".to_string()),
            };
            return Err(self.err_at(
                at,
                &item.path,
                format!("a fault needs exactly one kind, {found}; allowed: {}", KINDS.join(", ")),
            ));
        }
        let kind_name = kinds[0].0;
        let kind_item =
            f.has(kind_name).ok_or_else(|| self.err_at(item.anchor(), &item.path, "internal: fault kind vanished"))?;
        let name = match f.get("name") {
            Some(n) => {
                let s = self.nonempty_string(&n)?;
                if let Some((_, line)) = self.faults.iter().find(|(x, _)| *x == s) {
                    return Err(self.err_at(
                        n.node,
                        &n.path,
                        format!("fault name {s:?} is already used (line {line}); fault names are unique in a scenario"),
                    ));
                }
                Some((s, n.node.line))
            }
            None => None,
        };
        let duration = self.opt_duration(&f, "duration", true)?;
        let kind = match kind_name {
            "partition" => {
                let p = self.fields(&kind_item, "partition", &["node", "direction"], &[])?;
                let node = self.world_node(&p)?;
                let direction = match p.get("direction") {
                    Some(d) => match self.string(&d)?.as_str() {
                        "both" => Direction::Both,
                        "toApiServer" => Direction::ToApiServer,
                        "fromApiServer" => Direction::FromApiServer,
                        other => {
                            return Err(self.err_at(
                                d.node,
                                &d.path,
                                format!("unknown direction {other:?}; allowed: both, toApiServer, fromApiServer"),
                            ));
                        }
                    },
                    None => Direction::Both,
                };
                FaultKind::Partition { node, direction }
            }
            "stop" | "kill" | "restart" => {
                let p = self.fields(&kind_item, kind_name, &["node", "component"], &[])?;
                let node = self.world_node(&p)?;
                let c = self.required(&p, "component", "what to stop: agent, proxy, runtime or node")?;
                let component = match self.string(&c)?.as_str() {
                    "agent" => Component::Agent,
                    "proxy" => Component::Proxy,
                    "runtime" => Component::Runtime,
                    "node" => Component::Node,
                    other => {
                        return Err(self.err_at(
                            c.node,
                            &c.path,
                            format!("unknown component {other:?}; allowed: agent, proxy, runtime, node"),
                        ));
                    }
                };
                if component == Component::Node && kind_name != "kill" {
                    return Err(self.err_at(
                        c.node,
                        &c.path,
                        format!("a whole node cannot {kind_name}; use kill (every component SIGKILLed and the host off the network, healed by heal)"),
                    ));
                }
                if kind_name == "restart"
                    && let Some(d) = f.get("duration")
                {
                    return Err(self.err_at(
                        d.anchor(),
                        &d.path,
                        "a restart is over at once (nothing to heal); remove duration",
                    ));
                }
                match kind_name {
                    "stop" => FaultKind::Stop { node, component },
                    "kill" => FaultKind::Kill { node, component },
                    _ => FaultKind::Restart { node, component },
                }
            }
            "apiServer" => FaultKind::ApiServer(self.api_server_fault(&kind_item)?),
            "dropWatches" => {
                if !kind_item.is_null() {
                    self.fields(&kind_item, "dropWatches", &[], &[])?;
                }
                FaultKind::DropWatches
            }
            "runtime" => {
                if self.world.as_ref().and_then(|w| w.runtime) == Some(RuntimeName::Containerd) {
                    return Err(self.err_at(
                        kind_item.anchor(),
                        &kind_item.path,
                        "fault runtime needs fake-cri; this scenario runs on containerd (spec.world.runtime)",
                    ));
                }
                let p = self.fields(
                    &kind_item,
                    "runtime",
                    &["node", "pullError", "createError", "sandboxError", "crashAfter", "notReady", "latency"],
                    &[],
                )?;
                let node = self.world_node(&p)?;
                let map = |name: &str| -> R<std::collections::BTreeMap<String, String>> {
                    match p.get(name) {
                        Some(m) => self.string_map(&m),
                        None => Ok(Default::default()),
                    }
                };
                let mut crash_after = std::collections::BTreeMap::new();
                if let Some(ca) = p.get("crashAfter") {
                    let Yaml::Map(entries) = &ca.node.v else {
                        return Err(self.err_at(
                            ca.node,
                            &ca.path,
                            format!("must be a mapping of container name to duration, found {}", ca.node.v.type_name()),
                        ));
                    };
                    for (k, v) in entries {
                        let Some(key) = k.v.scalar_text() else {
                            return Err(self.err_at(k, &ca.path, "keys must be strings"));
                        };
                        let d = self.duration(&Item { key: Some(k), node: v, path: child(&ca.path, &key) }, false)?;
                        crash_after.insert(key, d);
                    }
                }
                let faults = RuntimeFaults {
                    pull_error: map("pullError")?,
                    create_error: map("createError")?,
                    sandbox_error: map("sandboxError")?,
                    crash_after,
                    not_ready: self.opt_string(&p, "notReady")?,
                    latency: self.opt_duration(&p, "latency", true)?,
                };
                if faults == RuntimeFaults::default() {
                    return Err(self.err_at(
                        kind_item.anchor(),
                        &kind_item.path,
                        "a runtime fault needs at least one of pullError, createError, sandboxError, crashAfter, notReady, latency",
                    ));
                }
                FaultKind::Runtime { node, faults }
            }
            "link" => FaultKind::Link(self.link_fault(&kind_item)?),
            _ => {
                return Err(self.err_at(
                    kind_item.anchor(),
                    &kind_item.path,
                    format!("unknown fault kind; allowed: {}", KINDS.join(", ")),
                ));
            }
        };
        if let Some((n, line)) = &name {
            self.faults.push((n.clone(), *line));
        }
        self.fault_count += 1;
        Ok(Fault { name: name.map(|(n, _)| n), duration, kind })
    }

    fn api_server_fault(&self, item: &Item<'_>) -> R<ApiServerFault> {
        const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];
        let f = self.fields(item, "apiServer", &["verb", "resource", "code", "message", "latency", "times"], &[])?;
        let verb = match f.get("verb") {
            Some(v) => {
                let s = self.string(&v)?;
                if !VERBS.contains(&s.as_str()) {
                    return Err(self.err_at(
                        v.node,
                        &v.path,
                        format!("unknown verb {s:?}; allowed: {}", VERBS.join(", ")),
                    ));
                }
                Some(s)
            }
            None => None,
        };
        let code = f.get("code").map(|c| self.unsigned(&c, 400, 599)).transpose()?.map(|c| c as u16);
        let message = self.opt_string(&f, "message")?;
        if code.is_none()
            && let Some(m) = f.get("message")
        {
            return Err(self.err_at(m.anchor(), &m.path, "message is the error's text: it needs code"));
        }
        let latency = self.opt_duration(&f, "latency", true)?;
        if code.is_none() && latency.is_none() {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "an apiServer fault needs code (an HTTP status from 400 to 599), latency, or both",
            ));
        }
        let times = f.get("times").map(|t| self.unsigned(&t, 1, u64::MAX)).transpose()?;
        Ok(ApiServerFault { verb, resource: self.opt_nonempty(&f, "resource")?, code, message, latency, times })
    }

    fn link_fault(&self, item: &Item<'_>) -> R<LinkFault> {
        let f = self.fields(item, "link", &["between", "delay", "loss", "down"], &[])?;
        let between = self.required(&f, "between", "two hosts: node names or cp (the control-plane host)")?;
        let hosts = self.list(&between, "two hosts")?;
        if hosts.len() != 2 {
            return Err(self.err_at(
                between.node,
                &between.path,
                format!("a link is between two hosts, found {}", hosts.len()),
            ));
        }
        let names = self.node_names();
        let mut pair = Vec::with_capacity(2);
        for h in &hosts {
            let s = self.string(h)?;
            if s != "cp" && !names.contains(&s) {
                return Err(self.err_at(
                    h.node,
                    &h.path,
                    format!("host {s:?} is neither cp nor a node of spec.world.nodes ({})", names.join(", ")),
                ));
            }
            pair.push(s);
        }
        if pair[0] == pair[1] {
            return Err(self.err_at(hosts[1].node, &hosts[1].path, "a link is between two different hosts"));
        }
        let delay = self.opt_duration(&f, "delay", true)?;
        let loss = match f.get("loss") {
            Some(l) => {
                let v = self.number(&l)?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(self.err_at(l.node, &l.path, "loss is in percent, from 0 to 100"));
                }
                Some(v)
            }
            None => None,
        };
        let down = self.opt_bool(&f, "down")?.unwrap_or(false);
        if delay.is_none() && loss.is_none_or(|l| l == 0.0) && !down {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "a link fault needs at least one of delay, loss (above 0) or down: true",
            ));
        }
        let second = pair.pop().unwrap_or_default();
        let first = pair.pop().unwrap_or_default();
        Ok(LinkFault { between: (first, second), delay, loss, down })
    }

    fn heal(&self, item: &Item<'_>) -> R<Heal> {
        let fault = if item.is_null() {
            None
        } else {
            let f = self.fields(item, "heal", &["fault"], &[])?;
            match f.get("fault") {
                Some(n) => {
                    let s = self.nonempty_string(&n)?;
                    if !self.faults.iter().any(|(x, _)| *x == s) {
                        let known: Vec<&str> = self.faults.iter().map(|(x, _)| x.as_str()).collect();
                        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                        return Err(self.err_at(
                            n.node,
                            &n.path,
                            format!("no earlier fault is named {s:?}; named faults before this heal: {known}"),
                        ));
                    }
                    Some(s)
                }
                None => None,
            }
        };
        if fault.is_none() && self.fault_count == 0 {
            return Err(self.err_at(item.anchor(), &item.path, "no fault comes before this heal"));
        }
        Ok(Heal { fault })
    }
}

/// `a` + `b.c` → `a.b.c` (`b` empty → `a`).
fn join_path(base: &str, sub: &str) -> String {
    if sub.is_empty() {
        base.to_string()
    } else if base.is_empty() {
        sub.to_string()
    } else if sub.starts_with('[') {
        format!("{base}{sub}")
    } else {
        format!("{base}.{sub}")
    }
}

/// Finds the key (or value) whose `(expression)` the matcher refuses, by asking the matcher
/// about ever smaller parts of the object: (node, path below the object, message). Falls back
/// to the object itself.
fn localize_expression_error<'n>(
    node: &'n Node,
    error: &crate::matcher::Error,
    namespace: Option<&str>,
) -> (&'n Node, String, String) {
    match find_bad_expression(node, String::new(), 0, namespace) {
        Some((n, p, m)) => (n, p, m),
        None => (node, String::new(), expression_message(error)),
    }
}

/// The matcher's message without its path (the loader gives its own).
fn expression_message(error: &crate::matcher::Error) -> String {
    use crate::matcher::Error;
    match error {
        Error::Expression { expression, message, .. } => format!("bad expression {expression:?}: {message}"),
        Error::Unsupported { text, message, .. } => format!("{text:?}: {message}"),
        other => other.to_string(),
    }
}

fn find_bad_expression<'n>(
    node: &'n Node,
    path: String,
    depth: usize,
    ns: Option<&str>,
) -> Option<(&'n Node, String, String)> {
    let probe_json = |n: &Node| -> Option<Value> {
        let mut v = to_json(n).ok()?;
        if let Some(ns) = ns {
            chainsaw::replace_binding(&mut v, ns, 0);
        }
        Some(v)
    };
    if depth > 128 {
        return None;
    }
    match &node.v {
        Yaml::Map(entries) => {
            for (k, v) in entries {
                let key = k.v.scalar_text()?;
                let value = probe_json(v)?;
                let mut probe = JsonMap::new();
                probe.insert(key.clone(), value);
                if let Err(e) = crate::matcher::check_expressions(&Value::Object(probe)) {
                    let p = child(&path, &key);
                    if let Some(deeper) = find_bad_expression(v, p.clone(), depth + 1, ns) {
                        return Some(deeper);
                    }
                    let at = match &v.v {
                        Yaml::Str(s) if s.starts_with('(') && !key.starts_with('(') => v,
                        _ => k,
                    };
                    return Some((at, p, expression_message(&e)));
                }
            }
            None
        }
        Yaml::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Yaml::Map(_) = item.v {
                    let value = probe_json(item)?;
                    if let Err(e) = crate::matcher::check_expressions(&value) {
                        return find_bad_expression(item, index(&path, i), depth + 1, ns)
                            .or_else(|| Some((item, index(&path, i), expression_message(&e))));
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// Why `s` is not a DNS label, if it is not one.
pub(crate) fn dns_label_problem(s: &str) -> Option<&'static str> {
    const RULE: &str =
        "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";
    if s.is_empty() || s.len() > 63 {
        return Some(RULE);
    }
    let ok_chars = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ends_ok = !s.starts_with('-') && !s.ends_with('-');
    if ok_chars && ends_ok { None } else { Some(RULE) }
}

/// `*` any run of characters, `?` one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*.yaml", "a.yaml"));
        assert!(wildcard("0?-*.yaml", "01-pod.yaml"));
        assert!(!wildcard("*.yaml", "a.yml"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "acbd"));
        assert!(wildcard("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn paths() {
        assert_eq!(child("", "spec"), "spec");
        assert_eq!(child("spec", "steps"), "spec.steps");
        assert_eq!(index("spec.steps", 2), "spec.steps[2]");
        assert_eq!(child("metadata.labels", "app.kubernetes.io/name"), "metadata.labels[\"app.kubernetes.io/name\"]");
        assert_eq!(join_path("a.resource", "metadata.name"), "a.resource.metadata.name");
        assert_eq!(join_path("a", ""), "a");
        assert_eq!(and_list(&["apply", "assert"]), "apply and assert");
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("aply", &["apply", "assert"]), Some("apply"));
        assert_eq!(suggest("holdfor", &["holdFor", "timeout"]), Some("holdFor"));
        assert_eq!(suggest("zzzzzz", &["apply"]), None);
    }

    #[test]
    fn labels() {
        assert!(dns_label_problem("node-a").is_none());
        assert!(dns_label_problem("Node").is_some());
        assert!(dns_label_problem("-a").is_some());
        assert!(dns_label_problem("").is_some());
        assert!(dns_label_problem(&"a".repeat(64)).is_some());
    }

    #[test]
    fn tree_has_positions() {
        let docs = parse_yaml("a: 1\nb:\n  - x\n  - {c: d}\n").unwrap();
        assert_eq!(docs.len(), 1);
        let Yaml::Map(entries) = &docs[0].v else { panic!("not a map") };
        assert_eq!((entries[1].0.line, entries[1].0.column), (2, 1));
        let Yaml::Seq(items) = &entries[1].1.v else { panic!("not a seq") };
        assert_eq!((items[1].line, items[1].column), (4, 5));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse_yaml("a: [1, 2\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.message.starts_with("YAML: "), "{}", e.message);
    }
}
