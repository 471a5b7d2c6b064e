//! Waits on API objects: condition + timeout, polling the API (never fixed sleeps).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;

/// The status of condition `type_` of a node, if present.
pub fn node_condition_status(node: &Node, type_: &str) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// The status of condition `type_` of a pod, if present.
pub fn pod_condition_status(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// Waits until `check` returns `Some` for the object `name` of `api`; on timeout the error
/// carries `summary` of the last object seen (or the last error).
async fn object<K, T>(
    api: Api<K>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&K) -> Option<T>,
    summary: fn(&K) -> String,
) -> anyhow::Result<T>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let last = std::sync::Mutex::new(String::from("nothing yet"));
    let remember = |s: String| *last.lock().unwrap_or_else(|p| p.into_inner()) = s;
    let out = harness::wait::wait_for(what, timeout, || async {
        match api.get_opt(name).await {
            Ok(Some(o)) => {
                let r = check(&o);
                if r.is_none() {
                    remember(summary(&o));
                }
                r
            }
            Ok(None) => None,
            Err(e) => {
                remember(e.to_string());
                None
            }
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; last seen: {}", last.lock().unwrap_or_else(|p| p.into_inner())))?;
    Ok(out)
}

/// Waits until `check` returns `Some` for the named node.
pub async fn node<T>(
    client: &kube::Client,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Node) -> Option<T>,
) -> anyhow::Result<T> {
    object(Api::all(client.clone()), name, &format!("node {name}: {what}"), timeout, check, summary_node).await
}

/// Waits until node condition `type_` has `status`.
pub async fn node_condition(
    client: &kube::Client,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) -> anyhow::Result<Node> {
    node(client, name, &format!("{type_}={status}"), timeout, |n| {
        (node_condition_status(n, type_).as_deref() == Some(status)).then(|| n.clone())
    })
    .await
}

/// Waits until the node's Ready=True heartbeat is not older than `after` (an agent restarted
/// at `after` has synced once it wrote status again; heartbeat times are whole seconds, so a
/// heartbeat written by the previous agent is always older).
pub async fn heartbeat_since(client: &kube::Client, name: &str, after: jiff::Timestamp, timeout: Duration) -> anyhow::Result<()> {
    node(client, name, "status written by the restarted agent", timeout, |n| {
        n.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == "True")?
            .last_heartbeat_time
            .as_ref()
            .filter(|t| t.0 >= after)
            .map(|_| ())
    })
    .await
}

/// Waits until `check` returns `Some` for pod `ns/name`.
pub async fn pod<T>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Pod) -> Option<T>,
) -> anyhow::Result<T> {
    let api = Api::namespaced(client.clone(), ns);
    object(api, name, &format!("pod {ns}/{name}: {what}"), timeout, check, summary_pod).await
}

/// Waits until the pod is gone from the API.
pub async fn pod_gone(client: &kube::Client, ns: &str, name: &str, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    harness::wait::wait_for(&format!("pod {ns}/{name} to be deleted"), timeout, || async {
        matches!(api.get_opt(name).await, Ok(None))
    })
    .await?;
    Ok(())
}

/// The pod's phase.
pub fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn summary_pod(p: &Pod) -> String {
    serde_json::to_string(&p.status).unwrap_or_default()
}

fn summary_node(n: &Node) -> String {
    let conds: Vec<String> = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().map(|c| format!("{}={}({})", c.type_, c.status, c.reason.clone().unwrap_or_default())).collect())
        .unwrap_or_default();
    format!("conditions {conds:?}, taints {:?}", n.spec.as_ref().and_then(|s| s.taints.as_ref()))
}
