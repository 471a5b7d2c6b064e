//! Node lifecycle controller.

use std::sync::Arc;

pub async fn run(_s: Arc<crate::server::State>) {}
