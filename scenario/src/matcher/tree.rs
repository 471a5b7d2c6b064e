//! The compiled assertion tree (kyverno-json `pkg/core/assertion/assertion.go`): what each
//! key and string value of the expected object stands for.

use serde_json::Value;

use super::expression::{Expr, compile_expression, unsupported};
use super::syntax::{Body, parse_syntax};
use super::text::{child_path, index_path};
use super::{Error, MAX_DEPTH};

/// What a map key projects.
pub(super) enum Target {
    Field(String),
    Expr(Expr),
}

pub(super) struct KeySpec {
    pub(super) foreach: bool,
    pub(super) target: Target,
}

/// What an expected string value stands for.
pub(super) enum StringSpec {
    Literal(String),
    Expr(Expr),
}

const NO_BINDINGS: &str = "bindings (`-> name`) are not supported: expressions here are \
                           standard JMESPath, without `$variables`";

/// `path` is the path of the key itself.
pub(super) fn key_spec(path: &str, key: &str) -> Result<KeySpec, Error> {
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

pub(super) fn string_spec(path: &str, value: &str) -> Result<StringSpec, Error> {
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

pub(super) enum Node {
    Map(Vec<Entry>),
    Array(Vec<Node>),
    /// A number, bool, null or literal string.
    Literal(Value),
    /// A string value `(expr)`.
    Expr(Expr),
}

pub(super) struct Entry {
    /// The key as written (for paths).
    pub(super) key: String,
    pub(super) spec: KeySpec,
    pub(super) node: Node,
}

pub(super) fn compile(path: &str, expected: &Value, depth: usize) -> Result<Node, Error> {
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
