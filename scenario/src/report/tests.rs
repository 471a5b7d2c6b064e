use super::text::{artifact_href, duration, esc, is_web_url, secs};
use super::timeline::{fit, stack_rows, tick_label, tick_ms};
use super::{render, sample};
use crate::record::{Artifact, Mark, Outcome, RunRecord, Segment, Tone, Track};

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
