//! Pod networking: the node bridge, pod network namespaces (bind-mounted under the state dir),
//! veth pairs, the IP allocator, and hostPort DNAT rules (nft) in fake-cri's own namespace.
use crate::error::{Error, Result};
use futures::TryStreamExt;
use nix::mount::{MsFlags, mount, umount2, MntFlags};
use nix::sched::{CloneFlags, unshare};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A parsed IPv4 CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub net: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.244.1.0/24`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument(format!("invalid pod CIDR {s:?}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr { net: Ipv4Addr::from(u32::from(ip) & mask), prefix })
    }

    /// The gateway: first address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net) + 1)
    }

    /// Lowest free host address (from .2), skipping `used`; None when full.
    pub fn allocate(&self, used: &BTreeSet<String>) -> Option<Ipv4Addr> {
        let size = 1u32 << (32 - self.prefix);
        (2..size - 1)
            .map(|i| Ipv4Addr::from(u32::from(self.net) + i))
            .find(|ip| !used.contains(&ip.to_string()))
    }
}

/// What a pod's network is.
#[derive(Debug)]
pub struct PodNet {
    /// The bind-mounted namespace file.
    pub netns_path: PathBuf,
    /// Node-side veth.
    pub veth: String,
    /// The namespace, held open.
    pub fd: OwnedFd,
}

/// Netlink access to fake-cri's own (node) namespace.
pub struct Net {
    handle: rtnetlink::Handle,
    conn: tokio::task::JoinHandle<()>,
    bridge: String,
    /// (bridge index, cidr) once the bridge is known to be set up.
    ready: std::sync::Mutex<Option<(u32, Cidr)>>,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

async fn link_index(h: &rtnetlink::Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(Error::netlink(format!("get link {name}"))(e)),
    }
}

impl Net {
    /// Opens netlink in the current namespace; `bridge` is the node bridge name (`cbr0`).
    pub fn new(bridge: &str) -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(Error::io("netlink socket"))?;
        Ok(Net { handle, conn: tokio::spawn(conn), bridge: bridge.to_string(), ready: std::sync::Mutex::new(None) })
    }

    /// Creates the bridge with `gw/prefix` if missing, and brings it up.
    pub async fn ensure_bridge(&self, cidr: &Cidr) -> Result<u32> {
        if let Some((idx, c)) = *self.ready.lock().unwrap_or_else(|p| p.into_inner())
            && c == *cidr {
                return Ok(idx);
            }
        let idx = self.setup_bridge(cidr).await?;
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) = Some((idx, *cidr));
        Ok(idx)
    }

    async fn setup_bridge(&self, cidr: &Cidr) -> Result<u32> {
        let h = &self.handle;
        let idx = match link_index(h, &self.bridge).await? {
            Some(i) => i,
            None => {
                h.link()
                    .add(LinkBridge::new(&self.bridge).build())
                    .execute()
                    .await
                    .map_err(Error::netlink(format!("add bridge {}", self.bridge)))?;
                link_index(h, &self.bridge)
                    .await?
                    .ok_or_else(|| Error::Unknown(format!("bridge {} vanished", self.bridge)))?
            }
        };
        let gw = cidr.gateway();
        let mut addrs = h.address().get().set_link_index_filter(idx).execute();
        let mut has = false;
        while let Some(a) = addrs.try_next().await.map_err(Error::netlink("get bridge addresses"))? {
            for attr in a.attributes {
                if let rtnetlink::packet_route::address::AddressAttribute::Address(IpAddr::V4(v)) = attr {
                    has |= v == gw;
                }
            }
        }
        if !has {
            h.address()
                .add(idx, IpAddr::V4(gw), cidr.prefix)
                .execute()
                .await
                .map_err(Error::netlink("add bridge address"))?;
        }
        h.link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(Error::netlink("bridge up"))?;
        Ok(idx)
    }

    /// Creates the pod namespace (bind-mounted at `netns_path`), a veth into the bridge and the
    /// pod side: `eth0` with `ip/prefix`, `lo` up, default route via the gateway.
    pub async fn setup_pod(&self, id: &str, netns_path: &Path, cidr: &Cidr, ip: Ipv4Addr) -> Result<PodNet> {
        let bridge_idx = self.ensure_bridge(cidr).await?;
        let t = std::time::Instant::now();
        let (fd, pod_conn, pod) = new_netns(netns_path).await?;
        tracing::debug!(took = ?t.elapsed(), "pod netns created");
        let pod_conn = tokio::spawn(pod_conn);
        let result = self.wire_pod(id, &fd, &pod, bridge_idx, cidr, ip).await;
        pod_conn.abort();
        match result {
            Ok(veth) => Ok(PodNet { netns_path: netns_path.to_path_buf(), veth, fd }),
            Err(e) => {
                let _ = self.delete_link(&veth_name(id)).await;
                drop(fd);
                remove_netns(netns_path);
                Err(e)
            }
        }
    }

    async fn wire_pod(
        &self,
        id: &str,
        fd: &OwnedFd,
        pod: &rtnetlink::Handle,
        bridge_idx: u32,
        cidr: &Cidr,
        ip: Ipv4Addr,
    ) -> Result<String> {
        let h = &self.handle;
        let veth = veth_name(id);
        // One request: the node side joins the bridge and comes up, the peer is born as `eth0`
        // inside the pod namespace (no move, no rename: both would wait for RCU grace periods).
        let peer = LinkUnspec::new_with_name("eth0").setns_by_fd(fd.as_raw_fd()).build();
        let msg = rtnetlink::LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(veth.clone())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge_idx)
            .up()
            .build();
        h.link().add(msg).execute().await.map_err(Error::netlink(format!("add veth {veth}")))?;
        // Hairpin on the bridge port, as kubelet's hairpin-veth mode and the CNI bridge plugin's
        // `hairpinMode` do: a pod reaching itself through its service gets its packets back.
        let port = link_index(h, &veth).await?.ok_or_else(|| Error::Unknown(format!("{veth} vanished")))?;
        h.link()
            .set_port(rtnetlink::LinkBridgePort::new(port).hairpin(true).build())
            .execute()
            .await
            .map_err(Error::netlink(format!("hairpin on {veth}")))?;
        // Pod side.
        let eth = link_index(pod, "eth0").await?.ok_or_else(|| Error::Unknown("eth0 not in pod netns".into()))?;
        pod.address()
            .add(eth, IpAddr::V4(ip), cidr.prefix)
            .execute()
            .await
            .map_err(Error::netlink("add pod address"))?;
        pod.link()
            .set(LinkUnspec::new_with_index(eth).up().build())
            .execute()
            .await
            .map_err(Error::netlink("eth0 up"))?;
        if let Some(lo) = link_index(pod, "lo").await? {
            pod.link()
                .set(LinkUnspec::new_with_index(lo).up().build())
                .execute()
                .await
                .map_err(Error::netlink("lo up"))?;
        }
        pod.route()
            .add(RouteMessageBuilder::<Ipv4Addr>::new().gateway(cidr.gateway()).output_interface(eth).build())
            .execute()
            .await
            .map_err(Error::netlink("default route"))?;
        Ok(veth)
    }

    /// Deletes a node-side link (and with it its veth peer); missing links are fine.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        if let Some(idx) = link_index(&self.handle, name).await? {
            match self.handle.link().del(idx).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {}
                Err(e) => return Err(Error::netlink(format!("delete {name}"))(e)),
            }
        }
        Ok(())
    }

    /// Whether the bridge exists (a cached answer once it has been set up).
    pub async fn bridge_exists(&self) -> Result<bool> {
        if self.ready.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
            return Ok(true);
        }
        Ok(link_index(&self.handle, &self.bridge).await?.is_some())
    }

    /// Deletes the bridge (shutdown).
    pub async fn delete_bridge(&self) -> Result<()> {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.delete_link(&self.bridge.clone()).await
    }
}

/// The node-side veth name of a sandbox.
pub fn veth_name(id: &str) -> String {
    format!("veth{}", &id[..id.len().min(8)])
}

type PodConn = rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>;

/// Makes a network namespace on a helper thread of its own (it ends with the namespace it
/// entered), bind-mounts it at `path` and opens a netlink connection inside it. The caller awaits
/// the thread without holding a runtime worker.
async fn new_netns(path: &Path) -> Result<(OwnedFd, PodConn, rtnetlink::Handle)> {
    let path = path.to_path_buf();
    let rt = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let made = (|| -> Result<(OwnedFd, PodConn, rtnetlink::Handle)> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(Error::sys("unshare(CLONE_NEWNET)"))?;
            std::fs::File::create(&path).map_err(Error::io(format!("create {}", path.display())))?;
            mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(Error::sys(format!("bind netns at {}", path.display())))?;
            let f = std::fs::File::open("/proc/thread-self/ns/net").map_err(Error::io("open netns"))?;
            let _g = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(Error::io("pod netlink socket"))?;
            Ok((OwnedFd::from(f), conn, handle))
        })();
        // The request was cancelled meanwhile: nobody will wire or remove this namespace.
        if let Err(Ok(_)) = tx.send(made) {
            remove_netns(&path);
        }
    });
    rx.await.map_err(|_| Error::Unknown("netns thread ended without an answer".into()))?
}

/// Opens a bind-mounted namespace file.
pub fn open_netns(path: &Path) -> Result<OwnedFd> {
    let f = std::fs::File::open(path).map_err(Error::io(format!("open netns {}", path.display())))?;
    Ok(OwnedFd::from(f))
}

/// Unmounts and removes a namespace file.
pub fn remove_netns(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// One hostPort mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// "tcp", "udp" or "sctp".
    pub proto: &'static str,
    /// Node port.
    pub host_port: u16,
    /// Pod IP.
    pub pod_ip: String,
    /// Container port.
    pub container_port: u16,
    /// Host IP filter (`None` = any).
    pub host_ip: Option<Ipv4Addr>,
}

/// A CRI `PortMapping` with its fields checked and typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    /// "tcp", "udp" or "sctp".
    pub proto: &'static str,
    /// Port in the pod (1-65535).
    pub container_port: u16,
    /// Node port (0 = none).
    pub host_port: u16,
    /// Host address (`None` = any: empty in the request).
    pub host_ip: Option<IpAddr>,
}

/// Checks the `index`th port mapping of a sandbox config: the protocol is a CRI `Protocol`,
/// container_port is 1-65535, host_port 0-65535 (0 = no host port) and host_ip empty or an IP
/// address. Its `Err` is an InvalidArgument naming the field and value.
pub fn parse_port_mapping(index: usize, p: &k8s_cri::v1::PortMapping) -> Result<PortMapping> {
    use k8s_cri::v1::Protocol;
    let bad = |what: String| Error::InvalidArgument(format!("invalid port_mappings[{index}]: {what}"));
    let proto = match Protocol::try_from(p.protocol) {
        Ok(Protocol::Tcp) => "tcp",
        Ok(Protocol::Udp) => "udp",
        Ok(Protocol::Sctp) => "sctp",
        Err(_) => return Err(bad(format!("protocol {} is not TCP (0), UDP (1) or SCTP (2)", p.protocol))),
    };
    let container_port = u16::try_from(p.container_port)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| bad(format!("container_port {} is out of range 1-65535", p.container_port)))?;
    let host_port = u16::try_from(p.host_port)
        .map_err(|_| bad(format!("host_port {} is out of range 0-65535 (0 = no host port)", p.host_port)))?;
    let host_ip = if p.host_ip.is_empty() {
        None
    } else {
        Some(p.host_ip.parse::<IpAddr>().map_err(|_| bad(format!("host_ip {:?} is not an IP address", p.host_ip)))?)
    };
    Ok(PortMapping { proto, container_port, host_port, host_ip })
}

/// Checks every port mapping of a sandbox config (RunPodSandbox refuses the config otherwise).
pub fn validate_port_mappings(mappings: &[k8s_cri::v1::PortMapping]) -> Result<()> {
    for (i, p) in mappings.iter().enumerate() {
        parse_port_mapping(i, p)?;
    }
    Ok(())
}

/// The DNAT rules of a pod at `pod_ip`: one per mapping with a host port. Like the CNI portmap
/// plugin, a mapping whose host_ip is of the other address family (IPv6 here: pods are IPv4) is
/// left out; 0.0.0.0 means any address. Mappings that do not parse (a state file written before
/// RunPodSandbox checked them) are left out with a warning, never wrapped into another port.
pub fn pod_hostports(pod_ip: &str, mappings: &[k8s_cri::v1::PortMapping]) -> Vec<HostPort> {
    let mut out = Vec::new();
    for (i, p) in mappings.iter().enumerate() {
        let m = match parse_port_mapping(i, p) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(pod_ip, "skipping hostPort rule: {e}");
                continue;
            }
        };
        if m.host_port == 0 {
            continue;
        }
        let host_ip = match m.host_ip {
            None => None,
            Some(IpAddr::V4(a)) => Some(a),
            Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
                Some(a) => Some(a),
                None => {
                    tracing::debug!(pod_ip, host_ip = %a, "skipping hostPort rule: IPv6 host_ip for an IPv4 pod");
                    continue;
                }
            },
        };
        out.push(HostPort {
            proto: m.proto,
            host_port: m.host_port,
            pod_ip: pod_ip.to_string(),
            container_port: m.container_port,
            host_ip: host_ip.filter(|a| !a.is_unspecified()),
        });
    }
    out
}

/// nft table holding hostPort DNAT rules.
pub const HOSTPORT_TABLE: &str = "fake_cri_hostports";

/// The nft script that replaces the hostPort table with `ports` (deletes it when empty).
pub fn hostport_script(ports: &[HostPort]) -> String {
    let mut s = format!("table ip {HOSTPORT_TABLE} {{}}\ndelete table ip {HOSTPORT_TABLE}\n");
    if ports.is_empty() {
        return s;
    }
    s.push_str(&format!("table ip {HOSTPORT_TABLE} {{\n"));
    let mut rules = String::new();
    for p in ports {
        let dst = match p.host_ip {
            Some(a) if !a.is_unspecified() => format!("ip daddr {a} "),
            _ => String::new(),
        };
        rules.push_str(&format!(
            "    {dst}{} dport {} dnat to {}:{}\n",
            p.proto, p.host_port, p.pod_ip, p.container_port
        ));
    }
    s.push_str(&format!("  chain prerouting {{\n    type nat hook prerouting priority -100; policy accept;\n{rules}  }}\n"));
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump hp\n  }\n");
    s.push_str(&format!("  chain hp {{\n{rules}  }}\n"));
    s.push_str("}\n");
    s
}

/// Applies the hostPort rules with `nft -f -` in fake-cri's namespace.
pub async fn apply_hostports(ports: &[HostPort]) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let script = hostport_script(ports);
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(Error::io("run nft"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(Error::io("write nft script"))?;
    }
    let out = child.wait_with_output().await.map_err(Error::io("wait nft"))?;
    if !out.status.success() {
        return Err(Error::Unknown(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_allocation() {
        let c = Cidr::parse("10.244.1.7/24").unwrap();
        assert_eq!(c.net, Ipv4Addr::new(10, 244, 1, 0));
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 244, 1, 1));
        let mut used = BTreeSet::new();
        assert_eq!(c.allocate(&used), Some(Ipv4Addr::new(10, 244, 1, 2)));
        used.insert("10.244.1.2".to_string());
        assert_eq!(c.allocate(&used), Some(Ipv4Addr::new(10, 244, 1, 3)));
        let small = Cidr::parse("10.0.0.0/30").unwrap();
        used.insert("10.0.0.2".into());
        assert_eq!(small.allocate(&used), None);
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("x/24").is_err());
    }

    #[test]
    fn hostport_rules() {
        let s = hostport_script(&[HostPort {
            proto: "tcp",
            host_port: 8080,
            pod_ip: "10.244.1.2".into(),
            container_port: 80,
            host_ip: None,
        }]);
        assert!(s.contains("tcp dport 8080 dnat to 10.244.1.2:80"));
        assert!(hostport_script(&[]).ends_with(&format!("delete table ip {HOSTPORT_TABLE}\n")));
    }

    fn pm(protocol: i32, container_port: i32, host_port: i32, host_ip: &str) -> k8s_cri::v1::PortMapping {
        k8s_cri::v1::PortMapping { protocol, container_port, host_port, host_ip: host_ip.into() }
    }

    #[test]
    fn port_mappings_out_of_range_or_malformed_are_refused() {
        let refused = |p: k8s_cri::v1::PortMapping, needle: &str| {
            let e = validate_port_mappings(&[pm(0, 80, 0, ""), p]).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
            let msg = e.to_string();
            assert!(msg.contains("port_mappings[1]") && msg.contains(needle), "{msg}");
        };
        refused(pm(0, 70000, 8080, ""), "container_port 70000");
        refused(pm(0, -80, 8080, ""), "container_port -80");
        refused(pm(0, 0, 8080, ""), "container_port 0");
        refused(pm(0, 80, 70000, ""), "host_port 70000");
        refused(pm(0, 80, -1, ""), "host_port -1");
        refused(pm(3, 80, 8080, ""), "protocol 3");
        refused(pm(-1, 80, 8080, ""), "protocol -1");
        refused(pm(0, 80, 8080, "1.2.3.4 tcp dport 22 accept\nflush ruleset"), r#"host_ip "1.2.3.4 tcp dport 22 accept\nflush ruleset""#);
        refused(pm(0, 80, 8080, "10.0.0.1/24"), "host_ip");
        refused(pm(0, 80, 8080, " 10.0.0.1"), "host_ip");

        validate_port_mappings(&[
            pm(0, 1, 0, ""),
            pm(1, 65535, 65535, "10.0.0.1"),
            pm(2, 80, 8080, "0.0.0.0"),
            pm(0, 80, 8081, "::1"),
        ])
        .unwrap();
        let m = parse_port_mapping(0, &pm(1, 53, 5353, "10.0.0.1")).unwrap();
        assert_eq!(m, PortMapping { proto: "udp", container_port: 53, host_port: 5353, host_ip: Some("10.0.0.1".parse().unwrap()) });
    }

    #[test]
    fn hostport_rules_come_from_parsed_mappings_only() {
        let rules = pod_hostports(
            "10.244.1.2",
            &[
                pm(0, 80, 8080, ""),
                pm(0, 81, 0, ""),                   // no host port: no rule
                pm(1, 53, 5353, "0.0.0.0"),         // any address
                pm(0, 82, 8082, "10.0.0.7"),
                pm(0, 83, 8083, "::ffff:10.0.0.8"), // IPv4-mapped
                pm(0, 84, 8084, "fd00::1"),         // other family: left out, like CNI portmap
                pm(0, 70000, 8085, ""),             // from an old state file: left out, not port 4464
                pm(0, 86, 8086, "1.2.3.4\nflush ruleset"),
            ],
        );
        let got: Vec<(&str, u16, u16, Option<Ipv4Addr>)> =
            rules.iter().map(|r| (r.proto, r.host_port, r.container_port, r.host_ip)).collect();
        assert_eq!(
            got,
            vec![
                ("tcp", 8080, 80, None),
                ("udp", 5353, 53, None),
                ("tcp", 8082, 82, Some(Ipv4Addr::new(10, 0, 0, 7))),
                ("tcp", 8083, 83, Some(Ipv4Addr::new(10, 0, 0, 8))),
            ]
        );
        let s = hostport_script(&rules);
        assert!(s.contains("    ip daddr 10.0.0.7 tcp dport 8082 dnat to 10.244.1.2:82\n"), "{s}");
        assert!(!s.contains("4464") && !s.contains("flush"), "{s}");
    }
}
