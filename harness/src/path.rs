//! Packet-path assertions over several named captures ("node-a/cbr0", "client/eth0", …).
//!
//! ```no_run
//! # use harness::path::{Captures, Flow};
//! # fn f(caps: &Captures, client: std::net::SocketAddr, pods: Vec<std::net::SocketAddr>) -> harness::Result<()> {
//! let flow = Flow::tcp(client, "10.96.0.10:80".parse().unwrap());
//! flow.syn("client/eth0").find(caps)?;                            // left the client unrewritten
//! flow.syn("node-a/cbr0").dst_one_of(pods.clone()).find(caps)?;   // DNAT'd to one of the pods
//! flow.syn_ack("client/eth0").find(caps)?;                        // reply un-NAT'd back to the client
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::error::{Error, Result};
use crate::packets::{L4, Packet};

/// Packets of several captures, by name.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    named: Vec<(String, Vec<Packet>)>,
}

impl Captures {
    /// No captures.
    pub fn new() -> Captures {
        Captures::default()
    }
    /// Adds (or replaces) a capture.
    pub fn add(&mut self, name: &str, packets: Vec<Packet>) {
        self.named.retain(|(n, _)| n != name);
        self.named.push((name.to_string(), packets));
    }
    /// Builder form of [`Captures::add`].
    pub fn with(mut self, name: &str, packets: Vec<Packet>) -> Captures {
        self.add(name, packets);
        self
    }
    /// The packets of capture `name`.
    pub fn get(&self, name: &str) -> Result<&[Packet]> {
        self.named.iter().find(|(n, _)| n == name).map(|(_, p)| p.as_slice()).ok_or_else(|| {
            let names: Vec<&str> = self.named.iter().map(|(n, _)| n.as_str()).collect();
            Error::NotFound(format!("no capture named {name:?} (have {names:?})"))
        })
    }
}

/// An address condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// Anything.
    Any,
    /// This IP, any port.
    Ip(Ipv4Addr),
    /// Exactly this address and port.
    Exact(SocketAddrV4),
    /// One of these addresses.
    OneOf(Vec<SocketAddrV4>),
}

impl Addr {
    fn from_sock(a: SocketAddrV4) -> Addr {
        if a.port() == 0 { Addr::Ip(*a.ip()) } else { Addr::Exact(a) }
    }
    /// Whether `a` satisfies the condition.
    pub fn matches(&self, a: SocketAddrV4) -> bool {
        match self {
            Addr::Any => true,
            Addr::Ip(ip) => a.ip() == ip,
            Addr::Exact(e) => *e == a,
            Addr::OneOf(v) => v.contains(&a),
        }
    }
    fn ips(&self) -> Vec<Ipv4Addr> {
        match self {
            Addr::Any => vec![],
            Addr::Ip(ip) => vec![*ip],
            Addr::Exact(e) => vec![*e.ip()],
            Addr::OneOf(v) => v.iter().map(|a| *a.ip()).collect(),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Any => write!(f, "*"),
            Addr::Ip(ip) => write!(f, "{ip}:*"),
            Addr::Exact(a) => write!(f, "{a}"),
            Addr::OneOf(v) => {
                let s: Vec<String> = v.iter().map(|a| a.to_string()).collect();
                write!(f, "one of {{{}}}", s.join(", "))
            }
        }
    }
}

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A client → service flow to locate across captures.
#[derive(Debug, Clone)]
pub struct Flow {
    proto: Proto,
    client: SocketAddrV4,
    service: SocketAddrV4,
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => SocketAddrV4::new(a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED), a.port()),
    }
}

impl Flow {
    /// A TCP flow; a client port of 0 matches any port.
    pub fn tcp(client: SocketAddr, service: SocketAddr) -> Flow {
        Flow { proto: Proto::Tcp, client: v4(client), service: v4(service) }
    }
    /// A UDP flow; a client port of 0 matches any port.
    pub fn udp(client: SocketAddr, service: SocketAddr) -> Flow {
        Flow { proto: Proto::Udp, client: v4(client), service: v4(service) }
    }
    /// The request direction at capture `at`: a TCP SYN (no ACK) or a UDP datagram, by default
    /// from the client to the service address (unrewritten).
    pub fn syn(&self, at: &str) -> Leg {
        Leg {
            at: at.to_string(),
            proto: self.proto,
            reply: false,
            src: Addr::from_sock(self.client),
            dst: Addr::Exact(self.service),
        }
    }
    /// Alias of [`Flow::syn`] that reads better for UDP.
    pub fn request(&self, at: &str) -> Leg {
        self.syn(at)
    }
    /// The reply direction at capture `at`: a TCP SYN-ACK or a UDP datagram, by default from
    /// the service address back to the client (un-NAT'd).
    pub fn syn_ack(&self, at: &str) -> Leg {
        Leg {
            at: at.to_string(),
            proto: self.proto,
            reply: true,
            src: Addr::Exact(self.service),
            dst: Addr::from_sock(self.client),
        }
    }
    /// Alias of [`Flow::syn_ack`] that reads better for UDP.
    pub fn reply(&self, at: &str) -> Leg {
        self.syn_ack(at)
    }
}

/// One expected packet of a flow at one capture point.
#[derive(Debug, Clone)]
pub struct Leg {
    at: String,
    proto: Proto,
    reply: bool,
    src: Addr,
    dst: Addr,
}

impl Leg {
    /// Expects the source to satisfy `a` instead of the default.
    pub fn src(mut self, a: Addr) -> Leg {
        self.src = a;
        self
    }
    /// Expects the destination to satisfy `a` instead of the default.
    pub fn dst(mut self, a: Addr) -> Leg {
        self.dst = a;
        self
    }
    /// Expects the destination rewritten to one of `addrs` (DNAT to endpoints).
    pub fn dst_one_of(self, addrs: impl IntoIterator<Item = SocketAddr>) -> Leg {
        self.dst(Addr::OneOf(addrs.into_iter().map(v4).collect()))
    }
    /// Expects the source to be one of `addrs` (a reply from endpoints, or SNAT).
    pub fn src_one_of(self, addrs: impl IntoIterator<Item = SocketAddr>) -> Leg {
        self.src(Addr::OneOf(addrs.into_iter().map(v4).collect()))
    }

    fn kind(&self) -> &'static str {
        match (self.proto, self.reply) {
            (Proto::Tcp, false) => "TCP SYN",
            (Proto::Tcp, true) => "TCP SYN-ACK",
            (Proto::Udp, false) => "UDP request",
            (Proto::Udp, true) => "UDP reply",
        }
    }

    fn shape_matches(&self, p: &Packet) -> bool {
        match (&p.l4, self.proto) {
            (L4::Tcp { .. }, Proto::Tcp) => if self.reply { p.is_syn_ack() } else { p.is_syn() },
            (L4::Udp { .. }, Proto::Udp) => true,
            _ => false,
        }
    }

    /// Whether `p` is this leg.
    pub fn matches(&self, p: &Packet) -> bool {
        self.shape_matches(p)
            && p.src().is_some_and(|a| self.src.matches(a))
            && p.dst().is_some_and(|a| self.dst.matches(a))
    }

    /// All packets of the capture that are this leg.
    pub fn find_all<'a>(&self, caps: &'a Captures) -> Result<Vec<&'a Packet>> {
        Ok(caps.get(&self.at)?.iter().filter(|p| self.matches(p)).collect())
    }

    /// The first packet of the capture that is this leg, or an error listing what was seen there.
    pub fn find<'a>(&self, caps: &'a Captures) -> Result<&'a Packet> {
        let packets = caps.get(&self.at)?;
        if let Some(p) = packets.iter().find(|p| self.matches(p)) {
            return Ok(p);
        }
        Err(Error::Path(self.explain(packets)))
    }

    /// Fails if the capture holds this leg (e.g. "no SYN reached node-b").
    pub fn absent(&self, caps: &Captures) -> Result<()> {
        let packets = caps.get(&self.at)?;
        match packets.iter().find(|p| self.matches(p)) {
            None => Ok(()),
            Some(p) => Err(Error::Path(format!(
                "expected no {} {} > {} at {}, but saw: {p}",
                self.kind(),
                self.src,
                self.dst,
                self.at
            ))),
        }
    }

    fn explain(&self, packets: &[Packet]) -> String {
        let ips: Vec<Ipv4Addr> = self.src.ips().into_iter().chain(self.dst.ips()).collect();
        let relevant: Vec<&Packet> = packets
            .iter()
            .filter(|p| {
                ips.is_empty()
                    || p.src_ip.is_some_and(|i| ips.contains(&i))
                    || p.dst_ip.is_some_and(|i| ips.contains(&i))
            })
            .collect();
        let shown: Vec<&Packet> = if relevant.is_empty() { packets.iter().collect() } else { relevant.clone() };
        let mut msg = format!(
            "no {} {} > {} at {} ({} packets captured there, {} involving the flow's addresses)",
            self.kind(),
            self.src,
            self.dst,
            self.at,
            packets.len(),
            relevant.len()
        );
        for p in shown.iter().take(40) {
            msg.push_str(&format!("\n  {p}"));
        }
        if shown.len() > 40 {
            msg.push_str(&format!("\n  … {} more", shown.len() - 40));
        }
        msg
    }
}
