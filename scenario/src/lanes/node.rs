//! Node lanes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::record::{Lane, Mark, Tone};

use super::Snapshot;
use super::object::{condition, is_deleted, str_at, value_at, with_reason};
use super::segments::{Segments, State, by_time, state, track};

/// Node lanes: one per node name (sorted). Tracks, always in this order:
/// - `Ready`: the Ready condition (True = Good, False = Bad, Unknown = Unknown), with the reason
///   when not True; nothing before the node exists;
/// - `pressure`: while MemoryPressure, DiskPressure or PIDPressure is True, text = the condition
///   types (Warn);
/// - `taints`: the taint set as `key:Effect, …` (`key=value:Effect` when a value is set) while
///   non-empty; Bad if any taint is NoExecute, else Warn;
/// - `lease`: a mark `renew` (Neutral) at each change of the node's Lease `spec.renewTime` in
///   `kube-node-lease` (the lease snapshots come separately).
pub fn node_lanes(nodes: &[Snapshot], leases: &[Snapshot], end_ms: u64) -> Vec<Lane> {
    #[derive(Default)]
    struct NodeState {
        ready: Segments,
        pressure: Segments,
        taints: Segments,
        lease: Vec<Mark>,
        last_renew: Option<String>,
    }
    let mut lanes: BTreeMap<String, NodeState> = BTreeMap::new();

    for snap in by_time(nodes) {
        let Some(name) = str_at(&snap.object, &["metadata", "name"]) else {
            continue;
        };
        let st = lanes.entry(name.to_string()).or_default();
        let at = snap.at_ms;
        if is_deleted(&snap.object) {
            st.ready.observe(at, None);
            st.pressure.observe(at, None);
            st.taints.observe(at, None);
            continue;
        }
        st.ready.observe(at, Some(node_ready(&snap.object)));
        st.pressure.observe(at, node_pressure(&snap.object));
        st.taints.observe(at, node_taints(&snap.object));
    }

    for snap in by_time(leases) {
        let Some(name) = str_at(&snap.object, &["metadata", "name"]) else {
            continue;
        };
        if let Some(ns) = str_at(&snap.object, &["metadata", "namespace"])
            && ns != "kube-node-lease"
        {
            continue;
        }
        let st = lanes.entry(name.to_string()).or_default();
        if is_deleted(&snap.object) {
            st.last_renew = None;
            continue;
        }
        let renew = str_at(&snap.object, &["spec", "renewTime"]).map(str::to_string);
        if renew.is_some() && renew != st.last_renew {
            st.lease.push(Mark {
                at_ms: snap.at_ms,
                text: "renew".into(),
                tone: Tone::Neutral,
            });
        }
        if renew.is_some() {
            st.last_renew = renew;
        }
    }

    lanes
        .into_iter()
        .map(|(name, st)| Lane {
            name,
            tracks: vec![
                track("Ready", st.ready.finish(end_ms), vec![]),
                track("pressure", st.pressure.finish(end_ms), vec![]),
                track("taints", st.taints.finish(end_ms), vec![]),
                track("lease", vec![], st.lease),
            ],
        })
        .collect()
}

fn node_ready(obj: &Value) -> State {
    let Some(cond) = condition(obj, "Ready") else {
        return state("not reported", Tone::Unknown);
    };
    match cond.get("status").and_then(Value::as_str) {
        Some("True") => state("True", Tone::Good),
        Some("False") => state(with_reason("False", cond), Tone::Bad),
        Some(other) => state(with_reason(other, cond), Tone::Unknown),
        None => state("not reported", Tone::Unknown),
    }
}

fn node_pressure(obj: &Value) -> Option<State> {
    let on: Vec<&str> = ["MemoryPressure", "DiskPressure", "PIDPressure"]
        .into_iter()
        .filter(|t| {
            condition(obj, t)
                .and_then(|c| c.get("status"))
                .and_then(Value::as_str)
                == Some("True")
        })
        .collect();
    (!on.is_empty()).then(|| state(on.join(", "), Tone::Warn))
}

fn node_taints(obj: &Value) -> Option<State> {
    let taints = value_at(obj, &["spec", "taints"]).and_then(Value::as_array)?;
    let mut no_execute = false;
    let texts: Vec<String> = taints
        .iter()
        .map(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            no_execute |= effect == "NoExecute";
            match t.get("value").and_then(Value::as_str) {
                Some(v) if !v.is_empty() => format!("{key}={v}:{effect}"),
                _ => format!("{key}:{effect}"),
            }
        })
        .collect();
    if texts.is_empty() {
        return None;
    }
    Some(state(
        texts.join(", "),
        if no_execute { Tone::Bad } else { Tone::Warn },
    ))
}
