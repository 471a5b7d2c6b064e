//! The packet-path fixture: a cluster of every node host of the world (cp + runtime + agent
//! + proxy per node), endpoint pods running netexec, services, and EndpointSlice waits.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::backend::{
    ControlPlane, NodeAgent, NodeProxy, ProxyMode, Runtime, RuntimeKind,
};
use harness::world::Role;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use crate::context::{CaseCtx, skip};
use crate::fixtures::NODE_GRACE;
pub(super) use crate::flags::Flags;
use crate::{kube_wait, pods};

/// Waits for nodes to become Ready.
pub(super) const NODE_READY: Duration = Duration::from_secs(30);
/// Waits for pods to become Ready.
pub(super) const POD_READY: Duration = Duration::from_secs(30);
/// Waits for the EndpointSlice controller.
pub(super) const SLICES: Duration = Duration::from_secs(15);
/// The pod range of the world (every node's pod CIDR is inside), given to the proxies.
pub(super) const CLUSTER_CIDR: &str = "10.244.0.0/16";
/// netexec's HTTP port in every endpoint pod.
pub(super) const HTTP_PORT: u16 = 8080;
/// netexec's UDP port in every endpoint pod.
pub(super) const UDP_PORT: u16 = 8081;

struct NodeParts {
    name: String,
    runtime: Runtime,
    agent: NodeAgent,
    proxy: NodeProxy,
}

/// Everything running: the API server, and runtime + agent + proxy on every node host.
pub(super) struct Cluster {
    cp: ControlPlane,
    nodes: Vec<NodeParts>,
    pub client: kube::Client,
}

impl Cluster {
    /// Starts the control plane and, on every node host of the world, the case's runtime, the
    /// reference agent (compressed timings) and the reference proxy in `mode` (cluster CIDR
    /// 10.244.0.0/16), then waits until every node is Ready.
    pub async fn start(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<Cluster> {
        let cp = crate::fixtures::control_plane(ctx, ControlPlane::compressed_config(NODE_GRACE)).await?;
        Self::start_on(ctx, mode, cp).await
    }

    /// Like [`Cluster::start`] over HTTPS with the world PKI (every component authenticates
    /// with its certificate), with RBAC, the Node authorizer and NodeRestriction enforced
    /// when `authorization`. [`Cluster::client`] is then the admin's.
    pub async fn start_secure(ctx: &CaseCtx, mode: ProxyMode, authorization: bool) -> anyhow::Result<Cluster> {
        let mut config = ControlPlane::compressed_config(NODE_GRACE);
        config.authorization = authorization;
        let cp = ControlPlane::start_secure(&ctx.world, config).await?;
        Self::start_on(ctx, mode, cp).await
    }

    /// The runtime, agent and proxy of every node against `cp`, then every node Ready.
    async fn start_on(ctx: &CaseCtx, mode: ProxyMode, cp: ControlPlane) -> anyhow::Result<Cluster> {
        let kind = crate::fixtures::runtime_kind(ctx.runtime()?);
        let names: Vec<String> = ctx
            .world
            .hosts()
            .iter()
            .filter(|h| h.role() == Some(Role::Node))
            .map(|h| h.name().to_string())
            .collect();
        let opts = crate::fixtures::agent_options("")?;
        let proxy_args = vec!["--cluster-cidr".to_string(), CLUSTER_CIDR.to_string()];
        let mut nodes = Vec::new();
        for node in &names {
            let runtime = match Runtime::start(&ctx.world, node, kind.clone()).await {
                Ok(r) => r,
                Err(e) if kind == RuntimeKind::Containerd => {
                    return Err(skip(format!("containerd did not start on {node}: {e}")));
                }
                Err(e) => return Err(e.into()),
            };
            let agent = NodeAgent::start(&ctx.world, &cp, node, &runtime, &opts).await?;
            let proxy = NodeProxy::start(&ctx.world, &cp, node, mode, &proxy_args).await?;
            nodes.push(NodeParts {
                name: node.clone(),
                runtime,
                agent,
                proxy,
            });
        }
        let client = cp.client()?;
        for node in &names {
            kube_wait::node_condition(&client, node, "Ready", "True", NODE_READY).await?;
        }
        Ok(Cluster { cp, nodes, client })
    }

    /// The API server (its handle: watch history, faults, audit log).
    pub fn control_plane(&self) -> &ControlPlane {
        &self.cp
    }

    /// Node death: SIGKILLs the proxy, the agent and the runtime of `node`, then takes the
    /// node off the world's LAN, so that nothing reaches it or its pods any more.
    pub async fn kill_node(&mut self, ctx: &CaseCtx, node: &str) -> anyhow::Result<()> {
        let parts = self
            .nodes
            .iter_mut()
            .find(|n| n.name == node)
            .with_context(|| format!("no node {node} in the cluster"))?;
        parts.proxy.process().kill().await?;
        parts.agent.process().kill().await?;
        parts.runtime.kill().await?;
        ctx.world.disconnect(node).await?;
        Ok(())
    }

    /// Cuts `node` from the API server only (or heals the cut): the node's agent and proxy
    /// lose the API while its pods keep serving.
    pub async fn partition_from_api(&self, ctx: &CaseCtx, node: &str, on: bool) -> anyhow::Result<()> {
        ctx.world.host(node)?.isolate_from(ctx.world.host("cp")?.ip(), on).await?;
        Ok(())
    }

    /// The CRI socket of `node`'s runtime.
    pub fn runtime_socket(&self, node: &str) -> anyhow::Result<&std::path::Path> {
        Ok(self.nodes.iter().find(|n| n.name == node).with_context(|| format!("no node {node} in the cluster"))?.runtime.socket())
    }

    /// Stops proxies, agents, runtimes and the API server.
    pub async fn stop(self) -> anyhow::Result<()> {
        for n in self.nodes {
            n.proxy.stop().await?;
            n.agent.stop().await?;
            n.runtime.stop().await?;
        }
        self.cp.shutdown().await;
        Ok(())
    }
}

// ---- pods ---------------------------------------------------------------------------------------

/// An endpoint pod: `netexec --http-port 8080 --udp-port 8081` on `node`, labelled
/// `app=<name>, group=<group>` (services select on `group`).
pub(super) fn web_pod(name: &str, node: &str, group: &str) -> anyhow::Result<Pod> {
    web_pod_with(name, node, group, None)
}

/// [`web_pod`] whose readiness is an exec probe for flag `ready` in `flags` (period 1 s,
/// failureThreshold 1): ready while the flag exists.
pub(super) fn web_pod_with(
    name: &str,
    node: &str,
    group: &str,
    flags: Option<&Flags>,
) -> anyhow::Result<Pod> {
    let http = HTTP_PORT.to_string();
    let udp = UDP_PORT.to_string();
    let mut c = pods::container(
        "web",
        &["netexec", "--http-port", &http, "--udp-port", &udp],
    );
    pods::merge(
        &mut c,
        json!({"ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "udp", "containerPort": UDP_PORT, "protocol": "UDP"},
        ]}),
    );
    let mut spec = json!({});
    if flags.is_none() {
        // Ready only once netexec listens (UDP is bound before HTTP): a pod without a readiness
        // probe is Ready when its container starts, before its server accepts connections. The
        // probe connects over the pod's loopback, so the captures see none of its packets.
        pods::merge(&mut c, json!({"readinessProbe": pods::listening_probe(HTTP_PORT)}));
    }
    if let Some(f) = flags {
        pods::merge(
            &mut c,
            json!({
                "readinessProbe": {
                    "exec": Flags::exec_check("ready")["exec"],
                    "initialDelaySeconds": 0,
                    "periodSeconds": 1,
                    "timeoutSeconds": 2,
                    "failureThreshold": 1,
                    "successThreshold": 1,
                },
                "volumeMounts": Flags::mounts(),
            }),
        );
        spec = json!({"volumes": f.volumes()});
    }
    let mut pod = pods::pod(name, node, vec![c], spec)?;
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("group".into(), group.into());
    Ok(pod)
}

/// The pod IP once the pod is Ready.
pub(super) fn ready_ip(p: &Pod) -> Option<Ipv4Addr> {
    (kube_wait::pod_condition_status(p, "Ready").as_deref() == Some("True"))
        .then(|| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
        .flatten()
}

/// Creates `pods` and waits until each is Ready; returns their IPs in order.
pub(super) async fn create_ready(
    client: &kube::Client,
    pods: Vec<Pod>,
) -> anyhow::Result<Vec<Ipv4Addr>> {
    for p in &pods {
        pods::create(client, p).await?;
    }
    let mut ips = Vec::new();
    for p in &pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        ips.push(
            kube_wait::pod(
                client,
                "default",
                &name,
                "Ready with a pod IP",
                POD_READY,
                ready_ip,
            )
            .await?,
        );
    }
    Ok(ips)
}

/// Waits until the pod is Running with a pod IP (ready or not); returns the IP.
pub(super) async fn running_ip(client: &kube::Client, name: &str) -> anyhow::Result<Ipv4Addr> {
    kube_wait::pod(
        client,
        "default",
        name,
        "Running with a pod IP",
        POD_READY,
        |p| {
            (kube_wait::phase(p) == "Running")
                .then(|| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
                .flatten()
        },
    )
    .await
}

// ---- services -------------------------------------------------------------------------------

/// A created service: its ClusterIP, first port and (NodePort services) node port.
#[derive(Debug, Clone)]
pub(super) struct Svc {
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    pub object: Service,
}

/// Creates service `name` selecting `group=<group>`, port 80 → 8080/TCP unless `spec` brings
/// its own `ports`; `spec` fields are merged over the defaults.
pub(super) async fn service(
    client: &kube::Client,
    name: &str,
    group: &str,
    spec: Value,
) -> anyhow::Result<Svc> {
    let mut s = json!({
        "selector": {"group": group},
        "ports": [{"name": "http", "port": 80, "targetPort": HTTP_PORT, "protocol": "TCP"}],
    });
    pods::merge(&mut s, spec);
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": s,
    }))?;
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &svc)
        .await
        .with_context(|| format!("creating service {name}"))?;
    let spec = created
        .spec
        .clone()
        .context("created service has no spec")?;
    let cluster_ip: Ipv4Addr = spec
        .cluster_ip
        .as_deref()
        .with_context(|| format!("service {name} got no clusterIP"))?
        .parse()
        .with_context(|| format!("service {name}: clusterIP {:?}", spec.cluster_ip))?;
    let first = spec
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .context("service has no ports")?;
    let port = u16::try_from(first.port)?;
    let node_port = first.node_port.map(u16::try_from).transpose()?;
    Ok(Svc {
        cluster_ip,
        port,
        node_port,
        object: created,
    })
}

/// (address, ready) of every endpoint in the service's EndpointSlices.
pub(super) async fn slice_endpoints(
    client: &kube::Client,
    svc: &str,
) -> anyhow::Result<Vec<(Ipv4Addr, bool)>> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    let mut out = Vec::new();
    for s in api.list(&lp).await?.items {
        for e in s.endpoints {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false);
            for a in &e.addresses {
                out.push((a.parse()?, ready));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Waits until the service's EndpointSlices list exactly `ready` as ready and `not_ready` as
/// not ready.
pub(super) async fn wait_slices(
    client: &kube::Client,
    svc: &str,
    ready: &[Ipv4Addr],
    not_ready: &[Ipv4Addr],
) -> anyhow::Result<()> {
    let mut want: Vec<(Ipv4Addr, bool)> = ready
        .iter()
        .map(|ip| (*ip, true))
        .chain(not_ready.iter().map(|ip| (*ip, false)))
        .collect();
    want.sort();
    let what = format!("EndpointSlices of {svc} to list {want:?} (address, ready)");
    harness::wait::wait_for(&what, SLICES, || async {
        match slice_endpoints(client, svc).await {
            Ok(seen) if seen == want => Ok(()),
            Ok(seen) => Err(format!("{seen:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;
    Ok(())
}

/// The pod named by a response body, given the names the case created.
pub(super) fn ip_of<'a>(names: &'a [(&'a str, Ipv4Addr)], body: &str) -> anyhow::Result<Ipv4Addr> {
    match names.iter().find(|(n, _)| *n == body) {
        Some((_, ip)) => Ok(*ip),
        None => bail!("the answer {body:?} names none of the endpoint pods {names:?}"),
    }
}

// ---- evidence -----------------------------------------------------------------------------------

/// Passes `result` through; when it is a failure (not a skip), first writes what every node's
/// kernel holds into the artifacts: `ruleset-<node>.nft` (`nft list ruleset`, which shows the
/// iptables-nft rules too), `conntrack-<node>.txt` and `links-<node>.txt` (bridge ports with
/// their hairpin flag).
pub(super) async fn evidence(ctx: &CaseCtx, result: anyhow::Result<()>) -> anyhow::Result<()> {
    let Err(err) = result else { return Ok(()) };
    if err.downcast_ref::<crate::context::Skipped>().is_some() {
        return Err(err);
    }
    for host in ctx
        .world
        .hosts()
        .iter()
        .filter(|h| h.role() == Some(Role::Node))
    {
        for (file, program, args) in [
            ("ruleset", "nft", &["list", "ruleset"][..]),
            ("conntrack", "conntrack", &["-L"][..]),
            ("links", "ip", &["-d", "link", "show"][..]),
        ] {
            let text = match host.exec(program, args).await {
                Ok(out) => out,
                Err(e) => format!("{program} {}: {e}", args.join(" ")),
            };
            let ext = if file == "ruleset" { "nft" } else { "txt" };
            let _ = std::fs::write(ctx.artifact(&format!("{file}-{}.{ext}", host.name())), text);
        }
    }
    Err(err)
}
