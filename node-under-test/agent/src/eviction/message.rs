//! The texts of eviction (pure): the pod status message, the Evicted event's annotations, the
//! admission rejection message, and quantities formatted the way upstream prints them.

use std::collections::BTreeMap;

use super::rank::Candidate;
use super::signals::{Observed, PodUsage, Pressure, Signal};
use super::thresholds::{Threshold, Value};

/// Event annotation: the containers that used more than they requested.
pub const OFFENDING_CONTAINERS: &str = "offending_containers";
/// Event annotation: their usage.
pub const OFFENDING_CONTAINERS_USAGE: &str = "offending_containers_usage";
/// Event annotation: the resource the node was low on.
pub const STARVED_RESOURCE: &str = "starved_resource";

/// A byte count as a Kubernetes binary quantity (`300Mi`, `1536Ki`, `1000`).
pub fn format_bytes(v: i64) -> String {
    if v == 0 {
        return "0".into();
    }
    for (suffix, unit) in [("Ei", 1i64 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if v % unit == 0 {
            return format!("{}{suffix}", v / unit);
        }
    }
    v.to_string()
}

fn format_amount(signal: Signal, v: i64) -> String {
    match signal {
        Signal::MemoryAvailable | Signal::NodeFsAvailable | Signal::ImageFsAvailable => format_bytes(v),
        _ => v.to_string(),
    }
}

/// The threshold quantity as upstream prints it (a percentage resolved against capacity).
pub fn threshold_quantity(t: &Threshold, capacity: i64) -> String {
    match t.value {
        Value::Quantity(_) => t.text.clone(),
        Value::Percent(_) => format_amount(t.signal, t.value.resolve(capacity)),
    }
}

/// The eviction message and the event annotations.
pub fn eviction_message(
    t: &Threshold,
    observed: &Observed,
    pod: &Candidate,
    usage: Option<&PodUsage>,
) -> (String, BTreeMap<String, String>) {
    let resource = t.signal.resource();
    let mut msg = format!("The node was low on resource: {resource}. ");
    msg.push_str(&format!(
        "Threshold quantity: {}, available: {}. ",
        threshold_quantity(t, observed.capacity),
        format_amount(t.signal, observed.available)
    ));
    let mut names = Vec::new();
    let mut usages = Vec::new();
    if matches!(t.signal, Signal::MemoryAvailable | Signal::NodeFsAvailable | Signal::ImageFsAvailable) {
        for (name, mem_req, disk_req) in &pod.requests {
            let Some(c) = usage.and_then(|u| u.containers.iter().find(|c| &c.name == name)) else { continue };
            let (used, req) = if t.signal == Signal::MemoryAvailable { (c.memory, *mem_req) } else { (c.disk, *disk_req) };
            if used > req {
                msg.push_str(&format!(
                    "Container {name} was using {}, request is {}, has larger consumption of {resource}. ",
                    format_bytes(used),
                    format_bytes(req)
                ));
                names.push(name.clone());
                usages.push(format_bytes(used));
            }
        }
    }
    let annotations = BTreeMap::from([
        (OFFENDING_CONTAINERS.to_string(), names.join(",")),
        (OFFENDING_CONTAINERS_USAGE.to_string(), usages.join(",")),
        (STARVED_RESOURCE.to_string(), resource.to_string()),
    ]);
    (msg, annotations)
}

/// The message of a pod rejected at admission under pressure.
pub fn admission_message(pressures: &[Pressure]) -> String {
    let names: Vec<&str> = pressures.iter().map(|p| p.condition()).collect();
    format!("The node had condition: [{}]. ", names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::super::signals::ContainerUsage;
    use super::*;

    #[test]
    fn upstream_message_format() {
        let t = Threshold {
            signal: Signal::MemoryAvailable,
            value: Value::Quantity(100 << 20),
            text: "100Mi".into(),
            grace: std::time::Duration::ZERO,
            hard: true,
            min_reclaim: None,
        };
        let pod = Candidate { uid: "u".into(), priority: 0, requests: vec![("hog".into(), 0, 0), ("side".into(), 64 << 20, 0)] };
        let usage = PodUsage {
            uid: "u".into(),
            containers: vec![
                ContainerUsage { name: "hog".into(), memory: 300 << 20, ..Default::default() },
                ContainerUsage { name: "side".into(), memory: 10 << 20, ..Default::default() },
            ],
            ..Default::default()
        };
        let (m, a) = eviction_message(&t, &Observed { available: 12 << 20, capacity: 1 << 30 }, &pod, Some(&usage));
        assert_eq!(
            m,
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 12Mi. Container hog was using 300Mi, request is 0, has larger consumption of memory. "
        );
        assert_eq!(a[OFFENDING_CONTAINERS], "hog");
        assert_eq!(a[OFFENDING_CONTAINERS_USAGE], "300Mi");
        assert_eq!(a[STARVED_RESOURCE], "memory");
    }

    #[test]
    fn percentages_and_formats() {
        let t = Threshold {
            signal: Signal::NodeFsAvailable,
            value: Value::Percent(10.0),
            text: "10%".into(),
            grace: std::time::Duration::ZERO,
            hard: true,
            min_reclaim: None,
        };
        assert_eq!(threshold_quantity(&t, 1 << 30), "107374182");
        assert_eq!(threshold_quantity(&t, 1000 << 20), "100Mi");
        assert_eq!(format_bytes(1536), "1536");
        assert_eq!(format_bytes(3 << 20), "3Mi");
        assert_eq!(format_bytes(1025 << 10), "1025Ki");
        assert_eq!(admission_message(&[Pressure::Memory]), "The node had condition: [MemoryPressure]. ");
        assert_eq!(admission_message(&[Pressure::Memory, Pressure::Disk]), "The node had condition: [MemoryPressure DiskPressure]. ");
    }
}
