//! A seconds-long smoke run of every `fuzz/` target body on stable: deterministic (xorshift)
//! random bytes, token soup and mutated realistic seeds. Each input must return (`Ok` or
//! `Err`) without panicking, and quickly. `fuzz/` runs the same bodies under libFuzzer.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use spdy::frame::{FLAG_FIN, Frame};
use spdy::headers::{self, Compressor};

#[path = "../fuzz/bodies.rs"]
mod bodies;

/// How long each target is fed.
const BUDGET: Duration = Duration::from_secs(2);
/// The most one input may take (a hang or blow-up shows as a failure, not a stuck test).
const PER_INPUT: Duration = Duration::from_secs(2);

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8], tokens: &[&[u8]]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            2 | 3 => {
                let t = tokens[rng.below(tokens.len())];
                b.splice(at..at, t.iter().copied());
            }
            4 if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + rng.below(64)).min(other.len());
                b.splice(at..at, other[start..end].iter().copied());
            }
            5 => b.truncate(at),
            _ => b.insert(at, rng.next() as u8),
        }
    }
    b
}

/// Feeds `body` for [`BUDGET`]: a third random bytes, a third token soup, a third mutated seeds.
fn smoke(name: &str, seed: u64, seeds: &[Vec<u8>], tokens: &[&[u8]], body: fn(&[u8])) {
    // The seeds themselves first.
    for s in seeds {
        body(s);
    }
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut runs = 0usize;
    while started.elapsed() < BUDGET {
        let input: Vec<u8> = match runs % 3 {
            0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            1 => (0..rng.below(40)).flat_map(|_| tokens[rng.below(tokens.len())].iter().copied()).collect(),
            _ => {
                let s = &seeds[rng.below(seeds.len())];
                let o = &seeds[rng.below(seeds.len())];
                mutate(&mut rng, s, o, tokens)
            }
        };
        let one = Instant::now();
        body(&input);
        assert!(one.elapsed() < PER_INPUT, "{name}: {:?} on {:?}", one.elapsed(), String::from_utf8_lossy(&input));
        runs += 1;
    }
    eprintln!("{name}: {runs} inputs in {:?}", started.elapsed());
    assert!(runs > 100, "{name}: only {runs} inputs");
}

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
