//! Container logs as the kubelet serves them, as pure functions: the `PodLogOptions` (v1) query,
//! the CRI log line format `<RFC3339Nano> <stdout|stderr> <P|F> <text>`, and what the client
//! sees (partial lines joined, `sinceSeconds`/`sinceTime`, `tailLines`, `limitBytes`,
//! `timestamps` as `<RFC3339Nano, 9 digits> <text>`).

use jiff::Timestamp;

use super::query;

/// The decoded `/containerLogs` query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    /// Lines older than this are left out (the later of sinceSeconds and sinceTime).
    pub since: Option<Timestamp>,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
}

/// A refused query, with upstream's status and text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogQueryError {
    /// 400: a parameter could not be decoded.
    #[error("{{\"message\": \"Unable to decode query.\"}}")]
    Decode,
    /// 422: decoded, but not valid PodLogOptions.
    #[error("{{\"message\": \"Invalid request.\"}}")]
    Invalid,
    /// 400: a single stream was asked for (feature gate PodLogsQuerySplitStreams is off).
    #[error("unable to return the given log stream: {0:?}. Please enable PodLogsQuerySplitStreams feature gate in kubelet")]
    Stream(String),
}

impl LogQueryError {
    /// The HTTP status upstream answers with.
    pub fn status(&self) -> u16 {
        match self {
            LogQueryError::Invalid => 422,
            _ => 400,
        }
    }
}

fn int(query: &str, name: &str) -> Result<Option<i64>, LogQueryError> {
    match query::first(query, name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| LogQueryError::Decode),
    }
}

/// Decodes and validates the query (`tail` is the older name of `tailLines`; `tail=all` means
/// no limit). `now` resolves sinceSeconds.
pub fn parse_log_query(q: &str, now: Timestamp) -> Result<LogOptions, LogQueryError> {
    let flag = |name: &str| query::first(q, name).is_some_and(|v| query::boolean(&v));
    let mut tail = int(q, "tailLines")?;
    if let Some(t) = query::first(q, "tail").filter(|t| !t.is_empty()) {
        tail = if t == "all" { None } else { Some(t.parse().map_err(|_| LogQueryError::Decode)?) };
    }
    let limit = int(q, "limitBytes")?;
    let since_seconds = int(q, "sinceSeconds")?;
    let since_time = match query::first(q, "sinceTime").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<Timestamp>().map_err(|_| LogQueryError::Decode)?),
    };
    if tail.is_some_and(|t| t < 0) || limit.is_some_and(|l| l < 1) || since_seconds.is_some_and(|s| s < 1) {
        return Err(LogQueryError::Invalid);
    }
    if since_seconds.is_some() && since_time.is_some() {
        return Err(LogQueryError::Invalid);
    }
    if let Some(s) = query::first(q, "stream").filter(|s| !s.is_empty() && s != "All") {
        return Err(LogQueryError::Stream(s));
    }
    let since = match (since_seconds, since_time) {
        (Some(s), _) => now.checked_sub(jiff::SignedDuration::from_secs(s)).ok(),
        (None, t) => t,
    };
    Ok(LogOptions {
        follow: flag("follow"),
        previous: flag("previous"),
        timestamps: flag("timestamps"),
        since,
        tail_lines: tail.map(|t| t as u64),
        limit_bytes: limit.map(|l| l as u64),
    })
}

/// One parsed CRI log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: Timestamp,
    pub stderr: bool,
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parses one CRI log line (without its newline); `None` for a line not in the format.
pub fn parse_cri_line(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.parse::<Timestamp>().ok()?;
    let stderr = match parts.next()? {
        b"stdout" => false,
        b"stderr" => true,
        _ => return None,
    };
    // Tags are `:`-separated; the first says partial (P) or full (F).
    let tags = parts.next()?;
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    Some(Record { time, stderr, partial, text: parts.next().unwrap_or(b"") })
}

/// A timestamp as kubelet prints it (RFC 3339, nanoseconds always 9 digits, UTC).
pub fn format_timestamp(t: Timestamp) -> String {
    format!("{}.{:09}Z", t.strftime("%Y-%m-%dT%H:%M:%S"), t.subsec_nanosecond())
}

/// True when raw line `line` ends a logical line (an F record; `last` makes a trailing P count).
fn ends_line(line: &[u8], last: bool) -> bool {
    parse_cri_line(line).is_some_and(|r| !r.partial || last)
}

/// Index of the first raw line of the last `n` logical lines of `lines`.
pub fn tail_start(lines: &[&[u8]], n: u64) -> usize {
    let mut seen = 0u64;
    for i in (0..lines.len()).rev() {
        if ends_line(lines[i], i + 1 == lines.len()) {
            if seen == n {
                return i + 1;
            }
            seen += 1;
        }
    }
    0
}

/// Turns raw CRI lines into what the client sees: partial records joined into one line (with the
/// first record's time), lines before `since` left out, the timestamp prefix, the byte limit.
#[derive(Debug)]
pub struct LogFormatter {
    timestamps: bool,
    since: Option<Timestamp>,
    remaining: Option<u64>,
    pending: Option<(Timestamp, Vec<u8>)>,
}

impl LogFormatter {
    pub fn new(opts: &LogOptions) -> LogFormatter {
        LogFormatter { timestamps: opts.timestamps, since: opts.since, remaining: opts.limit_bytes, pending: None }
    }

    /// True once the byte limit is reached: nothing more is written.
    pub fn done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Feeds one raw line (without its newline); appends the output to `out`.
    pub fn push(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let Some(r) = parse_cri_line(raw) else { return };
        let (time, mut text) = self.pending.take().unwrap_or((r.time, Vec::new()));
        text.extend_from_slice(r.text);
        if r.partial {
            self.pending = Some((time, text));
            return;
        }
        text.push(b'\n');
        self.emit(time, &text, out);
    }

    /// Writes a pending partial line as it is (the end of a log that is not followed).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some((time, text)) = self.pending.take() {
            self.emit(time, &text, out);
        }
    }

    fn emit(&mut self, time: Timestamp, text: &[u8], out: &mut Vec<u8>) {
        if self.done() || self.since.is_some_and(|s| time < s) {
            return;
        }
        let mut line = Vec::with_capacity(text.len() + 32);
        if self.timestamps {
            line.extend_from_slice(format_timestamp(time).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(text);
        if let Some(rem) = self.remaining.as_mut() {
            line.truncate(usize::try_from(*rem).unwrap_or(usize::MAX));
            *rem -= line.len() as u64;
        }
        out.extend_from_slice(&line);
    }
}

/// Splits `data` at newlines: the complete lines (without newline) and the length they cover.
pub fn complete_lines(data: &[u8]) -> (Vec<&[u8]>, usize) {
    let end = data.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
    let lines = if end == 0 { Vec::new() } else { data[..end - 1].split(|b| *b == b'\n').collect() };
    (lines, end)
}

/// The whole answer for a log that is read once (not followed): `tailLines` of the logical
/// lines, then the other options; an unterminated last line counts as a line.
pub fn render_log(data: &[u8], opts: &LogOptions) -> Vec<u8> {
    let (mut lines, end) = complete_lines(data);
    if end < data.len() {
        lines.push(&data[end..]);
    }
    let start = opts.tail_lines.map(|n| tail_start(&lines, n)).unwrap_or(0);
    let mut f = LogFormatter::new(opts);
    let mut out = Vec::new();
    for l in &lines[start..] {
        f.push(l, &mut out);
        if f.done() {
            return out;
        }
    }
    f.finish(&mut out);
    out
}

#[cfg(test)]
mod tests;
