//! Port-forward over SPDY (upstream `portforward/httpstream.go`): for every forwarded connection
//! the client opens a `data` and an `error` stream with the same `requestID` and `port`; once
//! both are there the server dials and copies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{forward, forward_error};
use crate::activity::Activity;
use crate::constants::{PORT_FORWARD_REQUEST_ID_HEADER, PORT_HEADER, STREAM_TYPE_DATA, STREAM_TYPE_ERROR, STREAM_TYPE_HEADER};
use crate::httpstream::{RST_CANCEL, SharedStream};
use crate::runtime::Runtime;
use crate::server::Config;

/// How long closing waits for the streams to end before the connection is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The data and error streams of one forwarded connection, as they arrive.
struct Pair {
    generation: u64,
    data: Option<SharedStream>,
    error: Option<SharedStream>,
}

struct Handler<R: Runtime> {
    runtime: Arc<R>,
    pod: String,
    config: Config,
    /// Names the connection in messages, as upstream's `conn=%p`.
    conn: String,
    pairs: HashMap<String, Pair>,
    /// Every accepted stream by id, until its forward ends (reset when the connection closes).
    streams: HashMap<u32, SharedStream>,
    generation: u64,
    expired_tx: mpsc::UnboundedSender<(String, u64)>,
    /// Forwards, timers and error writers; each returns the ids of the streams it is done with.
    tasks: JoinSet<Vec<u32>>,
}

/// Serves one port-forward connection on an upgraded SPDY connection.
pub(crate) async fn serve<R: Runtime>(upgraded: Upgraded, pod: String, runtime: Arc<R>, config: Config) {
    let (session, mut incoming) = spdy::Session::server(TokioIo::new(upgraded));
    let activity = Arc::new(Activity::new());
    let (expired_tx, mut expired_rx) = mpsc::unbounded_channel();
    let conn = format!("{:p}", Arc::as_ptr(&activity));
    let idle = config.stream_idle_timeout;
    let mut h = Handler {
        runtime,
        pod,
        config,
        conn,
        pairs: HashMap::new(),
        streams: HashMap::new(),
        generation: 0,
        expired_tx,
        tasks: JoinSet::new(),
    };
    loop {
        tokio::select! {
            stream = incoming.accept() => match stream {
                Some(stream) => {
                    activity.touch();
                    h.on_stream(SharedStream::new(stream, activity.clone()));
                }
                None => break,
            },
            Some((request_id, generation)) = expired_rx.recv() => h.on_expired(&request_id, generation),
            Some(done) = h.tasks.join_next(), if !h.tasks.is_empty() => {
                for id in done.unwrap_or_default() {
                    h.streams.remove(&id);
                }
            }
            () = activity.idle(idle) => {
                tracing::debug!("spdy port-forward: idle timeout, closing");
                break;
            }
        }
    }
    tracing::debug!(conn = h.conn, "spdy port-forward: connection closed");
    h.tasks.shutdown().await;
    for stream in h.streams.values() {
        stream.reset(RST_CANCEL);
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, session.close()).await;
}

/// `httpStreamReceived`: a stream needs a valid `port` and a `streamType` of data or error.
fn check(stream: &SharedStream) -> Result<(), String> {
    let port = stream.header(PORT_HEADER).unwrap_or_default();
    if port.is_empty() {
        return Err(format!("{:?} header is required", "port"));
    }
    let parsed = super::parse_uint16(&port).map_err(|e| format!("unable to parse {port:?} as a port: {e}"))?;
    if parsed < 1 {
        return Err(format!("port {port:?} must be > 0"));
    }
    let kind = stream.header(STREAM_TYPE_HEADER).unwrap_or_default();
    if kind.is_empty() {
        return Err(format!("{:?} header is required", "streamType"));
    }
    if kind != STREAM_TYPE_ERROR && kind != STREAM_TYPE_DATA {
        return Err(format!("invalid stream type {kind:?}"));
    }
    Ok(())
}

/// The pair a stream belongs to; old clients send no `requestID`, so upstream guesses it from
/// consecutive stream ids (error n, data n+2).
fn request_id(stream: &SharedStream) -> String {
    match stream.header(PORT_FORWARD_REQUEST_ID_HEADER) {
        Some(id) if !id.is_empty() => id,
        _ => match stream.header(STREAM_TYPE_HEADER).as_deref() {
            Some(STREAM_TYPE_ERROR) => stream.id().to_string(),
            Some(STREAM_TYPE_DATA) => (i64::from(stream.id()) - 2).to_string(),
            _ => String::new(),
        },
    }
}

impl<R: Runtime> Handler<R> {
    fn on_stream(&mut self, stream: SharedStream) {
        if let Err(msg) = check(&stream) {
            tracing::warn!("Stream rejected: {msg}");
            stream.reset(RST_CANCEL);
            return;
        }
        let request_id = request_id(&stream);
        self.streams.insert(stream.id(), stream.clone());
        let is_error = stream.header(STREAM_TYPE_HEADER).as_deref() == Some(STREAM_TYPE_ERROR);
        if !self.pairs.contains_key(&request_id) {
            self.generation += 1;
            let (id, generation, tx, timeout) =
                (request_id.clone(), self.generation, self.expired_tx.clone(), self.config.stream_creation_timeout);
            self.tasks.spawn(async move {
                tokio::time::sleep(timeout).await;
                let _ = tx.send((id, generation));
                Vec::new()
            });
            self.pairs.insert(request_id.clone(), Pair { generation, data: None, error: None });
        }
        let Some(pair) = self.pairs.get_mut(&request_id) else { return };
        let slot = if is_error { &mut pair.error } else { &mut pair.data };
        if slot.is_some() {
            let kind = if is_error { "error" } else { "data" };
            let msg = format!("error processing stream for request {request_id}: {kind} stream already assigned");
            tracing::warn!("{msg}");
            if let Some(error) = pair.error.clone() {
                self.tasks.spawn(print_error(error, msg, false, Vec::new()));
            }
            return;
        }
        *slot = Some(stream);
        if let Some(Pair { data: Some(data), error: Some(error), .. }) = self.pairs.get(&request_id) {
            let (data, error) = (data.clone(), error.clone());
            self.pairs.remove(&request_id);
            self.tasks.spawn(forward_pair(self.runtime.clone(), self.pod.clone(), data, error));
        }
    }

    /// `monitorStreamPair`'s timeout: the pair did not complete in time.
    fn on_expired(&mut self, request_id: &str, generation: u64) {
        if self.pairs.get(request_id).is_none_or(|p| p.generation != generation) {
            return;
        }
        let Some(pair) = self.pairs.remove(request_id) else { return };
        let msg = format!("(conn={}, request={request_id}) timed out waiting for streams", self.conn);
        tracing::warn!("{msg}");
        let ids: Vec<u32> = [&pair.data, &pair.error].into_iter().flatten().map(SharedStream::id).collect();
        if let Some(error) = pair.error {
            self.tasks.spawn(print_error(error, msg, true, ids));
        } else {
            for id in ids {
                self.streams.remove(&id);
            }
        }
    }
}

/// Writes `msg` on the error stream (and FIN with `close`); returns `done`.
async fn print_error(mut error: SharedStream, msg: String, close: bool, done: Vec<u32>) -> Vec<u32> {
    let _ = error.write_all(msg.as_bytes()).await;
    let _ = error.flush().await;
    if close {
        let _ = error.shutdown().await;
    }
    done
}

/// Dials the pair's port and copies; a failure goes on the error stream, then both streams are
/// reset (so the client may retry with new ones); otherwise both end with FIN.
async fn forward_pair<R: Runtime>(runtime: Arc<R>, pod: String, data: SharedStream, mut error: SharedStream) -> Vec<u32> {
    let ids = vec![data.id(), error.id()];
    let port = data.header(PORT_HEADER).and_then(|p| p.parse::<u16>().ok()).unwrap_or_default();
    tracing::debug!(pod, port, "spdy port-forward: forwarding");
    let result = match runtime.port_forward(&pod, port).await {
        Ok(target) => forward(data.clone(), data.clone(), target).await,
        Err(e) => Err(e),
    };
    if let Err(err) = result {
        let msg = forward_error(port, &pod, &err);
        tracing::warn!("{msg}");
        print_error(error.clone(), msg, true, Vec::new()).await;
        data.reset(RST_CANCEL);
        error.reset(RST_CANCEL);
        return ids;
    }
    let _ = error.shutdown().await;
    let _ = data.clone().shutdown().await;
    ids
}
