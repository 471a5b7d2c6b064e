//! Facts about the host the node reports: sizes, kernel, OS image, IDs, address.

use std::net::IpAddr;
use std::path::Path;

/// Host facts read once at start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostFacts {
    pub hostname: String,
    pub cpus: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub boot_id: String,
    pub machine_id: String,
    pub architecture: String,
}

/// Kubernetes architecture name for the build target.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        other => other,
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Reads the host's facts; `root_dir` is where ephemeral storage lives.
pub fn read_host_facts(root_dir: &Path) -> HostFacts {
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo_total(&t))
        .unwrap_or(0);
    let storage_path = if root_dir.exists() { root_dir } else { Path::new("/") };
    let ephemeral_storage_bytes = nix::sys::statvfs::statvfs(storage_path)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0);
    let os_image = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| parse_os_release(&t))
        .unwrap_or_else(|| "Linux".to_string());
    HostFacts {
        hostname: nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default(),
        cpus: std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1),
        memory_bytes,
        ephemeral_storage_bytes,
        kernel_version: read_trim("/proc/sys/kernel/osrelease"),
        os_image,
        boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
        machine_id: read_trim("/etc/machine-id"),
        architecture: go_arch().to_string(),
    }
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// PRETTY_NAME from /etc/os-release.
pub fn parse_os_release(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("PRETTY_NAME="))?;
    Some(line["PRETTY_NAME=".len()..].trim_matches('"').to_string())
}

/// The first non-loopback IPv4 address of an interface that is up.
pub fn detect_node_ip() -> Option<IpAddr> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if !ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP)
            || ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
        {
            continue;
        }
        if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            return Some(IpAddr::V4(sin.ip()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(parse_meminfo_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"), Some(16384 * 1024));
        assert_eq!(
            parse_os_release("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }
}
