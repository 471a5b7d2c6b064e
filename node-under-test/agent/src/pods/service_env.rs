//! Service environment variables, as upstream's kubelet gives every container
//! (`pkg/kubelet/kubelet_pods.go` `getServiceEnvVarMap`, `pkg/kubelet/envvars/envvars.go`):
//! the `kubernetes` Service of namespace `default` always, and every Service of the pod's own
//! namespace when `enableServiceLinks` is on (the default); Services without a cluster IP
//! (headless) give none. A container's own variables win over these.

use std::collections::BTreeMap;

/// What the variables of one Service are made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    pub cluster_ip: String,
    /// (name, port, protocol) in spec order.
    pub ports: Vec<(String, i32, String)>,
}

impl ServiceInfo {
    pub fn of(s: &k8s_openapi::api::core::v1::Service) -> Option<ServiceInfo> {
        let spec = s.spec.as_ref()?;
        Some(ServiceInfo {
            namespace: s.metadata.namespace.clone().unwrap_or_default(),
            name: s.metadata.name.clone().unwrap_or_default(),
            cluster_ip: spec.cluster_ip.clone().unwrap_or_default(),
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| (p.name.clone().unwrap_or_default(), p.port, p.protocol.clone().unwrap_or_default()))
                .collect(),
        })
    }

    /// Upstream's `IsServiceIPSet`: a cluster IP that is neither empty nor `None`.
    fn ip_set(&self) -> bool {
        !self.cluster_ip.is_empty() && self.cluster_ip != "None"
    }
}

/// The Services of the `default` namespace every container gets (upstream's master services).
const MASTER_SERVICES: &[&str] = &["kubernetes"];

/// Upstream's `makeEnvVariableName`: upper case, `-` as `_`.
fn var_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

/// The service variables of a container of a pod in `namespace`, by name.
pub fn service_env<'a>(services: impl IntoIterator<Item = &'a ServiceInfo>, namespace: &str, enable_service_links: bool) -> BTreeMap<String, String> {
    let mut chosen: BTreeMap<&str, &ServiceInfo> = BTreeMap::new();
    for s in services.into_iter().filter(|s| s.ip_set() && !s.ports.is_empty()) {
        if s.namespace == "default" && MASTER_SERVICES.contains(&s.name.as_str()) {
            chosen.entry(s.name.as_str()).or_insert(s);
        } else if s.namespace == namespace && enable_service_links {
            chosen.insert(s.name.as_str(), s);
        }
    }
    let mut env = BTreeMap::new();
    for s in chosen.values() {
        let prefix = var_name(&s.name);
        env.insert(format!("{prefix}_SERVICE_HOST"), s.cluster_ip.clone());
        env.insert(format!("{prefix}_SERVICE_PORT"), s.ports[0].1.to_string());
        for (name, port, _) in &s.ports {
            if !name.is_empty() {
                env.insert(format!("{prefix}_SERVICE_PORT_{}", var_name(name)), port.to_string());
            }
        }
        // Docker's link variables.
        for (i, (_, port, protocol)) in s.ports.iter().enumerate() {
            let protocol = if protocol.is_empty() { "TCP" } else { protocol.as_str() };
            let host_port = if s.cluster_ip.contains(':') { format!("[{}]:{port}", s.cluster_ip) } else { format!("{}:{port}", s.cluster_ip) };
            let url = format!("{}://{host_port}", protocol.to_lowercase());
            if i == 0 {
                env.insert(format!("{prefix}_PORT"), url.clone());
            }
            let port_prefix = format!("{prefix}_PORT_{port}_{}", protocol.to_uppercase());
            env.insert(format!("{port_prefix}_PROTO"), protocol.to_lowercase());
            env.insert(format!("{port_prefix}_PORT"), port.to_string());
            env.insert(format!("{port_prefix}_ADDR"), s.cluster_ip.clone());
            env.insert(port_prefix, url);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ns: &str, name: &str, ip: &str, ports: &[(&str, i32, &str)]) -> ServiceInfo {
        ServiceInfo {
            namespace: ns.into(),
            name: name.into(),
            cluster_ip: ip.into(),
            ports: ports.iter().map(|(n, p, proto)| (n.to_string(), *p, proto.to_string())).collect(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Upstream's `envvars_test.go` cases: the first port's names, named ports, Docker's link
    /// variables with the protocol in lower and upper case, dashes in names.
    #[test]
    fn variables_of_a_service_are_upstreams() {
        let s = svc("ns", "foo-bar", "1.2.3.4", &[("", 8080, "TCP")]);
        assert_eq!(
            service_env([&s], "ns", true),
            env(&[
                ("FOO_BAR_SERVICE_HOST", "1.2.3.4"),
                ("FOO_BAR_SERVICE_PORT", "8080"),
                ("FOO_BAR_PORT", "tcp://1.2.3.4:8080"),
                ("FOO_BAR_PORT_8080_TCP", "tcp://1.2.3.4:8080"),
                ("FOO_BAR_PORT_8080_TCP_PROTO", "tcp"),
                ("FOO_BAR_PORT_8080_TCP_PORT", "8080"),
                ("FOO_BAR_PORT_8080_TCP_ADDR", "1.2.3.4"),
            ])
        );
        let s = svc("ns", "abc-123", "5.6.7.8", &[("u-d-p", 8081, "UDP"), ("t-c-p", 8083, "TCP")]);
        let got = service_env([&s], "ns", true);
        assert_eq!(got["ABC_123_SERVICE_PORT"], "8081");
        assert_eq!(got["ABC_123_SERVICE_PORT_U_D_P"], "8081");
        assert_eq!(got["ABC_123_SERVICE_PORT_T_C_P"], "8083");
        assert_eq!(got["ABC_123_PORT"], "udp://5.6.7.8:8081");
        assert_eq!(got["ABC_123_PORT_8083_TCP"], "tcp://5.6.7.8:8083");
        assert_eq!(got["ABC_123_PORT_8081_UDP_PROTO"], "udp");
        assert_eq!(got.len(), 2 + 2 + 1 + 4 * 2);
        let v6 = svc("ns", "six", "fd00::1", &[("", 53, "UDP")]);
        assert_eq!(service_env([&v6], "ns", true)["SIX_PORT"], "udp://[fd00::1]:53");
    }

    /// Catches service variables leaking across namespaces, headless Services giving
    /// variables, or `enableServiceLinks: false` dropping the `kubernetes` Service's.
    #[test]
    fn which_services_a_pod_gets() {
        let api = svc("default", "kubernetes", "10.96.0.1", &[("https", 443, "TCP")]);
        let own = svc("team", "web", "10.96.0.20", &[("", 80, "TCP")]);
        let other = svc("elsewhere", "db", "10.96.0.30", &[("", 5432, "TCP")]);
        let headless = svc("team", "headless", "None", &[("", 80, "TCP")]);
        let all = [&api, &own, &other, &headless];
        let got = service_env(all, "team", true);
        assert_eq!(got["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
        assert_eq!(got["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert_eq!(got["WEB_SERVICE_HOST"], "10.96.0.20");
        assert!(!got.keys().any(|k| k.starts_with("DB_") || k.starts_with("HEADLESS_")), "{got:?}");
        let off = service_env(all, "team", false);
        assert!(off.contains_key("KUBERNETES_SERVICE_HOST") && !off.contains_key("WEB_SERVICE_HOST"), "{off:?}");
    }
}
