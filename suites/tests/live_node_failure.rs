//! The node-failure story by hand in a two-node live world: a Deployment runs on both nodes,
//! the user types `kill node-a` into `nodekit up`, and kubectl shows node-a going Unknown, its
//! pods deleted after their tolerationSeconds and the replicas running on node-b again.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{have_kubectl, up};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        args: [serve-hostname]
";

/// (name, node, ready, terminating) of every pod of the Deployment.
fn pods(list: &Value) -> Vec<(String, String, bool, bool)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ready = p["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                ready,
                p["metadata"].get("deletionTimestamp").is_some(),
            )
        })
        .collect()
}

#[test]
fn kill_a_node_and_watch_the_pods_move() {
    if !have_kubectl() {
        return;
    }
    let mut live = up(&["--nodes", "2"]);
    let file = live.dir.path().join("web.yaml");
    std::fs::write(&file, DEPLOYMENT).unwrap();
    live.kubectl(&["apply", "-f", &file.display().to_string()]);
    live.kubectl(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    let before = pods(&live.kubectl_json(&["get", "pods", "-l", "app=web"]));
    let on_a: Vec<String> = before.iter().filter(|p| p.1 == "node-a").map(|p| p.0.clone()).collect();
    assert!(!on_a.is_empty() && on_a.len() < 3, "the replicas should be on both nodes: {before:?}");

    let answer = live.command("kill node-a");
    assert_eq!(answer, "nodekit up: node-a killed: agent, proxy and runtime SIGKILLed, off the network");

    // Grace 20 s, toleration 5 s, then new pods on node-b.
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let now = pods(&live.kubectl_json(&["get", "pods", "-l", "app=web"]));
        let healthy = now.iter().filter(|p| p.1 == "node-b" && p.2 && !p.3).count();
        let evicted = on_a.iter().all(|n| now.iter().any(|p| &p.0 == n && p.3));
        if healthy == 3 && evicted {
            break;
        }
        assert!(Instant::now() < deadline, "the pods did not move to node-b: {now:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let node = live.kubectl_json(&["get", "node", "node-a"]);
    let ready = node["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    assert_eq!(ready["status"], "Unknown", "{ready}");
    let taints: Vec<String> = node["spec"]["taints"].as_array().unwrap().iter().map(|t| format!("{}:{}", t["key"].as_str().unwrap(), t["effect"].as_str().unwrap())).collect();
    assert!(taints.contains(&"node.kubernetes.io/unreachable:NoExecute".to_string()), "{taints:?}");
    live.kubectl(&["rollout", "status", "deployment/web", "--timeout=10s"]);
    live.interrupt();
}
