//! Port-forward sessions (upstream `portforward/{portforward,httpstream,websocket}.go`): each
//! forwarded connection gets a data stream and an error stream; the server dials the port through
//! the runtime and copies both ways.

pub(crate) mod spdy;
pub(crate) mod websocket;

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::constants::PORTS_QUERY_PARAM;
use crate::runtime::Duplex;

/// After the client stops sending, how long the target may still answer (containerd gives a
/// forwarded connection one second to finish once one direction ended).
const LINGER: Duration = Duration::from_secs(1);

/// Upstream's report of a failed forward; the CRI server passes no pod UID.
pub(crate) fn forward_error(port: u16, pod: &str, err: &str) -> String {
    format!("error forwarding port {port} to pod {pod}, uid : {err}")
}

/// The `ports` query parameter of a WebSocket port-forward, as upstream `NewV4Options`.
pub(crate) fn parse_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == PORTS_QUERY_PARAM)
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.is_empty() {
        return Err(format!("query parameter {PORTS_QUERY_PARAM:?} is required"));
    }
    let mut ports = Vec::new();
    for value in &values {
        if value.is_empty() {
            return Err(format!("query parameter {PORTS_QUERY_PARAM:?} cannot be empty"));
        }
        for p in value.split(',') {
            let port = parse_uint16(p).map_err(|e| format!("unable to parse {value:?} as a port: {e}"))?;
            if port < 1 {
                return Err(format!("port {value:?} must be > 0"));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// Go's `strconv.ParseUint(s, 10, 16)`, errors worded alike.
fn parse_uint16(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    s.parse().map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// Which side of a copy failed.
enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(mut from: R, mut to: W) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = from.read(&mut buf).await.map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await.map_err(CopyError::Write)?;
        to.flush().await.map_err(CopyError::Write)?;
    }
}

/// Copies between the client's data stream and the target until the target is done (its EOF
/// ends the client's stream too) or the client stopped sending and the target had `LINGER` to
/// answer. Errors on the target's side are returned for the error stream; the client's own
/// failures end the copy quietly.
pub(crate) async fn forward<CR, CW>(client_read: CR, mut client_write: CW, target: Box<dyn Duplex>) -> Result<(), String>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
{
    let (target_read, mut target_write) = tokio::io::split(target);
    let down = async {
        let result = copy(target_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
        match result {
            Err(CopyError::Read(e)) => Err(e.to_string()),
            Ok(()) | Err(CopyError::Write(_)) => Ok(()),
        }
    };
    let up = async {
        let result = copy(client_read, &mut target_write).await;
        let _ = target_write.shutdown().await;
        result
    };
    tokio::pin!(down, up);
    tokio::select! {
        result = &mut down => result,
        result = &mut up => match result {
            Err(CopyError::Write(e)) => Err(e.to_string()),
            Err(CopyError::Read(_)) => Ok(()),
            Ok(()) => tokio::time::timeout(LINGER, down).await.unwrap_or(Ok(())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_as_upstream_parses_them() {
        assert_eq!(parse_ports(Some("port=80,443&port=8080")).unwrap(), vec![80, 443, 8080]);
        assert_eq!(parse_ports(Some("x=1")).unwrap_err(), r#"query parameter "port" is required"#);
        assert_eq!(parse_ports(None).unwrap_err(), r#"query parameter "port" is required"#);
        assert_eq!(parse_ports(Some("port=")).unwrap_err(), r#"query parameter "port" cannot be empty"#);
        assert_eq!(
            parse_ports(Some("port=80,abc")).unwrap_err(),
            r#"unable to parse "80,abc" as a port: strconv.ParseUint: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            parse_ports(Some("port=70000")).unwrap_err(),
            r#"unable to parse "70000" as a port: strconv.ParseUint: parsing "70000": value out of range"#
        );
        assert_eq!(parse_ports(Some("port=0")).unwrap_err(), r#"port "0" must be > 0"#);
    }

    #[tokio::test]
    async fn forward_copies_both_ways_until_the_target_is_done() {
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (target, mut target_peer) = tokio::io::duplex(1024);
        let (cr, cw) = tokio::io::split(client);
        let task = tokio::spawn(forward(cr, cw, Box::new(target)));
        client_peer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        target_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        target_peer.write_all(b"pong").await.unwrap();
        drop(target_peer);
        let mut got = Vec::new();
        client_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"pong");
        assert_eq!(task.await.unwrap(), Ok(()));
    }
}
