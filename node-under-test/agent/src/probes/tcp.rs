//! TCP socket probes: success when a connection is established within the timeout.

use std::time::Duration;

use super::state::ProbeOutcome;

/// Connects to host:port.
pub async fn tcp_probe(host: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => ProbeOutcome::Success,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            ProbeOutcome::Failure(format!("dial tcp {addr}: connect: connection refused"))
        }
        Ok(Err(e)) => ProbeOutcome::Failure(format!("dial tcp {addr}: {e}")),
        Err(_) => ProbeOutcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_and_closed_ports() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(tcp_probe("127.0.0.1", port, Duration::from_secs(1)).await, ProbeOutcome::Success);
        drop(l);
        assert_eq!(
            tcp_probe("127.0.0.1", port, Duration::from_secs(1)).await,
            ProbeOutcome::Failure(format!("dial tcp 127.0.0.1:{port}: connect: connection refused"))
        );
    }
}
