//! core/v1 Events about pods, as the kubelet writes them (source/reportingComponent kubelet).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};

/// The pod an event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

/// Which container of the pod, if any (for involvedObject.fieldPath).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerRef {
    None,
    Container(String),
    Init(String),
}

/// Builds the Event object.
pub fn build_event(pod: &PodRef, container: &ContainerRef, node: &str, warning: bool, reason: &str, message: &str, now: jiff::Timestamp) -> Event {
    let field_path = match container {
        ContainerRef::None => None,
        ContainerRef::Container(c) => Some(format!("spec.containers{{{c}}}")),
        ContainerRef::Init(c) => Some(format!("spec.initContainers{{{c}}}")),
    };
    let mut ev = Event::default();
    ev.metadata.name = Some(format!("{}.{:x}", pod.name, now.as_nanosecond()));
    ev.metadata.namespace = Some(pod.namespace.clone());
    ev.involved_object = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(pod.name.clone()),
        namespace: Some(pod.namespace.clone()),
        uid: Some(pod.uid.clone()),
        field_path,
        ..Default::default()
    };
    ev.reason = Some(reason.to_string());
    ev.message = Some(message.to_string());
    ev.type_ = Some(if warning { "Warning" } else { "Normal" }.to_string());
    ev.source = Some(EventSource { component: Some("kubelet".into()), host: Some(node.to_string()) });
    ev.reporting_component = Some("kubelet".into());
    ev.reporting_instance = Some(node.to_string());
    ev.first_timestamp = Some(Time(now));
    ev.last_timestamp = Some(Time(now));
    ev.count = Some(1);
    ev
}

/// Writes events; failures are logged, never fatal.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
    timeout: Duration,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("node", &self.node).finish()
    }
}

impl Recorder {
    pub fn new(client: kube::Client, node: String, timeout: Duration) -> Self {
        Recorder { client, node, timeout }
    }

    pub async fn record(&self, pod: &PodRef, container: &ContainerRef, warning: bool, reason: &str, message: &str) {
        let ev = build_event(pod, container, &self.node, warning, reason, message, jiff::Timestamp::now());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &pod.namespace);
        tracing::info!(pod = %pod.name, reason, message, "event");
        if let Err(e) = crate::error::api("create event", self.timeout, api.create(&PostParams::default(), &ev)).await {
            tracing::warn!(error = %e, reason, "event not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shape() {
        let pod = PodRef { name: "p".into(), namespace: "ns".into(), uid: "u".into() };
        let ev = build_event(&pod, &ContainerRef::Container("c".into()), "node-a", true, "Unhealthy", "m", jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(ev.involved_object.field_path.as_deref(), Some("spec.containers{c}"));
        assert_eq!(ev.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(ev.involved_object.uid.as_deref(), Some("u"));
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        let src = ev.source.unwrap();
        assert_eq!((src.component.as_deref(), src.host.as_deref()), (Some("kubelet"), Some("node-a")));
        assert_eq!(ev.reporting_component.as_deref(), Some("kubelet"));
        assert_eq!(ev.metadata.namespace.as_deref(), Some("ns"));
    }
}
