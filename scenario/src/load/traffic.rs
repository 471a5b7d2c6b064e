//! `traffic` and `capture`: connections opened from a host of the world and judged from the
//! packets, and packet captures kept as artifacts. Both are nodekit additions, allowed in `try`
//! only.

use std::time::Duration;

use super::fields::{Fields, Item, Loader, R};
use super::yaml::Yaml;
use crate::model::{Action, CaptureSpec, Traffic, TrafficExpect, TrafficTarget};

/// Connections a traffic operation opens unless it says.
const DEFAULT_CONNECTIONS: u32 = 10;
/// At most this many connections (they run one after the other).
const MAX_CONNECTIONS: u32 = 1000;
/// Where a traffic operation connects from unless it says.
const DEFAULT_FROM: &str = "client";
/// The namespace of a service or pod target unless it says.
const DEFAULT_NAMESPACE: &str = "default";

/// The ports a target may have, and how messages say so.
struct PortRange {
    min: u16,
    max: u16,
    rule: &'static str,
}

const PORT: PortRange = PortRange { min: 1, max: u16::MAX, rule: "a port is a whole number from 1 to 65535" };
const NODE_PORT: PortRange = PortRange {
    min: 30000,
    max: 32767,
    rule: "a NodePort is a whole number from 30000 to 32767 (the API server's default service-node-port-range)",
};

impl Loader {
    pub(super) fn traffic(&self, item: &Item<'_>) -> R<(Action, Option<Duration>)> {
        let f = self.fields(item, "traffic", &["from", "to", "connections", "expect", "timeout"], &[])?;
        let from = match f.get("from") {
            Some(h) => self.host(&h, true)?,
            None => DEFAULT_FROM.to_string(),
        };
        let to = self.traffic_target(&self.required(&f, "to", "where to connect: one of service, nodePort, pod")?)?;
        let connections = match f.get("connections") {
            Some(c) => {
                let rule = format!("connections is a whole number from 1 to {MAX_CONNECTIONS}");
                let n = self.whole(&c, 1, u64::from(MAX_CONNECTIONS), &rule)?;
                u32::try_from(n).map_err(|_| self.err_at(c.node, &c.path, "number too large"))?
            }
            None => DEFAULT_CONNECTIONS,
        };
        let expect = self.traffic_expect(
            &self.required(&f, "expect", "what the connections must show: successRate, minEndpoints, maxEndpoints or refused")?,
            connections,
        )?;
        let timeout = self.opt_duration(&f, "timeout", true)?;
        Ok((Action::Traffic(Traffic { from, to, connections, expect }), timeout))
    }

    /// `to`: exactly one of `service`, `nodePort`, `pod`.
    fn traffic_target(&self, item: &Item<'_>) -> R<TrafficTarget> {
        const RULE: &str = "traffic goes to exactly one of service, nodePort, pod";
        let to = self.fields(item, "to", &["service", "nodePort", "pod"], &[])?;
        let (kind, value) = self.exactly_one(&to, RULE)?;
        match kind.as_str() {
            "service" => {
                let f = self.fields(&value, "service", &["name", "namespace", "port"], &[])?;
                let name = self.dns_label(&self.required(&f, "name", "the Service's name")?, "service name")?;
                let namespace = self.target_namespace(&f)?;
                let port = self.port(&self.required(&f, "port", "the Service's port, from 1 to 65535")?, &PORT)?;
                Ok(TrafficTarget::Service { namespace, name, port })
            }
            "nodePort" => {
                let f = self.fields(&value, "nodePort", &["node", "port"], &[])?;
                let node = self.world_node(&f)?;
                let port = self.port(&self.required(&f, "port", "the NodePort, from 30000 to 32767")?, &NODE_PORT)?;
                Ok(TrafficTarget::NodePort { node, port })
            }
            "pod" => {
                let f = self.fields(&value, "pod", &["name", "namespace", "port"], &[])?;
                let name = self.nonempty_string(&self.required(&f, "name", "the pod's name")?)?;
                let namespace = self.target_namespace(&f)?;
                let port = self.port(&self.required(&f, "port", "a container port, from 1 to 65535")?, &PORT)?;
                Ok(TrafficTarget::Pod { namespace, name, port })
            }
            _ => Err(self.err_at(item.anchor(), &item.path, RULE)),
        }
    }

    fn target_namespace(&self, f: &Fields<'_>) -> R<String> {
        match f.get("namespace") {
            Some(ns) => self.dns_label(&ns, "namespace"),
            None => Ok(DEFAULT_NAMESPACE.to_string()),
        }
    }

    fn port(&self, item: &Item<'_>, range: &PortRange) -> R<u16> {
        let p = self.whole(item, u64::from(range.min), u64::from(range.max), range.rule)?;
        u16::try_from(p).map_err(|_| self.err_at(item.node, &item.path, "number too large"))
    }

    /// A whole number from `min` to `max`; otherwise `{rule}, found {what was found}`.
    pub(super) fn whole(&self, item: &Item<'_>, min: u64, max: u64, rule: &str) -> R<u64> {
        let found = match &item.node.v {
            Yaml::UInt(u) if (min..=max).contains(u) => return Ok(*u),
            Yaml::UInt(u) => u.to_string(),
            Yaml::Int(i) => i.to_string(),
            Yaml::Float(x) => format!("{x:?}"),
            other => other.type_name().to_string(),
        };
        Err(self.err_at(item.node, &item.path, format!("{rule}, found {found}")))
    }

    /// `expect`: at least one of successRate, minEndpoints, refused: true (`refused` goes with
    /// neither a success rate above 0 nor minEndpoints).
    fn traffic_expect(&self, item: &Item<'_>, connections: u32) -> R<TrafficExpect> {
        let f = self.fields(item, "expect", &["successRate", "minEndpoints", "maxEndpoints", "refused"], &[])?;
        let success_rate = match f.get("successRate") {
            Some(s) => {
                let v = self.number(&s)?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(self.err_at(s.node, &s.path, "successRate is in percent, from 0 to 100"));
                }
                Some(v)
            }
            None => None,
        };
        let min_endpoints = match f.get("minEndpoints") {
            Some(m) => Some(self.min_endpoints(&m, connections)?),
            None => None,
        };
        let max_endpoints = match f.get("maxEndpoints") {
            Some(m) => {
                let rule = format!("maxEndpoints is a whole number from 1 to {connections} (connections)");
                let n = u32::try_from(self.whole(&m, 1, u64::from(connections), &rule)?).unwrap_or(u32::MAX);
                if min_endpoints.is_some_and(|min| min > n) {
                    return Err(self.err_at(m.anchor(), &m.path, "maxEndpoints is below minEndpoints"));
                }
                Some(n)
            }
            None => None,
        };
        let refused = self.opt_bool(&f, "refused")?.unwrap_or(false);
        if refused {
            if let Some(m) = f.get("maxEndpoints") {
                return Err(self.err_at(
                    m.anchor(),
                    &m.path,
                    "cannot be combined with refused: true (a refused connection reaches no endpoint); remove it",
                ));
            }
            if let Some(s) = f.get("successRate")
                && success_rate.is_some_and(|r| r > 0.0)
            {
                return Err(self.err_at(
                    s.anchor(),
                    &s.path,
                    "cannot be combined with refused: true (a refused connection does not succeed); remove it or make it 0",
                ));
            }
            if let Some(m) = f.get("minEndpoints") {
                return Err(self.err_at(
                    m.anchor(),
                    &m.path,
                    "cannot be combined with refused: true (a refused connection reaches no endpoint); remove it",
                ));
            }
        }
        if success_rate.is_none() && min_endpoints.is_none() && max_endpoints.is_none() && !refused {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "expect needs at least one of successRate, minEndpoints, maxEndpoints or refused: true",
            ));
        }
        Ok(TrafficExpect { success_rate, min_endpoints, max_endpoints, refused })
    }

    /// From 1 to `connections`: each connection is served by one endpoint.
    fn min_endpoints(&self, item: &Item<'_>, connections: u32) -> R<u32> {
        let rule = format!(
            "minEndpoints is a whole number from 1 to {connections} (connections: each connection is served by one endpoint)"
        );
        let n = self.whole(item, 1, u64::from(connections), &rule)?;
        u32::try_from(n).map_err(|_| self.err_at(item.node, &item.path, "number too large"))
    }

    /// `capture`: the hosts to capture on (none: every host).
    pub(super) fn capture(&self, item: &Item<'_>) -> R<CaptureSpec> {
        if item.is_null() {
            return Ok(CaptureSpec::default());
        }
        let f = self.fields(item, "capture", &["hosts"], &[])?;
        let Some(hosts) = f.get("hosts") else { return Ok(CaptureSpec::default()) };
        let mut out: Vec<String> = Vec::new();
        for h in self.list(&hosts, "hosts")? {
            let name = self.host(&h, true)?;
            if out.contains(&name) {
                return Err(self.err_at(h.node, &h.path, format!("host {name:?} is listed twice")));
            }
            out.push(name);
        }
        Ok(CaptureSpec { hosts: out })
    }
}
