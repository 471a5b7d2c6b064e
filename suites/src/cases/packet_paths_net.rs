//! Sockets and captures for the packet-path cases: sockets inside a host or inside a pod's
//! network namespace (found through /proc), HTTP `GET /hostname` and netexec UDP requests
//! that return the answering pod's name, pcap captures into the artifacts directory, and
//! helpers over decoded packets.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use harness::capture::Capture;
use harness::packets::{L4, Packet};
use harness::path::Captures;
use harness::world::Host;
use nix::sched::{CloneFlags, setns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use crate::context::CaseCtx;

/// Connect timeout of requests that are expected to succeed.
pub(super) const CONNECT: Duration = Duration::from_secs(2);
/// Read timeout of a whole HTTP response.
const READ: Duration = Duration::from_secs(3);

/// Runs `f` on a thread that joined the network namespace `fd`.
fn run_in<R: Send>(fd: &OwnedFd, f: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(fd, CloneFlags::CLONE_NEWNET)
                .context("setns(CLONE_NEWNET) into a pod namespace")?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow!("a thread inside a pod namespace panicked"))?
    })
}

/// A pod's network namespace, found as the namespace of a world process that owns the pod IP.
pub(super) struct PodNet {
    pub name: String,
    pub ip: Ipv4Addr,
    pid: u32,
    fd: Arc<OwnedFd>,
}

impl PodNet {
    /// Finds the namespace of pod `name` with IP `ip` (retrying briefly: the container process
    /// of a Ready pod exists, but be tolerant to a restart in between).
    pub async fn find(name: &str, ip: Ipv4Addr) -> anyhow::Result<PodNet> {
        let what = format!("a process in the network namespace of pod {name} ({ip})");
        let found = harness::wait::wait_for(&what, Duration::from_secs(10), || async {
            scan_proc(ip)
                .map_err(|e| e.to_string())
                .and_then(|o| o.ok_or_else(|| "none found".to_string()))
        })
        .await?;
        Ok(PodNet {
            name: name.to_string(),
            ip,
            pid: found.0,
            fd: found.1,
        })
    }

    /// Runs `f` inside the pod's network namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
        run_in(&self.fd, f)
    }

    /// The node-side interface of the pod's veth pair (found from eth0's peer index).
    pub async fn host_veth(&self, node: &Host) -> anyhow::Result<String> {
        let out = tokio::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.pid))
            .args(["ip", "-o", "link", "show", "eth0"])
            .output()
            .await
            .context("running nsenter … ip link show eth0")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let peer: u32 = text
            .split_once("@if")
            .and_then(|(_, r)| r.split(':').next())
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| {
                format!(
                    "pod {}: no veth peer index in {text:?} ({})",
                    self.name,
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        let links = node.exec("ip", &["-o", "link", "show"]).await?;
        for line in links.lines() {
            let mut parts = line.splitn(3, ": ");
            let (Some(idx), Some(name)) = (parts.next(), parts.next()) else {
                continue;
            };
            if idx.trim().parse::<u32>().ok() == Some(peer) {
                return Ok(name.split('@').next().unwrap_or(name).to_string());
            }
        }
        bail!(
            "pod {}: no interface with index {peer} on {}:\n{links}",
            self.name,
            node.name()
        )
    }
}

/// (pid, namespace fd) of the first process whose network namespace has `ip` as a local address.
fn scan_proc(ip: Ipv4Addr) -> anyhow::Result<Option<(u32, Arc<OwnedFd>)>> {
    let mut seen = HashSet::new();
    for entry in std::fs::read_dir("/proc")
        .context("reading /proc")?
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let path = format!("/proc/{pid}/ns/net");
        let Ok(link) = std::fs::read_link(&path) else {
            continue;
        };
        if !seen.insert(link) {
            continue;
        }
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let fd = OwnedFd::from(file);
        // Binding to an address succeeds only where it is local.
        if run_in(&fd, move || std::net::UdpSocket::bind((ip, 0)).is_ok()).unwrap_or(false) {
            return Ok(Some((pid, Arc::new(fd))));
        }
    }
    Ok(None)
}

/// Where traffic starts: a host of the world (optionally from one of its extra addresses) or
/// a pod.
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    Host(&'a Host),
    HostFrom(&'a Host, Ipv4Addr),
    Pod(&'a PodNet),
}

impl Origin<'_> {
    /// The source address traffic leaves with.
    pub fn ip(&self) -> Ipv4Addr {
        match self {
            Origin::Host(h) => h.ip(),
            Origin::HostFrom(_, ip) => *ip,
            Origin::Pod(p) => p.ip,
        }
    }

    /// A UDP socket bound to the origin's address and an ephemeral port.
    pub fn udp_socket(&self) -> anyhow::Result<UdpSocket> {
        let bind = SocketAddr::from((self.ip(), 0));
        match self {
            Origin::Host(h) | Origin::HostFrom(h, _) => Ok(h.udp_socket(bind)?),
            Origin::Pod(p) => {
                let s = p.run(move || std::net::UdpSocket::bind(bind))??;
                s.set_nonblocking(true)?;
                Ok(UdpSocket::from_std(s)?)
            }
        }
    }
}

pub(super) use harness::world::tcp::Attempt;

/// Connects from `from` to `to` within `timeout`, the source port chosen at connect time (see
/// `harness::world::tcp`: a random port can meet the conntrack entry of an earlier attempt).
pub(super) async fn attempt(
    from: Origin<'_>,
    to: SocketAddr,
    timeout: Duration,
) -> anyhow::Result<Attempt> {
    let SocketAddr::V4(to4) = to else {
        bail!("IPv6 target {to}")
    };
    Ok(match from {
        Origin::Host(h) | Origin::HostFrom(h, _) => h.tcp_attempt(from.ip(), to4, timeout).await?,
        Origin::Pod(p) => {
            let fd = p.run(harness::world::tcp::new_tcp_fd)??;
            harness::world::tcp::attempt_from(fd, p.ip, to4, timeout).await?
        }
    })
}

/// One answered `GET /hostname`: the client's address and the body (the pod's hostname).
#[derive(Debug, Clone)]
pub(super) struct Answer {
    pub local: SocketAddrV4,
    pub body: String,
}

/// `GET /hostname` (HTTP/1.0) from `from` to `to`; the status must be 200.
pub(super) async fn get_hostname(from: Origin<'_>, to: SocketAddr) -> anyhow::Result<Answer> {
    let mut stream = match attempt(from, to, CONNECT).await? {
        Attempt::Connected(s, _) => s,
        other => bail!(
            "GET http://{to}/hostname from {}: {}",
            from.ip(),
            other.describe()
        ),
    };
    let local = match stream.local_addr()? {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => bail!("IPv6 local address {a}"),
    };
    stream
        .write_all(format!("GET /hostname HTTP/1.0\r\nHost: {to}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(READ, stream.read_to_end(&mut buf))
        .await
        .with_context(|| {
            format!("GET http://{to}/hostname from {local}: no complete answer in {READ:?}")
        })??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET http://{to}/hostname: not HTTP: {text:?}"))?;
    if head.split_whitespace().nth(1) != Some("200") {
        bail!("GET http://{to}/hostname from {local}: {head:?} {body:?}");
    }
    Ok(Answer {
        local,
        body: body.trim().to_string(),
    })
}

/// Requests `/hostname` repeatedly (a new connection each time) until every name in `expect`
/// has answered; fails at once if another name answers, or after `timeout`.
pub(super) async fn wait_serving(
    from: Origin<'_>,
    to: SocketAddr,
    expect: &[&str],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let last = match get_hostname(from, to).await {
            Ok(a) if expect.contains(&a.body.as_str()) => {
                seen.insert(a.body.clone());
                if expect.iter().all(|e| seen.contains(*e)) {
                    return Ok(());
                }
                format!("answered by {}", a.body)
            }
            Ok(a) => bail!(
                "{to} from {} was answered by {:?}, expected only {expect:?}",
                from.ip(),
                a.body
            ),
            Err(e) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                format!("{e:#}")
            }
        };
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{to} from {} did not answer from all of {expect:?} within {timeout:?}: seen {seen:?}; last: {last}",
                from.ip()
            );
        }
    }
}

/// Requests `/hostname` repeatedly until one of `names` answers (returned); fails at once if
/// another name answers, or after `timeout`.
pub(super) async fn wait_answer(
    from: Origin<'_>,
    to: SocketAddr,
    names: &[&str],
    timeout: Duration,
) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match get_hostname(from, to).await {
            Ok(a) if names.contains(&a.body.as_str()) => return Ok(a.body),
            Ok(a) => bail!(
                "{to} from {} was answered by {:?}, expected one of {names:?}",
                from.ip(),
                a.body
            ),
            Err(e) => format!("{e:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{to} from {} was not answered by any of {names:?} within {timeout:?}; last: {last}",
                from.ip()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `msg` on `sock` to `to` and waits up to `timeout` for one datagram back.
pub(super) async fn udp_ask(
    sock: &UdpSocket,
    to: SocketAddr,
    msg: &str,
    timeout: Duration,
) -> anyhow::Result<Option<(SocketAddr, String)>> {
    sock.send_to(msg.as_bytes(), to)
        .await
        .with_context(|| format!("sending {msg:?} to {to}"))?;
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(timeout, sock.recv_from(&mut buf)).await {
        Err(_) => Ok(None),
        // An ICMP error queued on the socket shows up as a receive error: no answer.
        Ok(Err(_)) => Ok(None),
        Ok(Ok((n, from))) => Ok(Some((
            from,
            String::from_utf8_lossy(&buf[..n]).trim().to_string(),
        ))),
    }
}

// ---- captures -------------------------------------------------------------------------------

/// Captures running for one phase of a case, written as `<phase>-<label>.pcap` artifacts.
pub(super) struct Taps {
    phase: String,
    running: Vec<(String, Capture)>,
}

impl Taps {
    pub fn new(phase: &str) -> Taps {
        Taps {
            phase: phase.to_string(),
            running: Vec::new(),
        }
    }

    /// Captures `host`'s `ifname` under the label `<host>/<ifname>`.
    pub fn on(&mut self, ctx: &CaseCtx, host: &Host, ifname: &str) -> anyhow::Result<()> {
        self.named(ctx, &format!("{}/{ifname}", host.name()), host, ifname)
    }

    /// Captures `host`'s `ifname` under `label` (e.g. `pod:web-1` for a pod's veth).
    pub fn named(
        &mut self,
        ctx: &CaseCtx,
        label: &str,
        host: &Host,
        ifname: &str,
    ) -> anyhow::Result<()> {
        let file = format!("{}-{}.pcap", self.phase, label.replace(['/', ':'], "-"));
        let cap = Capture::start(host, ifname, ctx.artifact(&file))?;
        self.running.push((label.to_string(), cap));
        Ok(())
    }

    /// Stops every capture and returns the packets by label.
    pub async fn stop(self) -> anyhow::Result<Captures> {
        let mut caps = Captures::new();
        for (label, cap) in self.running {
            caps.add(&label, cap.stop().await?);
        }
        Ok(caps)
    }
}

/// TCP SYNs (without ACK) to `port`, one per (source, destination) in capture order
/// (retransmissions dropped).
pub(super) fn syns_to_port(packets: &[Packet], port: u16) -> Vec<&Packet> {
    let mut seen = HashSet::new();
    packets
        .iter()
        .filter(|p| p.is_syn() && p.dst().is_some_and(|d| d.port() == port))
        .filter(|p| seen.insert((p.src(), p.dst())))
        .collect()
}

/// Whether `p` answers a connection attempt from `client` negatively: a TCP RST to it, or an
/// ICMP destination-unreachable to it quoting `orig_dst`.
pub(super) fn is_rejection(p: &Packet, client: SocketAddrV4, orig_dst: SocketAddrV4) -> bool {
    match &p.l4 {
        L4::Tcp { flags, .. } => {
            flags.rst() && p.dst() == Some(client) && p.src() == Some(orig_dst)
        }
        L4::Icmp {
            icmp_type: 3,
            original_dst: Some((d, 6)),
            ..
        } => p.dst_ip == Some(*client.ip()) && *d == orig_dst,
        _ => false,
    }
}

/// Every packet of a capture, one per line (for error messages).
pub(super) fn dump(packets: &[Packet]) -> String {
    let lines: Vec<String> = packets.iter().take(60).map(|p| format!("  {p}")).collect();
    let more = if packets.len() > 60 {
        format!("\n  … {} more", packets.len() - 60)
    } else {
        String::new()
    };
    format!("{}{more}", lines.join("\n"))
}
