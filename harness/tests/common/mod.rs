//! Sealed-child side of the world tests: one async body per role.

pub mod crash;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use harness::artifacts::Artifacts;
use harness::capture::Capture;
use harness::path::{Captures, Flow};
use harness::process::ProcessSpec;
use harness::world::{Host, Plan, World};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Entry of a re-executed child: enter the sealed world, then run the role's body.
pub fn child_main(role: &str) -> ExitCode {
    crate::child::run(role, |dir| async move {
        match role {
            "reach" => reach(dir).await,
            "dnat" => dnat(dir).await,
            "processes" => processes(dir).await,
            "crash" => crash::child(dir).await,
            other => bail!("unknown role {other}"),
        }
    })
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("literal socket address")
}

/// Serves one line per connection: replies `<name>:<line>` and closes.
fn serve(host: &Host, addr: SocketAddr, name: &'static str) -> Result<tokio::task::JoinHandle<()>> {
    let l = host.tcp_listener(addr)?;
    Ok(tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let reply = format!("{name}:{}", String::from_utf8_lossy(&buf[..n]));
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    }))
}

/// Sends `msg`, returns the local address and the whole reply.
async fn ask(from: &Host, to: SocketAddr, msg: &str) -> Result<(SocketAddr, String)> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), from.tcp_connect(to)).await.context("connect timed out")??;
    let local = s.local_addr()?;
    s.write_all(msg.as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await.context("read timed out")??;
    Ok((local, out))
}

async fn reach(dir: PathBuf) -> Result<()> {
    let t = Instant::now();
    let world = World::build_with(&Plan::two_nodes(), Artifacts::at(&dir)).await?;
    eprintln!("world built in {:?}", t.elapsed());
    let (node_a, client, cp) = (world.host("node-a")?, world.host("client")?, world.host("cp")?);
    ensure!(node_a.read_sysctl("net.ipv4.ip_forward")? == "1", "node-a must forward");
    ensure!(client.read_sysctl("net.ipv4.ip_forward")? == "0", "client must not forward");
    ensure!(world.root().read_sysctl("net.ipv4.ip_forward")? == "0", "world root must not forward");
    ensure!(node_a.read_sysctl("net.bridge.bridge-nf-call-iptables")? == "1");
    ensure!(cp.read_sysctl("net.bridge.bridge-nf-call-iptables")? == "0");
    // A host owns its own address only.
    ensure!(node_a.run(|| std::net::TcpListener::bind("10.77.0.12:0"))?.is_err(), "node-a can bind node-b's IP");

    let cap_a = Capture::start(node_a, "eth0", dir.join("node-a-eth0.pcap"))?;
    let cap_lan = Capture::start(world.root(), "lan0", dir.join("world-lan0.pcap"))?;
    let _s1 = serve(node_a, sa("10.77.0.11:8080"), "node-a")?;
    let _s2 = serve(cp, sa("10.77.0.2:6443"), "cp")?;
    let (c1, r1) = ask(client, sa("10.77.0.11:8080"), "hello").await?;
    ensure!(r1 == "node-a:hello", "client → node-a replied {r1:?}");
    ensure!(c1.ip().to_string() == "10.77.0.100", "client source {c1}");
    let (c2, r2) = ask(world.root(), sa("10.77.0.2:6443"), "root").await?;
    ensure!(r2 == "cp:root", "world root → cp replied {r2:?}");
    let caps = Captures::new().with("node-a/eth0", cap_a.stop().await?).with("world/lan0", cap_lan.stop().await?);
    let f1 = Flow::tcp(c1, sa("10.77.0.11:8080"));
    f1.syn("node-a/eth0").find(&caps)?;
    f1.syn_ack("node-a/eth0").find(&caps)?;
    // Frames bridged between two ports of lan0 are not delivered to lan0 itself.
    f1.syn("world/lan0").absent(&caps)?;
    let f2 = Flow::tcp(c2, sa("10.77.0.2:6443"));
    f2.syn("world/lan0").find(&caps)?;
    f2.syn_ack("world/lan0").find(&caps)?;
    // node-a's capture is bound to node-a's eth0: the root → cp exchange never crossed it.
    f2.syn("node-a/eth0").absent(&caps)?;
    Ok(())
}

const DNAT_RULES: &str = "table ip svc {
  chain pre {
    type nat hook prerouting priority -100; policy accept;
    ip daddr 10.96.0.10 tcp dport 80 meta l4proto tcp dnat ip to numgen inc mod 2 map { 0 : 10.244.1.10 . 8080, 1 : 10.244.1.11 . 8080 }
  }
}
";

async fn dnat(dir: PathBuf) -> Result<()> {
    let world = World::build_with(&Plan::single_node(), Artifacts::at(&dir)).await?;
    let (node_a, client) = (world.host("node-a")?, world.host("client")?);
    let pod1 = world.add_pod_host("node-a", "pod1", "10.244.1.10".parse()?).await?;
    let pod2 = world.add_pod_host("node-a", "pod2", "10.244.1.11".parse()?).await?;
    let _p1 = serve(&pod1, sa("0.0.0.0:8080"), "pod1")?;
    let _p2 = serve(&pod2, sa("0.0.0.0:8080"), "pod2")?;
    node_a.nft(DNAT_RULES).await?;
    let caps_running = [
        ("client/eth0", Capture::start(client, "eth0", dir.join("client-eth0.pcap"))?),
        ("node-a/cbr0", Capture::start(node_a, "cbr0", dir.join("node-a-cbr0.pcap"))?),
        ("node-a/eth0", Capture::start(node_a, "eth0", dir.join("node-a-eth0.pcap"))?),
    ];
    let svc = sa("10.96.0.10:80");
    let mut conns = Vec::new();
    for i in 0..2 {
        conns.push(ask(client, svc, &format!("req{i}")).await?);
    }
    let mut bodies: Vec<String> = conns.iter().map(|(_, b)| b.clone()).collect();
    bodies.sort();
    ensure!(bodies == ["pod1:req0", "pod2:req1"] || bodies == ["pod1:req1", "pod2:req0"], "bodies {bodies:?}");
    let mut caps = Captures::new();
    for (name, c) in caps_running {
        caps.add(name, c.stop().await?);
    }
    let pods = [sa("10.244.1.10:8080"), sa("10.244.1.11:8080")];
    for (local, _) in &conns {
        let flow = Flow::tcp(*local, svc);
        flow.syn("client/eth0").find(&caps)?;
        flow.syn("node-a/eth0").find(&caps)?;
        flow.syn("node-a/cbr0").dst_one_of(pods).find(&caps)?;
        flow.syn("node-a/cbr0").absent(&caps)?;
        flow.syn_ack("node-a/cbr0").src_one_of(pods).find(&caps)?;
        flow.syn_ack("client/eth0").find(&caps)?;
        flow.syn_ack("client/eth0").src_one_of(pods).absent(&caps)?;
    }
    // A wrong expectation fails, and the message shows what was seen at that point.
    let flow = Flow::tcp(conns[0].0, svc);
    let err = match flow.syn("node-a/cbr0").dst_one_of([sa("10.244.1.99:8080")]).find(&caps) {
        Ok(p) => bail!("a SYN to a pod that does not exist was 'found': {p}"),
        Err(e) => e.to_string(),
    };
    ensure!(err.contains("no TCP SYN") && err.contains("10.244.1.99:8080"), "unhelpful error: {err}");
    ensure!(err.contains("> 10.244.1.1"), "error does not list the DNAT'd SYNs seen: {err}");
    Ok(())
}

async fn processes(dir: PathBuf) -> Result<()> {
    let world = World::build_with(&Plan::single_node(), Artifacts::at(&dir)).await?;
    let node_a = world.host("node-a")?;
    // The process runs in node-a's network namespace.
    let mut p = node_a.spawn(ProcessSpec::new("/bin/readlink", "readlink").arg("/proc/self/ns/net"))?;
    ensure!(p.wait().await?.success());
    let log = std::fs::read_to_string(dir.join("readlink.log"))?;
    let want = format!("net:[{}]", node_a.netns().inode()?);
    ensure!(log.trim() == want, "process netns {log:?}, node-a is {want}");

    let mut s = node_a.spawn(ProcessSpec::new("/bin/sleep", "sleep").arg("3600"))?;
    ensure!(s.is_running());
    let first = s.pid();
    let st = s.stop(Duration::from_secs(5)).await?;
    ensure!(std::os::unix::process::ExitStatusExt::signal(&st) == Some(15), "stopped with {st}");
    ensure!(!s.is_running());
    s.restart().await?;
    ensure!(s.is_running() && s.pid() != first, "restart did not start a new process");
    let st = s.kill().await?;
    ensure!(std::os::unix::process::ExitStatusExt::signal(&st) == Some(9), "killed with {st}");

    // A process that ignores SIGTERM is killed after the grace period.
    let mut stubborn = node_a.spawn(
        ProcessSpec::new("/bin/sh", "stubborn").args(["-c", "trap '' TERM; echo ready; exec sleep 3600"]),
    )?;
    let log = dir.join("stubborn.log");
    harness::wait::wait_for("stubborn to install its trap", Duration::from_secs(5), || async {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("ready"))
    })
    .await?;
    let t = Instant::now();
    let st = stubborn.stop(Duration::from_millis(300)).await?;
    ensure!(std::os::unix::process::ExitStatusExt::signal(&st) == Some(9), "stubborn ended with {st}");
    ensure!(t.elapsed() >= Duration::from_millis(300), "SIGKILL before the grace period");

    // Waits name what they awaited and the last observation.
    let err = harness::wait::wait_for("the answer", Duration::from_millis(50), || async { Err::<(), _>("41") })
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(err.contains("the answer") && err.contains("41"), "wait error: {err}");
    let err = harness::bins::locate("no-such-nodekit-binary").err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(err.contains("cargo build --workspace --bins"), "locate error: {err}");
    let events = world.timeline().read()?;
    ensure!(events.iter().any(|e| e["event"] == "process restarted"), "timeline: {events:?}");
    Ok(())
}
