//! Exec/attach over SPDY (upstream `remotecommand/httpstream.go`): the client opens one stream
//! per stdio stream, named by its `streamType` header, plus `error` (and `resize` with a tty on
//! v3+); the server waits for all of them, then runs.

use std::sync::Arc;
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{StatusFormat, Target, resize};
use crate::activity::Activity;
use crate::constants::{
    STREAM_PROTOCOL_V1, STREAM_PROTOCOL_V2, STREAM_PROTOCOL_V3, STREAM_TYPE_ERROR, STREAM_TYPE_HEADER,
    STREAM_TYPE_RESIZE, STREAM_TYPE_STDERR, STREAM_TYPE_STDIN, STREAM_TYPE_STDOUT,
};
use crate::httpstream::{RST_CANCEL, SharedStream};
use crate::request::StreamOptions;
use crate::runtime::{Runtime, Stdio};
use crate::server::Config;

/// How long the server waits for the client to hang up once everything was written.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The protocol handlers of upstream: v1 (and no negotiation), v2, v3, v4 (v5 on SPDY is v4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    V1,
    V2,
    V3,
    V4,
}

impl Version {
    pub(crate) fn from_protocol(protocol: &str) -> Self {
        match protocol {
            "" | STREAM_PROTOCOL_V1 => Self::V1,
            STREAM_PROTOCOL_V2 => Self::V2,
            STREAM_PROTOCOL_V3 => Self::V3,
            _ => Self::V4,
        }
    }

    fn supports_resize(self) -> bool {
        self >= Self::V3
    }
}

#[derive(Default)]
struct Streams {
    error: Option<SharedStream>,
    stdin: Option<SharedStream>,
    stdout: Option<SharedStream>,
    stderr: Option<SharedStream>,
    resize: Option<SharedStream>,
    /// Streams of unknown types: kept (as upstream) but not counted.
    other: Vec<SharedStream>,
}

impl Streams {
    fn all(&self) -> impl Iterator<Item = &SharedStream> {
        [&self.error, &self.stdin, &self.stdout, &self.stderr, &self.resize].into_iter().flatten().chain(&self.other)
    }
}

/// Serves one exec/attach on an upgraded SPDY connection.
pub(crate) async fn serve<R: Runtime>(
    upgraded: Upgraded,
    version: Version,
    opts: StreamOptions,
    target: Target,
    runtime: Arc<R>,
    config: Config,
) {
    let (session, mut incoming) = spdy::Session::server(TokioIo::new(upgraded));
    let activity = Arc::new(Activity::new());
    let expected = 1 + [opts.stdin, opts.stdout, opts.stderr, opts.tty && version.supports_resize()]
        .into_iter()
        .filter(|b| *b)
        .count();
    let mut streams = Streams::default();
    let waited = tokio::time::timeout(
        config.stream_creation_timeout,
        wait_for_streams(&mut incoming, &mut streams, expected, version, &activity),
    )
    .await;
    match waited {
        Ok(true) => {}
        Ok(false) => return tracing::debug!("spdy: connection ended before the client created its streams"),
        Err(_) => {
            tracing::warn!("timed out waiting for client to create streams");
            return close(&session, &streams).await;
        }
    }
    let mut tasks = JoinSet::new();
    tasks.spawn(refuse_more(incoming));
    let format = prepare(&streams, version).await;
    let stdio = stdio(&streams, opts.tty, &mut tasks);
    let status = tokio::select! {
        status = super::run(&runtime, &target, stdio) => status,
        () = activity.idle(config.stream_idle_timeout) => {
            tracing::debug!("spdy: idle timeout, closing");
            return finish(&session, &streams).await;
        }
    };
    if let (Some(error), Some(bytes)) = (&streams.error, format.encode(&status)) {
        let mut error = error.clone();
        let _ = error.write_all(&bytes).await;
        let _ = error.flush().await;
    }
    finish(&session, &streams).await;
}

/// Collects streams until `expected` of the known types arrived; false if the connection ends.
async fn wait_for_streams(
    incoming: &mut spdy::Incoming,
    streams: &mut Streams,
    expected: usize,
    version: Version,
    activity: &Arc<Activity>,
) -> bool {
    let mut received = 0;
    while received < expected {
        let Some(stream) = incoming.accept().await else { return false };
        let stream = SharedStream::new(stream, activity.clone());
        activity.touch();
        let kind = stream.header(STREAM_TYPE_HEADER).unwrap_or_default();
        let slot = match kind.as_str() {
            STREAM_TYPE_ERROR => &mut streams.error,
            STREAM_TYPE_STDIN => &mut streams.stdin,
            STREAM_TYPE_STDOUT => &mut streams.stdout,
            STREAM_TYPE_STDERR => &mut streams.stderr,
            STREAM_TYPE_RESIZE if version.supports_resize() => &mut streams.resize,
            _ => {
                tracing::warn!("unexpected stream type: {kind:?}");
                streams.other.push(stream);
                continue;
            }
        };
        *slot = Some(stream);
        received += 1;
    }
    true
}

/// Streams the client opens after the expected ones are refused.
async fn refuse_more(mut incoming: spdy::Incoming) {
    while let Some(stream) = incoming.accept().await {
        tracing::debug!(id = stream.id(), "spdy: unexpected extra stream");
        stream.reset(RST_CANCEL);
    }
}

/// Protocol quirks before running; returns how to write the status. v1 resets its error stream
/// right away and half-closes stdin from the server side (upstream keeps that 1.0 behaviour).
async fn prepare(streams: &Streams, version: Version) -> StatusFormat {
    match version {
        Version::V4 => StatusFormat::Json,
        Version::V2 | Version::V3 => StatusFormat::Text,
        Version::V1 => {
            if let Some(error) = &streams.error {
                error.reset(RST_CANCEL);
            }
            if let Some(stdin) = &streams.stdin {
                let _ = stdin.clone().shutdown().await;
            }
            StatusFormat::Nothing
        }
    }
}

fn stdio(streams: &Streams, tty: bool, tasks: &mut JoinSet<()>) -> Stdio {
    let resize = match (&streams.resize, tty) {
        (Some(stream), true) => {
            let (tx, rx) = mpsc::channel(resize::RESIZE_QUEUE);
            tasks.spawn(resize::decode(stream.clone(), tx));
            Some(rx)
        }
        _ => None,
    };
    Stdio {
        stdin: streams.stdin.clone().map(|s| Box::pin(s) as _),
        stdout: streams.stdout.clone().map(|s| Box::pin(s) as _),
        stderr: streams.stderr.clone().map(|s| Box::pin(s) as _),
        tty,
        resize,
    }
}

/// Ends the session: FIN on what the server writes, a moment for the client to read it and hang
/// up, then upstream's `connection.Close`.
async fn finish(session: &spdy::Session, streams: &Streams) {
    for stream in [&streams.stdout, &streams.stderr, &streams.error].into_iter().flatten() {
        let _ = stream.clone().shutdown().await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, session.closed()).await;
    close(session, streams).await;
}

/// Resets every stream (so none holds the connection open) and closes the connection.
async fn close(session: &spdy::Session, streams: &Streams) {
    for stream in streams.all() {
        stream.reset(RST_CANCEL);
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, session.close()).await;
}
