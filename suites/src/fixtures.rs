//! Building blocks case bodies share: mapping targets to backends and starting them.

use harness::backend::RuntimeKind;

use crate::context::CaseCtx;
use crate::target::RuntimeTarget;

/// The harness backend for a runtime target.
pub fn runtime_kind(t: &RuntimeTarget) -> RuntimeKind {
    match t {
        RuntimeTarget::FakeCri => RuntimeKind::FakeCri,
        RuntimeTarget::Containerd => RuntimeKind::Containerd,
        RuntimeTarget::External(e) => RuntimeKind::External(e.clone()),
        RuntimeTarget::Profile { profile, .. } => RuntimeKind::Profile(profile.clone()),
    }
}

/// Starts the case's runtime in node host `node`.
pub async fn start_runtime(ctx: &CaseCtx, node: &str) -> anyhow::Result<harness::backend::Runtime> {
    let kind = runtime_kind(ctx.runtime()?);
    Ok(harness::backend::Runtime::start(&ctx.world, node, kind).await?)
}

/// A single-node world with everything running: the fake API server in `cp`, the case's
/// runtime and the reference agent in `node-a`, and a client for the case.
pub struct NodeEnv {
    pub cp: harness::backend::ControlPlane,
    pub runtime: harness::backend::Runtime,
    pub agent: harness::backend::NodeAgent,
    pub client: kube::Client,
}

/// The node every single-node case registers.
pub const NODE: &str = "node-a";

/// Compressed agent timings used by node cases: lease 4 s renewed every 1 s, status checked
/// every 500 ms and reported at least every 4 s, container back-off 500 ms doubling to 4 s.
/// The node's size is the world's, not the host's: 4 CPUs, 8 GiB, 64 GiB of ephemeral storage
/// and 100,000 pids, so no case depends on the machine's real free memory or disk.
pub const COMPRESSED: &str = "\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
nodeLeaseDurationSeconds: 4
nodeStatusUpdateFrequency: 500ms
nodeStatusReportFrequency: 4s
syncFrequency: 2s
nodekit:
  containerBackOffBase: 500ms
  containerBackOffMax: 4s
  runtimeRelistPeriod: 200ms
  nodeSize:
    cpu: \"4\"
    memory: 8Gi
    ephemeralStorage: 64Gi
    pids: 100000
";

/// The agent configuration: [`COMPRESSED`] with the YAML document `extra` deep-merged over it
/// (maps merge key by key; any other value replaces; a null leaves the base as it is).
/// Returned as JSON, which is YAML too.
pub fn agent_config(extra: &str) -> anyhow::Result<String> {
    let mut base: serde_json::Value = serde_saphyr::from_str(COMPRESSED)?;
    if !extra.trim().is_empty() {
        let over: serde_json::Value = serde_saphyr::from_str(extra)
            .map_err(|e| anyhow::anyhow!("bad agent config override {extra:?}: {e}"))?;
        deep_merge(&mut base, over);
    }
    Ok(serde_json::to_string_pretty(&base)?)
}

/// Agent options for [`agent_config`]`(extra)`.
pub fn agent_options(extra: &str) -> anyhow::Result<harness::backend::AgentOptions> {
    Ok(options_for(agent_config(extra)?))
}

/// Agent options running the whole configuration document `config_yaml` with the run's node
/// agent profile (`--node-agent`, or the reference agent).
pub fn options_for(config_yaml: String) -> harness::backend::AgentOptions {
    harness::backend::AgentOptions { config_yaml, extra_args: Vec::new(), profile: crate::context::node_agent_profile() }
}

/// Agent options with upstream's default timings (relist 1 s, node status 10 s, sync 1 m,
/// back-off 10 s … 5 m): [`COMPRESSED`] without its compressed periods, so only the world's node
/// size stays. For measuring the agent as it is deployed rather than as the cases speed it up.
pub fn deployed_agent_options() -> anyhow::Result<harness::backend::AgentOptions> {
    let mut config: serde_json::Value = serde_saphyr::from_str(COMPRESSED)?;
    let compressed = ["nodeLeaseDurationSeconds", "nodeStatusUpdateFrequency", "nodeStatusReportFrequency", "syncFrequency"];
    let compressed_nodekit = ["containerBackOffBase", "containerBackOffMax", "runtimeRelistPeriod"];
    if let Some(c) = config.as_object_mut() {
        compressed.iter().for_each(|k| drop(c.remove(*k)));
    }
    if let Some(n) = config.get_mut("nodekit").and_then(serde_json::Value::as_object_mut) {
        compressed_nodekit.iter().for_each(|k| drop(n.remove(*k)));
    }
    Ok(options_for(serde_json::to_string_pretty(&config)?))
}

/// Merges `over` into `base`: maps key by key, any other value replaces, null keeps the base.
pub fn deep_merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (_, serde_json::Value::Null) => {}
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                deep_merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// Node-lifecycle grace period used with [`COMPRESSED`] (upstream 50 s for a 40 s lease).
pub const NODE_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

/// The control plane of a case's world: HTTPS with the world PKI (every component presents
/// its own certificate), RBAC, the Node authorizer and NodeRestriction on, as a real cluster
/// runs. [`ControlPlane::client`] is the admin's (`system:masters`).
pub async fn control_plane(ctx: &CaseCtx, mut config: fake_apiserver::Config) -> anyhow::Result<harness::backend::ControlPlane> {
    config.authorization = true;
    Ok(harness::backend::ControlPlane::start_secure(&ctx.world, config).await?)
}

impl NodeEnv {
    /// Starts cp, runtime and agent with [`COMPRESSED`] and the YAML document `extra` merged
    /// over it (see [`agent_config`]).
    pub async fn start(ctx: &CaseCtx, extra: &str) -> anyhow::Result<NodeEnv> {
        let config = harness::backend::ControlPlane::compressed_config(NODE_GRACE);
        Self::start_with(ctx, config, &agent_config(extra)?).await
    }

    /// Like [`NodeEnv::start`], but the API server is partitioned before the runtime and the
    /// agent start (heal it with `env.cp.handle().set_partition(false)`).
    pub async fn start_partitioned(ctx: &CaseCtx, extra: &str) -> anyhow::Result<NodeEnv> {
        let cp = control_plane(ctx, harness::backend::ControlPlane::compressed_config(NODE_GRACE)).await?;
        cp.handle().set_partition(true);
        let runtime = start_runtime(ctx, NODE).await?;
        let agent = harness::backend::NodeAgent::start(&ctx.world, &cp, NODE, &runtime, &agent_options(extra)?).await?;
        let client = cp.client()?;
        Ok(NodeEnv { cp, runtime, agent, client })
    }

    /// Like [`NodeEnv::start`] over HTTPS with the world PKI: the API server verifies client
    /// certificates and reaches the kubelet with its own; the agent serves its kubelet API with
    /// a certificate of the world CA and accepts only clients of that CA.
    pub async fn start_secure(ctx: &CaseCtx, extra: &str) -> anyhow::Result<NodeEnv> {
        let cp = control_plane(ctx, harness::backend::ControlPlane::compressed_config(NODE_GRACE)).await?;
        let runtime = start_runtime(ctx, NODE).await?;
        let agent = harness::backend::NodeAgent::start(&ctx.world, &cp, NODE, &runtime, &agent_options(extra)?).await?;
        let client = cp.client()?;
        Ok(NodeEnv { cp, runtime, agent, client })
    }

    /// Starts with an explicit API server config and a whole agent configuration document.
    pub async fn start_with(
        ctx: &CaseCtx,
        api: fake_apiserver::Config,
        agent_config: &str,
    ) -> anyhow::Result<NodeEnv> {
        let cp = control_plane(ctx, api).await?;
        let runtime = start_runtime(ctx, NODE).await?;
        let agent = harness::backend::NodeAgent::start(&ctx.world, &cp, NODE, &runtime, &options_for(agent_config.to_string())).await?;
        let client = cp.client()?;
        Ok(NodeEnv { cp, runtime, agent, client })
    }

    /// Waits until the node is registered and Ready.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> anyhow::Result<k8s_openapi::api::core::v1::Node> {
        crate::kube_wait::node_condition(&self.client, NODE, "Ready", "True", timeout).await
    }

    /// Stops agent, runtime and API server (in that order).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.agent.stop().await?;
        self.runtime.stop().await?;
        self.cp.shutdown().await;
        Ok(())
    }
}
