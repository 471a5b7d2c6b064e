//! Escaping and formatting of text.

use std::fmt::Write as _;

use crate::record::Outcome;

/// Escaped for HTML text and attribute values; control characters other than tab and newline
/// are dropped.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

pub(super) fn is_web_url(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !s.chars().any(char::is_whitespace)
}

/// A link for an artifact path: web URLs as they are, relative paths percent-encoded; None for
/// anything with another scheme (`javascript:`, `data:`, a drive letter).
pub(super) fn artifact_href(path: &str) -> Option<String> {
    if is_web_url(path) {
        return Some(path.to_string());
    }
    let first_segment = path.split('/').next().unwrap_or("");
    if first_segment.contains(':') || path.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}

pub(super) fn badge(o: Outcome) -> String {
    format!(
        "<span class=\"badge\" data-outcome=\"{0}\">{0}</span>",
        o.as_str()
    )
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A time since the scenario's start.
pub(super) fn secs(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}

/// A length of time.
pub(super) fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else {
        let s = ms / 1000;
        format!("{}m {:02}.{} s", s / 60, s % 60, (ms % 1000) / 100)
    }
}

pub(super) fn ellipsize(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
