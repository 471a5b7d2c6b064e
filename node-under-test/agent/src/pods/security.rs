//! A pod's security settings as upstream's kubelet hands them to the runtime: the effective
//! security context of each container (pod-level settings with the container's own on top),
//! the sandbox's, the namespace modes (hostNetwork / hostPID / hostIPC /
//! shareProcessNamespace) and sysctls — plus the names of the fields this agent does not pass
//! on, for the Warning event that names them.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSecurityContext, SecurityContext};

use crate::cri::api;

fn pod_sc(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref()?.security_context.as_ref()
}

fn int64(v: Option<i64>) -> Option<api::Int64Value> {
    v.map(|value| api::Int64Value { value })
}

/// Namespace modes: network Node for hostNetwork, pid Node for hostPID and Pod for
/// shareProcessNamespace (else Container), ipc Node for hostIPC (else Pod).
pub fn namespace_options(pod: &Pod) -> Option<api::NamespaceOption> {
    let spec = pod.spec.as_ref();
    let flag = |f: fn(&k8s_openapi::api::core::v1::PodSpec) -> Option<bool>| spec.and_then(f).unwrap_or(false);
    let mode = |host: bool, pod_level: bool, otherwise: api::NamespaceMode| {
        if host {
            api::NamespaceMode::Node as i32
        } else if pod_level {
            api::NamespaceMode::Pod as i32
        } else {
            otherwise as i32
        }
    };
    Some(api::NamespaceOption {
        network: mode(flag(|s| s.host_network), true, api::NamespaceMode::Pod),
        pid: mode(flag(|s| s.host_pid), flag(|s| s.share_process_namespace), api::NamespaceMode::Container),
        ipc: mode(flag(|s| s.host_ipc), true, api::NamespaceMode::Pod),
        ..Default::default()
    })
}

/// Supplemental groups: the pod's list, then fsGroup (as upstream adds it).
fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let Some(sc) = pod_sc(pod) else { return Vec::new() };
    let mut groups: Vec<i64> = sc.supplemental_groups.clone().unwrap_or_default();
    if let Some(g) = sc.fs_group
        && !groups.contains(&g)
    {
        groups.push(g);
    }
    groups
}

fn privileged(c: &Container) -> bool {
    c.security_context.as_ref().and_then(|s| s.privileged).unwrap_or(false)
}

/// The sandbox's security context: pod-level user and groups, privileged when any container
/// is, and the namespace modes.
pub fn sandbox_security(pod: &Pod) -> api::LinuxSandboxSecurityContext {
    let sc = pod_sc(pod);
    let spec = pod.spec.as_ref();
    let any_privileged = spec.is_some_and(|s| s.containers.iter().chain(s.init_containers.iter().flatten()).any(privileged));
    api::LinuxSandboxSecurityContext {
        namespace_options: namespace_options(pod),
        run_as_user: int64(sc.and_then(|s| s.run_as_user)),
        run_as_group: int64(sc.and_then(|s| s.run_as_group)),
        supplemental_groups: supplemental_groups(pod),
        privileged: any_privileged,
        ..Default::default()
    }
}

/// The container's effective security context (upstream's determineEffectiveSecurityContext).
pub fn container_security(pod: &Pod, c: &Container) -> api::LinuxContainerSecurityContext {
    let psc = pod_sc(pod);
    let csc: Option<&SecurityContext> = c.security_context.as_ref();
    let run_as_user = csc.and_then(|s| s.run_as_user).or(psc.and_then(|s| s.run_as_user));
    let run_as_group = csc.and_then(|s| s.run_as_group).or(psc.and_then(|s| s.run_as_group));
    let caps = csc.and_then(|s| s.capabilities.as_ref());
    api::LinuxContainerSecurityContext {
        capabilities: caps.map(|c| api::Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            ..Default::default()
        }),
        privileged: privileged(c),
        namespace_options: namespace_options(pod),
        run_as_user: int64(run_as_user),
        run_as_group: int64(run_as_group),
        readonly_rootfs: csc.and_then(|s| s.read_only_root_filesystem).unwrap_or(false),
        supplemental_groups: supplemental_groups(pod),
        // Upstream sets no_new_privs only when allowPrivilegeEscalation is explicitly false.
        no_new_privs: csc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        ..Default::default()
    }
}

/// The pod's sysctls for the sandbox.
pub fn sysctls(pod: &Pod) -> HashMap<String, String> {
    pod_sc(pod).and_then(|s| s.sysctls.as_ref()).into_iter().flatten().map(|s| (s.name.clone(), s.value.clone())).collect()
}

/// Paths of the set pod fields this agent does not honour: security fields it does not hand to
/// the runtime.
pub fn unhonoured(pod: &Pod) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sc) = pod_sc(pod) {
        let base = "spec.securityContext";
        for (set, name) in [
            (sc.se_linux_options.is_some(), "seLinuxOptions"),
            (sc.seccomp_profile.is_some(), "seccompProfile"),
            (sc.app_armor_profile.is_some(), "appArmorProfile"),
            (sc.run_as_non_root.is_some(), "runAsNonRoot"),
            (sc.fs_group_change_policy.is_some(), "fsGroupChangePolicy"),
            (sc.supplemental_groups_policy.is_some(), "supplementalGroupsPolicy"),
            (sc.windows_options.is_some(), "windowsOptions"),
            (sc.se_linux_change_policy.is_some(), "seLinuxChangePolicy"),
        ] {
            if set {
                out.push(format!("{base}.{name}"));
            }
        }
        if sc.fs_group.is_some() {
            out.push(format!("{base}.fsGroup (volume ownership; the group is added to the containers' supplemental groups)"));
        }
    }
    if pod.spec.as_ref().and_then(|s| s.host_users) == Some(false) {
        out.push("spec.hostUsers".into());
    }
    let spec = pod.spec.as_ref();
    let all = spec.into_iter().flat_map(|s| s.init_containers.iter().flatten().map(|c| ("initContainers", c)).chain(s.containers.iter().map(|c| ("containers", c))));
    for (list, c) in all {
        let Some(sc) = c.security_context.as_ref() else { continue };
        for (set, name) in [
            (sc.se_linux_options.is_some(), "seLinuxOptions"),
            (sc.seccomp_profile.is_some(), "seccompProfile"),
            (sc.app_armor_profile.is_some(), "appArmorProfile"),
            (sc.run_as_non_root.is_some(), "runAsNonRoot"),
            (sc.proc_mount.is_some(), "procMount"),
            (sc.windows_options.is_some(), "windowsOptions"),
        ] {
            if set {
                out.push(format!("spec.{list}[{}].securityContext.{name}", c.name));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "spec": v})).unwrap()
    }

    #[test]
    fn container_settings_override_the_pods() {
        let p = pod(serde_json::json!({
            "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "supplementalGroups": [3000], "fsGroup": 4000},
            "containers": [{"name": "c", "securityContext": {"runAsUser": 1001, "readOnlyRootFilesystem": true,
                "allowPrivilegeEscalation": false, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}],
        }));
        let sc = container_security(&p, &p.spec.as_ref().unwrap().containers[0]);
        assert_eq!(sc.run_as_user.map(|v| v.value), Some(1001));
        assert_eq!(sc.run_as_group.map(|v| v.value), Some(2000));
        assert_eq!(sc.supplemental_groups, [3000, 4000]);
        assert!(sc.readonly_rootfs && sc.no_new_privs && !sc.privileged);
        let caps = sc.capabilities.unwrap();
        assert_eq!((caps.add_capabilities, caps.drop_capabilities), (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()]));
        let sb = sandbox_security(&p);
        assert_eq!(sb.run_as_user.map(|v| v.value), Some(1000));
    }

    #[test]
    fn namespace_modes() {
        let ns = |v| namespace_options(&pod(v)).unwrap();
        let plain = ns(serde_json::json!({"containers": []}));
        assert_eq!((plain.network, plain.pid, plain.ipc), (api::NamespaceMode::Pod as i32, api::NamespaceMode::Container as i32, api::NamespaceMode::Pod as i32));
        let host = ns(serde_json::json!({"containers": [], "hostNetwork": true, "hostPID": true, "hostIPC": true}));
        assert_eq!((host.network, host.pid, host.ipc), (api::NamespaceMode::Node as i32, api::NamespaceMode::Node as i32, api::NamespaceMode::Node as i32));
        let shared = ns(serde_json::json!({"containers": [], "shareProcessNamespace": true}));
        assert_eq!(shared.pid, api::NamespaceMode::Pod as i32);
    }

    #[test]
    fn unhonoured_fields_are_named() {
        let p = pod(serde_json::json!({
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "securityContext": {"procMount": "Unmasked", "runAsUser": 1}}],
        }));
        assert_eq!(unhonoured(&p), ["spec.securityContext.seccompProfile", "spec.containers[c].securityContext.procMount"]);
        assert!(unhonoured(&pod(serde_json::json!({"containers": [{"name": "c"}]}))).is_empty());
        let p = pod(serde_json::json!({
            "imagePullSecrets": [{"name": "regcred"}], "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}], "setHostnameAsFQDN": true,
            "containers": [{"name": "c"}],
        }));
        assert!(
            unhonoured(&p).is_empty(),
            "image pull secrets (effects::pull), hostAliases and setHostnameAsFQDN (pods::etc_hosts) are applied"
        );
    }
}
