//! Deliberate defects, to show that the security cases catch a broken API server.
//!
//! Debug builds read `NODEKIT_APISERVER_FAULTS` (comma-separated names from [`Fault::ALL`])
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

impl Fault {
    pub const ALL: [Fault; 2] = [Fault::NodeAuthorizerOpen, Fault::NoNodeRestriction];

    pub fn name(self) -> &'static str {
        match self {
            Fault::NodeAuthorizerOpen => "node-authorizer-open",
            Fault::NoNodeRestriction => "no-node-restriction",
        }
    }
}

/// The faults named in `spec`; unknown names are returned separately.
pub fn parse(spec: &str) -> (Vec<Fault>, Vec<String>) {
    let mut on = Vec::new();
    let mut unknown = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Fault::ALL.iter().find(|f| f.name() == name) {
            Some(f) => on.push(*f),
            None => unknown.push(name.to_string()),
        }
    }
    (on, unknown)
}

fn enabled() -> &'static [Fault] {
    static ON: OnceLock<Vec<Fault>> = OnceLock::new();
    ON.get_or_init(|| {
        if !cfg!(debug_assertions) {
            return Vec::new();
        }
        let (on, unknown) = parse(&std::env::var(ENV).unwrap_or_default());
        if !unknown.is_empty() {
            let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
            tracing::error!(?unknown, known = ?names, "{ENV} names unknown faults; they are ignored");
        }
        if !on.is_empty() {
            tracing::warn!(faults = ?on, "deliberate faults are on: this API server is broken on purpose");
        }
        on
    })
}

/// Is `f` switched on (debug builds only)?
pub fn active(f: Fault) -> bool {
    enabled().contains(&f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_reports_unknown_ones() {
        let (on, unknown) = parse("no-node-restriction, ,bogus");
        assert_eq!(on, [Fault::NoNodeRestriction]);
        assert_eq!(unknown, ["bogus"]);
        for f in Fault::ALL {
            assert_eq!(parse(f.name()).0, [f]);
        }
    }
}
