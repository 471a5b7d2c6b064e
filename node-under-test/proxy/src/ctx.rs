//! Settings that shape the rendered rules (local-traffic detection, masquerade-all, NodePort
//! addresses), shared by the nftables and iptables renderers.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix such as `10.244.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    /// The prefix with host bits cleared.
    pub fn network(self) -> Cidr {
        let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
        Cidr { addr: Ipv4Addr::from(u32::from(self.addr) & mask), len: self.len }
    }
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        let len: u8 = l.parse().map_err(|_| format!("{s:?} has a bad prefix length"))?;
        if len > 32 {
            return Err(format!("{s:?} has a prefix length above 32"));
        }
        Ok(Cidr { addr, len }.network())
    }
}

/// How traffic from local pods is told apart from off-cluster traffic (`detectLocalMode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalDetect {
    /// Nothing can be told apart: no off-cluster masquerade for ClusterIP traffic.
    None,
    /// Source inside this prefix (ClusterCIDR or NodeCIDR mode).
    Cidr(Cidr),
    /// Arrived on this bridge (BridgeInterface mode).
    Bridge(String),
    /// Arrived on an interface with this name prefix (InterfaceNamePrefix mode).
    InterfacePrefix(String),
}

impl LocalDetect {
    /// nft match for "from a local pod", `None` when detection is off.
    pub fn nft_local(&self) -> Option<String> {
        match self {
            LocalDetect::None => None,
            LocalDetect::Cidr(c) => Some(format!("ip saddr {c}")),
            LocalDetect::Bridge(b) => Some(format!("iifname \"{b}\"")),
            LocalDetect::InterfacePrefix(p) => Some(format!("iifname \"{p}*\"")),
        }
    }
    /// nft match for "not from a local pod".
    pub fn nft_not_local(&self) -> Option<String> {
        match self {
            LocalDetect::None => None,
            LocalDetect::Cidr(c) => Some(format!("ip saddr != {c}")),
            LocalDetect::Bridge(b) => Some(format!("iifname != \"{b}\"")),
            LocalDetect::InterfacePrefix(p) => Some(format!("iifname != \"{p}*\"")),
        }
    }
    /// iptables match for "from a local pod".
    pub fn ipt_local(&self) -> Option<String> {
        match self {
            LocalDetect::None => None,
            LocalDetect::Cidr(c) => Some(format!("-s {c}")),
            LocalDetect::Bridge(b) => Some(format!("-i {b}")),
            LocalDetect::InterfacePrefix(p) => Some(format!("-i {p}+")),
        }
    }
    /// iptables match for "not from a local pod".
    pub fn ipt_not_local(&self) -> Option<String> {
        match self {
            LocalDetect::None => None,
            LocalDetect::Cidr(c) => Some(format!("! -s {c}")),
            LocalDetect::Bridge(b) => Some(format!("! -i {b}")),
            LocalDetect::InterfacePrefix(p) => Some(format!("! -i {p}+")),
        }
    }
}

/// Everything besides the services that the rendered rules depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderCtx {
    pub local: LocalDetect,
    pub masquerade_all: bool,
    /// Node addresses NodePorts answer on: `None` = every local address except 127.0.0.0/8;
    /// `Some(prefixes)` = local addresses inside these prefixes.
    pub node_port_cidrs: Option<Vec<Cidr>>,
}

impl Default for RenderCtx {
    fn default() -> Self {
        RenderCtx { local: LocalDetect::None, masquerade_all: false, node_port_cidrs: None }
    }
}

/// Masquerade mark bit (upstream default 0x4000, bit 14).
pub const MASQ_MARK: u32 = 0x4000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_normalises() {
        let c: Cidr = "10.244.3.7/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.244.0.0/16");
        assert!(c.contains("10.244.200.1".parse().unwrap()));
        assert!(!c.contains("10.245.0.1".parse().unwrap()));
        assert_eq!("1.2.3.4".parse::<Cidr>().unwrap().to_string(), "1.2.3.4/32");
        assert!("1.2.3.4/33".parse::<Cidr>().is_err());
        assert!("fd00::/64".parse::<Cidr>().is_err());
    }
}
