//! The bodies of the spdy fuzz targets, shared by `fuzz_targets/*.rs` (libFuzzer) and
//! `tests/fuzz_smoke.rs` (stable, deterministic). Each takes arbitrary bytes (what a peer
//! sends) and must return, never panic.
#![allow(dead_code)]

use bytes::BytesMut;
use spdy::frame::Frame;
use spdy::headers::{self, Decompressor};

/// `Frame::decode` over a byte stream, frame after frame, as a session reads them; the header
/// blocks of SYN_STREAM / SYN_REPLY / HEADERS go through one connection's `Decompressor`.
/// The bytes are fed whole and also in two pieces (a frame split across reads).
pub fn frame(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for chunks in [vec![data], vec![&data[..split], &data[split..]]] {
        let mut buf = BytesMut::new();
        let mut zlib = Decompressor::new();
        'feed: for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match Frame::decode(&mut buf) {
                    Ok(Some(frame)) => {
                        let block = match &frame {
                            Frame::SynStream { block, .. } | Frame::SynReply { block, .. } | Frame::Headers { block, .. } => {
                                Some(block.clone())
                            }
                            _ => None,
                        };
                        if let Some(block) = block
                            && zlib.decompress(&block).is_err()
                        {
                            // A session drops the connection on a bad header block.
                            break 'feed;
                        }
                        // What decodes encodes again.
                        let mut out = BytesMut::new();
                        frame.encode(&mut out);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = e.to_string();
                        break 'feed;
                    }
                }
            }
        }
    }
}

/// `headers::parse` of an uncompressed name/value block; what parses serialises again.
pub fn headers(data: &[u8]) {
    if let Ok(h) = headers::parse(data) {
        let _ = headers::serialize(&h);
    }
    // And the same bytes as a compressed block on a fresh connection.
    let _ = Decompressor::new().decompress(data);
}
