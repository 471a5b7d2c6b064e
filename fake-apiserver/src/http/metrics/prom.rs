//! The kubelet's `/metrics/resource` (Prometheus text format) read as metrics-server's
//! `decodeBatch` does: a small parser for sample lines (name, labels, value, optional
//! millisecond timestamp; comments and blank lines skipped, any metric name accepted) and the
//! decoding of the node and container series into a [`Batch`].

use std::collections::BTreeMap;

use super::storage::{Batch, Containers, Point, PodKey, Time};

pub const NODE_CPU: &str = "node_cpu_usage_seconds_total";
pub const NODE_MEMORY: &str = "node_memory_working_set_bytes";
pub const CONTAINER_CPU: &str = "container_cpu_usage_seconds_total";
pub const CONTAINER_MEMORY: &str = "container_memory_working_set_bytes";
pub const CONTAINER_START: &str = "container_start_time_seconds";

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carries one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `key` ("" when absent).
    pub fn label(&self, key: &str) -> &str {
        self.labels.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }
}

/// What is wrong with a sample line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("invalid metric name")]
    Name,
    #[error("invalid label name")]
    LabelName,
    #[error("expected '=' after a label name")]
    LabelEquals,
    #[error("expected '\"' opening a label value")]
    LabelQuote,
    #[error("unterminated label value")]
    Unterminated,
    #[error("expected ',' or '}}' after a label")]
    LabelSeparator,
    #[error("missing value")]
    MissingValue,
    #[error("invalid value {0:?}")]
    Value(String),
    #[error("invalid timestamp {0:?}")]
    Timestamp(String),
    #[error("unexpected text after the timestamp")]
    Trailing,
}

/// A malformed exposition (upstream fails the node's whole scrape on it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed parsing metrics: line {line}: {error}")]
pub struct ParseError {
    pub line: usize,
    pub error: LineError,
}

/// A cursor over one line.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    /// The next character.
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }
    /// The next character, consumed.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }
    /// Skips spaces and tabs.
    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.i += 1;
        }
    }
    /// The longest run of characters from here that `ok(index, char)` accepts.
    fn take(&mut self, ok: impl Fn(usize, char) -> bool) -> &'a str {
        let start = self.i;
        while let Some(c) = self.peek().filter(|c| ok(self.i - start, *c)) {
            self.i += c.len_utf8();
        }
        &self.s[start..self.i]
    }
    /// Everything up to the next blank.
    fn token(&mut self) -> &'a str {
        self.take(|_, c| c != ' ' && c != '\t')
    }
}

/// Whether `c` may stand at index `i` of a metric name (`colon`) or label name.
fn name_char(i: usize, c: char, colon: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (i > 0 && c.is_ascii_digit())
}

/// A label value after its opening quote, unescaping `\\`, `\"` and `\n` (any other escape
/// is kept as written, as Prometheus' lexer does).
fn label_value(cur: &mut Cursor<'_>) -> Result<String, LineError> {
    let mut out = String::new();
    loop {
        match cur.bump().ok_or(LineError::Unterminated)? {
            '"' => return Ok(out),
            '\\' => match cur.bump().ok_or(LineError::Unterminated)? {
                'n' => out.push('\n'),
                c @ ('\\' | '"') => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            },
            c => out.push(c),
        }
    }
}

/// `{name="value",...}` after the opening brace; a trailing comma is allowed.
fn labels(cur: &mut Cursor<'_>) -> Result<Vec<(String, String)>, LineError> {
    let mut out = Vec::new();
    loop {
        cur.skip_blanks();
        if cur.peek() == Some('}') {
            cur.bump();
            return Ok(out);
        }
        let name = cur.take(|i, c| name_char(i, c, false));
        if name.is_empty() {
            return Err(LineError::LabelName);
        }
        cur.skip_blanks();
        if cur.bump() != Some('=') {
            return Err(LineError::LabelEquals);
        }
        cur.skip_blanks();
        if cur.bump() != Some('"') {
            return Err(LineError::LabelQuote);
        }
        out.push((name.to_string(), label_value(cur)?));
        cur.skip_blanks();
        match cur.bump() {
            Some(',') => {}
            Some('}') => return Ok(out),
            _ => return Err(LineError::LabelSeparator),
        }
    }
}

/// A sample value as Go's `strconv.ParseFloat` reads the usual forms (`1.5`, `1e9`, `+Inf`,
/// `NaN`).
fn value(token: &str) -> Result<f64, LineError> {
    token.parse::<f64>().map_err(|_| LineError::Value(token.to_string()))
}

/// One sample line (not blank, not a comment).
pub fn parse_line(line: &str) -> Result<Sample, LineError> {
    let mut cur = Cursor { s: line, i: 0 };
    cur.skip_blanks();
    let name = cur.take(|i, c| name_char(i, c, true)).to_string();
    if name.is_empty() {
        return Err(LineError::Name);
    }
    cur.skip_blanks();
    let labels = if cur.peek() == Some('{') {
        cur.bump();
        labels(&mut cur)?
    } else {
        Vec::new()
    };
    cur.skip_blanks();
    let v = cur.token();
    if v.is_empty() {
        return Err(LineError::MissingValue);
    }
    let value = value(v)?;
    cur.skip_blanks();
    let ts = cur.token();
    let timestamp_ms = if ts.is_empty() { None } else { Some(ts.parse::<i64>().map_err(|_| LineError::Timestamp(ts.to_string()))?) };
    cur.skip_blanks();
    if cur.peek().is_some() {
        return Err(LineError::Trailing);
    }
    Ok(Sample { name, labels, value, timestamp_ms })
}

/// Every sample of an exposition, in order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(parse_line(t).map_err(|error| ParseError { line: n + 1, error })?);
    }
    Ok(out)
}

/// Core-seconds as core-nanoseconds (Go's `uint64(value * 1e9)`; negative and NaN give 0).
fn nanos(seconds: f64) -> u64 {
    (seconds * 1e9) as u64
}

/// Upstream's `checkContainerMetrics`: the pod's containers that recorded something, or
/// `None` (the whole pod is dropped) when one of them lacks CPU or memory.
fn complete_containers(containers: Containers) -> Option<Containers> {
    let mut out = Containers::new();
    for (name, p) in containers {
        if p == Point::EMPTY {
            continue;
        }
        if p.cpu == 0 || p.memory == 0 {
            return None;
        }
        out.insert(name, p);
    }
    Some(out)
}

/// Upstream's `decodeBatch`: node `node`'s point and its containers' points. A sample without
/// a timestamp is taken at `request_time`; the last CPU or memory sample sets a point's
/// timestamp. A node lacking CPU or memory is left out, and so is a pod any of whose
/// containers lacks one.
pub fn decode_batch(text: &str, request_time: Time, node: &str) -> Result<Batch, ParseError> {
    let default_ms = request_time.millis();
    let mut node_point = Point::EMPTY;
    let mut pods: BTreeMap<PodKey, Containers> = BTreeMap::new();
    for s in parse(text)? {
        let ts = Time::from_millis(s.timestamp_ms.unwrap_or(default_ms));
        match s.name.as_str() {
            NODE_CPU => (node_point.cpu, node_point.timestamp) = (nanos(s.value), ts),
            NODE_MEMORY => (node_point.memory, node_point.timestamp) = (s.value as u64, ts),
            CONTAINER_CPU | CONTAINER_MEMORY | CONTAINER_START => {
                let key = (s.label("namespace").to_string(), s.label("pod").to_string());
                let p = pods.entry(key).or_default().entry(s.label("container").to_string()).or_insert(Point::EMPTY);
                match s.name.as_str() {
                    CONTAINER_CPU => (p.cpu, p.timestamp) = (nanos(s.value), ts),
                    CONTAINER_MEMORY => (p.memory, p.timestamp) = (s.value as u64, ts),
                    _ => p.start = Time(i128::from((s.value * 1e9) as i64)),
                }
            }
            _ => {}
        }
    }
    let mut batch = Batch::default();
    if node_point.timestamp == Time::ZERO || node_point.cpu == 0 || node_point.memory == 0 {
        tracing::debug!(node, "incomplete node metrics: {node_point:?}");
    } else {
        batch.nodes.insert(node.to_string(), node_point);
    }
    for (key, containers) in pods {
        match complete_containers(containers) {
            Some(c) => {
                batch.pods.insert(key, c);
            }
            None => tracing::debug!(pod = %format!("{}/{}", key.0, key.1), "incomplete pod metrics"),
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests;
