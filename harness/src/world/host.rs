//! A host of the world: a network namespace held by fd, with sockets and processes inside it.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use crate::artifacts::Artifacts;
use crate::error::{Context, Result};
use crate::ns::NetNs;
use crate::process::{Process, ProcessSpec};
use crate::timeline::Timeline;
use crate::world::net::{Netlink, read_sysctl, write_sysctl};
use crate::world::plan::{Cidr, Role};

/// A host: a network namespace of the world (or the world root itself).
#[derive(Debug)]
pub struct Host {
    pub(crate) name: String,
    pub(crate) role: Option<Role>,
    pub(crate) ip: Ipv4Addr,
    pub(crate) pod_cidr: Option<Cidr>,
    pub(crate) ns: NetNs,
    pub(crate) netlink: Netlink,
    pub(crate) artifacts: Artifacts,
    pub(crate) timeline: Timeline,
}

impl Host {
    /// The host's name (`world` for the world root).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The host's role; `None` for the world root and for pod hosts.
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    /// The host's address (on the LAN; a pod host's pod IP).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }
    /// The node's pod CIDR.
    pub fn pod_cidr(&self) -> Option<Cidr> {
        self.pod_cidr
    }
    /// The network namespace.
    pub fn netns(&self) -> &NetNs {
        &self.ns
    }
    /// The network namespace's file descriptor.
    pub fn netns_fd(&self) -> BorrowedFd<'_> {
        self.ns.fd().as_fd()
    }
    /// A netlink connection bound to this host.
    pub fn netlink(&self) -> &Netlink {
        &self.netlink
    }

    /// Runs `f` on a thread inside this host's network namespace (sockets made there stay in it).
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        self.ns.run(f)
    }

    /// A listening TCP socket bound inside this host. Needs a tokio runtime.
    pub fn tcp_listener(&self, addr: SocketAddr) -> Result<tokio::net::TcpListener> {
        let l = self.run(|| std::net::TcpListener::bind(addr))?.ctx(|| format!("{}: binding TCP {addr}", self.name))?;
        l.set_nonblocking(true).ctx(|| "set_nonblocking".into())?;
        tokio::net::TcpListener::from_std(l).ctx(|| "registering a listener with tokio".into())
    }

    /// An unconnected TCP socket created inside this host (bind it, set options, then connect).
    pub fn tcp_socket(&self) -> Result<tokio::net::TcpSocket> {
        let fd = self
            .run(|| {
                socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
            })?
            .ctx(|| format!("{}: creating a TCP socket", self.name))?;
        Ok(tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd)))
    }

    /// One connection attempt from `src` (an address of this host) to `to`, the source port
    /// chosen at connect time (see [`crate::world::tcp`]). Needs a tokio runtime.
    pub async fn tcp_attempt(
        &self,
        src: Ipv4Addr,
        to: std::net::SocketAddrV4,
        timeout: std::time::Duration,
    ) -> Result<crate::world::tcp::Attempt> {
        let fd = self.run(crate::world::tcp::new_tcp_fd)?.ctx(|| format!("{}: creating a TCP socket", self.name))?;
        crate::world::tcp::attempt_from(fd, src, to, timeout).await
    }

    /// Connects from inside this host.
    pub async fn tcp_connect(&self, addr: SocketAddr) -> Result<tokio::net::TcpStream> {
        self.tcp_socket()?.connect(addr).await.ctx(|| format!("{}: connecting to {addr}", self.name))
    }

    /// A UDP socket bound inside this host. Needs a tokio runtime.
    pub fn udp_socket(&self, addr: SocketAddr) -> Result<tokio::net::UdpSocket> {
        let s = self.run(|| std::net::UdpSocket::bind(addr))?.ctx(|| format!("{}: binding UDP {addr}", self.name))?;
        s.set_nonblocking(true).ctx(|| "set_nonblocking".into())?;
        tokio::net::UdpSocket::from_std(s).ctx(|| "registering a UDP socket with tokio".into())
    }

    /// Sets a sysctl in this host (`net.ipv4.ip_forward`, `net.bridge.bridge-nf-call-iptables`, …).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.run(|| write_sysctl(key, value))??;
        self.timeline.record("harness", format!("{}: sysctl {key}={value}", self.name));
        Ok(())
    }

    /// Reads a sysctl of this host.
    pub fn read_sysctl(&self, key: &str) -> Result<String> {
        self.run(|| read_sysctl(key))?
    }

    /// Starts a supervised process inside this host; output goes to `<artifacts>/<log_name>.log`.
    pub fn spawn(&self, spec: ProcessSpec) -> Result<Process> {
        Process::start(&self.name, self.ns.clone(), &self.artifacts, &self.timeline, spec)
    }

    /// A plain command that will run inside this host (`pre_exec` setns), e.g. `nft -f`.
    /// Output handling is the caller's; convert with `tokio::process::Command::from` for async use.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let fd = self.ns.fd().clone();
        // SAFETY: setns is async-signal-safe; the closure does not allocate.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || setns(&*fd, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from));
        }
        cmd
    }

    /// Runs `program args…` inside this host to completion; fails with its output if it exits non-zero.
    pub async fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut cmd = tokio::process::Command::from(self.command(program));
        cmd.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
        let out = cmd.output().await.ctx(|| format!("{}: running {program}", self.name))?;
        if !out.status.success() {
            return Err(crate::error::Error::Child(format!(
                "{}: `{program} {}` failed ({}): {}{}",
                self.name,
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `nft -f -` inside this host with `ruleset` on stdin.
    pub async fn nft(&self, ruleset: &str) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::from(self.command("nft"));
        cmd.args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().ctx(|| format!("{}: starting nft", self.name))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(ruleset.as_bytes()).await.ctx(|| "writing the ruleset to nft".into())?;
        }
        let out = child.wait_with_output().await.ctx(|| "waiting for nft".into())?;
        if !out.status.success() {
            return Err(crate::error::Error::Child(format!(
                "{}: nft -f failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        self.timeline.record("harness", format!("{}: nft ruleset loaded", self.name));
        Ok(())
    }

    /// Cuts this host off from `peer` (or heals the cut): a table of its own network namespace
    /// drops every packet to and from that address, so connections stall as in a network
    /// partition while everything else this host does goes on.
    pub async fn isolate_from(&self, peer: Ipv4Addr, on: bool) -> Result<()> {
        let rules = if on {
            format!(
                "table ip {PARTITION_TABLE} {{\n chain out {{ type filter hook output priority -300; ip daddr {peer} drop; }}\n \
                 chain in {{ type filter hook input priority -300; ip saddr {peer} drop; }}\n}}\n"
            )
        } else {
            format!("delete table ip {PARTITION_TABLE}\n")
        };
        self.nft(&rules).await?;
        let what = if on { "cut from" } else { "reconnected to" };
        self.timeline.record("harness", format!("{} {what} {peer}", self.name));
        Ok(())
    }
}

/// The nftables table [`Host::isolate_from`] owns.
pub const PARTITION_TABLE: &str = "nodekit-partition";
