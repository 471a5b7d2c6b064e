//! Decoded packets and the pcap reader (`pcap-parser` + `etherparse`).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, SystemTime};

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};

use crate::error::{Context, Error, Result};

/// TCP flags (FIN=0x01, SYN=0x02, RST=0x04, PSH=0x08, ACK=0x10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// SYN set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// ACK set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    /// RST set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// FIN set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// PSH set.
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump style: `S`, `S.`, `P.`, `F.`, `R`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(Self::SYN, 'S'), (Self::FIN, 'F'), (Self::PSH, 'P'), (Self::RST, 'R')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        if self.ack() {
            write!(f, ".")?;
        }
        Ok(())
    }
}

/// The transport layer of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    /// TCP segment.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Flags.
        flags: TcpFlags,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Payload bytes.
        payload_len: usize,
    },
    /// UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Payload bytes.
        payload_len: usize,
    },
    /// ICMPv4 message.
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// For destination-unreachable: the original packet's destination, protocol number.
        original_dst: Option<(SocketAddrV4, u8)>,
    },
    /// Anything else (ARP, non-IPv4, other protocols).
    Other,
}

/// One decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture timestamp.
    pub ts: SystemTime,
    /// Original length on the wire.
    pub len: u32,
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// EtherType (0x0800 IPv4, 0x0806 ARP, …); 0 if the frame is too short.
    pub ether_type: u16,
    /// Source IPv4 address.
    pub src_ip: Option<Ipv4Addr>,
    /// Destination IPv4 address.
    pub dst_ip: Option<Ipv4Addr>,
    /// Transport layer.
    pub l4: L4,
}

impl Packet {
    /// Source socket address (TCP/UDP).
    pub fn src(&self) -> Option<SocketAddrV4> {
        match (&self.l4, self.src_ip) {
            (L4::Tcp { src_port, .. } | L4::Udp { src_port, .. }, Some(ip)) => Some(SocketAddrV4::new(ip, *src_port)),
            _ => None,
        }
    }
    /// Destination socket address (TCP/UDP).
    pub fn dst(&self) -> Option<SocketAddrV4> {
        match (&self.l4, self.dst_ip) {
            (L4::Tcp { dst_port, .. } | L4::Udp { dst_port, .. }, Some(ip)) => Some(SocketAddrV4::new(ip, *dst_port)),
            _ => None,
        }
    }
    /// TCP flags, if TCP.
    pub fn tcp_flags(&self) -> Option<TcpFlags> {
        match &self.l4 {
            L4::Tcp { flags, .. } => Some(*flags),
            _ => None,
        }
    }
    /// A TCP SYN without ACK.
    pub fn is_syn(&self) -> bool {
        self.tcp_flags().is_some_and(|f| f.syn() && !f.ack())
    }
    /// A TCP SYN-ACK.
    pub fn is_syn_ack(&self) -> bool {
        self.tcp_flags().is_some_and(|f| f.syn() && f.ack())
    }

    /// Decodes an Ethernet frame.
    pub fn decode(ts: SystemTime, len: u32, frame: &[u8]) -> Packet {
        let mut p = Packet { ts, len, src_mac: [0; 6], dst_mac: [0; 6], ether_type: 0, src_ip: None, dst_ip: None, l4: L4::Other };
        let Ok(s) = SlicedPacket::from_ethernet(frame) else {
            if frame.len() >= 14 {
                p.dst_mac.copy_from_slice(&frame[0..6]);
                p.src_mac.copy_from_slice(&frame[6..12]);
                p.ether_type = u16::from_be_bytes([frame[12], frame[13]]);
            }
            return p;
        };
        if let Some(LinkSlice::Ethernet2(e)) = &s.link {
            p.src_mac = e.source();
            p.dst_mac = e.destination();
            p.ether_type = e.ether_type().0;
        }
        if let Some(NetSlice::Ipv4(ip)) = &s.net {
            p.src_ip = Some(ip.header().source_addr());
            p.dst_ip = Some(ip.header().destination_addr());
            p.l4 = match &s.transport {
                Some(TransportSlice::Tcp(t)) => L4::Tcp {
                    src_port: t.source_port(),
                    dst_port: t.destination_port(),
                    flags: TcpFlags(
                        [
                            (t.fin(), TcpFlags::FIN),
                            (t.syn(), TcpFlags::SYN),
                            (t.rst(), TcpFlags::RST),
                            (t.psh(), TcpFlags::PSH),
                            (t.ack(), TcpFlags::ACK),
                        ]
                        .iter()
                        .filter(|(on, _)| *on)
                        .fold(0, |acc, (_, bit)| acc | bit),
                    ),
                    seq: t.sequence_number(),
                    ack: t.acknowledgment_number(),
                    payload_len: t.payload().len(),
                },
                Some(TransportSlice::Udp(u)) => L4::Udp {
                    src_port: u.source_port(),
                    dst_port: u.destination_port(),
                    payload_len: u.payload().len(),
                },
                Some(TransportSlice::Icmpv4(i)) => L4::Icmp {
                    icmp_type: i.type_u8(),
                    code: i.code_u8(),
                    original_dst: if i.type_u8() == 3 { embedded_dst(i.payload()) } else { None },
                },
                _ => L4::Other,
            };
        }
        p
    }
}

/// Destination (address, port) and protocol of the IPv4 packet quoted in an ICMP error.
fn embedded_dst(quoted: &[u8]) -> Option<(SocketAddrV4, u8)> {
    let h = etherparse::Ipv4HeaderSlice::from_slice(quoted).ok()?;
    let rest = quoted.get(h.slice().len()..)?;
    let proto = h.protocol().0;
    let port = match proto {
        6 | 17 => u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]),
        _ => 0,
    };
    Some((SocketAddrV4::new(h.destination_addr(), port), proto))
}

fn mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl fmt::Display for Packet {
    /// One line, tcpdump-like: `10.77.0.100:40000 > 10.96.0.10:80 TCP [S] seq 1 ack 0 len 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.ts.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        write!(f, "{}.{:06} ", t.as_secs() % 86400, t.subsec_micros())?;
        let (s, d) = (self.src_ip, self.dst_ip);
        match (&self.l4, s, d) {
            (L4::Tcp { src_port, dst_port, flags, seq, ack, payload_len }, Some(s), Some(d)) => write!(
                f,
                "{s}:{src_port} > {d}:{dst_port} TCP [{flags}] seq {seq} ack {ack} len {payload_len}"
            ),
            (L4::Udp { src_port, dst_port, payload_len }, Some(s), Some(d)) => {
                write!(f, "{s}:{src_port} > {d}:{dst_port} UDP len {payload_len}")
            }
            (L4::Icmp { icmp_type, code, original_dst }, Some(s), Some(d)) => {
                write!(f, "{s} > {d} ICMP type {icmp_type} code {code}")?;
                if let Some((o, p)) = original_dst {
                    write!(f, " (original dst {o} proto {p})")?;
                }
                Ok(())
            }
            (_, Some(s), Some(d)) => write!(f, "{s} > {d} IPv4 other"),
            _ => {
                let kind = match self.ether_type {
                    0x0806 => "ARP".to_string(),
                    0x86dd => "IPv6".to_string(),
                    t => format!("ethertype 0x{t:04x}"),
                };
                write!(f, "{} > {} {kind} len {}", mac(&self.src_mac), mac(&self.dst_mac), self.len)
            }
        }
    }
}

/// Reads a classic libpcap file (Ethernet link type) and decodes every packet.
pub fn read_pcap(path: &Path) -> Result<Vec<Packet>> {
    let data = std::fs::read(path).ctx(|| format!("reading {}", path.display()))?;
    let bad = |why: String| Error::Pcap { path: path.to_path_buf(), why };
    let (_, cap) = pcap_parser::parse_pcap(&data).map_err(|e| bad(format!("{e:?}")))?;
    if cap.header.network != pcap_parser::Linktype::ETHERNET {
        return Err(bad(format!("link type {:?} is not Ethernet", cap.header.network)));
    }
    Ok(cap
        .blocks
        .iter()
        .map(|b| {
            let ts = SystemTime::UNIX_EPOCH + Duration::new(b.ts_sec as u64, b.ts_usec.saturating_mul(1000));
            Packet::decode(ts, b.origlen, b.data)
        })
        .collect())
}
