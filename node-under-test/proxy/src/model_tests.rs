//! Unit tests of the model: endpoint selection per upstream rules, no kernel involved.

use super::*;

fn svc(name: &str) -> ServiceIn {
    ServiceIn {
        namespace: "ns".into(),
        name: name.into(),
        cluster_ip: Some("10.96.0.10".parse().unwrap()),
        ports: vec![ServicePortIn { name: "http".into(), protocol: Protocol::Tcp, port: 80, node_port: Some(30080) }],
        external_ips: vec![],
        load_balancer_ips: vec![],
        node_port_type: false,
        internal_traffic_local: false,
        external_traffic_local: false,
        affinity_timeout: None,
    }
}

fn ep(ip: &str, ready: bool, serving: bool, terminating: bool, node: &str) -> EndpointIn {
    EndpointIn { ip: ip.parse().unwrap(), ready, serving, terminating, node_name: Some(node.into()) }
}

fn slice(name: &str, svc: &str, eps: Vec<EndpointIn>) -> SliceIn {
    SliceIn {
        namespace: "ns".into(),
        name: name.into(),
        service: svc.into(),
        ports: vec![SlicePortIn { name: "http".into(), protocol: Protocol::Tcp, port: 8080 }],
        endpoints: eps,
    }
}

fn one(svc: &ServiceIn, slices: &[SliceIn]) -> ServicePort {
    let st = State::compute(std::slice::from_ref(svc), slices, "node-a");
    assert_eq!(st.services.len(), 1);
    st.services.into_values().next().unwrap()
}

fn ips(eps: &[Endpoint]) -> Vec<String> {
    eps.iter().map(|e| e.to_string()).collect()
}

#[test]
fn ready_endpoints_are_used_and_not_ready_ignored() {
    let s = svc("web");
    let sp = one(
        &s,
        &[slice("web-1", "web", vec![
            ep("10.244.1.3", true, true, false, "node-a"),
            ep("10.244.2.3", true, true, false, "node-b"),
            ep("10.244.2.4", false, false, false, "node-b"),
        ])],
    );
    assert_eq!(ips(&sp.cluster_endpoints), ["10.244.1.3:8080", "10.244.2.3:8080"]);
    assert!(sp.local_endpoints.is_empty(), "Cluster policy does not compute local endpoints");
    assert_eq!(sp.internal_refusal(), None);
    assert_eq!(sp.node_port, None, "ClusterIP type has no NodePort even if the field is set");
    assert_eq!(sp.name.to_string(), "ns/web:http");
    assert!(sp.cluster_endpoints[0].local && !sp.cluster_endpoints[1].local);
}

#[test]
fn serving_terminating_only_when_no_ready_endpoint() {
    let s = svc("web");
    let term = ep("10.244.1.9", false, true, true, "node-a");
    let sp = one(&s, &[slice("a", "web", vec![term.clone(), ep("10.244.1.3", true, true, false, "node-b")])]);
    assert_eq!(ips(&sp.cluster_endpoints), ["10.244.1.3:8080"]);
    let sp = one(&s, &[slice("a", "web", vec![term.clone(), ep("10.244.1.8", false, false, true, "node-a")])]);
    assert_eq!(ips(&sp.cluster_endpoints), ["10.244.1.9:8080"], "serving+terminating fallback");
    assert!(sp.has_any_endpoints);
    let sp = one(&s, &[slice("a", "web", vec![ep("10.244.1.8", false, false, true, "node-a")])]);
    assert!(sp.cluster_endpoints.is_empty());
    assert_eq!(sp.internal_refusal(), Some(Refusal::Reject));
}

#[test]
fn no_slices_means_reject_for_internal_and_external() {
    let mut s = svc("web");
    s.node_port_type = true;
    let sp = one(&s, &[]);
    assert_eq!(sp.node_port, Some(30080));
    assert_eq!(sp.internal_refusal(), Some(Refusal::Reject));
    assert_eq!(sp.external_refusal(), Some(Refusal::Reject));
}

#[test]
fn external_traffic_policy_local_uses_only_local_endpoints_and_drops_without_them() {
    let mut s = svc("web");
    s.node_port_type = true;
    s.external_traffic_local = true;
    let sp = one(&s, &[slice("a", "web", vec![
        ep("10.244.1.3", true, true, false, "node-a"),
        ep("10.244.2.3", true, true, false, "node-b"),
    ])]);
    assert!(sp.external_local);
    assert_eq!(ips(sp.external_endpoints()), ["10.244.1.3:8080"]);
    assert_eq!(ips(sp.internal_endpoints()), ["10.244.1.3:8080", "10.244.2.3:8080"]);
    let sp = one(&s, &[slice("a", "web", vec![ep("10.244.2.3", true, true, false, "node-b")])]);
    assert_eq!(sp.external_refusal(), Some(Refusal::Drop), "no local endpoint → drop");
    assert_eq!(sp.internal_refusal(), None, "cluster traffic still works");
}

#[test]
fn external_policy_local_is_ignored_for_cluster_ip_services() {
    let mut s = svc("web");
    s.external_traffic_local = true;
    let sp = one(&s, &[slice("a", "web", vec![ep("10.244.2.3", true, true, false, "node-b")])]);
    assert!(!sp.external_local);
    assert!(!sp.uses_local_endpoints());
}

#[test]
fn internal_traffic_policy_local() {
    let mut s = svc("web");
    s.internal_traffic_local = true;
    let sp = one(&s, &[slice("a", "web", vec![
        ep("10.244.1.3", true, true, false, "node-a"),
        ep("10.244.2.3", true, true, false, "node-b"),
    ])]);
    assert_eq!(ips(sp.internal_endpoints()), ["10.244.1.3:8080"]);
    assert!(sp.cluster_endpoints.is_empty(), "cluster endpoints unused");
    let sp = one(&s, &[slice("a", "web", vec![ep("10.244.2.3", true, true, false, "node-b")])]);
    assert_eq!(sp.internal_refusal(), Some(Refusal::Drop));
}

#[test]
fn endpoints_merge_across_slices_and_match_port_name_and_protocol() {
    let mut s = svc("web");
    s.ports.push(ServicePortIn { name: "dns".into(), protocol: Protocol::Udp, port: 53, node_port: None });
    let mut b = slice("web-2", "web", vec![ep("10.244.1.4", true, true, false, "node-a")]);
    b.ports.push(SlicePortIn { name: "dns".into(), protocol: Protocol::Udp, port: 5353 });
    let other = slice("x", "other", vec![ep("10.244.9.9", true, true, false, "node-a")]);
    let st = State::compute(
        &[s],
        &[slice("web-1", "web", vec![ep("10.244.1.3", true, true, false, "node-a")]), b, other],
        "node-a",
    );
    assert_eq!(st.services.len(), 2);
    let http = st.services.values().find(|p| p.port == 80).unwrap();
    assert_eq!(ips(&http.cluster_endpoints), ["10.244.1.3:8080", "10.244.1.4:8080"]);
    let dns = st.services.values().find(|p| p.port == 53).unwrap();
    assert_eq!(ips(&dns.cluster_endpoints), ["10.244.1.4:5353"]);
    assert_eq!(dns.name.protocol, Protocol::Udp);
}

#[test]
fn headless_services_are_skipped_and_external_ips_merged() {
    let mut s = svc("headless");
    s.cluster_ip = None;
    assert!(State::compute(&[s], &[], "node-a").services.is_empty());
    let mut s = svc("lb");
    s.external_ips = vec!["192.0.2.2".parse().unwrap(), "192.0.2.1".parse().unwrap()];
    s.load_balancer_ips = vec!["192.0.2.1".parse().unwrap(), "198.51.100.7".parse().unwrap()];
    let sp = one(&s, &[]);
    let ext: Vec<String> = sp.external_ips.iter().map(|i| i.to_string()).collect();
    assert_eq!(ext, ["192.0.2.1", "192.0.2.2", "198.51.100.7"]);
    assert!(sp.externally_accessible());
}
