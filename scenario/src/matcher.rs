//! The partial-object matcher behind a scenario's `assert` and `error` operations: does a live
//! object contain an expected partial object? The expected object is a Kyverno Chainsaw /
//! kyverno-json *assertion tree*, and this module follows kyverno-json's semantics (the version
//! Chainsaw pins, `kyverno/kyverno-json` `pkg/core/{assertion,projection,expression,matching}`),
//! with JMESPath as the default expression language, as in Chainsaw (`pkg/apis/compiler.go`:
//! `WithDefaultCompiler(jp)`).
//!
//! # Semantics
//!
//! * **Maps** (`assertion.go`, `mapNode`): every expected key must match; actual keys the
//!   expected map does not name are ignored. A plain key that the actual map lacks is a
//!   mismatch (`field missing`); so is a plain key looked up in `null`. An *empty* expected map
//!   `{}` only asks for a value that is not `null` (of any type).
//! * **Expression keys** (`projection.go`, `ParseMapKey`): a key written `(expr)` (also
//!   `(jp;expr)`, `(default;expr)`) is a JMESPath expression evaluated with the current actual
//!   node as `@`; its result (possibly `null`, never "missing") is then compared with the
//!   expected value under the same rules, recursively. So
//!   `status: {(conditions[?type == 'Ready']): [{status: "True"}]}` asks for exactly one Ready
//!   condition whose status is "True", and ``spec: {(replicas > `1`): true}`` is a predicate.
//!   Absence is asserted with an expression: `(metadata.deletionTimestamp): null`.
//! * **Foreach** (`expression.go` `foreachRegex`, `mapNode.Assert`): a key `~.(expr)` or
//!   `~.field` projects as above, then the expected value is compared with *each* element of
//!   the projected array, or each value of the projected map (path `key[i]` / `key[k]`). An
//!   empty array or map passes; anything else (including `null`) is a mismatch.
//! * **Escaping** (`expression.go` `escapeRegex`): `\(bar)\` is the literal key or string
//!   `(bar)`; the backslashes are removed and nothing is evaluated.
//! * **Value expressions** (`projection.go` `ParseScalar`, `assertion.go` `scalarNode`): an
//!   expected string `(expr)` is evaluated with the *actual value at that place* as `@`, and its
//!   result becomes the expected value: the actual value must match it (with `matching.Match`:
//!   a map result is a partial match with plain keys, an array result must have the same
//!   length and match element by element, a scalar must be equal). So `name: (@)` always
//!   matches, and a predicate is written as a key: `(starts_with(name, 'web-')): true`.
//! * **Arrays** (`assertion.go`, `sliceNode`): the actual value must be an array of the same
//!   length; elements are compared pairwise (each expected element is itself an assertion
//!   tree, so it may hold expression keys). To match by content, filter with an expression key.
//! * **Scalars** (`matching/equal.go`): equality without coercion between types, except that
//!   numbers compare numerically (`1 == 1.0`); `"1"` does not equal `1` and `"true"` does not
//!   equal `true`.
//! * **`null`** (`equal.go`): an expected `null` asks for an actual `null` at a key that is
//!   present (a missing plain key is still `field missing`; write `(key): null` to accept both).
//! * **Paths** are Chainsaw's (`k8s.io/apimachinery` `field.Path`): dot-separated keys as written
//!   in the expected object, `[i]` for array elements and foreach elements, `[key]` for foreach
//!   map values: `status.(conditions[?type == 'Ready'])[0].status`. The root is shown as
//!   `<root>`.
//! * The whole expected tree is compiled first (`assertion.Parse`), so a bad expression
//!   anywhere is an [`Error`] even if matching would not reach it.
//!
//! # Deviations from kyverno-json / Chainsaw
//!
//! * Expressions are standard JMESPath (the `jmespath` crate), not jmespath-community: no
//!   arithmetic (`a + b`), no `let`, no `$variables` (so no Chainsaw `$namespace`, `$values`,
//!   …), no Kyverno/Chainsaw extension functions, and numbers are literals in backticks
//!   (``(replicas > `3`)``; `(replicas > 3)` is refused). Calls to functions the crate does not
//!   have, and slices with a step of 0 or one over 2^20, are refused by [`check_expressions`].
//! * Bindings are not supported: a key ending in `-> name` and a named foreach `~name.` (both
//!   bind a `$name` that no expression here could read) are refused by [`check_expressions`],
//!   as are `(cel;…)` expressions and any other `(engine;…)` prefix (kyverno-json would treat an
//!   unknown engine's statement as a plain key). As upstream, a *value* that looks like a
//!   foreach (`~.x`) or a binding (`x -> y`) is refused too; escape it as `\~.x\`.
//! * What upstream treats as an internal error that aborts the whole check is a [`Mismatch`]
//!   here, so that a polling `assert` keeps waiting and an `error` operation counts the object
//!   as not matching: an actual value of the wrong type (a map or an array expected, something
//!   else found; a scalar compared with a map), a foreach over something that is neither an
//!   array nor a map, and an expression that fails while it is evaluated (e.g. `length(null)`).
//!   Plain keys looked up in a scalar or an array give one mismatch at the map's own path
//!   (`expected a map, found …`), not one per key.
//! * Limits, so that no input can exhaust the stack: an expected tree at most
//!   [`MAX_DEPTH`] levels deep (else [`Error::TooDeep`]); expressions of at most 4096 bytes,
//!   with at most 64 of the tokens `( [ { ! & *` and an AST at most 100 deep; actual values
//!   nested more than 256 levels are not evaluated (a mismatch) and are cut at that depth in
//!   messages and diffs. Should the JMESPath crate still panic, the panic is caught and
//!   reported as a bad expression or a failed evaluation.
//! * [`diff`] is not Chainsaw's unified diff of pruned YAML: it walks the expected tree and
//!   shows, under each expected key, the actual value it was compared with, including the
//!   value an `(expr)` key evaluated to (Chainsaw's pruning drops those).

use std::borrow::Cow;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use jmespath::ast::Ast;
use serde_json::{Map, Number, Value};

/// How deep an expected object may nest (maps and arrays).
pub const MAX_DEPTH: usize = 100;
/// How deep an actual value may nest to be handed to a JMESPath expression.
const MAX_ACTUAL_DEPTH: usize = 256;
/// The longest expression, in bytes.
const MAX_EXPRESSION_LEN: usize = 4096;
/// The most grouping / prefix tokens (`( [ { ! & *`) an expression may hold; the JMESPath
/// parser recurses on them.
const MAX_EXPRESSION_GROUPS: usize = 64;
/// The deepest AST an expression may parse to; the interpreter recurses on it.
const MAX_AST_DEPTH: usize = 100;
/// The largest slice step (`[::step]`) allowed; the crate's slicing overflows on huge ones.
const MAX_SLICE_STEP: u32 = 1 << 20;
/// How many characters of a value a message shows.
const MAX_SHOWN: usize = 200;

/// Where and why an actual object does not contain the expected one.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// Chainsaw-style path of the expected node, e.g.
    /// `status.(conditions[?type == 'Ready'])[0].status`; empty for the root.
    pub path: String,
    /// E.g. `expected "True", found "False"` or `field missing`.
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", shown_path(&self.path), self.message)
    }
}

/// The expected object cannot be used: a bad or unsupported expression, or too deep a tree.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An expression that does not compile (or is too long or complex); `expression` is the key
    /// or value as written, `message` the parser's.
    #[error("{}: bad expression {expression:?}: {message}", shown_path(.path))]
    Expression {
        path: String,
        expression: String,
        message: String,
    },
    /// Syntax kyverno-json has that this matcher does not support (bindings, named foreach,
    /// CEL, foreach or binding in a value).
    #[error("{}: {text:?}: {message}", shown_path(.path))]
    Unsupported {
        path: String,
        text: String,
        message: String,
    },
    /// The expected object nests deeper than [`MAX_DEPTH`].
    #[error("{}: the expected object nests more than {MAX_DEPTH} levels deep", shown_path(.path))]
    TooDeep { path: String },
}

/// Every mismatch of `actual` against the expected partial object (empty = it matches).
/// Fails only when the expected object itself is bad (see [`check_expressions`]).
pub fn mismatches(actual: &Value, expected: &Value) -> Result<Vec<Mismatch>, Error> {
    let node = compile("", expected, 0)?;
    let mut out = Vec::new();
    check(&node, actual, "", &mut out);
    Ok(out)
}

/// True when actual contains expected.
pub fn matches(actual: &Value, expected: &Value) -> Result<bool, Error> {
    Ok(mismatches(actual, expected)?.is_empty())
}

/// Checks every `(expression)` key and value in `expected` compiles, so a scenario file with a
/// bad expression is refused before anything runs; the error names the path.
pub fn check_expressions(expected: &Value) -> Result<(), Error> {
    compile("", expected, 0).map(|_| ())
}

/// A readable diff for a failure report: the expected partial object next to the part of the
/// actual object it was compared with (same keys; `(expr)` keys shown with their evaluated
/// value), as YAML-ish text lines prefixed "- " (expected) / "+ " (actual) / "  " (equal).
/// The "- " and "  " lines read as the expected side, the "+ " and "  " lines as the actual
/// side (a foreach key shows the expected value once per element); keys come in sorted order.
/// Expressions that fail, or are refused, are shown as `# …` comments on the actual side.
pub fn diff(actual: &Value, expected: &Value) -> String {
    let mut lines = Vec::new();
    diff_entry(&mut lines, 0, Label::Root, expected, Some(actual), 0);
    let mut out = String::new();
    for line in lines {
        out.push_str(match line.mark {
            Mark::Same => "  ",
            Mark::Expected => "- ",
            Mark::Actual => "+ ",
        });
        for _ in 0..line.indent {
            out.push(' ');
        }
        out.push_str(&line.text);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Syntax of keys and string values (kyverno-json `pkg/core/expression/expression.go`).

/// A key or string value taken apart the way kyverno-json's `expression.Parse` does.
#[derive(Debug, PartialEq)]
struct Syntax<'a> {
    /// `~.` (None) or `~name.` (Some(name)).
    foreach: Option<Option<&'a str>>,
    /// `… -> name`.
    binding: Option<&'a str>,
    body: Body<'a>,
}

#[derive(Debug, PartialEq)]
enum Body<'a> {
    /// Neither escaped nor an expression.
    Plain(&'a str),
    /// `\text\`: the text, literally.
    Escaped(&'a str),
    /// `(statement)` or `(engine;statement)`.
    Expression {
        engine: Option<&'a str>,
        statement: &'a str,
    },
}

/// RE2's `\w`.
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// RE2's `\s`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

fn parse_syntax(text: &str) -> Syntax<'_> {
    let mut rest = text;
    // 1. foreach: `^~(\w+)?\.(.*)`
    let mut foreach = None;
    if let Some(after) = rest.strip_prefix('~') {
        let name_len = after.len() - after.trim_start_matches(is_word).len();
        let (name, tail) = after.split_at(name_len);
        if let Some(tail) = tail.strip_prefix('.') {
            foreach = Some((!name.is_empty()).then_some(name));
            rest = tail;
        }
    }
    // 2. binding: `(.*)\s*->\s*(\w+)$` (the greedy `(.*)` keeps the spaces before `->`)
    let mut binding = None;
    let without_name = rest.trim_end_matches(is_word);
    if without_name.len() < rest.len() {
        let name = &rest[without_name.len()..];
        if let Some(head) = without_name.trim_end_matches(is_space).strip_suffix("->")
            && !head.contains('\n')
        {
            binding = Some(name);
            rest = head;
        }
    }
    // 3. escape `^\\(.+)\\$`, else expression `^\((?:(\w+);)?(.+)\)$` (`.` is not `\n`)
    let body = if let Some(inner) = rest
        .strip_prefix('\\')
        .and_then(|r| r.strip_suffix('\\'))
        .filter(|inner| !inner.is_empty() && !inner.contains('\n'))
    {
        Body::Escaped(inner)
    } else if let Some(inner) = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .filter(|inner| !inner.is_empty() && !inner.contains('\n'))
    {
        let engine_len = inner.len() - inner.trim_start_matches(is_word).len();
        match inner[engine_len..].strip_prefix(';') {
            Some(statement) if engine_len > 0 && !statement.is_empty() => Body::Expression {
                engine: Some(&inner[..engine_len]),
                statement,
            },
            _ => Body::Expression {
                engine: None,
                statement: inner,
            },
        }
    } else {
        Body::Plain(rest)
    };
    Syntax {
        foreach,
        binding,
        body,
    }
}

/// A compiled JMESPath expression and the key or value it was written as.
struct Expr {
    text: String,
    program: jmespath::Expression<'static>,
}

/// What a map key projects.
enum Target {
    Field(String),
    Expr(Expr),
}

struct KeySpec {
    foreach: bool,
    target: Target,
}

/// What an expected string value stands for.
enum StringSpec {
    Literal(String),
    Expr(Expr),
}

fn unsupported(path: &str, text: &str, message: impl Into<String>) -> Error {
    Error::Unsupported {
        path: path.to_owned(),
        text: text.to_owned(),
        message: message.into(),
    }
}

const NO_BINDINGS: &str = "bindings (`-> name`) are not supported: expressions here are \
                           standard JMESPath, without `$variables`";

/// `path` is the path of the key itself.
fn key_spec(path: &str, key: &str) -> Result<KeySpec, Error> {
    let syntax = parse_syntax(key);
    let foreach = match syntax.foreach {
        None => false,
        Some(None) => true,
        Some(Some(name)) => {
            return Err(unsupported(
                path,
                key,
                format!(
                    "a named foreach (`~{name}.`) binds `${name}`, and expressions here have \
                     no variables; write `~.`"
                ),
            ));
        }
    };
    if syntax.binding.is_some() {
        return Err(unsupported(path, key, NO_BINDINGS));
    }
    let target = match syntax.body {
        Body::Plain(field) | Body::Escaped(field) => Target::Field(field.to_owned()),
        Body::Expression { engine, statement } => {
            Target::Expr(compile_expression(path, key, engine, statement)?)
        }
    };
    Ok(KeySpec { foreach, target })
}

fn string_spec(path: &str, value: &str) -> Result<StringSpec, Error> {
    let syntax = parse_syntax(value);
    if syntax.foreach.is_some() {
        return Err(unsupported(
            path,
            value,
            "foreach (`~.`) is not supported in a value; to compare with this text literally, \
             write it between backslashes: `\\…\\`",
        ));
    }
    if syntax.binding.is_some() {
        return Err(unsupported(
            path,
            value,
            "a binding (`-> name`) is not supported in a value; to compare with this text \
             literally, write it between backslashes: `\\…\\`",
        ));
    }
    Ok(match syntax.body {
        Body::Plain(text) | Body::Escaped(text) => StringSpec::Literal(text.to_owned()),
        Body::Expression { engine, statement } => {
            StringSpec::Expr(compile_expression(path, value, engine, statement)?)
        }
    })
}

fn compile_expression(
    path: &str,
    text: &str,
    engine: Option<&str>,
    statement: &str,
) -> Result<Expr, Error> {
    match engine {
        None | Some("jp") | Some("default") => {}
        Some("cel") => {
            return Err(unsupported(
                path,
                text,
                "CEL expressions are not supported; write the expression in JMESPath: `(…)`",
            ));
        }
        Some(other) => {
            return Err(unsupported(
                path,
                text,
                format!("unknown expression engine `{other}` (only `jp` is supported)"),
            ));
        }
    }
    let bad = |message: String| Error::Expression {
        path: path.to_owned(),
        expression: text.to_owned(),
        message,
    };
    if statement.len() > MAX_EXPRESSION_LEN {
        return Err(bad(format!("longer than {MAX_EXPRESSION_LEN} bytes")));
    }
    let groups = statement
        .chars()
        .filter(|c| matches!(c, '(' | '[' | '{' | '!' | '&' | '*'))
        .count();
    if groups > MAX_EXPRESSION_GROUPS {
        return Err(bad(format!(
            "more than {MAX_EXPRESSION_GROUPS} brackets and operators, too complex"
        )));
    }
    let program = match catch_unwind(AssertUnwindSafe(|| jmespath::compile(statement))) {
        Ok(Ok(program)) => program,
        Ok(Err(err)) => {
            return Err(bad(format!("{} (column {})", err.reason, err.column)));
        }
        Err(_) => return Err(bad("the JMESPath parser failed on it".to_owned())),
    };
    let facts = inspect_ast(program.as_ast());
    if facts.depth > MAX_AST_DEPTH {
        return Err(bad(format!(
            "nests more than {MAX_AST_DEPTH} levels deep, too complex"
        )));
    }
    if let Some(name) = facts.unknown_function {
        return Err(bad(format!("no such JMESPath function: {name}()")));
    }
    if facts.big_step {
        return Err(bad(format!(
            "a slice step must be non-zero and at most {MAX_SLICE_STEP} in size"
        )));
    }
    Ok(Expr {
        text: text.to_owned(),
        program,
    })
}

/// What [`compile_expression`] checks in a parsed expression.
struct AstFacts {
    depth: usize,
    /// The first function called that the runtime does not have.
    unknown_function: Option<String>,
    /// A slice step of 0 (always a runtime error) or one the crate's slicing overflows on.
    big_step: bool,
}

/// Walks an AST iteratively (a long `a.b.c…` chain is a deep left-leaning tree).
fn inspect_ast(root: &Ast) -> AstFacts {
    let mut deepest = 0;
    let mut unknown = None;
    let mut big_step = false;
    let mut stack: Vec<(&Ast, usize)> = vec![(root, 1)];
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        let next = depth + 1;
        match node {
            Ast::Comparison { lhs, rhs, .. }
            | Ast::Projection { lhs, rhs, .. }
            | Ast::And { lhs, rhs, .. }
            | Ast::Or { lhs, rhs, .. }
            | Ast::Subexpr { lhs, rhs, .. } => {
                stack.push((lhs, next));
                stack.push((rhs, next));
            }
            Ast::Condition {
                predicate, then, ..
            } => {
                stack.push((predicate, next));
                stack.push((then, next));
            }
            Ast::Expref { ast: inner, .. }
            | Ast::Flatten { node: inner, .. }
            | Ast::Not { node: inner, .. }
            | Ast::ObjectValues { node: inner, .. } => stack.push((inner, next)),
            Ast::Function { name, args, .. } => {
                if unknown.is_none() && jmespath::DEFAULT_RUNTIME.get_function(name).is_none() {
                    unknown = Some(name.clone());
                }
                stack.extend(args.iter().map(|arg| (arg, next)));
            }
            Ast::MultiList { elements, .. } => stack.extend(elements.iter().map(|e| (e, next))),
            Ast::MultiHash { elements, .. } => {
                stack.extend(elements.iter().map(|kv| (&kv.value, next)));
            }
            Ast::Slice { step, .. } => {
                if *step == 0 || step.unsigned_abs() > MAX_SLICE_STEP {
                    big_step = true;
                }
            }
            Ast::Identity { .. } | Ast::Field { .. } | Ast::Index { .. } | Ast::Literal { .. } => {}
        }
    }
    AstFacts {
        depth: deepest,
        unknown_function: unknown,
        big_step,
    }
}

/// Evaluates `expr` with `current` as `@`. The error is a whole mismatch message.
fn evaluate(expr: &Expr, current: &Value) -> Result<Value, String> {
    if nests_deeper_than(current, MAX_ACTUAL_DEPTH) {
        return Err(format!(
            "expression {} not evaluated: the value nests more than {MAX_ACTUAL_DEPTH} levels deep",
            expr.text
        ));
    }
    let result = match catch_unwind(AssertUnwindSafe(|| expr.program.search(current))) {
        Ok(Ok(result)) => result,
        Ok(Err(err)) => return Err(format!("expression {} failed: {}", expr.text, err.reason)),
        Err(_) => {
            return Err(format!(
                "expression {} failed: the JMESPath interpreter gave up on it",
                expr.text
            ));
        }
    };
    serde_json::to_value(&*result).map_err(|err| {
        format!(
            "expression {} gave a value that is not JSON: {err}",
            expr.text
        )
    })
}

fn nests_deeper_than(value: &Value, limit: usize) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The compiled assertion tree (kyverno-json `pkg/core/assertion/assertion.go`).

enum Node {
    Map(Vec<Entry>),
    Array(Vec<Node>),
    /// A number, bool, null or literal string.
    Literal(Value),
    /// A string value `(expr)`.
    Expr(Expr),
}

struct Entry {
    /// The key as written (for paths).
    key: String,
    spec: KeySpec,
    node: Node,
}

fn compile(path: &str, expected: &Value, depth: usize) -> Result<Node, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep {
            path: path.to_owned(),
        });
    }
    Ok(match expected {
        Value::Object(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (key, value) in map {
                let child = child_path(path, key);
                let spec = key_spec(&child, key)?;
                let node = compile(&child, value, depth + 1)?;
                entries.push(Entry {
                    key: key.clone(),
                    spec,
                    node,
                });
            }
            Node::Map(entries)
        }
        Value::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                nodes.push(compile(&index_path(path, i), item, depth + 1)?);
            }
            Node::Array(nodes)
        }
        Value::String(text) => match string_spec(path, text)? {
            StringSpec::Literal(text) => Node::Literal(Value::String(text)),
            StringSpec::Expr(expr) => Node::Expr(expr),
        },
        scalar => Node::Literal(scalar.clone()),
    })
}

fn push(out: &mut Vec<Mismatch>, path: &str, message: String) {
    out.push(Mismatch {
        path: path.to_owned(),
        message,
    });
}

fn check(node: &Node, actual: &Value, path: &str, out: &mut Vec<Mismatch>) {
    match node {
        Node::Map(entries) if entries.is_empty() => {
            if actual.is_null() {
                push(out, path, "expected a value, found null".to_owned());
            }
        }
        Node::Map(entries) => {
            let mut reported_not_a_map = false;
            for entry in entries {
                let child = child_path(path, &entry.key);
                let projected: Cow<'_, Value> = match &entry.spec.target {
                    Target::Field(field) => match actual {
                        Value::Object(map) => match map.get(field) {
                            Some(value) => Cow::Borrowed(value),
                            None => {
                                push(out, &child, "field missing".to_owned());
                                continue;
                            }
                        },
                        Value::Null => {
                            push(out, &child, "field missing".to_owned());
                            continue;
                        }
                        other => {
                            if !reported_not_a_map {
                                reported_not_a_map = true;
                                push(
                                    out,
                                    path,
                                    format!("expected a map, found {}", describe(other)),
                                );
                            }
                            continue;
                        }
                    },
                    Target::Expr(expr) => match evaluate(expr, actual) {
                        Ok(value) => Cow::Owned(value),
                        Err(message) => {
                            push(out, &child, message);
                            continue;
                        }
                    },
                };
                if entry.spec.foreach {
                    match projected.as_ref() {
                        Value::Array(items) => {
                            for (i, item) in items.iter().enumerate() {
                                check(&entry.node, item, &index_path(&child, i), out);
                            }
                        }
                        Value::Object(map) => {
                            for (key, value) in map {
                                check(&entry.node, value, &key_path(&child, key), out);
                            }
                        }
                        other => push(
                            out,
                            &child,
                            format!(
                                "expected an array or a map to iterate over, found {}",
                                describe(other)
                            ),
                        ),
                    }
                } else {
                    check(&entry.node, &projected, &child, out);
                }
            }
        }
        Node::Array(nodes) => match actual {
            Value::Array(items) if items.len() == nodes.len() => {
                for (i, (node, item)) in nodes.iter().zip(items).enumerate() {
                    check(node, item, &index_path(path, i), out);
                }
            }
            Value::Array(items) => push(
                out,
                path,
                format!(
                    "expected an array of {}, found {}",
                    items_count(nodes.len()),
                    items_count(items.len())
                ),
            ),
            other => push(
                out,
                path,
                format!("expected an array, found {}", describe(other)),
            ),
        },
        Node::Literal(expected) => {
            if !scalar_equal(expected, actual) {
                push(
                    out,
                    path,
                    format!("expected {}, found {}", show(expected), show(actual)),
                );
            }
        }
        Node::Expr(expr) => match evaluate(expr, actual) {
            Ok(expected) => {
                if !plain_match(&expected, actual, 0) {
                    push(
                        out,
                        path,
                        format!(
                            "expected {} (the value of {}), found {}",
                            show(&expected),
                            expr.text,
                            show(actual)
                        ),
                    );
                }
            }
            Err(message) => push(out, path, message),
        },
    }
}

/// kyverno-json `matching.Match`: how the result of a value expression is compared with the
/// actual value (plain keys only, nothing evaluated).
fn plain_match(expected: &Value, actual: &Value, depth: usize) -> bool {
    if depth > MAX_ACTUAL_DEPTH {
        return false;
    }
    match (expected, actual) {
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len()
                && want
                    .iter()
                    .zip(have)
                    .all(|(w, h)| plain_match(w, h, depth + 1))
        }
        (Value::Array(_), _) => false,
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, w)| have.get(key).is_some_and(|h| plain_match(w, h, depth + 1))),
        (Value::Object(_), _) => false,
        _ => scalar_equal(expected, actual),
    }
}

/// kyverno-json `matching.Equal` for a scalar expected value: same type and equal, numbers
/// numerically.
fn scalar_equal(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        _ => false,
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    fn integer(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a == b,
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and messages.

/// An error without its path, for a diff comment.
fn reason(err: &Error) -> String {
    match err {
        Error::Expression {
            expression,
            message,
            ..
        } => format!("bad expression {expression:?}: {message}"),
        Error::Unsupported { message, .. } => message.clone(),
        Error::TooDeep { .. } => format!("nests more than {MAX_DEPTH} levels deep"),
    }
}

fn shown_path(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn index_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

fn key_path(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

fn items_count(n: usize) -> String {
    if n == 1 {
        "1 item".to_owned()
    } else {
        format!("{n} items")
    }
}

/// Compact JSON, cut to about [`MAX_SHOWN`] characters (and never walked deeper than needed).
fn show(value: &Value) -> String {
    let mut text = String::new();
    compact(value, &mut text, 0);
    if text.chars().count() <= MAX_SHOWN {
        text
    } else {
        let mut cut: String = text.chars().take(MAX_SHOWN).collect();
        cut.push('…');
        cut
    }
}

/// Writes `value` as compact JSON into `out` until `out` is longer than [`MAX_SHOWN`].
fn compact(value: &Value, out: &mut String, depth: usize) {
    if out.len() > MAX_SHOWN * 4 || depth > MAX_SHOWN {
        out.push('…');
        return;
    }
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if out.len() > MAX_SHOWN * 4 {
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                compact(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if out.len() > MAX_SHOWN * 4 {
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                compact(item, out, depth + 1);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A copy of `value` with what nests deeper than `levels` replaced by `"…"`.
fn bounded_clone(value: &Value, levels: usize) -> Value {
    match value {
        Value::Array(_) | Value::Object(_) if levels == 0 => Value::String("…".to_owned()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| bounded_clone(item, levels - 1))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), bounded_clone(item, levels - 1)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

/// A value with its type, for "expected X, found …".
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => format!("boolean {}", show(value)),
        Value::Number(_) => format!("number {}", show(value)),
        Value::String(_) => format!("string {}", show(value)),
        Value::Array(items) => format!("an array of {}", items_count(items.len())),
        Value::Object(_) => format!("a map {}", show(value)),
    }
}

// ---------------------------------------------------------------------------------------------
// The diff.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Same,
    Expected,
    Actual,
}

#[derive(Debug)]
struct Line {
    mark: Mark,
    indent: usize,
    text: String,
}

#[derive(Clone, Copy)]
enum Label<'a> {
    Root,
    Key(&'a str),
}

fn line(out: &mut Vec<Line>, mark: Mark, indent: usize, text: String) {
    out.push(Line { mark, indent, text });
}

fn labelled(label: Label<'_>, text: &str) -> String {
    match label {
        Label::Root => text.to_owned(),
        Label::Key(key) => format!("{}: {text}", yaml_string(key)),
    }
}

fn header(out: &mut Vec<Line>, mark: Mark, indent: usize, label: Label<'_>) {
    if let Label::Key(key) = label {
        line(out, mark, indent, format!("{}:", yaml_string(key)));
    }
}

/// Renders a whole value with one mark.
fn render(
    out: &mut Vec<Line>,
    mark: Mark,
    indent: usize,
    label: Label<'_>,
    value: &Value,
    depth: usize,
) {
    if depth > MAX_ACTUAL_DEPTH {
        line(out, mark, indent, labelled(label, "…"));
        return;
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            header(out, mark, indent, label);
            let inner = match label {
                Label::Root => indent,
                Label::Key(_) => indent + 2,
            };
            for (key, child) in map {
                render(out, mark, inner, Label::Key(key), child, depth + 1);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            header(out, mark, indent, label);
            for item in items {
                let start = out.len();
                render(out, mark, indent + 2, Label::Root, item, depth + 1);
                dashify(out, start, indent);
            }
        }
        scalar => line(out, mark, indent, labelled(label, &scalar_text(scalar))),
    }
}

/// Turns the first line of each side of an array item (rendered at `indent + 2`) into its
/// `- ` line at `indent`.
fn dashify(out: &mut [Line], start: usize, indent: usize) {
    let tail = out.get_mut(start..).unwrap_or_default();
    let first_expected = tail
        .iter()
        .position(|l| matches!(l.mark, Mark::Same | Mark::Expected));
    let first_actual = tail
        .iter()
        .position(|l| matches!(l.mark, Mark::Same | Mark::Actual));
    let mut done = None;
    for at in [first_expected, first_actual].into_iter().flatten() {
        if done == Some(at) {
            continue;
        }
        done = Some(at);
        if let Some(l) = tail.get_mut(at) {
            l.indent = indent;
            l.text.insert_str(0, "- ");
        }
    }
}

fn diff_item(
    out: &mut Vec<Line>,
    indent: usize,
    expected: &Value,
    actual: Option<&Value>,
    depth: usize,
) {
    let start = out.len();
    diff_entry(out, indent + 2, Label::Root, expected, actual, depth);
    dashify(out, start, indent);
}

/// Both sides in full: the expected as written, the actual pruned to what was compared.
fn both(
    out: &mut Vec<Line>,
    indent: usize,
    label: Label<'_>,
    expected: &Value,
    actual: &Value,
    depth: usize,
) {
    render(out, Mark::Expected, indent, label, expected, depth);
    render(
        out,
        Mark::Actual,
        indent,
        label,
        &prune(expected, actual, depth),
        depth,
    );
}

fn diff_entry(
    out: &mut Vec<Line>,
    indent: usize,
    label: Label<'_>,
    expected: &Value,
    actual: Option<&Value>,
    depth: usize,
) {
    let Some(actual) = actual else {
        render(out, Mark::Expected, indent, label, expected, depth);
        return;
    };
    if depth > MAX_DEPTH {
        line(out, Mark::Same, indent, labelled(label, "…"));
        return;
    }
    match expected {
        Value::Object(map) if map.is_empty() => {
            if actual.is_null() {
                both(out, indent, label, expected, actual, depth);
            } else {
                render(out, Mark::Same, indent, label, expected, depth);
            }
        }
        Value::Object(map) => {
            let specs: Vec<_> = map
                .iter()
                .map(|(key, value)| (key, value, key_spec("", key)))
                .collect();
            let only_expressions = specs.iter().all(|(_, _, spec)| {
                matches!(
                    spec,
                    Ok(KeySpec {
                        target: Target::Expr(_),
                        ..
                    })
                )
            });
            if !actual.is_object() && !only_expressions {
                both(out, indent, label, expected, actual, depth);
                return;
            }
            header(out, Mark::Same, indent, label);
            let inner = match label {
                Label::Root => indent,
                Label::Key(_) => indent + 2,
            };
            for (key, value, spec) in specs {
                diff_key(out, inner, key, value, spec, actual, depth + 1);
            }
        }
        Value::Array(items) => match actual {
            Value::Array(have) if have.len() == items.len() => {
                if items.is_empty() {
                    render(out, Mark::Same, indent, label, expected, depth);
                    return;
                }
                header(out, Mark::Same, indent, label);
                for (want, have) in items.iter().zip(have) {
                    diff_item(out, indent, want, Some(have), depth + 1);
                }
            }
            _ => both(out, indent, label, expected, actual, depth),
        },
        Value::String(text) => match string_spec("", text) {
            Ok(StringSpec::Literal(literal)) => {
                if scalar_equal(&Value::String(literal), actual) {
                    render(out, Mark::Same, indent, label, expected, depth);
                } else {
                    both(out, indent, label, expected, actual, depth);
                }
            }
            Ok(StringSpec::Expr(expr)) => match evaluate(&expr, actual) {
                Ok(want) if plain_match(&want, actual, 0) => {
                    render(out, Mark::Same, indent, label, expected, depth);
                }
                Ok(want) => {
                    let text = format!(
                        "{}  # = {}",
                        labelled(label, &yaml_string(text)),
                        show(&want)
                    );
                    line(out, Mark::Expected, indent, text);
                    render(out, Mark::Actual, indent, label, actual, depth);
                }
                Err(message) => {
                    render(out, Mark::Expected, indent, label, expected, depth);
                    let text = format!("{}  # {message}", labelled(label, &show(actual)));
                    line(out, Mark::Actual, indent, text);
                }
            },
            Err(err) => {
                render(out, Mark::Expected, indent, label, expected, depth);
                let text = format!("{}  # {}", labelled(label, &show(actual)), reason(&err));
                line(out, Mark::Actual, indent, text);
            }
        },
        scalar => {
            if scalar_equal(scalar, actual) {
                render(out, Mark::Same, indent, label, expected, depth);
            } else {
                both(out, indent, label, expected, actual, depth);
            }
        }
    }
}

/// One expected key of a map compared with `parent` (the actual node the map is matched with).
fn diff_key(
    out: &mut Vec<Line>,
    indent: usize,
    key: &str,
    expected: &Value,
    spec: Result<KeySpec, Error>,
    parent: &Value,
    depth: usize,
) {
    let label = Label::Key(key);
    let spec = match spec {
        Ok(spec) => spec,
        Err(err) => {
            render(out, Mark::Expected, indent, label, expected, depth);
            let text = format!("{}:  # {}", yaml_string(key), reason(&err));
            line(out, Mark::Actual, indent, text);
            return;
        }
    };
    let projected: Cow<'_, Value> = match &spec.target {
        Target::Field(field) => match parent.as_object().and_then(|map| map.get(field)) {
            Some(value) => Cow::Borrowed(value),
            None => {
                render(out, Mark::Expected, indent, label, expected, depth);
                return;
            }
        },
        Target::Expr(expr) => match evaluate(expr, parent) {
            Ok(value) => Cow::Owned(value),
            Err(message) => {
                render(out, Mark::Expected, indent, label, expected, depth);
                line(
                    out,
                    Mark::Actual,
                    indent,
                    format!("{}:  # {message}", yaml_string(key)),
                );
                return;
            }
        },
    };
    if !spec.foreach {
        diff_entry(out, indent, label, expected, Some(&projected), depth);
        return;
    }
    match projected.as_ref() {
        Value::Array(items) if !items.is_empty() => {
            header(out, Mark::Same, indent, label);
            for item in items {
                diff_item(out, indent, expected, Some(item), depth + 1);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            header(out, Mark::Same, indent, label);
            for (k, v) in map {
                diff_entry(out, indent + 2, Label::Key(k), expected, Some(v), depth + 1);
            }
        }
        Value::Array(_) | Value::Object(_) => {
            line(
                out,
                Mark::Same,
                indent,
                labelled(label, &scalar_text(&projected)),
            );
        }
        other => {
            render(out, Mark::Expected, indent, label, expected, depth);
            render(out, Mark::Actual, indent, label, other, depth);
        }
    }
}

/// The part of `actual` that `shape` (an expected node) was compared with: the same keys, an
/// `(expr)` key with its evaluated value, a foreach key with each element pruned.
fn prune(shape: &Value, actual: &Value, depth: usize) -> Value {
    if depth > MAX_ACTUAL_DEPTH {
        return Value::String("…".to_owned());
    }
    match (shape, actual) {
        (Value::Object(want), Value::Object(_)) if !want.is_empty() => {
            let mut out = Map::new();
            for (key, sub) in want {
                let Ok(spec) = key_spec("", key) else {
                    continue;
                };
                let projected = match &spec.target {
                    Target::Field(field) => match actual.get(field) {
                        Some(value) => bounded_clone(value, MAX_ACTUAL_DEPTH.saturating_sub(depth)),
                        None => continue,
                    },
                    Target::Expr(expr) => match evaluate(expr, actual) {
                        Ok(value) => value,
                        Err(message) => Value::String(format!("<{message}>")),
                    },
                };
                let pruned = if spec.foreach {
                    match projected {
                        Value::Array(items) => Value::Array(
                            items
                                .iter()
                                .map(|item| prune(sub, item, depth + 1))
                                .collect(),
                        ),
                        Value::Object(map) => Value::Object(
                            map.iter()
                                .map(|(k, v)| (k.clone(), prune(sub, v, depth + 1)))
                                .collect(),
                        ),
                        other => other,
                    }
                } else {
                    prune(sub, &projected, depth + 1)
                };
                out.insert(key.clone(), pruned);
            }
            Value::Object(out)
        }
        (Value::Object(want), Value::Array(items)) if !want.is_empty() => Value::Array(
            items
                .iter()
                .map(|item| prune(shape, item, depth + 1))
                .collect(),
        ),
        (Value::Array(want), Value::Array(items)) => match want.first() {
            None => bounded_clone(actual, MAX_ACTUAL_DEPTH.saturating_sub(depth)),
            Some(first) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| prune(want.get(i).unwrap_or(first), item, depth + 1))
                    .collect(),
            ),
        },
        _ => bounded_clone(actual, MAX_ACTUAL_DEPTH.saturating_sub(depth)),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => yaml_string(text),
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        other => show(other),
    }
}

/// A string as a YAML plain scalar when that reads back as the same string, else
/// double-quoted (JSON escapes).
fn yaml_string(text: &str) -> String {
    if plain_yaml(text) {
        text.to_owned()
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

fn plain_yaml(text: &str) -> bool {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let second = chars.next();
    if text.trim() != text || text.chars().any(char::is_control) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        let indicator_ok = matches!(first, '-' | '?' | ':')
            && second.is_some_and(|c| !c.is_whitespace() && !c.is_ascii_digit() && c != '.');
        if !indicator_ok {
            return false;
        }
    }
    if text.contains(": ") || text.contains(" #") || text.ends_with(':') {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) {
        return false;
    }
    !looks_numeric(&lower)
}

fn looks_numeric(lower: &str) -> bool {
    let body = lower.trim_start_matches(['+', '-']);
    let mut chars = body.chars();
    match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('.') => {
            matches!(body, ".inf" | ".nan") || chars.next().is_some_and(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Value {
        serde_saphyr::from_str(text).unwrap()
    }

    /// (path, message) of every mismatch.
    fn found(actual: &Value, expected: &Value) -> Vec<(String, String)> {
        mismatches(actual, expected)
            .unwrap()
            .into_iter()
            .map(|m| (m.path, m.message))
            .collect()
    }

    fn one(path: &str, message: &str) -> Vec<(String, String)> {
        vec![(path.to_owned(), message.to_owned())]
    }

    fn node(ready: &str) -> Value {
        yaml(&format!(
            r#"
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels:
    kubernetes.io/os: linux
status:
  capacity:
    cpu: "4"
    pods: "110"
  conditions:
  - type: MemoryPressure
    status: "False"
    reason: KubeletHasSufficientMemory
  - type: Ready
    status: "{ready}"
    reason: KubeletReady
"#
        ))
    }

    fn pod() -> Value {
        yaml(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  nodeName: node-1
  containers:
  - name: app
    image: nginx
  - name: sidecar
    image: busybox
status:
  phase: Running
  containerStatuses:
  - name: app
    ready: true
    restartCount: 0
    state:
      running:
        startedAt: "2024-01-01T00:00:00Z"
  - name: sidecar
    ready: false
    restartCount: 3
    state:
      waiting:
        reason: CrashLoopBackOff
"#,
        )
    }

    const READY: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: node-1
status:
  "(conditions[?type == 'Ready'])":
  - status: "True"
"#;

    #[test]
    fn node_ready_condition_by_filter() {
        let expected = yaml(READY);
        assert!(matches(&node("True"), &expected).unwrap());
        assert_eq!(
            found(&node("False"), &expected),
            one(
                "status.(conditions[?type == 'Ready'])[0].status",
                r#"expected "True", found "False""#
            )
        );
    }

    #[test]
    fn filter_that_finds_nothing_is_a_length_mismatch() {
        let mut actual = node("True");
        actual["status"]["conditions"] = json!([{"type": "MemoryPressure", "status": "False"}]);
        assert_eq!(
            found(&actual, &yaml(READY)),
            one(
                "status.(conditions[?type == 'Ready'])",
                "expected an array of 1 item, found 0 items"
            )
        );
    }

    #[test]
    fn condition_predicate_key() {
        let expected = json!({"status": {
            "(length(conditions[?type == 'Ready' && status == 'True']) == `1`)": true
        }});
        assert!(matches(&node("True"), &expected).unwrap());
        assert!(!matches(&node("Unknown"), &expected).unwrap());
    }

    #[test]
    fn pod_container_statuses() {
        let expected = yaml(
            r#"
status:
  phase: Running
  "(containerStatuses[?name == 'app'])":
  - ready: true
    restartCount: 0
"#,
        );
        assert!(matches(&pod(), &expected).unwrap());
        let expected = yaml(
            r#"
status:
  "(containerStatuses[?name == 'sidecar'])":
  - ready: true
    state:
      running: {}
"#,
        );
        assert_eq!(
            found(&pod(), &expected),
            vec![
                (
                    "status.(containerStatuses[?name == 'sidecar'])[0].ready".to_owned(),
                    "expected true, found false".to_owned()
                ),
                (
                    "status.(containerStatuses[?name == 'sidecar'])[0].state.running".to_owned(),
                    "field missing".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn whole_array_compared_element_by_element() {
        let expected =
            json!({"status": {"containerStatuses": [{"name": "app"}, {"name": "sidecar"}]}});
        assert!(matches(&pod(), &expected).unwrap());
        // same length, wrong order
        let expected =
            json!({"status": {"containerStatuses": [{"name": "sidecar"}, {"name": "app"}]}});
        assert_eq!(
            found(&pod(), &expected),
            vec![
                (
                    "status.containerStatuses[0].name".to_owned(),
                    r#"expected "sidecar", found "app""#.to_owned()
                ),
                (
                    "status.containerStatuses[1].name".to_owned(),
                    r#"expected "app", found "sidecar""#.to_owned()
                ),
            ]
        );
    }

    #[test]
    fn arrays_length_and_type_mismatch() {
        let expected = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(
            found(&pod(), &expected),
            one(
                "spec.containers",
                "expected an array of 1 item, found 2 items"
            )
        );
        assert_eq!(
            found(&json!({"a": null}), &json!({"a": [1]})),
            one("a", "expected an array, found null")
        );
        assert_eq!(
            found(&json!({"a": {"b": 1}}), &json!({"a": [1]})),
            one("a", r#"expected an array, found a map {"b":1}"#)
        );
        assert_eq!(found(&json!({"a": []}), &json!({"a": []})), vec![]);
        assert_eq!(
            found(&json!({"a": [1, 2]}), &json!({"a": []})),
            one("a", "expected an array of 0 items, found 2 items")
        );
        assert_eq!(
            found(&json!([[1, 2], [3]]), &json!([[1, 2], [4]])),
            one("[1][0]", "expected 4, found 3")
        );
    }

    #[test]
    fn foreach_over_array_and_map() {
        let expected = json!({"status": {"~.(containerStatuses)": {"ready": true}}});
        assert_eq!(
            found(&pod(), &expected),
            one(
                "status.~.(containerStatuses)[1].ready",
                "expected true, found false"
            )
        );
        // plain field foreach
        let expected = json!({"spec": {"~.containers": {"(length(name) > `2`)": true}}});
        assert!(matches(&pod(), &expected).unwrap());
        // over a map: every value
        let actual = json!({"metadata": {"labels": {"a": "x", "b": "yyyyyy"}}});
        let expected = json!({"metadata": {"~.labels": {"(length(@) < `5`)": true}}});
        assert_eq!(
            found(&actual, &expected),
            one(
                "metadata.~.labels[b].(length(@) < `5`)",
                "expected true, found false"
            )
        );
        // empty passes, null or scalar does not
        assert!(matches(&json!({"a": []}), &json!({"~.a": {"x": 1}})).unwrap());
        assert_eq!(
            found(&json!({}), &json!({"~.(a)": {"x": 1}})),
            one(
                "~.(a)",
                "expected an array or a map to iterate over, found null"
            )
        );
        assert_eq!(
            found(&json!({}), &json!({"~.a": {"x": 1}})),
            one("~.a", "field missing")
        );
        assert_eq!(
            found(&json!({"a": 3}), &json!({"~.a": 3})),
            one(
                "~.a",
                "expected an array or a map to iterate over, found number 3"
            )
        );
    }

    #[test]
    fn missing_fields() {
        let expected = json!({"spec": {"nodeName": "node-1", "hostNetwork": true}});
        assert_eq!(
            found(&pod(), &expected),
            one("spec.hostNetwork", "field missing")
        );
        // a missing parent is reported once, not per child
        let expected = json!({"status": {"podIP": "10.0.0.1"}, "spec": {"priority": {"x": 1}}});
        assert_eq!(
            found(&json!({"spec": {}}), &expected),
            vec![
                ("spec.priority".to_owned(), "field missing".to_owned()),
                ("status".to_owned(), "field missing".to_owned()),
            ]
        );
        // children of a null are missing
        assert_eq!(
            found(
                &json!({"status": null}),
                &json!({"status": {"phase": "Running", "podIP": "x"}})
            ),
            vec![
                ("status.phase".to_owned(), "field missing".to_owned()),
                ("status.podIP".to_owned(), "field missing".to_owned()),
            ]
        );
        // a plain key in a scalar
        assert_eq!(
            found(
                &json!({"status": "up"}),
                &json!({"status": {"phase": "Running", "x": 1}})
            ),
            one("status", r#"expected a map, found string "up""#)
        );
    }

    #[test]
    fn extra_actual_keys_are_ignored() {
        assert!(matches(&pod(), &json!({"kind": "Pod"})).unwrap());
        assert!(matches(&pod(), &json!({})).unwrap());
        assert!(matches(&pod(), &json!({"metadata": {}})).unwrap());
    }

    #[test]
    fn numbers_compare_numerically_without_coercion() {
        assert!(matches(&json!({"n": 1}), &json!({"n": 1.0})).unwrap());
        assert!(matches(&json!({"n": 1.0}), &json!({"n": 1})).unwrap());
        assert!(matches(&json!({"n": -3}), &json!({"n": -3.0})).unwrap());
        assert!(matches(&json!({"n": u64::MAX}), &json!({"n": u64::MAX})).unwrap());
        assert!(!matches(&json!({"n": u64::MAX}), &json!({"n": u64::MAX - 1})).unwrap());
        assert!(!matches(&json!({"n": -1}), &json!({"n": u64::MAX})).unwrap());
        assert!(matches(&json!({"n": 0.5}), &json!({"n": 0.5})).unwrap());
        assert_eq!(
            found(&json!({"n": 2}), &json!({"n": "2"})),
            one("n", r#"expected "2", found 2"#)
        );
        assert_eq!(
            found(&json!({"n": "2"}), &json!({"n": 2})),
            one("n", r#"expected 2, found "2""#)
        );
        assert_eq!(
            found(&json!({"b": "true"}), &json!({"b": true})),
            one("b", r#"expected true, found "true""#)
        );
        assert_eq!(
            found(&json!({"b": {"x": 1}}), &json!({"b": 1})),
            one("b", r#"expected 1, found {"x":1}"#)
        );
        // the node's capacity is a quantity string
        assert!(!matches(&node("True"), &json!({"status": {"capacity": {"cpu": 4}}})).unwrap());
        assert!(
            matches(
                &node("True"),
                &json!({"status": {"capacity": {"cpu": "4"}}})
            )
            .unwrap()
        );
        // length() gives an integer, comparable with a float
        assert!(matches(&pod(), &json!({"spec": {"(length(containers))": 2.0}})).unwrap());
    }

    #[test]
    fn null_expected() {
        assert!(matches(&json!({"a": null}), &json!({"a": null})).unwrap());
        assert_eq!(
            found(&json!({}), &json!({"a": null})),
            one("a", "field missing")
        );
        assert_eq!(
            found(&json!({"a": 1}), &json!({"a": null})),
            one("a", "expected null, found 1")
        );
        // absence is asserted with an expression
        assert!(matches(&json!({}), &json!({"(a)": null})).unwrap());
        assert!(matches(&json!({"a": null}), &json!({"(a)": null})).unwrap());
        assert!(!matches(&json!({"a": 0}), &json!({"(a)": null})).unwrap());
        let deleting = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}});
        assert_eq!(
            found(
                &deleting,
                &json!({"metadata": {"(deletionTimestamp)": null}})
            ),
            one(
                "metadata.(deletionTimestamp)",
                r#"expected null, found "2024-01-01T00:00:00Z""#
            )
        );
    }

    #[test]
    fn empty_map_asks_for_non_null() {
        assert_eq!(
            found(&json!({"a": null}), &json!({"a": {}})),
            one("a", "expected a value, found null")
        );
        assert!(matches(&json!({"a": {"b": 42}}), &json!({"a": {}})).unwrap());
        assert!(matches(&json!({"a": "x"}), &json!({"a": {}})).unwrap());
        assert_eq!(
            found(&json!({}), &json!({"a": {}})),
            one("a", "field missing")
        );
        assert_eq!(
            found(&json!(null), &json!({})),
            one("", "expected a value, found null")
        );
    }

    #[test]
    fn key_expressions() {
        let deployment = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        let expected = json!({"spec": {"(replicas > `1` && replicas < `4`)": true}});
        assert!(matches(&deployment, &expected).unwrap());
        let expected = json!({"spec": {"(replicas > `3`)": true}});
        assert_eq!(
            found(&deployment, &expected),
            one("spec.(replicas > `3`)", "expected true, found false")
        );
        // evaluated on the current node, whatever its type
        let expected = json!({"spec": {"containers": {"(length(@) > `0`)": true}}});
        assert!(matches(&pod(), &expected).unwrap());
        // the result is compared with the full rules: nested expression keys, partial maps
        let expected =
            json!({"(status.containerStatuses[?ready])": [{"name": "app", "(state.running)": {}}]});
        assert!(matches(&pod(), &expected).unwrap());
        // the explicit and the default engine
        assert!(matches(&pod(), &json!({"(jp;metadata.name)": "web"})).unwrap());
        assert!(matches(&pod(), &json!({"(default;metadata.name)": "web"})).unwrap());
        // a projection of the root
        assert!(matches(&pod(), &json!({"(@)": {"kind": "Pod"}})).unwrap());
    }

    #[test]
    fn value_expressions() {
        let deployment = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert!(matches(&deployment, &json!({"spec": {"replicas": "(`3`)"}})).unwrap());
        assert!(matches(&deployment, &json!({"spec": {"replicas": "(@)"}})).unwrap());
        assert_eq!(
            found(&deployment, &json!({"spec": {"replicas": "(`2`)"}})),
            one("spec.replicas", "expected 2 (the value of (`2`)), found 3")
        );
        // the result is the expected value: a predicate result does not equal the string
        assert_eq!(
            found(
                &pod(),
                &json!({"metadata": {"name": "(starts_with(@, 'w'))"}})
            ),
            one(
                "metadata.name",
                r#"expected true (the value of (starts_with(@, 'w'))), found "web""#
            )
        );
        // a map result matches partially, an array result by length and element
        assert!(matches(&pod(), &json!({"metadata": "({name: name})"})).unwrap());
        assert!(matches(&json!({"a": [1, 2]}), &json!({"a": "([`1`, `2.0`])"})).unwrap());
        assert!(!matches(&json!({"a": [1, 2, 3]}), &json!({"a": "([`1`, `2`])"})).unwrap());
        assert!(!matches(&json!({"a": 1}), &json!({"a": "({x: @})"})).unwrap());
        // on a missing key the value expression is not reached
        assert_eq!(
            found(&json!({}), &json!({"a": "(@)"})),
            one("a", "field missing")
        );
    }

    #[test]
    fn evaluation_failures_are_mismatches() {
        let got = found(&pod(), &json!({"spec": {"(length(missing))": 0}}));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "spec.(length(missing))");
        assert!(
            got[0]
                .1
                .starts_with("expression (length(missing)) failed: Runtime error"),
            "{}",
            got[0].1
        );
        let got = found(
            &pod(),
            &json!({"spec": {"nodeName": "(to_number(@) > `1`)"}}),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "spec.nodeName");
    }

    #[test]
    fn escaping() {
        let actual = json!({"foo": {"(bar)": 4, "~.x": "(y)"}});
        assert!(matches(&actual, &json!({"foo": {"\\(bar)\\": 4}})).unwrap());
        assert!(matches(&actual, &json!({"foo": {"\\~.x\\": "\\(y)\\"}})).unwrap());
        assert!(!matches(&actual, &json!({"foo": {"\\(bar)\\": 5}})).unwrap());
        assert!(matches(&json!({"a": "x -> y"}), &json!({"a": "\\x -> y\\"})).unwrap());
        // `\\` alone is not an escape
        assert!(matches(&json!({"\\": "\\"}), &json!({"\\": "\\"})).unwrap());
        assert!(matches(&json!({"\\\\": 1}), &json!({"\\\\": 1})).unwrap());
    }

    #[test]
    fn bad_expressions_are_refused_with_their_path() {
        let expected = json!({"status": {"(conditions[?type == 'Ready')": [{"status": "True"}]}});
        let err = check_expressions(&expected).unwrap_err();
        match &err {
            Error::Expression {
                path,
                expression,
                message,
            } => {
                assert_eq!(path, "status.(conditions[?type == 'Ready')");
                assert_eq!(expression, "(conditions[?type == 'Ready')");
                assert!(message.starts_with("Parse error"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("status.(conditions[?type == 'Ready'): bad expression")
        );
        // mismatches refuses too, even where matching would not reach
        assert!(mismatches(&json!({}), &expected).is_err());
        assert!(matches(&json!({}), &expected).is_err());
        // in a value, inside an array
        let expected = json!({"spec": {"containers": [{"name": "(foo[)"}]}});
        match check_expressions(&expected).unwrap_err() {
            Error::Expression { path, .. } => assert_eq!(path, "spec.containers[0].name"),
            other => panic!("{other:?}"),
        }
        // an unknown function
        let err = check_expressions(&json!({"(lookup('v1', 'Pod'))": 1})).unwrap_err();
        assert!(
            err.to_string()
                .contains("no such JMESPath function: lookup()"),
            "{err}"
        );
        // jmespath-community syntax standard JMESPath lacks
        for bad in ["(a + b)", "($x)", "(replicas > 3)", "( )", "(a[::0])"] {
            assert!(
                matches!(
                    check_expressions(&json!({ bad: 1 })),
                    Err(Error::Expression { .. })
                ),
                "{bad}"
            );
        }
        // the root
        let err = check_expressions(&json!("(a[)")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("<root>: bad expression \"(a[)\""),
            "{err}"
        );
        assert!(check_expressions(&pod()).is_ok());
        assert!(check_expressions(&yaml(READY)).is_ok());
    }

    #[test]
    fn unsupported_syntax_is_refused() {
        let cases = [
            json!({"(bar + bat)->sum": {"($sum)": 10}}),
            json!({"(a) -> b": 1}),
            json!({"~index.(containers)": {"name": "x"}}),
            json!({"(cel;object.spec)": 1}),
            json!({"(python;x)": 1}),
            json!({"a": "~.(x)"}),
            json!({"a": "x -> y"}),
            json!({"a": "(cel;x)"}),
        ];
        for case in cases {
            match check_expressions(&case) {
                Err(Error::Unsupported { .. }) => {}
                other => panic!("{case}: {other:?}"),
            }
        }
        let err = check_expressions(&json!({"spec": {"~i.(containers)": 1}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.~i.(containers): \"~i.(containers)\": a named foreach (`~i.`) binds `$i`, and \
             expressions here have no variables; write `~.`"
        );
    }

    #[test]
    fn syntax_follows_kyverno_json_regexes() {
        let s = parse_syntax("~.(containers)");
        assert_eq!(s.foreach, Some(None));
        assert_eq!(
            s.body,
            Body::Expression {
                engine: None,
                statement: "containers"
            }
        );
        let s = parse_syntax("~idx.\\baz\\");
        assert_eq!(s.foreach, Some(Some("idx")));
        assert_eq!(s.body, Body::Escaped("baz"));
        let s = parse_syntax("(bar + bat)->sum");
        assert_eq!(s.binding, Some("sum"));
        assert_eq!(
            s.body,
            Body::Expression {
                engine: None,
                statement: "bar + bat"
            }
        );
        // the greedy prefix keeps the space, so this is no longer an expression upstream either
        let s = parse_syntax("(a) -> b");
        assert_eq!(s.binding, Some("b"));
        assert_eq!(s.body, Body::Plain("(a) "));
        assert_eq!(
            parse_syntax("(cel;x)").body,
            Body::Expression {
                engine: Some("cel"),
                statement: "x"
            }
        );
        assert_eq!(
            parse_syntax("(a;)").body,
            Body::Expression {
                engine: None,
                statement: "a;"
            }
        );
        assert_eq!(parse_syntax("()").body, Body::Plain("()"));
        assert_eq!(parse_syntax("(").body, Body::Plain("("));
        assert_eq!(parse_syntax("(a").body, Body::Plain("(a"));
        assert_eq!(parse_syntax("(a\nb)").body, Body::Plain("(a\nb)"));
        assert_eq!(parse_syntax("\\\\").body, Body::Plain("\\\\"));
        assert_eq!(parse_syntax("~x").foreach, None);
        assert_eq!(parse_syntax("->").binding, None);
        assert_eq!(parse_syntax("a->b").binding, Some("b"));
    }

    #[test]
    fn odd_keys_are_plain_fields() {
        for key in [
            "(",
            "()",
            "(a",
            ")",
            "a)",
            "~",
            "~x",
            "->",
            "-> ",
            "ünï(κ)",
            "(\n)",
            "",
            " ",
            "🙂",
        ] {
            let actual = json!({ key: 1 });
            let expected = json!({ key: 1 });
            assert!(matches(&actual, &expected).unwrap(), "{key:?}");
            assert_eq!(
                found(&json!({}), &expected),
                one(key, "field missing"),
                "{key:?}"
            );
        }
        // unicode inside an expression
        let actual = json!({"ключ": {"ü": "ß"}});
        assert!(matches(&actual, &json!({"(\"ключ\".\"ü\")": "ß"})).unwrap());
        assert!(matches(&actual, &json!({"(ключ)": 1})).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut expected = json!(1);
        for _ in 0..1000 {
            expected = json!({ "a": expected });
        }
        assert!(matches!(
            check_expressions(&expected),
            Err(Error::TooDeep { .. })
        ));
        assert!(matches!(
            mismatches(&json!({}), &expected),
            Err(Error::TooDeep { .. })
        ));
        let _ = diff(&json!({}), &expected);

        // built without json!, which serializes its arguments recursively
        let deep = || {
            let mut value = json!(1);
            for _ in 0..2000 {
                value = Value::Array(vec![value]);
            }
            let mut map = Map::new();
            map.insert("a".to_owned(), value);
            Value::Object(map)
        };
        let got = found(&deep(), &json!({"(a)": 1}));
        assert_eq!(got.len(), 1);
        assert!(got[0].1.contains("not evaluated"), "{}", got[0].1);
        assert!(!matches(&deep(), &json!({"a": "(`1`)"})).unwrap());
        assert!(!matches(&deep(), &json!({"a": [[1]]})).unwrap());
        assert!(!matches(&deep(), &json!({"a": "(@)"})).unwrap());
        let _ = diff(&deep(), &json!({"a": [1]}));
        let _ = diff(&deep(), &json!({"a": 1}));
        let _ = diff(&deep(), &json!({"a": "(@)"}));

        // expressions that would recurse deeply in the parser or interpreter
        let parens = format!("({}a{})", "(".repeat(5000), ")".repeat(5000));
        assert!(check_expressions(&json!({ parens: 1 })).is_err());
        let nots = format!("({}a)", "!".repeat(60));
        assert!(check_expressions(&json!({ nots: true })).is_ok());
        let chain = format!("({})", vec!["a"; 2000].join("."));
        assert!(check_expressions(&json!({ chain: 1 })).is_err());
        let chain = format!("({})", vec!["a"; 50].join("."));
        assert!(check_expressions(&json!({ chain: 1 })).is_ok());
        let long = format!("({})", "a".repeat(10_000));
        assert!(check_expressions(&json!({ long: 1 })).is_err());
        let brackets = format!("(a{})", "[0]".repeat(60));
        assert!(matches(&json!({"a": 1}), &json!({ brackets: null })).unwrap());
    }

    #[test]
    fn odd_slices_do_not_panic() {
        let actual = json!({"a": [1, 2, 3]});
        for expr in [
            "(a[1::2147483647])",
            "(a[::-2147483647])",
            "(a[2147483647:])",
            "(a[-2147483647])",
        ] {
            let _ = mismatches(&actual, &json!({ expr: [] }));
        }
        assert!(check_expressions(&json!({"(a[1::2147483647])": 1})).is_err());
        assert!(matches(&actual, &json!({"(a[::-1])": [3, 2, 1]})).unwrap());
        assert!(matches(&actual, &json!({"(a[-1])": 3})).unwrap());
    }

    /// Many generated keys and values over a small alphabet full of syntax: no panic.
    #[test]
    fn generated_inputs_do_not_panic() {
        const ALPHABET: &[&str] = &[
            "(", ")", "[", "]", "{", "}", "~", ".", "\\", "-", ">", ";", "?", "@", "`", "'", "\"",
            "*", "|", "&", "!", "=", "<", ":", ",", "$", " ", "\n", "a", "b", "0", "1", "-1", "ü",
            "🙂", "jp;", "cel;", "length(", "[?", "==", "->", "~.",
        ];
        let actual = json!({"a": [1, {"b": "x"}, null], "b": {"c": true}, "": 0, "(a)": 1});
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = (next() % 12) as usize;
            let text: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            for expected in [
                json!({ text.clone(): 1 }),
                json!({ "a": text.clone() }),
                json!({ text.clone(): { "b": text.clone() } }),
                json!([text.clone()]),
                json!({ format!("({text})"): [text.clone()] }),
            ] {
                let _ = check_expressions(&expected);
                let _ = mismatches(&actual, &expected);
                let _ = diff(&actual, &expected);
            }
        }
    }

    #[test]
    fn mismatch_and_error_display() {
        let m = Mismatch {
            path: "status.phase".to_owned(),
            message: "field missing".to_owned(),
        };
        assert_eq!(m.to_string(), "status.phase: field missing");
        let m = Mismatch {
            path: String::new(),
            message: "expected a value, found null".to_owned(),
        };
        assert_eq!(m.to_string(), "<root>: expected a value, found null");
        let long = "x".repeat(500);
        let got = found(&json!({ "a": long }), &json!({"a": "y"}));
        assert!(
            got[0].1.ends_with('…') && got[0].1.chars().count() < 230,
            "{}",
            got[0].1
        );
    }

    #[test]
    fn diff_of_a_failing_condition() {
        let got = diff(&node("False"), &yaml(READY));
        let want = "  apiVersion: v1
  kind: Node
  metadata:
    name: node-1
  status:
    (conditions[?type == 'Ready']):
-   - status: \"True\"
+   - status: \"False\"
";
        assert_eq!(got, want, "\n{got}");
        // matching: every line is equal
        let got = diff(&node("True"), &yaml(READY));
        assert!(got.lines().all(|l| l.starts_with("  ")), "{got}");
    }

    #[test]
    fn diff_shows_missing_fields_and_evaluated_keys() {
        let mut actual = node("True");
        actual["status"]["conditions"] = json!([{"type": "MemoryPressure", "status": "False"}]);
        let expected = yaml(
            r#"
metadata:
  name: node-1
  annotations:
    foo: bar
status:
  "(conditions[?type == 'Ready'])":
  - status: "True"
    reason: KubeletReady
"#,
        );
        let got = diff(&actual, &expected);
        let want = "  metadata:
-   annotations:
-     foo: bar
    name: node-1
  status:
-   (conditions[?type == 'Ready']):
-   - reason: KubeletReady
-     status: \"True\"
+   (conditions[?type == 'Ready']): []
";
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn diff_prunes_the_actual_side_to_the_compared_keys() {
        let expected = json!({"spec": {"containers": [{"name": "app"}]}});
        let got = diff(&pod(), &expected);
        let want = "  spec:
-   containers:
-   - name: app
+   containers:
+   - name: app
+   - name: sidecar
";
        assert_eq!(got, want, "\n{got}");
        // a map expected where a scalar is: the whole actual value
        let got = diff(&json!({"a": 1}), &json!({"a": {"(@)": 1, "b": 2}}));
        let want = "- a:
-   (@): 1
-   b: 2
+ a: 1
";
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn diff_of_foreach_and_value_expressions() {
        let expected = json!({"status": {"~.(containerStatuses)": {"ready": true}}});
        let got = diff(&pod(), &expected);
        let want = "  status:
    ~.(containerStatuses):
    - ready: true
-   - ready: true
+   - ready: false
";
        assert_eq!(got, want, "\n{got}");
        let got = diff(
            &json!({"spec": {"replicas": 3}}),
            &json!({"spec": {"replicas": "(`2`)"}}),
        );
        let want = "  spec:
-   replicas: (`2`)  # = 2
+   replicas: 3
";
        assert_eq!(got, want, "\n{got}");
        let got = diff(&json!({"spec": {}}), &json!({"spec": {"(length(x))": 1}}));
        assert!(
            got.contains("- ") && got.contains("+   (length(x)):  # expression (length(x)) failed"),
            "\n{got}"
        );
    }

    #[test]
    fn diff_of_nested_arrays_and_scalars() {
        let got = diff(&json!([[1, 2], [3]]), &json!([[1, 2], [4]]));
        let want = "  - - 1
    - 2
- - - 4
+ - - 3
";
        assert_eq!(got, want, "\n{got}");
        let got = diff(
            &json!({"s": "True", "n": "1", "e": ""}),
            &json!({"s": "True", "n": 1, "e": ""}),
        );
        // `n` alone is a YAML 1.1 boolean, so the key is quoted
        let want = "  e: \"\"
- \"n\": 1
+ \"n\": \"1\"
  s: \"True\"
";
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn yaml_strings() {
        for (text, shown) in [
            ("Running", "Running"),
            ("True", "\"True\""),
            ("no", "\"no\""),
            ("1.28", "\"1.28\""),
            ("-1", "\"-1\""),
            ("-x", "-x"),
            ("", "\"\""),
            (" a", "\" a\""),
            ("a: b", "\"a: b\""),
            ("a #b", "\"a #b\""),
            ("#a", "\"#a\""),
            ("a\nb", "\"a\\nb\""),
            (
                "(conditions[?type == 'Ready'])",
                "(conditions[?type == 'Ready'])",
            ),
            ("~.(containers)", "~.(containers)"),
            ("~", "\"~\""),
            ("nginx:1.25", "nginx:1.25"),
            ("kubernetes.io/os", "kubernetes.io/os"),
        ] {
            assert_eq!(yaml_string(text), shown, "{text:?}");
        }
    }
}
