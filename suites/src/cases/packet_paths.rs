//! Area `packet-paths`: service traffic through the reference proxy, asserted from packets
//! captured in the world (ClusterIP and NodePort DNAT with masquerade, spreading, source
//! preservation pod → pod, hairpin, no-endpoints reject, readiness, session affinity,
//! externalTrafficPolicy Local, a terminating endpoint that still serves, UDP and its
//! conntrack cleanup), each in nftables and in
//! iptables mode, with real pods run by the reference agent.
//!
//! This file holds the catalog table; the fixture lives in `packet_paths_env.rs`, sockets,
//! requests and captures in `packet_paths_net.rs`, and the bodies in `packet_paths_basic.rs`,
//! `packet_paths_policy.rs` and `packet_paths_udp.rs`.

use harness::backend::ProxyMode;

use crate::catalog::{BodyFuture, Capability, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;

#[path = "packet_paths_basic.rs"]
mod basic;
#[path = "packet_paths_drain.rs"]
mod drain;
#[path = "packet_paths_env.rs"]
mod env;
#[path = "packet_paths_heal.rs"]
mod heal;
#[path = "packet_paths_net.rs"]
mod net;
#[path = "packet_paths_policy.rs"]
mod policy;
#[path = "packet_paths_security.rs"]
mod security;
#[path = "packet_paths_terminating.rs"]
mod terminating;
#[path = "packet_paths_udp.rs"]
mod udp;

/// The proxy mode a body runs with, as a type so that one generic body gives two `fn` entries.
pub(crate) trait Mode: Send + 'static {
    const MODE: ProxyMode;
}

/// nftables mode.
pub(crate) struct Nft;
/// iptables mode.
pub(crate) struct Ipt;

impl Mode for Nft {
    const MODE: ProxyMode = ProxyMode::Nftables;
}
impl Mode for Ipt {
    const MODE: ProxyMode = ProxyMode::Iptables;
}

const C: &[Label] = &[Label::Conformance];
const SLOW: &[Label] = &[Label::Conformance, Label::Slow];

/// Expands `behaviour => body, topology, runtimes, labels, needs;` rows into one entry per
/// proxy mode: `packet-paths/nftables/<behaviour>` then `packet-paths/iptables/<behaviour>`.
macro_rules! table {
    ($( $b:literal => $m:ident :: $f:ident, $topo:ident, $rt:ident, $labels:expr, [$($need:ident),*]; )*) => {
        vec![
            $( Case {
                id: concat!("packet-paths/nftables/", $b),
                labels: $labels,
                needs: &[Capability::Nftables $(, Capability::$need)*],
                topology: Topology::$topo,
                runtimes: Runtimes::$rt,
                body: $m::$f::<Nft> as fn(CaseCtx) -> BodyFuture,
            }, )*
            $( Case {
                id: concat!("packet-paths/iptables/", $b),
                labels: $labels,
                needs: &[Capability::Iptables $(, Capability::$need)*],
                topology: Topology::$topo,
                runtimes: Runtimes::$rt,
                body: $m::$f::<Ipt> as fn(CaseCtx) -> BodyFuture,
            }, )*
        ]
    };
}

/// `nodekit bench heal` (a hidden entry; see `packet_paths_heal.rs`).
pub fn heal_bench(ctx: CaseCtx) -> BodyFuture {
    heal::bench(ctx)
}

/// (id, body, needs) of a node-failure case.
type HealRow = (&'static str, fn(CaseCtx) -> BodyFuture, &'static [Capability]);

pub fn cases() -> Vec<Case> {
    let mut all = table! {
        "nodeport-dnat-spread" => basic::nodeport_dnat_spread, SingleNode, All, C, [];
        "clusterip-client-path-tshark" => basic::clusterip_client_path, SingleNode, All, C, [];
        "clusterip-pod-to-pod-source-preserved" => basic::pod_to_pod, TwoNodes, All, C, [];
        "hairpin-masquerade" => basic::hairpin, SingleNode, All, C, [];
        "no-endpoints-reject" => policy::no_endpoints, SingleNode, All, C, [];
        "readiness-stops-new-connections" => policy::readiness, SingleNode, All, C, [];
        "session-affinity-clientip" => policy::session_affinity, SingleNode, All, SLOW, [];
        "external-traffic-policy-local" => policy::external_local, TwoNodes, All, C, [];
        "udp-round-trip-conntrack-cleanup" => udp::udp_conntrack, SingleNode, All, C, [];
        "terminating-endpoint-serves-until-a-ready-one-exists" => terminating::terminating_serving, SingleNode, All, C, [];
    };
    // Area security, here for the cluster fixture it shares.
    all.push(Case {
        id: "security/pod-token-reaches-the-api-through-the-service-and-is-held-to-rbac",
        labels: C,
        needs: &[Capability::Nftables],
        topology: Topology::SingleNode,
        runtimes: Runtimes::All,
        body: security::pod_token_reaches_the_api as fn(CaseCtx) -> BodyFuture,
    });
    all.push(Case {
        id: "security/node-credentials-are-confined-to-their-node",
        labels: C,
        needs: &[Capability::Nftables],
        topology: Topology::TwoNodes,
        runtimes: Runtimes::FakeOnly,
        body: security::node_credentials_confined,
    });
    all.push(Case {
        id: "security/kubelet-api-serves-only-authorized-callers",
        labels: C,
        needs: &[Capability::Nftables],
        topology: Topology::SingleNode,
        runtimes: Runtimes::FakeOnly,
        body: security::kubelet_api_authorizes,
    });
    // Area node-failure, here for the packet-path fixture it shares.
    let heal: [HealRow; 4] = [
        ("node-failure/nftables/node-killed-pods-replaced-service-heals", heal::node_killed::<Nft>, &[Capability::Nftables]),
        ("node-failure/iptables/node-killed-pods-replaced-service-heals", heal::node_killed::<Ipt>, &[Capability::Iptables]),
        ("node-failure/nftables/partitioned-node-heals-and-kills-deleted-pods", heal::node_partitioned::<Nft>, &[Capability::Nftables]),
        ("node-failure/iptables/partitioned-node-heals-and-kills-deleted-pods", heal::node_partitioned::<Ipt>, &[Capability::Iptables]),
    ];
    for (id, body, needs) in heal {
        all.push(Case { id, labels: C, needs, topology: Topology::TwoNodes, runtimes: Runtimes::All, body });
    }
    all.push(Case {
        id: "node-failure/kubectl-drain-honours-the-budget-and-leaves-daemonsets",
        labels: C,
        needs: &[Capability::Nftables, Capability::Kubectl],
        topology: Topology::TwoNodes,
        // Eviction, budgets and scheduling are the control plane's; the runtime only stops
        // and starts pause containers.
        runtimes: Runtimes::FakeOnly,
        body: drain::drain as fn(CaseCtx) -> BodyFuture,
    });
    all
}
