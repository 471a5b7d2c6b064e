//! The timeline: one SVG per scenario with a shared time axis, step and fault bars, and a
//! lane group per node and per pod.

use std::fmt::Write as _;

use crate::record::{
    FaultSpan, Lane, Mark, Outcome, ScenarioRecord, Segment, StepRecord, Tone, Track,
};

use super::text::{ellipsize, esc, secs};

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
pub(super) fn stack_rows(items: &[(f64, f64)], max_rows: usize) -> (Vec<usize>, usize) {
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
pub(super) fn fit(text: &str, width: f64) -> String {
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

pub(super) fn timeline(h: &mut String, n: usize, sc: &ScenarioRecord) {
    let t_end = time_range(sc);
    let scale = Scale {
        t_end: t_end as f64,
    };

    // Rows for step and fault bars, so that their labels do not overlap.
    let steps = StepBars::new(sc, &scale);
    let (fault_rows, n_fault_rows) = fault_rows(sc, &scale);

    let steps_top = AXIS_H;
    let faults_top = steps_top + steps.n_rows as f64 * BAR_ROW_H;
    let lanes_top = faults_top + n_fault_rows as f64 * BAR_ROW_H + 6.0;
    let lanes_bottom = lanes_top + group_height(&sc.nodes) + group_height(&sc.pods);
    let height = lanes_bottom + 10.0;

    svg_open(h, n, sc, height);
    axis(h, &scale, t_end, lanes_bottom);

    // Row labels for the bar rows.
    if steps.n_rows > 0 {
        side_label(h, steps_top, BAR_ROW_H, "steps", true);
    }
    if n_fault_rows > 0 {
        side_label(h, faults_top, BAR_ROW_H, "faults", true);
    }

    lane_groups(h, &scale, sc, lanes_top);

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
    for (k, &i) in steps.order.iter().enumerate() {
        let (Some(st), Some(label)) = (sc.steps.get(i), steps.labels.get(i)) else {
            continue;
        };
        let row = steps.rows.get(k).copied().unwrap_or(0);
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

/// The time range: everything recorded, at least one second.
fn time_range(sc: &ScenarioRecord) -> u64 {
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
    t_end.max(1000)
}

/// The step bars: steps in order of start, their labels, and the row of each.
struct StepBars {
    /// Indices into the scenario's steps, by start time.
    order: Vec<usize>,
    /// `<number> <name>` of each step, by index.
    labels: Vec<String>,
    /// The row of each bar, in `order`.
    rows: Vec<usize>,
    n_rows: usize,
}

impl StepBars {
    fn new(sc: &ScenarioRecord, scale: &Scale) -> Self {
        let mut order: Vec<usize> = (0..sc.steps.len()).collect();
        order.sort_by_key(|&i| sc.steps.get(i).map_or(0, |s| s.start_ms));
        let labels: Vec<String> = sc
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{} {}", i + 1, s.name))
            .collect();
        let items: Vec<(f64, f64)> = order
            .iter()
            .filter_map(|&i| {
                let s = sc.steps.get(i)?;
                let x0 = scale.x(s.start_ms);
                let label = labels
                    .get(i)
                    .map_or(0.0, |l| label_width(&ellipsize(l, 48)));
                Some((x0, scale.x(s.end_ms).max(x0 + label)))
            })
            .collect();
        let (rows, n_rows) = stack_rows(&items, MAX_BAR_ROWS);
        StepBars {
            order,
            labels,
            rows,
            n_rows,
        }
    }
}

/// The row of each fault bar, and how many rows there are.
fn fault_rows(sc: &ScenarioRecord, scale: &Scale) -> (Vec<usize>, usize) {
    let items: Vec<(f64, f64)> = sc
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
    stack_rows(&items, MAX_BAR_ROWS)
}

fn lane_height(l: &Lane) -> f64 {
    LANE_HEAD_H + l.tracks.len() as f64 * TRACK_H
}

fn group_height(lanes: &[Lane]) -> f64 {
    if lanes.is_empty() {
        0.0
    } else {
        GROUP_H + lanes.iter().map(lane_height).sum::<f64>()
    }
}

/// The `<svg>` element, the hatch pattern of fault bands and the label column's background.
fn svg_open(h: &mut String, n: usize, sc: &ScenarioRecord, height: f64) {
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
}

/// Axis: ticks in seconds, grid lines down through the lanes.
fn axis(h: &mut String, scale: &Scale, t_end: u64, lanes_bottom: f64) {
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
}

/// The node lanes, then the pod lanes, each group under its title, from `top` down.
fn lane_groups(h: &mut String, scale: &Scale, sc: &ScenarioRecord, top: f64) {
    let mut y = top;
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
            lane_svg(h, scale, lane, kind, y);
            y += lane_height(lane);
        }
    }
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

pub(super) fn tick_ms(t_end: u64) -> u64 {
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

pub(super) fn tick_label(t: u64, tick: u64) -> String {
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
        track_svg(h, scale, track, i, y + head_h + i as f64 * TRACK_H);
    }
    h.push_str("</g>\n");
}

/// One track of a lane, the `i`th, its row at `ty`.
fn track_svg(h: &mut String, scale: &Scale, track: &Track, i: usize, ty: f64) {
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
        segment_svg(h, scale, &track.label, s, ty);
    }
    for m in &track.marks {
        mark_svg(h, scale, &track.label, m, ty);
    }
    h.push_str("</g>\n");
}

/// One segment of a track: a bar with its text when it fits.
fn segment_svg(h: &mut String, scale: &Scale, label: &str, s: &Segment, ty: f64) {
    let x0 = scale.x(s.start_ms);
    let w = (scale.x(s.end_ms) - x0).max(1.5);
    let (fill, ink) = tone_fill(s.tone);
    let _ = write!(
        h,
        "<g class=\"segment\" data-tone=\"{}\"><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{fill}\"><title>{}: {} ({}–{})</title></rect>",
        s.tone.as_str(),
        ty + 2.0,
        TRACK_H - 4.0,
        esc(label),
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

/// One mark of a track: a tick with a small flag.
fn mark_svg(h: &mut String, scale: &Scale, label: &str, m: &Mark, ty: f64) {
    let x = scale.x(m.at_ms);
    let c = mark_colour(m.tone);
    let (top, bottom) = (ty + 1.0, ty + TRACK_H - 1.0);
    let _ = writeln!(
        h,
        "<g class=\"mark\" data-tone=\"{}\"><title>{}: {} at {}</title><line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#ffffff\" stroke-width=\"4\"/><line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"{c}\" stroke-width=\"2\"/><path d=\"M{:.1} {top:.1}h8l-4 6z\" fill=\"{c}\" stroke=\"#ffffff\" stroke-width=\"0.8\"/></g>",
        m.tone.as_str(),
        esc(label),
        esc(&m.text),
        secs(m.at_ms),
        x - 4.0
    );
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
