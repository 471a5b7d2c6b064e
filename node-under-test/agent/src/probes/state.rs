//! The probe state machine (upstream prober worker semantics), pure and IO-free: thresholds,
//! initial results, startup gating, hold after a liveness/startup failure, and the events.

use std::time::Duration;

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// Thresholds and timing of one probe (upstream defaults applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeTiming {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeTiming {
    /// From the API probe fields with upstream defaults (period 10, timeout 1, thresholds 1/3).
    pub fn from_api(p: &k8s_openapi::api::core::v1::Probe) -> Self {
        let secs = |v: Option<i32>, d: i32| Duration::from_secs(v.filter(|v| *v >= 0).unwrap_or(d) as u64);
        ProbeTiming {
            initial_delay: secs(p.initial_delay_seconds, 0),
            period: secs(p.period_seconds.filter(|v| *v > 0), 10),
            timeout: secs(p.timeout_seconds.filter(|v| *v > 0), 1),
            success_threshold: p.success_threshold.filter(|v| *v > 0).unwrap_or(1) as u32,
            failure_threshold: p.failure_threshold.filter(|v| *v > 0).unwrap_or(3) as u32,
        }
    }
}

/// The result of running a probe once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    Success,
    /// Success with a warning (e.g. a redirect to another host).
    Warning(String),
    Failure(String),
    /// The prober itself failed; the result is thrown away (upstream).
    Error(String),
}

/// Effects of a probe step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    /// The probe's published result changed.
    SetResult(bool),
    Event { reason: &'static str, message: String },
    /// Count one result for metrics ("successful" / "failed" / "unknown").
    Count(&'static str),
}

/// State of one probe of one container instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeState {
    pub kind: ProbeKind,
    pub timing: ProbeTiming,
    /// Published result: readiness starts false, liveness true, startup false (not started).
    pub result: bool,
    last: Option<bool>,
    run: u32,
    /// After a liveness/startup failure: no more probing of this instance.
    pub on_hold: bool,
}

impl ProbeState {
    pub fn new(kind: ProbeKind, timing: ProbeTiming) -> Self {
        ProbeState { kind, timing, result: kind == ProbeKind::Liveness, last: None, run: 0, on_hold: false }
    }

    /// Whether the probe runs now: not on hold, startup gating, not after startup success,
    /// liveness/startup off while the pod terminates.
    pub fn should_run(&self, started: bool, terminating: bool) -> bool {
        if self.on_hold {
            return false;
        }
        match self.kind {
            ProbeKind::Startup => !self.result && !terminating,
            ProbeKind::Liveness => started && !terminating,
            ProbeKind::Readiness => started,
        }
    }

    /// Whether the wait before the next run also ends when the container reports started:
    /// readiness gated by a startup probe runs right after startup succeeds (upstream triggers
    /// it at once) instead of sleeping out its period.
    pub fn wakes_on_start(&self, started: bool) -> bool {
        self.kind == ProbeKind::Readiness && !started && !self.on_hold
    }
}

/// Feeds one probe outcome into the state.
pub fn probe_step(mut st: ProbeState, outcome: &ProbeOutcome) -> (ProbeState, Vec<ProbeAction>) {
    let mut acts = Vec::new();
    let title = st.kind.title();
    let ok = match outcome {
        ProbeOutcome::Success => true,
        ProbeOutcome::Warning(w) => {
            acts.push(ProbeAction::Event { reason: "ProbeWarning", message: format!("{title} probe warning: {w}") });
            true
        }
        ProbeOutcome::Failure(m) => {
            acts.push(ProbeAction::Event { reason: "Unhealthy", message: format!("{title} probe failed: {m}") });
            false
        }
        ProbeOutcome::Error(m) => {
            acts.push(ProbeAction::Event { reason: "Unhealthy", message: format!("{title} probe errored and resulted in unknown state: {m}") });
            acts.push(ProbeAction::Count("unknown"));
            return (st, acts);
        }
    };
    acts.push(ProbeAction::Count(if ok { "successful" } else { "failed" }));
    if st.last == Some(ok) {
        st.run = st.run.saturating_add(1);
    } else {
        st.last = Some(ok);
        st.run = 1;
    }
    let threshold = if ok { st.timing.success_threshold } else { st.timing.failure_threshold };
    if st.run < threshold {
        return (st, acts);
    }
    if st.result != ok {
        st.result = ok;
        acts.push(ProbeAction::SetResult(ok));
    }
    if !ok && matches!(st.kind, ProbeKind::Liveness | ProbeKind::Startup) {
        st.on_hold = true;
        st.run = 0;
        // Liveness starts true, so a failure is always a change to publish.
        if !acts.iter().any(|a| matches!(a, ProbeAction::SetResult(_))) {
            acts.push(ProbeAction::SetResult(false));
        }
    }
    (st, acts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(s: u32, f: u32) -> ProbeTiming {
        ProbeTiming {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: s,
            failure_threshold: f,
        }
    }

    fn run(mut st: ProbeState, outcomes: &[ProbeOutcome]) -> (ProbeState, Vec<Vec<ProbeAction>>) {
        let mut all = vec![];
        for o in outcomes {
            let (s, a) = probe_step(st, o);
            st = s;
            all.push(a);
        }
        (st, all)
    }

    fn fail(m: &str) -> ProbeOutcome {
        ProbeOutcome::Failure(m.into())
    }

    #[test]
    fn readiness_needs_success_threshold() {
        let st = ProbeState::new(ProbeKind::Readiness, timing(2, 3));
        assert!(!st.result);
        let (st, acts) = run(st, &[ProbeOutcome::Success, ProbeOutcome::Success]);
        assert!(acts[0].iter().all(|a| !matches!(a, ProbeAction::SetResult(_))));
        assert!(acts[1].contains(&ProbeAction::SetResult(true)));
        assert!(st.result);
        // Two failures below threshold 3 keep it ready; the third flips it.
        let (st, acts) = run(st, &[fail("x"), fail("x"), fail("x")]);
        assert!(acts[1].iter().all(|a| !matches!(a, ProbeAction::SetResult(_))));
        assert!(acts[2].contains(&ProbeAction::SetResult(false)));
        assert!(!st.on_hold, "readiness never holds");
    }

    #[test]
    fn failures_must_be_consecutive() {
        let st = ProbeState::new(ProbeKind::Liveness, timing(1, 3));
        let (st, _) = run(st, &[fail("a"), fail("a"), ProbeOutcome::Success, fail("a"), fail("a")]);
        assert!(st.result, "never three in a row");
        let (st, acts) = run(st, &[fail("a")]);
        assert!(acts[0].contains(&ProbeAction::SetResult(false)));
        assert!(st.on_hold);
        assert!(!st.should_run(true, false));
    }

    #[test]
    fn unhealthy_event_on_every_failure_with_upstream_message() {
        let st = ProbeState::new(ProbeKind::Liveness, timing(1, 3));
        let (_, acts) = run(st, &[fail("HTTP probe failed with statuscode: 500")]);
        assert!(acts[0].contains(&ProbeAction::Event {
            reason: "Unhealthy",
            message: "Liveness probe failed: HTTP probe failed with statuscode: 500".into()
        }));
    }

    #[test]
    fn warning_is_success_with_probe_warning_event() {
        let st = ProbeState::new(ProbeKind::Readiness, timing(1, 3));
        let (st, acts) = run(st, &[ProbeOutcome::Warning("Probe terminated redirects".into())]);
        assert!(st.result);
        assert!(acts[0].contains(&ProbeAction::Event {
            reason: "ProbeWarning",
            message: "Readiness probe warning: Probe terminated redirects".into()
        }));
    }

    #[test]
    fn errors_are_thrown_away() {
        let st = ProbeState::new(ProbeKind::Liveness, timing(1, 1));
        let (st, _) = run(st, &[ProbeOutcome::Error("exec failed".into())]);
        assert!(st.result && !st.on_hold);
    }

    #[test]
    fn gating_rules() {
        let startup = ProbeState::new(ProbeKind::Startup, timing(1, 3));
        let liveness = ProbeState::new(ProbeKind::Liveness, timing(1, 3));
        let readiness = ProbeState::new(ProbeKind::Readiness, timing(1, 3));
        assert!(startup.should_run(false, false));
        assert!(!liveness.should_run(false, false), "startup gates liveness");
        assert!(!readiness.should_run(false, false), "startup gates readiness");
        assert!(!liveness.should_run(true, true), "liveness off while terminating");
        assert!(readiness.should_run(true, true));
        let (started, _) = run(startup, &[ProbeOutcome::Success]);
        assert!(!started.should_run(true, false), "startup stops after success");
    }

    #[test]
    fn only_gated_readiness_wakes_on_start() {
        let readiness = ProbeState::new(ProbeKind::Readiness, timing(1, 3));
        assert!(readiness.wakes_on_start(false), "readiness waiting on startup runs once started");
        assert!(!readiness.wakes_on_start(true), "started readiness keeps its period");
        let liveness = ProbeState::new(ProbeKind::Liveness, timing(1, 3));
        assert!(!liveness.wakes_on_start(false), "liveness keeps its period after startup");
        let startup = ProbeState::new(ProbeKind::Startup, timing(1, 3));
        assert!(!startup.wakes_on_start(false));
    }

    #[test]
    fn defaults_from_api() {
        let t = ProbeTiming::from_api(&Default::default());
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        assert_eq!((t.success_threshold, t.failure_threshold), (1, 3));
    }
}
