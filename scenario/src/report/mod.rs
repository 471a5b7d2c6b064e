//! The HTML report: one self-contained file (inline CSS and SVG, no script, no network) that a
//! person opens from disk after a run.
//!
//! At the top, a summary table of every scenario with links. Then, per scenario: a header (name,
//! file, outcome, runtime, proxy mode, duration, cites, why it failed), a timeline (a shared time
//! axis in seconds; steps as bars and vertical markers; fault spans as hatched bands across every
//! lane; one lane group per node and per pod, each track a row of coloured segments with marks),
//! the steps table (every operation; failed ones with their message, diff and expected/actual),
//! the traffic summaries, the events and the artifacts as relative links. Passed scenarios are
//! collapsed, failed ones open.
//!
//! Stable hooks for tests and for people who post-process the file: `id="scenario-<n>"` (from
//! 1), `class="lane node"` / `class="lane pod"` with `data-lane="<name>"`, `class="track"` with
//! `data-track`, `class="fault"`, `class="step-marker"` (with `data-outcome`), `class="mark"`,
//! `class="failure"`.

use std::fmt::Write as _;

use crate::record::{Outcome, RunRecord};

mod css;
mod page;
mod sample;
mod tables;
mod text;
mod timeline;

#[cfg(test)]
mod tests;

use css::CSS;
use page::{scenario, summary_table};
use text::{esc, plural};

/// The run as one self-contained HTML document.
pub fn render(run: &RunRecord) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let failed = run
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Failed)
        .count();
    let errors = run
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Error)
        .count();
    let passed = run
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Passed)
        .count();
    let skipped = run
        .scenarios
        .iter()
        .filter(|s| s.outcome == Outcome::Skipped)
        .count();
    let verdict = if run.passed() { "passed" } else { "failed" };

    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        h,
        "<title>nodekit report: {} scenario{}, {verdict}</title>",
        run.scenarios.len(),
        plural(run.scenarios.len())
    );
    h.push_str("<style>\n");
    h.push_str(CSS);
    h.push_str("</style>\n</head>\n<body>\n");

    // Run header and summary.
    let _ = writeln!(
        h,
        "<header class=\"run\"><h1>nodekit scenario report</h1>\n<p class=\"run-line\"><span class=\"badge\" data-outcome=\"{verdict}\">{verdict}</span> run started {} · {} scenario{}: {passed} passed, {failed} failed, {errors} error{}, {skipped} skipped</p></header>",
        esc(&run.started),
        run.scenarios.len(),
        plural(run.scenarios.len()),
        plural(errors),
    );
    if !run.scenarios.is_empty() {
        summary_table(&mut h, run);
    }
    for (i, sc) in run.scenarios.iter().enumerate() {
        scenario(&mut h, i + 1, sc);
    }
    h.push_str("<footer>Times are seconds since each scenario's start. Hover a segment, mark or bar in a timeline for details.</footer>\n");
    h.push_str("</body>\n</html>\n");
    h
}

/// A realistic record for tests and the documentation's picture: a two-node scenario
/// "partitioned node heals" whose last assert fails, with a fault span, node and pod lanes built
/// by [`crate::lanes`] from realistic snapshots, events, traffic and artifacts; plus a passed
/// scenario and one whose world could not be built.
#[doc(hidden)]
pub fn sample() -> RunRecord {
    sample::run()
}
