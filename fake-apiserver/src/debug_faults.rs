//! Deliberate defects, to show that the security cases catch a broken API server.
//!
//! Debug builds read `NODEKIT_APISERVER_FAULTS` (comma-separated fault names)
//! once; release builds never read it and every fault is off. `ci/fault-check` runs the
//! security area against each fault and expects failures.

use std::sync::OnceLock;

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

fn enabled() -> &'static [Fault] {
    static ON: OnceLock<Vec<Fault>> = OnceLock::new();
    ON.get_or_init(|| fault_switch::from_env(ENV, "API server"))
}

/// Is `f` switched on (debug builds only)?
pub fn active(f: Fault) -> bool {
    enabled().contains(&f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fault_switch::Fault as _;

    #[test]
    fn every_fault_is_named() {
        for f in <Fault as fault_switch::Fault>::ALL {
            assert_eq!(fault_switch::parse::<Fault>(f.name()).0, [*f]);
        }
    }
}
