//! A client for a CRI runtime's streaming server, as kubelet and kubectl speak to it: the URL
//! that Exec, Attach or PortForward answered, opened as a WebSocket from inside the node host
//! (where the runtime's streaming server listens), with upstream's channel protocols — every
//! binary message starts with its channel number (`wsstream`); for port forwarding each
//! channel's first message is the port, two bytes little-endian.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Exec and attach: v5 first (with the CLOSE signal), then v4, as kubectl offers them.
pub const REMOTE_COMMAND_PROTOCOLS: &str = "v5.channel.k8s.io, v4.channel.k8s.io";
/// Port forwarding over WebSocket (the port prefix is part of v4).
pub const PORT_FORWARD_PROTOCOL: &str = "v4.channel.k8s.io";

/// How long any one read from the streaming server may take.
const READ: Duration = Duration::from_secs(10);

/// An open streaming connection and the subprotocol the server chose.
pub struct Stream {
    pub ws: WebSocketStream<tokio::net::TcpStream>,
    pub protocol: String,
}

/// Opens `url` (an `http://ip:port/...` URL a runtime answered) from `host` with `protocols`
/// offered; the handshake must pick one of them.
pub async fn open(host: &harness::world::Host, url: &str, protocols: &str) -> anyhow::Result<Stream> {
    let uri: http::Uri = url.parse().with_context(|| format!("streaming URL {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("streaming URL {url:?}: only http:// is dialled here");
    }
    let authority = uri.authority().with_context(|| format!("streaming URL {url:?} has no host"))?;
    let addr: SocketAddr = authority.as_str().parse().with_context(|| format!("streaming URL {url:?}: the host must be an IP address and port"))?;
    let tcp = tokio::time::timeout(READ, host.tcp_connect(addr)).await.with_context(|| format!("connecting to {addr}"))??;
    let ws_url = format!("ws://{authority}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut req = ws_url.as_str().into_client_request()?;
    req.headers_mut().insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocols.parse()?);
    let (ws, resp) = tokio::time::timeout(READ, tokio_tungstenite::client_async(req, tcp))
        .await
        .with_context(|| format!("WebSocket handshake with {url}"))?
        .with_context(|| format!("WebSocket handshake with {url}"))?;
    let protocol = resp
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(Stream { ws, protocol })
}

/// What a remote command sent until the server closed the connection.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The error channel's content: a `metav1.Status` in JSON for v4 and v5.
    pub status: Vec<u8>,
}

impl Output {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The status object, parsed.
    pub fn status(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.status).with_context(|| format!("the error channel held {:?}", String::from_utf8_lossy(&self.status)))
    }
}

impl Stream {
    /// Reads channels 1 (stdout), 2 (stderr) and 3 (error) until the server closes, or until
    /// `until` holds for what was read so far (the connection then stays open).
    pub async fn read_until(&mut self, out: &mut Output, until: impl Fn(&Output) -> bool) -> anyhow::Result<bool> {
        loop {
            if until(out) {
                return Ok(true);
            }
            let msg = tokio::time::timeout(READ, self.ws.next()).await.context("waited 10 s for the streaming server")?;
            let data = match msg {
                None | Some(Ok(Message::Close(_))) => return Ok(false),
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => bail!("a binary channel protocol ({}) sent {other:?}", self.protocol),
                Some(Err(e)) => return Err(e).context("reading from the streaming server"),
            };
            let Some((&channel, rest)) = data.split_first() else { continue };
            match channel {
                1 => out.stdout.extend_from_slice(rest),
                2 => out.stderr.extend_from_slice(rest),
                3 => out.status.extend_from_slice(rest),
                c => bail!("message on channel {c}, which a remote command does not use"),
            }
        }
    }

    /// Everything until the server closes the connection.
    pub async fn read_to_close(&mut self) -> anyhow::Result<Output> {
        let mut out = Output::default();
        self.read_until(&mut out, |_| false).await?;
        Ok(out)
    }

    /// Sends `data` on `channel`.
    pub async fn send(&mut self, channel: u8, data: &[u8]) -> anyhow::Result<()> {
        let mut msg = Vec::with_capacity(data.len() + 1);
        msg.push(channel);
        msg.extend_from_slice(data);
        self.ws.send(Message::Binary(msg.into())).await.context("writing to the streaming server")
    }

    /// Reads the next message of a port-forward connection: its channel and payload.
    pub async fn next_forwarded(&mut self) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
        loop {
            let msg = tokio::time::timeout(READ, self.ws.next()).await.context("waited 10 s for the streaming server")?;
            match msg {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Binary(b))) => {
                    if let Some((&c, rest)) = b.split_first() {
                        return Ok(Some((c, rest.to_vec())));
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => bail!("port forwarding ({}) sent {other:?}", self.protocol),
                Some(Err(e)) => return Err(e).context("reading from the streaming server"),
            }
        }
    }

    /// Closes the connection from this side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
