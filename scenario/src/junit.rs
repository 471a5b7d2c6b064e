//! JUnit XML for CI systems: one `<testsuite>` per scenario, one `<testcase>` per step.
//!
//! A failed step carries a `<failure>` whose `message` is the failing operation's message (never
//! empty) and whose `type` is the operation's kind; its body holds the operation's summary, the
//! message and the diff. A scenario that ended in an error before any step ran (the world could
//! not be built) gets one testcase `world` with an `<error>`.

use std::fmt::Write as _;

use crate::record::{Outcome, RunRecord, ScenarioRecord, StepRecord};

/// The run as JUnit XML.
pub fn render(run: &RunRecord) -> String {
    let suites: Vec<Suite> = run.scenarios.iter().map(suite).collect();
    let total = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>();
    let total_ms: u64 = run
        .scenarios
        .iter()
        .map(|s| s.duration_ms)
        .fold(0, u64::saturating_add);

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"nodekit scenarios\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        total(|s| s.cases.len()),
        total(|s| s.count(Kind::Failure)),
        total(|s| s.count(Kind::Error)),
        total(|s| s.count(Kind::Skipped)),
        secs(total_ms),
        attr(&run.started),
    );
    for (sc, suite) in run.scenarios.iter().zip(&suites) {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\" file=\"{}\">",
            attr(&sc.name),
            suite.cases.len(),
            suite.count(Kind::Failure),
            suite.count(Kind::Error),
            suite.count(Kind::Skipped),
            secs(sc.duration_ms),
            attr(&run.started),
            attr(&sc.file),
        );
        out.push_str("    <properties>\n");
        let mut props: Vec<(&str, &str)> = vec![
            ("file", &sc.file),
            ("runtime", &sc.runtime),
            ("proxyMode", &sc.proxy_mode),
            ("outcome", sc.outcome.as_str()),
        ];
        props.extend(sc.cites.iter().map(|c| ("cites", c.as_str())));
        for (name, value) in props {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                attr(value)
            );
        }
        out.push_str("    </properties>\n");
        for case in &suite.cases {
            case.write(&sc.name, &mut out);
        }
        if let Some(message) = sc.message.as_deref().filter(|m| !m.trim().is_empty()) {
            let _ = writeln!(out, "    <system-err>{}</system-err>", text(message));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Failure,
    Error,
    Skipped,
}

struct Problem {
    kind: Kind,
    message: String,
    ty: String,
    body: String,
}

struct Case {
    name: String,
    ms: u64,
    problem: Option<Problem>,
    system_out: String,
}

struct Suite {
    cases: Vec<Case>,
}

impl Suite {
    fn count(&self, kind: Kind) -> usize {
        self.cases
            .iter()
            .filter(|c| c.problem.as_ref().is_some_and(|p| p.kind == kind))
            .count()
    }
}

impl Case {
    fn write(&self, classname: &str, out: &mut String) {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            attr(classname),
            attr(&self.name),
            secs(self.ms)
        );
        if self.problem.is_none() && self.system_out.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push_str(">\n");
        if let Some(p) = &self.problem {
            let tag = match p.kind {
                Kind::Failure => "failure",
                Kind::Error => "error",
                Kind::Skipped => "skipped",
            };
            if p.kind == Kind::Skipped {
                let _ = writeln!(out, "      <skipped message=\"{}\"/>", attr(&p.message));
            } else {
                let _ = writeln!(
                    out,
                    "      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>",
                    attr(&p.message),
                    attr(&p.ty),
                    text(&p.body)
                );
            }
        }
        if !self.system_out.is_empty() {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                text(&self.system_out)
            );
        }
        out.push_str("    </testcase>\n");
    }
}

fn suite(sc: &ScenarioRecord) -> Suite {
    let mut cases: Vec<Case> = sc.steps.iter().map(|st| step_case(sc, st)).collect();
    if cases.is_empty() && sc.outcome != Outcome::Passed {
        // Nothing ran: say why in one testcase.
        let (name, kind) = match sc.outcome {
            Outcome::Error => ("world", Kind::Error),
            Outcome::Skipped => ("scenario", Kind::Skipped),
            _ => ("scenario", Kind::Failure),
        };
        let message = non_empty(sc.message.as_deref()).unwrap_or(match sc.outcome {
            Outcome::Error => "the world could not be built",
            Outcome::Skipped => "skipped",
            _ => "the scenario failed",
        });
        cases.push(Case {
            name: name.to_string(),
            ms: sc.duration_ms,
            problem: Some(Problem {
                kind,
                message: first_line(message),
                ty: name.to_string(),
                body: message.to_string(),
            }),
            system_out: String::new(),
        });
    }
    Suite { cases }
}

fn step_case(sc: &ScenarioRecord, st: &StepRecord) -> Case {
    let problem = match st.outcome {
        Outcome::Passed => None,
        Outcome::Skipped => Some(Problem {
            kind: Kind::Skipped,
            message: "skipped".into(),
            ty: String::new(),
            body: String::new(),
        }),
        Outcome::Failed | Outcome::Error => {
            let kind = if st.outcome == Outcome::Error {
                Kind::Error
            } else {
                Kind::Failure
            };
            let op = st.failing_op();
            let op_message = op
                .and_then(|o| o.failure.as_ref())
                .map(|f| f.message.as_str());
            let message = non_empty(op_message)
                .or_else(|| non_empty(sc.message.as_deref()))
                .map(str::to_string)
                .unwrap_or_else(|| match op {
                    Some(o) => format!("{} {}", o.summary, st.outcome.as_str()),
                    None => format!("step {:?} {}", st.name, st.outcome.as_str()),
                });
            let mut body = String::new();
            if let Some(o) = op {
                let _ = writeln!(
                    body,
                    "{} ({}, {})",
                    o.summary,
                    o.phase.as_str(),
                    o.outcome.as_str()
                );
            }
            let _ = writeln!(body, "{message}");
            if let Some(diff) = op
                .and_then(|o| o.failure.as_ref())
                .and_then(|f| f.diff.as_deref())
            {
                let _ = writeln!(body, "\n{diff}");
            }
            Some(Problem {
                kind,
                message: first_line(&message),
                ty: op.map(|o| o.kind.clone()).unwrap_or_else(|| "step".into()),
                body,
            })
        }
    };
    let mut system_out = String::new();
    for o in &st.operations {
        if let Some(output) = o.output.as_deref().filter(|s| !s.is_empty()) {
            let _ = writeln!(
                system_out,
                "--- {} ({})\n{output}",
                o.summary,
                o.phase.as_str()
            );
        }
    }
    Case {
        name: st.name.clone(),
        ms: st.end_ms.saturating_sub(st.start_ms),
        problem,
        system_out,
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

/// A message attribute: the whole message, but kept readable in CI UIs that show it on one line.
fn first_line(s: &str) -> String {
    let s = s.trim();
    if s.lines().count() <= 1 {
        return s.to_string();
    }
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Is this character allowed in an XML 1.0 document?
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escaped for an attribute value in double quotes; tabs and line breaks survive attribute
/// normalization as character references; characters XML 1.0 does not allow are dropped.
pub fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped for element content; characters XML 1.0 does not allow are dropped.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Failure, OpRecord, Phase};

    fn op(kind: &str, summary: &str, outcome: Outcome, failure: Option<Failure>) -> OpRecord {
        OpRecord {
            phase: Phase::Try,
            kind: kind.into(),
            summary: summary.into(),
            start_ms: 0,
            end_ms: 1,
            outcome,
            failure,
            output: None,
        }
    }

    fn scenario(
        name: &str,
        outcome: Outcome,
        message: Option<&str>,
        steps: Vec<StepRecord>,
    ) -> ScenarioRecord {
        ScenarioRecord {
            name: name.into(),
            file: format!("scenarios/{name}.yaml"),
            description: None,
            cites: vec!["https://github.com/kubernetes/kubernetes/issues/1?a=1&b=2".into()],
            runtime: "fake-cri".into(),
            proxy_mode: "nftables".into(),
            duration_ms: 12_345,
            outcome,
            message: message.map(str::to_string),
            steps,
            nodes: vec![],
            pods: vec![],
            faults: vec![],
            events: vec![],
            traffic: vec![],
            artifacts: vec![],
        }
    }

    /// A tiny well-formedness check: balanced tags, quoted attributes, known entities, no
    /// illegal characters, one root.
    fn well_formed(xml: &str) -> Result<(), String> {
        let body = xml
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .ok_or("no declaration")?;
        if let Some(c) = body.chars().find(|&c| !xml_char(c)) {
            return Err(format!("illegal character {c:?}"));
        }
        let mut stack: Vec<String> = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        let check_text = |t: &str| -> Result<(), String> {
            if t.contains('<') || t.contains('>') {
                return Err(format!("raw markup character in {t:?}"));
            }
            let mut parts = t.split('&');
            parts.next();
            for p in parts {
                let (name, _) = p
                    .split_once(';')
                    .ok_or(format!("unterminated entity in {t:?}"))?;
                let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                    || name
                        .strip_prefix('#')
                        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    return Err(format!("bad entity &{name};"));
                }
            }
            Ok(())
        };
        while let Some(open) = rest.find('<') {
            let (txt, after) = rest.split_at(open);
            if stack.is_empty() && !txt.trim().is_empty() {
                return Err(format!("text outside the root: {txt:?}"));
            }
            check_text(txt)?;
            // find the end of the tag, skipping quoted attribute values
            let mut in_quote = false;
            let mut end = None;
            for (i, c) in after.char_indices().skip(1) {
                match c {
                    '"' => in_quote = !in_quote,
                    '<' if !in_quote => return Err("'<' inside a tag".into()),
                    '>' if !in_quote => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or("unterminated tag")?;
            let tag = &after[1..end];
            rest = &after[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or("close without open")?;
                if top != name {
                    return Err(format!("</{name}> closes <{top}>"));
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag
                .split_whitespace()
                .next()
                .ok_or("empty tag")?
                .to_string();
            // attributes: name="value" pairs
            let mut attrs = tag[name.len()..].trim();
            while !attrs.is_empty() {
                let (_, v) = attrs
                    .split_once("=\"")
                    .ok_or(format!("bad attribute in <{tag}>"))?;
                let (value, after_value) = v.split_once('"').ok_or("unterminated attribute")?;
                check_text(value)?;
                attrs = after_value.trim_start();
            }
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        if !rest.trim().is_empty() || roots != 1 {
            return Err("trailing content or several roots".into());
        }
        Ok(())
    }

    fn run() -> RunRecord {
        let failing = Failure {
            message: "Pod default/web-0: status.conditions[type=Ready].status: expected \"True\", got \"False\"".into(),
            expected: None,
            actual: None,
            diff: Some("--- expected\n+++ actual\n-  status: \"True\"\n+  status: \"False\"".into()),
        };
        let mut catch = op("podLogs", "pod logs default/web-0", Outcome::Passed, None);
        catch.phase = Phase::Catch;
        catch.output = Some("listening on :8080\x1b[0m <tag> & \u{0}".into());
        RunRecord {
            started: "2025-06-01T10:00:00Z".into(),
            scenarios: vec![
                scenario(
                    "partitioned node heals",
                    Outcome::Failed,
                    Some("web-0 never became Ready"),
                    vec![
                        StepRecord {
                            name: "create web".into(),
                            start_ms: 0,
                            end_ms: 4_200,
                            outcome: Outcome::Passed,
                            operations: vec![op(
                                "apply",
                                "apply StatefulSet default/web",
                                Outcome::Passed,
                                None,
                            )],
                        },
                        StepRecord {
                            name: "web-0 Ready <again> & \"serving\"".into(),
                            start_ms: 60_000,
                            end_ms: 90_000,
                            outcome: Outcome::Failed,
                            operations: vec![
                                op(
                                    "assert",
                                    "assert Pod default/web-0",
                                    Outcome::Failed,
                                    Some(failing),
                                ),
                                catch,
                            ],
                        },
                        StepRecord {
                            name: "after".into(),
                            start_ms: 90_000,
                            end_ms: 90_000,
                            outcome: Outcome::Skipped,
                            operations: vec![],
                        },
                    ],
                ),
                scenario(
                    "broken world",
                    Outcome::Error,
                    Some("containerd did not start:\nsocket missing"),
                    vec![],
                ),
                scenario(
                    "empty message",
                    Outcome::Failed,
                    None,
                    vec![StepRecord {
                        name: "s".into(),
                        start_ms: 5,
                        end_ms: 3,
                        outcome: Outcome::Failed,
                        operations: vec![op(
                            "script",
                            "script ./check.sh",
                            Outcome::Failed,
                            Some(Failure {
                                message: " ".into(),
                                expected: None,
                                actual: None,
                                diff: None,
                            }),
                        )],
                    }],
                ),
            ],
        }
    }

    #[test]
    fn suites_cases_and_counts() {
        let xml = render(&run());
        well_formed(&xml).unwrap();
        assert!(xml.contains(
            "<testsuites name=\"nodekit scenarios\" tests=\"5\" failures=\"2\" errors=\"1\" skipped=\"1\" time=\"37.035\""
        ));
        assert!(xml.contains(
            "<testsuite name=\"partitioned node heals\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"12.345\""
        ));
        assert!(xml.contains(
            "<testcase classname=\"partitioned node heals\" name=\"create web\" time=\"4.200\"/>"
        ));
        assert!(xml.contains(
            "<testcase classname=\"partitioned node heals\" name=\"web-0 Ready &lt;again&gt; &amp; &quot;serving&quot;\" time=\"30.000\">"
        ));
        assert!(xml.contains(
            "<failure message=\"Pod default/web-0: status.conditions[type=Ready].status: expected &quot;True&quot;, got &quot;False&quot;\" type=\"assert\">assert Pod default/web-0 (try, failed)\n"
        ));
        assert!(xml.contains("-  status: \"True\"\n+  status: \"False\"\n</failure>"));
        assert!(xml.contains("<skipped message=\"skipped\"/>"));
        assert!(xml.contains("<property name=\"cites\" value=\"https://github.com/kubernetes/kubernetes/issues/1?a=1&amp;b=2\"/>"));
        // catch output, with the NUL and the escape character dropped
        assert!(xml.contains("<system-out>--- pod logs default/web-0 (catch)\nlistening on :8080[0m &lt;tag&gt; &amp; \n</system-out>"));
    }

    #[test]
    fn a_world_that_was_not_built_is_one_error_case() {
        let xml = render(&run());
        assert!(xml.contains(
            "<testsuite name=\"broken world\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\""
        ));
        assert!(xml.contains(
            "<testcase classname=\"broken world\" name=\"world\" time=\"12.345\">\n      <error message=\"containerd did not start: / socket missing\" type=\"world\">containerd did not start:\nsocket missing</error>"
        ));
    }

    #[test]
    fn a_failure_message_is_never_empty() {
        let xml = render(&run());
        assert!(!xml.contains("message=\"\""));
        assert!(!xml.contains("message=\" \""));
        // a reversed time span does not underflow
        assert!(
            xml.contains("<failure message=\"script ./check.sh failed\" type=\"script\">"),
            "{xml}"
        );
    }

    #[test]
    fn illegal_characters_are_dropped_and_markup_escaped() {
        assert_eq!(attr("a\u{0}b\u{8}c\u{1F}\u{FFFE}\u{FFFF}d"), "abcd");
        assert_eq!(attr("x\ny\tz'\""), "x&#10;y&#9;z&apos;&quot;");
        assert_eq!(
            text("]]> <![CDATA[ & \r"),
            "]]&gt; &lt;![CDATA[ &amp; &#13;"
        );
        assert_eq!(text("ünïcødé 🚀"), "ünïcødé 🚀");
        let mut hostile = run();
        hostile.scenarios[0].name = "\u{1}</testsuite><x a='".into();
        hostile.scenarios[0].steps[0].name = "\u{B}\u{C}".into();
        hostile.started = "\"><!--".into();
        well_formed(&render(&hostile)).unwrap();
    }

    #[test]
    fn the_checker_catches_broken_xml() {
        let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        assert!(well_formed(&format!("{decl}<a><b></a></b>")).is_err());
        assert!(well_formed(&format!("{decl}<a x=\"<\"/>")).is_err());
        assert!(well_formed(&format!("{decl}<a>&nbsp;</a>")).is_err());
        assert!(well_formed(&format!("{decl}<a>\u{1}</a>")).is_err());
        assert!(well_formed(&format!("{decl}<a/><b/>")).is_err());
        assert!(well_formed(&format!("{decl}<a x=\"1\"><b/>t &amp; &#10;</a>")).is_ok());
    }

    #[test]
    fn an_empty_run() {
        let xml = render(&RunRecord {
            started: String::new(),
            scenarios: vec![],
        });
        well_formed(&xml).unwrap();
        assert!(xml.contains("tests=\"0\""));
    }
}
