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
