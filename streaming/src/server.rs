//! The streaming server (upstream `server.go`): CRI calls get single-use URLs; HTTP requests on
//! them upgrade to WebSocket or SPDY and run a session.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cache::RequestCache;
use crate::constants::{DEFAULT_STREAM_CREATION_TIMEOUT, DEFAULT_STREAM_IDLE_TIMEOUT, SUPPORTED_PORT_FORWARD_PROTOCOLS, SUPPORTED_STREAM_PROTOCOLS};
use crate::http::{Response, error, is_websocket_request, not_found, plain};
use crate::remotecommand::{self, Target};
use crate::request::{Cached, RequestError, StreamOptions, validate};
use crate::runtime::Runtime;
use crate::{httpstream, portforward, ws};

/// Timeouts of the streaming connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A connection without traffic for this long is closed (upstream default 4 h).
    pub stream_idle_timeout: Duration,
    /// How long a SPDY client has to open its streams (upstream default 30 s).
    pub stream_creation_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT, stream_creation_timeout: DEFAULT_STREAM_CREATION_TIMEOUT }
    }
}

/// A session to start once the connection is upgraded.
type Spawn = BoxFuture<'static, ()>;
type Spawner = mpsc::UnboundedSender<Spawn>;

/// The streaming server of one runtime.
pub struct Server<R: Runtime> {
    runtime: Arc<R>,
    /// `base_url` without a trailing slash; URLs are `{base}/{method}/{token}`.
    base_url: String,
    /// The path of `base_url`, which request paths start with.
    path_prefix: String,
    config: Config,
    cache: RequestCache<Cached>,
}

impl<R: Runtime> std::fmt::Debug for Server<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("base_url", &self.base_url).field("config", &self.config).finish_non_exhaustive()
    }
}

impl<R: Runtime> Server<R> {
    /// A server whose URLs start with `base_url` (e.g. `http://127.0.0.1:34567`).
    pub fn new(runtime: Arc<R>, base_url: String) -> Arc<Self> {
        Self::with_config(runtime, base_url, Config::default())
    }

    pub fn with_config(runtime: Arc<R>, base_url: String, config: Config) -> Arc<Self> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let path_prefix = base_url
            .split_once("://")
            .map_or(base_url.as_str(), |(_, rest)| rest)
            .split_once('/')
            .map_or(String::new(), |(_, path)| format!("/{path}"));
        Arc::new(Self { runtime, base_url, path_prefix, config, cache: RequestCache::default() })
    }

    /// CRI `Exec`: the URL to run `cmd` in the container with the asked streams.
    pub fn get_exec(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<String, RequestError> {
        let opts = StreamOptions { stdin, stdout, stderr, tty };
        validate(container_id, opts, false)?;
        let token = self.cache.insert(Cached::Exec { container_id: container_id.to_string(), cmd, opts })?;
        Ok(self.url("exec", &token))
    }

    /// CRI `Attach`.
    pub fn get_attach(&self, container_id: &str, tty: bool, stdin: bool, stdout: bool, stderr: bool) -> Result<String, RequestError> {
        let opts = StreamOptions { stdin, stdout, stderr, tty };
        validate(container_id, opts, true)?;
        let token = self.cache.insert(Cached::Attach { container_id: container_id.to_string(), opts })?;
        Ok(self.url("attach", &token))
    }

    /// CRI `PortForward`; the ports come with the HTTP request (SPDY stream headers, or the
    /// WebSocket `ports` query parameter).
    pub fn get_port_forward(&self, pod_sandbox_id: &str) -> Result<String, RequestError> {
        if pod_sandbox_id.is_empty() {
            return Err(RequestError::MissingPodSandboxId);
        }
        let token = self.cache.insert(Cached::PortForward { pod_sandbox_id: pod_sandbox_id.to_string() })?;
        Ok(self.url("portforward", &token))
    }

    fn url(&self, method: &str, token: &str) -> String {
        format!("{}/{method}/{token}", self.base_url)
    }

    /// Serves HTTP/1.1 on `listener` until `cancel`; then every connection and session ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, cancel: CancellationToken) {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        tracing::trace!(%peer, "streaming: connection");
                        conns.spawn(self.clone().serve_connection(tcp, cancel.child_token()));
                    }
                    Err(e) => {
                        tracing::warn!("streaming: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(joined) = conns.join_next(), if !conns.is_empty() => {
                    if let Err(e) = joined
                        && e.is_panic()
                    {
                        tracing::error!("streaming: connection task panicked: {e}");
                    }
                }
            }
        }
        conns.shutdown().await;
    }

    /// One HTTP connection, and the sessions its upgrades start.
    async fn serve_connection(self: Arc<Self>, tcp: TcpStream, cancel: CancellationToken) {
        let (spawn_tx, mut spawn_rx) = mpsc::unbounded_channel::<Spawn>();
        let service = service_fn(move |req| {
            let response = self.handle(req, &spawn_tx);
            async move { Ok::<_, Infallible>(response) }
        });
        let mut builder = http1::Builder::new();
        // Header names on the wire as Go writes them (`X-Stream-Protocol-Version`, …).
        builder.timer(TokioTimer::new()).title_case_headers(true);
        // Dropped once done: it owns the service, whose sender keeps `spawn_rx` open.
        let mut conn = Some(builder.serve_connection(TokioIo::new(tcp), service).with_upgrades());
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                result = async { conn.as_mut().expect("polled only while set").await }, if conn.is_some() => {
                    conn = None;
                    if let Err(e) = result {
                        tracing::debug!("streaming: http connection: {e}");
                    }
                }
                Some(session) = spawn_rx.recv() => { sessions.spawn(session); }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                else => break,
            }
        }
        sessions.shutdown().await;
    }

    /// Routes `/{exec,attach,portforward}/{token}` (GET or POST) under the base path; other
    /// paths and methods get go-restful's answers.
    fn handle(&self, req: Request<Incoming>, spawn: &Spawner) -> Response {
        let route = req.uri().path().strip_prefix(self.path_prefix.as_str()).and_then(|p| p.strip_prefix('/'));
        let Some((method, token)) = route.and_then(|p| p.split_once('/')) else {
            return plain(StatusCode::NOT_FOUND, "404: Page Not Found");
        };
        if !matches!(method, "exec" | "attach" | "portforward") || token.is_empty() || token.contains('/') {
            return plain(StatusCode::NOT_FOUND, "404: Page Not Found");
        }
        if req.method() != Method::GET && req.method() != Method::POST {
            let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
            resp.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static("GET, POST"));
            return resp;
        }
        match (method, self.cache.consume(token)) {
            ("exec", Some(Cached::Exec { container_id, cmd, opts })) => {
                self.remote_command(req, spawn, opts, Target::Exec { container_id, cmd })
            }
            ("attach", Some(Cached::Attach { container_id, opts })) => {
                self.remote_command(req, spawn, opts, Target::Attach { container_id })
            }
            ("portforward", Some(Cached::PortForward { pod_sandbox_id })) => self.port_forward(req, spawn, pod_sandbox_id),
            _ => not_found(),
        }
    }

    fn remote_command(&self, mut req: Request<Incoming>, spawn: &Spawner, opts: StreamOptions, target: Target) -> Response {
        let (runtime, config) = (self.runtime.clone(), self.config);
        if is_websocket_request(req.headers()) {
            let (resp, negotiated) = match ws::handshake(req.method(), req.headers(), remotecommand::websocket::PROTOCOLS) {
                Ok(ok) => ok,
                Err(refused) => return refused,
            };
            start(&mut req, spawn, move |io| remotecommand::websocket::serve(io, negotiated, opts, target, runtime, config));
            return resp;
        }
        let (resp, protocol) = match spdy_upgrade(req.headers(), &SUPPORTED_STREAM_PROTOCOLS) {
            Ok(ok) => ok,
            Err(refused) => return refused,
        };
        let version = remotecommand::spdy::Version::from_protocol(protocol);
        start(&mut req, spawn, move |io| remotecommand::spdy::serve(io, version, opts, target, runtime, config));
        resp
    }

    fn port_forward(&self, mut req: Request<Incoming>, spawn: &Spawner, pod: String) -> Response {
        let (runtime, config) = (self.runtime.clone(), self.config);
        if is_websocket_request(req.headers()) {
            let (resp, negotiated) = match ws::handshake(req.method(), req.headers(), portforward::websocket::PROTOCOLS) {
                Ok(ok) => ok,
                Err(refused) => return refused,
            };
            let ports = match portforward::parse_ports(req.uri().query()) {
                // Not upstream's: channel numbers are one byte.
                Ok(ports) if ports.len() > portforward::websocket::MAX_PORTS => {
                    return error(StatusCode::BAD_REQUEST, &format!("too many ports: {}", ports.len()));
                }
                Ok(ports) => ports,
                Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
            };
            start(&mut req, spawn, move |io| portforward::websocket::serve(io, negotiated, ports, pod, runtime, config));
            return resp;
        }
        let (resp, _) = match spdy_upgrade(req.headers(), &SUPPORTED_PORT_FORWARD_PROTOCOLS) {
            Ok(ok) => ok,
            Err(refused) => return refused,
        };
        start(&mut req, spawn, move |io| portforward::spdy::serve(io, pod, runtime, config));
        resp
    }
}

/// Hands `session` to the connection's task, to run on the connection once hyper has sent the
/// 101 and given it up.
fn start<F, Fut>(req: &mut Request<Incoming>, spawn: &Spawner, session: F)
where
    F: FnOnce(Upgraded) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let upgrade = hyper::upgrade::on(req);
    let _ = spawn.send(Box::pin(async move {
        match upgrade.await {
            Ok(io) => session(io).await,
            Err(e) => tracing::warn!("unable to upgrade: {e}"),
        }
    }));
}

/// `httpstream.Handshake`, then the SPDY upgrade answer.
#[allow(clippy::result_large_err, reason = "the refusal is the answer, built once per request")]
fn spdy_upgrade(headers: &http::HeaderMap, supported: &[&'static str]) -> Result<(Response, &'static str), Response> {
    let protocol = httpstream::negotiate(headers, supported)?;
    Ok((httpstream::upgrade_response(headers, protocol)?, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoRuntime;

    impl Runtime for NoRuntime {
        fn exec(&self, _: &str, _: &[String], _: crate::Stdio) -> BoxFuture<'static, Result<(), crate::ExecError>> {
            Box::pin(async { Ok(()) })
        }
        fn attach(&self, _: &str, _: crate::Stdio) -> BoxFuture<'static, Result<(), crate::ExecError>> {
            Box::pin(async { Ok(()) })
        }
        fn port_forward(&self, _: &str, _: u16) -> BoxFuture<'static, Result<Box<dyn crate::Duplex>, String>> {
            Box::pin(async { Err("no".to_string()) })
        }
    }

    #[test]
    fn urls_and_prefixes() {
        let server = Server::new(Arc::new(NoRuntime), "http://127.0.0.1:1234/".to_string());
        let url = server.get_exec("c", vec!["ls".into()], false, false, true, false).unwrap();
        assert!(url.starts_with("http://127.0.0.1:1234/exec/"), "{url}");
        assert_eq!(url.len(), "http://127.0.0.1:1234/exec/".len() + crate::cache::TOKEN_LEN);
        assert_eq!(server.path_prefix, "");
        let server = Server::new(Arc::new(NoRuntime), "https://node:10250/cri".to_string());
        assert_eq!(server.path_prefix, "/cri");
        assert!(server.get_port_forward("p").unwrap().starts_with("https://node:10250/cri/portforward/"));
        assert_eq!(server.get_port_forward("").unwrap_err().to_string(), "missing required pod_sandbox_id");
        assert_eq!(
            server.get_attach("c", false, false, false, false).unwrap_err().to_string(),
            "one of stdin, stdout, and stderr must be set"
        );
    }
}
