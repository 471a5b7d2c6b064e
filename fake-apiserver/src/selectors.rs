//! Label and field selectors: parsing (with upstream-like errors) and matching.

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceDesc;

#[derive(Debug, Clone, PartialEq)]
pub enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector: all requirements must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSelector(pub Vec<LabelReq>);

fn valid_name_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

pub fn valid_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && crate::validation::is_dns1123_subdomain(prefix)
                && valid_name_part(name, 63)
        }
        None => valid_name_part(key, 63),
    }
}

pub fn valid_label_value(v: &str) -> bool {
    v.is_empty() || valid_name_part(v, 63)
}

fn split_top(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn bad(msg: String) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {msg}"))
}

fn check_key(key: &str) -> Result<String, ApiError> {
    if !valid_label_key(key) {
        return Err(bad(format!("Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
    }
    Ok(key.to_string())
}

fn check_value(v: &str) -> Result<String, ApiError> {
    if !valid_label_value(v) {
        return Err(bad(format!("values[0][]: Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
    }
    Ok(v.to_string())
}

fn parse_set(rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| ApiError::bad_request(format!("found '{rest}', expected: '('")))?;
    inner.split(',').map(|v| check_value(v.trim())).collect()
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(ApiError::bad_request(format!("found '', expected: identifier in selector {s:?}")));
            }
            if let Some(k) = p.strip_prefix('!') {
                reqs.push(LabelReq::NotExists(check_key(k.trim())?));
                continue;
            }
            if let Some((k, v)) = p.split_once("!=") {
                reqs.push(LabelReq::NotEq(check_key(k.trim())?, check_value(v.trim())?));
            } else if let Some((k, v)) = p.split_once("==") {
                reqs.push(LabelReq::Eq(check_key(k.trim())?, check_value(v.trim())?));
            } else if let Some((k, v)) = p.split_once('=') {
                reqs.push(LabelReq::Eq(check_key(k.trim())?, check_value(v.trim())?));
            } else if let Some((k, v)) = p.split_once('>') {
                let n = v.trim().parse().map_err(|_| bad(format!("for 'gt', 'lt' operators, the value must be an integer: {v:?}")))?;
                reqs.push(LabelReq::Gt(check_key(k.trim())?, n));
            } else if let Some((k, v)) = p.split_once('<') {
                let n = v.trim().parse().map_err(|_| bad(format!("for 'gt', 'lt' operators, the value must be an integer: {v:?}")))?;
                reqs.push(LabelReq::Lt(check_key(k.trim())?, n));
            } else if let Some(idx) = p.find(" notin ").or_else(|| p.find(" notin(")) {
                reqs.push(LabelReq::NotIn(check_key(p[..idx].trim())?, parse_set(&p[idx + 6..])?));
            } else if let Some(idx) = p.find(" in ").or_else(|| p.find(" in(")) {
                reqs.push(LabelReq::In(check_key(p[..idx].trim())?, parse_set(&p[idx + 3..])?));
            } else if p.contains(char::is_whitespace) || p.contains('(') {
                return Err(ApiError::bad_request(format!("couldn't parse the selector string {s:?}")));
            } else {
                reqs.push(LabelReq::Exists(check_key(p)?));
            }
        }
        Ok(LabelSelector(reqs))
    }

    /// Build from a map of equality requirements (a Service selector).
    pub fn from_map(map: &serde_json::Map<String, Value>) -> LabelSelector {
        LabelSelector(
            map.iter()
                .map(|(k, v)| LabelReq::Eq(k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect(),
        )
    }

    /// Build from a metav1 `LabelSelector` object (`matchLabels` and `matchExpressions` with
    /// In / NotIn / Exists / DoesNotExist, as `metav1.LabelSelectorAsSelector`); `None` when an
    /// expression is malformed.
    pub fn from_label_selector(sel: &Value) -> Option<LabelSelector> {
        let mut out = sel.get("matchLabels").and_then(Value::as_object).map(LabelSelector::from_map).unwrap_or_default();
        for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            let key = e.get("key").and_then(Value::as_str)?.to_string();
            let values: Vec<String> = e.get("values").and_then(Value::as_array).into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect();
            out.0.push(match e.get("operator").and_then(Value::as_str)? {
                "In" if !values.is_empty() => LabelReq::In(key, values),
                "NotIn" if !values.is_empty() => LabelReq::NotIn(key, values),
                "Exists" => LabelReq::Exists(key),
                "DoesNotExist" => LabelReq::NotExists(key),
                _ => return None,
            });
        }
        Some(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.matches_labels(labels)
    }

    pub fn matches_labels(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k).and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => get(k).and_then(|x| x.parse::<i64>().ok()).is_some_and(|x| x < *n),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldReq {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

/// A parsed field selector.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelector(pub Vec<FieldReq>);

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push('\\');
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if esc {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> Result<String, ApiError> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('\\' | ',' | '=' | '!')) => out.push(n),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid field selector: invalid escape sequence {:?}",
                        other.map(String::from).unwrap_or_default()
                    )));
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// Parse and check every field against what the resource supports.
    pub fn parse(s: &str, desc: &ResourceDesc) -> Result<FieldSelector, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for part in split_unescaped(s, ',') {
            let (field, value, negate) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" && !desc.field_selectors.contains(&field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            reqs.push(FieldReq { field: field.to_string(), value: unescape(value)?, negate });
        }
        Ok(FieldSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value a field takes for selection, or "" when absent.
    pub fn field_value(obj: &Value, field: &str) -> String {
        let path = if field == "source" { "source.component" } else { field };
        let mut cur = obj;
        for seg in path.split('.') {
            match cur.get(seg) {
                Some(v) => cur = v,
                None => {
                    return match field {
                        "spec.unschedulable" | "spec.hostNetwork" => "false".into(),
                        _ => String::new(),
                    };
                }
            }
        }
        match cur {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|r| (Self::field_value(obj, &r.field) == r.value) != r.negate)
    }
}
