//! Deliberate defects, to show that the suites catch a broken component.
//!
//! A component lists its faults as an enum implementing [`Fault`] and asks a static
//! [`Switch`] whether one is on: debug builds read the component's variable (comma-separated
//! fault names) once; release builds never read it and every fault is off.

use std::fmt::Debug;
use std::sync::OnceLock;

/// One component's deliberate defects.
pub trait Fault: Copy + Debug + PartialEq + 'static {
    /// Every fault of the component.
    const ALL: &'static [Self];
    /// The name the variable uses.
    fn name(self) -> &'static str;
}

/// The faults named in `spec`; unknown names are returned separately.
pub fn parse<F: Fault>(spec: &str) -> (Vec<F>, Vec<String>) {
    let mut on = Vec::new();
    let mut unknown = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match F::ALL.iter().find(|f| f.name() == name) {
            Some(f) => on.push(*f),
            None => unknown.push(name.to_string()),
        }
    }
    (on, unknown)
}

/// The faults switched on by variable `env` (none in release builds), logging unknown names
/// and, when any is on, that `component` is broken on purpose.
pub fn from_env<F: Fault>(env: &str, component: &str) -> Vec<F> {
    if !cfg!(debug_assertions) {
        return Vec::new();
    }
    let (on, unknown) = parse::<F>(&std::env::var(env).unwrap_or_default());
    if !unknown.is_empty() {
        let names: Vec<&str> = F::ALL.iter().map(|f| f.name()).collect();
        tracing::error!(?unknown, known = ?names, "{env} names unknown faults; they are ignored");
    }
    if !on.is_empty() {
        tracing::warn!(faults = ?on, "deliberate faults are on: this {component} is broken on purpose");
    }
    on
}

/// The switched-on faults of one component, read from its variable on first use.
pub struct Switch<F> {
    env: &'static str,
    component: &'static str,
    on: OnceLock<Vec<F>>,
}

impl<F: Fault> Switch<F> {
    /// A switch reading `env`; its log lines call the component `component`.
    pub const fn new(env: &'static str, component: &'static str) -> Switch<F> {
        Switch { env, component, on: OnceLock::new() }
    }

    /// Is `f` switched on (debug builds only)?
    pub fn active(&self, f: F) -> bool {
        self.on.get_or_init(|| from_env(self.env, self.component)).contains(&f)
    }

    /// Every fault is named by its `name` (for the components' tests).
    pub fn names_round_trip() -> bool {
        F::ALL.iter().all(|f| parse::<F>(f.name()).0 == [*f])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Demo {
        A,
        B,
    }

    impl Fault for Demo {
        const ALL: &'static [Demo] = &[Demo::A, Demo::B];
        fn name(self) -> &'static str {
            match self {
                Demo::A => "a-fault",
                Demo::B => "b-fault",
            }
        }
    }

    #[test]
    fn parses_names_and_reports_unknown_ones() {
        let (on, unknown) = parse::<Demo>("b-fault, a-fault,,bogus");
        assert_eq!(on, [Demo::B, Demo::A]);
        assert_eq!(unknown, ["bogus"]);
        assert!(Switch::<Demo>::names_round_trip());
        let switch = Switch::<Demo>::new("FAULT_SWITCH_TEST_UNSET", "demo");
        assert!(!switch.active(Demo::A));
    }
}
