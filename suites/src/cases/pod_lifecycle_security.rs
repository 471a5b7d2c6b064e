//! A pod's security settings reach the runtime: the effective user, group and supplementary
//! groups (pod-level settings, fsGroup added), a read-only root filesystem, and a Warning event
//! naming the fields this node does not apply.

use anyhow::{Context, ensure};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::{START, env};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait::{self, phase};
use crate::pods::{self, container, container_status};

/// The text container `c` of `p` wrote, read from the runtime's CRI log file.
async fn container_log(env: &NodeEnv, p: &Pod, c: &str) -> anyhow::Result<String> {
    let id = pods::runtime_container_id(p, c)?;
    let mut cri = crate::cri::connect(env.runtime.socket(), NODE).await?;
    let st = cri.status(&id).await.with_context(|| format!("ContainerStatus {id}"))?;
    let text = std::fs::read_to_string(&st.log_path).with_context(|| format!("reading {}", st.log_path))?;
    Ok(crate::cri::parse_log(&text)?.into_iter().map(|l| l.msg).collect::<Vec<_>>().join("\n"))
}

/// runAsUser / runAsGroup / supplementalGroups / fsGroup at pod level and
/// readOnlyRootFilesystem on a container: `id` in the container reports uid 1234, gid 2345 and
/// the groups 3456 and 4567; writing to the read-only root fails with EROFS; the pod's
/// seccompProfile and fsGroup's volume ownership, which this node does not apply, are named in
/// one Warning `UnsupportedField` event. Catches an agent that drops the security context
/// (the container would run as root) or drops fields without saying so.
pub fn security_context(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let mut ro = container("ro", &["touch", "/written-by-the-container"]);
        ro["securityContext"] = json!({"readOnlyRootFilesystem": true});
        let spec = json!({
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1234, "runAsGroup": 2345, "supplementalGroups": [3456], "fsGroup": 4567,
                "seccompProfile": {"type": "RuntimeDefault"}},
        });
        pods::create(&env.client, &pods::pod("secure", NODE, vec![container("who", &["id"]), ro], spec)?).await?;
        let p = kube_wait::pod(&env.client, "default", "secure", "both containers terminated", START, |p| {
            let done = |c| container_status(p, c).and_then(|s| s.state.as_ref()?.terminated.as_ref()).is_some();
            (done("who") && done("ro")).then(|| p.clone())
        })
        .await?;
        ensure!(phase(&p) == "Failed", "phase {} (the read-only root must refuse the write)", phase(&p));
        let who = container_log(&env, &p, "who").await?;
        let line = who.lines().find(|l| l.starts_with("uid=")).with_context(|| format!("`id` printed {who:?}"))?;
        ensure!(line.starts_with("uid=1234 gid=2345 groups="), "the container runs as {line:?}, expected uid=1234 gid=2345");
        let groups: Vec<&str> = line.rsplit_once("groups=").map(|(_, g)| g.split(',').collect()).unwrap_or_default();
        ensure!(groups.contains(&"3456") && groups.contains(&"4567"), "supplementary groups {groups:?} lack 3456 (supplementalGroups) or 4567 (fsGroup)");
        let ro_exit = container_status(&p, "ro").and_then(|s| s.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code));
        ensure!(ro_exit.is_some_and(|c| c != 0), "writing to a read-only root filesystem exited {ro_exit:?}");
        let ro_log = container_log(&env, &p, "ro").await?;
        ensure!(ro_log.contains("Read-only file system"), "the write to the read-only root failed otherwise: {ro_log:?}");
        let evs = pods::events_for(&env.client, "secure").await?;
        let unsupported: Vec<_> = evs.iter().filter(|e| e.reason.as_deref() == Some("UnsupportedField")).collect();
        ensure!(unsupported.len() == 1, "{} UnsupportedField events: {evs:?}", unsupported.len());
        let m = unsupported[0].message.clone().unwrap_or_default();
        ensure!(
            unsupported[0].type_.as_deref() == Some("Warning") && m.contains("spec.securityContext.seccompProfile") && m.contains("spec.securityContext.fsGroup"),
            "UnsupportedField event {m:?}"
        );
        env.stop().await
    })
}
