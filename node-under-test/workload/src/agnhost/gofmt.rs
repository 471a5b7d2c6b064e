//! What agnhost's output looks like because it is written in Go: `log` lines
//! (`2006/01/02 15:04:05 msg` on stderr), `time.Time.String()`, `time.Duration.String()`,
//! `time.ParseDuration`, `strconv.ParseInt(s, 0, 64)`, `strconv.ParseBool` and
//! `encoding/json` string escaping, klog's lines (`I0102 15:04:05.123456   12345 file.go:76] msg`
//! on stderr). Times are UTC (containers have no zoneinfo).
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Errors of the Go-style parsers (texts as Go's `strconv` and `time` word them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `time.ParseDuration` rejected the text.
    #[error("time: invalid duration {0:?}")]
    Duration(String),
    /// `strconv.ParseInt` rejected the text.
    #[error("strconv.ParseInt: parsing {0:?}: invalid syntax")]
    Int(String),
    /// `strconv.ParseBool` rejected the text.
    #[error("strconv.ParseBool: parsing {0:?}: invalid syntax")]
    Bool(String),
}

/// The process start as Go's monotonic clock reading sees it (`m=+…` in `time.Now()`).
pub fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Writes one line like Go's `log.Printf` (standard flags) to stderr.
pub fn log(msg: impl AsRef<str>) {
    let msg = msg.as_ref();
    let (date, time, _) = civil(SystemTime::now());
    let sep = if msg.ends_with('\n') { "" } else { "\n" };
    eprint!("{date} {time} {msg}{sep}", date = date.replace('-', "/"));
}

/// klog's header (its `formatHeader`): severity letter (`I`, `W`, `E`, `F`), `MMDD`,
/// `HH:MM:SS.micros`, the pid right-aligned in 7 columns, `file:line] `.
pub fn klog_header(severity: char, t: SystemTime, pid: u32, file: &str, line: u32) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let rem = secs % 86_400;
    let (_, m, day) = civil_from_days((secs / 86_400) as i64);
    let (hh, mm, ss, us) = (rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_micros());
    format!("{severity}{m:02}{day:02} {hh:02}:{mm:02}:{ss:02}.{us:06} {pid:>7} {file}:{line}] ")
}

/// One whole klog line as `klog.Info`/`klog.Fatalf` writes it: header, message, a newline
/// unless the message ends with one.
pub fn klog_line(severity: char, t: SystemTime, pid: u32, file: &str, line: u32, msg: &str) -> String {
    let sep = if msg.ends_with('\n') { "" } else { "\n" };
    format!("{}{msg}{sep}", klog_header(severity, t, pid, file, line))
}

/// Writes one klog line (now, this process) to stderr in one `write`, as klog does, so that
/// concurrent writers never interleave within it.
pub fn klog(severity: char, file: &str, line: u32, msg: &str) {
    write_stderr(&klog_line(severity, SystemTime::now(), std::process::id(), file, line, msg));
}

/// Writes `text` to stderr in one `write` (Rust's stderr is unbuffered, but `eprint!` writes
/// each formatted piece separately).
pub fn write_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `(YYYY-MM-DD, HH:MM:SS, nanoseconds)` of a time in UTC.
fn civil(t: SystemTime) -> (String, String, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    let date = format!("{y:04}-{m:02}-{day:02}");
    let time = format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    (date, time, d.subsec_nanos())
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Go's `time.Now().String()`: `2024-01-02 03:04:05.123456789 +0000 UTC m=+1.000000001`.
pub fn now_string() -> String {
    time_string(SystemTime::now(), process_start().elapsed())
}

/// `time.Time.String()` of `t` (UTC) with monotonic reading `mono`.
pub fn time_string(t: SystemTime, mono: Duration) -> String {
    let (date, time, nanos) = civil(t);
    let frac = format!("{nanos:09}");
    let frac = frac.trim_end_matches('0');
    let dot = if frac.is_empty() { "" } else { "." };
    format!("{date} {time}{dot}{frac} +0000 UTC m=+{}.{:09}", mono.as_secs(), mono.subsec_nanos())
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn duration_string(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let secs = d.as_secs();
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    let s = frac(u128::from(secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos()), 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// `time.Duration.String()` of signed nanoseconds (`-1.5s` for negative ones).
pub fn duration_string_nanos(ns: i64) -> String {
    let s = duration_string(Duration::from_nanos(ns.unsigned_abs()));
    if ns < 0 { format!("-{s}") } else { s }
}

/// `v / unit` with the fraction's trailing zeros (and a lone dot) removed.
fn frac(v: u128, unit: u128) -> String {
    let digits = unit.to_string().len() - 1;
    let f = format!("{:0digits$}", v % unit);
    let f = f.trim_end_matches('0');
    if f.is_empty() { (v / unit).to_string() } else { format!("{}.{f}", v / unit) }
}

/// Go's `time.ParseDuration`, in signed nanoseconds: `1h30m`, `1.5s`, `-2ms`, `0`.
pub fn parse_duration(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Duration(s.to_string());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num.parse::<f64>().map_err(|_| bad())? * scale;
        rest = next;
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    let ns = total.round() as i64;
    Ok(if neg { -ns } else { ns })
}

/// A duration from [`parse_duration`]'s nanoseconds (negative ones are zero long).
pub fn nanos_to_duration(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// Go's `strconv.ParseInt(s, 0, 64)`: decimal, `0x`/`0o`/`0b` prefixes, a leading `0` for octal.
pub fn parse_int(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Int(s.to_string());
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    let digits = digits.replace('_', "");
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(bad());
    }
    let v = i128::from_str_radix(&digits, radix).map_err(|_| bad())?;
    let v = if neg { -v } else { v };
    i64::try_from(v).map_err(|_| bad())
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Result<bool, ParseError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ParseError::Bool(s.to_string())),
    }
}

pub use crate::http::json_string;

/// A JSON object of string values, keys sorted (Go marshals maps that way).
pub fn json_object<'a>(entries: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut v: Vec<(&str, String)> = entries.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = v.into_iter().map(|(k, val)| format!("{}:{val}", json_string(k))).collect();
    format!("{{{}}}", body.join(","))
}

/// A JSON array of strings.
pub fn json_array(items: &[String]) -> String {
    let body: Vec<String> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("1s"), Ok(1_000_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("-2ms"), Ok(-2_000_000));
        assert_eq!(parse_duration("100us"), Ok(100_000));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("3").is_err(), "a unit is required");
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_duration("bad").unwrap_err().to_string(), "time: invalid duration \"bad\"");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(duration_string(Duration::ZERO), "0s");
        assert_eq!(duration_string(Duration::from_nanos(15)), "15ns");
        assert_eq!(duration_string(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(duration_string(Duration::from_millis(10_250)), "10.25s");
        assert_eq!(duration_string(Duration::from_secs(62)), "1m2s");
        assert_eq!(duration_string(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(duration_string_nanos(-1_500_000_000), "-1.5s");
        assert_eq!(duration_string_nanos(0), "0s");
    }

    #[test]
    fn times_print_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_704_164_645, 120_000_000);
        assert_eq!(time_string(t, Duration::new(3, 5)), "2024-01-02 03:04:05.12 +0000 UTC m=+3.000000005");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(time_string(t, Duration::ZERO).starts_with("2000-02-29 00:00:00 +0000 UTC"));
    }

    #[test]
    fn klog_lines_look_like_klog() {
        let t = UNIX_EPOCH + Duration::new(1_704_164_645, 120_456_789);
        assert_eq!(klog_header('I', t, 12345, "logs_generator.go", 76), "I0102 03:04:05.120456   12345 logs_generator.go:76] ");
        assert_eq!(klog_line('F', t, 1, "x.go", 7, "boom"), "F0102 03:04:05.120456       1 x.go:7] boom\n");
        assert_eq!(klog_line('I', t, 1234567, "x.go", 7, "a\n"), "I0102 03:04:05.120456 1234567 x.go:7] a\n");
    }

    #[test]
    fn ints_and_bools_parse_like_go() {
        assert_eq!(parse_int("8080"), Ok(8080));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("0x1f"), Ok(31));
        assert_eq!(parse_int("010"), Ok(8));
        assert_eq!(parse_int("0"), Ok(0));
        assert!(parse_int("08").is_err());
        assert!(parse_int("").is_err());
        assert!(parse_int("12a").is_err());
        assert!(parse_int("99999999999999999999").is_err());
        assert_eq!(parse_bool("T"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("yes").is_err());
    }

    #[test]
    fn json_like_go() {
        assert_eq!(json_string("a<b>&\"\n"), "\"a\\u003cb\\u003e\\u0026\\\"\\n\"");
        assert_eq!(json_object([("z", "1".into()), ("a", json_string("x"))]), "{\"a\":\"x\",\"z\":1}");
        assert_eq!(json_array(&["a".into(), "b".into()]), "[\"a\",\"b\"]");
    }
}
