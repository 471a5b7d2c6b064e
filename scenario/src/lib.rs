//! Scenarios: a node bug written down as one YAML file (`apiVersion: nodekit.dev/v1alpha1`,
//! `kind: Scenario`, shaped like a Kyverno Chainsaw `Test`), and everything about it that needs
//! no world: the typed model ([`model`]), the loader that refuses a bad file with
//! `file:line:column`, the field's path and what is allowed ([`load`]), durations
//! ([`duration`]), Chainsaw `Test` files ([`chainsaw`]), the partial-object matcher behind
//! `assert` and `error` ([`matcher`]), the record of a run ([`record`], [`lanes`]), and what a
//! person reads afterwards: JUnit ([`junit`]) and one self-contained HTML report ([`report`]).
//! Running a scenario against a world is the suites crate's job.

pub mod chainsaw;
pub mod duration;
pub mod junit;
pub mod lanes;
pub mod load;
pub mod matcher;
pub mod model;
pub mod record;
pub mod report;
