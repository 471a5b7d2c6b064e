//! The case catalog: ids, labels, required capabilities, topology and bodies.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::context::CaseCtx;

/// A label a case carries; filters select on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    /// Part of the node conformance set: asserts a node behaviour (the harness's own
    /// self-checks under `world/` do not carry it).
    Conformance,
    /// Breaks something on purpose (partition, restart, crash).
    Disruptive,
    /// Takes more than a few seconds even with compressed timings.
    Slow,
    /// Needs what the KubeletConfiguration's `nodekit:` block gives and upstream's has no field
    /// for: the compressed crash-loop or image-pull back-off, the world's node size, or an agent
    /// tunable (PLEG threshold, eviction observation period). Skipped for a `--node-agent` whose
    /// profile says it does not read the block.
    NodekitExtensions,
    /// Asserts what only the reference agent does (its warning events for fields it cannot
    /// apply, the layout of its root directory, its own log). Skipped with `--node-agent`.
    ReferenceAgent,
}

impl Label {
    pub const ALL: [Label; 5] = [
        Label::Conformance,
        Label::Disruptive,
        Label::Slow,
        Label::NodekitExtensions,
        Label::ReferenceAgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::Conformance => "Conformance",
            Label::Disruptive => "Disruptive",
            Label::Slow => "Slow",
            Label::NodekitExtensions => "NodekitExtensions",
            Label::ReferenceAgent => "ReferenceAgent",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a case needs from the machine or the target; checked before the case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `tcpdump` on PATH (to cross-check the harness's own pcaps).
    Tcpdump,
    /// `nft` on PATH.
    Nftables,
    /// `iptables-restore` on PATH.
    Iptables,
    /// A real `kubectl` on PATH.
    Kubectl,
}

impl Capability {
    pub fn binary(self) -> &'static str {
        match self {
            Capability::Tcpdump => "tcpdump",
            Capability::Nftables => "nft",
            Capability::Iptables => "iptables-restore",
            Capability::Kubectl => "kubectl",
        }
    }
}

/// Which hosts a case's world has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// cp, node-a, client.
    SingleNode,
    /// cp, node-a, node-b, client.
    TwoNodes,
}

/// Which runtime backends a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtimes {
    /// The case does not involve a container runtime.
    None,
    /// fake-cri only: the case drives fake-cri's fault controls, or does not depend on the runtime
    /// at all (heartbeats), so running it again on a real runtime would show nothing new.
    FakeOnly,
    /// Every runtime backend.
    All,
    /// Every runtime nodekit starts inside the world (fake-cri, containerd), not an external
    /// socket: the case looks at the runtime from the node host (its processes, its pod
    /// network), which a runtime started elsewhere does not share.
    Sealed,
    /// Every runtime nodekit starts that pulls images from the world's registry (containerd,
    /// runtime profiles); not fake-cri, which builds its images from the workload binary.
    Pulling,
    /// Every runtime nodekit starts whose PullImage brings a removed world image back: the
    /// pulling ones, and fake-cri (from its catalog); not a runtime profile that does not pull.
    PullsBack,
}

pub type BodyFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
pub type Body = fn(CaseCtx) -> BodyFuture;

/// One conformance case.
#[derive(Clone)]
pub struct Case {
    /// `area/behaviour`.
    pub id: &'static str,
    pub labels: &'static [Label],
    pub needs: &'static [Capability],
    pub topology: Topology,
    pub runtimes: Runtimes,
    pub body: Body,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Case {
    pub fn area(&self) -> &'static str {
        self.id.split('/').next().unwrap_or(self.id)
    }

    /// Why this case cannot run here, if it cannot.
    pub fn unmet_needs(&self) -> Option<String> {
        let missing: Vec<&str> = self
            .needs
            .iter()
            .filter(|c| !on_path(c.binary()))
            .map(|c| c.binary())
            .collect();
        if missing.is_empty() {
            None
        } else {
            Some(format!("needs {} on PATH (run ci/bootstrap)", missing.join(", ")))
        }
    }
}

/// Is `name` an executable in PATH (or in /usr/sbin, /sbin)?
pub fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(name).is_file())
}

/// Every case, in catalog order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(crate::cases::world::cases());
    cases.extend(crate::cases::runtime::cases());
    cases.extend(crate::cases::registration::cases());
    cases.extend(crate::cases::heartbeats::cases());
    cases.extend(crate::cases::pod_lifecycle::cases());
    cases.extend(crate::cases::probes::cases());
    cases.extend(crate::cases::packet_paths::cases());
    cases.extend(crate::cases::static_pods::cases());
    cases.extend(crate::cases::eviction::cases());
    cases.extend(crate::cases::kubelet_api::cases());
    cases.extend(crate::cases::node_failure::cases());
    cases
}

/// Look a case (or a hidden `bench/…` entry) up by id.
pub fn find(id: &str) -> Option<Case> {
    all().into_iter().chain(crate::benches::all()).find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels mean something: every label is carried by some case, `Conformance` by every case
    /// that asserts node behaviour and by none of the harness's self-checks.
    #[test]
    fn labels_mean_something() {
        let cases = all();
        for label in Label::ALL {
            assert!(cases.iter().any(|c| c.labels.contains(&label)), "no case carries {label}");
        }
        for c in &cases {
            let self_check = c.area() == "world";
            assert_eq!(c.labels.contains(&Label::Conformance), !self_check, "{}: labels {:?}", c.id, c.labels);
        }
    }

    #[test]
    fn ids_are_unique_and_area_slash_behaviour_paths() {
        let cases = all();
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate case ids");
        for id in ids {
            assert!(id.split('/').count() >= 2 && !id.split('/').any(str::is_empty) && !id.contains(' '), "bad id {id:?}");
        }
    }
}
