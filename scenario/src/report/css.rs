//! The report's style sheet.

pub(super) const CSS: &str = r#":root {
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
