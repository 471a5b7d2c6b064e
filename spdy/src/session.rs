//! The session: one reader task (frames in, header blocks decompressed in order, data to
//! streams) and one writer task (frames out, header blocks compressed in order). Both end when
//! the connection ends or when every handle (sessions, streams, incoming) has been dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::frame::{Frame, status};
use crate::headers::{Compressor, Decompressor};
use crate::stream::{Inbound, Stream};
use crate::{Error, Headers, Result};

/// Bytes of DATA queued for the writer before writers wait.
pub(crate) const WRITE_BUDGET: usize = 1 << 20;

/// What the writer task sends.
#[derive(Debug)]
pub(crate) enum Out {
    Syn { id: u32, headers: Headers },
    Reply { id: u32 },
    /// `budget`: bytes to give back to the write budget once written.
    Data { id: u32, data: Bytes, fin: bool, budget: u32 },
    Rst { id: u32, status: u32 },
    Ping { id: u32 },
    GoAway,
}

/// What the tasks and the handles share.
pub(crate) struct Shared {
    pub(crate) out: mpsc::UnboundedSender<Out>,
    pub(crate) budget: Arc<Semaphore>,
    streams: Mutex<HashMap<u32, mpsc::UnboundedSender<Inbound>>>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Result<()>>>>,
    next_id: AtomicU32,
    /// Ping ids this side uses are odd for clients, even for servers, like stream ids.
    parity: u32,
    pub(crate) closed: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn forget(&self, id: u32) {
        lock(&self.streams).remove(&id);
    }
}

/// Ends the session when the last handle goes.
#[derive(Debug)]
pub(crate) struct Guard(CancellationToken);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A handle on a running session; clones share it.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("closed", &self.shared.closed.is_cancelled()).finish()
    }
}

/// Streams the peer opens, each already answered with SYN_REPLY.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Stream>,
    _guard: Arc<Guard>,
}

impl Incoming {
    /// The next stream the peer opened; `None` once the session has ended.
    pub async fn accept(&mut self) -> Option<Stream> {
        self.rx.recv().await
    }
}

impl Session {
    /// Runs a server session (even stream ids for streams it opens) on `io`.
    pub fn server<IO: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: IO) -> (Session, Incoming) {
        Self::start(io, 2)
    }

    /// Runs a client session (odd stream ids) on `io`.
    pub fn client<IO: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: IO) -> (Session, Incoming) {
        Self::start(io, 1)
    }

    fn start<IO: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: IO, first_id: u32) -> (Session, Incoming) {
        let (rd, wr) = tokio::io::split(io);
        let (out, out_rx) = mpsc::unbounded_channel();
        let (inc_tx, inc_rx) = mpsc::channel(64);
        let closed = CancellationToken::new();
        let shared = Arc::new(Shared {
            out,
            budget: Arc::new(Semaphore::new(WRITE_BUDGET)),
            streams: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(first_id),
            parity: first_id % 2,
            closed: closed.clone(),
        });
        let guard = Arc::new(Guard(closed));
        tokio::spawn(writer(wr, out_rx, shared.clone()));
        tokio::spawn(reader(rd, shared.clone(), inc_tx, Arc::downgrade(&guard)));
        (Session { shared, guard: guard.clone() }, Incoming { rx: inc_rx, _guard: guard })
    }

    /// Opens a stream with `headers` (SYN_STREAM) and waits for the peer's SYN_REPLY.
    pub async fn open(&self, headers: Headers) -> Result<Stream> {
        let id = self.shared.next_id.fetch_add(2, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ptx, prx) = oneshot::channel();
        lock(&self.shared.streams).insert(id, tx);
        lock(&self.shared.pending).insert(id, ptx);
        let stream = Stream::new(id, headers.clone(), rx, self.shared.clone(), self.guard.clone());
        self.shared.out.send(Out::Syn { id, headers }).map_err(|_| Error::Closed)?;
        // A reply that arrived just before the connection ended still counts (a fast command's
        // server may answer the last stream and hang up at once): look at the reply first.
        tokio::select! {
            biased;
            r = prx => r.map_err(|_| Error::Closed)??,
            _ = self.shared.closed.cancelled() => return Err(Error::Closed),
        }
        Ok(stream)
    }

    /// Sends GOAWAY and closes the connection.
    pub async fn close(&self) {
        let _ = self.shared.out.send(Out::GoAway);
        self.closed().await;
    }

    /// Resolves when the connection has ended (either side).
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await;
    }
}

/// Encodes `out` into `buf`; true when the connection is to be closed after it.
fn encode(out: Out, buf: &mut BytesMut, comp: &mut Compressor, shared: &Shared) -> Result<bool> {
    match out {
        Out::Syn { id, headers } => {
            let block = comp.compress(&headers)?.into();
            Frame::SynStream { id, associated: 0, priority: 0, fin: false, block }.encode(buf);
        }
        Out::Reply { id } => Frame::SynReply { id, fin: false, block: comp.compress(&Headers::new())?.into() }.encode(buf),
        Out::Data { id, data, fin, budget } => {
            Frame::Data { id, fin, data }.encode(buf);
            shared.budget.add_permits(budget as usize);
        }
        Out::Rst { id, status } => Frame::RstStream { id, status }.encode(buf),
        Out::Ping { id } => Frame::Ping { id }.encode(buf),
        Out::GoAway => {
            Frame::GoAway { last_good: 0, status: 0 }.encode(buf);
            return Ok(true);
        }
    }
    Ok(false)
}

async fn writer<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::UnboundedReceiver<Out>, shared: Arc<Shared>) {
    let Ok(mut comp) = Compressor::new() else {
        shared.closed.cancel();
        return;
    };
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let out = tokio::select! {
            o = rx.recv() => o,
            _ = shared.closed.cancelled() => None,
        };
        let Some(mut out) = out else { break };
        let mut last = false;
        // Everything queued goes out in one write.
        loop {
            match encode(out, &mut buf, &mut comp, &shared) {
                Ok(close) => last |= close,
                Err(e) => {
                    tracing::debug!(error = %e, "spdy writer");
                    last = true;
                }
            }
            if last || buf.len() >= 256 * 1024 {
                break;
            }
            match rx.try_recv() {
                Ok(o) => out = o,
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() || last {
            break;
        }
        buf.clear();
    }
    let _ = wr.shutdown().await;
    shared.closed.cancel();
}

/// Reads frames until the connection ends, a protocol error, or every handle is gone.
async fn reader<R: AsyncRead + Unpin>(
    mut rd: R,
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Stream>,
    guard: std::sync::Weak<Guard>,
) {
    let mut dec = Decompressor::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'read: loop {
        loop {
            match Frame::decode(&mut buf) {
                Ok(Some(f)) => {
                    if let Err(e) = handle(f, &shared, &mut dec, &incoming, &guard).await {
                        tracing::debug!(error = %e, "spdy: closing the session");
                        let _ = shared.out.send(Out::GoAway);
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "spdy: closing the session");
                    let _ = shared.out.send(Out::GoAway);
                    break 'read;
                }
            }
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => if !matches!(n, Ok(k) if k > 0) { break },
            _ = shared.closed.cancelled() => break,
        }
    }
    // Streams see the end of their data; opens waiting for a reply fail.
    lock(&shared.streams).clear();
    lock(&shared.pending).clear();
    shared.closed.cancel();
}

async fn handle(
    f: Frame,
    shared: &Arc<Shared>,
    dec: &mut Decompressor,
    incoming: &mpsc::Sender<Stream>,
    guard: &std::sync::Weak<Guard>,
) -> Result<()> {
    match f {
        Frame::SynStream { id, fin, block, .. } => {
            let headers = dec.decompress(&block)?;
            if id == 0 || id % 2 == shared.parity || lock(&shared.streams).contains_key(&id) {
                let _ = shared.out.send(Out::Rst { id, status: status::PROTOCOL_ERROR });
                return Ok(());
            }
            let Some(guard) = guard.upgrade() else { return Err(Error::Closed) };
            let (tx, rx) = mpsc::unbounded_channel();
            if !fin {
                lock(&shared.streams).insert(id, tx);
            }
            let _ = shared.out.send(Out::Reply { id });
            let stream = Stream::new(id, headers, rx, shared.clone(), guard);
            if incoming.send(stream).await.is_err() {
                let _ = shared.out.send(Out::Rst { id, status: status::REFUSED_STREAM });
                shared.forget(id);
            }
        }
        Frame::SynReply { id, fin, block } => {
            dec.decompress(&block)?;
            if let Some(p) = lock(&shared.pending).remove(&id) {
                let _ = p.send(Ok(()));
            }
            if fin {
                shared.forget(id);
            }
        }
        Frame::Headers { id, fin, block } => {
            dec.decompress(&block)?;
            if fin {
                shared.forget(id);
            }
        }
        Frame::Data { id, fin, data } => {
            let tx = lock(&shared.streams).get(&id).cloned();
            match tx {
                Some(tx) => {
                    if !data.is_empty() {
                        let _ = tx.send(Inbound::Data(data));
                    }
                    if fin {
                        shared.forget(id);
                    }
                }
                None => tracing::debug!(stream = id, "spdy: data for a stream that is not open"),
            }
        }
        Frame::RstStream { id, status } => {
            if let Some(tx) = lock(&shared.streams).remove(&id) {
                let _ = tx.send(Inbound::Reset(status));
            }
            if let Some(p) = lock(&shared.pending).remove(&id) {
                let _ = p.send(Err(Error::Reset(id, status)));
            }
        }
        Frame::Ping { id } if id % 2 != shared.parity => {
            let _ = shared.out.send(Out::Ping { id });
        }
        Frame::GoAway { .. } => tracing::debug!("spdy: the peer sent GOAWAY"),
        Frame::Ping { .. } | Frame::Settings | Frame::WindowUpdate { .. } | Frame::Unknown { .. } => {}
    }
    Ok(())
}
