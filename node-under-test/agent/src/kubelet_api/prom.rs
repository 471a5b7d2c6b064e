//! Prometheus text exposition (version 0.0.4) as the Go client writes it: families sorted by
//! name, samples by label values, floats in Go's shortest `%g` form, optional millisecond
//! timestamps, families without samples left out.

use std::fmt::Write;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if v != 0.0 && !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// One sample: label pairs (in label-name order), value, optional timestamp (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// One metric family.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: &'static str,
    /// The help text with its stability prefix, e.g. `[STABLE] Current working set …`.
    pub help: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family { name, help, kind, samples: Vec::new() }
    }

    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64, timestamp_ms: Option<i64>) {
        self.samples.push(Sample { labels, value, timestamp_ms });
    }
}

/// Renders `families` (sorted by name; empty ones left out).
pub fn render(mut families: Vec<Family>) -> String {
    families.sort_by_key(|f| f.name);
    let mut out = String::new();
    for f in families.iter_mut().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", f.name, f.help, f.name, f.kind);
        f.samples.sort_by(|a, b| a.labels.cmp(&b.labels));
        for s in &f.samples {
            out.push_str(f.name);
            if !s.labels.is_empty() {
                let pairs: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let _ = write!(out, "{{{}}}", pairs.join(","));
            }
            let _ = write!(out, " {}", go_float(s.value));
            if let Some(ts) = s.timestamp_ms {
                let _ = write!(out, " {ts}");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_go_prints_them() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1000.0), "1000");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(2_097_152.0), "2.097152e+06");
        assert_eq!(go_float(1.6243962483020916e9), "1.6243962483020916e+09");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
        assert_eq!(go_float(f64::NAN), "NaN");
    }

    #[test]
    fn renders_sorted_families_and_samples() {
        let mut b = Family::new("b_metric", "gauge", "[ALPHA] B.");
        b.push(vec![("pod", "z".into())], 1.0, Some(1624396278302));
        b.push(vec![("pod", "a\"q".into())], 2.0, None);
        let empty = Family::new("a_empty", "gauge", "[ALPHA] Empty.");
        let mut c = Family::new("a_counter", "counter", "[STABLE] C.");
        c.push(vec![], 3.0, None);
        let text = render(vec![b, empty, c]);
        assert_eq!(
            text,
            "# HELP a_counter [STABLE] C.\n# TYPE a_counter counter\na_counter 3\n\
             # HELP b_metric [ALPHA] B.\n# TYPE b_metric gauge\nb_metric{pod=\"a\\\"q\"} 2\nb_metric{pod=\"z\"} 1 1624396278302\n"
        );
    }
}
