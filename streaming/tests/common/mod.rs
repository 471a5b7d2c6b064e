//! A test runtime, a server on 127.0.0.1, and small clients.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use streaming::{Config, Duplex, ExecError, Runtime, Server, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

/// Exec commands the test runtime knows:
/// - `echo-stdin CODE`: stdin to stdout until EOF, then `stderr: done\n` on stderr, exit CODE;
/// - `print TEXT CODE`: TEXT on stdout, exit CODE;
/// - `fail MSG`: the runtime fails with MSG;
/// - `hang`: never ends.
///
/// Attach: with a tty, the first resize as `WxH\n`; then stdin to stdout until EOF.
/// Port-forward: port P connects to `ports[P]` on 127.0.0.1.
#[derive(Default)]
pub struct TestRuntime {
    pub ports: HashMap<u16, SocketAddr>,
}

fn code(arg: Option<&String>) -> Result<(), ExecError> {
    match arg.and_then(|c| c.parse().ok()).unwrap_or(0) {
        0 => Ok(()),
        c => Err(ExecError::ExitCode(c)),
    }
}

impl Runtime for TestRuntime {
    fn exec(&self, _container_id: &str, cmd: &[String], io: Stdio) -> BoxFuture<'static, Result<(), ExecError>> {
        let cmd = cmd.to_vec();
        Box::pin(async move {
            let Stdio { stdin, stdout, stderr, .. } = io;
            match cmd.first().map(String::as_str) {
                Some("echo-stdin") => {
                    let (mut stdin, mut stdout) = (stdin.unwrap(), stdout.unwrap());
                    tokio::io::copy(&mut stdin, &mut stdout).await.map_err(|e| ExecError::Failed(e.to_string()))?;
                    if let Some(mut stderr) = stderr {
                        stderr.write_all(b"stderr: done\n").await.unwrap();
                    }
                    code(cmd.get(1))
                }
                Some("print") => {
                    stdout.unwrap().write_all(cmd[1].as_bytes()).await.unwrap();
                    code(cmd.get(2))
                }
                Some("fail") => Err(ExecError::Failed(cmd[1].clone())),
                Some("hang") => futures::future::pending().await,
                other => Err(ExecError::Failed(format!("unknown command {other:?}"))),
            }
        })
    }

    fn attach(&self, _container_id: &str, io: Stdio) -> BoxFuture<'static, Result<(), ExecError>> {
        Box::pin(async move {
            let Stdio { stdin, stdout, resize, .. } = io;
            let mut stdout = stdout.unwrap();
            if let Some(mut resize) = resize {
                let size = resize.recv().await.unwrap();
                stdout.write_all(format!("{}x{}\n", size.width, size.height).as_bytes()).await.unwrap();
            }
            tokio::io::copy(&mut stdin.unwrap(), &mut stdout).await.map_err(|e| ExecError::Failed(e.to_string()))?;
            Ok(())
        })
    }

    fn port_forward(&self, _pod_sandbox_id: &str, port: u16) -> BoxFuture<'static, Result<Box<dyn Duplex>, String>> {
        let addr = self.ports.get(&port).copied();
        Box::pin(async move {
            let addr = addr.ok_or_else(|| format!("dial tcp 127.0.0.1:{port}: connect: connection refused"))?;
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            Ok(Box::new(tcp) as Box<dyn Duplex>)
        })
    }
}

pub struct TestServer {
    pub server: Arc<Server<TestRuntime>>,
    pub addr: SocketAddr,
    pub cancel: CancellationToken,
    pub task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(runtime: TestRuntime) -> Self {
        Self::start_with(runtime, Config::default()).await
    }

    pub async fn start_with(runtime: TestRuntime, config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::with_config(Arc::new(runtime), format!("http://{addr}"), config);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(server.clone().serve(listener, cancel.clone()));
        Self { server, addr, cancel, task }
    }

    /// The path of a URL the server handed out.
    pub fn path(&self, url: &str) -> String {
        url.strip_prefix(&format!("http://{}", self.addr)).unwrap().to_string()
    }
}

pub type Ws = WebSocketStream<TcpStream>;

/// Opens a WebSocket on `url` asking for `protocols`.
pub async fn ws_connect(url: &str, protocols: &str) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url.as_str().into_client_request().unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    }
    let authority = request.uri().authority().unwrap().to_string();
    let tcp = TcpStream::connect(authority).await.unwrap();
    tokio_tungstenite::client_async(request, tcp).await
}

/// Sends one binary frame.
pub async fn send(ws: &mut Ws, frame: &[u8]) {
    ws.send(Message::Binary(frame.to_vec().into())).await.unwrap();
}

/// Every frame until the server closes: (frames in order, the close code).
pub async fn read_all(ws: &mut Ws) -> (Vec<Vec<u8>>, Option<u16>) {
    let mut frames = Vec::new();
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Binary(b)) => frames.push(b.to_vec()),
            Ok(Message::Text(t)) => frames.push(t.as_bytes().to_vec()),
            Ok(Message::Close(frame)) => return (frames, frame.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(e) => panic!("websocket error: {e}"),
        }
    }
    (frames, None)
}

/// The concatenated payloads of `channel` in binary frames.
pub fn channel(frames: &[Vec<u8>], channel: u8) -> Vec<u8> {
    frames.iter().filter(|f| f.first() == Some(&channel)).flat_map(|f| f[1..].to_vec()).collect()
}

/// Reads one frame, which must be binary.
pub async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match ws.next().await.expect("connection ended").expect("websocket error") {
            Message::Binary(b) => return b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the status, the head, and the body.
pub async fn raw_request(addr: SocketAddr, head: &str) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let (status, head) = read_head(&mut tcp).await;
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tcp.read_exact(&mut body).await.unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

/// Reads a response head byte by byte (so nothing after it is consumed).
pub async fn read_head(tcp: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    let head = String::from_utf8(head).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head)
}

/// A TCP server on 127.0.0.1 that answers each connection's first read with `{name}:{data}`
/// and closes.
pub async fn reply_server(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                let mut reply = format!("{name}:").into_bytes();
                reply.extend_from_slice(&buf[..n]);
                let _ = tcp.write_all(&reply).await;
            });
        }
    });
    addr
}
