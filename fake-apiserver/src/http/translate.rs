//! Upstream's stream translation (KEP-4006): a client that speaks WebSocket
//! `v5.channel.k8s.io` for exec or attach is served here and carried to the kubelet over SPDY
//! (`StreamTranslatorHandler`), so runtimes whose streaming servers predate v5 work with
//! kubectl ≥ 1.30 and kube-rs; and kubectl's port-forward tunnel (`SPDY/3.1+portforward.k8s.io`,
//! SPDY inside WebSocket binary messages) is unwrapped onto an SPDY connection to the kubelet
//! (`StreamTunnelingHandler`).

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::Body;
use crate::error::ApiError;
use crate::server::State;

type ApiResult<T> = std::result::Result<T, ApiError>;

/// The WebSocket remote-command protocol with the CLOSE signal.
pub const V5: &str = "v5.channel.k8s.io";
/// kubectl's port-forward tunnel.
pub const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The SPDY protocols asked of the kubelet.
const SPDY_REMOTE_COMMAND: &str = "v4.channel.k8s.io";
const SPDY_PORT_FORWARD: &str = "portforward.k8s.io";

/// The subprotocols a WebSocket upgrade offers (empty for anything else).
pub fn offered(headers: &HeaderMap) -> Vec<String> {
    let is_ws = headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return Vec::new();
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The streams an exec or attach asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// An SPDY connection to the kubelet at `path` (upgraded, `protocol` negotiated).
async fn spdy_to_kubelet(state: &Arc<State>, node: &str, path: &str, protocol: &str) -> ApiResult<Upgraded> {
    let io = super::connect::dial_node(state, node, None).await?;
    let (addr, io) = io;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| ApiError::new(503, "ServiceUnavailable", format!("error dialing backend: {e}")))?;
    let cancel = state.cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            r = conn.with_upgrades() => if let Err(e) = r { tracing::debug!(error = %e, "kubelet SPDY connection") },
            _ = cancel.cancelled() => {}
        }
    });
    let req = Request::post(path)
        .header(header::HOST, addr.to_string())
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut resp = sender.send_request(req).await.map_err(|e| ApiError::new(503, "ServiceUnavailable", format!("error trying to reach the kubelet: {e}")))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let code = resp.status().as_u16();
        let body = http_body_util::Limited::new(resp.into_body(), 4096).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim_end().to_string();
        return Err(ApiError::new(if code == 404 { 404 } else { 400 }, if code == 404 { "NotFound" } else { "BadRequest" }, text));
    }
    hyper::upgrade::on(&mut resp).await.map_err(|e| ApiError::internal(format!("upgrading to SPDY at the kubelet: {e}")))
}

/// The 101 answer accepting a WebSocket with `protocol`.
fn accept(req: &Request<Incoming>, protocol: &str) -> ApiResult<Response<Body>> {
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let mut resp = Response::new(super::full(""));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|e| ApiError::internal(e.to_string()))?);
    h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(protocol).map_err(|e| ApiError::internal(e.to_string()))?);
    Ok(resp)
}

/// Serves a v5 WebSocket exec or attach over an SPDY connection to node `node`'s kubelet
/// at `path` (its query carries the options).
pub async fn remote_command(state: &Arc<State>, mut req: Request<Incoming>, node: &str, path: &str, streams: Streams) -> ApiResult<Response<Body>> {
    let upgraded = spdy_to_kubelet(state, node, path, SPDY_REMOTE_COMMAND).await?;
    let (session, _incoming) = spdy::Session::client(TokioIo::new(upgraded));
    let open = |kind: &str| session.open(vec![("streamtype".to_string(), kind.to_string())]);
    let error = open("error").await.map_err(|e| ApiError::internal(format!("creating the error stream: {e}")))?;
    let stdin = if streams.stdin { Some(open("stdin").await.map_err(|e| ApiError::internal(e.to_string()))?) } else { None };
    let stdout = if streams.stdout { Some(open("stdout").await.map_err(|e| ApiError::internal(e.to_string()))?) } else { None };
    let stderr = if streams.stderr && !streams.tty { Some(open("stderr").await.map_err(|e| ApiError::internal(e.to_string()))?) } else { None };
    let resize = if streams.tty { Some(open("resize").await.map_err(|e| ApiError::internal(e.to_string()))?) } else { None };
    let resp = accept(&req, V5)?;
    let client = hyper::upgrade::on(&mut req);
    let cancel = state.cancel.clone();
    tokio::spawn(async move {
        let Ok(client) = client.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        let pipes = Pipes { error, stdin, stdout, stderr, resize };
        tokio::select! {
            () = bridge(ws, pipes) => {}
            _ = cancel.cancelled() => {}
        }
        session.close().await;
    });
    Ok(resp)
}

/// The SPDY streams of one remote command.
struct Pipes {
    error: spdy::Stream,
    stdin: Option<spdy::Stream>,
    stdout: Option<spdy::Stream>,
    stderr: Option<spdy::Stream>,
    resize: Option<spdy::Stream>,
}

/// A normal closure (1000): clients treat anything else, even a close without a code, as an
/// error on the stream they were reading.
fn normal_close() -> Message {
    Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))
}

/// Upstream's Success status, for a kubelet that writes nothing on success.
const SUCCESS: &str = r#"{"metadata":{},"status":"Success"}"#;

async fn pump_out<R: AsyncRead + Unpin>(mut from: R, channel: u8, to: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut frame = Vec::with_capacity(n + 1);
        frame.push(channel);
        frame.extend_from_slice(&buf[..n]);
        if to.send(Message::binary(frame)).await.is_err() {
            break;
        }
    }
}

/// Carries frames both ways until the command's status has been written.
async fn bridge<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(ws: WebSocketStream<S>, p: Pipes) {
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let (mut stdin, mut resize) = (p.stdin, p.resize);
    let inbound = async move {
        while let Some(Ok(m)) = source.next().await {
            let Message::Binary(b) = m else {
                if m.is_close() { break } else { continue }
            };
            match (b.first().copied(), b.get(1).copied()) {
                (Some(0), _) => if let Some(s) = stdin.as_mut() && s.write_all(&b[1..]).await.is_err() { stdin = None },
                (Some(4), _) => if let Some(s) = resize.as_mut() { let _ = s.write_all(&b[1..]).await; },
                (Some(255), Some(0)) => if let Some(mut s) = stdin.take() { let _ = s.shutdown().await; },
                _ => {}
            }
        }
    };
    let lowest = if p.stdout.is_some() { 1 } else if p.stderr.is_some() { 2 } else { 3 };
    let _ = tx.send(Message::binary(vec![lowest])).await;
    let outputs = {
        let (tx1, tx2) = (tx.clone(), tx.clone());
        let (out, err) = (p.stdout, p.stderr);
        async move {
            tokio::join!(
                async { if let Some(s) = out { pump_out(s, 1, tx1).await } },
                async { if let Some(s) = err { pump_out(s, 2, tx2).await } },
            );
        }
    };
    let status = async move {
        let mut error = p.error;
        let mut text = Vec::new();
        // Output flows while the command runs; the status comes after the last of it.
        tokio::join!(async { let _ = error.read_to_end(&mut text).await; }, outputs);
        let body = if text.is_empty() { SUCCESS.as_bytes().to_vec() } else { text };
        let mut frame = vec![3u8];
        frame.extend_from_slice(&body);
        let _ = tx.send(Message::binary(frame)).await;
        let _ = tx.send(normal_close()).await;
    };
    let writer = async move {
        while let Some(m) = rx.recv().await {
            let close = m.is_close();
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(status, writer) } => {}
        () = inbound => {}
    }
}

/// Serves kubectl's port-forward tunnel: SPDY from the client inside WebSocket binary
/// messages, relayed byte for byte to an SPDY connection with the kubelet at `path`.
pub async fn port_forward_tunnel(state: &Arc<State>, mut req: Request<Incoming>, node: &str, path: &str) -> ApiResult<Response<Body>> {
    let upgraded = spdy_to_kubelet(state, node, path, SPDY_PORT_FORWARD).await?;
    let resp = accept(&req, PORT_FORWARD_TUNNEL)?;
    let client = hyper::upgrade::on(&mut req);
    let cancel = state.cancel.clone();
    tokio::spawn(async move {
        let Ok(client) = client.await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        tokio::select! {
            () = relay(ws, TokioIo::new(upgraded)) => {}
            _ = cancel.cancelled() => {}
        }
    });
    Ok(resp)
}

/// WebSocket binary payloads ↔ raw bytes.
async fn relay<S: AsyncRead + AsyncWrite + Unpin, T: AsyncRead + AsyncWrite + Unpin>(ws: WebSocketStream<S>, raw: T) {
    let (mut sink, mut source) = ws.split();
    let (mut rd, mut wr) = tokio::io::split(raw);
    let up = async {
        while let Some(Ok(m)) = source.next().await {
            match m {
                Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                m if m.is_close() => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        let _ = sink.send(normal_close()).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
