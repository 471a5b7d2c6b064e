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
pub const COMPRESSED: &str = "\
nodeLeaseDurationSeconds: 4
nodeStatusUpdateFrequency: 500ms
nodeStatusReportFrequency: 4s
syncFrequency: 2s
nodekit:
  containerBackOffBase: 500ms
  containerBackOffMax: 4s
  runtimeRelistPeriod: 200ms
";

/// Node-lifecycle grace period used with [`COMPRESSED`] (upstream 40 s for a 40 s lease).
pub const NODE_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

impl NodeEnv {
    /// Starts cp, runtime and agent with [`COMPRESSED`] plus `extra` config lines.
    pub async fn start(ctx: &CaseCtx, extra: &str) -> anyhow::Result<NodeEnv> {
        let config = harness::backend::ControlPlane::compressed_config(NODE_GRACE);
        Self::start_with(ctx, config, &format!("{COMPRESSED}{extra}")).await
    }

    /// Starts with an explicit API server config and agent config body.
    pub async fn start_with(
        ctx: &CaseCtx,
        api: fake_apiserver::Config,
        agent_config: &str,
    ) -> anyhow::Result<NodeEnv> {
        let cp = harness::backend::ControlPlane::start(&ctx.world, api).await?;
        let runtime = start_runtime(ctx, NODE).await?;
        let opts = harness::backend::AgentOptions::with_config(agent_config);
        let agent = harness::backend::NodeAgent::start(&ctx.world, &cp, NODE, &runtime, &opts).await?;
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
