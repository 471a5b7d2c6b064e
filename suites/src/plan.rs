//! Which runs a selection expands to: case × runtime target, each with its skip reason if any.

use crate::catalog::{self, Case, Label, Runtimes};
use crate::target::RuntimeTarget;

/// One case on one target.
#[derive(Debug, Clone)]
pub struct Run {
    pub case: Case,
    /// `None` for cases that involve no container runtime.
    pub runtime: Option<RuntimeTarget>,
    /// Why this run cannot happen here; reported as skipped, never as passed.
    pub skip: Option<String>,
}

impl Run {
    /// The run's name: the case id, with the runtime in brackets when it matters.
    pub fn name(&self) -> String {
        match &self.runtime {
            None => self.case.id.to_string(),
            Some(rt) => format!("{}[{}]", self.case.id, rt.name()),
        }
    }

    fn new(case: Case, runtime: Option<RuntimeTarget>) -> Run {
        let skip = case
            .unmet_needs()
            .or_else(|| runtime.as_ref().and_then(RuntimeTarget::unavailable))
            .or_else(|| match (&runtime, case.runtimes) {
                (Some(rt), Runtimes::FakeOnly) if *rt != RuntimeTarget::FakeCri => Some(format!(
                    "declared for fake-cri only (it drives fake-cri's fault controls, or does not depend on \
                     the runtime); not run on {}",
                    rt.name()
                )),
                _ => None,
            });
        Run { case, runtime, skip }
    }
}

/// What to run: a filter over ids, required labels, and the runtime targets.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Substring or `*` glob over the run name (`area/behaviour[runtime]`).
    pub filter: Option<String>,
    /// Every listed label must be on the case.
    pub labels: Vec<Label>,
    /// Runtime targets for cases that involve a runtime.
    pub runtimes: Vec<RuntimeTarget>,
}

impl Selection {
    /// Expand the catalog into runs.
    pub fn runs(&self) -> Vec<Run> {
        self.runs_of(catalog::all())
    }

    pub fn runs_of(&self, cases: Vec<Case>) -> Vec<Run> {
        let mut out = Vec::new();
        for case in cases {
            if !self.labels.iter().all(|l| case.labels.contains(l)) {
                continue;
            }
            if case.runtimes == Runtimes::None {
                out.push(Run::new(case, None));
            } else {
                for rt in &self.runtimes {
                    out.push(Run::new(case.clone(), Some(rt.clone())));
                }
            }
        }
        out.retain(|r| self.filter.as_deref().is_none_or(|f| matches(f, &r.name())));
        out
    }
}

/// Substring match, or a glob with `*` when the pattern has one.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{BodyFuture, Capability, Topology};
    use crate::context::CaseCtx;

    fn body(_: CaseCtx) -> BodyFuture {
        Box::pin(async { Ok(()) })
    }

    fn case(id: &'static str, runtimes: Runtimes, labels: &'static [Label]) -> Case {
        Case { id, labels, needs: &[], topology: Topology::SingleNode, runtimes, body }
    }

    #[test]
    fn globs_and_substrings() {
        assert!(matches("world", "world/hosts-reach"));
        assert!(matches("world/*", "world/hosts-reach"));
        assert!(matches("*[containerd]", "runtime/version[containerd]"));
        assert!(!matches("*[containerd]", "runtime/version[fake-cri]"));
        assert!(matches("a*c*e", "abcde"));
        assert!(!matches("a*c*e", "abcdf"));
    }

    #[test]
    fn expands_runtimes_and_skips_fake_only_on_real() {
        let sel = Selection {
            filter: None,
            labels: vec![],
            runtimes: vec![RuntimeTarget::FakeCri, RuntimeTarget::Containerd],
        };
        let runs = sel.runs_of(vec![
            case("world/x", Runtimes::None, &[]),
            case("runtime/y", Runtimes::All, &[]),
            case("runtime/z", Runtimes::FakeOnly, &[]),
        ]);
        let names: Vec<String> = runs.iter().map(Run::name).collect();
        assert_eq!(
            names,
            [
                "world/x",
                "runtime/y[fake-cri]",
                "runtime/y[containerd]",
                "runtime/z[fake-cri]",
                "runtime/z[containerd]"
            ]
        );
        assert!(runs[4].skip.as_deref().unwrap().contains("fake-cri"));
        assert!(runs[3].skip.is_none());
    }

    #[test]
    fn label_filter_and_unmet_needs() {
        let sel = Selection {
            filter: None,
            labels: vec![Label::Conformance],
            runtimes: vec![RuntimeTarget::FakeCri],
        };
        let mut needy = case("kubectl/x", Runtimes::None, &[Label::Conformance]);
        needy.needs = &[Capability::Kubectl];
        let runs = sel.runs_of(vec![case("a/b", Runtimes::None, &[]), needy]);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].case.id, "kubectl/x");
    }
}
