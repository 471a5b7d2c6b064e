//! Shared helpers of the kernel tests: building states and running inside a fresh netns.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use node_proxy::model::{Endpoint, Protocol, ServicePort, ServicePortName, State};

pub fn spn(name: &str, proto: Protocol) -> ServicePortName {
    ServicePortName { namespace: "ns1".into(), name: name.into(), port: "p".into(), protocol: proto }
}

pub fn ep(ip: &str, port: u16, local: bool) -> Endpoint {
    Endpoint { ip: ip.parse().unwrap(), port, local }
}

/// A ClusterIP service port with cluster endpoints.
pub fn svc(name: &str, cip: &str, port: u16, eps: Vec<Endpoint>) -> ServicePort {
    ServicePort::cluster(spn(name, Protocol::Tcp), cip.parse().unwrap(), port, eps)
}

pub fn state(sps: Vec<ServicePort>) -> State {
    let mut s = State::default();
    for sp in sps {
        s.services.insert(sp.name.clone(), sp);
    }
    s
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Runs a shell command (in the calling thread's namespace) and returns stdout; panics with
/// stderr on failure (tests only).
pub fn sh(cmd: &str) -> String {
    let out = std::process::Command::new("sh").args(["-c", cmd]).output().expect("spawn sh");
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
