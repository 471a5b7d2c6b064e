//! Outgoing TCP connection attempts from a given source address, with the source port chosen
//! the way the kernel chooses it for a plain `connect`.
//!
//! Binding to `(address, 0)` draws a random free port; two draws in a row can return the same
//! port, and a new SYN from it then matches the conntrack entry of the earlier connection on
//! every box in the path. An entry of a SYN sent before the proxy had rules for a service has
//! no DNAT and lives 120 s (`nf_conntrack_tcp_timeout_syn_sent`), so the new SYN follows it
//! into nowhere. With `IP_BIND_ADDRESS_NO_PORT` the port is picked at connect time, where
//! successive ports to one destination advance instead.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, getsockname, setsockopt, socket, sockopt,
};
use tokio::net::TcpStream;

use crate::error::{Context, Result};

/// How a connection attempt ended; each carries the local address it was made from.
#[derive(Debug)]
pub enum Attempt {
    Connected(TcpStream, SocketAddrV4),
    /// ECONNREFUSED: a TCP RST or an ICMP port-unreachable came back.
    Refused(SocketAddrV4),
    /// Nothing came back within the timeout.
    TimedOut(SocketAddrV4),
    /// Another error (host unreachable, …).
    Failed(SocketAddrV4, std::io::Error),
}

impl Attempt {
    /// The local address of the attempt.
    pub fn local(&self) -> SocketAddrV4 {
        match self {
            Attempt::Connected(_, l) | Attempt::Refused(l) | Attempt::TimedOut(l) | Attempt::Failed(l, _) => *l,
        }
    }

    /// A few words for messages.
    pub fn describe(&self) -> String {
        match self {
            Attempt::Connected(_, l) => format!("connected from {l}"),
            Attempt::Refused(l) => format!("refused (from {l})"),
            Attempt::TimedOut(l) => format!("timed out (from {l})"),
            Attempt::Failed(l, e) => format!("failed from {l}: {e}"),
        }
    }
}

/// A non-blocking, close-on-exec IPv4 TCP socket; call it inside the namespace it belongs to.
pub fn new_tcp_fd() -> nix::Result<OwnedFd> {
    socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
}

/// Connects the non-blocking socket `fd` from `src` (port chosen at connect time) to `to`,
/// waiting at most `timeout` for the handshake. Needs a tokio runtime.
pub async fn attempt_from(fd: OwnedFd, src: Ipv4Addr, to: SocketAddrV4, timeout: Duration) -> Result<Attempt> {
    setsockopt(&fd, sockopt::IpBindAddressNoPort, &true).ctx(|| "setting IP_BIND_ADDRESS_NO_PORT".into())?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0))).ctx(|| format!("binding a TCP socket to {src}"))?;
    let started = connect(fd.as_raw_fd(), &SockaddrIn::from(to));
    // The connect call chose the port, also when it failed at once.
    let local = SocketAddrV4::from(
        getsockname::<SockaddrIn>(fd.as_raw_fd()).ctx(|| format!("getsockname of a socket connecting to {to}"))?,
    );
    match started {
        Ok(()) | Err(Errno::EINPROGRESS) => {}
        Err(Errno::ECONNREFUSED) => return Ok(Attempt::Refused(local)),
        Err(e) => return Ok(Attempt::Failed(local, e.into())),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(fd)).ctx(|| "registering a socket with tokio".into())?;
    // Writable once the handshake ended either way; the socket error tells which.
    Ok(match tokio::time::timeout(timeout, stream.writable()).await {
        Err(_) => Attempt::TimedOut(local),
        Ok(ready) => {
            ready.ctx(|| format!("waiting for the connection to {to}"))?;
            match stream.take_error().ctx(|| "SO_ERROR".into())? {
                None => Attempt::Connected(stream, local),
                Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Attempt::Refused(local),
                Some(e) => Attempt::Failed(local, e),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attempts in a row to one destination never reuse a source port (random draws from the
    /// ephemeral range collide within a few hundred attempts; the connect-time choice does not).
    #[tokio::test]
    async fn successive_attempts_use_distinct_ports() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = match closed.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("{other}"),
        };
        drop(closed);
        let mut ports = std::collections::HashSet::new();
        for _ in 0..600 {
            let fd = new_tcp_fd().unwrap();
            let a = attempt_from(fd, Ipv4Addr::LOCALHOST, to, Duration::from_secs(2)).await.unwrap();
            assert!(matches!(a, Attempt::Refused(_)), "{}", a.describe());
            assert!(ports.insert(a.local().port()), "port {} used twice", a.local().port());
        }
    }
}
