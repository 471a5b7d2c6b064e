//! A kube-scheduler for the fake cluster: binds pending pods whose `spec.schedulerName` is
//! empty or "default-scheduler" (not bound, not being deleted, not gated) to a node, the way
//! the default profile would decide, and reports as upstream does:
//!
//! - success: a `pods/binding` (so `spec.nodeName` and `PodScheduled=True`) and a Normal
//!   `Scheduled` event "Successfully assigned <ns>/<pod> to <node>";
//! - failure: `PodScheduled=False` with reason `Unschedulable` and upstream's `FitError`
//!   message (e.g. "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated
//!   taint(s). no new claims to deallocate, preemption: 0/2 nodes are available: 1 No preemption
//!   victims found for incoming pod, 1 Preemption is not helpful for scheduling."), and a Warning
//!   `FailedScheduling` event with the same message; the pod is retried when the cluster changes
//!   in a way that may help, after a backoff (see [`queue`]).
//!
//! Filters: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity (with `nodeSelector`),
//! NodeResourcesFit. Scores: LeastAllocated, spreading of a controller's pods, PreferNoSchedule
//! taints, preferred node affinity. Node readiness is not a filter (the not-ready/unreachable
//! taints are). Not modelled: host ports, volumes, inter-pod affinity, topology spread
//! constraints, DRA, and carrying out preemption.

pub mod affinity;
pub mod algorithm;
pub mod binding;
pub mod changes;
pub mod controller;
pub mod diagnosis;
pub mod filters;
pub mod preemption;
pub mod quantity;
pub mod queue;
pub mod recorder;
pub mod resources;
pub mod score;
pub mod snapshot;
pub mod taints;

pub use controller::{SCHEDULER_NAME, Scheduler, SchedulerError, run};
pub use queue::Timing;
