//! Conntrack cleanup for UDP: entries that still point at removed endpoints, and entries of
//! services that had no endpoints (their packets were rejected), are deleted with the
//! `conntrack` tool after the rules changed (upstream behaviour).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::model::{Protocol, ServicePort, ServicePortName, State};

/// One `conntrack -D` invocation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flush {
    /// All UDP entries to this service IP (it had no endpoints before).
    ServiceIp(Ipv4Addr),
    /// UDP entries to this NodePort (it had no endpoints before).
    NodePort(u16),
    /// UDP entries to `service` that were DNAT'd to `endpoint`.
    Endpoint { service: Ipv4Addr, endpoint: Ipv4Addr },
    /// UDP entries to NodePort `port` that were DNAT'd to `endpoint`.
    NodePortEndpoint { port: u16, endpoint: Ipv4Addr },
}

impl Flush {
    /// Arguments for the `conntrack` tool.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = ["-D", "-p", "udp"].iter().map(|s| s.to_string()).collect();
        match self {
            Flush::ServiceIp(ip) => a.extend(["--orig-dst".into(), ip.to_string()]),
            Flush::NodePort(p) => a.extend(["--dport".into(), p.to_string()]),
            Flush::Endpoint { service, endpoint } => {
                a.extend(["--orig-dst".into(), service.to_string(), "--dst-nat".into(), endpoint.to_string()])
            }
            Flush::NodePortEndpoint { port, endpoint } => {
                a.extend(["--dport".into(), port.to_string(), "--dst-nat".into(), endpoint.to_string()])
            }
        }
        a
    }
}

/// The flushes needed when moving from `old` to `new` (UDP service ports only); with `keys`,
/// only those service ports of `new` are considered.
pub fn stale<'a>(
    old: impl Iterator<Item = &'a ServicePort>,
    new: &State,
    keys: Option<&BTreeSet<ServicePortName>>,
) -> Vec<Flush> {
    let old: BTreeMap<&ServicePortName, &ServicePort> =
        old.filter(|sp| sp.protocol == Protocol::Udp).map(|sp| (&sp.name, sp)).collect();
    let mut out = BTreeSet::new();
    for (name, o) in &old {
        let new_eps: BTreeSet<Ipv4Addr> = new
            .services
            .get(*name)
            .map(|n| n.reachable_endpoints().iter().map(|e| e.ip).collect())
            .unwrap_or_default();
        for ep in o.reachable_endpoints() {
            if new_eps.contains(&ep.ip) {
                continue;
            }
            for ip in std::iter::once(o.cluster_ip).chain(o.external_ips.iter().copied()) {
                out.insert(Flush::Endpoint { service: ip, endpoint: ep.ip });
            }
            if let Some(p) = o.node_port {
                out.insert(Flush::NodePortEndpoint { port: p, endpoint: ep.ip });
            }
        }
    }
    let candidates: Box<dyn Iterator<Item = (&ServicePortName, &ServicePort)>> = match keys {
        Some(k) => Box::new(k.iter().filter_map(|k| new.services.get_key_value(k))),
        None => Box::new(new.services.iter()),
    };
    for (name, n) in candidates {
        if n.protocol != Protocol::Udp || n.reachable_endpoints().is_empty() {
            continue;
        }
        let had = old.get(name).is_some_and(|o| !o.reachable_endpoints().is_empty());
        if !had {
            for ip in std::iter::once(n.cluster_ip).chain(n.external_ips.iter().copied()) {
                out.insert(Flush::ServiceIp(ip));
            }
            if let Some(p) = n.node_port {
                out.insert(Flush::NodePort(p));
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, ServicePortName};

    fn udp(eps: &[&str]) -> ServicePort {
        ServicePort {
            name: ServicePortName { namespace: "ns".into(), name: "dns".into(), port: "p".into(), protocol: Protocol::Udp },
            cluster_ip: "10.96.0.10".parse().unwrap(),
            port: 53,
            protocol: Protocol::Udp,
            node_port: Some(30053),
            external_ips: vec![],
            internal_local: false,
            external_local: false,
            affinity_timeout: None,
            cluster_endpoints: eps.iter().map(|e| Endpoint { ip: e.parse().unwrap(), port: 53, local: false }).collect(),
            local_endpoints: vec![],
            has_any_endpoints: !eps.is_empty(),
        }
    }

    fn state(sp: ServicePort) -> State {
        let mut s = State::default();
        s.services.insert(sp.name.clone(), sp);
        s
    }

    #[test]
    fn removed_udp_endpoint_is_flushed() {
        let old = udp(&["10.244.1.2", "10.244.1.3"]);
        let new = state(udp(&["10.244.1.3"]));
        let f = stale([&old].into_iter(), &new, None);
        let ep: Ipv4Addr = "10.244.1.2".parse().unwrap();
        assert_eq!(
            f,
            vec![
                Flush::Endpoint { service: "10.96.0.10".parse().unwrap(), endpoint: ep },
                Flush::NodePortEndpoint { port: 30053, endpoint: ep },
            ]
        );
        assert_eq!(f[0].args().join(" "), "-D -p udp --orig-dst 10.96.0.10 --dst-nat 10.244.1.2");
    }

    #[test]
    fn service_gaining_endpoints_is_flushed_and_tcp_ignored() {
        let old = udp(&[]);
        let f = stale([&old].into_iter(), &state(udp(&["10.244.1.3"])), None);
        assert_eq!(f, vec![Flush::ServiceIp("10.96.0.10".parse().unwrap()), Flush::NodePort(30053)]);
        let mut tcp = udp(&["10.244.1.2"]);
        tcp.protocol = Protocol::Tcp;
        tcp.name.protocol = Protocol::Tcp;
        assert!(stale([&tcp].into_iter(), &State::default(), None).is_empty());
        // Unchanged endpoints: nothing to do.
        let same = udp(&["10.244.1.2"]);
        assert!(stale([&same].into_iter(), &state(udp(&["10.244.1.2"])), None).is_empty());
    }
}
