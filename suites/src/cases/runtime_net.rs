//! Runtime cases: hostname and DNS config seen inside containers, the pod IP reachable from
//! the node, host ports, and containers of one pod sharing its network namespace.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use harness::world::Host;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Env, NODE, WAIT};
use crate::context::CaseCtx;
use crate::cri::container;

/// `GET path` on `ip:port` from inside `host`; returns (status code, body).
pub(crate) async fn http_get(host: &Host, ip: Ipv4Addr, port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let addr = SocketAddr::from((ip, port));
    let mut s = tokio::time::timeout(Duration::from_secs(2), host.tcp_connect(addr)).await.context("connect timed out")??;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await.context("read timed out")??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").with_context(|| format!("not an HTTP response: {text:?}"))?;
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).with_context(|| format!("no status in {head:?}"))?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(body) } else { body.to_string() };
    Ok((code, body))
}

/// Decodes a chunked body.
fn unchunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until `GET /hostname` on `ip:port` from node-a answers 200 with `want`.
pub(crate) async fn wait_hostname(ctx: &CaseCtx, ip: Ipv4Addr, port: u16, want: &str) -> anyhow::Result<()> {
    wait_hostname_from(ctx, NODE, ip, port, want).await
}

/// Waits until `GET /hostname` on `ip:port` from world host `from` answers 200 with `want`.
async fn wait_hostname_from(ctx: &CaseCtx, from: &str, ip: Ipv4Addr, port: u16, want: &str) -> anyhow::Result<()> {
    let node = ctx.world.host(from)?;
    let what = format!("http://{ip}:{port}/hostname from {from} to answer {want:?}");
    harness::wait::wait_for(&what, WAIT, || async {
        match http_get(node, ip, port, "/hostname").await {
            Ok((200, body)) if body.trim() == want => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    Ok(())
}

pub(crate) async fn hostname(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("named-pod")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    let h = e.cri.exec_ok(&id, &["/workload", "hostname"]).await?;
    ensure!(h.trim() == "named-pod", "hostname inside the container: {h:?}");
    let f = e.cri.exec_ok(&id, &["/workload", "cat", "/etc/hostname"]).await?;
    ensure!(f.trim() == "named-pod", "/etc/hostname inside the container: {f:?}");
    Ok(())
}

pub(crate) async fn dns_config(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("dns")?.dns(&["10.96.0.10"], &["default.svc.cluster.local", "svc.cluster.local"], &["ndots:5"]);
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    let conf = e.cri.exec_ok(&id, &["/workload", "cat", "/etc/resolv.conf"]).await?;
    let lines: Vec<&str> = conf.lines().map(str::trim).collect();
    for want in ["nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local", "options ndots:5"] {
        ensure!(lines.contains(&want), "/etc/resolv.conf lacks {want:?}:\n{conf}");
    }
    ensure!(lines.iter().filter(|l| l.starts_with("nameserver")).count() == 1, "only the configured nameserver:\n{conf}");
    Ok(())
}

pub(crate) async fn pod_ip_reachable(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("web")?;
    let sid = e.cri.run_pod(&pod).await?;
    e.cri.run(&sid, &pod, &container("server", &["netexec", "--http-port", "8080"])).await?;
    let ip = e.cri.pod_ip(&sid).await?;
    let cidr = ctx.world.host(NODE)?.pod_cidr().context("node-a has a pod CIDR")?;
    ensure!(cidr.contains(ip), "pod IP {ip} outside {cidr}");
    wait_hostname(ctx, ip, 8080, "web").await?;
    // A second pod gets another address and answers with its own name.
    let pod2 = e.cri.pod("web-2")?;
    let sid2 = e.cri.run_pod(&pod2).await?;
    e.cri.run(&sid2, &pod2, &container("server", &["netexec", "--http-port", "8080"])).await?;
    let ip2 = e.cri.pod_ip(&sid2).await?;
    ensure!(ip2 != ip && cidr.contains(ip2), "second pod IP {ip2} (first {ip})");
    wait_hostname(ctx, ip2, 8080, "web-2").await?;
    Ok(())
}

/// Whether `/proc/net/tcp` text lists a listening socket on `port`.
fn listens(proc_net_tcp: &str, port: u16) -> bool {
    let want = format!(":{port:04X}");
    proc_net_tcp.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(&want) && f[3] == "0A"
    })
}

pub(crate) async fn shared_network(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("shared")?;
    let sid = e.cri.run_pod(&pod).await?;
    let a = e.cri.run(&sid, &pod, &container("a", &["netexec", "--http-port", "8080"])).await?;
    let b = e.cri.run(&sid, &pod, &container("b", &["netexec", "--http-port", "8081"])).await?;
    let ip = e.cri.pod_ip(&sid).await?;
    wait_hostname(ctx, ip, 8080, "shared").await?;
    wait_hostname(ctx, ip, 8081, "shared").await?;
    // Each container sees the other's listening socket: one network namespace.
    let in_b = e.cri.exec_ok(&b, &["/workload", "cat", "/proc/net/tcp"]).await?;
    ensure!(listens(&in_b, 8080), "container b does not see a's listener on 8080:\n{in_b}");
    let in_a = e.cri.exec_ok(&a, &["/workload", "cat", "/proc/net/tcp"]).await?;
    ensure!(listens(&in_a, 8081), "container a does not see b's listener on 8081:\n{in_a}");
    Ok(())
}

/// critest's port mappings. A sandbox declaring container port 8080 on host port 30080 is
/// reached through the node's address on 30080, from the node itself and from another host of
/// the world (the control plane host), by the server in the pod; a port declared without a host
/// port is accepted and reached on the pod IP. After the sandbox is stopped, nothing answers on
/// the host port any more. Catches a runtime that ignores `port_mappings` (no host port rule),
/// maps only traffic from outside or only from the node, maps to the wrong port, or leaves the
/// rule behind.
pub(crate) async fn host_port(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    const HOST_PORT: u16 = 30080;
    let pod = e.cri.pod("hostport")?.port(8080, HOST_PORT.into()).port(8081, 0);
    let sid = e.cri.run_pod(&pod).await?;
    e.cri.run(&sid, &pod, &container("web", &["netexec", "--http-port", "8080"])).await?;
    e.cri.run(&sid, &pod, &container("other", &["netexec", "--http-port", "8081"])).await?;
    let node_ip = ctx.world.host(NODE)?.ip();
    wait_hostname_from(ctx, NODE, node_ip, HOST_PORT, "hostport").await.context("the host port from the node itself")?;
    wait_hostname_from(ctx, "cp", node_ip, HOST_PORT, "hostport").await.context("the host port from another host")?;
    let ip = e.cri.pod_ip(&sid).await?;
    wait_hostname(ctx, ip, 8081, "hostport").await.context("the port declared without a host port, on the pod IP")?;
    e.cri.stop_pod(&sid).await.context("StopPodSandbox")?;
    let cp = ctx.world.host("cp")?;
    let what = format!("{node_ip}:{HOST_PORT} to stop answering once the sandbox is stopped");
    harness::wait::wait_for(&what, WAIT, || async {
        match http_get(cp, node_ip, HOST_PORT, "/hostname").await {
            Ok(answer) => Err(format!("still answered {answer:?}")),
            Err(_) => Ok(()),
        }
    })
    .await?;
    Ok(())
}
