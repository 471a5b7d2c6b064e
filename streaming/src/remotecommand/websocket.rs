//! Exec/attach over WebSocket channels (upstream `remotecommand/websocket.go`, plus v5).

use std::sync::Arc;

use hyper::upgrade::Upgraded;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{StatusFormat, Target, resize};
use crate::constants::{
    BASE64_CHANNEL_WEBSOCKET_PROTOCOL, CHANNEL_WEBSOCKET_PROTOCOL, STREAM_ERR, STREAM_PROTOCOL_V5, STREAM_RESIZE,
    STREAM_STDERR, STREAM_STDIN, STREAM_STDOUT, V4_BASE64_WEBSOCKET_PROTOCOL, V4_BINARY_WEBSOCKET_PROTOCOL,
};
use crate::request::StreamOptions;
use crate::runtime::{Runtime, Stdio};
use crate::server::Config;
use crate::ws::{ChannelType, Negotiated, Protocol, WsConn};

/// What exec/attach accept: upstream's five plus v5 (binary only, with the CLOSE signal).
pub(crate) const PROTOCOLS: &[Protocol] = &[
    ("", true),
    (CHANNEL_WEBSOCKET_PROTOCOL, true),
    (BASE64_CHANNEL_WEBSOCKET_PROTOCOL, false),
    (V4_BINARY_WEBSOCKET_PROTOCOL, true),
    (V4_BASE64_WEBSOCKET_PROTOCOL, false),
    (STREAM_PROTOCOL_V5, true),
];

/// stdin 0, stdout 1, stderr 2 as asked; error 3 and resize 4 always.
fn channels(opts: StreamOptions) -> Vec<ChannelType> {
    vec![
        ChannelType::read_if(opts.stdin),
        ChannelType::write_if(opts.stdout),
        ChannelType::write_if(opts.stderr),
        ChannelType::Write,
        ChannelType::Read,
    ]
}

fn status_format(protocol: &str) -> StatusFormat {
    match protocol {
        V4_BINARY_WEBSOCKET_PROTOCOL | V4_BASE64_WEBSOCKET_PROTOCOL | STREAM_PROTOCOL_V5 => StatusFormat::Json,
        _ => StatusFormat::Text,
    }
}

/// Serves one exec/attach on an upgraded WebSocket connection.
pub(crate) async fn serve<R: Runtime>(
    upgraded: Upgraded,
    negotiated: Negotiated,
    opts: StreamOptions,
    target: Target,
    runtime: Arc<R>,
    config: Config,
) {
    let mut conn = WsConn::open(upgraded, negotiated, channels(opts), config.stream_idle_timeout).await;
    let format = status_format(conn.protocol());
    tracing::debug!(protocol = conn.protocol(), ?target, "websocket remote command");
    // An empty frame on the lowest writable channel tells the client the connection is up.
    let first = if opts.stdout {
        STREAM_STDOUT
    } else if opts.stderr {
        STREAM_STDERR
    } else {
        STREAM_ERR
    };
    let _ = conn.send(first, &[]).await;

    let mut tasks = JoinSet::new();
    let resize_reader = conn.take_reader(STREAM_RESIZE);
    let resize = match resize_reader {
        Some(reader) if opts.tty => {
            let (tx, rx) = mpsc::channel(resize::RESIZE_QUEUE);
            tasks.spawn(resize::decode(reader, tx));
            Some(rx)
        }
        _ => None,
    };
    let stdio = Stdio {
        stdin: conn.take_reader(STREAM_STDIN).map(|r| Box::pin(r) as _),
        stdout: opts.stdout.then(|| Box::pin(conn.writer(STREAM_STDOUT)) as _),
        stderr: opts.stderr.then(|| Box::pin(conn.writer(STREAM_STDERR)) as _),
        tty: opts.tty,
        resize,
    };
    let status = tokio::select! {
        status = super::run(&runtime, &target, stdio) => status,
        () = conn.cancelled() => return,
    };
    if let Some(bytes) = format.encode(&status) {
        let _ = conn.send(STREAM_ERR, &bytes).await;
    }
    conn.close().await;
}
