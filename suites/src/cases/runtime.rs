//! Area `runtime`: CRI conformance (critest-like), run against every runtime backend.
//!
//! Every case starts the case's runtime in node-a, talks CRI to it through [`crate::cri`],
//! and stops the runtime at the end (which checks that it cleans up after itself). Expected
//! results are what containerd 1.6 does; fake-cri must behave the same.
//!
//! Submodules: [`pods`] (version, status, sandboxes), [`containers`] (container lifecycle,
//! exit codes, env, OOM), [`exec`] (exec, logs, stats, images), [`net`] (hostname, DNS,
//! pod networking), [`pull`] (pulls from the world's registry), [`stream`] (Exec, Attach and
//! PortForward through the runtime's streaming server).

#[path = "runtime_containers.rs"]
mod containers;
#[path = "runtime_exec.rs"]
mod exec;
#[path = "runtime_net.rs"]
mod net;
#[path = "runtime_pods.rs"]
mod pods;
#[path = "runtime_pull.rs"]
mod pull;
#[path = "runtime_stream.rs"]
mod stream;

use std::time::Duration;

use crate::catalog::{BodyFuture, Case, Label, Runtimes, Topology};
use crate::context::CaseCtx;
use crate::target::RuntimeTarget;
use crate::cri::Cri;

/// The node whose runtime the cases drive.
pub(crate) const NODE: &str = "node-a";
/// Upper bound for state changes (a container exiting, a process appearing).
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// What a runtime case body gets: the started runtime and a CRI client for it.
pub(crate) struct Env {
    pub runtime: harness::backend::Runtime,
    pub cri: Cri,
}

impl Env {
    async fn start(ctx: &CaseCtx) -> anyhow::Result<Env> {
        let runtime = crate::fixtures::start_runtime(ctx, NODE).await?;
        let mut cri = crate::cri::connect(runtime.socket(), NODE).await?;
        if matches!(ctx.runtime()?, RuntimeTarget::External(_)) {
            // A runtime someone else runs: its network is its own, and what this case
            // creates on it is labelled, listed and removed as this case's only.
            cri = cri.scoped(crate::cri::Scope::new()?);
            return Ok(Env { runtime, cri });
        }
        // As kubelet does once the node has a pod CIDR (containerd without a CNI config
        // template accepts and ignores it; fake-cri takes its pod range from it).
        let cidr = ctx.world.host(NODE)?.pod_cidr().ok_or_else(|| anyhow::anyhow!("{NODE} has no pod CIDR"))?;
        let config = k8s_cri::v1::RuntimeConfig {
            network_config: Some(k8s_cri::v1::NetworkConfig { pod_cidr: cidr.to_string() }),
        };
        cri.rt
            .update_runtime_config(k8s_cri::v1::UpdateRuntimeConfigRequest { runtime_config: Some(config) })
            .await
            .map_err(|e| anyhow::anyhow!("UpdateRuntimeConfig: {e}"))?;
        Ok(Env { runtime, cri })
    }

    /// Removes what the case created on an external runtime (also after a failure) and fails
    /// on anything left behind, then stops the runtime; the body's error wins.
    async fn finish(self, body: anyhow::Result<()>) -> anyhow::Result<()> {
        let Env { runtime, mut cri } = self;
        let cleaned = cri.remove_scoped().await;
        drop(cri);
        let stopped = runtime.stop().await;
        body?;
        cleaned?;
        stopped.map_err(|e| anyhow::anyhow!("stopping the runtime: {e}"))
    }
}

/// Wraps `async fn(&mut Env, &CaseCtx) -> anyhow::Result<()>` into a case body that starts
/// the runtime first and stops it afterwards.
macro_rules! body {
    ($f:path) => {{
        fn run(ctx: CaseCtx) -> BodyFuture {
            Box::pin(async move {
                let mut env = Env::start(&ctx).await?;
                let r = $f(&mut env, &ctx).await;
                env.finish(r).await
            })
        }
        run
    }};
}

fn case(id: &'static str, body: crate::catalog::Body) -> Case {
    Case { id, labels: &[Label::Conformance], needs: &[], topology: Topology::SingleNode, runtimes: Runtimes::All, body }
}

/// A case that looks at the runtime from the node host: not run on an external socket.
fn in_world(id: &'static str, body: crate::catalog::Body) -> Case {
    Case { runtimes: Runtimes::Sealed, ..case(id, body) }
}

/// A case that pulls from the world's registry: runtimes nodekit starts that pull (not fake-cri,
/// which builds its images from the workload binary; not an external socket, which has no
/// world registry).
fn pulls(id: &'static str, body: crate::catalog::Body) -> Case {
    Case { runtimes: Runtimes::Pulling, ..case(id, body) }
}

/// A case that removes world images and pulls them back: fake-cri (from its catalog) and the
/// pulling runtimes.
fn pulls_back(id: &'static str, body: crate::catalog::Body) -> Case {
    Case { runtimes: Runtimes::PullsBack, ..case(id, body) }
}

pub fn cases() -> Vec<Case> {
    vec![
        case("runtime/version-and-status", body!(pods::version_and_status)),
        case("runtime/sandbox-lifecycle", body!(pods::sandbox_lifecycle)),
        case("runtime/sandbox-list-filters", body!(pods::sandbox_list_filters)),
        case("runtime/sandbox-stop-remove-idempotent", body!(pods::sandbox_idempotent)),
        case("runtime/sandbox-remove-running", body!(pods::sandbox_remove_running)),
        case("runtime/container-lifecycle", body!(containers::lifecycle)),
        case("runtime/container-remove-from-every-state", body!(containers::remove_from_every_state)),
        case("runtime/container-stop-remove-idempotent", body!(containers::idempotent)),
        case("runtime/container-list-filters", body!(containers::list_filters)),
        case("runtime/exit-codes-and-reasons", body!(containers::exit_codes)),
        case("runtime/env-and-args", body!(containers::env_and_args)),
        case("runtime/oom-killed", body!(containers::oom_killed)),
        case("runtime/security-context-basics", body!(containers::security_context)),
        in_world("runtime/host-path-mounts", body!(containers::host_path_mounts)),
        case("runtime/exec-sync", body!(exec::exec_sync)),
        in_world("runtime/exec-sync-timeout", body!(exec::exec_timeout)),
        case("runtime/log-format", body!(exec::log_format)),
        case("runtime/log-reopen", body!(exec::log_reopen)),
        case("runtime/stats", body!(exec::stats)),
        case("runtime/stats-of-created-containers", body!(exec::stats_of_created_containers)),
        case("runtime/images", body!(exec::images)),
        pulls("runtime/image-pull-by-tag-and-digest", body!(pull::pull_by_tag_and_digest)),
        pulls_back("runtime/image-several-tags", body!(pull::several_tags)),
        pulls_back("runtime/images-listed-each-under-its-tag", body!(pull::three_images_listed)),
        case("runtime/hostname", body!(net::hostname)),
        case("runtime/dns-config", body!(net::dns_config)),
        in_world("runtime/pod-ip-reachable-from-node", body!(net::pod_ip_reachable)),
        in_world("runtime/host-port-mapping", body!(net::host_port)),
        in_world("runtime/containers-share-pod-network", body!(net::shared_network)),
        in_world("runtime/exec-streaming", body!(stream::exec_streaming)),
        in_world("runtime/exec-tty-streaming", body!(stream::exec_tty_streaming)),
        in_world("runtime/attach-streaming", body!(stream::attach_streaming)),
        in_world("runtime/container-tty", body!(stream::container_tty)),
        in_world("runtime/port-forward-streaming", body!(stream::port_forward_streaming)),
    ]
}

/// Records a timing in the case's timeline (and prints it).
pub(crate) fn timing(ctx: &CaseCtx, what: &str, d: Duration) {
    ctx.world.timeline().record_with("case", "timing", serde_json::json!({"what": what, "millis": d.as_secs_f64() * 1000.0}));
    println!("timing {what}: {d:?}");
}
