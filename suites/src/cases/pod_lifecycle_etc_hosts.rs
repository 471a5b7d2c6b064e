//! The kubelet-managed /etc/hosts and the pod's hostname.

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use serde_json::json;

use super::{START, env};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::NODE;
use crate::kube_wait::{self, phase};
use crate::pods::{self, container};

const HEADER: &str = node_agent::pods::etc_hosts::HEADER;
const HEADER_HOST_NETWORK: &str = node_agent::pods::etc_hosts::HEADER_HOST_NETWORK;
const ALIASES: &str = "\n# Entries added by HostAliases.\n";

/// Upstream's "KubeletManagedEtcHosts should test kubelet managed /etc/hosts file
/// [NodeConformance] [Conformance]" (`test/e2e/common/node/kubelet_etc_hosts.go`), "Kubelet when
/// scheduling a busybox Pod with hostAliases should write entries to /etc/hosts"
/// (`test/e2e/common/node/kubelet.go`) and setHostnameAsFQDN (`test/e2e/node/pods.go`), in one
/// pod per network kind. A pod with its own network: a container's /etc/hosts is the agent's
/// file (upstream's header, the pod's IP with `<hostname>.<subdomain>.<ns>.svc.cluster.local`
/// and `<hostname>`, the aliases one line per IP); a container that mounts a file at /etc/hosts
/// itself sees that file; the kernel hostname is the FQDN. A host-network pod: the node's file
/// under the host-network header, then its aliases. Catches an agent that leaves /etc/hosts to
/// the runtime, drops hostAliases or the subdomain, covers a container's own /etc/hosts mount,
/// treats a host-network pod as one with its own network, or ignores setHostnameAsFQDN.
pub(super) fn managed_etc_hosts(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let node_file = json!({"name": "host-etc-hosts", "hostPath": {"path": "/etc/hosts", "type": "File"}});
        let own_mount = json!([{"name": "host-etc-hosts", "mountPath": "/etc/hosts", "readOnly": true}]);
        let mut own = container("own", &["cat", "/etc/hosts"]);
        pods::merge(&mut own, json!({"volumeMounts": own_mount}));
        let pod = pods::pod(
            "test-pod",
            NODE,
            vec![container("managed", &["cat", "/etc/hosts"]), own, container("name", &["hostname"])],
            json!({
                "restartPolicy": "Never", "hostname": "web", "subdomain": "sub", "setHostnameAsFQDN": true,
                "hostAliases": [{"ip": "123.45.67.89", "hostnames": ["foo", "bar"]}, {"ip": "10.1.2.3", "hostnames": ["remote"]}],
                "volumes": [node_file],
            }),
        )?;
        let host = pods::pod(
            "test-host-network-pod",
            NODE,
            vec![container("managed", &["cat", "/etc/hosts"])],
            json!({"restartPolicy": "Never", "hostNetwork": true, "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["hn-alias"]}]}),
        )?;
        for p in [&pod, &host] {
            pods::create(&env.client, p).await?;
        }
        let mut ip = String::new();
        for name in ["test-pod", "test-host-network-pod"] {
            let done = kube_wait::pod(&env.client, "default", name, "phase Succeeded", START, |p| (phase(p) == "Succeeded").then(|| p.clone())).await?;
            if name == "test-pod" {
                ip = done.status.and_then(|s| s.pod_ip).context("test-pod has no pod IP")?;
            }
        }
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let log = |pod: &'static str, c: &'static str| {
            let api = api.clone();
            async move { api.logs(pod, &LogParams { container: Some(c.into()), ..Default::default() }).await.with_context(|| format!("reading the log of {pod}/{c}")) }
        };

        let managed = log("test-pod", "managed").await?;
        ensure!(managed.starts_with(HEADER), "/etc/hosts of test-pod/managed is not the agent's file (no {HEADER:?} first):\n{managed}");
        let fqdn = "web.sub.default.svc.cluster.local";
        ensure!(managed.contains(&format!("\n{ip}\t{fqdn}\tweb\n")), "/etc/hosts of test-pod/managed lacks the pod's line {ip}<TAB>{fqdn}<TAB>web:\n{managed}");
        ensure!(
            managed.ends_with(&format!("{ALIASES}123.45.67.89\tfoo\tbar\n10.1.2.3\tremote\n")),
            "/etc/hosts of test-pod/managed does not end with the pod's hostAliases, one line per IP:\n{managed}"
        );
        let node = log("test-pod", "own").await?;
        ensure!(!node.is_empty() && !node.starts_with(HEADER) && !node.contains(ALIASES), "test-pod/own mounts the node's /etc/hosts itself but got the agent's file:\n{node}");
        let name = log("test-pod", "name").await?;
        ensure!(name.trim_end() == fqdn, "with setHostnameAsFQDN the kernel hostname of test-pod is {:?}, not {fqdn:?}", name.trim_end());

        let hn = log("test-host-network-pod", "managed").await?;
        let want = format!("{HEADER_HOST_NETWORK}{node}{ALIASES}1.2.3.4\thn-alias\n");
        ensure!(hn == want, "/etc/hosts of the host-network pod is not the node's file under {HEADER_HOST_NETWORK:?} followed by its aliases:\n{hn}\nwanted:\n{want}");
        env.stop().await
    })
}
