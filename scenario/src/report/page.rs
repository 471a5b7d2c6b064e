//! The page around the timelines and tables: the summary table and each scenario's section.

use std::fmt::Write as _;

use crate::record::{RunRecord, ScenarioRecord, StepRecord};

use super::tables::{artifacts, events_table, steps_table, traffic_table};
use super::text::{badge, duration, ellipsize, esc, is_web_url};
use super::timeline::timeline;

pub(super) fn summary_table(h: &mut String, run: &RunRecord) {
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

pub(super) fn scenario(h: &mut String, n: usize, sc: &ScenarioRecord) {
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

    meta(h, sc);

    // Timeline.
    if !(sc.steps.is_empty() && sc.nodes.is_empty() && sc.pods.is_empty() && sc.faults.is_empty()) {
        h.push_str("<h3>Timeline</h3>\n");
        h.push_str(LEGEND);
        h.push_str("<div class=\"timeline\">\n");
        timeline(h, n, sc);
        h.push_str("</div>\n");
    }

    sections(h, n, sc);
    h.push_str("</div>\n</details>\n</section>\n");
}

/// The scenario's header: file, runtime, proxy mode, duration and cites; its description and
/// why it failed.
fn meta(h: &mut String, sc: &ScenarioRecord) {
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
}

/// The steps, traffic, events and artifacts.
fn sections(h: &mut String, n: usize, sc: &ScenarioRecord) {
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
}

const LEGEND: &str = "<div class=\"legend\"><span><i class=\"sw-good\"></i>good</span><span><i class=\"sw-warn\"></i>warning</span><span><i class=\"sw-bad\"></i>bad</span><span><i class=\"sw-unknown\"></i>unknown</span><span><i class=\"sw-neutral\"></i>neutral</span><span><i class=\"sw-fault\"></i>fault in force</span><span><i class=\"sw-step\"></i>failed step</span><span><i class=\"sw-mark\"></i>mark (restart, probe failure, event, lease renewal)</span></div>\n";
