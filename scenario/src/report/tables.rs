//! The tables under a timeline: steps with their operations and failures, traffic, events
//! and artifacts.

use std::fmt::Write as _;

use crate::record::{
    Artifact, EventRow, Failure, OpRecord, ScenarioRecord, StepRecord, TrafficSummary,
};

use super::text::{artifact_href, badge, duration, esc, plural, secs};

pub(super) fn steps_table(h: &mut String, n: usize, sc: &ScenarioRecord) {
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

pub(super) fn traffic_table(h: &mut String, traffic: &[TrafficSummary]) {
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

pub(super) fn events_table(h: &mut String, events: &[EventRow]) {
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

pub(super) fn artifacts(h: &mut String, list: &[Artifact]) {
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
