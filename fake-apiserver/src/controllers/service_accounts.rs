//! The serviceaccounts controller (upstream's `serviceaccount-controller`,
//! `pkg/controller/serviceaccount/serviceaccounts_controller.go`): every active namespace has a
//! ServiceAccount named `default`; one deleted is made again. A namespace that is terminating
//! (or gone) is left alone, as upstream ignores its create failures.
//!
//! The registry also makes `default` with each namespace it creates (so a pod created right
//! after its namespace finds it); this controller is what puts it back after a delete.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::resources::{NAMESPACES, SERVICEACCOUNTS};
use crate::server::State;

/// The ServiceAccount every namespace gets (upstream's `DefaultServiceAccountsControllerOptions`).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// How often every namespace is checked even without a change.
const RESYNC: Duration = Duration::from_secs(30);

/// Whether a namespace is `Active` (no phase yet counts as active: it was just created).
pub fn active(namespace: &Value) -> bool {
    namespace.pointer("/metadata/deletionTimestamp").is_none()
        && matches!(namespace.pointer("/status/phase").and_then(Value::as_str), None | Some("Active"))
}

/// One pass: `default` made in every active namespace that lacks it. Returns how many were made.
pub fn sync(state: &State) -> usize {
    let (namespaces, _) = state.store.snapshot(NAMESPACES, None);
    let mut created = 0;
    for ns in namespaces.iter().filter(|n| active(&n.value)) {
        if state.store.get(SERVICEACCOUNTS, ns.name(), DEFAULT_SERVICE_ACCOUNT).is_some() {
            continue;
        }
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_SERVICE_ACCOUNT}});
        match state.api.create(SERVICEACCOUNTS, ns.name(), sa) {
            Ok(_) => created += 1,
            // Made meanwhile, or the namespace went away or is terminating: nothing to do.
            Err(e) if matches!(e.code, 403 | 404 | 409) => {}
            Err(e) => tracing::warn!(namespace = ns.name(), "creating the default ServiceAccount: {e}"),
        }
    }
    created
}

/// Runs until the server is cancelled: a pass on every namespace or ServiceAccount change.
pub async fn run(state: Arc<State>) {
    let mut rxs = [state.store.subscribe(NAMESPACES), state.store.subscribe(SERVICEACCOUNTS)];
    loop {
        let created = sync(&state);
        if created > 0 {
            tracing::debug!(created, "default ServiceAccounts created");
        }
        if !super::next_pass(&state, &mut rxs, RESYNC).await {
            return;
        }
    }
}
