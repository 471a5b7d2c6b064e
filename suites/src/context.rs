//! What a case body receives: its built world, its runtime target, its artifacts and timeline.

use std::path::PathBuf;

use crate::target::RuntimeTarget;

/// The node agent profile of this case process, set once from the run's environment before
/// the case starts (`nodekit conformance --node-agent FILE`); `None`: the reference agent.
static NODE_AGENT: std::sync::OnceLock<std::sync::Arc<runtime_profile::NodeAgentProfile>> = std::sync::OnceLock::new();

/// Sets this case process's node agent profile (once; later calls change nothing).
pub fn set_node_agent_profile(p: std::sync::Arc<runtime_profile::NodeAgentProfile>) {
    let _ = NODE_AGENT.set(p);
}

/// The node agent profile node cases start instead of the reference agent.
pub fn node_agent_profile() -> Option<std::sync::Arc<runtime_profile::NodeAgentProfile>> {
    NODE_AGENT.get().cloned()
}

/// The context a case body runs with, inside its sealed world.
pub struct CaseCtx {
    pub world: harness::world::World,
    /// The runtime behind node-a; `None` for cases that involve no runtime.
    pub runtime: Option<RuntimeTarget>,
    /// This case's artifacts directory (logs, pcaps, audit log, timeline).
    pub artifacts: PathBuf,
}

impl CaseCtx {
    /// The runtime target, or an error for a case that was declared runtime-less.
    pub fn runtime(&self) -> anyhow::Result<&RuntimeTarget> {
        self.runtime
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("this case was declared without a runtime"))
    }

    /// A path inside this case's artifacts directory.
    pub fn artifact(&self, name: &str) -> PathBuf {
        self.artifacts.join(name)
    }
}

/// Returned (as an error) by a body that finds at run time that it cannot run on this target.
/// Reported as skipped with the reason, never as passed.
#[derive(Debug, thiserror::Error)]
#[error("skipped: {0}")]
pub struct Skipped(pub String);

/// Build a [`Skipped`] error to return from a case body.
pub fn skip(reason: impl Into<String>) -> anyhow::Error {
    Skipped(reason.into()).into()
}
