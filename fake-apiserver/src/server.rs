//! Server startup, the shared state, and the in-process [`Handle`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::audit::{AuditEntry, AuditLog, UserInfo};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::faults::{FaultRule, Faults};
use crate::resources;
use crate::store::Store;

/// State shared by all requests, watches and controllers.
pub struct State {
    pub config: Config,
    pub store: Arc<Store>,
    pub api: Api,
    pub audit: AuditLog,
    pub faults: Faults,
    pub cancel: CancellationToken,
    pub addr: SocketAddr,
    /// Dials kubelets for the connect subresources, `nodes/proxy` and the metrics scrape.
    pub kubelet: crate::kubelet_client::KubeletDialer,
    /// The resource metrics scraped from kubelets (`metrics.k8s.io`).
    pub metrics: parking_lot::Mutex<crate::http::metrics::Storage>,
    /// The authorizer's cached view of RBAC objects and pods.
    pub authz: crate::authz_snapshot::SnapshotCache,
    /// Issues and checks ServiceAccount tokens.
    pub tokens: crate::auth::service_account::TokenAuthority,
}

/// Entry points to start a server.
#[derive(Debug)]
pub struct Server;

/// A running server.
pub struct Handle {
    state: Arc<State>,
    tasks: JoinSet<()>,
    started: Duration,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("addr", &self.state.addr).finish()
    }
}

impl Server {
    /// Bind `config.listen` and serve.
    pub async fn start(config: Config) -> Result<Handle> {
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|source| Error::Bind { addr: config.listen.clone(), source })?;
        Self::serve(listener, config).await
    }

    /// Serve on an already-bound listener.
    pub async fn serve(listener: TcpListener, config: Config) -> Result<Handle> {
        let t0 = Instant::now();
        let addr = listener.local_addr().map_err(Error::LocalAddr)?;
        let store = Arc::new(Store::new(config.watch_history));
        let root_ca = crate::controllers::root_ca_publisher::root_ca(&config)?;
        let inject = root_ca.is_some() && config.root_ca_publisher;
        let api = Api::new(store.clone(), &config.service_cidr)
            .ok_or_else(|| Error::Config(format!("invalid service CIDR {:?}", config.service_cidr)))?
            .with_default_tolerations(config.default_not_ready_toleration_seconds, config.default_unreachable_toleration_seconds)
            .with_service_account_admission(config.service_account_admission, inject);
        let audit = AuditLog::new(config.audit_file.as_ref(), config.audit_limit)
            .map_err(|source| Error::Write { path: format!("{:?}", config.audit_file), source })?;
        let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let kubelet = crate::kubelet_client::KubeletDialer::new(config.kubelet_client.as_ref())?;
        let metrics = parking_lot::Mutex::new(crate::http::metrics::Storage::new(config.metric_resolution));
        let authz = crate::authz_snapshot::SnapshotCache::new(store.clone());
        let tokens = crate::auth::service_account::TokenAuthority::new(&config.service_accounts)?;
        let cancel = CancellationToken::new();
        let state = Arc::new(State { config, store, api, audit, faults: Faults::default(), cancel, addr, kubelet, metrics, authz, tokens });
        bootstrap(&state)?;
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(state.clone(), listener, tls));
        tasks.spawn(crate::controllers::event_ttl::run(state.clone()));
        if state.config.node_lifecycle {
            tasks.spawn(crate::controllers::node_lifecycle::run(state.clone()));
        }
        if state.config.endpointslices {
            tasks.spawn(crate::controllers::endpointslices::run(state.clone()));
        }
        if state.config.workloads || state.config.daemonsets {
            tasks.spawn(crate::controllers::workloads::run(state.clone()));
        }
        if state.config.scheduler {
            tasks.spawn(crate::controllers::scheduler::run(state.clone(), state.config.scheduler_timing));
        }
        if state.config.disruption {
            tasks.spawn(crate::controllers::disruption::run(state.clone()));
        }
        if state.config.taint_eviction {
            tasks.spawn(crate::controllers::taint_eviction::run(state.clone()));
        }
        if state.config.pod_gc {
            tasks.spawn(crate::controllers::pod_gc::run(state.clone()));
        }
        if state.config.metrics_server {
            tasks.spawn(crate::http::metrics::scraper::run(state.clone()));
        }
        if state.config.serviceaccounts_controller {
            tasks.spawn(crate::controllers::service_accounts::run(state.clone()));
        }
        if let Some(ca) = root_ca.filter(|_| state.config.root_ca_publisher) {
            tasks.spawn(crate::controllers::root_ca_publisher::run(state.clone(), ca));
        }
        Ok(Handle { state, tasks, started: t0.elapsed() })
    }
}

/// The objects every API server starts with: the system namespaces, the `kubernetes`
/// Service and its endpoints, and (upstream's RBAC post-start hook) the bootstrap RBAC policy.
fn bootstrap(state: &State) -> Result<()> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let _ = state.api.create(resources::NAMESPACES, "", json!({"metadata": {"name": ns}}));
    }
    let svc = json!({
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": state.addr.port()}]},
    });
    let _ = state.api.create(resources::SERVICES, "default", svc);
    publish_own_endpoints(state);
    crate::rbac_resources::create_bootstrap_policy(&state.api).map_err(|e| Error::Bootstrap(Box::new(e)))?;
    Ok(())
}

/// The `kubernetes` Service's endpoints: this server's own address and port, as upstream's
/// endpoint reconciler writes them (an Endpoints object and an EndpointSlice, both named
/// `kubernetes`), so that pods reach the API through the Service's ClusterIP. Written once at
/// start (a single server's address does not change); nothing is written for an unspecified
/// or loopback listen address, which no pod could reach.
fn publish_own_endpoints(state: &State) {
    let (ip, port) = (state.addr.ip(), state.addr.port());
    if ip.is_unspecified() || ip.is_loopback() {
        return;
    }
    let ip = ip.to_string();
    let endpoints = json!({
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    let _ = state.api.create(resources::ENDPOINTS, "default", endpoints);
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    let _ = state.api.create(resources::ENDPOINTSLICES, "default", slice);
}

async fn accept_loop(state: Arc<State>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = state.cancel.cancelled() => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (st, builder, watcher) = (state.clone(), builder.clone(), graceful.watcher());
        let Some(tls) = tls.clone() else {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service(st, None)).into_owned();
            tokio::spawn(watcher.watch(conn));
            continue;
        };
        // The handshake runs in the connection's own task so a slow client cannot stall accepts.
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream));
            let stream = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake refused: {e}");
                        return;
                    }
                    Err(_) => return,
                },
                _ = st.cancel.cancelled() => return,
            };
            let user = crate::tls::user_of(stream.get_ref().1.peer_certificates());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service(st, Some(user))).into_owned();
            let _ = watcher.watch(conn).await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The request service of one connection; `user` is the connection's authenticated user.
fn service(
    state: Arc<State>,
    user: Option<UserInfo>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::http::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = std::result::Result<http::Response<crate::http::Body>, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        if let Some(u) = &user {
            req.extensions_mut().insert(u.clone());
        }
        crate::http::handle(state.clone(), req)
    })
}

fn client_host(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() { "127.0.0.1".parse().unwrap_or(addr.ip()) } else { addr.ip() };
    SocketAddr::new(ip, addr.port()).to_string()
}

impl Handle {
    pub fn addr(&self) -> SocketAddr {
        self.state.addr
    }
    /// Base URL, e.g. "http://127.0.0.1:6443" (`https://` when serving TLS).
    pub fn url(&self) -> String {
        let scheme = if self.state.config.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", client_host(self.state.addr))
    }
    /// A kubeconfig pointing at this server (context "nodekit"), without credentials or CA
    /// (for a TLS server, write one with the CA and a client certificate instead).
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.url())
    }
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<()> {
        let p = path.as_ref();
        std::fs::write(p, self.kubeconfig_yaml()).map_err(|source| Error::Write { path: p.display().to_string(), source })
    }
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.state.audit.entries()
    }
    pub fn clear_audit(&self) {
        self.state.audit.clear()
    }
    /// Add a fault rule; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        self.state.faults.add(rule)
    }
    pub fn remove_fault(&self, id: u64) -> bool {
        self.state.faults.remove(id)
    }
    pub fn clear_faults(&self) {
        self.state.faults.clear()
    }
    pub fn faults(&self) -> Vec<FaultRule> {
        self.state.faults.list()
    }
    /// Stop answering (connections are accepted and held) while on.
    pub fn set_partition(&self, on: bool) {
        self.state.faults.set_partition(on)
    }
    pub fn partitioned(&self) -> bool {
        self.state.faults.partitioned()
    }
    /// End every open watch, as an API server restart does (clients re-watch, and relist when
    /// their resourceVersion is no longer in the history).
    pub fn close_watches(&self) {
        self.state.faults.close_watches()
    }
    /// Change how many events per resource are kept for resuming watches.
    pub fn set_watch_history(&self, events: usize) {
        self.state.store.set_history_limit(events)
    }
    /// The in-process registry (create/update/patch/delete without HTTP).
    pub fn api(&self) -> &Api {
        &self.state.api
    }
    pub fn store(&self) -> &Store {
        &self.state.store
    }
    /// Time from entering `serve` to accepting connections.
    pub fn startup_time(&self) -> Duration {
        self.started
    }
    pub fn cancellation_token(&self) -> CancellationToken {
        self.state.cancel.clone()
    }
    /// Stop accepting, end watches and controllers, wait for connections to drain (5 s max).
    pub async fn shutdown(mut self) {
        self.state.cancel.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(6), drain).await.is_err() {
            self.tasks.abort_all();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.state.cancel.cancel();
    }
}

/// A kubeconfig for `url` (plain HTTP, no credentials).
pub fn kubeconfig_yaml(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: nodekit\n  cluster:\n    server: {url}\ncontexts:\n- name: nodekit\n  context:\n    cluster: nodekit\n    user: nodekit\n    namespace: default\ncurrent-context: nodekit\nusers:\n- name: nodekit\n  user: {{}}\npreferences: {{}}\n"
    )
}
