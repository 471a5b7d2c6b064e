//! `fault` and `heal`: what breaks (a node's link to the API server, a component, the API
//! server's answers, its watches, the runtime, a link between hosts) and what mends it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fields::{Fields, Item, Loader, R};
use super::text::{and_list, child};
use super::yaml::{Node, Yaml};
use crate::model::{
    ApiServerFault, Component, Direction, Fault, FaultKind, Heal, LinkFault, PressureResource, RuntimeFaults, RuntimeName,
};

/// A binary quantity (`512Ki`, `700Mi`, `2Gi`) in MiB, rounded up; at most 64 GiB.
fn mebibytes(s: &str) -> Option<u64> {
    let (num, factor_kib) = if let Some(n) = s.strip_suffix("Ki") {
        (n, 1u64)
    } else if let Some(n) = s.strip_suffix("Mi") {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix("Gi") {
        (n, 1024 * 1024)
    } else {
        return None;
    };
    let n: u64 = num.parse().ok().filter(|n| *n > 0)?;
    let kib = n.checked_mul(factor_kib)?;
    let mib = kib.div_ceil(1024);
    (mib <= 64 * 1024).then_some(mib)
}

/// The kinds of fault, as their keys.
const KINDS: &[&str] = &["partition", "stop", "kill", "restart", "apiServer", "dropWatches", "runtime", "link", "pressure"];

impl Loader {
    pub(super) fn fault(&mut self, item: &Item<'_>) -> R<Fault> {
        let mut allowed = vec!["name", "duration"];
        allowed.extend_from_slice(KINDS);
        let f = self.fields(item, "fault", &allowed, &[])?;
        let (kind_name, kind_item) = self.fault_kind(item, &f)?;
        let name = self.fault_name(&f)?;
        let duration = self.opt_duration(&f, "duration", true)?;
        let kind = match kind_name {
            "partition" => self.partition_fault(&kind_item)?,
            "stop" | "kill" | "restart" => self.component_fault(&kind_item, kind_name, &f)?,
            "apiServer" => FaultKind::ApiServer(self.api_server_fault(&kind_item)?),
            "dropWatches" => {
                if !kind_item.is_null() {
                    self.fields(&kind_item, "dropWatches", &[], &[])?;
                }
                FaultKind::DropWatches
            }
            "runtime" => self.runtime_fault(&kind_item)?,
            "link" => FaultKind::Link(self.link_fault(&kind_item)?),
            "pressure" => self.pressure_fault(&kind_item)?,
            _ => {
                return Err(self.err_at(
                    kind_item.anchor(),
                    &kind_item.path,
                    format!("unknown fault kind; allowed: {}", KINDS.join(", ")),
                ));
            }
        };
        if let Some((n, line)) = &name {
            self.faults.push((n.clone(), *line));
        }
        self.fault_count += 1;
        Ok(Fault { name: name.map(|(n, _)| n), duration, kind })
    }

    /// The one kind of the fault: its key and its value.
    fn fault_kind<'n>(&self, item: &Item<'n>, f: &Fields<'n>) -> R<(&'static str, Item<'n>)> {
        let kinds: Vec<(&'static str, &Node)> = f
            .entries
            .iter()
            .filter_map(|(k, key, _)| KINDS.iter().find(|kind| **kind == k.as_str()).map(|kind| (*kind, *key)))
            .collect();
        if kinds.len() != 1 {
            let names: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
            let (at, found) = match kinds.get(1) {
                Some((_, key)) => (*key, format!("found {}", and_list(&names))),
                None => (item.anchor(), "found none".to_string()),
            };
            return Err(self.err_at(
                at,
                &item.path,
                format!("a fault needs exactly one kind, {found}; allowed: {}", KINDS.join(", ")),
            ));
        }
        let kind_name = kinds[0].0;
        let kind_item =
            f.has(kind_name).ok_or_else(|| self.err_at(item.anchor(), &item.path, "internal: fault kind vanished"))?;
        Ok((kind_name, kind_item))
    }

    /// The fault's `name` (unique in the scenario) and its line.
    fn fault_name(&self, f: &Fields<'_>) -> R<Option<(String, usize)>> {
        let Some(n) = f.get("name") else { return Ok(None) };
        let s = self.nonempty_string(&n)?;
        if let Some((_, line)) = self.faults.iter().find(|(x, _)| *x == s) {
            return Err(self.err_at(
                n.node,
                &n.path,
                format!("fault name {s:?} is already used (line {line}); fault names are unique in a scenario"),
            ));
        }
        Ok(Some((s, n.node.line)))
    }

    /// `pressure: {node, memory: 700Mi | disk: 2Gi | pids: 3000}`.
    fn pressure_fault(&self, item: &Item<'_>) -> R<FaultKind> {
        const RESOURCES: &[&str] = &["memory", "disk", "pids"];
        let p = self.fields(item, "pressure", &["node", "memory", "disk", "pids"], &[])?;
        let node = self.world_node(&p)?;
        let given: Vec<&str> = RESOURCES.iter().copied().filter(|r| p.get(r).is_some()).collect();
        if given.len() != 1 {
            let found = if given.is_empty() { "none".to_string() } else { and_list(&given) };
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                format!("pressure needs exactly one of memory, disk or pids, found {found}"),
            ));
        }
        let Some(v) = p.get(given[0]) else { return Err(self.err_at(item.anchor(), &item.path, "internal: resource vanished")) };
        let resource = match given[0] {
            "pids" => {
                let n = self.whole(&v, 1, 100_000, "pids is a whole number of processes from 1 to 100000")?;
                PressureResource::Pids { count: n as u32 }
            }
            r => {
                let text = self.string(&v).unwrap_or_default();
                let mib = mebibytes(&text).ok_or_else(|| {
                    self.err_at(v.node, &v.path, format!("{r} is a quantity like 700Mi or 2Gi (Ki, Mi, Gi; at most 64Gi), found {text:?}"))
                })?;
                if r == "memory" { PressureResource::Memory { mib } } else { PressureResource::Disk { mib } }
            }
        };
        Ok(FaultKind::Pressure { node, resource })
    }

    fn partition_fault(&self, item: &Item<'_>) -> R<FaultKind> {
        let p = self.fields(item, "partition", &["node", "direction"], &[])?;
        let node = self.world_node(&p)?;
        let direction = match p.get("direction") {
            Some(d) => match self.string(&d)?.as_str() {
                "both" => Direction::Both,
                "toApiServer" => Direction::ToApiServer,
                "fromApiServer" => Direction::FromApiServer,
                other => {
                    return Err(self.err_at(
                        d.node,
                        &d.path,
                        format!("unknown direction {other:?}; allowed: both, toApiServer, fromApiServer"),
                    ));
                }
            },
            None => Direction::Both,
        };
        Ok(FaultKind::Partition { node, direction })
    }

    /// stop, kill or restart (`kind_name`); `fault`: the fault's fields (a restart takes no
    /// duration).
    fn component_fault(&self, item: &Item<'_>, kind_name: &str, fault: &Fields<'_>) -> R<FaultKind> {
        let p = self.fields(item, kind_name, &["node", "component"], &[])?;
        let node = self.world_node(&p)?;
        let c = self.required(&p, "component", "what to stop: agent, proxy, runtime or node")?;
        let component = match self.string(&c)?.as_str() {
            "agent" => Component::Agent,
            "proxy" => Component::Proxy,
            "runtime" => Component::Runtime,
            "node" => Component::Node,
            other => {
                return Err(self.err_at(
                    c.node,
                    &c.path,
                    format!("unknown component {other:?}; allowed: agent, proxy, runtime, node"),
                ));
            }
        };
        if component == Component::Node && kind_name != "kill" {
            return Err(self.err_at(
                c.node,
                &c.path,
                format!("a whole node cannot {kind_name}; use kill (every component SIGKILLed and the host off the network, healed by heal)"),
            ));
        }
        if kind_name == "restart"
            && let Some(d) = fault.get("duration")
        {
            return Err(self.err_at(
                d.anchor(),
                &d.path,
                "a restart is over at once (nothing to heal); remove duration",
            ));
        }
        Ok(match kind_name {
            "stop" => FaultKind::Stop { node, component },
            "kill" => FaultKind::Kill { node, component },
            _ => FaultKind::Restart { node, component },
        })
    }

    fn runtime_fault(&self, item: &Item<'_>) -> R<FaultKind> {
        if self.world.as_ref().and_then(|w| w.runtime) == Some(RuntimeName::Containerd) {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "fault runtime needs fake-cri; this scenario runs on containerd (spec.world.runtime)",
            ));
        }
        let p = self.fields(
            item,
            "runtime",
            &["node", "pullError", "createError", "sandboxError", "crashAfter", "notReady", "latency"],
            &[],
        )?;
        let node = self.world_node(&p)?;
        let map = |name: &str| -> R<BTreeMap<String, String>> {
            match p.get(name) {
                Some(m) => self.string_map(&m),
                None => Ok(Default::default()),
            }
        };
        let crash_after = match p.get("crashAfter") {
            Some(ca) => self.crash_after(&ca)?,
            None => BTreeMap::new(),
        };
        let faults = RuntimeFaults {
            pull_error: map("pullError")?,
            create_error: map("createError")?,
            sandbox_error: map("sandboxError")?,
            crash_after,
            not_ready: self.opt_string(&p, "notReady")?,
            latency: self.opt_duration(&p, "latency", true)?,
        };
        if faults == RuntimeFaults::default() {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "a runtime fault needs at least one of pullError, createError, sandboxError, crashAfter, notReady, latency",
            ));
        }
        Ok(FaultKind::Runtime { node, faults })
    }

    /// `crashAfter`: container name → duration.
    fn crash_after(&self, ca: &Item<'_>) -> R<BTreeMap<String, Duration>> {
        let Yaml::Map(entries) = &ca.node.v else {
            return Err(self.err_at(
                ca.node,
                &ca.path,
                format!("must be a mapping of container name to duration, found {}", ca.node.v.type_name()),
            ));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let Some(key) = k.v.scalar_text() else {
                return Err(self.err_at(k, &ca.path, "keys must be strings"));
            };
            let d = self.duration(&Item { key: Some(k), node: v, path: child(&ca.path, &key) }, false)?;
            out.insert(key, d);
        }
        Ok(out)
    }

    pub(super) fn api_server_fault(&self, item: &Item<'_>) -> R<ApiServerFault> {
        const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];
        let f = self.fields(item, "apiServer", &["verb", "resource", "code", "message", "latency", "times"], &[])?;
        let verb = match f.get("verb") {
            Some(v) => {
                let s = self.string(&v)?;
                if !VERBS.contains(&s.as_str()) {
                    return Err(self.err_at(
                        v.node,
                        &v.path,
                        format!("unknown verb {s:?}; allowed: {}", VERBS.join(", ")),
                    ));
                }
                Some(s)
            }
            None => None,
        };
        let code = f.get("code").map(|c| self.unsigned(&c, 400, 599)).transpose()?.map(|c| c as u16);
        let message = self.opt_string(&f, "message")?;
        if code.is_none()
            && let Some(m) = f.get("message")
        {
            return Err(self.err_at(m.anchor(), &m.path, "message is the error's text: it needs code"));
        }
        let latency = self.opt_duration(&f, "latency", true)?;
        if code.is_none() && latency.is_none() {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "an apiServer fault needs code (an HTTP status from 400 to 599), latency, or both",
            ));
        }
        let times = f.get("times").map(|t| self.unsigned(&t, 1, u64::MAX)).transpose()?;
        Ok(ApiServerFault { verb, resource: self.opt_nonempty(&f, "resource")?, code, message, latency, times })
    }

    pub(super) fn link_fault(&self, item: &Item<'_>) -> R<LinkFault> {
        let f = self.fields(item, "link", &["between", "delay", "loss", "down"], &[])?;
        let between = self.required(&f, "between", "two hosts: node names or cp (the control-plane host)")?;
        let hosts = self.list(&between, "two hosts")?;
        if hosts.len() != 2 {
            return Err(self.err_at(
                between.node,
                &between.path,
                format!("a link is between two hosts, found {}", hosts.len()),
            ));
        }
        let mut pair = Vec::with_capacity(2);
        for h in &hosts {
            pair.push(self.host(h, false)?);
        }
        if pair[0] == pair[1] {
            return Err(self.err_at(hosts[1].node, &hosts[1].path, "a link is between two different hosts"));
        }
        let delay = self.opt_duration(&f, "delay", true)?;
        let loss = match f.get("loss") {
            Some(l) => {
                let v = self.number(&l)?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(self.err_at(l.node, &l.path, "loss is in percent, from 0 to 100"));
                }
                Some(v)
            }
            None => None,
        };
        let down = self.opt_bool(&f, "down")?.unwrap_or(false);
        if delay.is_none() && loss.is_none_or(|l| l == 0.0) && !down {
            return Err(self.err_at(
                item.anchor(),
                &item.path,
                "a link fault needs at least one of delay, loss (above 0) or down: true",
            ));
        }
        let second = pair.pop().unwrap_or_default();
        let first = pair.pop().unwrap_or_default();
        Ok(LinkFault { between: (first, second), delay, loss, down })
    }

    pub(super) fn heal(&self, item: &Item<'_>) -> R<Heal> {
        let fault = if item.is_null() {
            None
        } else {
            let f = self.fields(item, "heal", &["fault"], &[])?;
            match f.get("fault") {
                Some(n) => {
                    let s = self.nonempty_string(&n)?;
                    if !self.faults.iter().any(|(x, _)| *x == s) {
                        let known: Vec<&str> = self.faults.iter().map(|(x, _)| x.as_str()).collect();
                        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                        return Err(self.err_at(
                            n.node,
                            &n.path,
                            format!("no earlier fault is named {s:?}; named faults before this heal: {known}"),
                        ));
                    }
                    Some(s)
                }
                None => None,
            }
        };
        if fault.is_none() && self.fault_count == 0 {
            return Err(self.err_at(item.anchor(), &item.path, "no fault comes before this heal"));
        }
        Ok(Heal { fault })
    }
}
