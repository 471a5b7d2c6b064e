//! (being written)

use std::sync::Arc;

use crate::server::State;

/// Run until the server is cancelled.
pub async fn run(state: Arc<State>) {
    state.cancel.cancelled().await;
}
