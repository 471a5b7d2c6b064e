//! The pod's hostname and the kubelet-managed `/etc/hosts` of its containers, as upstream's
//! kubelet makes them (`pkg/kubelet/kubelet_pods.go`: `GeneratePodHostNameAndDomain`,
//! `makeHostsMount`, `managedHostsFileContent`, `nodeHostsFileContent`;
//! `pkg/kubelet/util/util.go`: `GetNodenameForKernel`).
//!
//! The file is `<pod dir>/etc-hosts`, written before each container is created and bound at its
//! `/etc/hosts`; a container that mounts a volume at `/etc/hosts` itself keeps that.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, HostAlias, Pod};

use super::spec::{SpecContext, pod_dir, pod_uid};

/// Where the file is bound in a container.
pub const ETC_HOSTS: &str = "/etc/hosts";
/// The first line of a pod's own file (upstream's `managedHostsHeader`).
pub const HEADER: &str = "# Kubernetes-managed hosts file.\n";
/// The first line of a host-network pod's file, the node's own followed by the aliases
/// (upstream's `managedHostsHeaderWithHostNetwork`).
pub const HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";
/// The longest kernel hostname a FQDN may give (upstream's `fqdnMaxLen`).
const FQDN_MAX: usize = 64;

/// The pod's short hostname: `spec.hostname`, else its name, cut at 63 characters without a
/// trailing `-` or `.` (upstream's `truncatePodHostnameIfNeeded`).
pub fn hostname(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let mut h = spec.and_then(|s| s.hostname.clone()).filter(|h| !h.is_empty()).unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    h.truncate(63);
    h.trim_end_matches(['-', '.']).to_string()
}

/// The pod's domain, `<subdomain>.<namespace>.svc.<cluster domain>`, when it has a subdomain.
pub fn domain(pod: &Pod, ctx: &SpecContext) -> Option<String> {
    let sub = pod.spec.as_ref().and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty())?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let cluster = ctx.cluster_domain.as_deref().unwrap_or("cluster.local");
    Some(format!("{sub}.{ns}.svc.{cluster}"))
}

/// The sandbox's (kernel) hostname: the FQDN `<hostname>.<domain>` with `setHostnameAsFQDN`
/// and a domain, else the short hostname; a FQDN longer than 64 characters is refused with
/// upstream's text.
pub fn kernel_hostname(pod: &Pod, ctx: &SpecContext) -> Result<String, String> {
    let short = hostname(pod);
    let fqdn_asked = pod.spec.as_ref().and_then(|s| s.set_hostname_as_fqdn) == Some(true);
    match domain(pod, ctx) {
        Some(d) if fqdn_asked => {
            let fqdn = format!("{short}.{d}");
            if fqdn.len() > FQDN_MAX {
                return Err(format!(
                    "failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({FQDN_MAX} characters is the max, {} characters requested)",
                    fqdn.len()
                ));
            }
            Ok(fqdn)
        }
        _ => Ok(short),
    }
}

fn host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

/// Whether container `c` gets the managed file: the pod has an IP (a host-network pod has the
/// node's; upstream mounts nothing while the IP is unknown) and `c` mounts nothing at
/// `/etc/hosts` itself.
pub fn mounted(pod: &Pod, pod_ip: Option<&str>, c: &Container) -> bool {
    let has_ip = host_network(pod) || pod_ip.is_some_and(|ip| !ip.is_empty());
    has_ip && !crate::faults::active(crate::faults::Fault::UnmanagedEtcHosts) && !c.volume_mounts.iter().flatten().any(|m| m.mount_path == ETC_HOSTS)
}

/// The pod's file on the node.
pub fn path(root: &Path, pod: &Pod) -> PathBuf {
    pod_dir(root, &pod_uid(pod)).join("etc-hosts")
}

/// The file of a pod with its own network: localhost entries, the pod's IP with its names, then
/// the aliases.
pub fn managed_content(ips: &[&str], hostname: &str, domain: Option<&str>, aliases: &[HostAlias]) -> String {
    let mut out = String::from(HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in ips {
        match domain {
            Some(d) => out.push_str(&format!("{ip}\t{hostname}.{d}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    out.push_str(&alias_entries(aliases));
    out
}

/// The file of a host-network pod: the node's `/etc/hosts`, then the aliases.
pub fn host_network_content(node_hosts: &str, aliases: &[HostAlias]) -> String {
    format!("{HEADER_HOST_NETWORK}{node_hosts}{}", alias_entries(aliases))
}

/// One line per alias: its IP and every hostname, tab-separated, after a blank line and a
/// comment (nothing without aliases).
fn alias_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        out.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.clone().unwrap_or_default().join("\t")));
    }
    out
}

/// Writes the pod's file (mode 0644) for a container about to be created, reading the node's
/// `/etc/hosts` for a host-network pod; returns its path.
pub fn write(pod: &Pod, pod_ip: Option<&str>, ctx: &SpecContext) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let aliases = pod.spec.as_ref().and_then(|s| s.host_aliases.clone()).unwrap_or_default();
    let text = if host_network(pod) {
        let node = std::fs::read_to_string(ETC_HOSTS).map_err(|e| format!("reading {ETC_HOSTS}: {e}"))?;
        host_network_content(&node, &aliases)
    } else {
        let ips: Vec<&str> = pod_ip.into_iter().collect();
        managed_content(&ips, &hostname(pod), domain(pod, ctx).as_deref(), &aliases)
    };
    let file = path(&ctx.root_dir, pod);
    let written = file
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::write(&file, text))
        .and_then(|_| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)));
    written.map_err(|e| format!("writing {}: {e}", file.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
