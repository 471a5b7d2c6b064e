//! Exec, attach and port-forward over WebSocket against the real `serve`.

mod common;

use common::*;
use serde_json::{Value, json};
use streaming::RequestError;

fn status(frames: &[Vec<u8>]) -> Value {
    serde_json::from_slice(&channel(frames, 3)).unwrap()
}

#[tokio::test]
async fn v5_exec_stdin_close_signal_stdout_stderr_and_exit_code() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["echo-stdin".into(), "3".into()], false, true, true, true).unwrap();
    let (mut ws, resp) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "v5.channel.k8s.io");
    assert_eq!(next_binary(&mut ws).await, vec![1], "an empty stdout frame first");
    send(&mut ws, b"\x00hello ").await;
    send(&mut ws, b"\x00world\n").await;
    send(&mut ws, &[255, 0]).await;
    let (frames, close) = read_all(&mut ws).await;
    assert_eq!(close, Some(1000));
    assert_eq!(channel(&frames, 1), b"hello world\n");
    assert_eq!(channel(&frames, 2), b"stderr: done\n");
    assert_eq!(
        status(&frames),
        json!({
            "metadata": {},
            "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command [echo-stdin 3], exit code 3",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        })
    );
    assert_eq!(frames.last().unwrap()[0], 3, "the status comes last");
}

#[tokio::test]
async fn v4_exec_success_status() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["print".into(), "hi".into(), "0".into()], false, false, true, false).unwrap();
    // kube-rs offers v5 and v4; a client preferring v4 gets v4.
    let (mut ws, resp) = ws_connect(&url, "v4.channel.k8s.io, v5.channel.k8s.io").await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
    let (frames, _) = read_all(&mut ws).await;
    assert_eq!(frames[0], vec![1]);
    assert_eq!(channel(&frames, 1), b"hi");
    assert_eq!(String::from_utf8(channel(&frames, 3)).unwrap(), r#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn runtime_failure_is_an_internal_error() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["fail".into(), "boom".into()], false, false, true, false).unwrap();
    let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
    let (frames, _) = read_all(&mut ws).await;
    let status = status(&frames);
    assert_eq!(status["reason"], "InternalError");
    assert_eq!(status["code"], 500);
    assert_eq!(status["message"], "Internal error occurred: error executing command in container: boom");
}

#[tokio::test]
async fn base64_protocol_and_text_status() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["print".into(), "hi".into(), "2".into()], false, false, true, false).unwrap();
    let (mut ws, resp) = ws_connect(&url, "base64.channel.k8s.io").await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "base64.channel.k8s.io");
    let (frames, _) = read_all(&mut ws).await;
    let text: Vec<String> = frames.into_iter().map(|f| String::from_utf8(f).unwrap()).collect();
    assert_eq!(text[0], "1");
    assert_eq!(text[1], "1aGk=");
    use base64::Engine;
    let err = base64::engine::general_purpose::STANDARD.decode(&text[2][1..]).unwrap();
    assert_eq!(text[2].as_bytes()[0], b'3');
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "command terminated with non-zero exit code: error executing command [print hi 2], exit code 2"
    );
}

#[tokio::test]
async fn attach_with_tty_gets_resizes() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_attach("c1", true, true, true, false).unwrap();
    let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
    assert_eq!(next_binary(&mut ws).await, vec![1]);
    send(&mut ws, b"\x04{\"Width\":80,\"Height\":24}").await;
    assert_eq!(next_binary(&mut ws).await, b"\x0180x24\n");
    send(&mut ws, b"\x00ls\n").await;
    assert_eq!(next_binary(&mut ws).await, b"\x01ls\n");
    send(&mut ws, &[255, 0]).await;
    let (frames, _) = read_all(&mut ws).await;
    assert_eq!(String::from_utf8(channel(&frames, 3)).unwrap(), r#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn unsupported_protocols_are_refused() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["print".into(), "x".into()], false, false, true, false).unwrap();
    let err = ws_connect(&url, "v9.channel.k8s.io").await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err}") };
    assert_eq!(resp.status(), 403);
    // kubectl >= 1.31 tries its SPDY tunnel first; a non-101 answer makes it fall back to SPDY.
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let err = ws_connect(&format!("{url}?port=80"), "SPDY/3.1+portforward.k8s.io").await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err}") };
    assert_eq!(resp.status(), 403);
    // The refused request used the token up, as upstream.
    let (status, _, _) = raw_request(t.addr, &format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", t.path(&url))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tokens_are_single_use_and_unknown_ones_are_404() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["print".into(), "x".into()], false, false, true, false).unwrap();
    let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
    read_all(&mut ws).await;
    let err = ws_connect(&url, "v5.channel.k8s.io").await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err}") };
    assert_eq!(resp.status(), 404);

    let get = |path: String| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, head, body) = raw_request(t.addr, &get("/exec/AAAAAAAA".into())).await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; charset=utf-8"), "{head}");
    // A token only fits its own method.
    let attach = t.server.get_attach("c1", false, false, true, false).unwrap();
    let wrong = t.path(&attach).replace("/attach/", "/exec/");
    assert_eq!(raw_request(t.addr, &get(wrong)).await.0, 404);
    assert_eq!(raw_request(t.addr, &get(t.path(&attach))).await.0, 404, "consumed by the wrong method");
    assert_eq!(raw_request(t.addr, &get("/logs/AAAAAAAA".into())).await.0, 404);
    let other = t.server.get_attach("c1", false, false, true, false).unwrap();
    let (status, _, _) = raw_request(t.addr, &format!("PUT {} HTTP/1.1\r\nHost: x\r\n\r\n", t.path(&other))).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn validation_errors() {
    let t = TestServer::start(TestRuntime::default()).await;
    let s = &t.server;
    assert_eq!(s.get_exec("", vec!["ls".into()], false, true, false, false), Err(RequestError::MissingContainerId));
    assert_eq!(
        s.get_exec("c", vec!["ls".into()], true, true, true, true).unwrap_err().to_string(),
        "tty and stderr cannot both be true"
    );
    assert_eq!(
        s.get_exec("c", vec!["ls".into()], false, false, false, false).unwrap_err().to_string(),
        "one of stdin, stdout, or stderr must be set"
    );
    assert_eq!(s.get_attach("c", true, true, true, true).unwrap_err().to_string(), "tty and stderr cannot both be true");
    assert_eq!(s.get_port_forward("").unwrap_err().to_string(), "missing required pod_sandbox_id");
    let mut last = Ok(String::new());
    for _ in 0..=streaming::MAX_IN_FLIGHT {
        last = s.get_port_forward("p");
    }
    assert_eq!(last.unwrap_err().to_string(), "maximum number of in-flight requests exceeded");
}

#[tokio::test]
async fn port_forward_two_ports() {
    let mut runtime = TestRuntime::default();
    runtime.ports.insert(80, reply_server("A").await);
    runtime.ports.insert(8080, reply_server("B").await);
    let t = TestServer::start(runtime).await;
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let (mut ws, resp) = ws_connect(&format!("{url}?port=80,8080"), "v4.channel.k8s.io").await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
    // Each channel opens with its port, little endian.
    let mut opening = Vec::new();
    for _ in 0..4 {
        opening.push(next_binary(&mut ws).await);
    }
    assert_eq!(opening, vec![vec![0, 80, 0], vec![1, 80, 0], vec![2, 0x90, 0x1f], vec![3, 0x90, 0x1f]]);
    send(&mut ws, b"\x00one").await;
    send(&mut ws, b"\x02two").await;
    // Both targets answer and close; then the server closes the connection.
    let (frames, close) = read_all(&mut ws).await;
    assert_eq!(close, Some(1000));
    assert_eq!(channel(&frames, 0), b"A:one");
    assert_eq!(channel(&frames, 2), b"B:two");
    assert!(channel(&frames, 1).is_empty() && channel(&frames, 3).is_empty());
}

#[tokio::test]
async fn port_forward_dial_error_goes_on_the_error_channel() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let (mut ws, _) = ws_connect(&format!("{url}?port=9"), "v4.channel.k8s.io").await.unwrap();
    let (frames, _) = read_all(&mut ws).await;
    assert_eq!(frames[0], vec![0, 9, 0]);
    assert_eq!(frames[1], vec![1, 9, 0]);
    assert_eq!(
        String::from_utf8(channel(&frames[2..], 1)).unwrap(),
        "error forwarding port 9 to pod sandbox-1, uid : dial tcp 127.0.0.1:9: connect: connection refused"
    );
}

#[tokio::test]
async fn port_forward_needs_ports() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_port_forward("sandbox-1").unwrap();
    let err = ws_connect(&url, "v4.channel.k8s.io").await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else { panic!("{err}") };
    assert_eq!(resp.status(), 400);
    let body = String::from_utf8(resp.body().clone().unwrap_or_default()).unwrap();
    assert_eq!(body, "query parameter \"port\" is required\n");
}

#[tokio::test]
async fn cancel_ends_serve_and_open_sessions() {
    let t = TestServer::start(TestRuntime::default()).await;
    let url = t.server.get_exec("c1", vec!["hang".into()], false, true, true, false).unwrap();
    let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
    assert_eq!(next_binary(&mut ws).await, vec![1]);
    t.cancel.cancel();
    t.task.await.unwrap();
    // The session went with it: the connection ends without a status.
    use futures::StreamExt;
    while let Some(Ok(msg)) = ws.next().await {
        assert!(!matches!(msg, tokio_tungstenite::tungstenite::Message::Binary(_)), "{msg:?}");
    }
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = streaming::Config { stream_idle_timeout: std::time::Duration::from_millis(200), ..Default::default() };
    let t = TestServer::start_with(TestRuntime::default(), config).await;
    let url = t.server.get_exec("c1", vec!["hang".into()], false, true, true, false).unwrap();
    let (mut ws, _) = ws_connect(&url, "v5.channel.k8s.io").await.unwrap();
    assert_eq!(next_binary(&mut ws).await, vec![1]);
    // Nothing moves either way: the server gives the connection up, without a status.
    use futures::StreamExt;
    while let Some(Ok(msg)) = ws.next().await {
        assert!(!matches!(msg, tokio_tungstenite::tungstenite::Message::Binary(_)), "{msg:?}");
    }
}
