//! Area `eviction` (upstream test/e2e_node/eviction_test.go, compressed): memory pressure from
//! workload pods ranks BestEffort first, then Burstable over its request, never the Guaranteed
//! pod; disk pressure from a writable layer and from an emptyDir; PID pressure from a fork pod;
//! the node condition and taint appear, new pods are rejected, then the condition clears after
//! the transition period and a new pod is admitted; a soft threshold waits for its grace period;
//! the evicted pod's status, message, DisruptionTarget condition and single Evicted event.
//! The node's size is configured small (`nodekit.nodeSize`), never the host's.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use serde_json::{Value, json};

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait::{self, phase, pod_condition_status};
use crate::pods::{self, container};

pub fn cases() -> Vec<Case> {
    // Thresholds against the world's configured node size, observed every 200 ms.
    let case = |id, body| Case {
        id,
        labels: &[Label::Conformance, Label::NodekitExtensions],
        needs: &[],
        topology: Topology::SingleNode,
        runtimes: Runtimes::FakeOnly,
        body,
    };
    let mut all = vec![
        case("eviction/memory-ranking-besteffort-then-burstable", memory_ranking as fn(CaseCtx) -> BodyFuture),
        case("eviction/evicted-pod-status-and-event", evicted_status),
        case("eviction/memory-condition-admission-and-recovery", condition_admission),
        case("eviction/disk-pressure-writable-layer", disk_writable_layer),
        case("eviction/disk-pressure-emptydir", disk_emptydir),
        case("eviction/pid-pressure-fork", pid_pressure),
        case("eviction/soft-threshold-grace-period", soft_grace),
    ];
    // Memory accounting on a real runtime (cgroup working set through CRI stats).
    all[0].runtimes = Runtimes::All;
    all
}

const READY: Duration = Duration::from_secs(20);
const START: Duration = Duration::from_secs(20);
const EVICT: Duration = Duration::from_secs(30);

/// Node size and thresholds: `node_size` lines (indented four spaces) go under
/// `nodekit.nodeSize` (monitoring every 200 ms), `top` lines are top-level fields.
async fn env(ctx: &CaseCtx, node_size: &str, top: &str) -> anyhow::Result<NodeEnv> {
    let extra = format!("nodekit:\n  evictionMonitoringPeriod: 200ms\n  nodeSize:\n{node_size}{top}");
    let env = NodeEnv::start(ctx, &extra).await?;
    env.wait_ready(READY).await?;
    Ok(env)
}

fn resources(req_mib: Option<u32>, limit_mib: Option<u32>) -> Value {
    let mut r = json!({});
    if let Some(m) = req_mib {
        r["requests"] = json!({"memory": format!("{m}Mi"), "cpu": "10m"});
    }
    if let Some(m) = limit_mib {
        r["limits"] = json!({"memory": format!("{m}Mi"), "cpu": "10m"});
    }
    r
}

fn with_resources(mut c: Value, r: Value) -> Value {
    c["resources"] = r;
    c
}

async fn running(client: &kube::Client, name: &str) -> anyhow::Result<Pod> {
    kube_wait::pod(client, "default", name, "Running and Ready", START, |p| {
        (phase(p) == "Running" && pod_condition_status(p, "Ready").as_deref() == Some("True")).then(|| p.clone())
    })
    .await
}

async fn evicted(client: &kube::Client, name: &str) -> anyhow::Result<Pod> {
    kube_wait::pod(client, "default", name, "Failed with reason Evicted", EVICT, |p| {
        let st = p.status.as_ref()?;
        (st.phase.as_deref() == Some("Failed") && st.reason.as_deref() == Some("Evicted")).then(|| p.clone())
    })
    .await
}

/// Polls pod `name` until container `c` has terminated; returns the time from the first sight
/// of the pod's Failed/Evicted status to the first sight of the terminated state, the exit
/// code, and the pod as it was first seen Evicted. The agent writes the status before it stops
/// the containers, so the window is at least the grace period it stopped them with.
async fn kill_window(client: &kube::Client, name: &str, c: &str) -> anyhow::Result<(Duration, i32, Pod)> {
    let t0 = Instant::now();
    let mut evicted_seen: Option<(Instant, Pod)> = None;
    loop {
        ensure!(t0.elapsed() < EVICT + START, "pod {name}: not evicted and stopped within {:?}", EVICT + START);
        let p = get(client, name).await?;
        let now = Instant::now();
        if evicted_seen.is_none() && is_evicted(&p) {
            evicted_seen = Some((now, p.clone()));
        }
        if let Some(t) = pods::container_status(&p, c).and_then(|s| s.state.as_ref()?.terminated.clone()) {
            let (at, pod) = evicted_seen.with_context(|| format!("container {c} terminated before pod {name} was seen Evicted: {t:?}"))?;
            return Ok((now - at, t.exit_code, pod));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The eviction's grace period, bounded from both sides: the hog ignores SIGTERM, so it ends
/// only by SIGKILL (exit 137) once `grace` has run out — not at once (no grace), not after the
/// pod's own 30 s.
fn expect_killed_after(window: Duration, code: i32, grace: Duration) -> anyhow::Result<()> {
    ensure!(code == 137, "the SIGTERM-ignoring hog ended with exit code {code}, expected 137 (SIGKILL after the grace period)");
    ensure!(
        window + Duration::from_millis(100) >= grace,
        "the hog was stopped {window:?} after its eviction: less than the {grace:?} grace period"
    );
    ensure!(window <= grace + Duration::from_secs(4), "the hog was stopped {window:?} after its eviction: the grace period is {grace:?}, not the pod's 30 s");
    Ok(())
}

fn disruption_at(p: &Pod) -> Option<jiff::Timestamp> {
    let cs = p.status.as_ref()?.conditions.as_ref()?;
    cs.iter().find(|c| c.type_ == "DisruptionTarget")?.last_transition_time.as_ref().map(|t| t.0)
}

fn is_evicted(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| s.phase.as_deref() == Some("Failed") && s.reason.as_deref() == Some("Evicted"))
}

async fn get(client: &kube::Client, name: &str) -> anyhow::Result<Pod> {
    Ok(Api::<Pod>::namespaced(client.clone(), "default").get(name).await?)
}

fn message(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default()
}

fn taints(n: &Node) -> Vec<(String, String)> {
    n.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default().into_iter().map(|t| (t.key, t.effect)).collect()
}

const MEM_NODE: &str = "    memory: 600Mi\n    ephemeralStorage: 4Gi\n    pids: 4000\n";

fn memory_ranking(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // 1000Mi node, pressure above 700Mi used. The guaranteed pod (100Mi, request = limit
        // 150Mi) and the BestEffort hog (400Mi) are Ready only once they hold all of it (a
        // tcpSocket readiness probe on a port opened after the allocation): 500Mi. The burstable
        // pod (request 50Mi) then grows by 100Mi/s to 700Mi. Pressure starts near 200Mi of it,
        // when the hog is 400Mi over its request and the burstable pod ~150Mi over; the burstable
        // pod would rank first only past 450Mi, 2.5 s of growth later. With the hog gone, it
        // keeps growing and goes second near 600Mi.
        let node = "    memory: 1000Mi\n    ephemeralStorage: 4Gi\n    pids: 4000\n";
        let env = env(&ctx, node, "evictionHard:\n  memory.available: 300Mi\nevictionPressureTransitionPeriod: 2s\n").await?;
        let holding = |name: &str, mib: &str| {
            let mut c = container(name, &["alloc-memory", "--mib", mib, "--ready-port", "7070"]);
            c["readinessProbe"] = json!({"tcpSocket": {"port": 7070}, "periodSeconds": 1});
            c
        };
        let g = with_resources(holding("c", "100"), json!({"requests": {"memory": "150Mi", "cpu": "500m"}, "limits": {"memory": "150Mi", "cpu": "500m"}}));
        pods::create(&env.client, &pods::pod("guaranteed", NODE, vec![g], json!({}))?).await?;
        running(&env.client, "guaranteed").await?;
        pods::create(&env.client, &pods::pod("hog", NODE, vec![holding("c", "400")], json!({}))?).await?;
        running(&env.client, "hog").await?;
        let grow = ["alloc-memory", "--mib", "700", "--step-mib", "10", "--interval", "100ms"];
        let burstable = pods::pod("burstable", NODE, vec![with_resources(container("c", &grow), resources(Some(50), None))], json!({}))?;
        pods::create(&env.client, &burstable).await?;
        // The hog goes first: the first eviction seen is the hog's (one eviction per 200 ms pass;
        // when both are seen at once, the hog's DisruptionTarget must not be later).
        let first = harness::wait::wait_for("the first eviction", EVICT, || async {
            let h = get(&env.client, "hog").await.ok()?;
            let b = get(&env.client, "burstable").await.ok()?;
            match (is_evicted(&h), is_evicted(&b)) {
                (false, false) => None,
                (true, false) => Some(Ok(())),
                (false, true) => Some(Err(anyhow::anyhow!("the burstable pod was evicted before the BestEffort hog"))),
                (true, true) => Some(if disruption_at(&h) <= disruption_at(&b) {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("the burstable pod's eviction is older than the hog's"))
                }),
            }
        })
        .await?;
        first?;
        evicted(&env.client, "burstable").await?;
        let b = get(&env.client, "burstable").await?;
        ensure!(message(&b).starts_with("The node was low on resource: memory. "), "burstable message {:?}", message(&b));
        // Pressure resolves; the guaranteed pod keeps running.
        kube_wait::node_condition(&env.client, NODE, "MemoryPressure", "False", EVICT).await?;
        let g = get(&env.client, "guaranteed").await?;
        ensure!(phase(&g) == "Running" && !is_evicted(&g), "the guaranteed pod: phase {} message {:?}", phase(&g), message(&g));
        env.stop().await
    })
}

fn evicted_status(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx, MEM_NODE, "evictionHard:\n  memory.available: 250Mi\nevictionPressureTransitionPeriod: 1s\n").await?;
        let hog = pods::pod("hog", NODE, vec![container("hog", &["--ignore-sigterm", "alloc-memory", "--mib", "400"])], json!({"terminationGracePeriodSeconds": 30}))?;
        pods::create(&env.client, &hog).await?;
        let (window, code, p) = kill_window(&env.client, "hog", "hog").await?;
        let m = message(&p);
        ensure!(m.starts_with("The node was low on resource: memory. Threshold quantity: 250Mi, available: "), "message {m:?}");
        ensure!(m.contains(". Container hog was using ") && m.ends_with(", request is 0, has larger consumption of memory. "), "message {m:?}");
        let conds = p.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        let dt = conds.iter().find(|c| c.type_ == "DisruptionTarget").context("no DisruptionTarget condition")?;
        ensure!(dt.status == "True" && dt.reason.as_deref() == Some("TerminationByKubelet"), "DisruptionTarget {dt:?}");
        ensure!(dt.message.as_deref().is_some_and(|d| d.starts_with("The node was low on resource: memory")), "DisruptionTarget message {:?}", dt.message);
        // Hard eviction: upstream's immediateEvictionGracePeriodSeconds (1 s), although the pod
        // asks for 30 s.
        expect_killed_after(window, code, Duration::from_secs(1))?;
        // Exactly one Evicted event with the offending container annotations.
        let events = harness::wait::wait_for("the Evicted event", START, || async {
            let evs = pods::events_for(&env.client, "hog").await.ok()?;
            let ev: Vec<_> = evs.into_iter().filter(|e| e.reason.as_deref() == Some("Evicted")).collect();
            (!ev.is_empty()).then_some(ev)
        })
        .await?;
        kube_wait::node_condition(&env.client, NODE, "MemoryPressure", "False", EVICT).await?;
        let all: Vec<_> = pods::events_for(&env.client, "hog").await?.into_iter().filter(|e| e.reason.as_deref() == Some("Evicted")).collect();
        ensure!(all.len() == 1 && events.len() == 1, "{} Evicted events", all.len());
        let ev = &all[0];
        ensure!(ev.type_.as_deref() == Some("Warning") && ev.message.as_deref() == Some(m.as_str()), "event {ev:?}");
        let ann = ev.metadata.annotations.clone().unwrap_or_default();
        ensure!(ann.get("offending_containers").map(String::as_str) == Some("hog"), "annotations {ann:?}");
        ensure!(ann.get("starved_resource").map(String::as_str) == Some("memory"), "annotations {ann:?}");
        ensure!(ann.get("offending_containers_usage").is_some_and(|u| !u.is_empty() && m.contains(&format!("using {u},"))), "annotations {ann:?}");
        env.stop().await
    })
}

fn condition_admission(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        // A soft threshold with a long grace period holds the pressure without evicting.
        let top = "evictionHard:\n  memory.available: 50Mi\nevictionSoft:\n  memory.available: 250Mi\nevictionSoftGracePeriod:\n  memory.available: 1h\nevictionPressureTransitionPeriod: 2s\n";
        let env = env(&ctx, MEM_NODE, top).await?;
        let hold = pods::pod("hold", NODE, vec![with_resources(container("c", &["alloc-memory", "--mib", "400"]), resources(Some(450), Some(450)))], json!({}))?;
        pods::create(&env.client, &hold).await?;
        let node = kube_wait::node_condition(&env.client, NODE, "MemoryPressure", "True", EVICT).await?;
        let cond = node.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|cs| cs.iter().find(|c| c.type_ == "MemoryPressure")).cloned().context("no MemoryPressure")?;
        ensure!(cond.reason.as_deref() == Some("KubeletHasInsufficientMemory"), "reason {:?}", cond.reason);
        ensure!(cond.message.as_deref() == Some("kubelet has insufficient memory available"), "message {:?}", cond.message);
        kube_wait::node(&env.client, NODE, "memory-pressure taint", START, |n| {
            taints(n).contains(&("node.kubernetes.io/memory-pressure".into(), "NoSchedule".into())).then_some(())
        })
        .await?;
        // A new BestEffort pod is rejected; a Burstable one is admitted.
        let be = pods::pod("late-besteffort", NODE, vec![container("c", &["pause"])], json!({}))?;
        pods::create(&env.client, &be).await?;
        let rejected = evicted(&env.client, "late-besteffort").await?;
        ensure!(message(&rejected) == "The node had condition: [MemoryPressure]. ", "message {:?}", message(&rejected));
        let burst = pods::pod("late-burstable", NODE, vec![with_resources(container("c", &["pause"]), resources(Some(10), None))], json!({}))?;
        pods::create(&env.client, &burst).await?;
        running(&env.client, "late-burstable").await?;
        ensure!(!is_evicted(&get(&env.client, "hold").await?), "the pod under a soft threshold with a 1h grace period was evicted");
        // Relieve the pressure: the condition holds for the transition period, then clears.
        pods::delete(&env.client, "hold", Some(0)).await?;
        let relieved = Instant::now();
        kube_wait::node_condition(&env.client, NODE, "MemoryPressure", "False", EVICT).await?;
        ensure!(relieved.elapsed() >= Duration::from_millis(1500), "MemoryPressure cleared {:?} after relief (transition period 2s)", relieved.elapsed());
        kube_wait::node(&env.client, NODE, "no memory-pressure taint", START, |n| {
            (!taints(n).iter().any(|t| t.0 == "node.kubernetes.io/memory-pressure")).then_some(())
        })
        .await?;
        let again = pods::pod("after", NODE, vec![container("c", &["pause"])], json!({}))?;
        pods::create(&env.client, &again).await?;
        running(&env.client, "after").await?;
        env.stop().await
    })
}

async fn disk_case(ctx: CaseCtx, emptydir: bool) -> anyhow::Result<()> {
    let node = "    memory: 8Gi\n    ephemeralStorage: 600Mi\n    pids: 4000\n";
    let env = env(&ctx, node, "evictionHard:\n  nodefs.available: 250Mi\nevictionPressureTransitionPeriod: 1s\n").await?;
    let quiet = pods::pod("quiet", NODE, vec![container("c", &["pause"])], json!({}))?;
    pods::create(&env.client, &quiet).await?;
    running(&env.client, "quiet").await?;
    let filler = if emptydir {
        // fake-cri containers see the host tree: mount over a directory that exists there.
        let mut c = container("c", &["fill-disk", "--path", "/mnt/fill", "--mib", "400"]);
        c["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
        c["volumeMounts"] = json!([{"name": "scratch", "mountPath": "/mnt"}]);
        pods::pod("filler", NODE, vec![c], json!({"volumes": [{"name": "scratch", "emptyDir": {}}]}))?
    } else {
        pods::pod("filler", NODE, vec![container("c", &["fill-disk", "--path", "/tmp/fill", "--mib", "400"])], json!({}))?
    };
    pods::create(&env.client, &filler).await?;
    if let Err(e) = kube_wait::node_condition(&env.client, NODE, "DiskPressure", "True", EVICT).await {
        let st = get(&env.client, "filler").await.ok().and_then(|p| p.status).map(|s| serde_json::to_string(&s.container_statuses).unwrap_or_default());
        return Err(e.context(format!("filler container statuses: {}", st.unwrap_or_default())));
    }
    let p = evicted(&env.client, "filler").await?;
    ensure!(message(&p).starts_with("The node was low on resource: ephemeral-storage. "), "message {:?}", message(&p));
    kube_wait::node_condition(&env.client, NODE, "DiskPressure", "False", EVICT).await?;
    let q = get(&env.client, "quiet").await?;
    ensure!(phase(&q) == "Running" && !is_evicted(&q), "the quiet pod was disturbed: {}", phase(&q));
    env.stop().await
}

fn disk_writable_layer(ctx: CaseCtx) -> BodyFuture {
    Box::pin(disk_case(ctx, false))
}

fn disk_emptydir(ctx: CaseCtx) -> BodyFuture {
    Box::pin(disk_case(ctx, true))
}

fn pid_pressure(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let node = "    memory: 8Gi\n    ephemeralStorage: 4Gi\n    pids: 60\n";
        let env = env(&ctx, node, "evictionHard:\n  pid.available: 25\nevictionPressureTransitionPeriod: 1s\n").await?;
        let quiet = pods::pod("quiet", NODE, vec![container("c", &["pause"])], json!({}))?;
        pods::create(&env.client, &quiet).await?;
        running(&env.client, "quiet").await?;
        let forker = pods::pod("forker", NODE, vec![container("c", &["fork-processes", "--count", "40"])], json!({}))?;
        pods::create(&env.client, &forker).await?;
        kube_wait::node_condition(&env.client, NODE, "PIDPressure", "True", EVICT).await?;
        let p = evicted(&env.client, "forker").await?;
        ensure!(message(&p).starts_with("The node was low on resource: pids. "), "message {:?}", message(&p));
        kube_wait::node_condition(&env.client, NODE, "PIDPressure", "False", EVICT).await?;
        ensure!(!is_evicted(&get(&env.client, "quiet").await?), "the quiet pod was evicted");
        env.stop().await
    })
}

fn soft_grace(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        const GRACE: Duration = Duration::from_secs(3);
        let top = "evictionHard:\n  memory.available: 10Mi\nevictionSoft:\n  memory.available: 250Mi\nevictionSoftGracePeriod:\n  memory.available: 3s\nevictionMaxPodGracePeriod: 1\nevictionPressureTransitionPeriod: 1s\n";
        let env = env(&ctx, MEM_NODE, top).await?;
        let hog = pods::pod("hog", NODE, vec![container("hog", &["--ignore-sigterm", "alloc-memory", "--mib", "400"])], json!({"terminationGracePeriodSeconds": 30}))?;
        pods::create(&env.client, &hog).await?;
        kube_wait::node_condition(&env.client, NODE, "MemoryPressure", "True", EVICT).await?;
        let pressure_seen = Instant::now();
        let (window, code, _) = kill_window(&env.client, "hog", "hog").await?;
        let after = pressure_seen.elapsed().saturating_sub(window);
        // The condition is written within a status period (500 ms) of the threshold being met.
        ensure!(after + Duration::from_millis(700) >= GRACE, "evicted {after:?} after the pressure appeared; grace period {GRACE:?}");
        // Soft eviction grace: min(the pod's 30 s, evictionMaxPodGracePeriod 1 s).
        expect_killed_after(window, code, Duration::from_secs(1))?;
        env.stop().await
    })
}
