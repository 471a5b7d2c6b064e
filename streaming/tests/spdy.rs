//! Exec, attach and port-forward over SPDY against the real `serve`, with `spdy::Session::client`
//! as kubectl's side. The handshake refusals need no session; the rest waits for the `spdy`
//! crate (ignored until it lands).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use streaming::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn upgrade_request(path: &str, protocols: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocols}\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn missing_protocol_header_is_400() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["print".into(), "x".into()], false, false, true, false).unwrap();
    let head = format!("POST {} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n", t.path(&url));
    let (status, _, body) = raw_request(t.addr, &head).await;
    assert_eq!(status, 400);
    assert_eq!(body, "unable to upgrade: header X-Stream-Protocol-Version does not exist in request with 2 headers\n");
}

#[tokio::test]
async fn unsupported_protocol_is_403_with_the_accepted_ones() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let (status, head, body) = raw_request(t.addr, &upgrade_request(&t.path(&url), "v4.channel.k8s.io")).await;
    assert_eq!(status, 403);
    assert!(head.contains("X-Accepted-Stream-Protocol-Versions: portforward.k8s.io"), "{head}");
    assert_eq!(
        body,
        "unable to upgrade: unable to negotiate protocol: client supports [v4.channel.k8s.io], server accepts [portforward.k8s.io]\n"
    );
}

#[tokio::test]
async fn missing_upgrade_headers_is_400() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_attach("c1", false, false, true, false).unwrap();
    let head = format!("GET {} HTTP/1.1\r\nHost: x\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n", t.path(&url));
    let (status, _, body) = raw_request(t.addr, &head).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("unable to upgrade: missing upgrade headers in request: http.Header{"), "{body}");
}

/// Upgrades `path` to SPDY with `protocols`; returns the negotiated protocol and the client.
async fn spdy_connect(t: &TestServer, path: &str, protocols: &str) -> (String, spdy::Session, spdy::Incoming) {
    let mut tcp = TcpStream::connect(t.addr).await.unwrap();
    tcp.write_all(upgrade_request(path, protocols).as_bytes()).await.unwrap();
    let (status, head) = read_head(&mut tcp).await;
    assert_eq!(status, 101, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: spdy/3.1") && lower.contains("connection: upgrade"), "{head}");
    let protocol = lower
        .lines()
        .find_map(|l| l.strip_prefix("x-stream-protocol-version: "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let (session, incoming) = spdy::Session::client(tcp);
    (protocol, session, incoming)
}

fn headers(pairs: &[(&str, &str)]) -> spdy::Headers {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn read_to_string(stream: &mut spdy::Stream) -> String {
    let mut s = String::new();
    stream.read_to_string(&mut s).await.unwrap();
    s
}

#[tokio::test]
async fn spdy_v4_exec_streams_and_exit_code() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["echo-stdin".into(), "7".into()], false, true, true, true).unwrap();
    let offered = "v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io";
    let (protocol, session, _incoming) = spdy_connect(&t, &t.path(&url), offered).await;
    assert_eq!(protocol, "v5.channel.k8s.io");
    let mut error = session.open(headers(&[("streamtype", "error")])).await.unwrap();
    let mut stdin = session.open(headers(&[("streamtype", "stdin")])).await.unwrap();
    let mut stdout = session.open(headers(&[("streamtype", "stdout")])).await.unwrap();
    let mut stderr = session.open(headers(&[("streamtype", "stderr")])).await.unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    assert_eq!(read_to_string(&mut stdout).await, "hello\n");
    assert_eq!(read_to_string(&mut stderr).await, "stderr: done\n");
    let status: Value = serde_json::from_str(&read_to_string(&mut error).await).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "7");
}

#[tokio::test]
async fn spdy_v2_exec_text_status() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["print".into(), "hi".into(), "2".into()], false, false, true, false).unwrap();
    let (protocol, session, _incoming) = spdy_connect(&t, &t.path(&url), "v2.channel.k8s.io").await;
    assert_eq!(protocol, "v2.channel.k8s.io");
    let mut error = session.open(headers(&[("streamtype", "error")])).await.unwrap();
    let mut stdout = session.open(headers(&[("streamtype", "stdout")])).await.unwrap();
    assert_eq!(read_to_string(&mut stdout).await, "hi");
    assert_eq!(
        read_to_string(&mut error).await,
        "command terminated with non-zero exit code: error executing command [print hi 2], exit code 2"
    );
}

#[tokio::test]
async fn spdy_v4_attach_tty_resize() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_attach("c1", true, true, true, false).unwrap();
    let (_, session, _incoming) = spdy_connect(&t, &t.path(&url), "v4.channel.k8s.io").await;
    let mut error = session.open(headers(&[("streamtype", "error")])).await.unwrap();
    let mut stdin = session.open(headers(&[("streamtype", "stdin")])).await.unwrap();
    let mut stdout = session.open(headers(&[("streamtype", "stdout")])).await.unwrap();
    let mut resize = session.open(headers(&[("streamtype", "resize")])).await.unwrap();
    resize.write_all(br#"{"Width":120,"Height":40}"#).await.unwrap();
    let mut line = [0u8; 7];
    stdout.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"120x40\n");
    stdin.write_all(b"q").await.unwrap();
    stdin.shutdown().await.unwrap();
    assert_eq!(read_to_string(&mut stdout).await, "q");
    assert_eq!(read_to_string(&mut error).await, r#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn spdy_exec_gives_up_without_streams() {
    let config = Config { stream_creation_timeout: Duration::from_millis(100), ..Config::default() };
    let t = TestServer::start_with(TestRuntime::default(), config).await;
    let url = t.server.get_exec("c1", vec!["print".into(), "x".into()], false, false, true, false).unwrap();
    let (_, session, _incoming) = spdy_connect(&t, &t.path(&url), "v4.channel.k8s.io").await;
    let _error = session.open(headers(&[("streamtype", "error")])).await.unwrap();
    // The stdout stream never comes: the server closes the connection.
    session.closed().await;
}

#[tokio::test]
async fn spdy_port_forward_pairs_by_request_id() {
    let mut runtime = TestRuntime::default();
    runtime.ports.insert(80, reply_server("A").await);
    let t = TestServer::start(runtime).await;
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let (protocol, session, _incoming) = spdy_connect(&t, &t.path(&url), "portforward.k8s.io").await;
    assert_eq!(protocol, "portforward.k8s.io");
    for request in ["0", "1"] {
        let pair = |kind: &'static str| headers(&[("streamtype", kind), ("port", "80"), ("requestid", request)]);
        let mut error = session.open(pair("error")).await.unwrap();
        let mut data = session.open(pair("data")).await.unwrap();
        data.write_all(format!("hi{request}").as_bytes()).await.unwrap();
        assert_eq!(read_to_string(&mut data).await, format!("A:hi{request}"));
        assert_eq!(read_to_string(&mut error).await, "");
    }
}

#[tokio::test]
async fn spdy_port_forward_dial_error_on_error_stream() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let (_, session, _incoming) = spdy_connect(&t, &t.path(&url), "portforward.k8s.io").await;
    let pair = |kind: &'static str| headers(&[("streamtype", kind), ("port", "9"), ("requestid", "0")]);
    let mut error = session.open(pair("error")).await.unwrap();
    let _data = session.open(pair("data")).await.unwrap();
    let mut msg = String::new();
    let _ = error.read_to_string(&mut msg).await;
    assert_eq!(msg, "error forwarding port 9 to pod sandbox-1, uid : dial tcp 127.0.0.1:9: connect: connection refused");
}

#[tokio::test]
async fn spdy_port_forward_incomplete_pair_times_out() {
    let config = Config { stream_creation_timeout: Duration::from_millis(100), ..Config::default() };
    let t = TestServer::start_with(TestRuntime::default(), config).await;
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let (_, session, _incoming) = spdy_connect(&t, &t.path(&url), "portforward.k8s.io").await;
    let mut error = session.open(headers(&[("streamtype", "error"), ("port", "80"), ("requestid", "5")])).await.unwrap();
    let msg = read_to_string(&mut error).await;
    assert!(msg.starts_with("(conn=0x") && msg.ends_with(", request=5) timed out waiting for streams"), "{msg}");
}
