//! JSON shapes of NodeMetrics, PodMetrics and their Tables, and the routes.

use super::*;
use crate::http::metrics::storage::TimeInfo;

fn now() -> Value {
    json!("2025-01-02T03:04:05Z")
}

fn node_sample() -> NodeSample {
    NodeSample {
        usage: Usage { cpu_nanocores: 329_087_452, memory_bytes: 2_748_180 * 1024 },
        time: TimeInfo { timestamp: Time(1_677_818_274_000_000_000), window: 20_064_000_000 },
    }
}

#[test]
fn node_metrics_as_metrics_server_writes_them() {
    let node = json!({"metadata": {"name": "ub18", "resourceVersion": "5", "labels": {"kubernetes.io/os": "linux"}}, "status": {}});
    let v = node_metrics(&node, &node_sample(), &now());
    assert_eq!(
        v,
        json!({
            "metadata": {"name": "ub18", "creationTimestamp": "2025-01-02T03:04:05Z", "labels": {"kubernetes.io/os": "linux"}},
            "timestamp": "2023-03-03T04:37:54Z",
            "window": "20.064s",
            "usage": {"cpu": "329087452n", "memory": "2748180Ki"},
        })
    );
    let one = with_kind(v, "NodeMetrics");
    assert_eq!((one["kind"].as_str(), one["apiVersion"].as_str()), (Some("NodeMetrics"), Some("metrics.k8s.io/v1beta1")));
    let bare = node_metrics(&json!({"metadata": {"name": "n", "labels": {}}}), &node_sample(), &now());
    assert!(bare["metadata"].get("labels").is_none(), "empty labels are omitted");
}

#[test]
fn pod_metrics_as_metrics_server_writes_them() {
    let pod = json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}}, "status": {"phase": "Running"}});
    let s = PodSample {
        containers: vec![
            ("a".into(), Usage { cpu_nanocores: 125_000_000, memory_bytes: 104_861_696 }),
            ("b".into(), Usage { cpu_nanocores: 1_000, memory_bytes: 1000 }),
        ],
        time: Some(TimeInfo { timestamp: Time(1_700_000_000_000_000_000), window: 2_000_000_000 }),
    };
    let v = pod_metrics(&pod, &s, &now());
    assert_eq!(
        v,
        json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2025-01-02T03:04:05Z", "labels": {"app": "web"}},
            "timestamp": "2023-11-14T22:13:20Z",
            "window": "2s",
            "containers": [
                {"name": "a", "usage": {"cpu": "125m", "memory": "102404Ki"}},
                {"name": "b", "usage": {"cpu": "1u", "memory": "1k"}},
            ],
        })
    );
    let empty = pod_metrics(&pod, &PodSample { containers: vec![], time: None }, &now());
    assert_eq!((&empty["timestamp"], &empty["window"], &empty["containers"]), (&Value::Null, &json!("0s"), &json!([])));
}

#[test]
fn tables_have_metrics_servers_columns() {
    let pod = json!({"metadata": {"name": "web", "namespace": "default"}});
    let s = PodSample {
        containers: vec![
            ("a".into(), Usage { cpu_nanocores: 100_000_000, memory_bytes: 1024 * 1024 }),
            ("b".into(), Usage { cpu_nanocores: 150_000_000, memory_bytes: 1024 * 1024 }),
        ],
        time: Some(TimeInfo { timestamp: Time(0), window: 15_000_000_000 }),
    };
    let t = table(&[Item::pod(&pod, &s, &now())], "Metadata");
    let names: Vec<&str> = t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Name", "cpu", "memory", "Window"]);
    assert_eq!(t["rows"][0]["cells"], json!(["web", "250m", "2Mi", "15s"]));
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    assert_eq!(table(&[Item::pod(&pod, &s, &now())], "None")["rows"][0]["object"], Value::Null);
    let empty = table(&[], "Metadata");
    assert_eq!((&empty["columnDefinitions"], &empty["rows"]), (&Value::Null, &Value::Null));
}

#[test]
fn routes() {
    assert_eq!(route(&["nodes"]), Some(MetricsRoute::Nodes { name: None }));
    assert_eq!(route(&["nodes", "n1"]), Some(MetricsRoute::Nodes { name: Some("n1".into()) }));
    assert_eq!(route(&["pods"]), Some(MetricsRoute::Pods { ns: None, name: None }));
    assert_eq!(route(&["namespaces", "ns", "pods"]), Some(MetricsRoute::Pods { ns: Some("ns".into()), name: None }));
    assert_eq!(route(&["namespaces", "ns", "pods", "p"]), Some(MetricsRoute::Pods { ns: Some("ns".into()), name: Some("p".into()) }));
    for bad in [&["pods", "p"][..], &["nodes", ""], &["nodes", "n", "x"], &["namespaces", "ns"], &["namespaces", "", "pods"], &["services"]] {
        assert_eq!(route(bad), None, "{bad:?}");
    }
    let s = crate::http::route("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web");
    assert_eq!(s, crate::http::Route::Metrics(MetricsRoute::Pods { ns: Some("default".into()), name: Some("web".into()) }));
    assert_eq!(crate::http::route("/apis/metrics.k8s.io/v1beta1/nodes/a/b"), crate::http::Route::NotFound);
}

#[test]
fn selectors_take_metadata_fields_only() {
    let q = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
    assert!(selectors(&q("fieldSelector", "metadata.name=a")).is_ok());
    let e = selectors(&q("fieldSelector", "spec.nodeName=a")).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (400, "field label not supported: spec.nodeName"));
    assert_eq!(selectors(&q("labelSelector", "a in (")).unwrap_err().code, 400);
}
