//! A seconds-long smoke run of every `fuzz/` target body on stable: deterministic (xorshift)
//! random bytes, token soup and mutated realistic seeds. Each input must return (`Ok` or
//! `Err`) without panicking, and quickly. `fuzz/` runs the same bodies under libFuzzer.

use fuzz_smoke::smoke;

use bytes::{Bytes, BytesMut};
use spdy::frame::{FLAG_FIN, Frame};
use spdy::headers::{self, Compressor};

#[path = "../fuzz/bodies.rs"]
mod bodies;

fn hdrs(pairs: &[(&str, &str)]) -> spdy::Headers {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// A connection's worth of frames: streams with compressed headers, data, control frames.
fn stream_seed() -> Vec<u8> {
    let mut comp = Compressor::new().expect("compressor");
    let mut out = BytesMut::new();
    let a = comp.compress(&hdrs(&[("streamtype", "stdout"), ("port", "8080"), ("requestid", "0")])).expect("compress");
    let b = comp.compress(&hdrs(&[(":status", "200"), ("x-a", "1"), ("x-a", "2")])).expect("compress");
    let frames = [
        Frame::Settings,
        Frame::SynStream { id: 1, associated: 0, priority: 0, fin: false, block: Bytes::from(a) },
        Frame::SynReply { id: 1, fin: false, block: Bytes::from(b) },
        Frame::Data { id: 1, fin: false, data: Bytes::from_static(b"hello") },
        Frame::WindowUpdate { id: 1, delta: 65536 },
        Frame::Data { id: 1, fin: true, data: Bytes::new() },
        Frame::Ping { id: 7 },
        Frame::RstStream { id: 3, status: 5 },
        Frame::Unknown { kind: 99 },
        Frame::GoAway { last_good: 1, status: 0 },
    ];
    for f in &frames {
        f.encode(&mut out);
    }
    out.to_vec()
}

fn single_frames() -> Vec<Vec<u8>> {
    let mut comp = Compressor::new().expect("compressor");
    let block = comp.compress(&hdrs(&[("streamtype", "error")])).expect("compress");
    [
        Frame::SynStream { id: 5, associated: 0, priority: 7, fin: true, block: Bytes::from(block) },
        Frame::Headers { id: 5, fin: true, block: Bytes::new() },
        Frame::Data { id: 5, fin: false, data: Bytes::from_static(&[0; 40]) },
    ]
    .iter()
    .map(|f| {
        let mut out = BytesMut::new();
        f.encode(&mut out);
        out.to_vec()
    })
    .collect()
}

const FRAME_TOKENS: &[&[u8]] = &[
    b"\x80\x03", b"\x00\x01", b"\x00\x02", b"\x00\x03", b"\x00\x04", b"\x00\x06", b"\x00\x07", b"\x00\x08", b"\x00\x09",
    &[FLAG_FIN], b"\x00\x00\x00\x00", b"\x00\x00\x00\x08", b"\x00\x00\x00\x0a", b"\xff\xff\xff", b"\x7f\xff\xff\xff",
    b"\x78\xbb", b"\x78\x9c", b"\x00\x00\xff\xff", b"\x80\x02",
];

#[test]
fn frame_smoke() {
    let mut seeds = vec![stream_seed()];
    seeds.extend(single_frames());
    smoke("frame", 0x5EED_B001, &seeds, FRAME_TOKENS, bodies::frame);
}

#[test]
fn headers_smoke() {
    let mut seeds = vec![
        headers::serialize(&hdrs(&[("streamtype", "data"), ("port", "80")])),
        headers::serialize(&hdrs(&[("a", "1"), ("a", "2"), ("B", "x\u{e9}")])),
        headers::serialize(&hdrs(&[])),
    ];
    let mut comp = Compressor::new().expect("compressor");
    seeds.push(comp.compress(&hdrs(&[("streamtype", "stdin"), ("requestid", "1")])).expect("compress"));
    let tokens: &[&[u8]] = &[
        b"\x00\x00\x00\x00", b"\x00\x00\x00\x01", b"\x00\x00\x04\x00", b"\x00\x00\x04\x01", b"\xff\xff\xff\xff", b"\x00",
        b"\x00\x00\x00\x03abc", b"\xff", b"\x78\xbb", b"\x00\x00\xff\xff",
    ];
    smoke("headers", 0x5EED_B002, &seeds, tokens, bodies::headers);
}
