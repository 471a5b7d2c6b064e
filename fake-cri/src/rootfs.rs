//! A container's root filesystem: an overlay whose lower layer is the runtime's root filesystem
//! and whose writable layer lives on a tmpfs private to the container (read-only when the
//! security context asks for it), with the runtime's other mounts bound in, a private /tmp and
//! /run,
//! resolv.conf, /etc/hostname and the request mounts; then `pivot_root` into it. Writes to the
//! root filesystem stay inside the container, as with containerd's snapshots.
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Where the container's tmpfs (writable layer and new root) is staged before `pivot_root`.
const STAGE: &str = "/tmp";
/// The new root below [`STAGE`].
const NEW_ROOT: &str = "/tmp/root";

/// Top-level mount points below `/` of the calling process's mount namespace (each is bound
/// recursively into the container's root), except those at or below /tmp, which the
/// container's private /tmp covers anyway. Read in the runtime, before the fork.
pub fn top_mounts() -> Vec<CString> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return vec![] };
    let rows: Vec<(u64, u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let id = f.next()?.parse().ok()?;
            let parent = f.next()?.parse().ok()?;
            let mp = f.nth(2)?.replace("\\040", " ");
            Some((id, parent, mp))
        })
        .collect();
    // The mount visible at `/` is the last one mounted there.
    let Some(root) = rows.iter().rev().find(|(_, _, mp)| mp == "/").map(|r| r.0) else { return vec![] };
    let mut out: Vec<CString> = Vec::new();
    for (_, parent, mp) in &rows {
        if *parent != root || mp == "/" || Path::new(mp).starts_with(STAGE) || Path::new(mp).starts_with("/run") {
            continue;
        }
        if let Ok(c) = CString::new(mp.as_bytes())
            && !out.contains(&c) {
                out.push(c);
            }
    }
    out
}

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from(e)
}

fn mnt(src: Option<&CStr>, dst: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> std::io::Result<()> {
    mount(src, dst, fstype, flags, data).map_err(io)
}

/// `/proc/self/fd/N` of a pinned source.
fn fd_path(fd: &OwnedFd) -> CString {
    // A decimal number never contains NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// `p` (absolute, in the container's view) below the staged new root.
fn staged(p: &CStr) -> PathBuf {
    let rel = Path::new(OsStr::from_bytes(p.to_bytes())).strip_prefix("/").unwrap_or(Path::new(OsStr::from_bytes(p.to_bytes())));
    Path::new(NEW_ROOT).join(rel)
}

/// A source pinned (O_PATH) before anything covers its path.
pub struct Pinned {
    fd: OwnedFd,
    is_dir: bool,
}

/// Pins `src` (a host path).
pub fn pin(src: &CStr) -> std::io::Result<Pinned> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let fd = open(src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(io)?;
    let is_dir = Path::new(OsStr::from_bytes(src.to_bytes())).is_dir();
    Ok(Pinned { fd, is_dir })
}

/// Stages the new root: tmpfs at /tmp holding the overlay's upper and work dirs and the new
/// root, the runtime's other mounts bound in, a fresh tmpfs at its /tmp. Falls back to a plain
/// bind of `/` (writes reach the runtime's root) when overlayfs refuses the mount.
pub fn stage(top: &[CString]) -> std::io::Result<()> {
    mnt(Some(c"tmpfs"), Path::new(STAGE), Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=700"))?;
    for d in ["upper", "work", "root"] {
        std::fs::create_dir(Path::new(STAGE).join(d))?;
    }
    let data = format!("lowerdir=/,upperdir={STAGE}/upper,workdir={STAGE}/work");
    if mnt(Some(c"overlay"), Path::new(NEW_ROOT), Some("overlay"), MsFlags::empty(), Some(&data)).is_err() {
        mnt(Some(c"/"), Path::new(NEW_ROOT), None, MsFlags::MS_BIND, None)?;
    }
    for mp in top {
        let target = staged(mp);
        if target.exists() {
            mnt(Some(mp), &target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        }
    }
    mnt(Some(c"tmpfs"), &staged(c"/tmp"), Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    // /run is the container's own, as an image's empty /run is: the runtime's state under it is
    // not the container's business, and mount points below it (a ServiceAccount volume at
    // /var/run/secrets/…) can be made.
    let run = staged(c"/run");
    if run.is_dir() {
        mnt(Some(c"tmpfs"), &run, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=755"))?;
    }
    Ok(())
}

/// `dst` (absolute, in the container's view) below the staged new root, with every symlink on
/// the way resolved inside that root (an absolute link target starts again at the new root,
/// never at the runtime's), as a mount point must be found in the container's filesystem.
fn resolved(dst: &CStr) -> PathBuf {
    let mut todo: Vec<std::ffi::OsString> = Path::new(OsStr::from_bytes(dst.to_bytes()))
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut at = PathBuf::from(NEW_ROOT);
    let mut hops = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            if at != Path::new(NEW_ROOT) {
                at.pop();
            }
            continue;
        }
        let next = at.join(&name);
        match std::fs::read_link(&next) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    at = PathBuf::from(NEW_ROOT);
                }
                for c in target.components().rev() {
                    match c {
                        std::path::Component::Normal(n) => todo.push(n.to_os_string()),
                        std::path::Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => at = next,
        }
    }
    at
}

/// Binds a pinned file over `dst` (in the container's view) when `dst` exists.
pub fn bind_over(p: &Pinned, dst: &CStr) -> std::io::Result<()> {
    let target = staged(dst);
    if target.exists() {
        mnt(Some(&fd_path(&p.fd)), &target, None, MsFlags::MS_BIND, None)?;
    }
    Ok(())
}

/// Whether a missing mount point `target` may be created: its nearest existing ancestor is on
/// the container's own root or /tmp (never on a filesystem shared with the runtime).
fn creatable(target: &Path) -> bool {
    let own = |p: &str| std::fs::metadata(p).map(|m| m.dev()).ok();
    let owned = [own(NEW_ROOT), own(&format!("{NEW_ROOT}/tmp")), own(&format!("{NEW_ROOT}/run"))];
    let mut a = target.parent();
    while let Some(p) = a {
        if let Ok(m) = std::fs::metadata(p) {
            return owned.contains(&Some(m.dev()));
        }
        a = p.parent();
    }
    false
}

/// Binds a request mount (pinned source) at `dst`, creating the mount point where allowed;
/// skipped when the mount point is missing and cannot be created.
pub fn bind_request(p: &Pinned, dst: &CStr, readonly: bool) -> std::io::Result<()> {
    let target = resolved(dst);
    if !target.exists() {
        if !creatable(&target) {
            return Ok(());
        }
        if p.is_dir {
            std::fs::create_dir_all(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(&target)?;
        }
    }
    mnt(Some(&fd_path(&p.fd)), &target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    if readonly {
        mnt(None, &target, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
    }
    Ok(())
}

/// Makes the staged root read-only (when asked) and switches to it; the runtime's root is
/// detached from the container's mount namespace.
pub fn enter(readonly: bool) -> std::io::Result<()> {
    if readonly {
        mnt(None, Path::new(NEW_ROOT), None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
    }
    nix::unistd::chdir(NEW_ROOT).map_err(io)?;
    nix::unistd::pivot_root(".", ".").map_err(io)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(io)?;
    nix::unistd::chdir("/").map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_mounts_of_this_process() {
        let top = top_mounts();
        assert!(top.iter().any(|m| m.as_bytes() == b"/proc"), "{top:?}");
        assert!(top.iter().all(|m| m.as_bytes() != b"/" && !m.as_bytes().starts_with(b"/tmp")), "{top:?}");
        assert_eq!(staged(c"/etc/hostname"), Path::new("/tmp/root/etc/hostname"));
    }
}
