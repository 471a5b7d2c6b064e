//! Port-forward over WebSocket channels (upstream `portforward/websocket.go`): for the i-th port
//! of the `ports` query parameter, channel 2i carries data both ways and channel 2i+1 carries
//! errors; each channel opens with the port as two little-endian bytes.

use std::sync::Arc;

use hyper::upgrade::Upgraded;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::{forward, forward_error};
use crate::constants::{V4_BASE64_WEBSOCKET_PROTOCOL, V4_BINARY_WEBSOCKET_PROTOCOL};
use crate::runtime::Runtime;
use crate::server::Config;
use crate::ws::{ChannelType, ChannelWriter, Negotiated, Protocol, WsConn};

pub(crate) const PROTOCOLS: &[Protocol] =
    &[("", true), (V4_BINARY_WEBSOCKET_PROTOCOL, true), (V4_BASE64_WEBSOCKET_PROTOCOL, false)];

/// Channel numbers are one byte: at most this many ports per connection.
pub(crate) const MAX_PORTS: usize = 127;

/// Serves one port-forward connection for `ports`.
pub(crate) async fn serve<R: Runtime>(
    upgraded: Upgraded,
    negotiated: Negotiated,
    ports: Vec<u16>,
    pod: String,
    runtime: Arc<R>,
    config: Config,
) {
    let channels = ports.iter().flat_map(|_| [ChannelType::ReadWrite, ChannelType::Write]).collect();
    let mut conn = WsConn::open(upgraded, negotiated, channels, config.stream_idle_timeout).await;
    tracing::debug!(protocol = conn.protocol(), pod, ?ports, "websocket port-forward");
    let mut tasks = JoinSet::new();
    for (i, &port) in ports.iter().enumerate() {
        let (data, error) = channels_of(i);
        let _ = conn.send(data, &port.to_le_bytes()).await;
        let _ = conn.send(error, &port.to_le_bytes()).await;
    }
    for (i, &port) in ports.iter().enumerate() {
        let (data, error) = channels_of(i);
        let Some(reader) = conn.take_reader(data) else { continue };
        let (writer, error_writer) = (conn.writer(data), conn.writer(error));
        tasks.spawn(forward_port(runtime.clone(), pod.clone(), port, reader, writer, error_writer));
    }
    tokio::select! {
        () = async { while tasks.join_next().await.is_some() {} } => {}
        () = conn.cancelled() => return,
    }
    conn.close().await;
}

fn channels_of(i: usize) -> (u8, u8) {
    // `MAX_PORTS` keeps this in range.
    let data = u8::try_from(i * 2).unwrap_or(u8::MAX - 1);
    (data, data + 1)
}

async fn forward_port<R: Runtime>(
    runtime: Arc<R>,
    pod: String,
    port: u16,
    reader: tokio::io::DuplexStream,
    writer: ChannelWriter,
    mut error_writer: ChannelWriter,
) {
    let result = match runtime.port_forward(&pod, port).await {
        Ok(target) => forward(reader, writer, target).await,
        Err(e) => Err(e),
    };
    if let Err(err) = result {
        let msg = forward_error(port, &pod, &err);
        tracing::warn!("{msg}");
        let _ = error_writer.write_all(msg.as_bytes()).await;
    }
}
