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

use std::fmt;

use serde_json::Value;

mod check;
mod expression;
mod syntax;
mod text;
mod tree;
mod yaml_diff;

#[cfg(test)]
mod tests;

use check::check;
use text::shown_path;
use tree::compile;

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
    yaml_diff::text(actual, expected)
}
