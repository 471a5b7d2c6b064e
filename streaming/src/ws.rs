//! WebSocket channels, as upstream's `wsstream/conn.go`: every message carries a channel number
//! in its first byte (binary protocols) or first character (base64 protocols); the server reads
//! into per-channel pipes and writes frames on a channel; with v5 the client may half-close a
//! channel with `[255, channel]`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::{CancellationToken, PollSender};

use crate::activity::Activity;
use crate::constants::{STREAM_CLOSE, STREAM_PROTOCOL_V5};
use crate::http::{Response, first, plain, values};

/// Bytes a channel pipe holds before the reader of the socket waits (upstream's pipes hold none).
const PIPE_SIZE: usize = 64 * 1024;
/// Largest payload of one frame the server writes.
const MAX_FRAME: usize = 32 * 1024;
/// How long the server waits for the client's answer to its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// A subprotocol the server accepts: its name and whether it is binary (else base64).
pub(crate) type Protocol = (&'static str, bool);

/// What the handshake agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// "" when the client asked for no subprotocol.
    pub protocol: String,
    pub binary: bool,
}

impl Negotiated {
    /// Only v5 has the CLOSE signal (`protocolSupportsStreamClose`).
    fn close_signal(&self) -> bool {
        self.protocol == STREAM_PROTOCOL_V5
    }
}

/// How a channel may be used, as `wsstream.ChannelType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelType {
    Ignore,
    Read,
    Write,
    ReadWrite,
}

impl ChannelType {
    pub(crate) fn read_if(on: bool) -> Self {
        if on { Self::Read } else { Self::Ignore }
    }
    pub(crate) fn write_if(on: bool) -> Self {
        if on { Self::Write } else { Self::Ignore }
    }
    fn readable(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }
    fn writable(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }
}

/// The server side of the opening handshake, as x/net/websocket with wsstream's protocol choice:
/// the first protocol the client lists that the server supports ("" when it lists none); 403
/// when none fits. Returns the 101 answer, or the refusal.
#[allow(clippy::result_large_err, reason = "the refusal is the answer, built once per request")]
pub(crate) fn handshake(
    method: &Method,
    headers: &HeaderMap,
    supported: &[Protocol],
) -> Result<(Response, Negotiated), Response> {
    if method != Method::GET {
        return Err(plain(StatusCode::METHOD_NOT_ALLOWED, "bad method"));
    }
    let key = first(headers, "sec-websocket-key");
    if key.is_empty() {
        return Err(plain(StatusCode::BAD_REQUEST, "mismatch challenge/response"));
    }
    if first(headers, "sec-websocket-version") != "13" {
        let mut resp = plain(StatusCode::BAD_REQUEST, "bad protocol version");
        resp.headers_mut().insert("sec-websocket-version", HeaderValue::from_static("13"));
        return Err(resp);
    }
    let mut requested: Vec<&str> = values(headers, "sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if requested.is_empty() {
        requested.push("");
    }
    let Some(&(protocol, binary)) = requested.iter().find_map(|r| supported.iter().find(|(name, _)| name == r)) else {
        tracing::debug!(?requested, "websocket: requested protocol(s) are not supported");
        return Err(plain(StatusCode::FORBIDDEN, ""));
    };
    let mut resp = plain(StatusCode::SWITCHING_PROTOCOLS, "");
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept = derive_accept_key(key.as_bytes());
    h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).map_err(|_| plain(StatusCode::BAD_REQUEST, ""))?);
    if !protocol.is_empty() {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    }
    Ok((resp, Negotiated { protocol: protocol.to_string(), binary }))
}

enum Outgoing {
    Message(Message),
    Close,
}

/// An open channel connection; dropping it drops the socket.
pub(crate) struct WsConn {
    negotiated: Negotiated,
    channels: Vec<ChannelType>,
    out: mpsc::Sender<Outgoing>,
    readers: Vec<Option<DuplexStream>>,
    peer_done: watch::Receiver<bool>,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl WsConn {
    /// Starts serving `channels` on the upgraded connection; the connection ends after
    /// `idle_timeout` without a message either way.
    pub(crate) async fn open(upgraded: Upgraded, negotiated: Negotiated, channels: Vec<ChannelType>, idle_timeout: Duration) -> Self {
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (sink, stream) = ws.split();
        let activity = Arc::new(Activity::new());
        let cancel = CancellationToken::new();
        let (out, out_rx) = mpsc::channel(16);
        let (pipes, readers): (Vec<_>, Vec<_>) = channels
            .iter()
            .map(|t| if t.readable() { let (a, b) = tokio::io::duplex(PIPE_SIZE); (Some(a), Some(b)) } else { (None, None) })
            .unzip();
        let (done_tx, peer_done) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(write_loop(sink, out_rx, activity.clone(), cancel.clone()));
        let demux = Demux { pipes, binary: negotiated.binary, close_signal: negotiated.close_signal() };
        tasks.spawn(read_loop(stream, demux, activity.clone(), cancel.clone(), done_tx));
        let watchdog_cancel = cancel.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = activity.idle(idle_timeout) => {
                    tracing::debug!("websocket: idle timeout, closing");
                    watchdog_cancel.cancel();
                }
                () = watchdog_cancel.cancelled() => {}
            }
        });
        Self { negotiated, channels, out, readers, peer_done, cancel, tasks }
    }

    pub(crate) fn protocol(&self) -> &str {
        &self.negotiated.protocol
    }

    /// What the client sends on `channel` (readable channels, once).
    pub(crate) fn take_reader(&mut self, channel: u8) -> Option<DuplexStream> {
        self.readers.get_mut(usize::from(channel))?.take()
    }

    /// Writes on `channel`; on a channel that is not writable, writes vanish (as upstream).
    pub(crate) fn writer(&self, channel: u8) -> ChannelWriter {
        let writable = self.channels.get(usize::from(channel)).is_some_and(|t| t.writable());
        ChannelWriter { channel, writable, binary: self.negotiated.binary, tx: PollSender::new(self.out.clone()) }
    }

    /// Sends one frame on `channel`, even an empty one.
    pub(crate) async fn send(&self, channel: u8, data: &[u8]) -> io::Result<()> {
        if !self.channels.get(usize::from(channel)).is_some_and(|t| t.writable()) {
            return Ok(());
        }
        let msg = encode(channel, data, self.negotiated.binary);
        self.out.send(Outgoing::Message(msg)).await.map_err(|_| broken_pipe())
    }

    /// Resolves when the connection was given up (idle timeout or a protocol error).
    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Sends the close frame after everything written so far, waits a little for the client's
    /// answer, and drops the connection.
    pub(crate) async fn close(mut self) {
        if self.out.send(Outgoing::Close).await.is_ok() {
            let mut done = self.peer_done.clone();
            let _ = tokio::time::timeout(CLOSE_GRACE, done.wait_for(|d| *d)).await;
        }
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn broken_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "websocket connection closed")
}

fn encode(channel: u8, data: &[u8], binary: bool) -> Message {
    if binary {
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(channel);
        frame.extend_from_slice(data);
        Message::Binary(frame.into())
    } else {
        let mut frame = String::with_capacity(data.len() * 4 / 3 + 4);
        frame.push(char::from(b'0'.wrapping_add(channel)));
        STANDARD.encode_string(data, &mut frame);
        Message::Text(frame.into())
    }
}

/// Writes frames on one channel; fails once the connection is gone.
pub(crate) struct ChannelWriter {
    channel: u8,
    writable: bool,
    binary: bool,
    tx: PollSender<Outgoing>,
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if !self.writable || buf.is_empty() {
            return Poll::Ready(Ok(buf.len()));
        }
        ready!(self.tx.poll_reserve(cx)).map_err(|_| broken_pipe())?;
        let n = buf.len().min(MAX_FRAME);
        let msg = encode(self.channel, &buf[..n], self.binary);
        self.tx.send_item(Outgoing::Message(msg)).map_err(|_| broken_pipe())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    activity: Arc<Activity>,
    cancel: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            () = cancel.cancelled() => return,
            item = rx.recv() => item,
        };
        let result = match item {
            Some(Outgoing::Message(msg)) => {
                let fed = sink.feed(msg).await;
                activity.touch();
                if fed.is_ok() && rx.is_empty() { sink.flush().await } else { fed }
            }
            Some(Outgoing::Close) | None => {
                let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                let _ = sink.send(Message::Close(Some(frame))).await;
                return;
            }
        };
        if let Err(e) = result {
            tracing::debug!("websocket: write failed: {e}");
            return;
        }
    }
}

async fn read_loop(
    mut stream: SplitStream<Ws>,
    mut demux: Demux,
    activity: Arc<Activity>,
    cancel: CancellationToken,
    done: watch::Sender<bool>,
) {
    loop {
        let msg = tokio::select! {
            () = cancel.cancelled() => break,
            msg = stream.next() => msg,
        };
        let data: Bytes = match msg {
            Some(Ok(Message::Binary(data))) => data,
            Some(Ok(Message::Text(text))) => text.into(),
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tracing::debug!("websocket: receive failed: {e}");
                break;
            }
            None => break,
        };
        activity.touch();
        if !demux.frame(data).await {
            // Upstream ends the connection on a malformed close signal.
            cancel.cancel();
            break;
        }
    }
    drop(demux);
    let _ = done.send(true);
}

/// Routes the client's frames into the channel pipes.
struct Demux {
    pipes: Vec<Option<DuplexStream>>,
    binary: bool,
    close_signal: bool,
}

impl Demux {
    /// Handles one message; false ends the connection.
    async fn frame(&mut self, data: Bytes) -> bool {
        let Some(&first) = data.first() else { return true };
        if self.close_signal && first == STREAM_CLOSE {
            return self.close(&data).await;
        }
        let channel = usize::from(if self.binary { first } else { first.wrapping_sub(b'0') });
        let Some(slot) = self.pipes.get_mut(channel) else {
            tracing::trace!(channel, "websocket: frame for a channel that is not valid");
            return true;
        };
        let Some(pipe) = slot.as_mut() else { return true };
        let payload = if self.binary {
            data.slice(1..)
        } else {
            match STANDARD.decode(&data[1..]) {
                Ok(decoded) => Bytes::from(decoded),
                Err(e) => {
                    tracing::warn!(channel, "websocket: unable to decode base64 frame: {e}");
                    return true;
                }
            }
        };
        if let Err(e) = pipe.write_all(&payload).await {
            tracing::debug!(channel, "websocket: unable to write frame: {e}");
            *slot = None;
        }
        true
    }

    async fn close(&mut self, data: &[u8]) -> bool {
        if data.len() != 2 {
            tracing::warn!("Single channel byte should follow stream close signal. Got {} bytes", data.len() - 1);
            return false;
        }
        let channel = usize::from(data[1]);
        let Some(slot) = self.pipes.get_mut(channel) else {
            tracing::warn!("Close is targeted for a channel {channel} that is not valid, possible protocol error");
            return false;
        };
        tracing::debug!(channel, "websocket: received half-close signal from client");
        if let Some(mut pipe) = slot.take() {
            let _ = pipe.shutdown().await;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &[Protocol] = &[("", true), ("channel.k8s.io", true), ("v4.channel.k8s.io", true), ("v5.channel.k8s.io", true)];

    fn request(protocols: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("sec-websocket-key", HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        h.insert("sec-websocket-version", HeaderValue::from_static("13"));
        if let Some(p) = protocols {
            h.insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
        }
        h
    }

    #[test]
    fn picks_the_clients_first_supported_protocol() {
        let (resp, n) = handshake(&Method::GET, &request(Some("v9.channel.k8s.io, v4.channel.k8s.io,v5.channel.k8s.io")), EXEC).unwrap();
        assert_eq!(n.protocol, "v4.channel.k8s.io");
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(resp.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
        assert_eq!(resp.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn no_protocol_means_the_empty_one() {
        let (resp, n) = handshake(&Method::GET, &request(None), EXEC).unwrap();
        assert_eq!(n, Negotiated { protocol: String::new(), binary: true });
        assert!(resp.headers().get("sec-websocket-protocol").is_none());
    }

    #[test]
    fn refusals() {
        let status = |m: &Method, h: &HeaderMap| handshake(m, h, EXEC).unwrap_err().status();
        assert_eq!(status(&Method::GET, &request(Some("SPDY/3.1+portforward.k8s.io"))), StatusCode::FORBIDDEN);
        assert_eq!(status(&Method::POST, &request(None)), StatusCode::METHOD_NOT_ALLOWED);
        let mut h = request(None);
        h.insert("sec-websocket-version", HeaderValue::from_static("8"));
        assert_eq!(status(&Method::GET, &h), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn base64_frames() {
        assert_eq!(encode(1, b"foo\n", false), Message::Text("1Zm9vCg==".into()));
        assert_eq!(encode(3, b"", true), Message::Binary(vec![3].into()));
    }
}
