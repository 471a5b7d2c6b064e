//! Syntax of keys and string values (kyverno-json `pkg/core/expression/expression.go`).

/// A key or string value taken apart the way kyverno-json's `expression.Parse` does.
#[derive(Debug, PartialEq)]
pub(super) struct Syntax<'a> {
    /// `~.` (None) or `~name.` (Some(name)).
    pub(super) foreach: Option<Option<&'a str>>,
    /// `… -> name`.
    pub(super) binding: Option<&'a str>,
    pub(super) body: Body<'a>,
}

#[derive(Debug, PartialEq)]
pub(super) enum Body<'a> {
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

pub(super) fn parse_syntax(text: &str) -> Syntax<'_> {
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
