//! hostPath volume types, checked (and created for the `…OrCreate` types) before a container
//! that mounts the volume is created, as upstream's hostPath plugin does in `SetUp`
//! (`pkg/volume/hostpath/host_path.go`, `checkTypeInternal`): a failed check fails the mount
//! with upstream's text and the container is not created.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use k8s_openapi::api::core::v1::HostPathVolumeSource;

/// What the type asks of the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Dir,
    File,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Want {
    fn holds(self, t: std::fs::FileType) -> bool {
        match self {
            Want::Dir => t.is_dir(),
            Want::File => t.is_file(),
            Want::Socket => t.is_socket(),
            Want::CharDevice => t.is_char_device(),
            Want::BlockDevice => t.is_block_device(),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Want::Dir => "a directory",
            Want::File => "a file",
            Want::Socket => "a socket file",
            Want::CharDevice => "a character device",
            Want::BlockDevice => "a block device",
        }
    }
}

/// Checks `src`'s path against its type; a missing path of `DirectoryOrCreate` is created
/// (0755, parents too) and one of `FileOrCreate` created empty (0644, its directory must
/// exist). No type (or `""`) checks nothing.
pub fn check(src: &HostPathVolumeSource) -> Result<(), String> {
    let path = Path::new(&src.path);
    let (want, create) = match src.type_.as_deref().unwrap_or_default() {
        "" => return Ok(()),
        "DirectoryOrCreate" => (Want::Dir, true),
        "Directory" => (Want::Dir, false),
        "FileOrCreate" => (Want::File, true),
        "File" => (Want::File, false),
        "Socket" => (Want::Socket, false),
        "CharDevice" => (Want::CharDevice, false),
        "BlockDevice" => (Want::BlockDevice, false),
        other => return Err(format!("{other} is an invalid volume type")),
    };
    let exists = std::fs::symlink_metadata(path).is_ok();
    if create && !exists {
        return match want {
            Want::Dir => std::fs::create_dir_all(path).and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))),
            _ => std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))),
        }
        .map_err(|e| format!("creating {}: {e}", src.path));
    }
    match std::fs::metadata(path) {
        Ok(m) if want.holds(m.file_type()) => Ok(()),
        _ => Err(format!("hostPath type check failed: {} is not {}", src.path, want.what())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &Path, kind: &str) -> HostPathVolumeSource {
        HostPathVolumeSource { path: path.to_string_lossy().into_owned(), type_: Some(kind.into()) }
    }

    /// Catches a type that is not checked, a check with other words than upstream's, and an
    /// `…OrCreate` that does not create (or creates over what is there).
    #[test]
    fn types_are_checked_and_created_as_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let missing = dir.path().join("missing");
        assert_eq!(check(&src(&missing, "")), Ok(()));
        assert_eq!(check(&src(&file, "File")), Ok(()));
        assert_eq!(check(&src(dir.path(), "Directory")), Ok(()));
        assert_eq!(check(&src(&file, "Directory")), Err(format!("hostPath type check failed: {} is not a directory", file.display())));
        assert_eq!(check(&src(dir.path(), "File")), Err(format!("hostPath type check failed: {} is not a file", dir.path().display())));
        assert_eq!(check(&src(&missing, "File")), Err(format!("hostPath type check failed: {} is not a file", missing.display())));
        assert_eq!(check(&src(&file, "Socket")), Err(format!("hostPath type check failed: {} is not a socket file", file.display())));
        assert_eq!(check(&src(&file, "CharDevice")), Err(format!("hostPath type check failed: {} is not a character device", file.display())));
        assert_eq!(check(&src(&file, "BlockDevice")), Err(format!("hostPath type check failed: {} is not a block device", file.display())));
        assert_eq!(check(&src(Path::new("/dev/null"), "CharDevice")), Ok(()));
        assert_eq!(check(&src(&file, "Fifo")), Err("Fifo is an invalid volume type".into()));
        // DirectoryOrCreate over a file is refused; FileOrCreate keeps what is there.
        assert_eq!(check(&src(&file, "DirectoryOrCreate")), Err(format!("hostPath type check failed: {} is not a directory", file.display())));
        assert_eq!(check(&src(&file, "FileOrCreate")), Ok(()));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
        let made = dir.path().join("a/b");
        assert_eq!(check(&src(&made, "DirectoryOrCreate")), Ok(()));
        assert_eq!(std::fs::metadata(&made).unwrap().permissions().mode() & 0o777, 0o755);
        let new_file = dir.path().join("a/new");
        assert_eq!(check(&src(&new_file, "FileOrCreate")), Ok(()));
        let m = std::fs::metadata(&new_file).unwrap();
        assert!(m.is_file() && m.len() == 0 && m.permissions().mode() & 0o777 == 0o644);
        assert!(check(&src(&dir.path().join("no/such/file"), "FileOrCreate")).is_err(), "FileOrCreate does not create directories");
    }
}
