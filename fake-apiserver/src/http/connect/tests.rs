use super::*;
use serde_json::json;

#[test]
fn connect_paths() {
    let seg = |p: &'static str| -> Vec<&'static str> { p.trim_start_matches("/api/v1/").split('/').collect() };
    let p = "/api/v1/namespaces/default/pods/web/exec";
    assert_eq!(route(&seg(p), p), Some(Connect::Pod { ns: "default".into(), name: "web".into(), kind: PodConnect::Exec }));
    let p = "/api/v1/namespaces/default/pods/web/status";
    assert_eq!(route(&seg(p), p), None);
    let p = "/api/v1/nodes/node-a:10250/proxy/stats/summary";
    assert_eq!(route(&seg(p), p), Some(Connect::NodeProxy { id: "node-a:10250".into(), path: "/stats/summary".into() }));
    let p = "/api/v1/nodes/node-a/proxy";
    assert_eq!(route(&seg(p), p), Some(Connect::NodeProxy { id: "node-a".into(), path: "/".into() }));
}

#[test]
fn container_defaulting_and_upstream_messages() {
    let one = json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c"}]}});
    assert_eq!(container_of(&one, None).unwrap(), "c");
    assert_eq!(container_of(&one, Some("")).unwrap(), "c");
    assert_eq!(container_of(&one, Some("x")).unwrap_err().message, "container x is not valid for pod web");
    let two = json!({"metadata": {"name": "web"}, "spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "a"}, {"name": "b"}]}});
    assert_eq!(container_of(&two, None).unwrap_err().message, "a container name must be specified for pod web, choose one of: [i a b]");
    assert_eq!(container_of(&two, Some("i")).unwrap(), "i");
}

#[test]
fn log_options_validated_and_passed_on() {
    assert_eq!(log_params("follow=true&tailLines=3&container=c").unwrap(), "follow=true&tailLines=3");
    assert_eq!(log_params("previous=1&timestamps=true&sinceSeconds=5&limitBytes=10").unwrap(), "previous=true&timestamps=true&limitBytes=10&sinceSeconds=5");
    assert_eq!(log_params("follow=false").unwrap(), "");
    let e = log_params("tailLines=-1").unwrap_err();
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    assert!(e.message.contains("tailLines: Invalid value: \"-1\": must be greater than or equal to 0"), "{}", e.message);
    assert_eq!(log_params("sinceSeconds=0").unwrap_err().code, 422);
    assert_eq!(log_params("limitBytes=0").unwrap_err().code, 422);
    assert!(log_params("sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z").unwrap_err().message.contains("at most one of"));
    assert_eq!(log_params("sinceTime=2026-01-01T00:00:00Z").unwrap(), "sinceTime=2026-01-01T00%3A00%3A00Z");
}

#[test]
fn stream_options_become_kubelet_parameters() {
    assert_eq!(
        stream_params(PodConnect::Exec, "command=sh&command=-c&command=echo+hi&container=c&stdin=true&stdout=true&stderr=false&tty=true"),
        "input=1&output=1&tty=1&command=sh&command=-c&command=echo+hi"
    );
    assert_eq!(stream_params(PodConnect::Attach, "stdout=1&command=ignored"), "output=1");
    assert_eq!(stream_params(PodConnect::PortForward, "ports=8080&ports=9090"), "port=8080%2C9090");
    assert_eq!(stream_params(PodConnect::PortForward, ""), "");
}

#[test]
fn node_ids() {
    assert_eq!(split_node_id("a").unwrap(), ("a".into(), None, None));
    assert_eq!(split_node_id("a:4194").unwrap(), ("a".into(), None, Some(4194)));
    assert_eq!(split_node_id("https:a:10250").unwrap(), ("a".into(), Some("https".into()), Some(10250)));
    assert_eq!(split_node_id("a:x").unwrap_err().code, 400);
    assert_eq!(split_node_id("ftp:a:1").unwrap_err().code, 400);
}
