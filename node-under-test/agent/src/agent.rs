//! Wires the agent together: API client, runtime client, registration, lease and status loops,
//! the pod manager and the healthz/metrics server, all under one cancellation token.

use crate::health::Health;
use crate::pods::pleg::{PlegHandle, run_pleg};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::AgentSettings;
use crate::cri::Runtime;
use crate::cri::remote::RemoteRuntime;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::node::{self, StatusInputs, host, lease, register};
use crate::pods::backoff::BackOffParams;
use crate::pods::events::{EventSink, Recorder};
use crate::pods::manager::run_pod_manager;
use crate::pods::runner::WorkerDeps;
use crate::pods::spec::{SpecContext, parse_resolv_conf};
use crate::pods::worker::WorkerParams;

/// Builds an API client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let err = |message: String| Error::Kubeconfig { path: path.display().to_string(), message };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    // Watches are asked to end after 30s; a read that stalls for 60s means a hung server.
    cfg.read_timeout = Some(Duration::from_secs(60));
    kube::Client::try_from(cfg).map_err(|e| err(e.to_string()))
}

/// Retries `f` with capped exponential back-off until it succeeds or `cancel` fires.
async fn retry<T, F, Fut>(what: &str, cancel: &CancellationToken, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut failures = 0u32;
    loop {
        match f().await {
            Ok(v) => return Some(v),
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "{what} failed; retrying");
            }
        }
        let delay = lease::retry_delay(failures - 1, Duration::from_secs(5));
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Where the agent listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listening {
    /// The plain healthz server (/healthz, /metrics).
    pub healthz: SocketAddr,
    /// The kubelet API (HTTPS), unless `enableServer` is false.
    pub kubelet_api: Option<SocketAddr>,
}

/// Starts the kubelet API when `enableServer` is set; returns its bound address.
async fn start_kubelet_api(
    settings: &AgentSettings,
    setup: Setup,
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
) -> Result<Option<SocketAddr>> {
    if !settings.kubelet.enable_server {
        tracing::info!("enableServer is false: the kubelet API is not served");
        return Ok(None);
    }
    let (bound, serve) = crate::kubelet_api::bind(setup, cancel.clone()).await?;
    tracing::info!(%bound, "serving the kubelet API (HTTPS)");
    tasks.spawn(serve);
    Ok(Some(bound))
}

type Setup = crate::kubelet_api::Setup<RemoteRuntime>;

/// Runs the agent until `cancel` fires. `healthz` is where /healthz and /metrics are served;
/// `on_listen` receives the bound addresses.
pub async fn run(
    settings: AgentSettings,
    kubeconfig: &Path,
    healthz: SocketAddr,
    cancel: CancellationToken,
    on_listen: impl FnOnce(Listening),
) -> Result<()> {
    crate::faults::announce();
    setup_data_dirs(&settings.root_dir)?;
    let client = client_from_kubeconfig(kubeconfig).await?;
    let cfg = settings.kubelet.clone();
    let api_timeout = cfg.nodekit.api_request_timeout.0;
    let runtime = Arc::new(RemoteRuntime::new(&settings.runtime_endpoint, cfg.runtime_request_timeout.0)?);
    let stats = crate::eviction::stats::StatsClient::new(&settings.runtime_endpoint, cfg.runtime_request_timeout.0)?.sharing(runtime.sandbox_store_lock());
    let metrics = Metrics::default();
    let pods = crate::pods::registry::PodRegistry::default();
    let node_ip = settings.node_ip.or_else(host::detect_node_ip);
    let mut tasks = JoinSet::new();
    let n = &cfg.nodekit;
    let pleg = PlegHandle::new(n.pleg_relist_threshold.0);
    let health = Health::new(pleg.clone(), cfg.sync_frequency.0, n.sync_loop_health_minimum.0);

    let (bound, serve) = crate::server::bind(healthz, metrics.clone(), health.clone(), cancel.clone()).await?;
    tracing::info!(%bound, "serving /healthz and /metrics");
    tasks.spawn(serve);
    let setup = Setup {
        cfg: cfg.clone(),
        root_dir: settings.root_dir.clone(),
        node_name: settings.node_name.clone(),
        node_ip,
        runtime: runtime.clone(),
        stats: stats.clone(),
        pods: pods.clone(),
        metrics: metrics.clone(),
        client: client.clone(),
    };
    let kubelet_api = start_kubelet_api(&settings, setup, &mut tasks, &cancel).await?;
    on_listen(Listening { healthz: bound, kubelet_api });

    let Some(version) = retry("runtime Version", &cancel, || async { Ok(runtime.version().await?) }).await else {
        return shutdown(tasks).await;
    };
    tracing::info!(runtime = %version.runtime_name, version = %version.runtime_version, "connected to the runtime");
    // A pod CIDR known locally goes to the runtime at once: pods (static ones first) can get
    // their network before the API server answers.
    if let Some(cidr) = &settings.pod_cidr
        && let Err(e) = runtime.update_pod_cidr(cidr).await
    {
        tracing::warn!(error = %e, %cidr, "UpdateRuntimeConfig failed");
    }

    let facts = host::read_host_facts(&settings.root_dir);
    let pressure = crate::eviction::PressureHandle::default();
    let inputs = StatusInputs {
        facts: facts.clone(),
        cfg: cfg.clone(),
        node_ip,
        node_name: settings.node_name.clone(),
        runtime_version: version.clone(),
        pressure: pressure.clone(),
        pleg: pleg.clone(),
        kubelet_port: i32::from(kubelet_api.map(|a| a.port()).unwrap_or(cfg.port)),
    };
    let template = register::NodeTemplate {
        name: settings.node_name.clone(),
        labels: register::node_labels(&settings.node_name, &facts.architecture, &cfg.node_labels),
        pod_cidr: settings.pod_cidr.clone(),
        taints: cfg.register_with_taints.clone(),
    };
    // The Node is registered, and then heartbeats run, in the background: the static pods and
    // the pod workers do not wait for the API server (as upstream's kubelet does not).
    let (node_uid_tx, node_uid) = tokio::sync::watch::channel(String::new());
    let registration = Registration {
        client: client.clone(),
        runtime: runtime.clone(),
        inputs,
        template,
        register_node: cfg.register_node,
        pod_cidr: settings.pod_cidr.clone(),
        lease_duration_seconds: cfg.node_lease_duration_seconds,
        lease_renew_interval: settings.lease_renew_interval(),
        lease_jitter: cfg.nodekit.node_lease_renew_jitter,
        api_timeout,
        metrics: metrics.clone(),
    };
    tasks.spawn(registration.run(node_uid_tx, cancel.clone()));

    let resolv = std::fs::read_to_string(&cfg.resolv_conf).unwrap_or_default();
    let spec_ctx = SpecContext {
        root_dir: settings.root_dir.clone(),
        node_name: settings.node_name.clone(),
        node_ip: node_ip.map(|i| i.to_string()),
        cluster_dns: cfg.cluster_dns.clone(),
        cluster_domain: cfg.cluster_domain.clone(),
        host_dns: parse_resolv_conf(&resolv),
        cgroup_root: cfg.cgroup_root.clone().unwrap_or_default(),
    };
    let static_setup = crate::static_pods::Setup {
        dir: cfg.static_pod_path.clone().filter(|p| !p.is_empty()).map(std::path::PathBuf::from),
        file_check: cfg.file_check_frequency.0,
        resync: cfg.sync_frequency.0,
        node_name: settings.node_name.clone(),
        node_uid,
        api_timeout,
    };
    let (statics, mirrors) = crate::static_pods::start(static_setup, client.clone(), metrics.clone(), &mut tasks, &cancel);
    let (recorder, queued) = Recorder::channel(settings.node_name.clone());
    tasks.spawn(EventSink::new(client.clone(), queued, api_timeout).run(cancel.clone()));
    let (services, watch_services) = crate::pods::services::Services::watch(client.clone(), cancel.clone());
    tasks.spawn(watch_services);
    let deps = Arc::new(WorkerDeps {
        runtime: runtime.clone(),
        client: client.clone(),
        recorder,
        metrics: metrics.clone(),
        spec_ctx: Arc::new(spec_ctx),
        params: WorkerParams {
            container: BackOffParams {
                base: n.container_back_off_base.0,
                max: n.container_back_off_max.0,
                reset_after: n.container_back_off_reset_after.0,
            },
            image: BackOffParams {
                base: n.image_pull_back_off_base.0,
                max: n.image_pull_back_off_max.0,
                reset_after: n.image_pull_back_off_max.0 * 2,
            },
        },
        relist: n.runtime_relist_period.0,
        resync: cfg.sync_frequency.0,
        health,
        api_timeout,
        runtime_name: version.runtime_name.clone(),
        host_ip: node_ip.map(|i| i.to_string()),
        mirrors,
        pressure: pressure.clone(),
        pods,
        objects: crate::pods::objects::Objects::new(
            Some(client.clone()),
            cfg.config_map_and_secret_change_detection_strategy,
            api_timeout,
            cancel.child_token(),
        ),
        services,
        node_credentials: Arc::new(crate::pods::node_credentials::NodeCredentials::new(&settings.root_dir)),
    });
    let params = crate::eviction::manager::EvictionParams {
        node_name: settings.node_name.clone(),
        root_dir: settings.root_dir.clone(),
        cfg: cfg.clone(),
        thresholds: crate::eviction::thresholds::from_config(&cfg).map_err(Error::Other)?,
        api_timeout,
    };
    let (rt, cl) = (runtime.clone(), client.clone());
    tasks.spawn(crate::eviction::manager::run_eviction_manager(rt, stats, cl, pressure.clone(), params, cancel.clone()));
    tasks.spawn(run_pleg(runtime.clone(), pleg, n.runtime_relist_period.0, cancel.clone()));
    let rotation = crate::container_logs::RotatePolicy::from_config(&cfg).map_err(Error::Other)?;
    if let Some(policy) = rotation.filter(|_| !crate::faults::active(crate::faults::Fault::NoLogRotation)) {
        tasks.spawn(crate::container_logs::run_log_manager(runtime.clone(), policy, cancel.clone()));
    }
    tasks.spawn(run_pod_manager(deps, settings.node_name.clone(), statics, cancel.clone()));
    cancel.cancelled().await;
    shutdown(tasks).await
}

async fn shutdown(mut tasks: JoinSet<()>) -> Result<()> {
    match tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    {
        Ok(()) => {}
        Err(_) => {
            tracing::warn!("tasks did not stop within 10s; aborting them");
            tasks.shutdown().await;
        }
    }
    Ok(())
}

/// Registers the Node (retrying until the API server answers), hands the runtime the pod CIDR,
/// publishes the Node's UID, then runs the lease and status loops.
struct Registration {
    client: kube::Client,
    runtime: Arc<RemoteRuntime>,
    inputs: StatusInputs,
    template: register::NodeTemplate,
    register_node: bool,
    pod_cidr: Option<String>,
    lease_duration_seconds: u32,
    lease_renew_interval: Duration,
    lease_jitter: f64,
    api_timeout: Duration,
    metrics: Metrics,
}

impl Registration {
    async fn run(self, node_uid: tokio::sync::watch::Sender<String>, cancel: CancellationToken) {
        let name = self.inputs.node_name.clone();
        let nodes: Api<Node> = Api::all(self.client.clone());
        let timeout = self.api_timeout;
        let Some(node) = retry("node registration", &cancel, || async {
            // An existing Node keeps its conditions' transition times.
            let existing = crate::error::api("get node", timeout, nodes.get_opt(&name)).await?;
            let prev = existing.and_then(|n| n.status).and_then(|s| s.conditions).unwrap_or_default();
            let status = node::current_status(self.runtime.as_ref(), &self.inputs, &prev).await;
            let node = if self.register_node {
                register::register(&nodes, &self.template, status.clone(), timeout).await?
            } else {
                crate::error::api("get node", timeout, nodes.get(&name)).await?
            };
            // A pod CIDR assigned through the Node reaches the runtime before the node reports
            // Ready (pods follow Ready); a local one was handed over at start.
            let assigned = node.spec.as_ref().and_then(|s| s.pod_cidr.clone()).filter(|_| self.pod_cidr.is_none());
            if let Some(cidr) = &assigned
                && let Err(e) = self.runtime.update_pod_cidr(cidr).await
            {
                tracing::warn!(error = %e, %cidr, "UpdateRuntimeConfig failed");
            }
            node::patch_status(&nodes, &name, &status, timeout).await?;
            Ok(node)
        })
        .await
        else {
            return;
        };
        let uid = node.metadata.uid.clone().unwrap_or_default();
        tracing::info!(node = %name, %uid, "node registered");
        node_uid.send_replace(uid.clone());
        let lease_params = lease::LeaseParams {
            node: name,
            node_uid: uid,
            duration_seconds: self.lease_duration_seconds,
            renew_interval: self.lease_renew_interval,
            jitter: self.lease_jitter,
            request_timeout: timeout,
        };
        tokio::join!(
            lease::run_lease_loop(self.client.clone(), lease_params, self.metrics.clone(), cancel.clone()),
            node::run_status_loop(self.client, self.runtime, self.inputs, self.metrics, cancel),
        );
    }
}

/// The root directory and its pods directory exist from the start, as upstream's
/// `setupDataDirs` makes them (an operator's `config.json` can go there before any pod).
fn setup_data_dirs(root: &Path) -> Result<()> {
    for (dir, what) in [(root.to_path_buf(), "root"), (root.join("pods"), "pods")] {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { what: format!("error creating {what} directory {}", dir.display()), source })?;
    }
    Ok(())
}
