//! Deliberate defects, to show that the security cases catch a broken API server.
//!
//! Debug builds read `NODEKIT_APISERVER_FAULTS` (comma-separated fault names)
//! once; release builds never read it and every fault is off. `ci/fault-check` runs the
//! security area against each fault and expects failures.

/// The variable debug builds read.
pub const ENV: &str = "NODEKIT_APISERVER_FAULTS";

/// One deliberate defect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The Node authorizer lets a node read every pod, secret and configmap, not only those
    /// of the pods bound to it.
    NodeAuthorizerOpen,
    /// NodeRestriction admits every write by a node (another node's object, its own role label).
    NoNodeRestriction,
}

impl fault_switch::Fault for Fault {
    const ALL: &'static [Fault] = &[Fault::NodeAuthorizerOpen, Fault::NoNodeRestriction];

    fn name(self) -> &'static str {
        match self {
            Fault::NodeAuthorizerOpen => "node-authorizer-open",
            Fault::NoNodeRestriction => "no-node-restriction",
        }
    }
}

static SWITCH: fault_switch::Switch<Fault> = fault_switch::Switch::new(ENV, "API server");

/// Is `f` switched on (debug builds only)?
pub fn active(f: Fault) -> bool {
    SWITCH.active(f)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_fault_is_named() {
        assert!(fault_switch::Switch::<super::Fault>::names_round_trip());
    }
}
