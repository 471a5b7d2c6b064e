//! Starting processes inside a pod: container processes (join the pod netns, own mount and UTS
//! namespaces with the pod hostname, private /tmp, resolv.conf and bind mounts, memory cgroup)
//! and exec processes (join the namespaces of a running container).
use crate::error::{Error, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// A bind mount for a container.
#[derive(Debug, Clone)]
pub struct BindMount {
    /// Host path.
    pub src: CString,
    /// Path inside the container view.
    pub dst: CString,
    /// Read-only.
    pub readonly: bool,
}

/// How to enter a pod for a new process.
#[derive(Debug, Default)]
pub struct Enter {
    /// Join this network namespace.
    pub netns: Option<OwnedFd>,
    /// Join this mount namespace (exec).
    pub mntns: Option<OwnedFd>,
    /// Join this UTS namespace (exec).
    pub utsns: Option<OwnedFd>,
    /// Make new mount and UTS namespaces with this hostname and these mounts (container).
    pub fresh: Option<Fresh>,
    /// `cgroup.procs` of the memory cgroup to join.
    pub cgroup_procs: Option<OwnedFd>,
    /// Working directory entered last.
    pub workdir: Option<CString>,
    /// (fd, target) pairs duplicated into the child (kept across exec).
    pub dup_fds: Vec<(OwnedFd, RawFd)>,
}

/// The private view of a new container.
#[derive(Debug, Clone)]
pub struct Fresh {
    /// Hostname (empty: keep).
    pub hostname: String,
    /// resolv.conf to bind over /etc/resolv.conf.
    pub resolv_conf: Option<CString>,
    /// Request mounts.
    pub mounts: Vec<BindMount>,
}

/// A C string of a path.
pub fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidArgument(format!("path with NUL: {}", p.display())))
}

fn mnt(src: Option<&std::ffi::CStr>, dst: &std::ffi::CStr, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> std::io::Result<()> {
    mount(src, dst, fstype, flags, data).map_err(std::io::Error::from)
}

fn setup_fresh(f: &Fresh) -> std::io::Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).map_err(std::io::Error::from)?;
    if !f.hostname.is_empty() {
        nix::unistd::sethostname(OsStr::new(&f.hostname)).map_err(std::io::Error::from)?;
    }
    mnt(None, c"/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    // Sources may live below /tmp (state dir, emptyDir paths): pin them before /tmp is covered.
    if let Some(r) = &f.resolv_conf
        && Path::new("/etc/resolv.conf").exists() {
            mnt(Some(r), c"/etc/resolv.conf", None, MsFlags::MS_BIND, None)?;
        }
    let mut pinned = Vec::with_capacity(f.mounts.len());
    for m in &f.mounts {
        let fd = open(m.src.as_c_str(), OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(std::io::Error::from)?;
        let is_dir = Path::new(OsStr::from_bytes(m.src.as_bytes())).is_dir();
        pinned.push((fd, is_dir));
    }
    mnt(Some(c"tmpfs"), c"/tmp", Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    for (m, (fd, src_is_dir)) in f.mounts.iter().zip(&pinned) {
        let dst = Path::new(OsStr::from_bytes(m.dst.as_bytes()));
        if !dst.exists() {
            if !dst.starts_with("/tmp") {
                continue; // cannot create mount points on the shared host filesystem
            }
            if *src_is_dir {
                std::fs::create_dir_all(dst)?;
            } else {
                if let Some(p) = dst.parent() {
                    std::fs::create_dir_all(p)?;
                }
                std::fs::File::create(dst)?;
            }
        }
        let src = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(std::io::Error::other)?;
        mnt(Some(&src), &m.dst, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        if m.readonly {
            mnt(None, &m.dst, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
        }
    }
    Ok(())
}

fn child_setup(
    netns: Option<RawFd>,
    mntns: Option<RawFd>,
    utsns: Option<RawFd>,
    fresh: Option<&Fresh>,
    cgroup: Option<RawFd>,
    workdir: Option<&CString>,
    dups: &[(RawFd, RawFd)],
) -> std::io::Result<()> {
    // Every fd below is owned by the parent's `Enter`, which outlives the fork and exec.
    let b = |fd: RawFd| -> BorrowedFd<'static> {
        #[allow(unsafe_code)]
        // SAFETY: the fd is kept open by the parent's `Enter` for the whole pre_exec phase.
        unsafe {
            BorrowedFd::borrow_raw(fd)
        }
    };
    if let Some(fd) = cgroup {
        nix::unistd::write(b(fd), b"0").map_err(std::io::Error::from)?;
    }
    if let Some(fd) = netns {
        setns(b(fd), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
    }
    if let Some(fd) = utsns {
        setns(b(fd), CloneFlags::CLONE_NEWUTS).map_err(std::io::Error::from)?;
    }
    if let Some(fd) = mntns {
        setns(b(fd), CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
    }
    if let Some(f) = fresh {
        setup_fresh(f)?;
    }
    for (from, to) in dups {
        #[allow(unsafe_code)]
        // SAFETY: plain dup2 on fds that are open in this (child) process; the target fd number
        // is reserved for this purpose and not owned by any Rust object in the child.
        let r = unsafe { libc::dup2(*from, *to) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    if let Some(w) = workdir {
        nix::unistd::chdir(w.as_c_str()).map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Installs the namespace entry into `cmd` (and puts the process in its own process group).
/// `enter` must be kept alive until `spawn()` has returned.
pub fn prepare(cmd: &mut std::process::Command, enter: &Enter) {
    let netns = enter.netns.as_ref().map(|f| f.as_raw_fd());
    let mntns = enter.mntns.as_ref().map(|f| f.as_raw_fd());
    let utsns = enter.utsns.as_ref().map(|f| f.as_raw_fd());
    let cgroup = enter.cgroup_procs.as_ref().map(|f| f.as_raw_fd());
    let fresh = enter.fresh.clone();
    let workdir = enter.workdir.clone();
    let dups: Vec<(RawFd, RawFd)> = enter.dup_fds.iter().map(|(f, t)| (f.as_fd().as_raw_fd(), *t)).collect();
    cmd.process_group(0);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec. It only calls async-signal-safe
    // system calls (setns, unshare, mount, sethostname, write, dup2, chdir) plus, for request
    // mounts below /tmp, directory creation; all data it reads was prepared before the fork.
    unsafe {
        cmd.pre_exec(move || child_setup(netns, mntns, utsns, fresh.as_ref(), cgroup, workdir.as_ref(), &dups));
    }
}

/// Opens `path` and returns the fd with a `/proc/self/fd/N` path that execs it. The child
/// inherits the fd (same number) and the kernel resolves the path before closing CLOEXEC fds, so
/// the binary runs even where the container's mounts cover its path (a private /tmp).
pub fn pinned_program(path: &Path) -> Result<(OwnedFd, std::path::PathBuf)> {
    let f = std::fs::File::open(path).map_err(Error::io(format!("open program {}", path.display())))?;
    let fd = OwnedFd::from(f);
    let p = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok((fd, p))
}

/// Opens a namespace of a process (`net`, `mnt`, `uts`).
pub fn open_ns(pid: i32, kind: &str) -> Result<OwnedFd> {
    let p = format!("/proc/{pid}/ns/{kind}");
    let f = std::fs::File::open(&p).map_err(Error::io(format!("open {p}")))?;
    Ok(OwnedFd::from(f))
}

/// Opens `cgroup.procs` of a cgroup directory for writing.
pub fn open_cgroup_procs(dir: &Path) -> Result<OwnedFd> {
    let p = dir.join("cgroup.procs");
    let f = std::fs::OpenOptions::new().write(true).open(&p).map_err(Error::io(format!("open {}", p.display())))?;
    Ok(OwnedFd::from(f))
}
