//! One stream: DATA in order as an `AsyncRead` (EOF at the peer's FIN; a reset surfaces as
//! `ConnectionReset`), DATA out as an `AsyncWrite` (`shutdown` sends FIN; dropping a stream
//! that was not shut down sends FIN too, so the peer never waits on it).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSemaphore;

use crate::Headers;
use crate::session::{Guard, Out, Shared};

/// The largest DATA payload written in one frame.
const MAX_CHUNK: usize = 32 * 1024;

/// What the reader task hands a stream.
#[derive(Debug)]
pub(crate) enum Inbound {
    Data(Bytes),
    Reset(u32),
}

/// One stream of a session.
pub struct Stream {
    id: u32,
    headers: Headers,
    rx: mpsc::UnboundedReceiver<Inbound>,
    current: Bytes,
    reset: Option<u32>,
    permits: PollSemaphore,
    shut: bool,
    shared: Arc<Shared>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).field("headers", &self.headers).finish()
    }
}

impl Stream {
    pub(crate) fn new(id: u32, headers: Headers, rx: mpsc::UnboundedReceiver<Inbound>, shared: Arc<Shared>, guard: Arc<Guard>) -> Stream {
        let permits = PollSemaphore::new(shared.budget.clone());
        Stream { id, headers, rx, current: Bytes::new(), reset: None, permits, shut: false, shared, _guard: guard }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// The headers of the SYN_STREAM that opened it.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Sends RST_STREAM with `status` (1 PROTOCOL_ERROR, 5 CANCEL, …); the stream is then done
    /// both ways.
    pub fn reset(&self, status: u32) {
        let _ = self.shared.out.send(Out::Rst { id: self.id, status });
        self.shared.forget(self.id);
    }
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                let chunk = self.current.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if let Some(status) = self.reset {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, format!("spdy stream reset (status {status})"))));
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(Inbound::Data(d)) => self.current = d,
                Some(Inbound::Reset(s)) => self.reset = Some(s),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.shut || self.reset.is_some() || self.shared.closed.is_cancelled() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "spdy stream closed")));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_CHUNK);
        let Some(permit) = ready!(self.permits.poll_acquire_many(cx, n as u32)) else {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "spdy session closed")));
        };
        permit.forget();
        let out = Out::Data { id: self.id, data: Bytes::copy_from_slice(&buf[..n]), fin: false, budget: n as u32 };
        if self.shared.out.send(out).is_err() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "spdy session closed")));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut {
            self.shut = true;
            let _ = self.shared.out.send(Out::Data { id: self.id, data: Bytes::new(), fin: true, budget: 0 });
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.shut && self.reset.is_none() {
            let _ = self.shared.out.send(Out::Data { id: self.id, data: Bytes::new(), fin: true, budget: 0 });
        }
        self.shared.forget(self.id);
    }
}
