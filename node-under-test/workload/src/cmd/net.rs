//! Socket servers: tcp-echo, udp-echo and the grpc.health.v1 server.
use crate::args::Invocation;
use crate::{Error, Result};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::ServingStatus;

/// `check-port PORT`: a local readiness check that sends nothing beyond loopback (an exec probe
/// for a server whose network traffic a case captures).
pub async fn check_port(inv: &Invocation) -> Result<i32> {
    let port: u16 = inv
        .arg(0, "a port")?
        .parse()
        .map_err(|_| Error::Usage("check-port takes a port number".into()))?;
    match tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(("127.0.0.1", port))).await {
        Ok(Ok(s)) => match inv.flag("get") {
            None => Ok(0),
            Some(path) => http_get(s, port, path).await,
        },
        Ok(Err(e)) => {
            eprintln!("127.0.0.1:{port}: {e}");
            Ok(1)
        }
        Err(_) => {
            eprintln!("127.0.0.1:{port}: connect timed out");
            Ok(1)
        }
    }
}

/// `check-port PORT --get PATH`: `GET PATH` (HTTP/1.0) over the connection `s`; prints the
/// answer. Exit 0 when one came, 1 when the connection ended without any.
async fn http_get(mut s: tokio::net::TcpStream, port: u16, path: &str) -> Result<i32> {
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .map_err(|e| Error::io("write the request", e))?;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    print!("{}", String::from_utf8_lossy(&answer));
    Ok(if answer.is_empty() { 1 } else { 0 })
}

pub async fn tcp_echo(inv: &Invocation) -> Result<i32> {
    let port: u16 = inv.num("port", 7)?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|e| Error::io(format!("bind tcp {port}"), e))?;
    println!("workload tcp-echo: listening on tcp {port}");
    loop {
        let (mut s, _) = listener.accept().await.map_err(|e| Error::io("accept", e))?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}

pub async fn udp_echo(inv: &Invocation) -> Result<i32> {
    let port: u16 = inv.num("port", 7)?;
    let sock = tokio::net::UdpSocket::bind(("0.0.0.0", port))
        .await
        .map_err(|e| Error::io(format!("bind udp {port}"), e))?;
    println!("workload udp-echo: listening on udp {port}");
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = sock.recv_from(&mut buf).await.map_err(|e| Error::io("recv", e))?;
        let _ = sock.send_to(&buf[..n], peer).await;
    }
}

/// Serves grpc.health.v1.Health; the overall ("") and `--service` status turn NOT_SERVING after
/// `--fail-after D` if given.
pub async fn grpc_health(inv: &Invocation) -> Result<i32> {
    let port: u16 = inv.num("port", 5000)?;
    let fail_after = inv.flag("fail-after").map(crate::args::parse_duration).transpose()?;
    let service = inv.flag("service").map(str::to_string);
    let (reporter, svc) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    if let Some(s) = &service {
        reporter.set_service_status(s.as_str(), ServingStatus::Serving).await;
    }
    if let Some(d) = fail_after {
        let r = reporter.clone();
        let service = service.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            r.set_service_status("", ServingStatus::NotServing).await;
            if let Some(s) = &service {
                r.set_service_status(s.as_str(), ServingStatus::NotServing).await;
            }
            println!("workload grpc-health: now NOT_SERVING");
        });
    }
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|e| Error::io(format!("bind tcp {port}"), e))?;
    println!("workload grpc-health: serving grpc.health.v1 on {port}");
    eprintln!("workload grpc-health: started");
    tonic::transport::Server::builder()
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .add_service(svc)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(0)
}
