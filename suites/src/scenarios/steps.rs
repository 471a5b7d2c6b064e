//! The step engine, as Chainsaw runs a test: each step's `try` in order (the first failure
//! without `continueOnError` ends it; with it the step still fails), then `catch` when the
//! step failed, then `finally` always; a failed step ends the scenario (the later steps are
//! reported as skipped); at the end every active fault heals and the steps' `cleanup`
//! operations run, last step first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use scenario::model::{Action, Delete, Operation, Step, WaitFor, default_timeout};
use scenario::record::{Failure, FaultSpan, OpRecord, Outcome, Phase, StepRecord};

use super::exec::{self, run_program};
use super::faults::Faults;
use super::objects::{self, Write, plain};
use super::world::ScenarioWorld;
use super::Prepared;

/// Runs the steps of one scenario against its world.
pub struct Runner<'a> {
    p: &'a Prepared,
    world: Arc<ScenarioWorld>,
    client: Client,
    t0: Instant,
    faults: Arc<Faults>,
    steps: Vec<StepRecord>,
    message: Option<String>,
    /// Captures started by `capture` in the current step.
    captures: Vec<harness::capture::Capture>,
    /// Numbers the pcap files of `traffic` and `capture` operations.
    pcaps: usize,
    traffic: Vec<scenario::record::TrafficSummary>,
    step_name: String,
}

impl<'a> Runner<'a> {
    pub fn new(p: &'a Prepared, world: Arc<ScenarioWorld>, client: Client, t0: Instant) -> Runner<'a> {
        let faults = Faults::new(world.clone(), t0);
        Runner { p, world, client, t0, faults, steps: Vec::new(), message: None, captures: Vec::new(), pcaps: 0, traffic: Vec::new(), step_name: String::new() }
    }

    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// Runs every step until one fails.
    pub async fn run_steps(&mut self) {
        let steps = &self.p.scenario.steps;
        for (i, step) in steps.iter().enumerate() {
            if self.message.is_some() {
                let at = self.ms();
                self.steps.push(StepRecord { name: step.name.clone(), start_ms: at, end_ms: at, outcome: Outcome::Skipped, operations: Vec::new() });
                continue;
            }
            let record = self.step(i, step).await;
            self.steps.push(record);
        }
    }

    async fn step(&mut self, index: usize, step: &Step) -> StepRecord {
        let start_ms = self.ms();
        self.say(&format!("step {} {}", index + 1, step.name));
        self.step_name = step.name.clone();
        let mut ops = Vec::new();
        let mut failed = false;
        for (j, op) in step.try_.iter().enumerate() {
            let rec = self.op(step, op, Phase::Try).await;
            if rec.outcome != Outcome::Passed {
                failed = true;
                if self.message.is_none() {
                    let why = rec.failure.as_ref().map(|f| f.message.clone()).unwrap_or_default();
                    self.message = Some(format!("step {:?}, try[{j}] ({}, line {}): {why}", step.name, rec.summary, op.line));
                }
                ops.push(rec);
                if !op.continue_on_error {
                    break;
                }
                continue;
            }
            ops.push(rec);
        }
        if failed {
            for op in &step.catch {
                ops.push(self.op(step, op, Phase::Catch).await);
            }
        }
        for op in &step.finally {
            ops.push(self.op(step, op, Phase::Finally).await);
        }
        for c in std::mem::take(&mut self.captures) {
            if let Err(e) = c.stop().await {
                self.say(&format!("  a capture did not stop cleanly: {e}"));
            }
        }
        let outcome = if failed { Outcome::Failed } else { Outcome::Passed };
        StepRecord { name: step.name.clone(), start_ms, end_ms: self.ms(), outcome, operations: ops }
    }

    /// Heals the faults, runs the cleanups (last step first; only with `cleanup`) and returns
    /// the steps, the fault spans, the traffic summaries and the scenario's failure message.
    pub async fn finish(mut self, cleanup: bool) -> (Vec<StepRecord>, Vec<FaultSpan>, Vec<scenario::record::TrafficSummary>, Option<String>) {
        let (spans, errors) = self.faults.finish().await;
        if let Some(e) = errors.first()
            && self.message.is_none()
        {
            self.message = Some(format!("a fault did not heal: {e}"));
        }
        let ran = if cleanup { self.steps.iter().filter(|s| s.outcome != Outcome::Skipped).count() } else { 0 };
        let steps = &self.p.scenario.steps;
        for i in (0..ran.min(steps.len())).rev() {
            let step = &steps[i];
            for op in &step.cleanup {
                let rec = self.op(step, op, Phase::Cleanup).await;
                if rec.outcome != Outcome::Passed && self.message.is_none() {
                    self.message = Some(format!("step {:?}, cleanup ({}): {}", step.name, rec.summary, rec.failure.as_ref().map(|f| f.message.as_str()).unwrap_or("")));
                    self.steps[i].outcome = Outcome::Failed;
                }
                self.steps[i].operations.push(rec);
            }
        }
        (self.steps, spans, self.traffic, self.message)
    }

    fn say(&self, line: &str) {
        eprintln!("[{} {:>6.1}s] {line}", self.p.scenario.name, self.t0.elapsed().as_secs_f64());
    }

    async fn op(&mut self, step: &Step, op: &Operation, phase: Phase) -> OpRecord {
        let start_ms = self.ms();
        let timeout = op.timeout.unwrap_or_else(|| default_timeout(&op.action, &step.timeouts));
        let summary = op.description.clone().unwrap_or_else(|| summary(&op.action));
        let result = self.act(&op.action, timeout).await;
        let (outcome, failure, output) = match result {
            Ok(out) => (Outcome::Passed, None, (!out.is_empty()).then_some(out)),
            Err(f) => (Outcome::Failed, Some(f), None),
        };
        let verdict = match &failure {
            None => "ok".to_string(),
            Some(f) => format!("FAILED: {}", f.message.lines().next().unwrap_or("")),
        };
        self.say(&format!("  {} {summary}: {verdict}", phase_word(phase)));
        OpRecord { phase, kind: op.action.kind().into(), summary, start_ms, end_ms: self.ms(), outcome, failure, output }
    }

    async fn act(&mut self, action: &Action, timeout: Duration) -> Result<String, Failure> {
        let kc = self.world.kubeconfig.clone();
        let client = &self.client;
        let within = |what: String| plain(format!("{what} did not finish within {timeout:?}"));
        match action {
            Action::Apply(r) | Action::Create(r) | Action::Patch(r) | Action::Update(r) => {
                let how = match action {
                    Action::Create(_) => Write::Create,
                    Action::Patch(_) => Write::Patch,
                    Action::Update(_) => Write::Update,
                    _ => Write::Apply,
                };
                match tokio::time::timeout(timeout, objects::write(client, &r.objects, how)).await {
                    Ok(r) => r.map_err(|e| plain(format!("{e:#}"))),
                    Err(_) => Err(within(action.kind().into())),
                }
            }
            Action::Delete(d) => {
                let targets = delete_targets(d);
                objects::delete(client, &targets, timeout).await.map_err(|e| plain(format!("{e:#}")))
            }
            Action::Assert(c) => objects::assert(client, &c.expected, timeout, c.hold_for).await,
            Action::Error(c) => objects::error(client, &c.expected, timeout).await,
            Action::Wait(w) => {
                let args = exec::wait_args(w, timeout);
                let ran = run_program("kubectl", &args, &[], &kc, timeout + Duration::from_secs(5)).await?;
                exec::judge(&ran, None).map_err(|mut f| {
                    let want = match &w.for_ {
                        WaitFor::Creation => "creation".to_string(),
                        WaitFor::Deletion => "deletion".to_string(),
                        WaitFor::Condition { name, value } => format!("condition {name}={value}"),
                        WaitFor::JsonPath { path, value } => format!("{path} = {value}"),
                    };
                    f.message = format!("waiting for {want}: {}", f.message);
                    f
                })
            }
            Action::Sleep(d) => {
                tokio::time::sleep(*d).await;
                Ok(String::new())
            }
            Action::Script(s) => {
                let shell = s.shell.clone().unwrap_or_else(|| "sh".into());
                let mut args = if s.shell_args.is_empty() { vec!["-c".to_string()] } else { s.shell_args.clone() };
                args.push(s.content.clone());
                let ran = run_program(&shell, &args, &s.env, &kc, timeout).await?;
                exec::judge(&ran, s.check.as_ref())
            }
            Action::Command(c) => {
                let ran = run_program(&c.entrypoint, &c.args, &c.env, &kc, timeout).await?;
                exec::judge(&ran, c.check.as_ref())
            }
            Action::Events(e) => match &e.expect {
                Some(x) => exec::expect_events(client, e, x, timeout).await,
                None => self.kubectl(exec::events_args(e), timeout).await,
            },
            Action::PodLogs(l) => self.kubectl(exec::logs_args(l), timeout).await,
            Action::Describe(q) => self.kubectl(exec::describe_args(q), timeout).await,
            Action::Get(q) => self.kubectl(exec::get_args(q), timeout).await,
            Action::Fault(f) => self.faults.start(f).await.map_err(|e| plain(format!("{e:#}"))),
            Action::Heal(h) => self.faults.heal(h.fault.as_deref()).await.map_err(|e| plain(format!("{e:#}"))),
            Action::Traffic(t) => {
                self.pcaps += 1;
                let run = super::traffic::run(&self.world, client, t, &self.p.out, &self.step_name, self.pcaps, timeout);
                let (line, summary) = run.await?;
                self.traffic.push(summary);
                Ok(line)
            }
            Action::Capture(c) => {
                self.pcaps += 1;
                let caps = super::traffic::start_captures(&self.world, &c.hosts, &self.p.out, self.pcaps).map_err(|e| plain(format!("{e:#}")))?;
                let labels: Vec<String> = caps.iter().map(|c| c.label().to_string()).collect();
                self.captures.extend(caps);
                Ok(format!("capturing on {} until the step ends", labels.join(", ")))
            }
        }
    }

    async fn kubectl(&self, args: Vec<String>, timeout: Duration) -> Result<String, Failure> {
        let ran = run_program("kubectl", &args, &[], &self.world.kubeconfig, timeout).await?;
        exec::judge(&ran, None)
    }
}

fn phase_word(p: Phase) -> &'static str {
    match p {
        Phase::Try => "try",
        Phase::Catch => "catch",
        Phase::Finally => "finally",
        Phase::Cleanup => "cleanup",
    }
}

fn delete_targets(d: &Delete) -> Vec<objects::Target> {
    match d {
        Delete::Ref(r) => vec![objects::Target {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            labels: r.labels.clone(),
        }],
        Delete::Objects(res) => res
            .objects
            .iter()
            .map(|o| {
                let s = |p: &str| o.pointer(p).and_then(|v| v.as_str()).map(str::to_string);
                objects::Target {
                    api_version: s("/apiVersion").unwrap_or_default(),
                    kind: s("/kind").unwrap_or_default(),
                    namespace: s("/metadata/namespace"),
                    name: s("/metadata/name"),
                    labels: Default::default(),
                }
            })
            .collect(),
    }
}

/// One line saying what an operation does.
pub fn summary(a: &Action) -> String {
    let objs = |v: &[serde_json::Value]| v.iter().map(objects::describe).collect::<Vec<_>>().join(", ");
    match a {
        Action::Apply(r) | Action::Create(r) | Action::Patch(r) | Action::Update(r) => format!("{} {} ({})", a.kind(), objs(&r.objects), r.source),
        Action::Delete(Delete::Objects(r)) => format!("delete {}", objs(&r.objects)),
        Action::Delete(Delete::Ref(r)) => format!("delete {} {}", r.kind, r.name.clone().unwrap_or_else(|| "by labels".into())),
        Action::Assert(c) => match c.hold_for {
            Some(h) => format!("assert {} holds for {}", objs(&c.expected), scenario::duration::format(h)),
            None => format!("assert {}", objs(&c.expected)),
        },
        Action::Error(c) => format!("error {} (must not match)", objs(&c.expected)),
        Action::Wait(w) => format!("wait {} {}", w.target.kind, w.target.name.clone().or(w.target.selector.clone()).unwrap_or_default()),
        Action::Sleep(d) => format!("sleep {}", scenario::duration::format(*d)),
        Action::Script(s) => format!("script {}", s.content.lines().next().unwrap_or("")),
        Action::Command(c) => format!("command {} {}", c.entrypoint, c.args.join(" ")),
        Action::Events(e) => match &e.expect {
            Some(x) => format!("events {} {:?}", x.reason.clone().unwrap_or_default(), x.count),
            None => "events".into(),
        },
        Action::PodLogs(l) => format!("podLogs {}", l.name.clone().or(l.selector.clone()).unwrap_or_default()),
        Action::Describe(q) => format!("describe {} {}", q.kind, q.name.clone().unwrap_or_default()),
        Action::Get(q) => format!("get {} {}", q.kind, q.name.clone().unwrap_or_default()),
        Action::Fault(f) => format!("fault {}", f.name.clone().unwrap_or_else(|| fault_word(&f.kind).into())),
        Action::Heal(h) => format!("heal {}", h.fault.clone().unwrap_or_else(|| "every fault".into())),
        Action::Traffic(t) => format!("traffic {} connections from {}", t.connections, t.from),
        Action::Capture(c) => format!("capture on {}", if c.hosts.is_empty() { "every node and the client".into() } else { c.hosts.join(", ") }),
    }
}

fn fault_word(k: &scenario::model::FaultKind) -> &'static str {
    use scenario::model::FaultKind as F;
    match k {
        F::Partition { .. } => "partition",
        F::Stop { .. } => "stop",
        F::Kill { .. } => "kill",
        F::Restart { .. } => "restart",
        F::ApiServer(_) => "apiServer",
        F::DropWatches => "dropWatches",
        F::Runtime { .. } => "runtime",
        F::Link(_) => "link",
        F::Pressure { .. } => "pressure",
    }
}
