//! `agnhost connect HOST:PORT`: one TCP connection attempt, exit 0 when it is accepted, else
//! exit 1 with upstream's one-word reason on stderr (BADARGS, DNS, TIMEOUT, REFUSED, OTHER: …).

use std::net::ToSocketAddrs;
use std::time::Duration;

use super::flags::{FlagSpec, Flags, Kind, flag};

pub const FLAGS: &[FlagSpec] = &[
    flag("timeout", Kind::Str, "5s", "Maximum time before returning an error"),
    flag("protocol", Kind::Str, "", "The protocol to use to perform the connection, can be tcp or sctp"),
    flag("sctp-reuse-port", Kind::Bool, "false", "Whether to reuse the port for SCTP (unsupported here)"),
];

/// The reason word and exit code of a connection attempt to `dest`.
pub async fn connect(f: &Flags) -> crate::Result<i32> {
    let Some(dest) = f.positional.first() else {
        eprintln!("BADARGS");
        return Ok(1);
    };
    match f.str("protocol") {
        "" | "tcp" => {}
        "sctp" => {
            eprintln!("OTHER: SCTP is not supported by nodekit's agnhost");
            return Ok(1);
        }
        other => {
            eprintln!("Unsupported protocol {other}");
            return Ok(1);
        }
    }
    let timeout = super::gofmt::parse_duration(f.str("timeout")).map(super::gofmt::nanos_to_duration).unwrap_or(Duration::from_secs(5));
    let (code, reason) = attempt(dest, timeout).await;
    if let Some(r) = reason {
        eprintln!("{r}");
    }
    Ok(code)
}

async fn attempt(dest: &str, timeout: Duration) -> (i32, Option<String>) {
    if !dest.contains(':') || dest.rsplit_once(':').is_some_and(|(h, p)| h.is_empty() && p.is_empty()) {
        return (1, Some("BADARGS".into()));
    }
    let addr = match dest.to_socket_addrs().ok().and_then(|mut a| a.next()) {
        Some(a) => a,
        None => return (1, Some("DNS".into())),
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => (0, None),
        Err(_) => (1, Some("TIMEOUT".into())),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (1, Some("REFUSED".into())),
        Ok(Err(e)) => (1, Some(format!("OTHER: dial tcp {dest}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reasons_as_upstream_words_them() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap().to_string();
        assert_eq!(attempt(&open, Duration::from_secs(5)).await, (0, None));
        drop(l);
        assert_eq!(attempt(&open, Duration::from_secs(5)).await, (1, Some("REFUSED".into())));
        assert_eq!(attempt("no-port", Duration::from_secs(5)).await, (1, Some("BADARGS".into())));
        assert_eq!(attempt("name.invalid:80", Duration::from_secs(5)).await.1.as_deref(), Some("DNS"));
    }
}
