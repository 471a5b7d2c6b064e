//! `nodekit bench pods`: pod startup latency through the reference agent (API create → Running
//! seen by a watch) for 30 pods at once, on fake-cri and containerd, next to the raw CRI floor
//! for the same work measured in the same run, and the agent's resident memory. Each batch starts
//! from an empty runtime (the agent's pods stopped by the agent, then removed), so no batch pays
//! for the containers of an earlier one.

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
/// Rounds per runtime, each an agent batch then a floor batch; figures pool every round.
const ROUNDS: usize = 5;

/// One round: an agent batch and the floor batch that follows it.
struct Round {
    agent: Vec<Duration>,
    floor: Vec<Duration>,
    calls: [Vec<Duration>; 5],
    rss_idle_kib: u64,
    rss_loaded_kib: u64,
}

struct Row {
    runtime: &'static str,
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
        for (name, kind) in [
            ("fake-cri", harness::backend::RuntimeKind::FakeCri),
            ("containerd", harness::backend::RuntimeKind::Containerd),
        ] {
            let rt = match harness::backend::Runtime::start(&ctx.world, NODE, kind).await {
                Ok(rt) => rt,
                Err(e) => {
                    println!("{name}: not measured: {e}");
                    continue;
                }
            };
            let mut row = Row { runtime: name, agent: Vec::new(), floor: Vec::new(), rss_idle_kib: 0, rss_loaded_kib: 0 };
            let mut calls: [Vec<Duration>; 5] = Default::default();
            let mut rounds = Vec::new();
            for round in 0..ROUNDS {
                let r = match measure(&ctx, &cp, &client, &rt, name, round).await {
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
                row.agent.extend(r.agent);
                row.floor.extend(r.floor);
                for (all, c) in calls.iter_mut().zip(r.calls) {
                    all.extend(c);
                }
            }
            rt.stop().await?;
            let per_call: Vec<String> = FLOOR_CALLS
                .iter()
                .zip(&calls)
                .map(|(call, v)| format!("{call} {:.1}/{:.1}", pct(v, 0.5).as_secs_f64() * 1e3, pct(v, 0.99).as_secs_f64() * 1e3))
                .collect();
            println!("{name} floor calls, p50/p99 ms: {}", per_call.join(", "));
            let each: Vec<String> = rounds.iter().map(|(a, f)| format!("{:.0}/{:.0}", a.as_secs_f64() * 1e3, f.as_secs_f64() * 1e3)).collect();
            println!("{name} per round, agent p99/floor p99 ms: {}", each.join(", "));
            rows.push(row);
        }
        println!("pod startup, {PODS} pods at once × {ROUNDS} rounds pooled (API create → Running seen by a watch), ms");
        println!("{:<12} {:>9} {:>9} {:>12} {:>12} {:>8} {:>14} {:>16}", "runtime", "p50", "p99", "floor p50", "floor p99", "p99/flr", "agent RSS idle", "agent RSS 30 pods");
        for r in &rows {
            let (p50, p99, f50, f99) = (pct(&r.agent, 0.5), pct(&r.agent, 0.99), pct(&r.floor, 0.5), pct(&r.floor, 0.99));
            println!(
                "{:<12} {:>9.1} {:>9.1} {:>12.1} {:>12.1} {:>7.2}x {:>10} MiB {:>12} MiB",
                r.runtime,
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3,
                f50.as_secs_f64() * 1e3,
                f99.as_secs_f64() * 1e3,
                p99.as_secs_f64() / f99.as_secs_f64().max(1e-9),
                r.rss_idle_kib / 1024,
                r.rss_loaded_kib / 1024
            );
        }
        println!("floor: per pod RunPodSandbox, PodSandboxStatus, ImageStatus, CreateContainer, StartContainer with the agent's configs, issued when the pod's create returned in the agent's run");
        println!("goals: p99 ≤ 200 ms and ≤ 1.2× the floor on fake-cri; agent idle RSS < 30 MiB");
        cp.shutdown().await;
        Ok(())
    })
}

async fn measure(
    ctx: &CaseCtx,
    cp: &harness::backend::ControlPlane,
    client: &kube::Client,
    rt: &harness::backend::Runtime,
    name: &'static str,
    round: usize,
) -> anyhow::Result<Round> {
    let opts = crate::fixtures::agent_options("")?;
    let mut agent = harness::backend::NodeAgent::start(&ctx.world, cp, NODE, rt, &opts).await?;
    crate::kube_wait::node_condition(client, NODE, "Ready", "True", Duration::from_secs(30)).await?;
    let pid = agent.process().pid();
    let rss_idle_kib = rss_kib(pid);

    // Through the agent: all pods created at once; latency = Running seen by the watch − create.
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(api.clone(), watcher::Config::default().labels("bench=pods")).applied_objects().boxed();
    let mut created: HashMap<String, Instant> = HashMap::new();
    let specs: Vec<Pod> = (0..PODS)
        .map(|i| {
            let mut p = pods::pod(&format!("{name}-{round}-{i}"), NODE, vec![pods::container("c", &["pause"])], json!({}))?;
            p.metadata.labels.get_or_insert_default().insert("bench".into(), "pods".into());
            Ok(p)
        })
        .collect::<anyhow::Result<_>>()?;
    let t0 = Instant::now();
    let creates = specs.iter().map(|p| {
        let api = api.clone();
        async move {
            let t = Instant::now();
            api.create(&Default::default(), p).await.map(|_| (p.metadata.name.clone().unwrap_or_default(), t, t0.elapsed()))
        }
    });
    // When each pod could reach the node: its create returned.
    let mut arrivals = Vec::new();
    for r in futures::future::join_all(creates).await {
        let (n, t, arrived) = r?;
        created.insert(n, t);
        arrivals.push(arrived);
    }
    let mut running: HashMap<String, Duration> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.len() < PODS {
        let left = deadline.saturating_duration_since(Instant::now());
        let pod = tokio::time::timeout(left, stream.next()).await?.ok_or_else(|| anyhow::anyhow!("watch ended"))??;
        let n = pod.metadata.name.clone().unwrap_or_default();
        if crate::kube_wait::phase(&pod) == "Running" && !running.contains_key(&n) {
            if let Some(t) = created.get(&n) {
                running.insert(n, t.elapsed());
            }
        }
    }
    let rss_loaded_kib = rss_kib(pid);
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

    let (floor, calls) = raw_floor(rt, &specs, &arrivals, agent.root_dir()).await?;
    Ok(Round { agent: running.into_values().collect(), floor, calls, rss_idle_kib, rss_loaded_kib })
}

/// The raw CRI floor: for each pod of the agent's run, the calls any agent has to make to start
/// it — RunPodSandbox, PodSandboxStatus (the pod IP its environment needs), ImageStatus,
/// CreateContainer, StartContainer — with the sandbox and container configs the agent builds
/// (its own spec functions, its log and pod directories), each pod issued when its create had
/// returned in the agent's run (the same concurrency) and timed from then: the same calls,
/// nothing extra (no API, watch, relist or status write).
async fn raw_floor(
    rt: &harness::backend::Runtime,
    specs: &[Pod],
    arrivals: &[Duration],
    root: &std::path::Path,
) -> anyhow::Result<(Vec<Duration>, [Vec<Duration>; 5])> {
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
    let t0 = Instant::now();
    let work = specs.iter().zip(arrivals).map(|(spec, at)| {
        let mut pod = spec.clone();
        let floor_name = format!("floor-{}", spec.metadata.name.as_deref().unwrap_or_default());
        pod.metadata.name = Some(floor_name.clone());
        pod.metadata.uid = Some(floor_name);
        let (mut c, ctx) = (client.clone(), &ctx);
        async move {
            tokio::time::sleep_until((t0 + *at).into()).await;
            let t = Instant::now();
            let (sid, calls) = start_one(&mut c, &pod, ctx).await?;
            Ok::<_, anyhow::Error>((t.elapsed(), sid, calls))
        }
    });
    // Teardown only once every pod has started, so that it does not overlap the starts (the
    // agent's run tears its pods down after the measurement too).
    let started: Vec<(Duration, String, [Duration; 5])> = futures::future::join_all(work).await.into_iter().collect::<anyhow::Result<_>>()?;
    let calls: [Vec<Duration>; 5] = std::array::from_fn(|i| started.iter().map(|s| s.2[i]).collect());
    let mut c = client.clone();
    for (_, sid, _) in &started {
        c.runtime.stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: sid.clone() }).await?;
        c.runtime.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: sid.clone() }).await?;
    }
    Ok((started.into_iter().map(|(took, _, _)| took).collect(), calls))
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
const FLOOR_CALLS: [&str; 5] = ["RunPodSandbox", "PodSandboxStatus", "ImageStatus", "CreateContainer", "StartContainer"];

/// The CRI calls that start `pod`'s one container, with the agent's configs: the sandbox id and
/// how long each call took.
async fn start_one(c: &mut fake_cri::client::Client, pod: &Pod, ctx: &node_agent::pods::spec::SpecContext) -> anyhow::Result<(String, [Duration; 5])> {
    use node_agent::pods::spec;
    let container = pod.spec.as_ref().and_then(|s| s.containers.first()).context("a pod without containers")?;
    let cfg = spec::sandbox_config(pod, ctx, 0);
    for dir in spec::host_dirs(pod, &ctx.root_dir) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::create_dir_all(spec::pod_log_dir(&ctx.root_dir, pod).join(&container.name))?;
    let mut took = [Duration::ZERO; 5];
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
    let config = spec::container_config(pod, container, 0, ip.as_deref(), ctx, false, &Default::default())?;
    let create = cri::CreateContainerRequest { pod_sandbox_id: sid.clone(), config: Some(config), sandbox_config: Some(cfg) };
    let cid = c.runtime.create_container(create).await?.into_inner().container_id;
    lap(3);
    c.runtime.start_container(cri::StartContainerRequest { container_id: cid }).await?;
    lap(4);
    Ok((sid, took))
}
