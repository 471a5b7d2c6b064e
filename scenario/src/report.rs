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

use crate::record::{
    Artifact, EventRow, Failure, FaultSpan, Lane, OpRecord, Outcome, RunRecord, ScenarioRecord,
    StepRecord, Tone, TrafficSummary,
};

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

const CSS: &str = r#":root {
  --good: #2f9e5a; --warn: #f0ad2e; --bad: #d9453d; --unknown: #9aa0a6; --neutral: #a8cbe9;
  --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --soft: #f6f8fa; --fault: #7b4fc9;
}
* { box-sizing: border-box; }
body { margin: 0; padding: 20px 28px 40px; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", "DejaVu Sans", sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0; display: inline; }
h3 { font-size: 16px; margin: 22px 0 8px; color: #24292f; border-bottom: 1px solid var(--line); padding-bottom: 3px; }
a { color: #0b62c4; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", "Liberation Mono", "DejaVu Sans Mono", Menlo, monospace; }
code { font-size: 13px; background: var(--soft); padding: 0 4px; border-radius: 4px; }
pre { font-size: 12.5px; line-height: 1.45; background: var(--soft); border: 1px solid var(--line);
  padding: 8px 10px; margin: 6px 0; overflow: auto; max-height: 30em; border-radius: 6px; white-space: pre; }
pre.output { white-space: pre-wrap; word-break: break-word; }
.run-line { color: var(--muted); margin: 0 0 16px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 11px; font-size: 12px; font-weight: 700;
  text-transform: uppercase; letter-spacing: .04em; vertical-align: 2px; white-space: nowrap; }
.badge[data-outcome=passed] { background: #dafbe1; color: #116329; }
.badge[data-outcome=failed] { background: #ffebe9; color: #a40e26; }
.badge[data-outcome=error] { background: #fff1c2; color: #7d4e00; }
.badge[data-outcome=skipped] { background: #eaeef2; color: var(--muted); }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; color: #24292f; border-bottom: 2px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; color: var(--muted); }
table.summary { margin: 0 0 24px; min-width: 60%; }
table.summary td.why { color: #a40e26; max-width: 60ch; }
section.scenario { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 22px; background: #fff; }
section.scenario[data-outcome=failed] { border-left: 5px solid var(--bad); }
section.scenario[data-outcome=error] { border-left: 5px solid var(--warn); }
section.scenario[data-outcome=passed] { border-left: 5px solid var(--good); }
section.scenario > details > summary { cursor: pointer; padding: 12px 18px; list-style-position: inside; }
section.scenario > details > summary .badge { margin-right: 8px; }
section.scenario > details > summary .dur { color: var(--muted); margin-left: 10px; font-size: 14px; }
.body { padding: 0 18px 16px; }
dl.meta { display: flex; flex-wrap: wrap; gap: 6px 34px; margin: 2px 0 10px; font-size: 14px; }
dl.meta > div { display: flex; flex-direction: column; }
dl.meta > div.cites { flex-basis: 100%; }
dl.meta dt { color: var(--muted); font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; }
dl.meta dd { margin: 0; }
.description { margin: 6px 0; max-width: 110ch; }
.message { background: #ffebe9; border: 1px solid #ffcecb; color: #82071e; border-radius: 6px; padding: 8px 12px; margin: 10px 0; max-width: 120ch; white-space: pre-wrap; }
section.scenario[data-outcome=error] .message { background: #fff8c5; border-color: #eedc82; color: #5c3b00; }
.timeline { overflow-x: auto; margin: 6px 0 4px; }
.timeline svg { display: block; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", "DejaVu Sans", sans-serif; }
.timeline svg a:hover rect { stroke-width: 2; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px; color: var(--muted); margin: 2px 0 8px; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
.legend i { display: inline-block; width: 22px; height: 12px; border-radius: 2px; }
.sw-good { background: var(--good); } .sw-warn { background: var(--warn); } .sw-bad { background: var(--bad); }
.sw-unknown { background: var(--unknown); } .sw-neutral { background: var(--neutral); }
.sw-fault { background: repeating-linear-gradient(135deg, rgba(123,79,201,.45) 0 2px, rgba(123,79,201,.12) 2px 6px); border: 1px solid var(--fault); }
.sw-step { width: 3px !important; background: var(--bad); }
.sw-mark { width: 3px !important; background: #3d4a57; }
table.steps { width: 100%; }
table.steps tbody.step > tr.step-row th { background: #eef1f4; font-size: 14px; }
table.steps tbody.step[data-outcome=failed] > tr.step-row th, table.steps tbody.step[data-outcome=error] > tr.step-row th { background: #ffebe9; }
table.steps td.summary { width: 55%; }
table.steps td.phase { color: var(--muted); }
td.detail { padding: 2px 10px 12px 34px; }
.failure { border-left: 4px solid var(--bad); padding: 4px 0 4px 12px; }
.failure .fmsg { color: #82071e; font-weight: 600; white-space: pre-wrap; margin: 2px 0 4px; }
pre.diff .add { background: #dafbe1; color: #116329; display: inline-block; min-width: 100%; }
pre.diff .del { background: #ffebe9; color: #82071e; display: inline-block; min-width: 100%; }
pre.diff .hunk { color: #8250df; }
details.json > summary, details.out > summary { cursor: pointer; color: #0b62c4; font-size: 13px; margin-top: 4px; }
.json-pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
.json-pair h4 { margin: 4px 0 0; font-size: 13px; color: var(--muted); }
table.events td.msg { max-width: 80ch; }
table.events tr.warning td.kind { color: #9a6700; font-weight: 700; }
table.events td.src { white-space: nowrap; color: var(--muted); }
table.events td.obj { font-family: ui-monospace, "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: 13px; white-space: nowrap; }
table.traffic tr.short td.ok { color: #a40e26; font-weight: 700; }
ul.artifacts { margin: 4px 0; padding-left: 20px; }
ul.artifacts code { color: var(--muted); font-size: 12.5px; }
.none { color: var(--muted); font-style: italic; }
footer { color: var(--muted); font-size: 13px; margin-top: 24px; }
@media print { section.scenario details { display: block; } }
"#;

fn summary_table(h: &mut String, run: &RunRecord) {
    h.push_str("<table class=\"summary\">\n<thead><tr><th class=\"num\">#</th><th>scenario</th><th>outcome</th><th>runtime</th><th>proxy</th><th class=\"num\">duration</th><th>failed at</th></tr></thead>\n<tbody>\n");
    for (i, sc) in run.scenarios.iter().enumerate() {
        let n = i + 1;
        let why = match sc.failed_steps().next() {
            Some(st) => {
                let msg = st
                    .failing_op()
                    .and_then(|o| o.failure.as_ref())
                    .map(|f| f.message.as_str())
                    .or(sc.message.as_deref())
                    .unwrap_or("");
                format!(
                    "<a href=\"#scenario-{n}-step-{}\">{}</a>{}{}",
                    step_number(sc, st),
                    esc(&st.name),
                    if msg.is_empty() { "" } else { ": " },
                    esc(&ellipsize(msg, 140))
                )
            }
            None if sc.outcome.is_bad() => {
                esc(&ellipsize(sc.message.as_deref().unwrap_or(""), 140))
            }
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{n}</td><td><a href=\"#scenario-{n}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"why\">{why}</td></tr>",
            esc(&sc.name),
            badge(sc.outcome),
            esc(&sc.runtime),
            esc(&sc.proxy_mode),
            duration(sc.duration_ms),
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

fn step_number(sc: &ScenarioRecord, st: &StepRecord) -> usize {
    sc.steps
        .iter()
        .position(|s| std::ptr::eq(s, st))
        .map_or(0, |i| i + 1)
}

fn scenario(h: &mut String, n: usize, sc: &ScenarioRecord) {
    let outcome = sc.outcome.as_str();
    let _ = writeln!(
        h,
        "<section class=\"scenario\" id=\"scenario-{n}\" data-outcome=\"{outcome}\">"
    );
    let open = if sc.outcome.is_bad() { " open" } else { "" };
    let _ = writeln!(
        h,
        "<details{open}><summary>{}<h2>{}</h2><span class=\"dur\">{} · {} · {}</span></summary>\n<div class=\"body\">",
        badge(sc.outcome),
        esc(&sc.name),
        esc(&sc.runtime),
        esc(&sc.proxy_mode),
        duration(sc.duration_ms),
    );

    // Header.
    h.push_str("<dl class=\"meta\">");
    let _ = write!(
        h,
        "<div><dt>file</dt><dd><code>{}</code></dd></div>",
        esc(&sc.file)
    );
    let _ = write!(
        h,
        "<div><dt>runtime</dt><dd>{}</dd></div>",
        esc(&sc.runtime)
    );
    let _ = write!(
        h,
        "<div><dt>proxy mode</dt><dd>{}</dd></div>",
        esc(&sc.proxy_mode)
    );
    let _ = write!(
        h,
        "<div><dt>duration</dt><dd>{}</dd></div>",
        duration(sc.duration_ms)
    );
    if !sc.cites.is_empty() {
        h.push_str("<div class=\"cites\"><dt>cites</dt><dd>");
        for (i, c) in sc.cites.iter().enumerate() {
            if i > 0 {
                h.push_str("<br>");
            }
            if is_web_url(c) {
                let _ = write!(h, "<a href=\"{}\">{}</a>", esc(c), esc(c));
            } else {
                h.push_str(&esc(c));
            }
        }
        h.push_str("</dd></div>");
    }
    h.push_str("</dl>\n");
    if let Some(d) = sc.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let _ = writeln!(h, "<p class=\"description\">{}</p>", esc(d));
    }
    if let Some(m) = sc.message.as_deref().filter(|m| !m.trim().is_empty()) {
        let _ = writeln!(h, "<div class=\"message\">{}</div>", esc(m));
    }

    // Timeline.
    if !(sc.steps.is_empty() && sc.nodes.is_empty() && sc.pods.is_empty() && sc.faults.is_empty()) {
        h.push_str("<h3>Timeline</h3>\n");
        h.push_str(LEGEND);
        h.push_str("<div class=\"timeline\">\n");
        timeline(h, n, sc);
        h.push_str("</div>\n");
    }

    // Steps.
    h.push_str("<h3>Steps</h3>\n");
    if sc.steps.is_empty() {
        h.push_str("<p class=\"none\">No step ran.</p>\n");
    } else {
        steps_table(h, n, sc);
    }
    if !sc.traffic.is_empty() {
        h.push_str("<h3>Traffic</h3>\n");
        traffic_table(h, &sc.traffic);
    }
    h.push_str("<h3>Events</h3>\n");
    if sc.events.is_empty() {
        h.push_str("<p class=\"none\">No events were recorded.</p>\n");
    } else {
        events_table(h, &sc.events);
    }
    if !sc.artifacts.is_empty() {
        h.push_str("<h3>Artifacts</h3>\n");
        artifacts(h, &sc.artifacts);
    }
    h.push_str("</div>\n</details>\n</section>\n");
}

const LEGEND: &str = "<div class=\"legend\"><span><i class=\"sw-good\"></i>good</span><span><i class=\"sw-warn\"></i>warning</span><span><i class=\"sw-bad\"></i>bad</span><span><i class=\"sw-unknown\"></i>unknown</span><span><i class=\"sw-neutral\"></i>neutral</span><span><i class=\"sw-fault\"></i>fault in force</span><span><i class=\"sw-step\"></i>failed step</span><span><i class=\"sw-mark\"></i>mark (restart, probe failure, event, lease renewal)</span></div>\n";

// ---- timeline ----------------------------------------------------------------------------

const SVG_W: f64 = 1320.0;
const LABEL_W: f64 = 236.0;
const PLOT_X0: f64 = 246.0;
const PLOT_X1: f64 = SVG_W - 24.0;
const AXIS_H: f64 = 26.0;
const BAR_ROW_H: f64 = 20.0;
const GROUP_H: f64 = 22.0;
const LANE_HEAD_H: f64 = 22.0;
const TRACK_H: f64 = 20.0;
/// Estimated advance of one character of 11.5 px text (wide fonts such as DejaVu Sans).
const CHAR_W: f64 = 6.7;
const MAX_BAR_ROWS: usize = 3;

struct Scale {
    t_end: f64,
}

impl Scale {
    fn x(&self, ms: u64) -> f64 {
        let f = (ms as f64 / self.t_end).clamp(0.0, 1.0);
        PLOT_X0 + f * (PLOT_X1 - PLOT_X0)
    }
}

fn tone_fill(t: Tone) -> (&'static str, &'static str) {
    // (fill, text colour)
    match t {
        Tone::Good => ("#2f9e5a", "#ffffff"),
        Tone::Warn => ("#f0ad2e", "#3b2600"),
        Tone::Bad => ("#d9453d", "#ffffff"),
        Tone::Unknown => ("#9aa0a6", "#ffffff"),
        Tone::Neutral => ("#a8cbe9", "#12324f"),
    }
}

fn mark_colour(t: Tone) -> &'static str {
    match t {
        Tone::Good => "#116329",
        Tone::Warn => "#9a6700",
        Tone::Bad => "#a40e26",
        Tone::Unknown => "#57606a",
        Tone::Neutral => "#3d5a80",
    }
}

/// Greedy rows for labelled bars: each item (start x, end x of bar and label) goes to the first
/// row whose last item ended before it starts; when none is free, to the row that frees first.
fn stack_rows(items: &[(f64, f64)], max_rows: usize) -> (Vec<usize>, usize) {
    let mut ends: Vec<f64> = Vec::new();
    let mut rows = Vec::with_capacity(items.len());
    for &(start, end) in items {
        let row = match ends.iter().position(|&e| e + 4.0 <= start) {
            Some(r) => r,
            None if ends.len() < max_rows.max(1) => {
                ends.push(f64::MIN);
                ends.len() - 1
            }
            None => ends
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i),
        };
        if let Some(e) = ends.get_mut(row) {
            *e = end;
        }
        rows.push(row);
    }
    (rows, ends.len())
}

/// Text that fits `width` px, cut with an ellipsis; empty when not even a few characters fit.
fn fit(text: &str, width: f64) -> String {
    let max = ((width - 8.0) / CHAR_W).floor();
    if max < 3.0 {
        return String::new();
    }
    let max = max as usize;
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn label_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_W + 10.0
}

fn timeline(h: &mut String, n: usize, sc: &ScenarioRecord) {
    // The time range: everything recorded, at least one second.
    let mut t_end = sc.duration_ms;
    for st in &sc.steps {
        t_end = t_end.max(st.end_ms).max(st.start_ms);
    }
    for f in &sc.faults {
        t_end = t_end.max(f.end_ms).max(f.start_ms);
    }
    for lane in sc.nodes.iter().chain(&sc.pods) {
        for t in &lane.tracks {
            for s in &t.segments {
                t_end = t_end.max(s.end_ms);
            }
            for m in &t.marks {
                t_end = t_end.max(m.at_ms);
            }
        }
    }
    let t_end = t_end.max(1000);
    let scale = Scale {
        t_end: t_end as f64,
    };

    // Rows for step and fault bars, so that their labels do not overlap.
    let mut step_order: Vec<usize> = (0..sc.steps.len()).collect();
    step_order.sort_by_key(|&i| sc.steps.get(i).map_or(0, |s| s.start_ms));
    let step_labels: Vec<String> = sc
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}", i + 1, s.name))
        .collect();
    let step_items: Vec<(f64, f64)> = step_order
        .iter()
        .filter_map(|&i| {
            let s = sc.steps.get(i)?;
            let x0 = scale.x(s.start_ms);
            let label = step_labels
                .get(i)
                .map_or(0.0, |l| label_width(&ellipsize(l, 48)));
            Some((x0, scale.x(s.end_ms).max(x0 + label)))
        })
        .collect();
    let (step_rows, n_step_rows) = stack_rows(&step_items, MAX_BAR_ROWS);
    let fault_items: Vec<(f64, f64)> = sc
        .faults
        .iter()
        .map(|f| {
            let x0 = scale.x(f.start_ms);
            (
                x0,
                scale
                    .x(f.end_ms)
                    .max(x0 + label_width(&ellipsize(&f.text, 60))),
            )
        })
        .collect();
    let (fault_rows, n_fault_rows) = stack_rows(&fault_items, MAX_BAR_ROWS);

    let steps_top = AXIS_H;
    let faults_top = steps_top + n_step_rows as f64 * BAR_ROW_H;
    let lanes_top = faults_top + n_fault_rows as f64 * BAR_ROW_H + 6.0;
    let lane_h = |l: &Lane| LANE_HEAD_H + l.tracks.len() as f64 * TRACK_H;
    let group_h = |lanes: &[Lane]| {
        if lanes.is_empty() {
            0.0
        } else {
            GROUP_H + lanes.iter().map(lane_h).sum::<f64>()
        }
    };
    let lanes_bottom = lanes_top + group_h(&sc.nodes) + group_h(&sc.pods);
    let height = lanes_bottom + 10.0;

    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline-svg\" width=\"{SVG_W}\" height=\"{height:.0}\" viewBox=\"0 0 {SVG_W} {height:.0}\" role=\"img\" aria-label=\"timeline of {}\">",
        esc(&sc.name)
    );
    let _ = writeln!(
        h,
        "<defs><pattern id=\"hatch-{n}\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#7b4fc9\" fill-opacity=\"0.07\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#7b4fc9\" stroke-width=\"2.5\" stroke-opacity=\"0.30\"/></pattern></defs>"
    );
    let _ = writeln!(
        h,
        "<rect x=\"0\" y=\"0\" width=\"{LABEL_W}\" height=\"{height:.0}\" fill=\"#f6f8fa\"/>"
    );

    // Axis: ticks in seconds, grid lines down through the lanes.
    let tick = tick_ms(t_end);
    h.push_str("<g class=\"axis\" font-size=\"12\" fill=\"#57606a\">\n");
    let mut t = 0u64;
    while t <= t_end {
        let x = scale.x(t);
        let _ = writeln!(
            h,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.1}\" stroke=\"#d8dee4\" stroke-width=\"1\"/><text x=\"{x:.1}\" y=\"17\" text-anchor=\"middle\">{}</text>",
            AXIS_H - 5.0,
            tick_label(t, tick)
        );
        t = match t.checked_add(tick) {
            Some(t) => t,
            None => break,
        };
    }
    let _ = writeln!(
        h,
        "<line x1=\"{PLOT_X0}\" y1=\"{:.1}\" x2=\"{PLOT_X1}\" y2=\"{:.1}\" stroke=\"#8c959f\"/></g>",
        AXIS_H - 5.0,
        AXIS_H - 5.0
    );

    // Row labels for the bar rows.
    if n_step_rows > 0 {
        side_label(h, steps_top, BAR_ROW_H, "steps", true);
    }
    if n_fault_rows > 0 {
        side_label(h, faults_top, BAR_ROW_H, "faults", true);
    }

    // Lanes.
    let mut y = lanes_top;
    for (lanes, kind, title) in [(&sc.nodes, "node", "NODES"), (&sc.pods, "pod", "PODS")] {
        if lanes.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<text x=\"8\" y=\"{:.1}\" font-size=\"11.5\" font-weight=\"700\" fill=\"#57606a\" letter-spacing=\"1\">{title}</text>",
            y + 15.0
        );
        y += GROUP_H;
        for lane in lanes.iter() {
            lane_svg(h, &scale, lane, kind, y);
            y += lane_h(lane);
        }
    }

    // Fault bands across every lane, labels in the fault rows.
    for (i, f) in sc.faults.iter().enumerate() {
        let row = fault_rows.get(i).copied().unwrap_or(0);
        fault_svg(
            h,
            &scale,
            n,
            f,
            faults_top + row as f64 * BAR_ROW_H,
            lanes_bottom,
        );
    }

    // Step markers over everything.
    for (k, &i) in step_order.iter().enumerate() {
        let (Some(st), Some(label)) = (sc.steps.get(i), step_labels.get(i)) else {
            continue;
        };
        let row = step_rows.get(k).copied().unwrap_or(0);
        step_svg(
            h,
            &scale,
            n,
            i + 1,
            st,
            label,
            steps_top + row as f64 * BAR_ROW_H,
            lanes_bottom,
        );
    }
    h.push_str("</svg>\n");
}

fn side_label(h: &mut String, y: f64, row_h: f64, text: &str, strong: bool) {
    let _ = writeln!(
        h,
        "<text x=\"8\" y=\"{:.1}\" font-size=\"11.5\" font-weight=\"{}\" fill=\"#57606a\" letter-spacing=\"1\">{}</text>",
        y + row_h / 2.0 + 4.0,
        if strong { 700 } else { 400 },
        esc(&text.to_uppercase())
    );
}

fn tick_ms(t_end: u64) -> u64 {
    const STEPS: [u64; 16] = [
        100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 900_000, 1_800_000, 3_600_000,
    ];
    STEPS
        .iter()
        .copied()
        .find(|&s| t_end / s <= 14)
        .unwrap_or_else(|| (t_end / 14).max(1))
}

fn tick_label(t: u64, tick: u64) -> String {
    if tick < 1000 {
        format!("{:.1}s", t as f64 / 1000.0)
    } else {
        format!("{}s", t / 1000)
    }
}

fn lane_svg(h: &mut String, scale: &Scale, lane: &Lane, kind: &str, y: f64) {
    let _ = writeln!(
        h,
        "<g class=\"lane {kind}\" data-lane=\"{}\">",
        esc(&lane.name)
    );
    let head_h = LANE_HEAD_H;
    let _ = writeln!(
        h,
        "<rect x=\"0\" y=\"{:.1}\" width=\"{SVG_W}\" height=\"{head_h}\" fill=\"#e9edf1\"/><line x1=\"0\" y1=\"{:.1}\" x2=\"{SVG_W}\" y2=\"{:.1}\" stroke=\"#c9d1d9\"/>",
        y, y, y
    );
    let name = fit(&lane.name, LABEL_W + 40.0);
    let _ = writeln!(
        h,
        "<text x=\"8\" y=\"{:.1}\" font-size=\"13\" font-weight=\"700\" fill=\"#1f2328\">{}<title>{} {}</title></text>",
        y + 15.5,
        esc(&name),
        kind,
        esc(&lane.name)
    );
    for (i, track) in lane.tracks.iter().enumerate() {
        let ty = y + head_h + i as f64 * TRACK_H;
        let _ = writeln!(
            h,
            "<g class=\"track\" data-track=\"{}\">",
            esc(&track.label)
        );
        if i % 2 == 1 {
            let _ = writeln!(
                h,
                "<rect x=\"{LABEL_W}\" y=\"{ty:.1}\" width=\"{:.1}\" height=\"{TRACK_H}\" fill=\"#f6f8fa\"/>",
                SVG_W - LABEL_W
            );
        }
        let _ = writeln!(
            h,
            "<text x=\"22\" y=\"{:.1}\" font-size=\"12\" fill=\"#424a53\">{}</text>",
            ty + 14.0,
            esc(&fit(&track.label, LABEL_W - 20.0))
        );
        for s in &track.segments {
            let x0 = scale.x(s.start_ms);
            let w = (scale.x(s.end_ms) - x0).max(1.5);
            let (fill, ink) = tone_fill(s.tone);
            let _ = write!(
                h,
                "<g class=\"segment\" data-tone=\"{}\"><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{fill}\"><title>{}: {} ({}–{})</title></rect>",
                s.tone.as_str(),
                ty + 2.0,
                TRACK_H - 4.0,
                esc(&track.label),
                esc(&s.text),
                secs(s.start_ms),
                secs(s.end_ms)
            );
            let text = fit(&s.text, w);
            if !text.is_empty() {
                let _ = write!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" fill=\"{ink}\" pointer-events=\"none\">{}</text>",
                    x0 + 4.0,
                    ty + 14.0,
                    esc(&text)
                );
            }
            h.push_str("</g>\n");
        }
        for m in &track.marks {
            let x = scale.x(m.at_ms);
            let c = mark_colour(m.tone);
            let (top, bottom) = (ty + 1.0, ty + TRACK_H - 1.0);
            let _ = writeln!(
                h,
                "<g class=\"mark\" data-tone=\"{}\"><title>{}: {} at {}</title><line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#ffffff\" stroke-width=\"4\"/><line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"{c}\" stroke-width=\"2\"/><path d=\"M{:.1} {top:.1}h8l-4 6z\" fill=\"{c}\" stroke=\"#ffffff\" stroke-width=\"0.8\"/></g>",
                m.tone.as_str(),
                esc(&track.label),
                esc(&m.text),
                secs(m.at_ms),
                x - 4.0
            );
        }
        h.push_str("</g>\n");
    }
    h.push_str("</g>\n");
}

fn fault_svg(h: &mut String, scale: &Scale, n: usize, f: &FaultSpan, row_y: f64, bottom: f64) {
    let x0 = scale.x(f.start_ms);
    let w = (scale.x(f.end_ms) - x0).max(2.0);
    let title = format!(
        "fault: {} (target {}), {}–{}",
        f.text,
        f.target,
        secs(f.start_ms),
        secs(f.end_ms)
    );
    let _ = writeln!(
        h,
        "<g class=\"fault\" data-target=\"{}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"url(#hatch-{n})\" pointer-events=\"none\"/><line x1=\"{x0:.1}\" y1=\"{:.1}\" x2=\"{x0:.1}\" y2=\"{bottom:.1}\" stroke=\"#7b4fc9\" stroke-width=\"1\" stroke-opacity=\"0.7\" pointer-events=\"none\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#7b4fc9\" stroke-width=\"1\" stroke-opacity=\"0.7\" pointer-events=\"none\"/><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"#e4d9f7\" stroke=\"#7b4fc9\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"600\" fill=\"#4a2a8a\">{}</text></g>",
        esc(&f.target),
        esc(&title),
        row_y + BAR_ROW_H,
        (bottom - row_y - BAR_ROW_H).max(0.0),
        row_y + BAR_ROW_H,
        x0 + w,
        row_y + BAR_ROW_H,
        x0 + w,
        row_y + 2.0,
        BAR_ROW_H - 4.0,
        x0 + 5.0,
        row_y + 14.5,
        esc(&ellipsize(&f.text, 60))
    );
}

#[allow(clippy::too_many_arguments)]
fn step_svg(
    h: &mut String,
    scale: &Scale,
    n: usize,
    number: usize,
    st: &StepRecord,
    label: &str,
    row_y: f64,
    bottom: f64,
) {
    let x0 = scale.x(st.start_ms);
    let x1 = scale.x(st.end_ms.max(st.start_ms));
    let w = (x1 - x0).max(3.0);
    let (fill, stroke, ink, line, dash, width) = match st.outcome {
        Outcome::Passed => (
            "#dcefe1",
            "#2f9e5a",
            "#1f2328",
            "#8c959f",
            " stroke-dasharray=\"4 3\"",
            1.0,
        ),
        Outcome::Failed => ("#ffd8d3", "#d9453d", "#a40e26", "#d9453d", "", 2.0),
        Outcome::Error => ("#fff1c2", "#d4a72c", "#7d4e00", "#d4a72c", "", 2.0),
        Outcome::Skipped => (
            "#eaeef2",
            "#8c959f",
            "#57606a",
            "#afb8c1",
            " stroke-dasharray=\"2 3\"",
            1.0,
        ),
    };
    let weight = if st.outcome.is_bad() { 700 } else { 500 };
    let title = format!(
        "step {number} {}: {} ({}–{})",
        st.name,
        st.outcome.as_str(),
        secs(st.start_ms),
        secs(st.end_ms)
    );
    let _ = writeln!(
        h,
        "<g class=\"step-marker\" data-outcome=\"{}\" data-step=\"{}\"><title>{}</title><line x1=\"{x0:.1}\" y1=\"{row_y:.1}\" x2=\"{x0:.1}\" y2=\"{bottom:.1}\" stroke=\"{line}\" stroke-width=\"{width}\"{dash} pointer-events=\"none\"/>",
        st.outcome.as_str(),
        esc(&st.name),
        esc(&title)
    );
    if st.outcome.is_bad() {
        let _ = writeln!(
            h,
            "<line x1=\"{x1:.1}\" y1=\"{row_y:.1}\" x2=\"{x1:.1}\" y2=\"{bottom:.1}\" stroke=\"{line}\" stroke-width=\"{width}\" stroke-dasharray=\"6 4\" pointer-events=\"none\"/>"
        );
    }
    let _ = writeln!(
        h,
        "<a href=\"#scenario-{n}-step-{number}\"><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"{weight}\" fill=\"{ink}\" stroke=\"#ffffff\" stroke-width=\"3\" stroke-opacity=\"0.85\" paint-order=\"stroke\">{}</text></a></g>",
        row_y + 2.0,
        BAR_ROW_H - 4.0,
        x0 + 4.0,
        row_y + 14.5,
        esc(&ellipsize(label, 48))
    );
}

// ---- tables ------------------------------------------------------------------------------

fn steps_table(h: &mut String, n: usize, sc: &ScenarioRecord) {
    h.push_str("<table class=\"steps\">\n<thead><tr><th>phase</th><th>kind</th><th>operation</th><th>time</th><th>outcome</th></tr></thead>\n");
    for (i, st) in sc.steps.iter().enumerate() {
        let number = i + 1;
        let _ = writeln!(
            h,
            "<tbody class=\"step\" id=\"scenario-{n}-step-{number}\" data-outcome=\"{}\"><tr class=\"step-row\"><th colspan=\"4\">{number}. {}</th><th>{} <span class=\"mono\" style=\"font-weight:400;color:#59636e\">{}–{}</span></th></tr>",
            st.outcome.as_str(),
            esc(&st.name),
            badge(st.outcome),
            secs(st.start_ms),
            secs(st.end_ms)
        );
        if st.operations.is_empty() {
            h.push_str("<tr><td colspan=\"5\" class=\"none\">no operations</td></tr>\n");
        }
        for op in &st.operations {
            op_rows(h, st, op);
        }
        h.push_str("</tbody>\n");
    }
    h.push_str("</table>\n");
}

fn op_rows(h: &mut String, st: &StepRecord, op: &OpRecord) {
    let _ = writeln!(
        h,
        "<tr class=\"op\" data-outcome=\"{}\"><td class=\"phase\">{}</td><td><code>{}</code></td><td class=\"summary\">{}</td><td class=\"time\">{}–{} ({})</td><td>{}</td></tr>",
        op.outcome.as_str(),
        op.phase.as_str(),
        esc(&op.kind),
        esc(&op.summary),
        secs(op.start_ms),
        secs(op.end_ms),
        duration(op.end_ms.saturating_sub(op.start_ms)),
        badge(op.outcome)
    );
    let failure = op.failure.as_ref().filter(|_| op.outcome.is_bad());
    let output = op.output.as_deref().filter(|o| !o.is_empty());
    if failure.is_none() && output.is_none() && !op.outcome.is_bad() {
        return;
    }
    h.push_str("<tr class=\"op-detail\"><td colspan=\"5\" class=\"detail\">");
    if op.outcome.is_bad() {
        failure_block(h, failure);
    } else if let Some(f) = &op.failure {
        // A failure kept on an operation that did not fail (e.g. an `error` op that matched).
        failure_block(h, Some(f));
    }
    if let Some(out) = output {
        let open = if st.outcome.is_bad() { " open" } else { "" };
        let _ = write!(
            h,
            "<details class=\"out\"{open}><summary>output ({} line{})</summary><pre class=\"output\">{}</pre></details>",
            out.lines().count(),
            plural(out.lines().count()),
            esc(out)
        );
    }
    h.push_str("</td></tr>\n");
}

fn failure_block(h: &mut String, failure: Option<&Failure>) {
    h.push_str("<div class=\"failure\">");
    let Some(f) = failure else {
        h.push_str("<p class=\"fmsg\">failed (no failure detail was recorded)</p></div>");
        return;
    };
    let msg = if f.message.trim().is_empty() {
        "failed (no message)"
    } else {
        f.message.as_str()
    };
    let _ = write!(h, "<p class=\"fmsg\">{}</p>", esc(msg));
    if let Some(diff) = f.diff.as_deref().filter(|d| !d.is_empty()) {
        h.push_str("<pre class=\"diff\">");
        for line in diff.lines() {
            let class = if line.starts_with("+++") || line.starts_with("---") {
                "hunk"
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else if line.starts_with("@@") {
                "hunk"
            } else {
                ""
            };
            if class.is_empty() {
                let _ = writeln!(h, "{}", esc(line));
            } else {
                let _ = writeln!(h, "<span class=\"{class}\">{}</span>", esc(line));
            }
        }
        h.push_str("</pre>");
    }
    if f.expected.is_some() || f.actual.is_some() {
        h.push_str("<details class=\"json\"><summary>expected and actual (JSON)</summary><div class=\"json-pair\">");
        for (title, v) in [("expected", &f.expected), ("actual", &f.actual)] {
            let body = match v {
                Some(v) => serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
                None => "(none)".to_string(),
            };
            let _ = write!(h, "<div><h4>{title}</h4><pre>{}</pre></div>", esc(&body));
        }
        h.push_str("</div></details>");
    }
    h.push_str("</div>");
}

fn traffic_table(h: &mut String, traffic: &[TrafficSummary]) {
    h.push_str("<table class=\"traffic\">\n<thead><tr><th>step</th><th>target</th><th class=\"num\">answered</th><th>per endpoint</th><th>expected</th></tr></thead>\n<tbody>\n");
    for t in traffic {
        let short = if t.succeeded < t.attempts {
            " class=\"short\""
        } else {
            ""
        };
        let endpoints = if t.per_endpoint.is_empty() {
            "<span class=\"none\">none</span>".to_string()
        } else {
            t.per_endpoint
                .iter()
                .map(|(e, c)| format!("<code>{}</code> ×{c}", esc(e)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            h,
            "<tr{short}><td>{}</td><td>{}</td><td class=\"num ok\">{} / {}</td><td>{endpoints}</td><td>{}</td></tr>",
            esc(&t.step),
            esc(&t.target),
            t.succeeded,
            t.attempts,
            esc(&t.expected)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

fn events_table(h: &mut String, events: &[EventRow]) {
    let mut rows: Vec<&EventRow> = events.iter().collect();
    rows.sort_by_key(|e| e.at_ms);
    h.push_str("<table class=\"events\">\n<thead><tr><th class=\"num\">time</th><th>type</th><th>reason</th><th>object</th><th>message</th><th class=\"num\">count</th><th>source</th></tr></thead>\n<tbody>\n");
    for e in rows {
        let warning = if e.kind.eq_ignore_ascii_case("warning") {
            " class=\"warning\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr{warning}><td class=\"num\">{}</td><td class=\"kind\">{}</td><td>{}</td><td class=\"obj\">{}</td><td class=\"msg\">{}</td><td class=\"num\">{}</td><td class=\"src\">{}</td></tr>",
            secs(e.at_ms),
            esc(&e.kind),
            esc(&e.reason),
            esc(&e.object),
            esc(&e.message),
            e.count,
            esc(&e.source)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

fn artifacts(h: &mut String, list: &[Artifact]) {
    h.push_str("<ul class=\"artifacts\">\n");
    for a in list {
        match artifact_href(&a.path) {
            Some(href) => {
                let _ = writeln!(
                    h,
                    "<li><a href=\"{}\">{}</a> <code>{}</code></li>",
                    esc(&href),
                    esc(&a.label),
                    esc(&a.path)
                );
            }
            None => {
                let _ = writeln!(
                    h,
                    "<li>{} <code>{}</code></li>",
                    esc(&a.label),
                    esc(&a.path)
                );
            }
        }
    }
    h.push_str("</ul>\n");
}

// ---- small helpers -----------------------------------------------------------------------

/// Escaped for HTML text and attribute values; control characters other than tab and newline
/// are dropped.
fn esc(s: &str) -> String {
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

fn is_web_url(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !s.chars().any(char::is_whitespace)
}

/// A link for an artifact path: web URLs as they are, relative paths percent-encoded; None for
/// anything with another scheme (`javascript:`, `data:`, a drive letter).
fn artifact_href(path: &str) -> Option<String> {
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

fn badge(o: Outcome) -> String {
    format!(
        "<span class=\"badge\" data-outcome=\"{0}\">{0}</span>",
        o.as_str()
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A time since the scenario's start.
fn secs(ms: u64) -> String {
    format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
}

/// A length of time.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else {
        let s = ms / 1000;
        format!("{}m {:02}.{} s", s / 60, s % 60, (ms % 1000) / 100)
    }
}

fn ellipsize(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

// ---- the sample --------------------------------------------------------------------------

/// A realistic record for tests and the documentation's picture: a two-node scenario
/// "partitioned node heals" whose last assert fails, with a fault span, node and pod lanes built
/// by [`crate::lanes`] from realistic snapshots, events, traffic and artifacts; plus a passed
/// scenario and one whose world could not be built.
#[doc(hidden)]
pub fn sample() -> RunRecord {
    sample::run()
}

mod sample {
    use serde_json::{Value, json};

    use crate::lanes::{Snapshot, node_lanes, pod_lanes};
    use crate::record::{
        Artifact, EventRow, Failure, FaultSpan, OpRecord, Outcome, Phase, RunRecord,
        ScenarioRecord, StepRecord, TrafficSummary,
    };

    const IMAGE: &str = "registry.k8s.io/e2e-test-images/agnhost:2.53";
    const T0: &str = "2025-06-01T10:00:00Z";

    fn ts(ms: u64) -> String {
        // 10:00:00 + ms, good enough for a sample under an hour
        let s = ms / 1000;
        format!(
            "2025-06-01T10:{:02}:{:02}.{:03}Z",
            (s / 60) % 60,
            s % 60,
            ms % 1000
        )
    }

    fn cond(kind: &str, status: &str, reason: &str, message: &str, at: u64) -> Value {
        json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": ts(at), "lastTransitionTime": ts(at)
        })
    }

    fn node(name: &str, ip: &str, cidr: &str, ready: bool, at: u64, taints: Value) -> Value {
        let conditions = if ready {
            vec![
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                    at,
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                    at,
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                    at,
                ),
                cond(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                    at,
                ),
            ]
        } else {
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
                .into_iter()
                .map(|k| {
                    cond(
                        k,
                        "Unknown",
                        "NodeStatusUnknown",
                        "Kubelet stopped posting node status.",
                        at,
                    )
                })
                .collect()
        };
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "uid": format!("6a1c0d3e-{name}"),
                "labels": {
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": "zone-1"
                },
                "annotations": { "node.alpha.kubernetes.io/ttl": "0" },
                "creationTimestamp": "2025-06-01T09:59:58Z"
            },
            "spec": { "podCIDR": cidr, "podCIDRs": [cidr], "taints": taints },
            "status": {
                "capacity": { "cpu": "2", "memory": "4Gi", "pods": "110" },
                "allocatable": { "cpu": "1900m", "memory": "3484Mi", "pods": "110" },
                "conditions": conditions,
                "addresses": [ { "type": "InternalIP", "address": ip }, { "type": "Hostname", "address": name } ],
                "nodeInfo": {
                    "kubeletVersion": "v1.34.2-nodekit", "containerRuntimeVersion": "containerd://2.1.4",
                    "operatingSystem": "linux", "architecture": "amd64"
                }
            }
        })
    }

    fn unreachable_taints(at: u64) -> Value {
        json!([
            { "key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": ts(at) },
            { "key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": ts(at) }
        ])
    }

    fn lease(name: &str, renew_ms: u64) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": { "name": name, "namespace": "kube-node-lease",
                "ownerReferences": [{ "apiVersion": "v1", "kind": "Node", "name": name }] },
            "spec": { "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": ts(renew_ms) }
        })
    }

    /// One version of a pod of the StatefulSet `web`.
    #[derive(Clone)]
    struct PodAt {
        name: &'static str,
        uid: &'static str,
        node: Option<&'static str>,
        ip: Option<&'static str>,
        phase: &'static str,
        /// status of ContainersReady and Ready, with the reason when False
        ready: Option<(&'static str, Option<&'static str>)>,
        container: Option<Value>,
        restarts: u64,
        deleting_since: Option<u64>,
        deleted: bool,
    }

    impl PodAt {
        fn new(name: &'static str, uid: &'static str) -> Self {
            PodAt {
                name,
                uid,
                node: None,
                ip: None,
                phase: "Pending",
                ready: None,
                container: None,
                restarts: 0,
                deleting_since: None,
                deleted: false,
            }
        }

        fn json(&self, at: u64) -> Value {
            let mut conditions = vec![];
            if self.node.is_some() {
                conditions.push(json!({ "type": "PodScheduled", "status": "True", "lastTransitionTime": ts(at) }));
            }
            if let Some((status, reason)) = self.ready {
                conditions.push(json!({ "type": "Initialized", "status": "True", "lastTransitionTime": ts(at) }));
                for kind in ["ContainersReady", "Ready"] {
                    let mut c =
                        json!({ "type": kind, "status": status, "lastTransitionTime": ts(at) });
                    if let Some(r) = reason {
                        set(&mut c, &["reason"], json!(r));
                        set(
                            &mut c,
                            &["message"],
                            json!("containers with unready status: [web]"),
                        );
                    }
                    conditions.push(c);
                }
            }
            let statuses = match &self.container {
                Some(state) => json!([{
                    "name": "web", "image": IMAGE,
                    "imageID": "registry.k8s.io/e2e-test-images/agnhost@sha256:99c6b4bb4a1e1df3f0b3752168c89358794d02258ebebc26bf21c29399011a85",
                    "containerID": format!("containerd://{}{}", self.uid, self.restarts),
                    "ready": matches!(self.ready, Some(("True", _))),
                    "started": state.get("running").is_some(),
                    "restartCount": self.restarts,
                    "state": state
                }]),
                None => Value::Null,
            };
            let mut pod = json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": self.name, "namespace": "default", "uid": self.uid,
                    "generateName": "web-",
                    "labels": { "app": "web", "apps.kubernetes.io/pod-index": self.name.trim_start_matches("web-"),
                        "statefulset.kubernetes.io/pod-name": self.name },
                    "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                        "uid": "0d4f6c1a-5b7e-4f0e-9a51-2c7d0b8e9f10", "controller": true, "blockOwnerDeletion": true }]
                },
                "spec": {
                    "nodeName": self.node,
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "web", "image": IMAGE, "args": ["netexec", "--http-port=8080"],
                        "ports": [{ "containerPort": 8080, "protocol": "TCP" }],
                        "readinessProbe": { "httpGet": { "path": "/readyz", "port": 8080 }, "periodSeconds": 1, "failureThreshold": 1 },
                        "livenessProbe": { "httpGet": { "path": "/healthz", "port": 8080 }, "periodSeconds": 2, "failureThreshold": 3 }
                    }],
                    "tolerations": [
                        { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                        { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10 }
                    ]
                },
                "status": {
                    "phase": self.phase,
                    "conditions": conditions,
                    "hostIP": if self.node == Some("node-a") { json!("10.77.0.11") } else if self.node.is_some() { json!("10.77.0.12") } else { Value::Null },
                    "podIP": self.ip,
                    "containerStatuses": statuses
                }
            });
            if let Some(since) = self.deleting_since {
                let until = ts(since.saturating_add(30_000));
                set(&mut pod, &["metadata", "deletionTimestamp"], json!(until));
                set(
                    &mut pod,
                    &["metadata", "deletionGracePeriodSeconds"],
                    json!(30),
                );
            }
            if self.deleted {
                set(&mut pod, &["__deleted"], json!(true));
            }
            pod
        }
    }

    /// Sets a field of an object that exists (no indexing: nothing here panics).
    fn set(v: &mut Value, path: &[&str], value: Value) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut cur = v;
        for k in parents {
            match cur.get_mut(*k) {
                Some(next) => cur = next,
                None => return,
            }
        }
        if let Some(obj) = cur.as_object_mut() {
            obj.insert((*last).to_string(), value);
        }
    }

    fn running(at: u64) -> Value {
        json!({ "running": { "startedAt": ts(at) } })
    }

    fn waiting(reason: &str) -> Value {
        json!({ "waiting": { "reason": reason } })
    }

    fn terminated(reason: &str, code: i32, at: u64) -> Value {
        json!({ "terminated": { "reason": reason, "exitCode": code, "startedAt": ts(at.saturating_sub(8000)), "finishedAt": ts(at) } })
    }

    fn ev(
        at_ms: u64,
        kind: &str,
        reason: &str,
        object: &str,
        message: &str,
        count: u32,
        source: &str,
    ) -> EventRow {
        EventRow {
            at_ms,
            kind: kind.into(),
            reason: reason.into(),
            object: object.into(),
            message: message.into(),
            count,
            source: source.into(),
        }
    }

    fn op(
        phase: Phase,
        kind: &str,
        summary: &str,
        start_ms: u64,
        end_ms: u64,
        outcome: Outcome,
    ) -> OpRecord {
        OpRecord {
            phase,
            kind: kind.into(),
            summary: summary.into(),
            start_ms,
            end_ms,
            outcome,
            failure: None,
            output: None,
        }
    }

    fn step(
        name: &str,
        start_ms: u64,
        end_ms: u64,
        outcome: Outcome,
        operations: Vec<OpRecord>,
    ) -> StepRecord {
        StepRecord {
            name: name.into(),
            start_ms,
            end_ms,
            outcome,
            operations,
        }
    }

    /// The pod versions of the partition story, in time order.
    fn pod_snapshots() -> Vec<Snapshot> {
        let mut out = Vec::new();
        let mut push = |at: u64, p: &PodAt| {
            out.push(Snapshot {
                at_ms: at,
                object: p.json(at),
            })
        };

        // web-0 on node-a
        let mut a = PodAt::new("web-0", "8b1f7c2e-0a11-4c55-9d0e-1f2a3b4c5d60");
        push(200, &a);
        a.node = Some("node-a");
        push(250, &a);
        a.ready = Some(("False", Some("ContainersNotReady")));
        a.container = Some(waiting("ContainerCreating"));
        push(400, &a);
        a.phase = "Running";
        a.ip = Some("10.244.1.5");
        a.container = Some(running(1500));
        push(1500, &a);
        a.ready = Some(("True", None));
        push(2600, &a);

        // web-1 on node-b, once web-0 is Ready
        let mut b = PodAt::new("web-1", "c3d9e0f1-7a22-4b66-8e1f-2a3b4c5d6e71");
        push(2700, &b);
        b.node = Some("node-b");
        b.ready = Some(("False", Some("ContainersNotReady")));
        b.container = Some(waiting("ContainerCreating"));
        push(2800, &b);
        b.phase = "Running";
        b.ip = Some("10.244.2.4");
        b.container = Some(running(3400));
        push(3400, &b);
        b.ready = Some(("True", None));
        push(3900, &b);

        // node-a is Unknown: the node lifecycle controller marks its pods not Ready
        a.ready = Some(("False", None));
        push(52_200, &a);
        // the unreachable taint's tolerationSeconds (10 s) run out
        a.deleting_since = Some(62_100);
        push(62_100, &a);
        // node-a is back: its agent stops the deleted pod, then the pod is gone
        a.container = Some(terminated("Completed", 0, 71_000));
        push(71_000, &a);
        a.deleted = true;
        push(72_500, &a);

        // the StatefulSet's replacement web-0, back on node-a
        let mut c = PodAt::new("web-0", "f0e1d2c3-9b33-4d77-8f20-3b4c5d6e7f82");
        push(72_600, &c);
        c.node = Some("node-a");
        push(72_700, &c);
        c.ready = Some(("False", Some("ContainersNotReady")));
        c.container = Some(waiting("ContainerCreating"));
        push(72_900, &c);
        c.phase = "Running";
        c.ip = Some("10.244.1.7");
        c.container = Some(running(73_600));
        push(73_600, &c);
        c.container = Some(terminated("Error", 137, 81_900));
        push(81_900, &c);
        c.container = Some(running(83_500));
        c.restarts = 1;
        push(83_500, &c);

        // cleanup deletes the StatefulSet
        c.deleting_since = Some(95_100);
        b.deleting_since = Some(95_100);
        b.ready = Some(("False", Some("ContainersNotReady")));
        push(95_100, &c);
        push(95_100, &b);
        c.deleted = true;
        b.deleted = true;
        push(96_000, &c);
        push(96_100, &b);
        out
    }

    fn node_snapshots() -> Vec<Snapshot> {
        let s = |at_ms: u64, object: Value| Snapshot { at_ms, object };
        vec![
            s(
                0,
                node(
                    "node-a",
                    "10.77.0.11",
                    "10.244.1.0/24",
                    true,
                    0,
                    json!(null),
                ),
            ),
            s(
                0,
                node(
                    "node-b",
                    "10.77.0.12",
                    "10.244.2.0/24",
                    true,
                    0,
                    json!(null),
                ),
            ),
            s(
                52_000,
                node(
                    "node-a",
                    "10.77.0.11",
                    "10.244.1.0/24",
                    false,
                    52_000,
                    json!(null),
                ),
            ),
            s(
                52_100,
                node(
                    "node-a",
                    "10.77.0.11",
                    "10.244.1.0/24",
                    false,
                    52_000,
                    unreachable_taints(52_100),
                ),
            ),
            s(
                70_500,
                node(
                    "node-a",
                    "10.77.0.11",
                    "10.244.1.0/24",
                    true,
                    70_500,
                    unreachable_taints(52_100),
                ),
            ),
            s(
                72_000,
                node(
                    "node-a",
                    "10.77.0.11",
                    "10.244.1.0/24",
                    true,
                    70_500,
                    json!(null),
                ),
            ),
        ]
    }

    fn lease_snapshots() -> Vec<Snapshot> {
        let mut out = vec![];
        // node-a renews every 10 s until the partition, and again once it heals
        for at in [300, 70_400, 80_400, 90_400] {
            out.push(Snapshot {
                at_ms: at,
                object: lease("node-a", at),
            });
        }
        for at in (0..10).map(|i| 4_000 + i * 10_000) {
            out.push(Snapshot {
                at_ms: at,
                object: lease("node-b", at),
            });
        }
        out
    }

    fn events() -> Vec<EventRow> {
        let probe = "Readiness probe failed: Get \"http://10.244.1.7:8080/readyz\": dial tcp 10.244.1.7:8080: connect: connection refused";
        vec![
            ev(
                100,
                "Normal",
                "SuccessfulCreate",
                "StatefulSet/default/web",
                "create Pod web-0 in StatefulSet web successful",
                1,
                "statefulset-controller",
            ),
            ev(
                250,
                "Normal",
                "Scheduled",
                "Pod/default/web-0",
                "Successfully assigned default/web-0 to node-a",
                1,
                "default-scheduler",
            ),
            ev(
                1200,
                "Normal",
                "Pulled",
                "Pod/default/web-0",
                &format!("Container image \"{IMAGE}\" already present on machine"),
                1,
                "kubelet node-a",
            ),
            ev(
                1300,
                "Normal",
                "Created",
                "Pod/default/web-0",
                "Created container: web",
                1,
                "kubelet node-a",
            ),
            ev(
                1500,
                "Normal",
                "Started",
                "Pod/default/web-0",
                "Started container web",
                1,
                "kubelet node-a",
            ),
            ev(
                2700,
                "Normal",
                "SuccessfulCreate",
                "StatefulSet/default/web",
                "create Pod web-1 in StatefulSet web successful",
                1,
                "statefulset-controller",
            ),
            ev(
                2750,
                "Normal",
                "Scheduled",
                "Pod/default/web-1",
                "Successfully assigned default/web-1 to node-b",
                1,
                "default-scheduler",
            ),
            ev(
                3400,
                "Normal",
                "Started",
                "Pod/default/web-1",
                "Started container web",
                1,
                "kubelet node-b",
            ),
            ev(
                52_000,
                "Normal",
                "NodeNotReady",
                "Node/node-a",
                "Node node-a status is now: NodeNotReady",
                1,
                "node-controller",
            ),
            ev(
                52_200,
                "Warning",
                "NodeNotReady",
                "Pod/default/web-0",
                "Node is not ready",
                1,
                "node-controller",
            ),
            ev(
                62_100,
                "Normal",
                "TaintManagerEviction",
                "Pod/default/web-0",
                "Marking for deletion Pod default/web-0",
                1,
                "taint-eviction-controller",
            ),
            ev(
                70_500,
                "Normal",
                "NodeReady",
                "Node/node-a",
                "Node node-a status is now: NodeReady",
                1,
                "kubelet node-a",
            ),
            ev(
                70_800,
                "Normal",
                "Killing",
                "Pod/default/web-0",
                "Stopping container web",
                1,
                "kubelet node-a",
            ),
            ev(
                72_600,
                "Normal",
                "SuccessfulCreate",
                "StatefulSet/default/web",
                "create Pod web-0 in StatefulSet web successful",
                2,
                "statefulset-controller",
            ),
            ev(
                72_700,
                "Normal",
                "Scheduled",
                "Pod/default/web-0",
                "Successfully assigned default/web-0 to node-a",
                1,
                "default-scheduler",
            ),
            ev(
                73_600,
                "Normal",
                "Started",
                "Pod/default/web-0",
                "Started container web",
                1,
                "kubelet node-a",
            ),
            ev(
                75_000,
                "Warning",
                "Unhealthy",
                "Pod/default/web-0",
                probe,
                1,
                "kubelet node-a",
            ),
            ev(
                78_000,
                "Warning",
                "Unhealthy",
                "Pod/default/web-0",
                probe,
                4,
                "kubelet node-a",
            ),
            ev(
                80_000,
                "Warning",
                "Unhealthy",
                "Pod/default/web-0",
                "Liveness probe failed: Get \"http://10.244.1.7:8080/healthz\": dial tcp 10.244.1.7:8080: connect: connection refused",
                3,
                "kubelet node-a",
            ),
            ev(
                80_100,
                "Normal",
                "Killing",
                "Pod/default/web-0",
                "Container web failed liveness probe, will be restarted",
                1,
                "kubelet node-a",
            ),
            ev(
                83_500,
                "Normal",
                "Started",
                "Pod/default/web-0",
                "Started container web",
                2,
                "kubelet node-a",
            ),
            ev(
                86_000,
                "Warning",
                "Unhealthy",
                "Pod/default/web-0",
                probe,
                12,
                "kubelet node-a",
            ),
            ev(
                92_000,
                "Warning",
                "Unhealthy",
                "Pod/default/web-0",
                probe,
                18,
                "kubelet node-a",
            ),
        ]
    }

    fn partition() -> ScenarioRecord {
        let end_ms = 96_500;
        let events = events();
        let nodes = node_lanes(&node_snapshots(), &lease_snapshots(), end_ms);
        let pods = pod_lanes(&pod_snapshots(), &events, end_ms);

        let mut assert_ready = op(
            Phase::Try,
            "assert",
            "assert Pod default/web-0 (Ready, within 20s)",
            74_000,
            94_000,
            Outcome::Failed,
        );
        assert_ready.failure = Some(Failure {
            message: "Pod default/web-0 did not match within 20s: status.conditions[type=Ready].status: expected \"True\", got \"False\" (reason ContainersNotReady)".into(),
            expected: Some(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": "web-0", "namespace": "default" },
                "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] }
            })),
            actual: Some(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": "web-0", "namespace": "default", "uid": "f0e1d2c3-9b33-4d77-8f20-3b4c5d6e7f82" },
                "status": {
                    "phase": "Running",
                    "conditions": [{ "type": "Ready", "status": "False", "reason": "ContainersNotReady",
                        "message": "containers with unready status: [web]", "lastTransitionTime": ts(72_900) }],
                    "podIP": "10.244.1.7",
                    "containerStatuses": [{ "name": "web", "ready": false, "restartCount": 1, "started": true,
                        "state": { "running": { "startedAt": ts(83_500) } },
                        "lastState": { "terminated": { "reason": "Error", "exitCode": 137, "finishedAt": ts(81_900) } } }]
                }
            })),
            diff: Some(
                "--- expected\n+++ actual (at 93.9s)\n@@ status.conditions[type=Ready] @@\n   type: Ready\n-  status: \"True\"\n+  status: \"False\"\n+  reason: ContainersNotReady\n+  message: 'containers with unready status: [web]'\n@@ status @@\n   phase: Running"
                    .into(),
            ),
        });
        let mut events_out = op(
            Phase::Catch,
            "events",
            "events default/web-0",
            94_000,
            94_100,
            Outcome::Passed,
        );
        events_out.output = Some(
            "LAST SEEN  TYPE     REASON     OBJECT     MESSAGE\n\
             20s        Normal   Scheduled  pod/web-0  Successfully assigned default/web-0 to node-a\n\
             10s        Normal   Killing    pod/web-0  Container web failed liveness probe, will be restarted\n\
             2s (x18)   Warning  Unhealthy  pod/web-0  Readiness probe failed: Get \"http://10.244.1.7:8080/readyz\": dial tcp 10.244.1.7:8080: connect: connection refused"
                .into(),
        );
        let mut logs = op(
            Phase::Catch,
            "podLogs",
            "pod logs default/web-0 (container web)",
            94_100,
            94_300,
            Outcome::Passed,
        );
        logs.output = Some(
            "I0601 10:01:23.512044       1 log.go:245] Started HTTP server on port 8080\n\
             I0601 10:01:23.512301       1 log.go:245] Started UDP server on port  8081"
                .into(),
        );
        let mut agent = op(
            Phase::Catch,
            "script",
            "script: nft list chain ip nodekit-pods forward (node-a)",
            94_300,
            94_600,
            Outcome::Passed,
        );
        agent.output = Some(
            "table ip nodekit-pods {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tip daddr 10.244.1.5 accept\n\t}\n}".into(),
        );

        let steps = vec![
            step(
                "start web on both nodes",
                0,
                4_000,
                Outcome::Passed,
                vec![
                    op(
                        Phase::Try,
                        "apply",
                        "apply StatefulSet default/web (2 replicas)",
                        0,
                        150,
                        Outcome::Passed,
                    ),
                    op(
                        Phase::Try,
                        "apply",
                        "apply Service default/web",
                        150,
                        200,
                        Outcome::Passed,
                    ),
                    op(
                        Phase::Try,
                        "assert",
                        "assert StatefulSet default/web (readyReplicas 2)",
                        200,
                        4_000,
                        Outcome::Passed,
                    ),
                ],
            ),
            step(
                "partition node-a",
                4_000,
                5_000,
                Outcome::Passed,
                vec![op(
                    Phase::Try,
                    "fault",
                    "fault partition node-a from the API server",
                    4_900,
                    5_000,
                    Outcome::Passed,
                )],
            ),
            step(
                "node-a goes Unknown and is tainted",
                5_000,
                52_400,
                Outcome::Passed,
                vec![
                    op(
                        Phase::Try,
                        "assert",
                        "assert Node node-a (Ready Unknown, within 60s)",
                        5_000,
                        52_100,
                        Outcome::Passed,
                    ),
                    op(
                        Phase::Try,
                        "assert",
                        "assert Node node-a (taint node.kubernetes.io/unreachable:NoExecute)",
                        52_100,
                        52_400,
                        Outcome::Passed,
                    ),
                ],
            ),
            step(
                "web-0 is marked for deletion, web-1 serves",
                52_400,
                65_000,
                Outcome::Passed,
                vec![
                    op(
                        Phase::Try,
                        "assert",
                        "assert Pod default/web-0 (deletionTimestamp set, within 15s)",
                        52_400,
                        62_300,
                        Outcome::Passed,
                    ),
                    op(
                        Phase::Try,
                        "traffic",
                        "traffic client → Service default/web:80 (20 requests)",
                        62_300,
                        65_000,
                        Outcome::Passed,
                    ),
                ],
            ),
            step(
                "heal the partition",
                69_900,
                70_000,
                Outcome::Passed,
                vec![op(
                    Phase::Try,
                    "fault",
                    "heal partition node-a",
                    69_900,
                    70_000,
                    Outcome::Passed,
                )],
            ),
            step(
                "the replacement web-0 becomes Ready",
                70_000,
                96_200,
                Outcome::Failed,
                vec![
                    op(
                        Phase::Try,
                        "assert",
                        "assert Node node-a (Ready True, within 30s)",
                        70_000,
                        70_600,
                        Outcome::Passed,
                    ),
                    op(
                        Phase::Try,
                        "assert",
                        "assert Pod default/web-0 (a new uid)",
                        70_600,
                        72_700,
                        Outcome::Passed,
                    ),
                    op(
                        Phase::Try,
                        "assert",
                        "assert Node node-a (no unreachable taints)",
                        72_700,
                        74_000,
                        Outcome::Passed,
                    ),
                    assert_ready,
                    events_out,
                    logs,
                    agent,
                    op(
                        Phase::Cleanup,
                        "delete",
                        "delete StatefulSet default/web",
                        95_000,
                        96_200,
                        Outcome::Passed,
                    ),
                ],
            ),
        ];

        ScenarioRecord {
            name: "partitioned node heals".into(),
            file: "scenarios/node-failure/partitioned-node-heals.yaml".into(),
            description: Some(
                "node-a loses the API server for 65 s: the node lifecycle controller marks it Unknown and taints it unreachable, \
                 the taint evicts web-0 after its 10 s toleration, and once the partition heals node-a must stop the deleted pod \
                 and run the StatefulSet's replacement until it is Ready."
                    .into(),
            ),
            cites: vec![
                "https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#taint-based-evictions".into(),
                "A node back from a partition kills the pods deleted meanwhile".into(),
            ],
            runtime: "containerd 2.1".into(),
            proxy_mode: "nftables".into(),
            duration_ms: end_ms,
            outcome: Outcome::Failed,
            message: Some(
                "Step 6 \"the replacement web-0 becomes Ready\" failed: the new web-0 on node-a stayed Ready=False for 20 s. \
                 Its readiness and liveness probes got \"connection refused\" from 10.244.1.7 while the container logged that it \
                 listens on 8080; node-a's pod forward chain still admits only the old pod's address 10.244.1.5."
                    .into(),
            ),
            steps,
            nodes,
            pods,
            faults: vec![FaultSpan {
                text: "partition node-a from the API server".into(),
                target: "node-a".into(),
                start_ms: 5_000,
                end_ms: 70_000,
            }],
            events,
            traffic: vec![TrafficSummary {
                step: "web-0 is marked for deletion, web-1 serves".into(),
                target: "Service default/web 10.96.0.10:80 from client".into(),
                attempts: 20,
                succeeded: 20,
                per_endpoint: vec![("web-1 10.244.2.4:8080".into(), 20)],
                expected: "every request answered, none by the not-Ready web-0".into(),
            }],
            artifacts: vec![
                Artifact { label: "agent log node-a".into(), path: "partitioned-node-heals/node-a/agent.log".into() },
                Artifact { label: "agent log node-b".into(), path: "partitioned-node-heals/node-b/agent.log".into() },
                Artifact { label: "proxy log node-a".into(), path: "partitioned-node-heals/node-a/proxy.log".into() },
                Artifact { label: "audit log".into(), path: "partitioned-node-heals/audit.jsonl".into() },
                Artifact { label: "pcap step 4".into(), path: "partitioned-node-heals/step-4 client.pcap".into() },
                Artifact { label: "run record (JSON)".into(), path: "partitioned-node-heals/record.json".into() },
            ],
        }
    }

    fn lease_renews() -> ScenarioRecord {
        let end_ms = 31_200;
        let nodes = node_lanes(
            &[Snapshot {
                at_ms: 0,
                object: node(
                    "node-a",
                    "10.77.0.11",
                    "10.244.1.0/24",
                    true,
                    0,
                    json!(null),
                ),
            }],
            &(0..4)
                .map(|i| Snapshot {
                    at_ms: 200 + i * 10_000,
                    object: lease("node-a", 200 + i * 10_000),
                })
                .collect::<Vec<_>>(),
            end_ms,
        );
        ScenarioRecord {
            name: "node lease renews every 10s".into(),
            file: "scenarios/heartbeats/lease-renews.yaml".into(),
            description: Some("The agent renews its Lease in kube-node-lease every 10 s and does not rewrite the Node status while nothing changes.".into()),
            cites: vec!["https://kubernetes.io/docs/concepts/architecture/leases/#node-heart-beats".into()],
            runtime: "containerd 2.1".into(),
            proxy_mode: "nftables".into(),
            duration_ms: end_ms,
            outcome: Outcome::Passed,
            message: None,
            steps: vec![
                step("node-a is Ready", 0, 200, Outcome::Passed, vec![
                    op(Phase::Try, "assert", "assert Node node-a (Ready True)", 0, 200, Outcome::Passed),
                ]),
                step("three renewals, no status write", 200, 31_000, Outcome::Passed, vec![
                    op(Phase::Try, "assert", "assert Lease kube-node-lease/node-a (renewTime advances 3 times, within 35s)", 200, 30_300, Outcome::Passed),
                    op(Phase::Try, "error", "error Node node-a (status rewritten)", 30_300, 31_000, Outcome::Passed),
                ]),
            ],
            nodes,
            pods: vec![],
            faults: vec![],
            events: vec![ev(0, "Normal", "NodeReady", "Node/node-a", "Node node-a status is now: NodeReady", 1, "kubelet node-a")],
            traffic: vec![],
            artifacts: vec![Artifact { label: "agent log node-a".into(), path: "lease-renews/node-a/agent.log".into() }],
        }
    }

    fn broken_world() -> ScenarioRecord {
        ScenarioRecord {
            name: "image pull failure backs off".into(),
            file: "scenarios/pod-lifecycle/image-pull-failure-backs-off.yaml".into(),
            description: None,
            cites: vec![],
            runtime: "containerd 1.6".into(),
            proxy_mode: "iptables".into(),
            duration_ms: 30_400,
            outcome: Outcome::Error,
            message: Some(
                "world: containerd on node-a did not become ready within 30s: dial unix /run/containerd/containerd.sock: connect: no such file or directory"
                    .into(),
            ),
            steps: vec![],
            nodes: vec![],
            pods: vec![],
            faults: vec![],
            events: vec![],
            traffic: vec![],
            artifacts: vec![Artifact { label: "containerd log node-a".into(), path: "image-pull-failure-backs-off/node-a/containerd.log".into() }],
        }
    }

    pub(super) fn run() -> RunRecord {
        RunRecord {
            started: T0.into(),
            scenarios: vec![partition(), lease_renews(), broken_world()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Mark, Segment, Track};

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{0}b\u{1b}[0mc\u{85}\td\n"), "ab[0mc\td\n");
    }

    #[test]
    fn links_are_only_for_the_web_and_relative_paths() {
        assert!(is_web_url(
            "https://github.com/kubernetes/kubernetes/issues/1"
        ));
        assert!(!is_web_url("javascript:alert(1)"));
        assert!(!is_web_url("behaviour name"));
        assert_eq!(
            artifact_href("a/b c#1.log").as_deref(),
            Some("a/b%20c%231.log")
        );
        assert_eq!(artifact_href("javascript:alert(1)"), None);
        assert_eq!(artifact_href("C:/x"), None);
        assert_eq!(artifact_href(""), None);
        assert_eq!(artifact_href("ünï/x").as_deref(), Some("%C3%BCn%C3%AF/x"));
    }

    #[test]
    fn times_and_fitting() {
        assert_eq!(secs(0), "0.0s");
        assert_eq!(secs(62_150), "62.1s");
        assert_eq!(duration(250), "250 ms");
        assert_eq!(duration(96_500), "1m 36.5 s");
        assert_eq!(fit("Running", 200.0), "Running");
        assert_eq!(fit("Running", 10.0), "");
        let f = fit("False (ContainersNotReady)", 60.0);
        assert!(f.ends_with('…') && f.chars().count() < 10);
        assert_eq!(tick_ms(96_500), 10_000);
        assert_eq!(tick_ms(1_000), 100);
        assert_eq!(tick_ms(u64::MAX), u64::MAX / 14);
        assert_eq!(tick_label(1500, 500), "1.5s");
    }

    #[test]
    fn rows_do_not_overlap() {
        let (rows, n) = stack_rows(
            &[
                (0.0, 100.0),
                (50.0, 80.0),
                (60.0, 90.0),
                (70.0, 95.0),
                (200.0, 210.0),
            ],
            3,
        );
        assert_eq!(n, 3);
        assert_eq!(rows, [0, 1, 2, 1, 0]);
    }

    #[test]
    fn the_sample_has_everything_the_report_shows() {
        let run = sample();
        let sc = &run.scenarios[0];
        assert_eq!(sc.name, "partitioned node heals");
        assert_eq!(sc.outcome, Outcome::Failed);
        assert_eq!(
            sc.nodes.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["node-a", "node-b"]
        );
        assert_eq!(
            sc.pods.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["default/web-0", "default/web-1"]
        );
        assert_eq!(sc.failed_steps().count(), 1);
        let ready = &sc.nodes[0].tracks[0];
        assert_eq!(ready.label, "Ready");
        assert!(
            ready
                .segments
                .iter()
                .any(|s| s.tone == Tone::Unknown && s.start_ms == 52_000 && s.end_ms == 70_500)
        );
        let web0 = &sc.pods[0];
        let container = web0
            .tracks
            .iter()
            .find(|t| t.label == "container web")
            .unwrap();
        assert_eq!(
            container
                .marks
                .iter()
                .map(|m| m.text.as_str())
                .collect::<Vec<_>>(),
            ["restart 1"]
        );
        let phase = &web0.tracks[0];
        assert!(phase.segments.iter().any(|s| s.text == "Terminating"));
        assert!(
            phase
                .marks
                .iter()
                .any(|m| m.text.starts_with("TaintManagerEviction"))
        );
        assert!(!run.passed());
        // it round-trips as JSON
        let back: RunRecord = serde_json::from_str(&serde_json::to_string(&run).unwrap()).unwrap();
        assert_eq!(back, run);
    }

    #[test]
    fn the_report_has_its_hooks() {
        let html = render(&sample());
        for needle in [
            "<!DOCTYPE html>",
            "id=\"scenario-1\"",
            "id=\"scenario-2\"",
            "id=\"scenario-3\"",
            "class=\"lane node\" data-lane=\"node-a\"",
            "class=\"lane node\" data-lane=\"node-b\"",
            "class=\"lane pod\" data-lane=\"default/web-0\"",
            "class=\"lane pod\" data-lane=\"default/web-1\"",
            "class=\"track\" data-track=\"Ready\"",
            "class=\"fault\"",
            "class=\"step-marker\" data-outcome=\"failed\"",
            "class=\"failure\"",
            "<span class=\"del\">-  status: &quot;True&quot;</span>",
            "href=\"#scenario-1\"",
            "href=\"partitioned-node-heals/step-4%20client.pcap\"",
            "href=\"https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#taint-based-evictions\"",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        // failed scenarios open, passed ones collapsed
        assert!(html.contains(
            "<section class=\"scenario\" id=\"scenario-1\" data-outcome=\"failed\">\n<details open>"
        ));
        assert!(html.contains(
            "<section class=\"scenario\" id=\"scenario-2\" data-outcome=\"passed\">\n<details>"
        ));
        // self-contained
        assert!(!html.contains("<script"));
        assert!(!html.contains("src=\"http"));
        assert!(!html.contains("<link"));
    }

    fn hostile_run() -> RunRecord {
        let evil = "<img src=x onerror=alert(1)>\"'&\u{0}";
        let mut run = sample();
        run.started = evil.into();
        let sc = &mut run.scenarios[0];
        sc.name = evil.into();
        sc.cites.push(format!("javascript:{evil}"));
        sc.message = Some(evil.into());
        sc.nodes[0].name = evil.into();
        sc.nodes[0].tracks[0].label = evil.into();
        sc.nodes[0].tracks[0].segments.push(Segment {
            start_ms: 0,
            end_ms: 10,
            text: evil.into(),
            tone: Tone::Bad,
        });
        sc.nodes[0].tracks.push(Track {
            label: evil.into(),
            segments: vec![],
            marks: vec![Mark {
                at_ms: u64::MAX,
                text: evil.into(),
                tone: Tone::Warn,
            }],
        });
        sc.faults[0].text = evil.into();
        sc.faults[0].target = evil.into();
        sc.steps[0].name = evil.into();
        sc.steps[0].operations[0].summary = evil.into();
        sc.steps[0].operations[0].kind = evil.into();
        sc.events[0].message = evil.into();
        sc.traffic[0].per_endpoint.push((evil.into(), 1));
        sc.artifacts.push(Artifact {
            label: evil.into(),
            path: evil.into(),
        });
        sc.artifacts.push(Artifact {
            label: "js".into(),
            path: "javascript:alert(1)".into(),
        });
        run
    }

    #[test]
    fn everything_from_users_and_the_api_server_is_escaped() {
        let html = render(&hostile_run());
        assert!(!html.contains("<img"));
        assert!(!html.contains("href=\"javascript:"));
        assert!(!html.contains('\u{0}'));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"));
    }

    #[test]
    fn odd_records_do_not_panic() {
        let empty = RunRecord {
            started: String::new(),
            scenarios: vec![],
        };
        assert!(render(&empty).contains("0 scenarios"));
        let mut run = sample();
        let sc = &mut run.scenarios[0];
        sc.duration_ms = 0;
        sc.steps[0].start_ms = u64::MAX;
        sc.steps[0].end_ms = 0;
        sc.faults[0].start_ms = 9;
        sc.faults[0].end_ms = 3;
        sc.nodes[0].tracks.clear();
        sc.pods[0].tracks[0].segments.push(Segment {
            start_ms: 5,
            end_ms: 1,
            text: String::new(),
            tone: Tone::Good,
        });
        sc.steps[5].operations[3].failure = None;
        let html = render(&run);
        assert!(html.contains("no failure detail was recorded"));
    }
}
