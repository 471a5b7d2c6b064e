//! The kubelet API over HTTPS on `address:port` of the configuration, with upstream's paths
//! (kubernetes pkg/kubelet/server/server.go): /healthz, /pods, /containerLogs, /run,
//! /stats/summary, /metrics, /metrics/resource, /metrics/probes, /configz, /exec, /attach and
//! /portForward.
//!
//! Layout: [`router`] (paths and methods); who may call: [`tls`] (client certificates, read by
//! [`x509`]), [`gate`] (the auth filter) over [`auth`] (authentication), [`attributes`] (pure:
//! what a request is authorized as) and [`webhook`] (TokenReview and SubjectAccessReview,
//! cached in [`ttl_cache`], made by [`review_client`]); [`handlers`] (dispatch and the small
//! endpoints), [`logs`] (pure) and [`logs_serve`], [`run`],
//! [`summary`] (pure) and [`stats_source`], [`resource`] and [`exposition`] over [`prom`].

pub mod attributes;
pub mod auth;
pub mod containers;
pub mod exposition;
pub mod gate;
pub mod handlers;
pub mod logs;
pub mod logs_serve;
pub mod prom;
pub mod query;
pub mod resource;
pub mod respond;
pub mod review_client;
#[cfg(test)]
pub mod review_fake;
pub mod router;
pub mod run;
pub mod stats_source;
pub mod stream;
pub mod summary;
pub mod tls;
pub mod ttl_cache;
pub mod webhook;
pub mod x509;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::KubeletConfiguration;
use crate::cri::Runtime;
use crate::eviction::stats::StatsClient;
use crate::metrics::Metrics;
use crate::pods::registry::PodRegistry;
use stats_source::StatsSource;

/// Why the kubelet API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{what} {path}: {source}")]
    File { what: &'static str, path: String, source: std::io::Error },
    #[error("reading {path}: {message}")]
    Pem { path: String, message: String },
    #[error("kubelet API TLS: {0}")]
    Tls(String),
    #[error("binding the kubelet API on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// What the handlers share.
pub struct KubeletApi<R> {
    pub runtime: Arc<R>,
    pub stats: StatsSource<R>,
    pub pods: PodRegistry,
    pub metrics: Metrics,
    pub cfg: KubeletConfiguration,
    /// When the agent started (process_start_time_seconds).
    pub started: jiff::Timestamp,
    /// Timeout of `/run`'s ExecSync.
    pub exec_timeout: Duration,
    /// Ends followed logs when the agent stops.
    pub cancel: CancellationToken,
    /// Who may call.
    pub gate: gate::Gate,
}

/// What the server is made of.
pub struct Setup<R> {
    pub cfg: KubeletConfiguration,
    pub root_dir: PathBuf,
    pub node_name: String,
    pub node_ip: Option<IpAddr>,
    pub runtime: Arc<R>,
    pub stats: StatsClient,
    pub pods: PodRegistry,
    pub metrics: Metrics,
    /// The agent's API client: TokenReview and SubjectAccessReview go through it.
    pub client: kube::Client,
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `address:port` of the configuration (port 0 picks one); returns the bound address and
/// the serving future, which runs until `cancel` fires.
pub async fn bind<R: Runtime>(
    setup: Setup<R>,
    cancel: CancellationToken,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), ServeError> {
    let ip: IpAddr = setup.cfg.address.parse().map_err(|_| ServeError::Tls(format!("address {:?} is not an IP address", setup.cfg.address)))?;
    let addr = SocketAddr::new(ip, setup.cfg.port);
    let tls = tls::server_config(&setup.cfg, &setup.root_dir, &setup.node_name, setup.node_ip)?;
    let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr: addr.to_string(), source })?;
    let bound = listener.local_addr().map_err(|source| ServeError::Bind { addr: addr.to_string(), source })?;
    let reviews = review_client::KubeReviews::new(setup.client, setup.cfg.nodekit.api_request_timeout.0);
    let gate = gate::Gate::from_config(&setup.cfg, &setup.node_name, Arc::new(reviews), webhook::Backoff::default());
    let api = Arc::new(KubeletApi {
        stats: StatsSource::new(setup.runtime.clone(), setup.stats, setup.cfg.clone(), setup.root_dir, setup.node_name),
        runtime: setup.runtime,
        pods: setup.pods,
        metrics: setup.metrics,
        exec_timeout: setup.cfg.runtime_request_timeout.0,
        cfg: setup.cfg,
        started: jiff::Timestamp::now(),
        cancel: cancel.clone(),
        gate,
    });
    Ok((bound, serve(listener, tokio_rustls::TlsAcceptor::from(tls), api, cancel)))
}

async fn serve<R: Runtime>(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, api: Arc<KubeletApi<R>>, cancel: CancellationToken) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            acc = listener.accept() => {
                let Ok((stream, peer)) = acc else { continue };
                conns.spawn(connection(stream, peer, acceptor.clone(), api.clone(), cancel.clone()));
            }
        }
    }
    conns.shutdown().await;
}

/// One connection: the TLS handshake, who the caller is, then HTTP/1.1.
async fn connection<R: Runtime>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    api: Arc<KubeletApi<R>>,
    cancel: CancellationToken,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "kubelet API TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "kubelet API TLS handshake timed out"),
    };
    // The TLS layer verified a presented certificate against the client CA.
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let certificate_user = leaf.and_then(|der| auth::UserInfo::from_certificate(der.as_ref())).map(Arc::new);
    let svc = service_fn(move |req| {
        let (api, user) = (api.clone(), certificate_user.clone());
        async move { Ok::<_, std::convert::Infallible>(handlers::handle(api, user.as_deref(), req).await) }
    });
    // Upgrades: exec, attach and portForward switch the connection to WebSocket or SPDY.
    let conn = http1::Builder::new().serve_connection(TokioIo::new(tls), svc).with_upgrades();
    tokio::select! {
        r = conn => if let Err(e) = r { tracing::debug!(%peer, error = %e, "kubelet API connection") },
        _ = cancel.cancelled() => {}
    }
}
