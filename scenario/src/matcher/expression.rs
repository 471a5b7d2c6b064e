//! JMESPath expressions: compiled within limits, evaluated without panicking.

use std::panic::{AssertUnwindSafe, catch_unwind};

use jmespath::ast::Ast;
use serde_json::Value;

use super::{
    Error, MAX_ACTUAL_DEPTH, MAX_AST_DEPTH, MAX_EXPRESSION_GROUPS, MAX_EXPRESSION_LEN,
    MAX_SLICE_STEP,
};

/// A compiled JMESPath expression and the key or value it was written as.
pub(super) struct Expr {
    pub(super) text: String,
    program: jmespath::Expression<'static>,
}

/// Syntax this matcher refuses, at `path`, written as `text`.
pub(super) fn unsupported(path: &str, text: &str, message: impl Into<String>) -> Error {
    Error::Unsupported {
        path: path.to_owned(),
        text: text.to_owned(),
        message: message.into(),
    }
}

pub(super) fn compile_expression(
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
pub(super) fn evaluate(expr: &Expr, current: &Value) -> Result<Value, String> {
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
