//! SPDY/3 frames: encoding and incremental decoding, without IO. Header blocks stay compressed
//! here; [`crate::headers`] owns the connection's zlib streams.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// FLAG_FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS.
pub const FLAG_FIN: u8 = 0x01;
/// The largest length a frame can carry (24 bits).
pub const MAX_LENGTH: usize = 0x00ff_ffff;

/// Control frame types.
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status codes.
pub mod status {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const STREAM_IN_USE: u32 = 8;
}

/// One frame; `block` fields are compressed header blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream { id: u32, associated: u32, priority: u8, fin: bool, block: Bytes },
    SynReply { id: u32, fin: bool, block: Bytes },
    RstStream { id: u32, status: u32 },
    Settings,
    Ping { id: u32 },
    GoAway { last_good: u32, status: u32 },
    Headers { id: u32, fin: bool, block: Bytes },
    WindowUpdate { id: u32, delta: u32 },
    Data { id: u32, fin: bool, data: Bytes },
    /// A control frame of a type this implementation does not know (ignored, as the spec says).
    Unknown { kind: u16 },
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, body: &[u8]) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32((u32::from(flags) << 24) | body.len() as u32);
    out.put_slice(body);
}

impl Frame {
    /// Appends the frame's bytes to `out`. Payloads beyond [`MAX_LENGTH`] are the caller's
    /// to split (sessions write DATA in smaller chunks).
    pub fn encode(&self, out: &mut BytesMut) {
        let fin = |f: bool| if f { FLAG_FIN } else { 0 };
        let mut body = BytesMut::new();
        match self {
            Frame::SynStream { id, associated, priority, fin: f, block } => {
                body.put_u32(id & 0x7fff_ffff);
                body.put_u32(associated & 0x7fff_ffff);
                body.put_u8(priority << 5);
                body.put_u8(0);
                body.put_slice(block);
                control(out, SYN_STREAM, fin(*f), &body);
            }
            Frame::SynReply { id, fin: f, block } => {
                body.put_u32(id & 0x7fff_ffff);
                body.put_slice(block);
                control(out, SYN_REPLY, fin(*f), &body);
            }
            Frame::RstStream { id, status } => {
                body.put_u32(id & 0x7fff_ffff);
                body.put_u32(*status);
                control(out, RST_STREAM, 0, &body);
            }
            Frame::Settings => {
                body.put_u32(0);
                control(out, SETTINGS, 0, &body);
            }
            Frame::Ping { id } => control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway { last_good, status } => {
                body.put_u32(last_good & 0x7fff_ffff);
                body.put_u32(*status);
                control(out, GOAWAY, 0, &body);
            }
            Frame::Headers { id, fin: f, block } => {
                body.put_u32(id & 0x7fff_ffff);
                body.put_slice(block);
                control(out, HEADERS, fin(*f), &body);
            }
            Frame::WindowUpdate { id, delta } => {
                body.put_u32(id & 0x7fff_ffff);
                body.put_u32(delta & 0x7fff_ffff);
                control(out, WINDOW_UPDATE, 0, &body);
            }
            Frame::Data { id, fin: f, data } => {
                out.put_u32(id & 0x7fff_ffff);
                out.put_u32((u32::from(fin(*f)) << 24) | data.len() as u32);
                out.put_slice(data);
            }
            Frame::Unknown { kind } => control(out, *kind, 0, &[]),
        }
    }

    /// Takes one whole frame off the front of `buf`; `None` until it has arrived.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let (flags, len) = ((word >> 24) as u8, (word & 0x00ff_ffff) as usize);
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let head = buf.split_to(8);
        let mut body = buf.split_to(len).freeze();
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
            return Ok(Some(Frame::Data { id, fin, data: body }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(Error::Protocol(format!("unsupported SPDY version {version}")));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |n: usize, what: &str| -> Result<(), Error> {
            if len < n { Err(Error::Protocol(format!("{what} frame of {len} bytes is too short"))) } else { Ok(()) }
        };
        let frame = match kind {
            SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                let id = body.get_u32() & 0x7fff_ffff;
                let associated = body.get_u32() & 0x7fff_ffff;
                let priority = body.get_u8() >> 5;
                let _slot = body.get_u8();
                Frame::SynStream { id, associated, priority, fin, block: body }
            }
            SYN_REPLY => {
                need(4, "SYN_REPLY")?;
                Frame::SynReply { id: body.get_u32() & 0x7fff_ffff, fin, block: body }
            }
            RST_STREAM => {
                need(8, "RST_STREAM")?;
                Frame::RstStream { id: body.get_u32() & 0x7fff_ffff, status: body.get_u32() }
            }
            SETTINGS => Frame::Settings,
            PING => {
                need(4, "PING")?;
                Frame::Ping { id: body.get_u32() }
            }
            GOAWAY => {
                need(8, "GOAWAY")?;
                Frame::GoAway { last_good: body.get_u32() & 0x7fff_ffff, status: body.get_u32() }
            }
            HEADERS => {
                need(4, "HEADERS")?;
                Frame::Headers { id: body.get_u32() & 0x7fff_ffff, fin, block: body }
            }
            WINDOW_UPDATE => {
                need(8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate { id: body.get_u32() & 0x7fff_ffff, delta: body.get_u32() & 0x7fff_ffff }
            }
            other => Frame::Unknown { kind: other },
        };
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(f: Frame) {
        let mut b = BytesMut::new();
        f.encode(&mut b);
        let mut partial = BytesMut::from(&b[..b.len() - 1]);
        assert_eq!(Frame::decode(&mut partial).unwrap(), None, "an incomplete frame waits");
        assert_eq!(Frame::decode(&mut b).unwrap(), Some(f));
        assert!(b.is_empty());
    }

    #[test]
    fn every_frame_round_trips() {
        round_trip(Frame::SynStream { id: 1, associated: 0, priority: 7, fin: false, block: Bytes::from_static(b"hdrs") });
        round_trip(Frame::SynReply { id: 2, fin: true, block: Bytes::from_static(b"h") });
        round_trip(Frame::RstStream { id: 3, status: status::CANCEL });
        round_trip(Frame::Ping { id: 9 });
        round_trip(Frame::GoAway { last_good: 5, status: 0 });
        round_trip(Frame::Headers { id: 7, fin: false, block: Bytes::from_static(b"x") });
        round_trip(Frame::WindowUpdate { id: 1, delta: 65536 });
        round_trip(Frame::Data { id: 1, fin: true, data: Bytes::from_static(b"payload") });
        round_trip(Frame::Data { id: 3, fin: false, data: Bytes::new() });
    }

    #[test]
    fn wire_layout_of_a_data_and_a_control_frame() {
        let mut b = BytesMut::new();
        Frame::Data { id: 1, fin: true, data: Bytes::from_static(b"ab") }.encode(&mut b);
        assert_eq!(&b[..], &[0, 0, 0, 1, 1, 0, 0, 2, b'a', b'b']);
        let mut b = BytesMut::new();
        Frame::RstStream { id: 3, status: 5 }.encode(&mut b);
        assert_eq!(&b[..], &[0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 5]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut b = BytesMut::from(&[0x80, 2, 0, 1, 0, 0, 0, 0][..]);
        assert!(Frame::decode(&mut b).is_err(), "version 2");
        let mut b = BytesMut::from(&[0x80, 3, 0, 1, 0, 0, 0, 2, 0, 0][..]);
        assert!(Frame::decode(&mut b).is_err(), "short SYN_STREAM");
        let mut b = BytesMut::from(&[0x80, 3, 0, 42, 0, 0, 0, 0][..]);
        assert_eq!(Frame::decode(&mut b).unwrap(), Some(Frame::Unknown { kind: 42 }));
    }
}
