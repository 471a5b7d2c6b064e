//! `nodekit bench pods`: pod startup latency through the reference agent with upstream's default
//! timings (from the pod's create returned, when it exists in the API, to Running seen by a
//! watch) for 30 pods at once, on fake-cri and containerd, next to the raw CRI floor for the same
//! work measured in the same run, and the agent's resident memory. Each batch starts from an
//! empty runtime (the agent's pods stopped by the agent, then removed), so no batch pays for the
//! containers of an earlier one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NODE_GRACE};
use crate::pods;

const PODS: usize = 30;
/// Rounds per runtime, each an agent batch then a floor batch; figures pool every round. The
/// p99 of fake-cri's 450 starts is its 5th slowest, steadier than the 2nd of 150; containerd's
/// rounds take ten times longer and carry no goal.
const ROUNDS_FAKE_CRI: usize = 15;
const ROUNDS_CONTAINERD: usize = 5;

/// Sets the rounds on both runtimes.
pub const ROUNDS_ENV: &str = "NODEKIT_BENCH_ROUNDS";

/// The rounds `NODEKIT_BENCH_ROUNDS` asks for, if set; an error saying what to fix when it is
/// not a whole number above 0 (the CLI refuses it before the bench starts).
pub fn rounds_override() -> Result<Option<usize>, String> {
    match std::env::var(ROUNDS_ENV) {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("{ROUNDS_ENV}={v:?}: not a whole number of rounds above 0; give e.g. 15, or unset it")),
        },
    }
}

/// Rounds on `runtime`: as above, or `NODEKIT_BENCH_ROUNDS` for both.
fn round_count(runtime: &str) -> usize {
    let default = if runtime == "fake-cri" { ROUNDS_FAKE_CRI } else { ROUNDS_CONTAINERD };
    rounds_override().ok().flatten().unwrap_or(default)
}

/// One round: an agent batch and the floor batch that follows it.
struct Round {
    agent: Vec<Duration>,
    floor: Vec<Duration>,
    /// Per agent-batch pod (fake-cri only, from its call log): create returned → RunPodSandbox
    /// began, RunPodSandbox, RunPodSandbox returned → Running seen.
    stages: Vec<[Duration; 3]>,
    calls: [Vec<Duration>; CALLS],
    rss_idle_kib: u64,
    rss_loaded_kib: u64,
    cpu: BatchCpu,
}

/// CPU time (ms, user + system) spent during one round's agent batch and floor batch.
#[derive(Clone, Copy, Default)]
struct BatchCpu {
    agent: u64,
    runtime_agent_batch: u64,
    bench_agent_batch: u64,
    runtime_floor_batch: u64,
    bench_floor_batch: u64,
    /// Busy and total jiffies of all CPUs from each batch's first start to its last pod seen
    /// running (the agent's) or started (the floor's).
    machine_agent_batch: (u64, u64),
    machine_floor_batch: (u64, u64),
}

impl std::ops::AddAssign for BatchCpu {
    fn add_assign(&mut self, o: BatchCpu) {
        self.agent += o.agent;
        self.runtime_agent_batch += o.runtime_agent_batch;
        self.bench_agent_batch += o.bench_agent_batch;
        self.runtime_floor_batch += o.runtime_floor_batch;
        self.bench_floor_batch += o.bench_floor_batch;
        let add = |a: &mut (u64, u64), b: (u64, u64)| *a = (a.0 + b.0, a.1 + b.1);
        add(&mut self.machine_agent_batch, o.machine_agent_batch);
        add(&mut self.machine_floor_batch, o.machine_floor_batch);
    }
}

/// User + system CPU time of process `pid` (all its threads) in ms; 0 when unknown.
fn cpu_ms(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse().ok()).collect();
    let ticks = f.iter().sum::<u64>();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100).max(1) as u64;
    ticks * 1000 / hz
}

struct Row {
    runtime: &'static str,
    rounds: usize,
    agent: Vec<Duration>,
    floor: Vec<Duration>,
    rss_idle_kib: u64,
    rss_loaded_kib: u64,
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((s.len() as f64) * p).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").trim().to_string())))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn pods(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let cp = harness::backend::ControlPlane::start(&ctx.world, harness::backend::ControlPlane::compressed_config(NODE_GRACE)).await?;
        let client = cp.client()?;
        let mut rows = Vec::new();
        // `nodekit bench pods --runtime R` measures R alone.
        let only = ctx.runtime.as_ref().map(|r| r.name().to_string());
        for (name, kind) in [
            ("fake-cri", harness::backend::RuntimeKind::FakeCri),
            ("containerd", harness::backend::RuntimeKind::Containerd),
        ] {
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            match harness::backend::Runtime::start(&ctx.world, NODE, kind).await {
                Ok(rt) => rows.push(runtime_row(&ctx, &cp, &client, rt, name).await?),
                Err(e) => println!("{name}: not measured: {e}"),
            }
        }
        print_table(&rows);
        cp.shutdown().await;
        Ok(())
    })
}

/// Every round on one runtime: prints its per-call, per-round and CPU lines and returns the
/// pooled row; the runtime is stopped at the end, also when a round fails.
async fn runtime_row(
    ctx: &CaseCtx,
    cp: &harness::backend::ControlPlane,
    client: &kube::Client,
    mut rt: harness::backend::Runtime,
    name: &'static str,
) -> anyhow::Result<Row> {
    let mut row = Row { runtime: name, rounds: round_count(name), agent: Vec::new(), floor: Vec::new(), rss_idle_kib: 0, rss_loaded_kib: 0 };
    let mut calls: [Vec<Duration>; CALLS] = Default::default();
    let mut rounds = Vec::new();
    let mut stages: Vec<[Duration; 3]> = Vec::new();
    // containerd's work is spread over its shims and runc: only fake-cri's is counted.
    let runtime_pid = rt.fake_cri_process().map(|p| p.pid());
    let mut cpu = BatchCpu::default();
    for round in 0..round_count(name) {
        let r = match measure(ctx, cp, client, &rt, runtime_pid, name, round).await {
            Ok(r) => r,
            Err(e) => {
                rt.stop().await?;
                return Err(e);
            }
        };
        rounds.push((pct(&r.agent, 0.99), pct(&r.floor, 0.99)));
        if round == 0 {
            row.rss_idle_kib = r.rss_idle_kib;
        }
        row.rss_loaded_kib = row.rss_loaded_kib.max(r.rss_loaded_kib);
        cpu += r.cpu;
        stages.extend(r.stages);
        row.agent.extend(r.agent);
        row.floor.extend(r.floor);
        for (all, c) in calls.iter_mut().zip(r.calls) {
            all.extend(c);
        }
    }
    rt.stop().await?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p50_p99 = |v: &[Duration]| format!("{:.1}/{:.1}", ms(pct(v, 0.5)), ms(pct(v, 0.99)));
    let per_call: Vec<String> = FLOOR_CALLS.iter().zip(&calls).map(|(call, v)| format!("{call} {}", p50_p99(v))).collect();
    println!("{name} floor calls, p50/p99 ms: {}", per_call.join(", "));
    let each: Vec<String> = rounds.iter().map(|(a, f)| format!("{:.0}/{:.0}", ms(*a), ms(*f))).collect();
    println!("{name} per round, agent p99/floor p99 ms: {}", each.join(", "));
    if !stages.is_empty() {
        let stage = |i: usize| p50_p99(&stages.iter().map(|s| s[i]).collect::<Vec<_>>());
        let after: Vec<Duration> = row.floor.iter().zip(&calls[0]).map(|(total, run)| total.saturating_sub(*run)).collect();
        println!(
            "{name} stages, p50/p99 ms: agent: create returned → RunPodSandbox {}, RunPodSandbox {}, then → Running seen {}; floor: RunPodSandbox {}, then → ContainerStatus returned {}",
            stage(0),
            stage(1),
            stage(2),
            p50_p99(&calls[0]),
            p50_p99(&after)
        );
    }
    let per_batch = |v: u64| v / round_count(name) as u64;
    let runtime_cpu = |v: u64| if runtime_pid.is_some() { per_batch(v).to_string() } else { "-".into() };
    println!(
        "{name} CPU ms per batch: agent batch: agent {}, runtime {}, API server and bench {}; floor batch: runtime {}, bench {}",
        per_batch(cpu.agent),
        runtime_cpu(cpu.runtime_agent_batch),
        per_batch(cpu.bench_agent_batch),
        runtime_cpu(cpu.runtime_floor_batch),
        per_batch(cpu.bench_floor_batch)
    );
    let busy = |(b, t): (u64, u64)| if t == 0 { 0.0 } else { b as f64 * 100.0 / t as f64 };
    println!(
        "{name} CPUs busy while a batch runs (all cores, every process and the kernel): agent batch {:.0}%, floor batch {:.0}%",
        busy(cpu.machine_agent_batch),
        busy(cpu.machine_floor_batch)
    );
    Ok(row)
}

/// The pooled figures of every runtime, with what was measured and the goals.
fn print_table(rows: &[Row]) {
    println!("pod startup, {PODS} pods at once, every round pooled (create returned → Running seen by a watch), ms");
    println!("{:<12} {:>6} {:>9} {:>9} {:>12} {:>12} {:>8} {:>14} {:>16}", "runtime", "rounds", "p50", "p99", "floor p50", "floor p99", "p99/flr", "agent RSS idle", "agent RSS 30 pods");
    for r in rows {
        let (p50, p99, f50, f99) = (pct(&r.agent, 0.5), pct(&r.agent, 0.99), pct(&r.floor, 0.5), pct(&r.floor, 0.99));
        println!(
            "{:<12} {:>6} {:>9.1} {:>9.1} {:>12.1} {:>12.1} {:>7.2}x {:>10} MiB {:>12} MiB",
            r.runtime,
            r.rounds,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            f50.as_secs_f64() * 1e3,
            f99.as_secs_f64() * 1e3,
            p99.as_secs_f64() / f99.as_secs_f64().max(1e-9),
            r.rss_idle_kib / 1024,
            r.rss_loaded_kib / 1024
        );
    }
    println!("floor: per pod {} with the agent's configs, issued when the pod's create returned in the agent's run", FLOOR_CALLS.join(", "));
    println!("agent: upstream's default timings (relist 1 s, node status 10 s, sync 1 m), the world's node size");
    println!("goals: p99 ≤ 200 ms and ≤ 1.2× the floor on fake-cri; agent idle RSS < 30 MiB");
}

async fn measure(
    ctx: &CaseCtx,
    cp: &harness::backend::ControlPlane,
    client: &kube::Client,
    rt: &harness::backend::Runtime,
    runtime_pid: Option<u32>,
    name: &'static str,
    round: usize,
) -> anyhow::Result<Round> {
    // The agent as deployed: upstream's timings, not the cases' compressed ones.
    let opts = crate::fixtures::deployed_agent_options()?;
    let mut agent = harness::backend::NodeAgent::start(&ctx.world, cp, NODE, rt, &opts).await?;
    crate::kube_wait::node_condition(client, NODE, "Ready", "True", Duration::from_secs(30)).await?;
    let pid = agent.process().pid();
    let rss_idle_kib = rss_kib(pid);
    // The agent's start-up work (first relist, node status, image and stats reads) is over
    // before the batch, as the floor's batch starts on a quiet machine too.
    machine_quiet().await;

    let specs: Vec<Pod> = (0..PODS)
        .map(|i| {
            let mut p = pods::pod(&format!("{name}-{round}-{i}"), NODE, vec![pods::container("c", &["pause"])], json!({}))?;
            p.metadata.labels.get_or_insert_default().insert("bench".into(), "pods".into());
            Ok(p)
        })
        .collect::<anyhow::Result<_>>()?;
    let me = Some(std::process::id());
    let cpu0 = [cpu_ms(Some(pid)), cpu_ms(runtime_pid), cpu_ms(me)];
    let machine0 = cpu_jiffies();
    let batch = agent_batch(client, &specs).await?;
    let machine_agent_batch = since(machine0);
    let stages = rt.state_dir().map(|d| agent_stages(&d.join("cri-calls.jsonl"), &batch)).unwrap_or_default();
    let (arrivals, running) = (batch.arrivals, batch.running.into_values().map(|(_, took)| took).collect());
    let rss_loaded_kib = rss_kib(pid);
    let mut cpu = BatchCpu {
        agent: cpu_ms(Some(pid)).saturating_sub(cpu0[0]),
        runtime_agent_batch: cpu_ms(runtime_pid).saturating_sub(cpu0[1]),
        bench_agent_batch: cpu_ms(me).saturating_sub(cpu0[2]),
        machine_agent_batch,
        ..Default::default()
    };
    for p in &specs {
        let _ = pods::delete(client, p.metadata.name.as_deref().unwrap_or_default(), Some(0)).await;
    }
    for p in &specs {
        crate::kube_wait::pod_gone(client, "default", p.metadata.name.as_deref().unwrap_or_default(), Duration::from_secs(60)).await?;
    }
    // A pod deleted with grace 0 leaves the API at once; its containers are the agent's to
    // kill. Stopping the agent before that would leave them running into the next batch.
    quiesced(rt).await?;
    agent.process().stop(Duration::from_secs(5)).await?;
    // Every batch starts from an empty runtime: what the agent stopped (and would remove later)
    // is removed now, before the floor.
    clear_runtime(rt).await?;
    // The next runtime's agent registers the node anew: its idle RSS is read once it is Ready.
    Api::<k8s_openapi::api::core::v1::Node>::all(client.clone()).delete(NODE, &Default::default()).await?;

    machine_quiet().await;
    // The floor's containers get the service variables the agent gives (every pod here is in
    // `default`).
    let services: Vec<node_agent::pods::service_env::ServiceInfo> =
        Api::<k8s_openapi::api::core::v1::Service>::all(client.clone()).list(&Default::default()).await?.items.iter().filter_map(node_agent::pods::service_env::ServiceInfo::of).collect();
    let services = node_agent::pods::service_env::service_env(&services, "default", true);
    let (floor, calls, [runtime_ms, bench_ms], machine) = raw_floor(rt, runtime_pid, &specs, &arrivals, agent.root_dir(), &services).await?;
    (cpu.runtime_floor_batch, cpu.bench_floor_batch, cpu.machine_floor_batch) = (runtime_ms, bench_ms, machine);
    Ok(Round { agent: running, floor, calls, stages, rss_idle_kib, rss_loaded_kib, cpu })
}

/// What an agent batch measured.
struct Batch {
    /// When each create returned, from the first create's start.
    arrivals: Vec<Duration>,
    /// Per pod: the wall-clock time its create returned and its latency from then to Running seen.
    running: HashMap<String, (jiff::Timestamp, Duration)>,
}

/// Through the agent: creates every pod at once and waits for each to be seen Running by a
/// watch.
async fn agent_batch(client: &kube::Client, specs: &[Pod]) -> anyhow::Result<Batch> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let seen: Api<PodPhase> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(seen, watcher::Config::default().labels("bench=pods")).applied_objects().boxed();
    let mut created: HashMap<String, (Instant, jiff::Timestamp)> = HashMap::new();
    let t0 = Instant::now();
    let creates = specs.iter().map(|p| {
        let api = api.clone();
        async move {
            let r = api.create(&Default::default(), p).await;
            r.map(|_| (p.metadata.name.clone().unwrap_or_default(), Instant::now(), jiff::Timestamp::now()))
        }
    });
    // When each pod exists in the API (its create returned; upstream's startup SLI counts from
    // the pod's creation): the agent's latency and the floor's both count from then.
    let mut arrivals = Vec::new();
    for r in futures::future::join_all(creates).await {
        let (n, t, w) = r?;
        created.insert(n, (t, w));
        arrivals.push(t - t0);
    }
    let mut running: HashMap<String, (jiff::Timestamp, Duration)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.len() < specs.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let pod = tokio::time::timeout(left, stream.next()).await?.ok_or_else(|| anyhow::anyhow!("watch ended"))??;
        let n = pod.metadata.name.clone().unwrap_or_default();
        if pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
            && !running.contains_key(&n)
            && let Some((t, w)) = created.get(&n)
        {
            running.insert(n, (*w, t.elapsed()));
        }
    }
    Ok(Batch { arrivals, running })
}

/// What the bench's watch reads of a pod: its metadata and phase. The observer decodes no more
/// than it uses, so that watching costs the machine little besides the API server's own work.
#[derive(Clone, Debug, serde::Deserialize)]
struct PodPhase {
    metadata: kube::api::ObjectMeta,
    #[serde(default)]
    status: Option<PhaseOnly>,
}

#[derive(Clone, Debug, serde::Deserialize)]
struct PhaseOnly {
    #[serde(default)]
    phase: Option<String>,
}

impl kube::Resource for PodPhase {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &kube::api::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
        &mut self.metadata
    }
}

/// Splits each pod's latency at its RunPodSandbox in fake-cri's call log (one JSON line per
/// call, stamped when it returned, the sandbox named after the pod). Pods without a record are
/// left out; an unreadable log gives nothing.
fn agent_stages(log: &std::path::Path, batch: &Batch) -> Vec<[Duration; 3]> {
    let sandbox: HashMap<String, (jiff::Timestamp, jiff::Timestamp)> = fake_cri::calllog::read(log)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.method == "RunPodSandbox" && c.code == "Ok")
        .filter_map(|c| Some((c.id.clone(), c.span()?)))
        .collect();
    let since = |a: jiff::Timestamp, b: jiff::Timestamp| Duration::try_from(b.duration_since(a)).unwrap_or_default();
    batch
        .running
        .iter()
        .filter_map(|(name, (created, total))| {
            let (began, done) = sandbox.get(name)?;
            let (to_sandbox, took) = (since(*created, *began), since(*began, *done));
            Some([to_sandbox, took, total.saturating_sub(to_sandbox + took)])
        })
        .collect()
}

/// Busy and total jiffies of all CPUs since `from` (a [`cpu_jiffies`] reading).
fn since(from: (u64, u64)) -> (u64, u64) {
    let now = cpu_jiffies();
    (now.0.saturating_sub(from.0), now.1.saturating_sub(from.1))
}

/// Busy and total jiffies of all CPUs, from /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = f.iter().take(8).sum();
    // idle and iowait are the 4th and 5th.
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// Waits until the machine is quiet — the CPUs at least 90% idle over two consecutive 100 ms
/// windows — so that neither batch starts while the previous one's teardown (the kernel freeing
/// network namespaces) or a component's start-up still runs. Gives up after 10 s and says so.
async fn machine_quiet() {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut quiet_windows = 0;
    let mut last = cpu_jiffies();
    while quiet_windows < 2 {
        if Instant::now() > deadline {
            println!("note: the machine was not quiet within 10 s; the batch starts anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = cpu_jiffies();
        let (busy, total) = (now.0.saturating_sub(last.0), now.1.saturating_sub(last.1));
        last = now;
        quiet_windows = if total > 0 && busy * 10 <= total { quiet_windows + 1 } else { 0 };
    }
}

/// The raw CRI floor: for each pod of the agent's run, the calls any agent has to make to start
/// it and report it running — RunPodSandbox, PodSandboxStatus (the pod IP its environment
/// needs), ImageStatus, CreateContainer, StartContainer, ContainerStatus (the start time its
/// status reports) — with the sandbox and container configs the agent builds (its own spec
/// functions, its log and pod directories), each pod issued when its create had returned in the
/// agent's run (the same concurrency) and timed from then: the agent's calls, nothing extra (no
/// API, watch, relist or status write). Also returns the CPU ms the runtime and the bench's
/// process spent on the starts, and the busy and total jiffies of all CPUs meanwhile.
async fn raw_floor(
    rt: &harness::backend::Runtime,
    runtime_pid: Option<u32>,
    specs: &[Pod],
    arrivals: &[Duration],
    root: &std::path::Path,
    services: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<(Vec<Duration>, [Vec<Duration>; CALLS], [u64; 2], (u64, u64))> {
    let client = fake_cri::client::connect(rt.socket()).await?;
    let ctx = node_agent::pods::spec::SpecContext {
        root_dir: root.to_path_buf(),
        node_name: NODE.to_string(),
        node_ip: None,
        cluster_dns: Vec::new(),
        cluster_domain: None,
        host_dns: node_agent::pods::spec::parse_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
        cgroup_root: harness::backend::node_cgroup_root(NODE)?,
    };
    let inputs = node_agent::pods::spec::EnvInputs { services: services.clone(), ..Default::default() };
    let me = Some(std::process::id());
    let cpu0 = [cpu_ms(runtime_pid), cpu_ms(me)];
    let machine0 = cpu_jiffies();
    let t0 = Instant::now();
    let work = specs.iter().zip(arrivals).map(|(spec, at)| {
        let mut pod = spec.clone();
        let floor_name = format!("floor-{}", spec.metadata.name.as_deref().unwrap_or_default());
        pod.metadata.name = Some(floor_name.clone());
        pod.metadata.uid = Some(floor_name);
        let (mut c, ctx, inputs) = (client.clone(), &ctx, &inputs);
        async move {
            tokio::time::sleep_until((t0 + *at).into()).await;
            let t = Instant::now();
            let (sid, calls) = start_one(&mut c, &pod, ctx, inputs).await?;
            Ok::<_, anyhow::Error>((t.elapsed(), sid, calls))
        }
    });
    // Teardown only once every pod has started, so that it does not overlap the starts (the
    // agent's run tears its pods down after the measurement too).
    let started: Vec<(Duration, String, [Duration; CALLS])> = futures::future::join_all(work).await.into_iter().collect::<anyhow::Result<_>>()?;
    let cpu = [cpu_ms(runtime_pid).saturating_sub(cpu0[0]), cpu_ms(me).saturating_sub(cpu0[1])];
    let machine = since(machine0);
    let calls: [Vec<Duration>; CALLS] = std::array::from_fn(|i| started.iter().map(|s| s.2[i]).collect());
    let mut c = client.clone();
    for (_, sid, _) in &started {
        c.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: sid.clone() }).await?;
        c.runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: sid.clone() }).await?;
    }
    Ok((started.into_iter().map(|(took, _, _)| took).collect(), calls, cpu, machine))
}

/// Waits until the runtime has no ready sandbox and no running container.
async fn quiesced(rt: &harness::backend::Runtime) -> anyhow::Result<()> {
    let c = fake_cri::client::connect(rt.socket()).await?;
    let what = "the agent to stop its deleted pods' sandboxes and containers";
    harness::wait::wait_for(what, Duration::from_secs(60), || {
        let mut c = c.clone();
        async move {
            let sandboxes = c.runtime.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }).await.map_err(|e| e.to_string())?.into_inner().items;
            let containers = c.runtime.list_containers(cri::ListContainersRequest { filter: None }).await.map_err(|e| e.to_string())?.into_inner().containers;
            let ready = sandboxes.iter().filter(|s| s.state == cri::PodSandboxState::SandboxReady as i32).count();
            let running = containers.iter().filter(|c| c.state == cri::ContainerState::ContainerRunning as i32).count();
            if ready == 0 && running == 0 { Ok(()) } else { Err(format!("{ready} sandboxes ready, {running} containers running")) }
        }
    })
    .await?;
    Ok(())
}

/// Stops and removes every sandbox the runtime has (with its containers), then checks that
/// none is left.
async fn clear_runtime(rt: &harness::backend::Runtime) -> anyhow::Result<()> {
    let mut c = fake_cri::client::connect(rt.socket()).await?;
    let sandboxes = c.runtime.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }).await?.into_inner().items;
    for s in &sandboxes {
        c.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: s.id.clone() }).await?;
        c.runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: s.id.clone() }).await?;
    }
    let left = c.runtime.list_pod_sandbox(cri::ListPodSandboxRequest { filter: None }).await?.into_inner().items.len();
    let containers = c.runtime.list_containers(cri::ListContainersRequest { filter: None }).await?.into_inner().containers.len();
    anyhow::ensure!(left == 0 && containers == 0, "the runtime still lists {left} sandboxes and {containers} containers after clearing");
    Ok(())
}

/// The CRI calls of the floor, in their order.
const FLOOR_CALLS: [&str; CALLS] = ["RunPodSandbox", "PodSandboxStatus", "ImageStatus", "CreateContainer", "StartContainer", "ContainerStatus"];
const CALLS: usize = 6;

/// The CRI calls that start `pod`'s one container, with the agent's configs: the sandbox id and
/// how long each call took.
async fn start_one(c: &mut fake_cri::client::Client, pod: &Pod, ctx: &node_agent::pods::spec::SpecContext, inputs: &node_agent::pods::spec::EnvInputs) -> anyhow::Result<(String, [Duration; CALLS])> {
    use node_agent::pods::spec;
    let container = pod.spec.as_ref().and_then(|s| s.containers.first()).context("a pod without containers")?;
    let cfg = spec::sandbox_config(pod, ctx, 0);
    for dir in spec::host_dirs(pod, &ctx.root_dir) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::create_dir_all(spec::pod_log_dir(&ctx.root_dir, pod).join(&container.name))?;
    let mut took = [Duration::ZERO; CALLS];
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        took[i] = t.elapsed();
        t = Instant::now();
    };
    let run = cri::RunPodSandboxRequest { config: Some(cfg.clone()), runtime_handler: String::new() };
    let sid = c.runtime.run_pod_sandbox(run).await?.into_inner().pod_sandbox_id;
    lap(0);
    let status = c.runtime.pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: sid.clone(), verbose: false }).await?.into_inner();
    lap(1);
    let ip = status.status.and_then(|s| s.network).map(|n| n.ip).filter(|ip| !ip.is_empty());
    let image = cri::ImageSpec { image: container.image.clone().unwrap_or_default(), ..Default::default() };
    c.images.image_status(cri::ImageStatusRequest { image: Some(image), verbose: false }).await?;
    lap(2);
    // The pod's /etc/hosts, as the agent writes it before creating a container.
    if node_agent::pods::etc_hosts::mounted(pod, ip.as_deref(), container) {
        node_agent::pods::etc_hosts::write(pod, ip.as_deref(), ctx).map_err(anyhow::Error::msg)?;
    }
    let config = spec::container_config(pod, container, 0, ip.as_deref(), ctx, false, inputs)?;
    let create = cri::CreateContainerRequest { pod_sandbox_id: sid.clone(), config: Some(config), sandbox_config: Some(cfg) };
    let cid = c.runtime.create_container(create).await?.into_inner().container_id;
    lap(3);
    c.runtime.start_container(cri::StartContainerRequest { container_id: cid.clone() }).await?;
    lap(4);
    // The running container's start time, which the pod's status reports.
    c.runtime.container_status(cri::ContainerStatusRequest { container_id: cid, verbose: false }).await?;
    lap(5);
    Ok((sid, took))
}
