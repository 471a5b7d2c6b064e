//! Packet capture: an AF_PACKET socket inside a host, bound to one interface, written as
//! classic libpcap (microsecond timestamps, Ethernet, snaplen 262144) and flushed per batch.
//!
//! Records are in the order the kernel queued them on the socket (both directions); their
//! timestamps are the kernel's (`SO_TIMESTAMPNS`), which may interleave by microseconds
//! between packets handled on different CPUs, exactly as in tcpdump.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::IoSliceMut;

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeSpec;
use tokio::sync::oneshot;

use crate::error::{Context, Error, Result};
use crate::packets::{Packet, read_pcap};
use crate::world::Host;

/// Snapshot length written in the pcap header and applied to records.
pub const SNAPLEN: u32 = 262_144;

/// A running capture. [`Capture::stop`] returns everything captured; dropping it stops the
/// capture too (keeping the file).
#[derive(Debug)]
pub struct Capture {
    path: PathBuf,
    label: String,
    stop_w: Option<OwnedFd>,
    done: Option<oneshot::Receiver<Result<u64>>>,
}

fn open_socket(ifname: &str) -> Result<OwnedFd> {
    // Protocol 0: the socket receives nothing until it is bound to the interface below, so it
    // never sees packets of other interfaces.
    let fd = socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
        .ctx(|| "socket(AF_PACKET)".into())?;
    let index = nix::net::if_::if_nametoindex(ifname).ctx(|| format!("no interface {ifname}"))?;
    // Kernel receive timestamps: packets drained in a batch keep their own arrival times.
    setsockopt(&fd, sockopt::ReceiveTimestampns, &true).ctx(|| "SO_TIMESTAMPNS".into())?;
    if setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20)).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &(8 << 20));
    }
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    #[allow(unsafe_code)]
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = index as i32;
    // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size; fd is open.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::io(format!("binding AF_PACKET to {ifname}"), std::io::Error::last_os_error()));
    }
    Ok(fd)
}

fn write_header(w: &mut impl Write) -> std::io::Result<()> {
    w.write_all(&0xa1b2_c3d4u32.to_ne_bytes())?;
    w.write_all(&2u16.to_ne_bytes())?;
    w.write_all(&4u16.to_ne_bytes())?;
    w.write_all(&0i32.to_ne_bytes())?;
    w.write_all(&0u32.to_ne_bytes())?;
    w.write_all(&SNAPLEN.to_ne_bytes())?;
    w.write_all(&1u32.to_ne_bytes())?; // LINKTYPE_ETHERNET
    w.flush()
}

/// Reads every packet queued on the socket; returns how many were written.
fn drain(sock: &OwnedFd, buf: &mut [u8], w: &mut impl Write) -> std::io::Result<u64> {
    let mut n = 0;
    loop {
        let mut cmsg = nix::cmsg_space!(TimeSpec);
        let received = {
            let mut iov = [IoSliceMut::new(buf)];
            recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC)
                .map(|m| {
                    let ts = m.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|c| match c {
                            ControlMessageOwned::ScmTimestampns(t) => Some(t),
                            _ => None,
                        })
                    });
                    (m.bytes, ts)
                })
        };
        match received {
            Ok((len, ts)) => {
                let t = match ts {
                    Some(ts) => Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec().clamp(0, 999_999_999) as u32),
                    None => SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default(),
                };
                let incl = len.min(buf.len()).min(SNAPLEN as usize);
                w.write_all(&(t.as_secs() as u32).to_ne_bytes())?;
                w.write_all(&t.subsec_micros().to_ne_bytes())?;
                w.write_all(&(incl as u32).to_ne_bytes())?;
                w.write_all(&(len as u32).to_ne_bytes())?;
                w.write_all(&buf[..incl])?;
                n += 1;
            }
            Err(Errno::EAGAIN) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn run(sock: OwnedFd, stop_r: OwnedFd, file: File) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; SNAPLEN as usize + 64];
    let mut total = 0;
    loop {
        let (readable, stopping) = {
            let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN), PollFd::new(stop_r.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("polling a capture socket", e)),
                Ok(_) => {}
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if readable || stopping {
            total += drain(&sock, &mut buf, &mut w).ctx(|| "capturing".into())?;
            w.flush().ctx(|| "flushing a pcap".into())?;
        }
        if stopping {
            return Ok(total);
        }
    }
}

impl Capture {
    /// Starts capturing on `ifname` inside `host` into `pcap` (created/truncated). The socket
    /// is bound before this returns, so traffic sent afterwards is captured.
    pub fn start(host: &Host, ifname: &str, pcap: impl AsRef<Path>) -> Result<Capture> {
        let path = pcap.as_ref().to_path_buf();
        let label = format!("{}/{ifname}", host.name());
        let sock = host.run(|| open_socket(ifname))?.map_err(|e| Error::Child(format!("{label}: {e}")))?;
        let mut file = File::create(&path).ctx(|| format!("creating {}", path.display()))?;
        write_header(&mut file).ctx(|| format!("writing {}", path.display()))?;
        let (stop_r, stop_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe2".into())?;
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("capture {label}"))
            .spawn(move || {
                let _ = tx.send(run(sock, stop_r, file));
            })
            .ctx(|| "starting a capture thread".into())?;
        Ok(Capture { path, label, stop_w: Some(stop_w), done: Some(rx) })
    }

    /// Starts a capture on `<host>/<ifname>` into `<artifacts>/<host>-<ifname>.pcap`.
    pub fn start_in_artifacts(host: &Host, ifname: &str) -> Result<Capture> {
        let file = format!("{}-{ifname}.pcap", host.name());
        Capture::start(host, ifname, host.artifacts.path(&file))
    }

    /// The pcap file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `host/ifname`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Stops: drains every packet already queued on the socket, flushes and closes the file,
    /// and returns the decoded packets.
    pub async fn stop(mut self) -> Result<Vec<Packet>> {
        drop(self.stop_w.take());
        let done = self.done.take().ok_or_else(|| Error::Child("capture already stopped".into()))?;
        let count = done.await.map_err(|_| Error::Child(format!("capture {} thread died", self.label)))??;
        let packets = read_pcap(&self.path)?;
        if packets.len() as u64 != count {
            return Err(Error::Pcap {
                path: self.path.clone(),
                why: format!("wrote {count} packets but read back {}", packets.len()),
            });
        }
        Ok(packets)
    }
}
