//! The YAML tree: every node with its position (serde-saphyr's spans), the parser's options
//! and the conversion to JSON.

use serde_json::{Map as JsonMap, Value};

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
    pub(crate) fn type_name(&self) -> &'static str {
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
    pub(crate) fn scalar_text(&self) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
