//! Starting processes inside a pod: container processes (join the pod netns, own mount and UTS
//! namespaces with the pod hostname, an own root filesystem ([`crate::rootfs`]) with
//! /etc/hostname, a private /tmp, resolv.conf and bind mounts, memory cgroup) and exec
//! processes (join the namespaces of a running container); both then switch to the
//! container's user and groups.
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
    /// Credentials switched to after the namespaces are set up (None: stay root).
    pub user: Option<User>,
    /// The child's stdin is a terminal: it starts a session and takes that terminal as its
    /// controlling terminal (an exec with `tty`), instead of only a process group of its own.
    pub controlling_tty: bool,
}

/// The identity a container process runs as (`run_as_user`, `run_as_group`,
/// `supplemental_groups` of the container's linux security context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary groups (the primary gid is always among them, as runc does).
    pub groups: Vec<u32>,
}

impl User {
    /// The user from a container's linux security context; None when it asks for nothing
    /// (the image default, root). A group without a user keeps uid 0.
    pub fn from_security_context(sc: Option<&k8s_cri::v1::LinuxContainerSecurityContext>) -> Option<User> {
        let sc = sc?;
        let uid = sc.run_as_user.as_ref().map(|v| v.value);
        let gid = sc.run_as_group.as_ref().map(|v| v.value);
        if uid.is_none() && gid.is_none() && sc.supplemental_groups.is_empty() {
            return None;
        }
        let id = |v: i64| u32::try_from(v).unwrap_or(u32::MAX - 1);
        let gid = gid.map(id).unwrap_or(0);
        let mut groups = vec![gid];
        for g in &sc.supplemental_groups {
            let g = id(*g);
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        Some(User { uid: uid.map(id).unwrap_or(0), gid, groups })
    }
}

fn switch_user(u: &User) -> std::io::Result<()> {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    let groups: Vec<Gid> = u.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(std::io::Error::from)?;
    setgid(Gid::from_raw(u.gid)).map_err(std::io::Error::from)?;
    setuid(Uid::from_raw(u.uid)).map_err(std::io::Error::from)?;
    // A credential change clears the dumpable flag, which makes /proc/self/fd (the pinned
    // program's path) root-owned; the process stays dumpable as under runc.
    nix::sys::prctl::set_dumpable(true).map_err(std::io::Error::from)?;
    Ok(())
}

/// The private view of a new container.
#[derive(Debug, Clone)]
pub struct Fresh {
    /// Hostname (empty: keep).
    pub hostname: String,
    /// resolv.conf to bind over /etc/resolv.conf.
    pub resolv_conf: Option<CString>,
    /// The sandbox's hostname file to bind over /etc/hostname.
    pub hostname_file: Option<CString>,
    /// Request mounts.
    pub mounts: Vec<BindMount>,
    /// The runtime's top-level mounts to bind into the container's root
    /// ([`crate::rootfs::top_mounts`]).
    pub top_mounts: Vec<CString>,
    /// Mount the container's root filesystem read-only.
    pub readonly_rootfs: bool,
}

/// A C string of a path.
pub fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidArgument(format!("path with NUL: {}", p.display())))
}

fn setup_fresh(f: &Fresh) -> std::io::Result<()> {
    use crate::rootfs;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).map_err(std::io::Error::from)?;
    if !f.hostname.is_empty() {
        nix::unistd::sethostname(OsStr::new(&f.hostname)).map_err(std::io::Error::from)?;
    }
    mount(None::<&str>, c"/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).map_err(std::io::Error::from)?;
    // Sources may live below /tmp (state dir, emptyDir paths): pin them before /tmp is covered.
    let resolv = f.resolv_conf.as_deref().map(rootfs::pin).transpose()?;
    let hostname = f.hostname_file.as_deref().map(rootfs::pin).transpose()?;
    let pinned = f.mounts.iter().map(|m| rootfs::pin(&m.src)).collect::<std::io::Result<Vec<_>>>()?;
    rootfs::stage(&f.top_mounts)?;
    if let Some(r) = &resolv {
        rootfs::bind_over(r, c"/etc/resolv.conf")?;
    }
    if let Some(h) = &hostname {
        rootfs::bind_over(h, c"/etc/hostname")?;
    }
    for (m, p) in f.mounts.iter().zip(&pinned) {
        rootfs::bind_request(p, &m.dst, m.readonly)?;
    }
    rootfs::enter(f.readonly_rootfs)
}

#[allow(clippy::too_many_arguments)]
fn child_setup(
    netns: Option<RawFd>,
    mntns: Option<RawFd>,
    utsns: Option<RawFd>,
    fresh: Option<&Fresh>,
    cgroup: Option<RawFd>,
    workdir: Option<&CString>,
    dups: &[(RawFd, RawFd)],
    user: Option<&User>,
    controlling_tty: bool,
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
    if controlling_tty {
        // A new session (and process group) whose controlling terminal is stdin, as runc gives
        // a process with a console.
        nix::unistd::setsid().map_err(std::io::Error::from)?;
        #[allow(unsafe_code)]
        // SAFETY: TIOCSCTTY on fd 0, which std's stdio setup made the terminal before pre_exec.
        let r = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // Like runc: the user is switched after every namespace and mount, then the directory.
    if let Some(u) = user {
        switch_user(u)?;
    }
    if let Some(w) = workdir {
        nix::unistd::chdir(w.as_c_str()).map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Installs the namespace entry into `cmd` (and puts the process in its own process group, or
/// its own session with a controlling terminal).
/// `enter` must be kept alive until `spawn()` has returned.
pub fn prepare(cmd: &mut std::process::Command, enter: &Enter) {
    let netns = enter.netns.as_ref().map(|f| f.as_raw_fd());
    let mntns = enter.mntns.as_ref().map(|f| f.as_raw_fd());
    let utsns = enter.utsns.as_ref().map(|f| f.as_raw_fd());
    let cgroup = enter.cgroup_procs.as_ref().map(|f| f.as_raw_fd());
    let fresh = enter.fresh.clone();
    let workdir = enter.workdir.clone();
    let dups: Vec<(RawFd, RawFd)> = enter.dup_fds.iter().map(|(f, t)| (f.as_fd().as_raw_fd(), *t)).collect();
    let user = enter.user.clone();
    let tty = enter.controlling_tty;
    if !tty {
        cmd.process_group(0);
    }
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec. It only calls async-signal-safe
    // system calls (setns, unshare, mount, umount2, pivot_root, sethostname, open, write, dup2,
    // setgroups, setgid, setuid, prctl, chdir) plus directory and file creation on the
    // container's own tmpfs/overlay (staging dirs, request mount points) and small path
    // formatting; all data it reads (top mounts, paths, ids) was prepared before the fork.
    unsafe {
        cmd.pre_exec(move || child_setup(netns, mntns, utsns, fresh.as_ref(), cgroup, workdir.as_ref(), &dups, user.as_ref(), tty));
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
