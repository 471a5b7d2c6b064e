//! The real kubectl against the fake API server (skipped with a reason when kubectl is absent).

mod common;

use std::process::Stdio;
use std::time::Duration;

use fake_apiserver::api::DeleteOpts;
use fake_apiserver::resources;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use common::kubectl::Kubectl;

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  nodeName: node-a
  containers:
  - name: c
    image: nginx:1.25
    ports:
    - containerPort: 80
";

const NODE: &str = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a","labels":{"kubernetes.io/hostname":"node-a"}},
"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}],
"addresses":[{"type":"InternalIP","address":"10.77.0.11"},{"type":"Hostname","address":"node-a"}],
"capacity":{"cpu":"2","memory":"4Gi","pods":"110"},"allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},
"nodeInfo":{"kubeletVersion":"v1.34.2","containerRuntimeVersion":"containerd://1.7.0","osImage":"Debian","kernelVersion":"6.1","architecture":"amd64","operatingSystem":"linux","machineID":"","systemUUID":"","bootID":"","kubeProxyVersion":""}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_describe_apply_patch_label_delete() {
    let h = common::start().await;
    let Some(k) = Kubectl::new(&h) else { return };
    k.apply_file("node.json", NODE, &[]).await;
    let out = k.apply_file("pod.yaml", POD, &[]).await;
    assert!(out.contains("pod/web created"), "{out}");

    // get variants
    let wide = k.ok(&["get", "pods", "-o", "wide"]).await;
    assert!(wide.contains("NODE") && wide.contains("node-a") && wide.contains("Pending"), "{wide}");
    let yaml = k.ok(&["get", "pod", "web", "-o", "yaml"]).await;
    assert!(yaml.contains("restartPolicy: Always") && yaml.contains("imagePullPolicy: IfNotPresent"), "{yaml}");
    let json: Value = serde_json::from_str(&k.ok(&["get", "pod", "web", "-o", "json"]).await).unwrap();
    assert_eq!(json["spec"]["nodeName"], "node-a");
    assert_eq!(k.ok(&["get", "pods", "-o", "name"]).await.trim(), "pod/web");
    assert_eq!(k.ok(&["get", "pods", "-l", "app=web", "-o", "name"]).await.trim(), "pod/web");
    assert_eq!(k.ok(&["get", "pods", "-l", "app!=web", "-o", "name"]).await.trim(), "");
    assert_eq!(k.ok(&["get", "pods", "--field-selector", "spec.nodeName=node-a", "-o", "name"]).await.trim(), "pod/web");
    assert_eq!(k.ok(&["get", "pods", "--field-selector", "spec.nodeName=other", "-o", "name"]).await.trim(), "");
    let err = k.fails(&["get", "pods", "--field-selector", "spec.bogus=x"]).await;
    assert!(err.contains("field label not supported"), "{err}");
    let all = k.ok(&["get", "pods", "-A"]).await;
    assert!(all.contains("NAMESPACE") && all.contains("default") && all.contains("web"), "{all}");
    let nodes = k.ok(&["get", "nodes", "-o", "wide"]).await;
    assert!(nodes.contains("Ready") && nodes.contains("10.77.0.11") && nodes.contains("v1.34.2"), "{nodes}");

    // describe
    let d = k.ok(&["describe", "node", "node-a"]).await;
    assert!(d.contains("Name:") && d.contains("node-a") && d.contains("Non-terminated Pods") && d.contains("web"), "{d}");
    // An events.k8s.io/v1 Event shows up in describe (core/v1 view of the same storage).
    let uid = k.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]).await;
    let ev = format!("apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: web.pulled\neventTime: \"2026-01-01T00:00:00.000000Z\"\nreason: Pulled\nnote: Successfully pulled image\ntype: Normal\naction: Pull\nreportingController: nodekit/agent\nreportingInstance: node-a\nregarding:\n  kind: Pod\n  apiVersion: v1\n  namespace: default\n  name: web\n  uid: {uid}\n");
    k.apply_file("ev.yaml", &ev, &[]).await;
    let d = k.ok(&["describe", "pod", "web"]).await;
    assert!(d.contains("nginx:1.25") && d.contains("Node:") && d.contains("node-a"), "{d}");
    assert!(d.contains("Pulled") && d.contains("Successfully pulled image"), "{d}");
    let evs = k.ok(&["get", "events"]).await;
    assert!(evs.contains("Pulled") && evs.contains("pod/web"), "{evs}");

    // client-side apply update (strategic merge patch) and server-side apply
    let out = k.apply_file("pod.yaml", &POD.replace("nginx:1.25", "nginx:1.26"), &[]).await;
    assert!(out.contains("configured"), "{out}");
    assert!(h.audit().iter().any(|e| e.verb == "patch" && e.content_type.starts_with("application/strategic-merge-patch+json")));
    assert_eq!(k.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.containers[0].image}"]).await, "nginx:1.26");
    let out = k.apply_file("pod.yaml", &POD.replace("nginx:1.25", "nginx:1.27"), &["--server-side"]).await;
    assert!(out.contains("serverside-applied"), "{out}");
    assert_eq!(k.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.containers[0].image}"]).await, "nginx:1.27");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
    assert!(k.apply_file("cm.yaml", cm, &["--server-side"]).await.contains("serverside-applied"));

    // patch types, label, annotate
    k.ok(&["patch", "pod", "web", "--type=strategic", "-p", r#"{"metadata":{"labels":{"s":"1"}}}"#]).await;
    k.ok(&["patch", "pod", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"m":"1"}}}"#]).await;
    k.ok(&["patch", "pod", "web", "--type=json", "-p", r#"[{"op":"add","path":"/metadata/labels/j","value":"1"}]"#]).await;
    k.ok(&["label", "pod", "web", "l=1"]).await;
    k.ok(&["annotate", "pod", "web", "note=hello"]).await;
    let labels = k.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.labels}"]).await;
    let labels: Value = serde_json::from_str(&labels).unwrap();
    for key in ["s", "m", "j", "l", "app"] {
        assert!(labels.get(key).is_some(), "label {key} missing in {labels}");
    }
    assert_eq!(k.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.annotations.note}"]).await, "hello");
    let err = k.fails(&["patch", "pod", "web", "--type=json", "-p", r#"[{"op":"remove","path":"/nope"}]"#]).await;
    assert!(err.contains("invalid"), "{err}");

    // typed clients send protobuf: run, create service/configmap/secret
    assert!(k.ok(&["run", "runner", "--image=busybox:1.36", "--env=A=1", "--port=8080", "--labels=app=runner", "--", "sleep", "3600"]).await.contains("pod/runner created"));
    let p: Value = serde_json::from_str(&k.ok(&["get", "pod", "runner", "-o", "json"]).await).unwrap();
    assert_eq!(p["spec"]["containers"][0]["image"], "busybox:1.36");
    assert_eq!(p["spec"]["containers"][0]["args"], serde_json::json!(["sleep", "3600"]));
    assert_eq!(p["spec"]["containers"][0]["env"][0]["name"], "A");
    assert_eq!(p["spec"]["containers"][0]["ports"][0]["containerPort"], 8080);
    assert!(k.ok(&["create", "service", "clusterip", "runner", "--tcp=80:8080"]).await.contains("service/runner created"));
    let s: Value = serde_json::from_str(&k.ok(&["get", "svc", "runner", "-o", "json"]).await).unwrap();
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 8080);
    assert!(s["spec"]["clusterIP"].as_str().unwrap().starts_with("10.96."));
    assert!(k.ok(&["create", "configmap", "cfg", "--from-literal=a=b"]).await.contains("configmap/cfg created"));
    assert!(k.ok(&["create", "secret", "generic", "sec", "--from-literal=p=q"]).await.contains("secret/sec created"));
    assert_eq!(k.ok(&["get", "secret", "sec", "-o", "jsonpath={.data.p}"]).await, "cQ==");

    // namespaces, api-resources, delete
    assert!(k.ok(&["create", "namespace", "team-a"]).await.contains("namespace/team-a created"));
    assert!(k.ok(&["get", "ns"]).await.contains("team-a"));
    let ar = k.ok(&["api-resources"]).await;
    for needle in ["pods", "po ", "leases", "endpointslices", "coordination.k8s.io/v1"] {
        assert!(ar.contains(needle), "api-resources lacks {needle}: {ar}");
    }
    k.ok(&["delete", "configmap", "ssa"]).await;
    assert!(k.fails(&["get", "configmap", "ssa"]).await.contains("NotFound"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_sees_change() {
    let h = common::start().await;
    let Some(k) = Kubectl::new(&h) else { return };
    k.ok(&["create", "configmap", "w1", "--from-literal=a=b"]).await;
    let mut child = k.command(&["get", "pods", "-w"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut pod = POD.replace("  nodeName: node-a\n", "");
    // Wait until the watch is established before changing anything.
    common::wait_for("kubectl watch to start", Duration::from_secs(20), || {
        let n = h.audit().iter().filter(|e| e.verb == "watch" && e.path.ends_with("/pods")).count();
        async move { (n > 0).then_some(()) }
    })
    .await;
    pod = pod.replace("name: web", "name: watched");
    k.apply_file("w.yaml", &pod, &[]).await;
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if l.contains("watched") {
                return l;
            }
        }
        String::new()
    })
    .await
    .expect("kubectl -w printed the new pod");
    assert!(line.contains("Pending"), "{line}");
    child.kill().await.unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_graceful_delete_completes_when_node_confirms() {
    let h = common::start().await;
    let Some(k) = Kubectl::new(&h) else { return };
    k.apply_file("pod.yaml", POD, &[]).await;
    let child = k.command(&["delete", "pod", "web", "--timeout=60s"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The pod is bound: it gets a deletionTimestamp and stays.
    common::wait_for("deletionTimestamp", Duration::from_secs(20), || {
        let p = h.store().get(resources::PODS, "default", "web");
        let marked = p.is_some_and(|p| p.value.pointer("/metadata/deletionTimestamp").is_some()
            && p.value.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64) == Some(30));
        async move { marked.then_some(()) }
    })
    .await;
    assert!(h.store().get(resources::PODS, "default", "web").is_some());
    // The simulated node confirms with grace 0.
    let opts = DeleteOpts { grace_period_seconds: Some(0), ..Default::default() };
    h.api().delete(resources::PODS, "default", "web", &opts).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pod \"web\" deleted"));
    assert!(h.store().get(resources::PODS, "default", "web").is_none());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_field_validation_strict_warn_and_patch() {
    let h = common::start().await;
    let Some(k) = Kubectl::new(&h) else { return };
    let typo = POD.replace("    image: nginx:1.25\n", "    image: nginx:1.25\n    imagePullPolicyy: Always\n");
    let path = k.home.join("typo.yaml");
    std::fs::write(&path, &typo).unwrap();
    let file = path.to_string_lossy().into_owned();
    // kubectl's default is server-side Strict: refused, nothing stored.
    let err = k.fails(&["create", "-f", &file]).await;
    assert!(err.contains(r#"strict decoding error: unknown field "spec.containers[0].imagePullPolicyy""#), "{err}");
    assert!(h.store().get(resources::PODS, "default", "web").is_none());
    // Warn: created, the warning printed, the field dropped.
    let out = k.command(&["create", "-f", &file, "--validate=warn"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(r#"Warning: unknown field "spec.containers[0].imagePullPolicyy""#), "{stderr}");
    let stored = h.store().get(resources::PODS, "default", "web").unwrap();
    assert!(stored.value.pointer("/spec/containers/0/imagePullPolicyy").is_none(), "{}", stored.value);
    // An apply of the existing pod (a strategic merge patch) that adds an unknown field is
    // refused under Strict and leaves the pod as it was.
    let before = stored.rv;
    let path = k.home.join("patch.yaml");
    std::fs::write(&path, POD.replace("  nodeName: node-a\n", "  nodeName: node-a\n  nodeNam: x\n")).unwrap();
    let err = k.fails(&["apply", "-f", &path.to_string_lossy()]).await;
    assert!(err.contains(r#"unknown field "spec.nodeNam""#), "{err}");
    assert_eq!(h.store().get(resources::PODS, "default", "web").unwrap().rv, before);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_conflicts_and_force() {
    let h = common::start().await;
    let Some(k) = Kubectl::new(&h) else { return };
    let cm = |v: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  key: {v:?}\n");
    k.apply_file("a.yaml", &cm("one"), &["--server-side", "--field-manager=team-a"]).await;
    // Another manager applying another value for the same field: refused, nothing changes.
    let path = k.home.join("b.yaml");
    std::fs::write(&path, cm("two")).unwrap();
    let file = path.to_string_lossy().into_owned();
    let err = k.fails(&["apply", "--server-side", "--field-manager=team-b", "-f", &file]).await;
    assert!(err.contains(r#"conflict with "team-a""#) && err.contains(".data.key"), "{err}");
    let stored = h.store().get(resources::CONFIGMAPS, "default", "shared").unwrap();
    assert_eq!(stored.value.pointer("/data/key").and_then(Value::as_str), Some("one"));
    // --force-conflicts takes the field over.
    k.ok(&["apply", "--server-side", "--field-manager=team-b", "--force-conflicts", "-f", &file]).await;
    let stored = h.store().get(resources::CONFIGMAPS, "default", "shared").unwrap();
    assert_eq!(stored.value.pointer("/data/key").and_then(Value::as_str), Some("two"));
    h.shutdown().await;
}
