//! hostPath volume types.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anyhow::ensure;
use serde_json::json;

use super::{START, env};
use crate::catalog::BodyFuture;
use crate::context::CaseCtx;
use crate::fixtures::NODE;
use crate::kube_wait::{self, phase};
use crate::pods::{self, container, container_status};

/// Upstream's hostPath types (`pkg/volume/hostpath/host_path.go`, `checkTypeInternal`), on
/// paths in the world's own agent directory. A `Directory` that is missing fails the mount with
/// a FailedMount event `MountVolume.SetUp failed for volume "data" : hostPath type check failed:
/// <path> is not a directory`, the container stays waiting in ContainerCreating and nothing is
/// created; once the directory exists the pod runs. `DirectoryOrCreate` and `FileOrCreate`
/// create what is missing (0755 directory with its parents, empty 0644 file). Catches an agent
/// that ignores the type (starts the container, or lets the runtime make the path), words the
/// failure otherwise, or does not create the `…OrCreate` paths.
pub(super) fn types_checked(ctx: CaseCtx) -> BodyFuture {
    Box::pin(async move {
        let env = env(&ctx).await?;
        let base = env.agent.root_dir().join("host-path-case");
        let absent = base.join("absent");
        let c = {
            let mut c = container("c", &["exit", "--code", "0"]);
            pods::merge(&mut c, json!({"volumeMounts": [{"name": "data", "mountPath": "/data"}]}));
            c
        };
        let volume = json!([{"name": "data", "hostPath": {"path": absent, "type": "Directory"}}]);
        pods::create(&env.client, &pods::pod("missing-dir", NODE, vec![c], json!({"restartPolicy": "Never", "volumes": volume}))?).await?;
        let ev = harness::wait::wait_for("a FailedMount event for the missing directory", START, || async {
            pods::events_for(&env.client, "missing-dir").await.ok()?.into_iter().find(|e| e.reason.as_deref() == Some("FailedMount"))
        })
        .await?;
        let want = format!("MountVolume.SetUp failed for volume \"data\" : hostPath type check failed: {} is not a directory", absent.display());
        let got = ev.message.unwrap_or_default();
        ensure!(got == want && ev.type_.as_deref() == Some("Warning"), "FailedMount {:?} {got:?}, wanted Warning {want:?}", ev.type_);
        let pod = kube_wait::pod(&env.client, "default", "missing-dir", "waiting in ContainerCreating", START, |p| {
            let waiting = container_status(p, "c")?.state.as_ref()?.waiting.as_ref()?.reason.clone()?;
            (waiting == "ContainerCreating").then(|| p.clone())
        })
        .await?;
        ensure!(phase(&pod) == "Pending", "a pod whose hostPath check fails is {}, not Pending", phase(&pod));
        ensure!(!absent.exists(), "the type Directory created {}", absent.display());
        std::fs::create_dir_all(&absent)?;
        kube_wait::pod(&env.client, "default", "missing-dir", "Succeeded once the directory exists", Duration::from_secs(30), |p| (phase(p) == "Succeeded").then_some(())).await?;

        let (made, file) = (base.join("made/sub"), base.join("made-file"));
        let mut c = container("c", &["exit", "--code", "0"]);
        pods::merge(&mut c, json!({"volumeMounts": [{"name": "d", "mountPath": "/d"}, {"name": "f", "mountPath": "/f"}]}));
        let volumes = json!([
            {"name": "d", "hostPath": {"path": made, "type": "DirectoryOrCreate"}},
            {"name": "f", "hostPath": {"path": file, "type": "FileOrCreate"}},
        ]);
        pods::create(&env.client, &pods::pod("or-create", NODE, vec![c], json!({"restartPolicy": "Never", "volumes": volumes}))?).await?;
        kube_wait::pod(&env.client, "default", "or-create", "phase Succeeded", START, |p| (phase(p) == "Succeeded").then_some(())).await?;
        let mode = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.is_dir(), m.is_file(), m.len(), m.permissions().mode() & 0o777));
        let d = mode(&made)?;
        ensure!(d.0 && d.3 == 0o755, "DirectoryOrCreate made {}: dir {} mode {:o}", made.display(), d.0, d.3);
        let f = mode(&file)?;
        ensure!(f.1 && f.2 == 0 && f.3 == 0o644, "FileOrCreate made {}: file {} len {} mode {:o}", file.display(), f.1, f.2, f.3);
        env.stop().await
    })
}
