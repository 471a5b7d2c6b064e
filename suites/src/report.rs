//! Reporting of a conformance run: progress lines, the per-area summary table and JUnit XML.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::catalog::{Runtimes, Topology};
use crate::plan::Run;
use crate::runner::{Outcome, RunResult};

/// Per-area counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AreaSummary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub time: Duration,
}

/// Counts per area, in area order, plus the total.
pub fn summarize(results: &[RunResult]) -> (BTreeMap<String, AreaSummary>, AreaSummary) {
    let mut areas: BTreeMap<String, AreaSummary> = BTreeMap::new();
    let mut total = AreaSummary::default();
    for r in results {
        let a = areas.entry(r.area.clone()).or_default();
        for s in [&mut *a, &mut total] {
            match r.outcome {
                Outcome::Passed => s.passed += 1,
                Outcome::Failed(_) => s.failed += 1,
                Outcome::Skipped(_) => s.skipped += 1,
            }
            s.time += r.duration;
        }
    }
    (areas, total)
}

/// The summary table: area, passed, failed, skipped, time.
pub fn table(results: &[RunResult]) -> String {
    let (areas, total) = summarize(results);
    let width = areas.keys().map(String::len).max().unwrap_or(4).max(5);
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  {:>6}  {:>6}  {:>7}  {:>8}", "AREA", "PASSED", "FAILED", "SKIPPED", "TIME");
    let row = |out: &mut String, name: &str, s: &AreaSummary| {
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:>7}  {:>7.2}s",
            name,
            s.passed,
            s.failed,
            s.skipped,
            s.time.as_secs_f64()
        );
    };
    for (name, s) in &areas {
        row(&mut out, name, s);
    }
    row(&mut out, "TOTAL", &total);
    out
}

/// One progress line for a finished run.
/// `nodekit list`: one row per run with the case's labels, the runtimes it is declared for,
/// its topology, and why the run would be skipped here.
pub fn list_table(runs: &[Run]) -> String {
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| {
            let labels: Vec<&str> = r.case.labels.iter().map(|l| l.as_str()).collect();
            let runtimes = match r.case.runtimes {
                Runtimes::None => "none",
                Runtimes::FakeOnly => "fake-cri only",
                Runtimes::All => "all",
                Runtimes::Sealed => "in-world",
                Runtimes::Pulling => "in-world, pulling",
                Runtimes::PullsBack => "in-world, pulls back",
            };
            let topology = match r.case.topology {
                Topology::SingleNode => "single-node",
                Topology::TwoNodes => "two-nodes",
            };
            let skip = r.skip.as_deref().map(|w| format!("skipped: {w}")).unwrap_or_default();
            let labels = if labels.is_empty() { "-".to_string() } else { labels.join(",") };
            [r.name(), labels, runtimes.to_string(), topology.to_string(), skip]
        })
        .collect();
    let head = ["RUN", "LABELS", "RUNTIMES", "TOPOLOGY", ""].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&head).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            row[0], row[1], row[2], row[3], row[4],
            w0 = widths[0], w1 = widths[1], w2 = widths[2], w3 = widths[3]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

pub fn progress_line(done: usize, total: usize, r: &RunResult) -> String {
    let (tag, detail) = match &r.outcome {
        Outcome::Passed => ("PASS", String::new()),
        Outcome::Failed(why) => ("FAIL", format!("  {why}")),
        Outcome::Skipped(why) => ("SKIP", format!("  ({why})")),
    };
    let artifacts = match (&r.outcome, &r.artifacts) {
        (Outcome::Failed(_), Some(dir)) => format!("  artifacts: {}", dir.display()),
        _ => String::new(),
    };
    format!(
        "[{done:>3}/{total}] {tag} {:>7.2}s {}{detail}{artifacts}",
        r.duration.as_secs_f64(),
        r.name
    )
}

/// JUnit XML: one `<testsuite>` per area, one `<testcase>` per run.
pub fn junit(results: &[RunResult]) -> String {
    use scenario::junit::{attr, text};
    let (areas, total) = summarize(results);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"nodekit\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        results.len(),
        total.failed,
        total.skipped,
        total.time.as_secs_f64()
    );
    for (area, s) in &areas {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            attr(area),
            s.passed + s.failed + s.skipped,
            s.failed,
            s.skipped,
            s.time.as_secs_f64()
        );
        for r in results.iter().filter(|r| &r.area == area) {
            let _ = write!(
                out,
                "    <testcase classname=\"nodekit.{}\" name=\"{}\" time=\"{:.3}\"",
                attr(area),
                attr(&r.name),
                r.duration.as_secs_f64()
            );
            match &r.outcome {
                Outcome::Passed => out.push_str("/>\n"),
                Outcome::Skipped(why) => {
                    let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", attr(why));
                }
                Outcome::Failed(why) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>",
                        attr(why),
                        text(&r.output)
                    );
                    if let Some(dir) = &r.artifacts {
                        let _ = writeln!(out, "      <system-out>artifacts: {}</system-out>", text(&dir.display().to_string()));
                    }
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, area: &str, outcome: Outcome, ms: u64) -> RunResult {
        RunResult {
            name: name.into(),
            area: area.into(),
            outcome,
            duration: Duration::from_millis(ms),
            artifacts: None,
            output: "out <&>".into(),
        }
    }

    #[test]
    fn table_counts_per_area_and_total() {
        let r = vec![
            res("world/a", "world", Outcome::Passed, 100),
            res("world/b", "world", Outcome::Failed("boom".into()), 200),
            res("runtime/c[containerd]", "runtime", Outcome::Skipped("no containerd".into()), 0),
        ];
        let t = table(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("AREA"));
        assert!(lines[1].starts_with("runtime") && lines[1].contains("      0       0        1"), "{t}");
        assert!(lines[2].starts_with("world") && lines[2].contains("1       1        0"), "{t}");
        assert!(lines[3].starts_with("TOTAL") && lines[3].contains("0.30s"), "{t}");
    }

    #[test]
    fn junit_escapes_and_marks_outcomes() {
        let r = vec![
            res("world/a", "world", Outcome::Passed, 100),
            res("world/b<x>", "world", Outcome::Failed("bad \"quote\"".into()), 200),
            res("runtime/c", "runtime", Outcome::Skipped("why & how".into()), 0),
        ];
        let x = junit(&r);
        assert!(x.contains("<testsuites name=\"nodekit\" tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(x.contains("name=\"world/b&lt;x&gt;\""));
        assert!(x.contains("<failure message=\"bad &quot;quote&quot;\">out &lt;&amp;&gt;</failure>"));
        assert!(x.contains("<skipped message=\"why &amp; how\"/>"));
        assert_eq!(x.matches("<testcase").count(), 3);
    }
}
