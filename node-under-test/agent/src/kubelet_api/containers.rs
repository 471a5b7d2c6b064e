//! Finding a pod's container in the runtime for logs and `/run`, with upstream's messages.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use crate::cri::{Runtime, api, keys};

/// Why a container cannot be served; `status` and the text are upstream's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: String) -> Refusal {
        Refusal { status, message }
    }
}

/// True when the pod's spec has a container (regular, init or ephemeral) named `name`.
pub fn has_container(pod: &Pod, name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    spec.containers.iter().any(|c| c.name == name)
        || spec.init_containers.iter().flatten().any(|c| c.name == name)
        || spec.ephemeral_containers.iter().flatten().any(|c| c.name == name)
}

/// The waiting reason the API shows for the container (what upstream names when it waits).
fn waiting_reason(pod: &Pod, name: &str) -> String {
    let st = pod.status.as_ref();
    let statuses = st.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten();
    let inits = st.and_then(|s| s.init_container_statuses.as_ref()).into_iter().flatten();
    statuses
        .chain(inits)
        .find(|s| s.name == name)
        .and_then(|s| s.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .unwrap_or_else(|| "ContainerCreating".to_string())
}

/// The runtime's instances of container `name` of pod `uid`, newest attempt first.
pub async fn instances<R: Runtime>(runtime: &R, uid: &str, name: &str) -> Result<Vec<api::Container>, Refusal> {
    let labels: HashMap<String, String> =
        [(keys::POD_UID.to_string(), uid.to_string()), (keys::CONTAINER_NAME.to_string(), name.to_string())].into();
    let mut cs = runtime.list_containers(labels).await.map_err(|e| Refusal::new(500, e.to_string()))?;
    let attempt = |c: &api::Container| c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
    cs.sort_by_key(|c| std::cmp::Reverse((attempt(c), c.created_at)));
    Ok(cs)
}

/// Picks the instance whose log is read: the newest, or with `previous` the one before it
/// (its attempt one less), as upstream's texts say when there is none.
pub fn pick_for_logs(pod: &Pod, name: &str, instances: &[api::Container], previous: bool) -> Result<String, Refusal> {
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let attempt = |c: &api::Container| c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
    let Some(current) = instances.first() else {
        if previous {
            return Err(Refusal::new(400, format!("previous terminated container {name:?} in pod {pod_name:?} not found")));
        }
        let reason = waiting_reason(pod, name);
        return Err(Refusal::new(400, format!("container {name:?} in pod {pod_name:?} is waiting to start: {reason}")));
    };
    if !previous {
        return Ok(current.id.clone());
    }
    let want = attempt(current).checked_sub(1);
    instances
        .iter()
        .find(|c| Some(attempt(c)) == want && c.state == api::ContainerState::ContainerExited as i32)
        .map(|c| c.id.clone())
        .ok_or_else(|| Refusal::new(400, format!("previous terminated container {name:?} in pod {pod_name:?} not found")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "c"}], "initContainers": [{"name": "i"}]},
            "status": {"containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "ErrImagePull"}}}]}
        }))
        .unwrap()
    }

    fn instance(id: &str, attempt: u32, state: api::ContainerState) -> api::Container {
        api::Container {
            id: id.into(),
            metadata: Some(api::ContainerMetadata { name: "c".into(), attempt }),
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn spec_containers_of_every_kind() {
        assert!(has_container(&pod(), "c"));
        assert!(has_container(&pod(), "i"));
        assert!(!has_container(&pod(), "x"));
    }

    #[test]
    fn current_and_previous_instances() {
        let cs = [instance("c2", 2, api::ContainerState::ContainerRunning), instance("c1", 1, api::ContainerState::ContainerExited)];
        assert_eq!(pick_for_logs(&pod(), "c", &cs, false), Ok("c2".to_string()));
        assert_eq!(pick_for_logs(&pod(), "c", &cs, true), Ok("c1".to_string()));
        let only = [instance("c0", 0, api::ContainerState::ContainerRunning)];
        let err = pick_for_logs(&pod(), "c", &only, true).unwrap_err();
        assert_eq!(err, Refusal { status: 400, message: "previous terminated container \"c\" in pod \"p\" not found".into() });
        // A gap (attempt 1 already removed) is no previous instance either.
        let gap = [instance("c2", 2, api::ContainerState::ContainerRunning), instance("c0", 0, api::ContainerState::ContainerExited)];
        assert!(pick_for_logs(&pod(), "c", &gap, true).is_err());
    }

    #[test]
    fn no_instance_yet_names_the_waiting_reason() {
        let err = pick_for_logs(&pod(), "c", &[], false).unwrap_err();
        assert_eq!(err.message, "container \"c\" in pod \"p\" is waiting to start: ErrImagePull");
        let err = pick_for_logs(&pod(), "i", &[], false).unwrap_err();
        assert_eq!(err.message, "container \"i\" in pod \"p\" is waiting to start: ContainerCreating");
    }
}
