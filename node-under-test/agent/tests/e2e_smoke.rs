//! End-to-end smoke test: the fake API server, fake-cri and the agent run in one process inside
//! fresh net + mount + pid namespaces (the test re-executes itself under `unshare`), so nothing
//! touches the host network. Timings are compressed through the `nodekit:` config block.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use support::{enter_namespaces, wait_for, workload_bin};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tokio_util::sync::CancellationToken;

const NODE: &str = "node-a";

const CONFIG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeLeaseDurationSeconds: 4
nodeStatusUpdateFrequency: 500ms
nodeStatusReportFrequency: 5s
maxPods: 20
nodekit:
  containerBackOffBase: 1s
  containerBackOffMax: 4s
  runtimeRelistPeriod: 200ms
  apiRequestTimeout: 3s
  nodeSize:
    cpu: \"2\"
    memory: 2Gi
    ephemeralStorage: 64Gi
    pids: 100000
";

struct Agent {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<node_agent::Result<()>>,
    healthz: std::sync::mpsc::Receiver<std::net::SocketAddr>,
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn start_agent(dir: &Path, kubeconfig: &Path, socket: &Path) -> Result<Agent> {
    let cfg = dir.join("kubelet.yaml");
    std::fs::write(&cfg, CONFIG)?;
    let flags = <node_agent::cli::Flags as clap::Parser>::try_parse_from([
        "node-agent".to_string(),
        format!("--config={}", cfg.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--node-name={NODE}"),
        format!("--container-runtime-endpoint=unix://{}", socket.display()),
        format!("--root-dir={}", dir.join("root").display()),
        "--node-ip=127.0.0.1".into(),
        "--pod-cidr=10.244.1.0/24".into(),
        "--healthz-bind-address=127.0.0.1:0".into(),
    ])?;
    let (settings, healthz) = flags.settings()?;
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let kc = kubeconfig.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let task = tokio::spawn(async move {
        node_agent::agent::run(settings, &kc, healthz, c, move |a| {
            let _ = tx.send(a.healthz);
        })
        .await
    });
    Ok(Agent { cancel, task, healthz: rx })
}

fn pod(name: &str, restart: &str, args: &[&str], readiness: bool) -> Pod {
    let mut c = serde_json::json!({
        "name": "main",
        "image": fake_cri::WORKLOAD_IMAGE,
        "args": args,
    });
    if readiness {
        c["readinessProbe"] = serde_json::json!({"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1});
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "restartPolicy": restart, "terminationGracePeriodSeconds": 5, "containers": [c]}
    }))
    .expect("pod json")
}

fn cond<'a>(p: &'a Pod, kind: &str) -> Option<&'a str> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == kind).map(|c| c.status.as_str())
}

async fn scenario() -> Result<()> {
    let _ = Command::new("ip").args(["link", "set", "lo", "up"]).status();
    // Not under /tmp: fake-cri gives containers a private /tmp, which would hide files there.
    let dir = tempfile::Builder::new().prefix("agent-e2e").tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let api_cfg = fake_apiserver::Config {
        node_monitor_grace_period: Duration::from_secs(5),
        node_monitor_period: Duration::from_millis(200),
        ..fake_apiserver::Config::with_listen("127.0.0.1:0")
    };
    let server = fake_apiserver::Server::start(api_cfg).await?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let socket = dir.path().join("cri.sock");
    let cri = fake_cri::FakeCri::start(fake_cri::Config::new(&socket, dir.path().join("cri-state"), &workload_bin())).await?;
    let agent = start_agent(dir.path(), &kubeconfig, &socket)?;
    let client = node_agent::agent::client_from_kubeconfig(&kubeconfig).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // Registration: Ready once UpdateRuntimeConfig made the network ready.
    let node = wait_for("node Ready", Duration::from_secs(20), || async {
        let n = nodes.get_opt(NODE).await.ok().flatten()?;
        let ready = n.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(n)
    })
    .await?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("kubernetes.io/hostname").map(String::as_str), Some(NODE));
    let st = node.status.clone().context("node status")?;
    assert_eq!(st.capacity.as_ref().and_then(|c| c.get("pods")).map(|q| q.0.as_str()), Some("20"));
    assert_eq!(st.capacity.as_ref().and_then(|c| c.get("memory")).map(|q| q.0.as_str()), Some("2097152Ki"));
    assert!(st.node_info.as_ref().is_some_and(|i| i.container_runtime_version.contains("://")));
    assert_eq!(node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()), Some("10.244.1.0/24"));

    // Lease: owner reference and renewals.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = wait_for("lease", Duration::from_secs(10), || async { leases.get_opt(NODE).await.ok().flatten() }).await?;
    let owner = &first.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Node", node.metadata.uid.as_deref().unwrap_or_default()));
    let t0 = first.spec.as_ref().and_then(|s| s.renew_time.clone()).context("renewTime")?;
    wait_for("lease renewal", Duration::from_secs(5), || async {
        let l = leases.get_opt(NODE).await.ok().flatten()?;
        (l.spec?.renew_time? .0 > t0.0).then_some(())
    })
    .await?;

    // A serving pod becomes Running and Ready through its readiness probe.
    pods.create(&PostParams::default(), &pod("web", "Always", &["netexec", "--http-port=8080"], true)).await?;
    let web = wait_for("web Ready", Duration::from_secs(30), || async {
        let p = pods.get_opt("web").await.ok().flatten()?;
        (cond(&p, "Ready") == Some("True")).then_some(p)
    })
    .await?;
    let s = web.status.clone().context("status")?;
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert!(s.pod_ip.as_deref().is_some_and(|ip| ip.starts_with("10.244.1.")), "{:?}", s.pod_ip);
    let kinds: Vec<String> = s.conditions.iter().flatten().map(|c| c.type_.clone()).collect();
    for k in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"] {
        assert!(kinds.iter().any(|x| x == k), "missing {k} in {kinds:?}");
    }
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let reasons: Vec<String> = events.list(&ListParams::default()).await?.items.into_iter().filter_map(|e| e.reason).collect();
    for r in ["Pulled", "Created", "Started"] {
        assert!(reasons.iter().any(|x| x == r), "missing {r} event in {reasons:?}");
    }
    let web_cid = s.container_statuses.as_ref().and_then(|c| c[0].container_id.clone()).context("container id")?;

    // Upstream's sync publishes its status, then creates the sandbox and starts the containers in
    // one pass: a pod without probes is written twice (ContainerCreating, then Running), never
    // between the agent's own starts (sandbox made, container not yet started).
    pods.create(&PostParams::default(), &pod("plain", "Always", &["pause"], false)).await?;
    wait_for("plain Running", Duration::from_secs(30), || async {
        let p = pods.get_opt("plain").await.ok().flatten()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await?;
    let writes: Vec<String> = server
        .audit()
        .into_iter()
        .filter(|e| e.verb == "patch" && e.path == "/api/v1/namespaces/default/pods/plain/status")
        .map(|e| e.time)
        .collect();
    assert_eq!(writes.len(), 2, "status writes of a pod without probes up to Running: {writes:?}");
    // Like upstream's pod worker starting from the pod cache: a pod the last relist did not see
    // has nothing in the runtime, so its first sync creates the sandbox without listing the
    // runtime for the pod first.
    let plain_uid = pods.get("plain").await?.metadata.uid.context("uid")?;
    let calls = std::fs::read_to_string(dir.path().join("cri-state/cri-calls.jsonl"))?;
    let calls: Vec<serde_json::Value> = calls.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let about = |c: &serde_json::Value, method: &str, id: &str| c["method"] == method && c["id"] == id;
    let sandbox_at = calls.iter().position(|c| about(c, "RunPodSandbox", "plain")).context("plain's RunPodSandbox in the call log")?;
    let listed: Vec<&serde_json::Value> = calls[..sandbox_at]
        .iter()
        .filter(|c| about(c, "ListPodSandbox", &plain_uid) || about(c, "ListContainers", &plain_uid))
        .collect();
    assert!(listed.is_empty(), "a new pod's first sync listed the runtime for it: {listed:?}");

    // restartPolicy Never + exit 3: Failed with the exit code and reason Error.
    pods.create(&PostParams::default(), &pod("fails", "Never", &["exit", "--code=3"], false)).await?;
    let failed = wait_for("fails Failed", Duration::from_secs(30), || async {
        let p = pods.get_opt("fails").await.ok().flatten()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(p)
    })
    .await?;
    let term = failed.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c[0].state.clone()).and_then(|s| s.terminated).context("terminated")?;
    assert_eq!((term.exit_code, term.reason.as_deref()), (3, Some("Error")));

    // Crash loop: restarts with back-off, CrashLoopBackOff while waiting.
    pods.create(&PostParams::default(), &pod("crash", "Always", &["exit", "--code=1"], false)).await?;
    wait_for("crash loop", Duration::from_secs(30), || async {
        let p = pods.get_opt("crash").await.ok().flatten()?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        let waiting = cs.state?.waiting?.reason?;
        (cs.restart_count >= 2 && waiting == "CrashLoopBackOff").then_some(())
    })
    .await?;

    // Init containers run in order before the main container; exec readiness probe.
    let init: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "init", "namespace": "default"},
        "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5,
            "initContainers": [
                {"name": "i1", "image": fake_cri::WORKLOAD_IMAGE, "args": ["exit", "--code=0", "--after=300ms"]},
                {"name": "i2", "image": fake_cri::WORKLOAD_IMAGE, "args": ["exit", "--code=0"]}
            ],
            "containers": [{"name": "main", "image": fake_cri::WORKLOAD_IMAGE, "args": ["pause"],
                "readinessProbe": {"exec": {"command": ["/workload", "exit", "--code=0"]}, "periodSeconds": 1}}]}
    }))?;
    pods.create(&PostParams::default(), &init).await?;
    let init = wait_for("init pod Ready", Duration::from_secs(30), || async {
        let p = pods.get_opt("init").await.ok().flatten()?;
        (cond(&p, "Ready") == Some("True")).then_some(p)
    })
    .await?;
    let s = init.status.clone().context("status")?;
    let inits = s.init_container_statuses.clone().context("init statuses")?;
    let term = |i: usize| inits[i].state.clone().and_then(|s| s.terminated).expect("terminated init container");
    assert_eq!((term(0).exit_code, term(0).reason.as_deref()), (0, Some("Completed")));
    assert!(term(0).finished_at.map(|t| t.0) <= term(1).started_at.map(|t| t.0), "i2 started before i1 finished");
    assert!(inits.iter().all(|c| c.ready));
    let kinds: Vec<&str> = s.conditions.iter().flatten().map(|c| c.type_.as_str()).collect();
    assert_eq!(kinds, ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]);

    // Liveness: an HTTP probe on a missing path restarts the container, with upstream texts.
    let mut live = pod("live", "Always", &["netexec", "--http-port=8080"], false);
    if let Some(spec) = live.spec.as_mut() {
        spec.containers[0].liveness_probe = Some(serde_json::from_value(serde_json::json!({
            "httpGet": {"path": "/missing", "port": 8080}, "periodSeconds": 1, "failureThreshold": 2
        }))?);
    }
    pods.create(&PostParams::default(), &live).await?;
    wait_for("liveness restart", Duration::from_secs(30), || async {
        let p = pods.get_opt("live").await.ok().flatten()?;
        (p.status?.container_statuses?.first()?.restart_count >= 1).then_some(())
    })
    .await?;
    let evs = events.list(&ListParams::default()).await?.items;
    let has = |reason: &str, text: &str| {
        evs.iter().any(|e| e.reason.as_deref() == Some(reason) && e.message.as_deref().is_some_and(|m| m.starts_with(text)))
    };
    assert!(has("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 404"), "no Unhealthy event");
    assert!(has("Killing", "Container main failed liveness probe, will be restarted"), "no Killing event");

    // Partition: lease renewals fail (timeouts), then recover once the server answers again.
    let metrics_addr = agent.healthz.recv_timeout(Duration::from_secs(5))?;
    let before = leases.get(NODE).await?.spec.and_then(|s| s.renew_time).context("renewTime")?;
    server.set_partition(true);
    wait_for("lease renew errors", Duration::from_secs(15), || async {
        let text = http_get(metrics_addr, "/metrics").await?;
        (metric(&text, "node_agent_lease_renew_errors_total")? >= 1.0).then_some(())
    })
    .await?;
    // Past the grace period the node lifecycle controller marks the node Unknown ...
    wait_for("node Ready=Unknown in the store", Duration::from_secs(20), || async {
        let obj = server.store().get(fake_apiserver::resources::NODES, "", NODE)?;
        let conds = obj.value.pointer("/status/conditions")?.as_array()?.clone();
        let ready = conds.iter().find(|c| c["type"] == "Ready")?;
        (ready["status"] == "Unknown").then_some(())
    })
    .await?;
    server.set_partition(false);
    // ... and once the server answers again the agent sets it back at once.
    wait_for("node Ready again", Duration::from_secs(10), || async {
        let n = nodes.get_opt(NODE).await.ok().flatten()?;
        let ready = n.status?.conditions?.into_iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some(())
    })
    .await?;
    wait_for("lease renewal after the partition", Duration::from_secs(20), || async {
        let l = leases.get_opt(NODE).await.ok().flatten()?;
        (l.spec?.renew_time?.0 > before.0).then_some(())
    })
    .await?;
    assert!(http_get(metrics_addr, "/healthz").await.is_some_and(|r| r.ends_with("ok")));

    // Agent restart: running containers are adopted, not restarted; restart counts survive.
    let crash_restarts = pods.get("crash").await?.status.and_then(|s| s.container_statuses).map(|c| c[0].restart_count).unwrap_or(0);
    agent.cancel.cancel();
    agent.task.await??;
    let agent = start_agent(dir.path(), &kubeconfig, &socket)?;
    wait_for("web still Ready after restart", Duration::from_secs(10), || async {
        let p = pods.get_opt("web").await.ok().flatten()?;
        (cond(&p, "Ready") == Some("True")).then_some(())
    })
    .await?;
    let after = pods.get("web").await?;
    let cs = after.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|c| c[0].clone()).context("cs")?;
    assert_eq!(cs.container_id.as_deref(), Some(web_cid.as_str()), "container was restarted");
    assert_eq!(cs.restart_count, 0);
    let crash_after = pods.get("crash").await?.status.and_then(|s| s.container_statuses).map(|c| c[0].restart_count).unwrap_or(0);
    assert!(crash_after >= crash_restarts, "restart count went back from {crash_restarts} to {crash_after}");

    // Graceful deletion completes: the agent stops everything and deletes with grace 0.
    let t = Instant::now();
    pods.delete("web", &DeleteParams::default()).await?;
    wait_for("web gone", Duration::from_secs(30), || async { pods.get_opt("web").await.ok().and_then(|p| p.is_none().then_some(())) }).await?;
    eprintln!("web deleted in {:?}", t.elapsed());

    let t = Instant::now();
    agent.cancel.cancel();
    agent.task.await??;
    eprintln!("agent stopped in {:?}", t.elapsed());
    stats_one_at_a_time(dir.path(), &socket).await?;
    cri.shutdown().await?;
    eprintln!("fake-cri stopped in {:?}", t.elapsed());
    server.shutdown().await;
    eprintln!("api server stopped in {:?}", t.elapsed());
    Ok(())
}

#[test]
fn e2e_smoke() {
    if !enter_namespaces("e2e_smoke") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "node_agent=info".into()))
        .with_test_writer()
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    if let Err(e) = rt.block_on(scenario()) {
        panic!("scenario failed: {e:#}");
    }
}

/// The stats client asks the runtime one ListPodSandboxStats at a time (containerd 1.6 before
/// 1.6.22 dies on two at once): with every CRI call held 300 ms, two concurrent asks reach
/// fake-cri one after the other (the agent is stopped: these are the only stats calls).
async fn stats_one_at_a_time(dir: &Path, socket: &Path) -> Result<()> {
    let faults = dir.join("cri-state/faults.json");
    std::fs::write(&faults, r#"{"rpc_latency_ms": 300}"#)?;
    let stats = node_agent::eviction::stats::StatsClient::new(&format!("unix://{}", socket.display()), Duration::from_secs(5))?;
    let (a, b) = tokio::join!(stats.sandbox_stats(), stats.sandbox_stats());
    std::fs::write(&faults, "{}")?;
    a?;
    b?;
    let log = fake_cri::calllog::read(&dir.join("cri-state/cri-calls.jsonl"))?;
    let spans: Vec<_> = log.iter().filter(|c| c.method == "ListPodSandboxStats").map(|c| c.span().context("a call's ts")).collect::<Result<_>>()?;
    let [.., (_, first_end), (second_start, _)] = spans[..] else { anyhow::bail!("fewer than two ListPodSandboxStats calls: {spans:?}") };
    assert!(second_start >= first_end, "two ListPodSandboxStats ran at once: {spans:?}");
    Ok(())
}
