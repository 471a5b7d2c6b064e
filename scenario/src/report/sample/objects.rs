//! The API objects of the sample: Nodes, Leases and the StatefulSet's Pods as the API server
//! returns them.

use serde_json::{Value, json};

use super::{IMAGE, ts};

fn cond(kind: &str, status: &str, reason: &str, message: &str, at: u64) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastHeartbeatTime": ts(at), "lastTransitionTime": ts(at)
    })
}

pub(super) fn node(name: &str, ip: &str, cidr: &str, ready: bool, at: u64, taints: Value) -> Value {
    let conditions = if ready {
        vec![
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                at,
            ),
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                at,
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                at,
            ),
            cond(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
                at,
            ),
        ]
    } else {
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
            .into_iter()
            .map(|k| {
                cond(
                    k,
                    "Unknown",
                    "NodeStatusUnknown",
                    "Kubelet stopped posting node status.",
                    at,
                )
            })
            .collect()
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": format!("6a1c0d3e-{name}"),
            "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": "zone-1"
            },
            "annotations": { "node.alpha.kubernetes.io/ttl": "0" },
            "creationTimestamp": "2025-06-01T09:59:58Z"
        },
        "spec": { "podCIDR": cidr, "podCIDRs": [cidr], "taints": taints },
        "status": {
            "capacity": { "cpu": "2", "memory": "4Gi", "pods": "110" },
            "allocatable": { "cpu": "1900m", "memory": "3484Mi", "pods": "110" },
            "conditions": conditions,
            "addresses": [ { "type": "InternalIP", "address": ip }, { "type": "Hostname", "address": name } ],
            "nodeInfo": {
                "kubeletVersion": "v1.34.2-nodekit", "containerRuntimeVersion": "containerd://2.1.4",
                "operatingSystem": "linux", "architecture": "amd64"
            }
        }
    })
}

pub(super) fn unreachable_taints(at: u64) -> Value {
    json!([
        { "key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": ts(at) },
        { "key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": ts(at) }
    ])
}

pub(super) fn lease(name: &str, renew_ms: u64) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": { "name": name, "namespace": "kube-node-lease",
            "ownerReferences": [{ "apiVersion": "v1", "kind": "Node", "name": name }] },
        "spec": { "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": ts(renew_ms) }
    })
}

/// One version of a pod of the StatefulSet `web`.
#[derive(Clone)]
pub(super) struct PodAt {
    pub(super) name: &'static str,
    pub(super) uid: &'static str,
    pub(super) node: Option<&'static str>,
    pub(super) ip: Option<&'static str>,
    pub(super) phase: &'static str,
    /// status of ContainersReady and Ready, with the reason when False
    pub(super) ready: Option<(&'static str, Option<&'static str>)>,
    pub(super) container: Option<Value>,
    pub(super) restarts: u64,
    pub(super) deleting_since: Option<u64>,
    pub(super) deleted: bool,
}

impl PodAt {
    pub(super) fn new(name: &'static str, uid: &'static str) -> Self {
        PodAt {
            name,
            uid,
            node: None,
            ip: None,
            phase: "Pending",
            ready: None,
            container: None,
            restarts: 0,
            deleting_since: None,
            deleted: false,
        }
    }

    pub(super) fn json(&self, at: u64) -> Value {
        let conditions = self.conditions(at);
        let statuses = self.container_statuses();
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name, "namespace": "default", "uid": self.uid,
                "generateName": "web-",
                "labels": { "app": "web", "apps.kubernetes.io/pod-index": self.name.trim_start_matches("web-"),
                    "statefulset.kubernetes.io/pod-name": self.name },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                    "uid": "0d4f6c1a-5b7e-4f0e-9a51-2c7d0b8e9f10", "controller": true, "blockOwnerDeletion": true }]
            },
            "spec": {
                "nodeName": self.node,
                "terminationGracePeriodSeconds": 30,
                "containers": [{
                    "name": "web", "image": IMAGE, "args": ["netexec", "--http-port=8080"],
                    "ports": [{ "containerPort": 8080, "protocol": "TCP" }],
                    "readinessProbe": { "httpGet": { "path": "/readyz", "port": 8080 }, "periodSeconds": 1, "failureThreshold": 1 },
                    "livenessProbe": { "httpGet": { "path": "/healthz", "port": 8080 }, "periodSeconds": 2, "failureThreshold": 3 }
                }],
                "tolerations": [
                    { "key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 },
                    { "key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10 }
                ]
            },
            "status": {
                "phase": self.phase,
                "conditions": conditions,
                "hostIP": if self.node == Some("node-a") { json!("10.77.0.11") } else if self.node.is_some() { json!("10.77.0.12") } else { Value::Null },
                "podIP": self.ip,
                "containerStatuses": statuses
            }
        });
        if let Some(since) = self.deleting_since {
            let until = ts(since.saturating_add(30_000));
            set(&mut pod, &["metadata", "deletionTimestamp"], json!(until));
            set(
                &mut pod,
                &["metadata", "deletionGracePeriodSeconds"],
                json!(30),
            );
        }
        if self.deleted {
            set(&mut pod, &["__deleted"], json!(true));
        }
        pod
    }

    fn conditions(&self, at: u64) -> Vec<Value> {
        let mut conditions = vec![];
        if self.node.is_some() {
            conditions.push(
                json!({ "type": "PodScheduled", "status": "True", "lastTransitionTime": ts(at) }),
            );
        }
        if let Some((status, reason)) = self.ready {
            conditions.push(
                json!({ "type": "Initialized", "status": "True", "lastTransitionTime": ts(at) }),
            );
            for kind in ["ContainersReady", "Ready"] {
                let mut c = json!({ "type": kind, "status": status, "lastTransitionTime": ts(at) });
                if let Some(r) = reason {
                    set(&mut c, &["reason"], json!(r));
                    set(
                        &mut c,
                        &["message"],
                        json!("containers with unready status: [web]"),
                    );
                }
                conditions.push(c);
            }
        }
        conditions
    }

    fn container_statuses(&self) -> Value {
        match &self.container {
            Some(state) => json!([{
                "name": "web", "image": IMAGE,
                "imageID": "registry.k8s.io/e2e-test-images/agnhost@sha256:99c6b4bb4a1e1df3f0b3752168c89358794d02258ebebc26bf21c29399011a85",
                "containerID": format!("containerd://{}{}", self.uid, self.restarts),
                "ready": matches!(self.ready, Some(("True", _))),
                "started": state.get("running").is_some(),
                "restartCount": self.restarts,
                "state": state
            }]),
            None => Value::Null,
        }
    }
}

/// Sets a field of an object that exists (no indexing: nothing here panics).
fn set(v: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for k in parents {
        match cur.get_mut(*k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.insert((*last).to_string(), value);
    }
}

pub(super) fn running(at: u64) -> Value {
    json!({ "running": { "startedAt": ts(at) } })
}

pub(super) fn waiting(reason: &str) -> Value {
    json!({ "waiting": { "reason": reason } })
}

pub(super) fn terminated(reason: &str, code: i32, at: u64) -> Value {
    json!({ "terminated": { "reason": reason, "exitCode": code, "startedAt": ts(at.saturating_sub(8000)), "finishedAt": ts(at) } })
}
