//! Lanes from what was watched: the runner keeps every version of the world's Nodes, their
//! Leases and its Pods as the API server returned them ([`Snapshot`]s), and the events; these
//! pure functions turn them into the timeline's [`Lane`](crate::record::Lane)s.
//!
//! Consecutive snapshots with the same derived state extend one segment; the last segment of a
//! track ends at the scenario's end. A deleted object is passed as a snapshot whose object has
//! an extra top-level `"__deleted": true`: its segments end there (an object of the same name
//! created later starts new ones on the same lane).

use serde_json::Value;

mod node;
mod object;
mod pod;
mod segments;

#[cfg(test)]
mod tests;

pub use node::node_lanes;
pub use pod::pod_lanes;

/// One observed state of an object: the time and the whole object as the API server returned it (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub at_ms: u64,
    pub object: Value,
}
