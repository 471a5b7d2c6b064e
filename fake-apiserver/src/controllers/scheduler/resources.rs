//! Resource vectors as the scheduler accounts them (framework `Resource`) and a pod's requests
//! (component-helpers `PodRequests`): the sum of the containers, at least the largest init
//! container (sidecars — restartable init containers — add up with the containers), pod-level
//! requests overriding cpu/memory, plus the pod overhead.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::quantity::Quantity;

/// Upstream `schedutil.DefaultMilliCPURequest`: the cpu a container without a cpu request is
/// scored with (not filtered with).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream `schedutil.DefaultMemoryRequest` (200 MiB), likewise for memory.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A resource vector: cpu in millicores, the rest in whole units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// `pods` (only meaningful for a node's allocatable).
    pub allowed_pods: i64,
    /// Extended, hugepages and other scalar resources by name.
    pub scalars: BTreeMap<String, i64>,
}

/// Whether `name` is a scalar resource the scheduler checks (`IsScalarResourceName`):
/// extended resources (a domain-qualified name), `hugepages-*` and `attachable-volumes-*`.
pub fn is_scalar(name: &str) -> bool {
    name.contains('/') || name.starts_with("hugepages-") || name.starts_with("attachable-volumes-")
}

impl Resource {
    /// Read a ResourceList (`{"cpu": "100m", ...}`); unreadable quantities count as zero.
    pub fn from_list(list: Option<&Value>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list.and_then(Value::as_object).into_iter().flatten() {
            r.add_one(name, q);
        }
        r
    }

    fn add_one(&mut self, name: &str, q: &Value) {
        let Ok(q) = Quantity::from_json(q) else {
            tracing::debug!(resource = name, "unreadable quantity ignored");
            return;
        };
        match name {
            "cpu" => self.milli_cpu = self.milli_cpu.saturating_add(q.milli_value()),
            "memory" => self.memory = self.memory.saturating_add(q.value()),
            "ephemeral-storage" => self.ephemeral_storage = self.ephemeral_storage.saturating_add(q.value()),
            "pods" => self.allowed_pods = self.allowed_pods.saturating_add(q.value()),
            n if is_scalar(n) => {
                let e = self.scalars.entry(n.to_string()).or_default();
                *e = e.saturating_add(q.value());
            }
            _ => {}
        }
    }

    /// Add `other` component-wise.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.saturating_add(other.allowed_pods);
        for (k, v) in &other.scalars {
            let e = self.scalars.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }

    /// Subtract `other` component-wise (removing a pod from a node).
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.saturating_sub(other.allowed_pods);
        for (k, v) in &other.scalars {
            let e = self.scalars.entry(k.clone()).or_default();
            *e = e.saturating_sub(*v);
        }
    }

    /// Take the component-wise maximum with `other`.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.max(other.allowed_pods);
        for (k, v) in &other.scalars {
            let e = self.scalars.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// Nothing requested at all (the resource fit check then only counts pods).
    pub fn is_empty_request(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalars.is_empty()
    }
}

/// The cpu/memory defaults applied to containers that request neither, when scoring.
#[derive(Debug, Clone, Copy, Default)]
struct Defaults {
    milli_cpu: Option<i64>,
    memory: Option<i64>,
}

fn container_requests(c: &Value, d: Defaults) -> Resource {
    let list = c.pointer("/resources/requests");
    let mut r = Resource::from_list(list);
    let has = |k: &str| list.and_then(|l| l.get(k)).is_some();
    if let (Some(cpu), false) = (d.milli_cpu, has("cpu")) {
        r.milli_cpu = cpu;
    }
    if let (Some(mem), false) = (d.memory, has("memory")) {
        r.memory = mem;
    }
    r
}

fn is_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

fn list<'a>(pod: &'a Value, key: &str) -> &'a [Value] {
    pod.pointer(&format!("/spec/{key}")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// `AggregateContainerRequests`: containers and sidecars add up; a regular init container runs
/// alone (next to the sidecars started before it), so only the largest such step counts.
fn aggregate(pod: &Value, d: Defaults) -> Resource {
    let mut reqs = Resource::default();
    for c in list(pod, "containers") {
        reqs.add(&container_requests(c, d));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in list(pod, "initContainers") {
        let r = container_requests(c, d);
        let step = if is_sidecar(c) {
            reqs.add(&r);
            sidecars.add(&r);
            sidecars.clone()
        } else {
            let mut step = r;
            step.add(&sidecars);
            step
        };
        init_max.set_max(&step);
    }
    reqs.set_max(&init_max);
    reqs
}

/// Pod-level `spec.resources.requests` for cpu and memory replace the container sums.
fn apply_pod_level(pod: &Value, reqs: &mut Resource) {
    let Some(pl) = pod.pointer("/spec/resources/requests").and_then(Value::as_object) else { return };
    let r = Resource::from_list(pod.pointer("/spec/resources/requests"));
    if pl.contains_key("cpu") {
        reqs.milli_cpu = r.milli_cpu;
    }
    if pl.contains_key("memory") {
        reqs.memory = r.memory;
    }
}

fn pod_level_set(pod: &Value) -> bool {
    pod.pointer("/spec/resources/requests").and_then(Value::as_object).is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
}

/// What a pod requests (`PodRequests` with overhead): the filter's view of the pod.
pub fn pod_requests(pod: &Value) -> Resource {
    let mut reqs = aggregate(pod, Defaults::default());
    apply_pod_level(pod, &mut reqs);
    reqs.add(&Resource::from_list(pod.pointer("/spec/overhead")));
    reqs
}

/// Whether any container, init container or the overhead names resource `key`.
fn names_resource(pod: &Value, key: &str) -> bool {
    let named = |c: &Value| c.pointer("/resources/requests").and_then(Value::as_object).is_some_and(|m: &Map<String, Value>| m.contains_key(key));
    list(pod, "containers").iter().any(named)
        || list(pod, "initContainers").iter().any(named)
        || pod.pointer("/spec/overhead").and_then(Value::as_object).is_some_and(|m| m.contains_key(key))
}

/// The requests scoring uses (`PodInfo.CalculateResource` non-zero requests): when the pod
/// requests no cpu (memory) at all, each container counts `DEFAULT_MILLI_CPU_REQUEST`
/// (`DEFAULT_MEMORY_REQUEST`), so that many request-less pods do not pile onto one node.
pub fn pod_non_zero_requests(pod: &Value) -> Resource {
    if pod_level_set(pod) {
        return pod_requests(pod);
    }
    let d = Defaults {
        milli_cpu: (!names_resource(pod, "cpu")).then_some(DEFAULT_MILLI_CPU_REQUEST),
        memory: (!names_resource(pod, "memory")).then_some(DEFAULT_MEMORY_REQUEST),
    };
    let mut reqs = aggregate(pod, d);
    reqs.add(&Resource::from_list(pod.pointer("/spec/overhead")));
    reqs
}

/// A node's `status.allocatable` (no fallback to capacity, as upstream's NodeInfo).
pub fn node_allocatable(node: &Value) -> Resource {
    Resource::from_list(node.pointer("/status/allocatable"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn c(cpu: &str, mem: &str) -> Value {
        json!({"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}})
    }

    #[test]
    fn containers_add_up_and_init_containers_take_the_max() {
        // The upstream example: init 2/1G and 2/3G, containers 2/1G and 1/1G → 3 cpu, 3G.
        let pod = json!({"spec": {"initContainers": [c("2", "1G"), c("2", "3G")], "containers": [c("2", "1G"), c("1", "1G")]}});
        let r = pod_requests(&pod);
        assert_eq!((r.milli_cpu, r.memory), (3000, 3_000_000_000));
    }

    #[test]
    fn sidecars_run_alongside() {
        let mut sidecar = c("500m", "100Mi");
        sidecar["restartPolicy"] = json!("Always");
        let pod = json!({"spec": {"initContainers": [sidecar, c("1", "1Mi")], "containers": [c("1", "10Mi")]}});
        let r = pod_requests(&pod);
        // containers 1 + sidecar 0.5 = 1.5 cpu; the init step is 1 + 0.5 = 1.5 cpu.
        assert_eq!(r.milli_cpu, 1500);
        assert_eq!(r.memory, 110 * 1024 * 1024);
    }

    #[test]
    fn overhead_and_pod_level_requests() {
        let pod = json!({"spec": {"containers": [c("1", "1Mi")], "overhead": {"cpu": "250m", "memory": "1Mi"}}});
        let r = pod_requests(&pod);
        assert_eq!((r.milli_cpu, r.memory), (1250, 2 * 1024 * 1024));
        let pod = json!({"spec": {"resources": {"requests": {"cpu": "3"}}, "containers": [c("1", "1Mi")]}});
        let r = pod_requests(&pod);
        assert_eq!((r.milli_cpu, r.memory), (3000, 1024 * 1024));
    }

    #[test]
    fn scalar_and_ignored_resources() {
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {
            "example.com/gpu": "2", "hugepages-2Mi": "4Mi", "ephemeral-storage": "1Gi", "unknown": "5", "cpu": "bogus"}}}]}});
        let r = pod_requests(&pod);
        assert_eq!(r.scalars.get("example.com/gpu"), Some(&2));
        assert_eq!(r.scalars.get("hugepages-2Mi"), Some(&(4 * 1024 * 1024)));
        assert_eq!(r.ephemeral_storage, 1 << 30);
        assert_eq!(r.milli_cpu, 0, "an unreadable quantity counts as zero");
        assert!(!r.scalars.contains_key("unknown"));
    }

    #[test]
    fn non_zero_requests_default_only_missing_resources() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let r = pod_non_zero_requests(&pod);
        assert_eq!((r.milli_cpu, r.memory), (200, 2 * DEFAULT_MEMORY_REQUEST));
        assert!(pod_requests(&pod).is_empty_request());
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}, {"name": "b"}]}});
        let r = pod_non_zero_requests(&pod);
        assert_eq!(r.milli_cpu, 1000, "the pod names cpu: no default for the other container");
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn allocatable_and_arithmetic() {
        let node = json!({"status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "10Gi"}}});
        let mut a = node_allocatable(&node);
        assert_eq!((a.milli_cpu, a.memory, a.allowed_pods), (2000, 4 << 30, 110));
        let r = pod_requests(&json!({"spec": {"containers": [c("500m", "1Gi")]}}));
        a.sub(&r);
        assert_eq!((a.milli_cpu, a.memory), (1500, 3 << 30));
        a.add(&r);
        assert_eq!(a.milli_cpu, 2000);
        assert_eq!(node_allocatable(&json!({})), Resource::default());
    }
}
