//! ClusterIP and NodePort allocation for Services.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::Value;

use crate::error::{ApiError, ApiResult, Cause};

pub const NODE_PORT_MIN: u16 = 30000;
pub const NODE_PORT_MAX: u16 = 32767;

/// Allocator state for one API server.
#[derive(Debug, Clone)]
pub struct Allocator {
    base: u32,
    size: u32,
    next: u32,
    used_ips: HashSet<u32>,
    next_port: u16,
    used_ports: HashSet<u16>,
}

/// Parse "a.b.c.d/len" into (network base, size).
pub fn parse_cidr(cidr: &str) -> Option<(u32, u32)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    if !(1..=30).contains(&len) {
        return None;
    }
    let size = 1u32 << (32 - len);
    Some((u32::from(ip) & !(size - 1), size))
}

fn invalid_svc(name: &str, cause: Cause) -> ApiError {
    ApiError::invalid("", "Service", name, vec![cause])
}

impl Allocator {
    pub fn new(cidr: &str) -> Option<Allocator> {
        let (base, size) = parse_cidr(cidr)?;
        Some(Allocator { base, size, next: 1, used_ips: HashSet::new(), next_port: NODE_PORT_MIN, used_ports: HashSet::new() })
    }

    fn offset_of(&self, ip: &str) -> Option<u32> {
        let ip: Ipv4Addr = ip.parse().ok()?;
        let v = u32::from(ip);
        (v > self.base && v < self.base + self.size - 1).then(|| v - self.base)
    }

    fn alloc_ip(&mut self) -> Option<String> {
        let usable = self.size - 2;
        for i in 0..usable {
            let off = 1 + (self.next - 1 + i) % usable;
            if !self.used_ips.contains(&off) {
                self.used_ips.insert(off);
                self.next = 1 + off % usable;
                return Some(Ipv4Addr::from(self.base + off).to_string());
            }
        }
        None
    }

    fn alloc_port(&mut self) -> Option<u16> {
        let span = (NODE_PORT_MAX - NODE_PORT_MIN + 1) as u32;
        for i in 0..span {
            let p = NODE_PORT_MIN + (((self.next_port - NODE_PORT_MIN) as u32 + i) % span) as u16;
            if !self.used_ports.contains(&p) {
                self.used_ports.insert(p);
                self.next_port = if p == NODE_PORT_MAX { NODE_PORT_MIN } else { p + 1 };
                return Some(p);
            }
        }
        None
    }

    /// Allocate for a new service, or for an updated one (`old` is the stored object).
    pub fn allocate(&mut self, svc: &mut Value, old: Option<&Value>) -> ApiResult<()> {
        let name = svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        let ty = svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
        let old_ip = old.and_then(|o| o.pointer("/spec/clusterIP")).and_then(Value::as_str).map(str::to_string);
        let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
        if ty == "ExternalName" {
            return Ok(());
        }
        let requested = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
        let ip = if let Some(o) = &old_ip {
            if requested.is_empty() { o.clone() } else { requested }
        } else if requested.is_empty() {
            self.alloc_ip().ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?
        } else if requested == "None" {
            requested
        } else {
            let off = self.offset_of(&requested).ok_or_else(|| {
                invalid_svc(&name, Cause::invalid("spec.clusterIPs", &requested, "failed to allocate IP: the provided IP is not in the valid range"))
            })?;
            if !self.used_ips.insert(off) {
                return Err(invalid_svc(&name, Cause::invalid("spec.clusterIPs", &requested, "failed to allocate IP: provided IP is already allocated")));
            }
            requested
        };
        spec.insert("clusterIP".into(), Value::String(ip.clone()));
        spec.insert("clusterIPs".into(), serde_json::json!([ip]));
        let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
        let old_ports: Vec<(i64, u16)> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get("port")?.as_i64()?, p.get("nodePort")?.as_u64()? as u16)))
            .collect();
        let mut kept: Vec<u16> = Vec::new();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (i, p) in ports.iter_mut().enumerate() {
                let Some(pm) = p.as_object_mut() else { continue };
                if !wants_node_ports {
                    pm.remove("nodePort");
                    continue;
                }
                let port = pm.get("port").and_then(Value::as_i64).unwrap_or(0);
                let req = pm.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
                let np = if req == 0 {
                    match old_ports.iter().find(|(op, _)| *op == port) {
                        Some((_, np)) => *np,
                        None => self.alloc_port().ok_or_else(|| ApiError::internal("failed to allocate a nodePort: range is full"))?,
                    }
                } else {
                    let np = req as u16;
                    if req > u16::MAX as u64 || !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&np) {
                        return Err(invalid_svc(&name, Cause::invalid(format!("spec.ports[{i}].nodePort"), &req.to_string(), "provided port is not in the valid range. The range of valid ports is 30000-32767")));
                    }
                    let mine = old_ports.iter().any(|(_, o)| *o == np);
                    if !mine && !self.used_ports.insert(np) || kept.contains(&np) {
                        return Err(invalid_svc(&name, Cause::invalid(format!("spec.ports[{i}].nodePort"), &req.to_string(), "provided port is already allocated")));
                    }
                    np
                };
                kept.push(np);
                pm.insert("nodePort".into(), Value::from(np));
            }
        }
        for (_, np) in old_ports {
            if !kept.contains(&np) {
                self.used_ports.remove(&np);
            }
        }
        Ok(())
    }

    /// Release everything a deleted service held.
    pub fn release(&mut self, svc: &Value) {
        if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str)
            && let Some(off) = self.offset_of(ip)
        {
            self.used_ips.remove(&off);
        }
        for p in svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten() {
            if let Some(np) = p.get("nodePort").and_then(Value::as_u64) {
                self.used_ports.remove(&(np as u16));
            }
        }
    }
}
