//! Conversion of API objects (k8s-openapi) into the model's plain inputs.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{EndpointIn, Protocol, ServiceIn, ServicePortIn, SliceIn, SlicePortIn};
use crate::names::nft_safe;

/// Label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Upstream default sessionAffinity ClientIP timeout (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

fn v4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// Converts a Service; `None` when it has no name / namespace or unusable names.
pub fn service(svc: &Service) -> Option<ServiceIn> {
    let namespace = svc.metadata.namespace.clone()?;
    let name = svc.metadata.name.clone()?;
    if !nft_safe(&namespace) || !nft_safe(&name) {
        return None;
    }
    let spec = svc.spec.clone().unwrap_or_default();
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    let cluster_ip = if ty == "ExternalName" {
        None
    } else {
        let ips = spec.cluster_ips.clone().unwrap_or_default();
        ips.iter().map(String::as_str).chain(spec.cluster_ip.as_deref()).find_map(v4)
    };
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let name = p.name.clone().unwrap_or_default();
            if !name.is_empty() && !nft_safe(&name) {
                return None;
            }
            Some(ServicePortIn {
                name,
                protocol: Protocol::parse(p.protocol.as_deref())?,
                port: u16::try_from(p.port).ok().filter(|p| *p != 0)?,
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()),
            })
        })
        .collect();
    let lb = ty == "LoadBalancer";
    let load_balancer_ips = if lb {
        svc.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
            .filter_map(|i| i.ip.as_deref().and_then(v4))
            .collect()
    } else {
        Vec::new()
    };
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
    });
    Some(ServiceIn {
        namespace,
        name,
        cluster_ip,
        ports,
        external_ips: spec.external_ips.iter().flatten().filter_map(|s| v4(s)).collect(),
        load_balancer_ips,
        node_port_type: ty == "NodePort" || lb,
        internal_traffic_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
        external_traffic_local: spec.external_traffic_policy.as_deref() == Some("Local"),
        affinity_timeout,
    })
}

/// Converts an IPv4 EndpointSlice; `None` for other address types or unlabelled slices.
pub fn slice(es: &EndpointSlice) -> Option<SliceIn> {
    if es.address_type != "IPv4" {
        return None;
    }
    let namespace = es.metadata.namespace.clone()?;
    let name = es.metadata.name.clone()?;
    let service = es.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?.clone();
    let ports = es
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(SlicePortIn {
                name: p.name.clone().unwrap_or_default(),
                protocol: Protocol::parse(p.protocol.as_deref())?,
                port: u16::try_from(p.port?).ok().filter(|p| *p != 0)?,
            })
        })
        .collect();
    let endpoints = es
        .endpoints
        .iter()
        .filter_map(|e| {
            let ip = e.addresses.first().and_then(|a| v4(a))?;
            let c = e.conditions.clone().unwrap_or_default();
            let ready = c.ready.unwrap_or(true);
            Some(EndpointIn {
                ip,
                ready,
                serving: c.serving.unwrap_or(ready),
                terminating: c.terminating.unwrap_or(false),
                node_name: e.node_name.clone(),
            })
        })
        .collect();
    Some(SliceIn { namespace, name, service, ports, endpoints })
}

/// The fields of this node the rules depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub pod_cidr: Option<String>,
    pub internal_ip: Option<Ipv4Addr>,
}

pub fn node(n: &Node) -> NodeInfo {
    let pod_cidr = n.spec.as_ref().and_then(|s| {
        s.pod_cidrs.iter().flatten().find(|c| !c.contains(':')).cloned().or_else(|| s.pod_cidr.clone())
    });
    let internal_ip = n
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| v4(&a.address));
    NodeInfo { pod_cidr, internal_ip }
}
