//! Interop with gRPC C-core (grpcio, grpc++) on the CRI socket: for a `unix:` target C-core
//! sends the socket path, without its leading '/' and percent-encoded, as `:authority`
//! (`ResolverFactory::GetDefaultAuthority` in src/core/resolver/resolver_factory.h, which the
//! unix resolver does not override, with `URI::PercentEncodeAuthority` of src/core/util/uri.cc);
//! older clients send the raw path. h2 refuses both as URI authorities. The CRI calls here go
//! over the socket from a hand-written HTTP/2 client, since neither h2's client nor tonic can
//! send such an authority.
mod common;

use bytes::BytesMut;
use common::World;
use fake_cri::authority::Rewriter;
use fake_cri::hpack::{Decoder, Field, encode_literal};
use k8s_cri::v1 as cri;
use prost::Message;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// What gRPC C-core sends as `:authority` for `unix://<path>`: the path without its leading
/// '/', every byte outside RFC 3986's unreserved, sub-delims and ":[]@" as `%XX`.
fn c_core_authority(path: &Path) -> String {
    let path = path.to_str().unwrap();
    path.strip_prefix('/')
        .unwrap_or(path)
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]@".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// How a call ended.
#[derive(Debug)]
enum Outcome {
    Reset(u32),
    GoAway(u32),
    Response { headers: Vec<(String, String)>, body: Vec<u8>, trailers: Vec<(String, String)> },
}

/// One HTTP/2 connection, frame by frame.
struct Conn {
    sock: UnixStream,
    decoder: Decoder,
}

impl Conn {
    async fn open(socket: &Path) -> Conn {
        let mut sock = UnixStream::connect(socket).await.unwrap();
        sock.write_all(PREFACE).await.unwrap();
        let mut c = Conn { sock, decoder: Decoder::new(4096, 1 << 20) };
        c.send(SETTINGS, 0, 0, &[]).await;
        c
    }

    async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.sock.write_all(&frame(kind, flags, stream, payload)).await.unwrap();
    }

    async fn frame(&mut self) -> (u8, u8, u32, Vec<u8>) {
        let mut head = [0u8; 9];
        self.sock.read_exact(&mut head).await.unwrap();
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        self.sock.read_exact(&mut payload).await.unwrap();
        (head[3], head[4], u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff, payload)
    }

    /// Sends a unary gRPC request on `stream` with `block` as its header block.
    async fn call(&mut self, stream: u32, block: &[u8], message: &[u8]) -> Outcome {
        self.send(HEADERS, END_HEADERS, stream, block).await;
        let mut body = vec![0u8];
        body.extend((message.len() as u32).to_be_bytes());
        body.extend(message);
        self.send(DATA, END_STREAM, stream, &body).await;
        tokio::time::timeout(Duration::from_secs(20), self.response(stream)).await.expect("no answer within 20 s")
    }

    async fn response(&mut self, stream: u32) -> Outcome {
        let (mut lists, mut body, mut block, mut ended) = (Vec::new(), Vec::new(), Vec::new(), false);
        loop {
            let (kind, flags, id, payload) = self.frame().await;
            match kind {
                SETTINGS if flags & ACK == 0 => self.send(SETTINGS, ACK, 0, &[]).await,
                GOAWAY => return Outcome::GoAway(u32::from_be_bytes(payload[4..8].try_into().unwrap())),
                RST_STREAM if id == stream => return Outcome::Reset(u32::from_be_bytes(payload[..4].try_into().unwrap())),
                HEADERS | CONTINUATION => {
                    // Every block goes through the decoder: they share its dynamic table.
                    ended |= id == stream && kind == HEADERS && flags & END_STREAM != 0;
                    block.extend(payload);
                    if flags & END_HEADERS != 0 {
                        let fields = self.decoder.decode(&std::mem::take(&mut block)).unwrap();
                        if id == stream {
                            lists.push(fields.into_iter().map(|f| (text(f.name), text(f.value))).collect::<Vec<_>>());
                        }
                    }
                }
                DATA if id == stream => {
                    ended |= flags & END_STREAM != 0;
                    body.extend(payload);
                }
                _ => {}
            }
            if ended && block.is_empty() {
                let mut lists = lists.into_iter();
                let headers = lists.next().unwrap_or_default();
                return Outcome::Response { headers, body, trailers: lists.next().unwrap_or_default() };
            }
        }
    }
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

/// A request header block as C-core writes it: `:authority` as a literal with incremental
/// indexing (`authority` is `None` to refer to the entry that put in the dynamic table).
fn request_block(authority: Option<&str>) -> Vec<u8> {
    let mut b = vec![0x83, 0x86]; // :method POST, :scheme http (static table)
    encode_literal(&Field::new(":path", "/runtime.v1.RuntimeService/Version"), &mut b);
    match authority {
        Some(a) => {
            assert!(a.len() < 127);
            b.extend([0x41, a.len() as u8]); // name: static entry 1 (:authority)
            b.extend(a.as_bytes());
        }
        None => b.push(0xbe), // dynamic entry 62, the newest
    }
    for (n, v) in [("te", "trailers"), ("content-type", "application/grpc"), ("user-agent", "grpc-python grpc-c (linux; chttp2)")] {
        encode_literal(&Field::new(n, v), &mut b);
    }
    b
}

fn assert_version_ok(outcome: Outcome, what: &str) {
    let (headers, body, trailers) = match outcome {
        Outcome::Response { headers, body, trailers } => (headers, body, trailers),
        Outcome::Reset(code) => panic!("{what}: the server reset the stream, RST_STREAM error code {code} (1 is PROTOCOL_ERROR)"),
        Outcome::GoAway(code) => panic!("{what}: the server closed the connection, GOAWAY error code {code}"),
    };
    assert!(headers.contains(&(":status".into(), "200".into())), "{what}: {headers:?}");
    let status = trailers.iter().chain(&headers).find(|(n, _)| n == "grpc-status").map(|(_, v)| v.as_str());
    assert_eq!(status, Some("0"), "{what}: headers {headers:?} trailers {trailers:?}");
    assert!(body.len() >= 5 && body[0] == 0, "{what}: body {body:?}");
    let v = cri::VersionResponse::decode(&body[5..]).unwrap();
    assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("fake-cri", "v1"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_with_the_authority_grpc_c_core_sends_for_a_unix_socket() {
    let w = World::start(&[]).await;
    let authority = c_core_authority(&w.socket());
    assert!(authority.contains("%2F") && !authority.starts_with('%'), "{authority}");
    let request = cri::VersionRequest { version: "v1".into() }.encode_to_vec();

    let mut conn = Conn::open(&w.socket()).await;
    let first = conn.call(1, &request_block(Some(&authority)), &request).await;
    assert_version_ok(first, &format!(":authority {authority:?}"));
    // A second call on the connection names the authority through the dynamic table.
    let second = conn.call(3, &request_block(None), &request).await;
    assert_version_ok(second, ":authority from the dynamic table");
    // grpc-java and old grpc-go send the raw path.
    let raw = w.socket().to_str().unwrap().to_string();
    let third = conn.call(5, &request_block(Some(&raw)), &request).await;
    assert_version_ok(third, &format!(":authority {raw:?}"));
    // A valid authority still works.
    let fourth = conn.call(7, &request_block(Some("localhost")), &request).await;
    assert_version_ok(fourth, ":authority localhost");
}

/// The relay sees every byte a client sends before the server does: random, token-soup and
/// mutated connections must end in `Ok` or an error, never a panic or a hang.
#[test]
fn relay_survives_random_and_mutated_connections() {
    fn run(wire: &[u8], chunk: usize) -> Result<BytesMut, fake_cri::authority::RelayError> {
        let (mut relay, mut buf, mut out) = (Rewriter::default(), BytesMut::new(), BytesMut::new());
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            relay.process(&mut buf, &mut out)?;
        }
        Ok(out)
    }
    fn body(input: &[u8]) {
        for wire in [input.to_vec(), [PREFACE, input].concat()] {
            for chunk in [1, 9, 4096] {
                let _ = run(&wire, chunk);
            }
        }
        let _ = Decoder::new(4096, 1 << 16).decode(input);
    }
    let authority = c_core_authority(Path::new("/run/x/cri.sock"));
    let mut first = PREFACE.to_vec();
    first.extend(frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]));
    first.extend(frame(HEADERS, END_HEADERS, 1, &request_block(Some(&authority))));
    first.extend(frame(DATA, END_STREAM, 1, b"\0\0\0\0\x04\x0a\x02v1"));
    first.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &request_block(None)));
    let block = request_block(Some("/run/x/cri.sock"));
    let mut split = PREFACE.to_vec();
    split.extend(frame(HEADERS, 0x8 | 0x20, 1, &[[2, 0, 0, 0, 0, 16].as_slice(), &block[..7], &[0, 0]].concat()));
    split.extend(frame(CONTINUATION, END_HEADERS, 1, &block[7..]));
    // A size update, a Huffman-coded literal ("www.example.com"), an indexed field.
    let hpack = [0x20, 0x3f, 0xe1, 0x1f, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff, 0xbe];
    let mut coded = PREFACE.to_vec();
    coded.extend(frame(HEADERS, END_HEADERS, 1, &hpack));
    for wire in [&first, &split, &coded] {
        assert!(run(wire, 5).is_ok());
    }
    let tokens: &[&[u8]] = &[
        &[0, 0, 8, HEADERS, END_HEADERS, 0, 0, 0, 1],
        &[0, 0, 4, CONTINUATION, END_HEADERS, 0, 0, 0, 1],
        &[0, 0, 1, DATA, END_STREAM, 0, 0, 0, 1],
        &[0x82],
        &[0xbe],
        &[0x41, 0x03, b'a', b'%', b'b'],
        &[0x3f, 0xe2, 0x1f],
        &[0x10, 0x81, 0xff],
        &[0xff, 0xff, 0xff, 0xff],
    ];
    fuzz_smoke::smoke("authority relay", 0x9e37_79b9_7f4a_7c15, &[first, split, coded, hpack.to_vec()], tokens, body);
}
