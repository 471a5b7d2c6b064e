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
                (Some(RuntimeTarget::FakeCri), Runtimes::Pulling) => Some(
                    "pulls from the world's registry; fake-cri builds its images from the workload binary and does not pull"
                        .into(),
                ),
                (Some(RuntimeTarget::Profile { profile, .. }), Runtimes::Pulling | Runtimes::PullsBack) if !profile.pulls => Some(format!(
                    "pulls from the world's registry; the runtime profile {} says its runtime does not pull \
                     (spec.images.pulls: false)",
                    profile.source.display()
                )),
                (Some(RuntimeTarget::External(_)), Runtimes::PullsBack) => Some(
                    "removes world images and pulls them back from the world's registry, which an external \
                     runtime does not reach"
                        .into(),
                ),
                (Some(RuntimeTarget::External(_)), Runtimes::Sealed | Runtimes::Pulling) => Some(
                    "looks at the runtime from the node host (its processes or its pod network), which an \
                     external runtime does not share"
                        .into(),
                ),
                (Some(RuntimeTarget::External(_)), _) if case.area() != "runtime" => Some(
                    "node areas need a runtime nodekit starts inside the world (fake-cri, containerd); an \
                     external CRI socket runs the CRI-level area (runtime/) only"
                        .into(),
                ),
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

/// The node agent the node cases run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AgentUnderTest {
    /// nodekit's own agent, started by the harness.
    #[default]
    Reference,
    /// A `--node-agent` profile's agent; `nodekit_extensions` says whether it reads the
    /// `nodekit:` block of its KubeletConfiguration.
    Profile { nodekit_extensions: bool },
}

/// With `--node-agent`: the runs of cases that assert what only the reference agent does are
/// skipped, and, when the agent does not read nodekit's extensions, those of cases that need
/// them — each with its reason.
fn skip_for_node_agent(runs: &mut [Run], nodekit_extensions: bool) {
    for run in runs.iter_mut().filter(|r| r.skip.is_none()) {
        if run.case.labels.contains(&Label::ReferenceAgent) {
            run.skip = Some(
                "asserts what only the reference agent does (its warning events, its root directory's layout or its log); \
                 --node-agent runs another agent"
                    .into(),
            );
        } else if !nodekit_extensions && run.case.labels.contains(&Label::NodekitExtensions) {
            run.skip = Some(
                "needs nodekit's KubeletConfiguration extensions (compressed back-off, the world's node size or an agent \
                 tunable), which the --node-agent profile's agent does not read (spec.config.nodekitExtensions: false)"
                    .into(),
            );
        }
    }
}

/// One part of a catalog split into `of` parts (`--shard K/N`, `index` = K, 1-based). A run
/// belongs to the shard its name hashes to, so the shards of N partition any selection, and a
/// run's shard does not depend on the machine, the catalog order or what else was selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub of: u32,
}

impl Shard {
    /// Whether the run named `name` falls in this shard.
    pub fn contains(&self, name: &str) -> bool {
        // FNV-1a, 64 bit: fixed, and spread well over short ASCII names.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h % u64::from(self.of) == u64::from(self.index - 1)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard {s:?}: use K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, of) = (k.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
        if index == 0 || of == 0 || index > of {
            return Err(bad());
        }
        Ok(Shard { index, of })
    }
}

/// What to run: filters over run names, required labels, the runtime targets and a shard.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Substrings or `*` globs over the run name (`area/behaviour[runtime]`); a run is kept
    /// when any matches (all runs when empty).
    pub filters: Vec<String>,
    /// Runs matching any of these are dropped.
    pub excludes: Vec<String>,
    /// Every listed label must be on the case.
    pub labels: Vec<Label>,
    /// Runtime targets for cases that involve a runtime.
    pub runtimes: Vec<RuntimeTarget>,
    /// Only this part of the selection.
    pub shard: Option<Shard>,
    /// The agent node cases run; a profile's agent skips the cases it cannot run.
    pub agent: AgentUnderTest,
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
        out.retain(|r| {
            let name = r.name();
            (self.filters.is_empty() || self.filters.iter().any(|f| matches(f, &name)))
                && !self.excludes.iter().any(|f| matches(f, &name))
                && self.shard.is_none_or(|s| s.contains(&name))
        });
        if let AgentUnderTest::Profile { nodekit_extensions } = self.agent {
            skip_for_node_agent(&mut out, nodekit_extensions);
        }
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
        let sel = Selection { runtimes: vec![RuntimeTarget::FakeCri, RuntimeTarget::Containerd], ..Selection::default() };
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
            labels: vec![Label::Conformance],
            runtimes: vec![RuntimeTarget::FakeCri],
            ..Selection::default()
        };
        let mut needy = case("kubectl/x", Runtimes::None, &[Label::Conformance]);
        needy.needs = &[Capability::Kubectl];
        let runs = sel.runs_of(vec![case("a/b", Runtimes::None, &[]), needy]);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].case.id, "kubectl/x");
    }

    /// ReferenceAgent cases are skipped with any --node-agent; NodekitExtensions cases only when
    /// the profile's agent does not read the extensions; a run skipped already keeps its reason.
    #[test]
    fn node_agent_skips_by_label() {
        let cases = || {
            let internal = case("a/internal", Runtimes::All, &[Label::Conformance, Label::ReferenceAgent]);
            let ext = case("a/ext", Runtimes::All, &[Label::Conformance, Label::NodekitExtensions]);
            let plain = case("a/plain", Runtimes::All, &[Label::Conformance]);
            let pulling = case("a/pulling", Runtimes::Pulling, &[Label::Conformance, Label::NodekitExtensions]);
            vec![internal, ext, plain, pulling]
        };
        let skipped = |nodekit_extensions: bool| {
            let agent = AgentUnderTest::Profile { nodekit_extensions };
            let sel = Selection { runtimes: vec![RuntimeTarget::FakeCri], agent, ..Selection::default() };
            sel.runs_of(cases()).into_iter().map(|r| (r.case.id, r.skip.unwrap_or_default())).collect::<Vec<_>>()
        };
        let with = skipped(true);
        assert!(with[0].1.contains("only the reference agent"), "{with:?}");
        assert!(with[1].1.is_empty() && with[2].1.is_empty(), "{with:?}");
        let without = skipped(false);
        assert!(without[1].1.contains("nodekitExtensions: false"), "{without:?}");
        assert!(without[2].1.is_empty(), "{without:?}");
        assert!(without[3].1.contains("does not pull"), "the earlier reason stays: {without:?}");
    }

    /// A case that pulls world images back runs on fake-cri, not on an external socket; one that
    /// pulls from the world's registry skips fake-cri.
    #[test]
    fn pulls_back_runs_on_fake_cri_but_not_on_an_external_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("cri.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let runtimes = vec![RuntimeTarget::FakeCri, RuntimeTarget::External(format!("unix://{}", socket.display()))];
        let sel = Selection { runtimes, ..Selection::default() };
        let runs = sel.runs_of(vec![case("runtime/back", Runtimes::PullsBack, &[]), case("runtime/pull", Runtimes::Pulling, &[])]);
        let skip: Vec<(String, String)> = runs.iter().map(|r| (r.name(), r.skip.clone().unwrap_or_default())).collect();
        let of = |name: &str| skip.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone()).unwrap_or_else(|| panic!("{name}: {skip:?}"));
        assert_eq!(of("runtime/back[fake-cri]"), "");
        assert!(of("runtime/back[external]").contains("does not reach"), "{skip:?}");
        assert!(of("runtime/pull[fake-cri]").contains("does not pull"), "{skip:?}");
    }

    #[test]
    fn filters_are_alternatives_and_excludes_win() {
        let sel = Selection {
            filters: vec!["probes/".into(), "world/".into()],
            excludes: vec!["*liveness*".into()],
            runtimes: vec![RuntimeTarget::FakeCri],
            ..Selection::default()
        };
        let runs = sel.runs_of(vec![
            case("world/x", Runtimes::None, &[]),
            case("probes/liveness-kills", Runtimes::All, &[]),
            case("probes/readiness", Runtimes::All, &[]),
            case("runtime/y", Runtimes::All, &[]),
        ]);
        let names: Vec<String> = runs.iter().map(Run::name).collect();
        assert_eq!(names, ["world/x", "probes/readiness[fake-cri]"]);
    }

    /// The shards of N partition the whole catalog: every run in exactly one shard, none empty,
    /// and a run's shard does not change with the rest of the selection.
    #[test]
    fn shards_partition_the_catalog() {
        let all = Selection { runtimes: vec![RuntimeTarget::FakeCri, RuntimeTarget::Containerd], ..Selection::default() };
        let names: Vec<String> = all.runs().iter().map(Run::name).collect();
        for n in [1u32, 2, 3, 4, 7] {
            let mut seen: Vec<String> = Vec::new();
            for k in 1..=n {
                let sel = Selection { shard: Some(Shard { index: k, of: n }), ..all.clone() };
                let part: Vec<String> = sel.runs().iter().map(Run::name).collect();
                assert!(!part.is_empty(), "shard {k}/{n} is empty");
                seen.extend(part);
            }
            seen.sort();
            let mut want = names.clone();
            want.sort();
            assert_eq!(seen, want, "shards of {n} do not partition the catalog");
        }
        let one = Selection { filters: vec!["probes/".into()], shard: Some(Shard { index: 2, of: 3 }), ..all.clone() };
        let whole = Selection { shard: Some(Shard { index: 2, of: 3 }), ..all };
        let whole: Vec<String> = whole.runs().iter().map(Run::name).collect();
        assert!(one.runs().iter().all(|r| whole.contains(&r.name())));
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, of: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("K/N"), "{bad}");
        }
    }
}
