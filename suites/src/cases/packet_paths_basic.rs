//! Packet-path bodies for plain service traffic: NodePort DNAT and spreading, the lan client's
//! ClusterIP path (cross-checked with tshark), pod → ClusterIP → pod on the same and on the
//! other node with the source preserved, and hairpin with masquerade.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use harness::backend::ProxyMode;
use harness::path::{Addr, Flow};
use serde_json::json;

use super::Mode;
use super::env::{Cluster, HTTP_PORT, create_ready, ip_of, service, wait_slices, web_pod};
use super::net::{Origin, PodNet, Taps, dump, get_hostname, syns_to_port, wait_serving};
use crate::catalog::BodyFuture;
use crate::context::{CaseCtx, skip};

/// How long the proxy may take to program a new service or endpoint.
///
/// Cases wait for a new ClusterIP from node-a itself (or from a pod) before the lan client
/// uses it: until the proxy programs the service, node-a forwards the client's packets for it
/// back out of eth0 towards the world root, answers with an ICMP redirect, and the client then
/// sends that destination's traffic around node-a for minutes.
pub(super) const PROXY_SYNC: Duration = Duration::from_secs(20);

pub(super) const NODE_A: &str = "node-a";
pub(super) const NODE_B: &str = "node-b";

fn v4(ip: std::net::Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

pub(super) fn nodeport_dnat_spread<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = nodeport(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}
pub(super) fn clusterip_client_path<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = client_path(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}
pub(super) fn pod_to_pod<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = pod_pod(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}
pub(super) fn hairpin<M: Mode>(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let r = hairpin_impl(&ctx, M::MODE).await;
        super::env::evidence(&ctx, r).await
    })
}

/// client → NodePort on node-a → one of two pods: the SYN leaves the client and reaches node-a
/// unrewritten, shows up on the pod side DNAT'd (and masqueraded: policy Cluster), and the
/// SYN-ACK reaches the client from the NodePort again. Then 200 connections spread over both
/// pods (each 30–70 %), each answered by the pod its SYN was DNAT'd to.
async fn nodeport(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let cl = Cluster::start(ctx, mode).await?;
    let ips = create_ready(
        &cl.client,
        vec![
            web_pod("np-1", NODE_A, "np")?,
            web_pod("np-2", NODE_A, "np")?,
        ],
    )
    .await?;
    let names = [("np-1", ips[0]), ("np-2", ips[1])];
    let svc = service(&cl.client, "np", "np", json!({"type": "NodePort"})).await?;
    let np = svc
        .node_port
        .context("a NodePort service got no nodePort")?;
    wait_slices(&cl.client, "np", &ips, &[]).await?;
    let (node_a, client) = (ctx.world.host(NODE_A)?, ctx.world.host("client")?);
    let target = SocketAddr::from((node_a.ip(), np));
    wait_serving(Origin::Host(client), target, &["np-1", "np-2"], PROXY_SYNC).await?;

    // One connection, followed hop by hop. The pod side is captured on cbr0 (what node-a
    // sends to the pods) and on each pod's veth (what the pod really exchanges: with bridge
    // netfilter, replies show up on cbr0 only after node-a's conntrack reversed the SNAT).
    let mut taps = Taps::new("one");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_a, "eth0")?;
    taps.on(ctx, node_a, "cbr0")?;
    for (name, ip) in &names {
        let veth = PodNet::find(name, *ip).await?.host_veth(node_a).await?;
        taps.named(ctx, &format!("pod:{name}"), node_a, &veth)?;
    }
    let a = get_hostname(Origin::Host(client), target).await?;
    let caps = taps.stop().await?;
    let pod_ip = ip_of(&names, &a.body)?;
    let other = names
        .iter()
        .map(|(_, ip)| *ip)
        .find(|ip| *ip != pod_ip)
        .context("two pods")?;
    let pods: Vec<SocketAddr> = ips
        .iter()
        .map(|ip| SocketAddr::from((*ip, HTTP_PORT)))
        .collect();
    let flow = Flow::tcp(a.local.into(), target);
    flow.syn("client/eth0").find(&caps)?;
    flow.syn("node-a/eth0").find(&caps)?;
    let dnat = flow
        .syn("node-a/cbr0")
        .src(Addr::Any)
        .dst(Addr::Exact(v4(pod_ip, HTTP_PORT)))
        .find(&caps)?;
    let masq = dnat.src().context("SYN without ports")?;
    ensure!(
        *masq.ip() != client.ip(),
        "externalTrafficPolicy Cluster: NodePort traffic reaches the pod masqueraded, but the SYN on cbr0 kept the client's address: {dnat}"
    );
    flow.syn("node-a/cbr0")
        .src(Addr::Any)
        .dst(Addr::Ip(other))
        .absent(&caps)?;
    flow.syn("node-a/cbr0").src(Addr::Any).absent(&caps)?;
    let at_pod = format!("pod:{}", a.body);
    let other_pod = format!(
        "pod:{}",
        names
            .iter()
            .map(|(n, _)| *n)
            .find(|n| *n != a.body)
            .unwrap_or("")
    );
    flow.syn(&at_pod)
        .src(Addr::Exact(masq))
        .dst(Addr::Exact(v4(pod_ip, HTTP_PORT)))
        .find(&caps)?;
    flow.syn_ack(&at_pod)
        .src(Addr::Exact(v4(pod_ip, HTTP_PORT)))
        .dst(Addr::Exact(masq))
        .find(&caps)?;
    flow.syn(&other_pod)
        .src(Addr::Any)
        .dst(Addr::Any)
        .absent(&caps)?;
    flow.syn_ack("client/eth0").find(&caps)?;
    flow.syn_ack("client/eth0")
        .src_one_of(pods.clone())
        .absent(&caps)?;

    // 200 connections: spread, and each answered by the pod its SYN went to.
    let mut taps = Taps::new("spread");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_a, "cbr0")?;
    let mut answers = Vec::with_capacity(200);
    for _ in 0..200 {
        answers.push(get_hostname(Origin::Host(client), target).await?);
    }
    let caps = taps.stop().await?;
    let mut counts: BTreeMap<&str, usize> = names.iter().map(|(n, _)| (*n, 0)).collect();
    for a in &answers {
        ip_of(&names, &a.body)?;
        *counts.entry(a.body.as_str()).or_default() += 1;
    }
    for (name, n) in &counts {
        ensure!(
            (60..=140).contains(n),
            "200 connections should spread 30–70 % per endpoint; got {counts:?} ({name}: {n})"
        );
    }
    let syns = syns_to_port(caps.get("node-a/cbr0")?, HTTP_PORT);
    ensure!(
        syns.len() == 200,
        "200 connections, but {} distinct SYNs to :{HTTP_PORT} on node-a/cbr0",
        syns.len()
    );
    for (i, (a, syn)) in answers.iter().zip(&syns).enumerate() {
        let want = ip_of(&names, &a.body)?;
        ensure!(
            syn.dst_ip == Some(want),
            "connection {i} was answered by {} ({want}) but its SYN on cbr0 went to: {syn}",
            a.body
        );
        Flow::tcp(a.local.into(), target)
            .syn_ack("client/eth0")
            .find(&caps)?;
    }
    cl.stop().await
}

/// client on the lan → ClusterIP → pods: unrewritten up to node-a, DNAT'd (and masqueraded:
/// the client is outside the cluster CIDR) on the pod side, un-NAT'd back to the client; the
/// pcap artifacts are then read with `tshark -r` and must show the same SYNs.
async fn client_path(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    if !crate::catalog::on_path("tshark") {
        return Err(skip("needs tshark on PATH to read the pcap artifacts back"));
    }
    let cl = Cluster::start(ctx, mode).await?;
    let ips = create_ready(
        &cl.client,
        vec![
            web_pod("cp-1", NODE_A, "web")?,
            web_pod("cp-2", NODE_A, "web")?,
        ],
    )
    .await?;
    let names = [("cp-1", ips[0]), ("cp-2", ips[1])];
    let svc = service(&cl.client, "web", "web", json!({})).await?;
    wait_slices(&cl.client, "web", &ips, &[]).await?;
    let (node_a, client) = (ctx.world.host(NODE_A)?, ctx.world.host("client")?);
    let target = SocketAddr::from((svc.cluster_ip, svc.port));
    // node-a first: see [`PROXY_SYNC`] on why the lan client waits for the proxy.
    wait_serving(Origin::Host(node_a), target, &["cp-1", "cp-2"], PROXY_SYNC).await?;
    wait_serving(Origin::Host(client), target, &["cp-1", "cp-2"], PROXY_SYNC).await?;

    let mut taps = Taps::new("path");
    taps.on(ctx, client, "eth0")?;
    taps.on(ctx, node_a, "eth0")?;
    taps.on(ctx, node_a, "cbr0")?;
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(get_hostname(Origin::Host(client), target).await?);
    }
    let caps = taps.stop().await?;
    let pods: Vec<SocketAddr> = ips
        .iter()
        .map(|ip| SocketAddr::from((*ip, HTTP_PORT)))
        .collect();
    let syns = syns_to_port(caps.get("node-a/cbr0")?, HTTP_PORT);
    ensure!(
        syns.len() == answers.len(),
        "{} connections, {} distinct SYNs on node-a/cbr0:\n{}",
        answers.len(),
        syns.len(),
        dump(caps.get("node-a/cbr0")?)
    );
    for (a, syn) in answers.iter().zip(&syns) {
        let flow = Flow::tcp(a.local.into(), target);
        flow.syn("client/eth0").find(&caps)?;
        flow.syn("node-a/eth0").find(&caps)?;
        let want = ip_of(&names, &a.body)?;
        ensure!(
            syn.dst_ip == Some(want),
            "answered by {} ({want}) but the SYN on cbr0 was: {syn}",
            a.body
        );
        ensure!(
            syn.src_ip != Some(client.ip()),
            "traffic from outside the cluster CIDR to a ClusterIP is masqueraded; SYN on cbr0: {syn}"
        );
        flow.syn_ack("client/eth0").find(&caps)?;
        flow.syn_ack("client/eth0")
            .src_one_of(pods.clone())
            .absent(&caps)?;
    }

    // The artifacts are ordinary pcaps: tshark reads the same SYNs, in the same order.
    for (label, file) in [
        ("client/eth0", "path-client-eth0.pcap"),
        ("node-a/eth0", "path-node-a-eth0.pcap"),
        ("node-a/cbr0", "path-node-a-cbr0.pcap"),
    ] {
        let path = ctx.artifact(file);
        let out = tokio::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args([
                "-n",
                "-Y",
                "tcp.flags.syn == 1 && tcp.flags.ack == 0",
                "-T",
                "fields",
            ])
            .args([
                "-e",
                "ip.src",
                "-e",
                "tcp.srcport",
                "-e",
                "ip.dst",
                "-e",
                "tcp.dstport",
                "-E",
                "separator=,",
            ])
            .output()
            .await
            .context("running tshark -r")?;
        ensure!(
            out.status.success(),
            "tshark -r {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let ours: Vec<String> = caps
            .get(label)?
            .iter()
            .filter(|p| p.is_syn())
            .filter_map(|p| {
                Some(format!(
                    "{},{},{},{}",
                    p.src()?.ip(),
                    p.src()?.port(),
                    p.dst()?.ip(),
                    p.dst()?.port()
                ))
            })
            .collect();
        ensure!(!ours.is_empty(), "{label}: no SYN captured");
        if theirs != ours {
            bail!(
                "{label}: tshark read {theirs:?} from {}, the harness decoded {ours:?}",
                path.display()
            );
        }
    }
    cl.stop().await
}

/// pod on node-a → ClusterIP → pod on node-a, and → ClusterIP → pod on node-b: DNAT'd at
/// node-a, never masqueraded (source address and port preserved up to the server pod), and
/// the replies un-DNAT'd back to the client pod.
async fn pod_pod(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let cl = Cluster::start(ctx, mode).await?;
    let ips = create_ready(
        &cl.client,
        vec![
            web_pod("cli", NODE_A, "cli")?,
            web_pod("srv-a", NODE_A, "srv-a")?,
            web_pod("srv-b", NODE_B, "srv-b")?,
        ],
    )
    .await?;
    let (cli_ip, srv_a, srv_b) = (ips[0], ips[1], ips[2]);
    let local = service(&cl.client, "local", "srv-a", json!({})).await?;
    let remote = service(&cl.client, "remote", "srv-b", json!({})).await?;
    wait_slices(&cl.client, "local", &[srv_a], &[]).await?;
    wait_slices(&cl.client, "remote", &[srv_b], &[]).await?;
    let (node_a, node_b) = (ctx.world.host(NODE_A)?, ctx.world.host(NODE_B)?);
    let cli = PodNet::find("cli", cli_ip).await?;
    let local_addr = SocketAddr::from((local.cluster_ip, local.port));
    let remote_addr = SocketAddr::from((remote.cluster_ip, remote.port));
    wait_serving(Origin::Pod(&cli), local_addr, &["srv-a"], PROXY_SYNC).await?;
    wait_serving(Origin::Pod(&cli), remote_addr, &["srv-b"], PROXY_SYNC).await?;

    let cli_veth = cli.host_veth(node_a).await?;
    let srv_a_veth = PodNet::find("srv-a", srv_a)
        .await?
        .host_veth(node_a)
        .await?;
    let srv_b_veth = PodNet::find("srv-b", srv_b)
        .await?
        .host_veth(node_b)
        .await?;
    let mut taps = Taps::new("p2p");
    taps.named(ctx, "pod:cli", node_a, &cli_veth)?;
    taps.named(ctx, "pod:srv-a", node_a, &srv_a_veth)?;
    taps.on(ctx, node_a, "eth0")?;
    taps.on(ctx, node_b, "eth0")?;
    taps.on(ctx, node_b, "cbr0")?;
    taps.named(ctx, "pod:srv-b", node_b, &srv_b_veth)?;
    let same = get_hostname(Origin::Pod(&cli), local_addr).await?;
    let cross = get_hostname(Origin::Pod(&cli), remote_addr).await?;
    let caps = taps.stop().await?;
    ensure!(
        same.body == "srv-a",
        "{local_addr} (endpoint srv-a) answered {:?}",
        same.body
    );
    ensure!(
        cross.body == "srv-b",
        "{remote_addr} (endpoint srv-b) answered {:?}",
        cross.body
    );

    // Same node: the server pod sees the client pod's own address and port.
    let f = Flow::tcp(same.local.into(), local_addr);
    f.syn("pod:cli").find(&caps)?;
    let at_server = f
        .syn("pod:srv-a")
        .src(Addr::Any)
        .dst(Addr::Exact(v4(srv_a, HTTP_PORT)))
        .find(&caps)?;
    ensure!(
        at_server.src() == Some(same.local),
        "pod → ClusterIP → pod on the same node: the server saw the SYN from {:?}, the client pod is {}: {at_server}",
        at_server.src(),
        same.local
    );
    f.syn_ack("pod:srv-a")
        .src(Addr::Exact(v4(srv_a, HTTP_PORT)))
        .find(&caps)?;
    f.syn_ack("pod:cli").find(&caps)?;
    f.syn_ack("pod:cli").src(Addr::Ip(srv_a)).absent(&caps)?;

    // Other node: DNAT'd on node-a, routed to node-b with the source kept.
    let f = Flow::tcp(cross.local.into(), remote_addr);
    let ep = Addr::Exact(v4(srv_b, HTTP_PORT));
    f.syn("pod:cli").find(&caps)?;
    f.syn("node-a/eth0").dst(ep.clone()).find(&caps)?;
    f.syn("node-b/eth0").dst(ep.clone()).find(&caps)?;
    f.syn("node-b/cbr0").dst(ep.clone()).find(&caps)?;
    let at_server = f
        .syn("pod:srv-b")
        .src(Addr::Any)
        .dst(ep.clone())
        .find(&caps)?;
    ensure!(
        at_server.src() == Some(cross.local),
        "pod → ClusterIP → pod on the other node: the server saw the SYN from {:?}, the client pod is {}: {at_server}",
        at_server.src(),
        cross.local
    );
    f.syn_ack("node-a/eth0").src(ep.clone()).find(&caps)?;
    f.syn_ack("pod:cli").find(&caps)?;
    ensure!(
        cli_ip == *cross.local.ip(),
        "client socket bound to {} instead of the pod IP {cli_ip}",
        cross.local
    );
    cl.stop().await
}

/// pod → its own service → itself: answered by itself, and the SYN that comes back into the pod
/// is masqueraded (its source is not the pod's own address).
async fn hairpin_impl(ctx: &CaseCtx, mode: ProxyMode) -> anyhow::Result<()> {
    let cl = Cluster::start(ctx, mode).await?;
    let ips = create_ready(&cl.client, vec![web_pod("hp", NODE_A, "hp")?]).await?;
    let hp_ip = ips[0];
    let svc = service(&cl.client, "hp", "hp", json!({})).await?;
    wait_slices(&cl.client, "hp", &[hp_ip], &[]).await?;
    let node_a = ctx.world.host(NODE_A)?;
    let hp = PodNet::find("hp", hp_ip).await?;
    let veth = hp.host_veth(node_a).await?;
    let target = SocketAddr::from((svc.cluster_ip, svc.port));

    // Capture while waiting too: when hairpin traffic never comes back, the pcap shows where
    // it stopped.
    let mut warm = Taps::new("wait");
    warm.named(ctx, "pod:hp", node_a, &veth)?;
    warm.on(ctx, node_a, "cbr0")?;
    let served = wait_serving(Origin::Pod(&hp), target, &["hp"], PROXY_SYNC).await;
    let warm_caps = warm.stop().await?;
    if let Err(e) = served {
        bail!(
            "{e:#}\npackets on hp's veth {veth}:\n{}",
            dump(warm_caps.get("pod:hp")?)
        );
    }

    let mut taps = Taps::new("hairpin");
    taps.named(ctx, "pod:hp", node_a, &veth)?;
    let a = get_hostname(Origin::Pod(&hp), target).await?;
    let caps = taps.stop().await?;
    ensure!(
        a.body == "hp",
        "{target} (endpoint hp) answered {:?}",
        a.body
    );
    let f = Flow::tcp(a.local.into(), target);
    f.syn("pod:hp").find(&caps)?;
    let back = f
        .syn("pod:hp")
        .src(Addr::Any)
        .dst(Addr::Exact(v4(hp_ip, HTTP_PORT)))
        .find(&caps)?;
    ensure!(
        back.src_ip != Some(hp_ip),
        "hairpin traffic must be masqueraded, but the SYN that came back into the pod has the pod's own source: {back}"
    );
    f.syn("pod:hp")
        .dst(Addr::Exact(v4(hp_ip, HTTP_PORT)))
        .absent(&caps)?;
    f.syn_ack("pod:hp").find(&caps)?;
    cl.stop().await
}
