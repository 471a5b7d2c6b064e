//! Accepting any `:authority` a gRPC client sends on the CRI socket.
//!
//! gRPC C-core (grpcio, grpc++) names a `unix:` target's authority after the socket path,
//! percent-encoded (`unix:///run/x/cri.sock` becomes `run%2Fx%2Fcri.sock`); older clients send
//! the raw path. h2 turns `:authority` into an `http::uri::Authority`, whose parser refuses both,
//! and answers every such request with RST_STREAM(PROTOCOL_ERROR) before tonic sees it.
//! containerd (grpc-go) ignores the authority. [`LenientAuthority`] sits under the HTTP/2
//! server and does the same: it re-encodes every request header block the client sends and
//! leaves out an `:authority` that h2 would refuse (HTTP/2 allows a request without one).
//! Everything else on the connection passes through byte for byte.

use crate::hpack::{Decoder, HpackError, encode_literal};
use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The server's SETTINGS_MAX_FRAME_SIZE: h2's default, which tonic and hyper keep.
const MAX_FRAME: usize = 16_384;
/// The server's SETTINGS_HEADER_TABLE_SIZE: the protocol default (the server never sends it).
const TABLE_SIZE: usize = 4096;
/// Bound on one header block (all its frames) and on its decoded header list.
const MAX_BLOCK: usize = 1 << 20;

/// Why a connection was closed by the relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A header block does not decode.
    #[error("HPACK: {0}")]
    Hpack(#[from] HpackError),
    /// Another frame came while a header block waited for CONTINUATION (RFC 9113 §6.10).
    #[error("frame type {kind:#x} on stream {stream} inside the header block of stream {open}")]
    Interleaved {
        /// Type of the offending frame.
        kind: u8,
        /// Its stream.
        stream: u32,
        /// Stream of the unfinished header block.
        open: u32,
    },
    /// A header block above [`MAX_BLOCK`].
    #[error("header block larger than {0} bytes")]
    BlockTooLarge(usize),
    /// Padding or priority fields longer than the HEADERS frame.
    #[error("malformed HEADERS frame on stream {0}")]
    BadHeaders(u32),
}

enum State {
    /// Waiting for the client connection preface.
    Preface,
    /// At a frame header.
    Head,
    /// Copying the rest of a frame that is not rewritten.
    Pass(usize),
    /// Not HTTP/2 with prior knowledge: everything passes.
    Raw,
}

/// A header block waiting for its last CONTINUATION.
struct Open {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

/// The client-to-server half of one connection, as a byte-stream transformer.
pub struct Rewriter {
    state: State,
    decoder: Decoder,
    open: Option<Open>,
}

impl Default for Rewriter {
    fn default() -> Self {
        Rewriter { state: State::Preface, decoder: Decoder::new(TABLE_SIZE, MAX_BLOCK), open: None }
    }
}

impl Rewriter {
    /// Moves everything it can from `input` to `out`, rewriting header blocks; what is left in
    /// `input` waits for more bytes.
    pub fn process(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<(), RelayError> {
        loop {
            match self.state {
                State::Raw => {
                    out.extend_from_slice(&input.split());
                    return Ok(());
                }
                State::Preface => {
                    let n = input.len().min(PREFACE.len());
                    if input[..n] != PREFACE[..n] {
                        self.state = State::Raw;
                    } else if n < PREFACE.len() {
                        return Ok(());
                    } else {
                        out.extend_from_slice(&input.split_to(n));
                        self.state = State::Head;
                    }
                }
                State::Pass(left) => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input.split_to(n));
                    if n < left {
                        self.state = State::Pass(left - n);
                        return Ok(());
                    }
                    self.state = State::Head;
                }
                State::Head => {
                    if input.len() < 9 {
                        return Ok(());
                    }
                    if !self.frame(input, out)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Handles the frame at the start of `input`; false when it needs more bytes.
    fn frame(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, RelayError> {
        let len = usize::from(input[0]) << 16 | usize::from(input[1]) << 8 | usize::from(input[2]);
        let (kind, flags) = (input[3], input[4]);
        let stream = u32::from_be_bytes([input[5], input[6], input[7], input[8]]) & 0x7fff_ffff;
        match (&self.open, kind) {
            (None, HEADERS) => {}
            (Some(open), CONTINUATION) if open.stream == stream => {}
            (Some(open), _) => return Err(RelayError::Interleaved { kind, stream, open: open.stream }),
            (None, _) => {
                out.extend_from_slice(&input.split_to(9));
                self.state = State::Pass(len);
                return Ok(true);
            }
        }
        let buffered = self.open.as_ref().map_or(0, |o| o.block.len());
        if len + buffered > MAX_BLOCK {
            return Err(RelayError::BlockTooLarge(MAX_BLOCK));
        }
        if input.len() < 9 + len {
            input.reserve(9 + len - input.len());
            return Ok(false);
        }
        let frame = input.split_to(9 + len);
        let payload = &frame[9..];
        let open = match self.open.take() {
            Some(mut open) => {
                open.block.extend_from_slice(payload);
                open
            }
            None => start_block(stream, flags, payload)?,
        };
        if flags & END_HEADERS == 0 {
            self.open = Some(open);
        } else {
            self.finish(open, out)?;
        }
        Ok(true)
    }

    /// Decodes a complete block and writes it again without a refused `:authority`.
    fn finish(&mut self, open: Open, out: &mut BytesMut) -> Result<(), RelayError> {
        let fields = self.decoder.decode(&open.block)?;
        let mut block = Vec::with_capacity(open.block.len() * 2);
        for field in &fields {
            if field.name == b":authority" && http::uri::Authority::try_from(field.value.as_slice()).is_err() {
                tracing::debug!(stream = open.stream, authority = %String::from_utf8_lossy(&field.value), "ignoring :authority");
                continue;
            }
            encode_literal(field, &mut block);
        }
        write_block(&open, &block, out);
        Ok(())
    }
}

/// The header block fragment of a HEADERS frame, without padding and priority.
fn start_block(stream: u32, flags: u8, payload: &[u8]) -> Result<Open, RelayError> {
    let bad = || RelayError::BadHeaders(stream);
    let mut p = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, rest) = p.split_first().ok_or_else(bad)?;
        (pad, p) = (usize::from(n), rest);
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let (fields, rest) = p.split_first_chunk::<5>().ok_or_else(bad)?;
        (priority, p) = (Some(*fields), rest);
    }
    let fragment = p.get(..p.len().checked_sub(pad).ok_or_else(bad)?).ok_or_else(bad)?;
    Ok(Open { stream, end_stream: flags & END_STREAM != 0, priority, block: fragment.to_vec() })
}

/// Writes a HEADERS frame (with CONTINUATIONs when the block does not fit one frame).
fn write_block(open: &Open, block: &[u8], out: &mut BytesMut) {
    let prio = open.priority.as_ref().map_or(&[][..], |p| &p[..]);
    let first = block.len().min(MAX_FRAME - prio.len());
    let mut flags = if open.end_stream { END_STREAM } else { 0 };
    if !prio.is_empty() {
        flags |= PRIORITY;
    }
    let mut rest = &block[first..];
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    frame_head(prio.len() + first, HEADERS, flags, open.stream, out);
    out.extend_from_slice(prio);
    out.extend_from_slice(&block[..first]);
    while !rest.is_empty() {
        let n = rest.len().min(MAX_FRAME);
        let flags = if n == rest.len() { END_HEADERS } else { 0 };
        frame_head(n, CONTINUATION, flags, open.stream, out);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

fn frame_head(len: usize, kind: u8, flags: u8, stream: u32, out: &mut BytesMut) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// A server-side connection whose client header blocks go through a [`Rewriter`]; writes go
/// straight to the inner stream.
pub struct LenientAuthority<S> {
    inner: S,
    rewriter: Rewriter,
    input: BytesMut,
    output: BytesMut,
    eof: bool,
}

impl<S> LenientAuthority<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S) -> Self {
        LenientAuthority { inner, rewriter: Rewriter::default(), input: BytesMut::new(), output: BytesMut::new(), eof: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LenientAuthority<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.output.is_empty() || buf.remaining() == 0 {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            this.input.reserve(8192);
            if ready!(tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.input))? == 0 {
                this.eof = true;
            }
            if let Err(e) = this.rewriter.process(&mut this.input, &mut this.output) {
                tracing::warn!("closing a CRI connection: {e}");
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LenientAuthority<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for LenientAuthority<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpack::Field;

    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in fields {
            encode_literal(&Field::new(*n, *v), &mut b);
        }
        b
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        frame_head(payload.len(), kind, flags, stream, &mut out);
        out.extend_from_slice(payload);
        out.to_vec()
    }

    /// Runs `wire` through a rewriter `chunk` bytes at a time.
    fn relay(wire: &[u8], chunk: usize) -> Result<Vec<u8>, RelayError> {
        let (mut r, mut input, mut out) = (Rewriter::default(), BytesMut::new(), BytesMut::new());
        for piece in wire.chunks(chunk) {
            input.extend_from_slice(piece);
            r.process(&mut input, &mut out)?;
        }
        assert!(input.is_empty(), "left over: {input:?}");
        Ok(out.to_vec())
    }

    /// The header lists of the HEADERS frames in `wire` (after the preface), with their flags.
    fn header_lists(wire: &[u8]) -> Vec<(u8, Vec<(String, String)>)> {
        let mut d = Decoder::new(4096, 1 << 20);
        let mut rest = &wire[PREFACE.len()..];
        let mut lists = Vec::new();
        let mut pending: Option<(u8, Vec<u8>)> = None;
        while !rest.is_empty() {
            let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            let (kind, flags, payload) = (rest[3], rest[4], &rest[9..9 + len]);
            let skip = if kind == HEADERS && flags & PRIORITY != 0 { 5 } else { 0 };
            if kind == HEADERS || kind == CONTINUATION {
                let entry = pending.get_or_insert_with(|| (flags, Vec::new()));
                entry.1.extend_from_slice(&payload[skip..]);
                if flags & END_HEADERS != 0 {
                    let (f, b) = pending.take().unwrap();
                    let fields = d.decode(&b).unwrap();
                    lists.push((f, fields.iter().map(|f| (String::from_utf8(f.name.clone()).unwrap(), String::from_utf8(f.value.clone()).unwrap())).collect()));
                }
            }
            rest = &rest[9 + len..];
        }
        lists
    }

    fn request(authority: &str) -> Vec<(&str, &str)> {
        vec![(":method", "POST"), (":scheme", "http"), (":path", "/runtime.v1.RuntimeService/Version"), (":authority", authority), ("te", "trailers")]
    }

    #[test]
    fn refused_authority_is_left_out_and_other_frames_pass() {
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100])); // SETTINGS
        wire.extend(frame(HEADERS, END_HEADERS, 1, &block(&request("run%2Fx%2Fcri.sock"))));
        wire.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02\x0a\x00")); // DATA
        wire.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &block(&request("localhost"))));
        for chunk in [1, 7, 4096] {
            let out = relay(&wire, chunk).unwrap();
            let lists = header_lists(&out);
            assert_eq!(lists.len(), 2);
            assert!(!lists[0].1.iter().any(|(n, _)| n == ":authority"), "{lists:?}");
            assert_eq!(lists[0].1.len(), 4);
            assert!(lists[1].1.contains(&(":authority".into(), "localhost".into())));
            assert_eq!(lists[1].0 & END_STREAM, END_STREAM);
            let data = frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02\x0a\x00");
            assert!(out.windows(data.len()).any(|w| w == data.as_slice()), "DATA frame changed");
            assert_eq!(&out[PREFACE.len()..PREFACE.len() + 15], &wire[PREFACE.len()..PREFACE.len() + 15], "SETTINGS changed");
        }
    }

    #[test]
    fn padding_priority_and_continuations_are_handled() {
        let b = block(&request("/run/x/cri.sock"));
        let (a, c) = b.split_at(10);
        let mut payload = vec![3u8];
        payload.extend([0, 0, 0, 0, 15]);
        payload.extend(a);
        payload.extend([0, 0, 0]);
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(HEADERS, PADDED | PRIORITY | END_STREAM, 5, &payload));
        wire.extend(frame(CONTINUATION, END_HEADERS, 5, c));
        let out = relay(&wire, 3).unwrap();
        assert_eq!(out[PREFACE.len() + 4], PRIORITY | END_STREAM | END_HEADERS);
        assert_eq!(&out[PREFACE.len() + 9..PREFACE.len() + 14], &[0, 0, 0, 0, 15]);
        let lists = header_lists(&out);
        assert_eq!(lists[0].1.len(), 4);
    }

    #[test]
    fn large_blocks_are_split_to_the_frame_size() {
        let big = "v".repeat(40_000);
        let mut fields = request("run%2Fx");
        fields.push(("x-big", &big));
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(HEADERS, END_HEADERS, 1, &block(&fields)));
        let out = relay(&wire, 16_000).unwrap();
        let lists = header_lists(&out);
        assert_eq!(lists[0].1.last().unwrap().1.len(), 40_000);
        let mut rest = &out[PREFACE.len()..];
        while !rest.is_empty() {
            let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            assert!(len <= MAX_FRAME);
            rest = &rest[9 + len..];
        }
    }

    #[test]
    fn protocol_violations_close_the_connection() {
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(HEADERS, 0, 1, &block(&request("a"))));
        wire.extend(frame(0x0, 0, 1, b"x"));
        assert!(matches!(relay(&wire, 100), Err(RelayError::Interleaved { kind: 0, stream: 1, open: 1 })));
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(HEADERS, PADDED | END_HEADERS, 1, &[9, 0x82]));
        assert!(matches!(relay(&wire, 100), Err(RelayError::BadHeaders(1))));
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0x80]));
        assert!(matches!(relay(&wire, 100), Err(RelayError::Hpack(HpackError::Truncated))));
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&[0x10, 0, 1, HEADERS, 0, 0, 0, 0, 1]);
        assert!(matches!(relay(&wire, 100), Err(RelayError::BlockTooLarge(_))));
    }

    #[test]
    fn other_protocols_pass_untouched() {
        let wire = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(relay(wire, 2).unwrap(), wire);
    }
}
