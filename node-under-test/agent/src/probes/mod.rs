//! Probes: the pure state machine ([`state`]), the checkers (exec, http, tcp, grpc) and the
//! per-container probe tasks that publish results to a [`ProbeBoard`] read by the pod worker.

pub mod grpc;
pub mod http;
pub mod state;
pub mod tcp;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::cri::{CriError, Runtime};
use crate::metrics::Metrics;
use crate::pods::events::{ContainerRef, PodRef, Recorder};
use crate::pods::model::ProbeView;
use state::{ProbeAction, ProbeKind, ProbeOutcome, ProbeState, ProbeTiming, probe_step};

/// Shared probe results of one pod, by container id, with a wake-up for the pod worker.
#[derive(Clone, Debug, Default)]
pub struct ProbeBoard {
    results: Arc<Mutex<HashMap<String, ProbeView>>>,
    pub changed: Arc<Notify>,
}

impl ProbeBoard {
    pub fn snapshot(&self) -> HashMap<String, ProbeView> {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, id: &str) -> Option<ProbeView> {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).get(id).copied()
    }

    pub fn insert(&self, id: &str, v: ProbeView) {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), v);
        self.changed.notify_one();
    }

    pub fn remove(&self, id: &str) {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut ProbeView)) {
        if let Some(v) = self.results.lock().unwrap_or_else(|p| p.into_inner()).get_mut(id) {
            f(v);
        }
        self.changed.notify_one();
    }
}

/// The initial results of a container instance: readiness false while a readiness probe exists,
/// not started while a startup probe exists.
pub fn initial_view(c: &Container) -> ProbeView {
    ProbeView {
        ready: c.readiness_probe.is_none(),
        started: c.startup_probe.is_none(),
        liveness_failed: false,
        startup_failed: false,
    }
}

/// Resolves a probe port (number, numeric string or container port name).
pub fn resolve_port(port: &IntOrString, c: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).ok(),
        IntOrString::String(s) => s.parse().ok().or_else(|| {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }),
    }
}

/// Everything a probe task needs.
pub struct ProbeTask<R> {
    pub runtime: Arc<R>,
    pub board: ProbeBoard,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub pod: PodRef,
    pub container: Container,
    pub container_id: String,
    pub pod_ip: Option<String>,
    pub started_at: jiff::Timestamp,
    pub terminating: watch::Receiver<bool>,
}

async fn run_once<R: Runtime>(t: &ProbeTask<R>, probe: &Probe, timeout: Duration) -> ProbeOutcome {
    let host = |h: &Option<String>| h.clone().filter(|h| !h.is_empty()).or_else(|| t.pod_ip.clone());
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match t.runtime.exec_sync(&t.container_id, cmd.clone(), timeout).await {
            Ok(r) if r.exit_code == 0 => ProbeOutcome::Success,
            Ok(r) => {
                let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
                out.push_str(&String::from_utf8_lossy(&r.stderr));
                ProbeOutcome::Failure(out)
            }
            Err(CriError::Timeout { .. }) => ProbeOutcome::Failure(format!("command {:?} timed out", cmd.join(" "))),
            Err(CriError::Rpc { code: tonic::Code::DeadlineExceeded, .. }) => {
                ProbeOutcome::Failure(format!("command {:?} timed out", cmd.join(" ")))
            }
            Err(e) => ProbeOutcome::Error(e.to_string()),
        };
    }
    if let Some(h) = &probe.http_get {
        let (Some(host), Some(port)) = (host(&h.host), resolve_port(&h.port, &t.container)) else {
            return ProbeOutcome::Error("no host or port for the HTTP probe".into());
        };
        let target = http::HttpTarget {
            scheme: h.scheme.clone().unwrap_or_else(|| "HTTP".into()),
            host,
            port,
            path: h.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()),
            headers: h.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect(),
        };
        return http::http_probe(&target, timeout).await;
    }
    if let Some(s) = &probe.tcp_socket {
        let (Some(host), Some(port)) = (host(&s.host), resolve_port(&s.port, &t.container)) else {
            return ProbeOutcome::Error("no host or port for the TCP probe".into());
        };
        return tcp::tcp_probe(&host, port, timeout).await;
    }
    if let Some(g) = &probe.grpc {
        let (Some(host), Ok(port)) = (t.pod_ip.clone(), u16::try_from(g.port)) else {
            return ProbeOutcome::Error("no pod IP or bad port for the gRPC probe".into());
        };
        return grpc::grpc_probe(&host, port, g.service.as_deref().unwrap_or(""), timeout).await;
    }
    ProbeOutcome::Error("probe has no handler".into())
}

/// Waits out one probe period; with `wake_on_start`, the container reporting started (its
/// startup probe succeeded) ends the wait early.
async fn wait_next(period: Duration, started: &mut watch::Receiver<bool>, wake_on_start: bool) {
    let on_start = async {
        if !wake_on_start {
            return std::future::pending::<()>().await;
        }
        loop {
            if started.changed().await.is_err() {
                return std::future::pending::<()>().await;
            }
            if *started.borrow() {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(period) => {}
        _ = on_start => {}
    }
}

/// Runs one probe of one container instance until cancelled. `start` carries the instance's
/// started flag: the startup probe sets it, gated probes wait on it.
pub async fn probe_loop<R: Runtime>(
    t: Arc<ProbeTask<R>>,
    kind: ProbeKind,
    probe: Probe,
    start: Arc<watch::Sender<bool>>,
    cancel: CancellationToken,
) {
    let timing = ProbeTiming::from_api(&probe);
    let mut st = ProbeState::new(kind, timing);
    let mut started_rx = start.subscribe();
    let since_start = jiff::Timestamp::now().as_nanosecond() - t.started_at.as_nanosecond();
    let delay = timing.initial_delay.saturating_sub(Duration::from_nanos(since_start.max(0) as u64));
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = tokio::time::sleep(delay) => {}
    }
    loop {
        started_rx.borrow_and_update();
        let started = t.board.get(&t.container_id).is_some_and(|v| v.started);
        let terminating = *t.terminating.borrow();
        if st.should_run(started, terminating) {
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return,
                o = run_once(&t, &probe, timing.timeout) => o,
            };
            let (next, acts) = probe_step(st, &outcome);
            st = next;
            for a in acts {
                match a {
                    ProbeAction::SetResult(v) => {
                        t.board.update(&t.container_id, |view| match kind {
                            ProbeKind::Readiness => view.ready = v,
                            ProbeKind::Liveness => view.liveness_failed = !v,
                            ProbeKind::Startup if v => view.started = true,
                            ProbeKind::Startup => view.startup_failed = true,
                        });
                        if kind == ProbeKind::Startup && v {
                            start.send_replace(true);
                        }
                    }
                    ProbeAction::Event { reason, message } => {
                        let c = ContainerRef::Container(t.container.name.clone());
                        t.recorder.record(&t.pod, &c, true, reason, &message);
                    }
                    ProbeAction::Count(result) => t.metrics.probe_result(crate::metrics::ProbeLabels {
                        probe_type: kind.title(),
                        result,
                        container: t.container.name.clone(),
                        pod: t.pod.name.clone(),
                        namespace: t.pod.namespace.clone(),
                        pod_uid: t.pod.uid.clone(),
                    }),
                }
            }
        }
        let wake_on_start = st.wakes_on_start(started);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wait_next(timing.period, &mut started_rx, wake_on_start) => {}
        }
    }
}

/// Spawns the container's probe tasks into `set`.
pub fn spawn_probes<R: Runtime>(set: &mut tokio::task::JoinSet<()>, task: ProbeTask<R>, cancel: CancellationToken) {
    let c = task.container.clone();
    let initial = initial_view(&c);
    task.board.insert(&task.container_id, initial);
    let start = Arc::new(watch::channel(initial.started).0);
    let task = Arc::new(task);
    for (kind, probe) in [
        (ProbeKind::Startup, c.startup_probe),
        (ProbeKind::Liveness, c.liveness_probe),
        (ProbeKind::Readiness, c.readiness_probe),
    ] {
        if let Some(p) = probe {
            set.spawn(probe_loop(task.clone(), kind, p, start.clone(), cancel.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn gated_wait_ends_when_the_container_starts() {
        let (tx, mut rx) = watch::channel(false);
        let t0 = Instant::now();
        let waiter = tokio::spawn(async move {
            wait_next(Duration::from_secs(10), &mut rx, true).await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send_replace(true);
        let woke = waiter.await.unwrap();
        assert!(woke - t0 < Duration::from_secs(2), "woke after {:?}, not right after the start", woke - t0);
    }

    #[tokio::test(start_paused = true)]
    async fn ungated_wait_keeps_the_period() {
        let (tx, mut rx) = watch::channel(false);
        let t0 = Instant::now();
        let waiter = tokio::spawn(async move {
            wait_next(Duration::from_secs(10), &mut rx, false).await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send_replace(true);
        let woke = waiter.await.unwrap();
        assert!(woke - t0 >= Duration::from_secs(10), "woke after {:?}, before the period", woke - t0);
    }
}
