//! The core/v1 event recorder of the kube-controller-manager controllers (client-go's
//! `record.EventRecorder`): one Event per occurrence named `<object>.<hex nanoseconds>`, with
//! `source.component` and `reportingComponent` the controller's name.

use serde_json::{Value, json};

use crate::api::now_rfc3339;
use crate::resources;
use crate::server::State;

/// Who an event is about: its apiVersion and kind (the name, namespace, uid and
/// resourceVersion come from the object).
#[derive(Debug, Clone, Copy)]
pub struct Involved<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
}

/// What an event says and who says it.
#[derive(Debug, Clone, Copy)]
pub struct Note<'a> {
    pub component: &'a str,
    /// "Normal" or "Warning".
    pub ty: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

pub const POD: Involved<'static> = Involved { api_version: "v1", kind: "Pod" };
pub const NODE: Involved<'static> = Involved { api_version: "v1", kind: "Node" };

/// The Event (pure; name and time given). Cluster-scoped objects' events go to `default`, as
/// client-go's recorder does.
pub fn event(obj: &Value, who: Involved<'_>, note: &Note<'_>, name_suffix: &str, now: &str) -> Value {
    let Note { component, ty, reason, message } = *note;
    let meta = |k: &str| obj.pointer(&format!("/metadata/{k}")).cloned().unwrap_or(Value::Null);
    let ns = meta("namespace").as_str().filter(|s| !s.is_empty()).unwrap_or("default").to_string();
    let name = meta("name").as_str().unwrap_or("").to_string();
    let mut involved = json!({"apiVersion": who.api_version, "kind": who.kind, "name": name, "uid": meta("uid"),
        "resourceVersion": meta("resourceVersion")});
    if who.kind != "Node" {
        involved["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{name_suffix}"), "namespace": ns},
        "involvedObject": involved,
        "reason": reason, "message": message, "type": ty, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "source": {"component": component},
        "reportingComponent": component, "reportingInstance": "",
    })
}

/// Write an Event about `obj`; a failure is logged, never returned (events are best effort).
pub fn record(state: &State, obj: &Value, who: Involved<'_>, note: &Note<'_>) {
    let suffix = format!("{:x}", jiff::Timestamp::now().as_nanosecond());
    let ev = event(obj, who, note, &suffix, &now_rfc3339());
    let ns = ev.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_string();
    if let Err(err) = state.api.create(resources::EVENTS, &ns, ev) {
        tracing::debug!(%err, reason = note.reason, "event not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_events_go_to_default_without_a_namespace() {
        let node = json!({"metadata": {"name": "node-a", "uid": "u1"}});
        let note = Note { component: "node-controller", ty: "Normal", reason: "NodeNotReady", message: "Node node-a status is now: NodeNotReady" };
        let e = event(&node, NODE, &note, "1f", "t");
        assert_eq!(e["metadata"], json!({"name": "node-a.1f", "namespace": "default"}));
        assert!(e["involvedObject"].get("namespace").is_none());
        assert_eq!(e["source"]["component"], "node-controller");
    }

    #[test]
    fn pod_events_live_in_the_pod_namespace() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns1", "uid": "u2", "resourceVersion": "7"}});
        let note = Note { component: "taint-eviction-controller", ty: "Normal", reason: "TaintManagerEviction", message: "Marking for deletion Pod ns1/p" };
        let e = event(&pod, POD, &note, "2a", "t");
        assert_eq!(e["metadata"]["namespace"], "ns1");
        assert_eq!(e["involvedObject"]["namespace"], "ns1");
        assert_eq!(e["involvedObject"]["resourceVersion"], "7");
    }
}
