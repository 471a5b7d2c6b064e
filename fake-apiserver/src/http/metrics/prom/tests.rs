//! The parser and metrics-server's decoding (cases after pkg/scraper/client/resource/decode_test.go).

use super::*;

/// What the reference kubelet (and upstream's) writes on `/metrics/resource`.
const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="container_a",namespace="namespace_a",pod="pod_a"} 10 1624396278302
container_cpu_usage_seconds_total{container="container_b",namespace="namespace_a",pod="pod_a"} 10 1624396278302
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="container_a",namespace="namespace_a",pod="pod_a"} 1000 1624396278302
container_memory_working_set_bytes{container="container_b",namespace="namespace_a",pod="pod_a"} 1000 1624396278302
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="container_a",namespace="namespace_a",pod="pod_a"} 1.6243962483020916e+09
container_start_time_seconds{container="container_b",namespace="namespace_a",pod="pod_a"} 1.6243961583020916e+09
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 10 1624396278302
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1000 1624396278302
# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="namespace_a",pod="pod_a"} 10 1624396278302
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
# TYPE scrape_error gauge
scrape_error 0
"#;

fn key(ns: &str, pod: &str) -> PodKey {
    (ns.to_string(), pod.to_string())
}

#[test]
fn parses_lines_in_their_variants() {
    let s = parse_line(r#"a_b:c{x="1",y = "q\"\\\n\t" ,} 1.5e3 -12"#).unwrap();
    assert_eq!(s.name, "a_b:c");
    assert_eq!(s.labels, vec![("x".to_string(), "1".to_string()), ("y".to_string(), "q\"\\\n\\t".to_string())]);
    assert_eq!((s.value, s.timestamp_ms), (1500.0, Some(-12)));
    let s = parse_line("up\t+Inf").unwrap();
    assert_eq!((s.value, s.timestamp_ms, s.labels.len()), (f64::INFINITY, None, 0));
    assert!(parse_line("x{} NaN").unwrap().value.is_nan());
    assert_eq!(parse_line(r#"x{a="}"} 2"#).unwrap().label("a"), "}");
    assert_eq!(parse_line("x 1").unwrap().label("missing"), "");
}

#[test]
fn rejects_malformed_lines() {
    for (line, err) in [
        ("{a=\"b\"} 1", LineError::Name),
        ("9x 1", LineError::Name),
        ("x{1a=\"b\"} 1", LineError::LabelName),
        ("x{a \"b\"} 1", LineError::LabelEquals),
        ("x{a=b} 1", LineError::LabelQuote),
        ("x{a=\"b} 1", LineError::Unterminated),
        ("x{a=\"b\" c=\"d\"} 1", LineError::LabelSeparator),
        ("x{a=\"b\"}", LineError::MissingValue),
        ("x one", LineError::Value("one".into())),
        ("x 1 1.5", LineError::Timestamp("1.5".into())),
        ("x 1 2 3", LineError::Trailing),
    ] {
        assert_eq!(parse_line(line), Err(err), "{line}");
    }
    let e = parse("# ok\n\nx 1\nbad{ 2\n").unwrap_err();
    assert_eq!(e.line, 4);
    assert_eq!(e.to_string(), "failed parsing metrics: line 4: invalid label name");
}

#[test]
fn decodes_the_kubelets_exposition() {
    let b = decode_batch(KUBELET, Time::now(), "node1").unwrap();
    let ts = Time::from_millis(1624396278302);
    assert_eq!(b.nodes["node1"], Point { start: Time::ZERO, timestamp: ts, cpu: 10_000_000_000, memory: 1000 });
    let pod = &b.pods[&key("namespace_a", "pod_a")];
    assert_eq!(pod.len(), 2);
    assert_eq!(pod["container_a"], Point { start: Time(1_624_396_248_302_091_520), timestamp: ts, cpu: 10_000_000_000, memory: 1000 });
    assert_eq!(pod["container_b"].start, Time(1_624_396_158_302_091_520));
    assert_eq!(b.pods.len(), 1, "pod_* series are not container series");
}

#[test]
fn missing_timestamps_take_the_request_time_in_milliseconds() {
    let text = "node_cpu_usage_seconds_total 2.5\nnode_memory_working_set_bytes 4096\n\
                container_cpu_usage_seconds_total{namespace=\"n\",pod=\"p\",container=\"c\"} 0.25\n\
                container_memory_working_set_bytes{pod=\"p\",container=\"c\",namespace=\"n\"} 8192\n";
    let b = decode_batch(text, Time(1_700_000_000_123_456_789), "node1").unwrap();
    let want = Time(1_700_000_000_123_000_000);
    assert_eq!(b.nodes["node1"], Point { start: Time::ZERO, timestamp: want, cpu: 2_500_000_000, memory: 4096 });
    assert_eq!(b.pods[&key("n", "p")]["c"], Point { start: Time::ZERO, timestamp: want, cpu: 250_000_000, memory: 8192 });
}

#[test]
fn incomplete_node_and_pods_are_dropped() {
    let text = "node_cpu_usage_seconds_total 2 1000\n\
                container_cpu_usage_seconds_total{namespace=\"n\",pod=\"p\",container=\"a\"} 1 1000\n\
                container_memory_working_set_bytes{namespace=\"n\",pod=\"p\",container=\"a\"} 10 1000\n\
                container_start_time_seconds{namespace=\"n\",pod=\"p\",container=\"b\"} 5\n\
                container_cpu_usage_seconds_total{namespace=\"n\",pod=\"q\",container=\"a\"} 1 1000\n\
                container_memory_working_set_bytes{namespace=\"n\",pod=\"q\",container=\"a\"} 10 1000\n";
    let b = decode_batch(text, Time::now(), "node1").unwrap();
    assert!(b.nodes.is_empty(), "no node memory");
    assert!(!b.pods.contains_key(&key("n", "p")), "container b has neither CPU nor memory");
    assert_eq!(b.pods[&key("n", "q")].len(), 1);
    let zero_cpu = "node_cpu_usage_seconds_total 0 1000\nnode_memory_working_set_bytes 10 1000\n";
    assert!(decode_batch(zero_cpu, Time::now(), "node1").unwrap().nodes.is_empty());
}

#[test]
fn a_scrape_error_exposition_gives_nothing() {
    let text = "# TYPE resource_scrape_error gauge\nresource_scrape_error 1\n# TYPE scrape_error gauge\nscrape_error 1\n";
    assert_eq!(decode_batch(text, Time::now(), "node1").unwrap(), Batch::default());
    assert!(decode_batch("node_cpu_usage_seconds_total{ 1", Time::now(), "n").is_err());
}
