//! Pod specs for cases: every container runs the workload image, bound to a node by name
//! (there is no scheduler in a world), created through the API.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

/// The image every test container runs (`/workload SUBCOMMAND …`).
pub const IMAGE: &str = harness::backend::WORKLOAD_IMAGE;

/// A container running `/workload args…`.
pub fn container(name: &str, args: &[&str]) -> Value {
    json!({
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
    })
}

/// A readiness probe that passes once the container listens on tcp `port`: an exec probe
/// connecting over the pod's loopback (no packet on the pod's interface), every second.
pub fn listening_probe(port: u16) -> Value {
    json!({"exec": {"command": ["/workload", "check-port", port.to_string()]}, "periodSeconds": 1})
}

/// A pod in `default` bound to `node`, with `containers` and extra `spec` fields merged in.
pub fn pod(name: &str, node: &str, containers: Vec<Value>, spec: Value) -> anyhow::Result<Pod> {
    let mut s = json!({
        "nodeName": node,
        "containers": containers,
        "terminationGracePeriodSeconds": 2,
    });
    merge(&mut s, spec);
    let v = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": s,
    });
    Ok(serde_json::from_value(v)?)
}

/// Shallow-merges `extra`'s keys into `base` (objects only).
pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// Creates the pod in `default`.
pub async fn create(client: &kube::Client, pod: &Pod) -> anyhow::Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    Ok(api.create(&PostParams::default(), pod).await?)
}

/// Deletes the pod in `default` with an explicit grace period (None: the pod's own).
pub async fn delete(client: &kube::Client, name: &str, grace: Option<u32>) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let dp = DeleteParams { grace_period_seconds: grace, ..DeleteParams::default() };
    api.delete(name, &dp).await?;
    Ok(())
}

/// The runtime's id of container `name` of `pod` (its containerID without the `<runtime>://`).
pub fn runtime_container_id(pod: &Pod, name: &str) -> anyhow::Result<String> {
    container_status(pod, name)
        .and_then(|s| s.container_id.as_deref())
        .and_then(|id| id.split_once("://").map(|(_, id)| id.to_string()))
        .ok_or_else(|| anyhow::anyhow!("container {name} has no containerID"))
}

/// The status of container `name` (regular containers).
pub fn container_status<'a>(
    pod: &'a Pod,
    name: &str,
) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status.as_ref()?.container_statuses.as_ref()?.iter().find(|c| c.name == name)
}

/// The status of init container `name`.
pub fn init_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status.as_ref()?.init_container_statuses.as_ref()?.iter().find(|c| c.name == name)
}

/// The restart count of container `name` (0 when unknown).
pub fn restarts(pod: &Pod, name: &str) -> i32 {
    container_status(pod, name).map(|c| c.restart_count).unwrap_or(0)
}

/// Events about a pod, oldest first.
pub async fn events_for(client: &kube::Client, pod: &str) -> anyhow::Result<Vec<k8s_openapi::api::core::v1::Event>> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let lp = kube::api::ListParams::default().fields(&format!("involvedObject.name={pod}"));
    Ok(api.list(&lp).await?.items)
}

/// What a workload started with `--ignore-sigterm` prints once SIGTERM is really ignored (see
/// the workload's supervise.rs): until then a SIGTERM takes the default action.
pub const SIGTERM_IGNORED: &str = "SIGTERM will be ignored";

/// The raw text (CRI log lines) of every log file of container `container` of pod `ns/name`
/// under the agent's root dir (`pods/<ns>_<name>_<uid>/<container>/*.log`); empty when there is
/// none yet.
pub fn log_text(root: &std::path::Path, ns: &str, name: &str, container: &str) -> String {
    let prefix = format!("{ns}_{name}_");
    let Ok(pods) = std::fs::read_dir(root.join("pods")) else { return String::new() };
    pods.filter_map(Result::ok)
        .filter(|d| d.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|d| std::fs::read_dir(d.path().join(container)).ok())
        .flat_map(|logs| logs.filter_map(Result::ok))
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .collect()
}

/// Waits until a log file of container `container` of pod `ns/name` under the agent's root dir
/// ([`log_text`]) holds `needle`: for cases that need the program running its own code, which
/// "Running" (the runtime started the process) does not say.
pub async fn wait_log_line(root: &std::path::Path, ns: &str, name: &str, container: &str, needle: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let found = || log_text(root, ns, name, container).contains(needle);
    let deadline = std::time::Instant::now() + timeout;
    while !found() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "container {container} of pod {ns}/{name} did not log {needle:?} within {timeout:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}
