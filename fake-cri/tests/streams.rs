//! Exec, Attach and PortForward through the streaming server on real processes: stdin reaches
//! the command and its exit code comes back in the status channel, an attach sees the
//! container's output, a forward reaches a port inside the pod's network namespace.
mod common;
use common::*;
use futures::{SinkExt, StreamExt};
use k8s_cri::v1 as cri;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket to a streaming URL, connected from inside the node's network namespace (where
/// the streaming server listens on loopback) with subprotocol `protocol`.
async fn connect(w: &World, url: &str, protocol: &str) -> Ws {
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap();
    let tcp = w.in_node_net(move || std::net::TcpStream::connect(addr).unwrap());
    tcp.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(tcp).unwrap();
    let mut req = url.replace("http://", "ws://").into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(resp.headers().get("Sec-WebSocket-Protocol").unwrap(), protocol);
    ws
}

/// Every binary frame until the server closes: (channel, payload) in order.
async fn frames(ws: &mut Ws) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let read = async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Binary(b)) if !b.is_empty() => out.push((b[0], b[1..].to_vec())),
                Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("the server closed the stream");
    out
}

fn channel(frames: &[(u8, Vec<u8>)], ch: u8) -> String {
    frames.iter().filter(|(c, _)| *c == ch).map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect()
}

async fn exec_url(w: &mut World, id: &str, cmd: &[&str], stdin: bool) -> String {
    let req = cri::ExecRequest { container_id: id.into(), cmd: cmd.iter().map(|s| s.to_string()).collect(), stdin, stdout: true, stderr: true, tty: false };
    w.client.runtime.exec(req).await.unwrap().into_inner().url
}

#[tokio::test]
async fn exec_stdin_output_and_exit_codes_over_websocket() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    // The streaming server listens on the node's loopback, as containerd's does.
    assert!(w.node_cmd(&["ip", "link", "set", "lo", "up"]).status.success());
    let sid = w.run_pod(pod_config("exec-ws")).await;
    let c = w.run_container(&sid, container("main", &["pause"])).await;
    let url = exec_url(&mut w, &c, &["/workload", "cat", "/dev/stdin"], true).await;
    let mut ws = connect(&w, &url, "v5.channel.k8s.io").await;
    ws.send(Message::binary(b"\x00through stdin\n".to_vec())).await.unwrap();
    ws.send(Message::binary(vec![255, 0])).await.unwrap();
    let f = frames(&mut ws).await;
    assert_eq!(channel(&f, 1), "through stdin\n");
    let status: serde_json::Value = serde_json::from_str(&channel(&f, 3)).unwrap();
    assert_eq!(status["status"], "Success", "{status}");
    // A failing command: its stderr on channel 2 and the exit code as upstream's cause.
    let url = exec_url(&mut w, &c, &["/workload", "cat", "/no/such/file"], false).await;
    let f = frames(&mut connect(&w, &url, "v4.channel.k8s.io").await).await;
    assert!(channel(&f, 2).contains("/no/such/file"), "{f:?}");
    let status: serde_json::Value = serde_json::from_str(&channel(&f, 3)).unwrap();
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("Failure"), Some("NonZeroExitCode")), "{status}");
    assert_ne!(status["details"]["causes"][0]["message"], "0");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    // A URL is single use; exec in a stopped container is refused at the RPC.
    let again = tokio::net::TcpStream::from_std({
        let addr: std::net::SocketAddr = url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap();
        let s = w.in_node_net(move || std::net::TcpStream::connect(addr).unwrap());
        s.set_nonblocking(true).unwrap();
        s
    })
    .unwrap();
    let req = url.replace("http://", "ws://").into_client_request().unwrap();
    assert!(tokio_tungstenite::client_async(req, again).await.is_err(), "a used URL must not open again");
    w.client.runtime.stop_container(cri::StopContainerRequest { container_id: c.clone(), timeout: 0 }).await.unwrap();
    let req = cri::ExecRequest { container_id: c.clone(), cmd: vec!["/workload".into()], stdout: true, ..Default::default() };
    assert_eq!(w.client.runtime.exec(req).await.unwrap_err().code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn attach_streams_output_until_the_container_exits() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    // The streaming server listens on the node's loopback, as containerd's does.
    assert!(w.node_cmd(&["ip", "link", "set", "lo", "up"]).status.success());
    let mut p = pod_config("attach");
    p.log_directory = w.logs().join("attach").to_string_lossy().into_owned();
    let sid = w.run_pod(p).await;
    let mut cfg = container("main", &["exit", "--code", "0", "--after", "2s"]);
    cfg.log_path = "main/0.log".into();
    let c = w.run_container(&sid, cfg).await;
    let req = cri::AttachRequest { container_id: c.clone(), stdin: false, tty: false, stdout: true, stderr: true };
    let url = w.client.runtime.attach(req).await.unwrap().into_inner().url;
    let f = frames(&mut connect(&w, &url, "v5.channel.k8s.io").await).await;
    assert!(channel(&f, 2).contains("exiting with code 0"), "attach saw on stderr {f:?}");
    let status: serde_json::Value = serde_json::from_str(&channel(&f, 3)).unwrap();
    assert_eq!(status["status"], "Success", "{status}");
}

#[tokio::test]
async fn port_forward_reaches_the_pod_namespace() {
    let mut w = World::start(&[]).await;
    w.set_cidr().await;
    // The streaming server listens on the node's loopback, as containerd's does.
    assert!(w.node_cmd(&["ip", "link", "set", "lo", "up"]).status.success());
    let sid = w.run_pod(pod_config("forward")).await;
    let c = w.run_container(&sid, container("web", &["serve-hostname", "--port", "9376"])).await;
    wait_for("the server to listen", Duration::from_secs(10), || {
        let mut w2 = w.client.clone();
        let c = c.clone();
        async move {
            let req = cri::ExecSyncRequest { container_id: c, cmd: vec!["/workload".into(), "check-port".into(), "9376".into()], timeout: 5 };
            w2.runtime.exec_sync(req).await.ok().filter(|r| r.get_ref().exit_code == 0).map(|_| ())
        }
    })
    .await;
    let url = w.client.runtime.port_forward(cri::PortForwardRequest { pod_sandbox_id: sid.clone(), port: vec![9376] }).await.unwrap().into_inner().url;
    let mut ws = connect(&w, &format!("{url}?port=9376"), "v4.channel.k8s.io").await;
    let mut first = Vec::new();
    while first.len() < 2 {
        if let Message::Binary(b) = ws.next().await.unwrap().unwrap() {
            first.push((b[0], b[1..].to_vec()));
        }
    }
    assert!(first.iter().all(|(_, p)| p == &9376u16.to_le_bytes()), "each channel opens with the port: {first:?}");
    ws.send(Message::binary(b"\x00GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec())).await.unwrap();
    let mut body = String::new();
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(b) = m && b.first() == Some(&0) {
                body.push_str(&String::from_utf8_lossy(&b[1..]));
                if body.ends_with("forward") {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("an answer through the forward");
    assert!(body.starts_with("HTTP/1.1 200") && body.ends_with("forward"), "{body:?}");
}
