//! What was watched during the partition story: every version of the pods, nodes and leases,
//! and the events.

use serde_json::{Value, json};

use crate::lanes::Snapshot;
use crate::record::EventRow;

use super::objects::{PodAt, lease, node, running, terminated, unreachable_taints, waiting};
use super::{IMAGE, ev};

/// The pod versions of the partition story, in time order.
pub(super) fn pod_snapshots() -> Vec<Snapshot> {
    let mut out = Vec::new();
    let mut push = |at: u64, p: &PodAt| {
        out.push(Snapshot {
            at_ms: at,
            object: p.json(at),
        })
    };

    // web-0 on node-a
    let mut a = PodAt::new("web-0", "8b1f7c2e-0a11-4c55-9d0e-1f2a3b4c5d60");
    push(200, &a);
    a.node = Some("node-a");
    push(250, &a);
    a.ready = Some(("False", Some("ContainersNotReady")));
    a.container = Some(waiting("ContainerCreating"));
    push(400, &a);
    a.phase = "Running";
    a.ip = Some("10.244.1.5");
    a.container = Some(running(1500));
    push(1500, &a);
    a.ready = Some(("True", None));
    push(2600, &a);

    // web-1 on node-b, once web-0 is Ready
    let mut b = PodAt::new("web-1", "c3d9e0f1-7a22-4b66-8e1f-2a3b4c5d6e71");
    push(2700, &b);
    b.node = Some("node-b");
    b.ready = Some(("False", Some("ContainersNotReady")));
    b.container = Some(waiting("ContainerCreating"));
    push(2800, &b);
    b.phase = "Running";
    b.ip = Some("10.244.2.4");
    b.container = Some(running(3400));
    push(3400, &b);
    b.ready = Some(("True", None));
    push(3900, &b);

    // node-a is Unknown: the node lifecycle controller marks its pods not Ready
    a.ready = Some(("False", None));
    push(52_200, &a);
    // the unreachable taint's tolerationSeconds (10 s) run out
    a.deleting_since = Some(62_100);
    push(62_100, &a);
    // node-a is back: its agent stops the deleted pod, then the pod is gone
    a.container = Some(terminated("Completed", 0, 71_000));
    push(71_000, &a);
    a.deleted = true;
    push(72_500, &a);

    // the StatefulSet's replacement web-0, back on node-a
    let mut c = PodAt::new("web-0", "f0e1d2c3-9b33-4d77-8f20-3b4c5d6e7f82");
    push(72_600, &c);
    c.node = Some("node-a");
    push(72_700, &c);
    c.ready = Some(("False", Some("ContainersNotReady")));
    c.container = Some(waiting("ContainerCreating"));
    push(72_900, &c);
    c.phase = "Running";
    c.ip = Some("10.244.1.7");
    c.container = Some(running(73_600));
    push(73_600, &c);
    c.container = Some(terminated("Error", 137, 81_900));
    push(81_900, &c);
    c.container = Some(running(83_500));
    c.restarts = 1;
    push(83_500, &c);

    // cleanup deletes the StatefulSet
    c.deleting_since = Some(95_100);
    b.deleting_since = Some(95_100);
    b.ready = Some(("False", Some("ContainersNotReady")));
    push(95_100, &c);
    push(95_100, &b);
    c.deleted = true;
    b.deleted = true;
    push(96_000, &c);
    push(96_100, &b);
    out
}

pub(super) fn node_snapshots() -> Vec<Snapshot> {
    let s = |at_ms: u64, object: Value| Snapshot { at_ms, object };
    vec![
        s(
            0,
            node(
                "node-a",
                "10.77.0.11",
                "10.244.1.0/24",
                true,
                0,
                json!(null),
            ),
        ),
        s(
            0,
            node(
                "node-b",
                "10.77.0.12",
                "10.244.2.0/24",
                true,
                0,
                json!(null),
            ),
        ),
        s(
            52_000,
            node(
                "node-a",
                "10.77.0.11",
                "10.244.1.0/24",
                false,
                52_000,
                json!(null),
            ),
        ),
        s(
            52_100,
            node(
                "node-a",
                "10.77.0.11",
                "10.244.1.0/24",
                false,
                52_000,
                unreachable_taints(52_100),
            ),
        ),
        s(
            70_500,
            node(
                "node-a",
                "10.77.0.11",
                "10.244.1.0/24",
                true,
                70_500,
                unreachable_taints(52_100),
            ),
        ),
        s(
            72_000,
            node(
                "node-a",
                "10.77.0.11",
                "10.244.1.0/24",
                true,
                70_500,
                json!(null),
            ),
        ),
    ]
}

pub(super) fn lease_snapshots() -> Vec<Snapshot> {
    let mut out = vec![];
    // node-a renews every 10 s until the partition, and again once it heals
    for at in [300, 70_400, 80_400, 90_400] {
        out.push(Snapshot {
            at_ms: at,
            object: lease("node-a", at),
        });
    }
    for at in (0..10).map(|i| 4_000 + i * 10_000) {
        out.push(Snapshot {
            at_ms: at,
            object: lease("node-b", at),
        });
    }
    out
}

pub(super) fn events() -> Vec<EventRow> {
    let mut out = start_events();
    out.extend(partition_events());
    out.extend(replacement_events());
    out.extend(probe_failure_events());
    out
}

/// The StatefulSet starts web-0 on node-a, then web-1 on node-b.
fn start_events() -> Vec<EventRow> {
    vec![
        ev(
            100,
            "Normal",
            "SuccessfulCreate",
            "StatefulSet/default/web",
            "create Pod web-0 in StatefulSet web successful",
            1,
            "statefulset-controller",
        ),
        ev(
            250,
            "Normal",
            "Scheduled",
            "Pod/default/web-0",
            "Successfully assigned default/web-0 to node-a",
            1,
            "default-scheduler",
        ),
        ev(
            1200,
            "Normal",
            "Pulled",
            "Pod/default/web-0",
            &format!("Container image \"{IMAGE}\" already present on machine"),
            1,
            "kubelet node-a",
        ),
        ev(
            1300,
            "Normal",
            "Created",
            "Pod/default/web-0",
            "Created container: web",
            1,
            "kubelet node-a",
        ),
        ev(
            1500,
            "Normal",
            "Started",
            "Pod/default/web-0",
            "Started container web",
            1,
            "kubelet node-a",
        ),
        ev(
            2700,
            "Normal",
            "SuccessfulCreate",
            "StatefulSet/default/web",
            "create Pod web-1 in StatefulSet web successful",
            1,
            "statefulset-controller",
        ),
        ev(
            2750,
            "Normal",
            "Scheduled",
            "Pod/default/web-1",
            "Successfully assigned default/web-1 to node-b",
            1,
            "default-scheduler",
        ),
        ev(
            3400,
            "Normal",
            "Started",
            "Pod/default/web-1",
            "Started container web",
            1,
            "kubelet node-b",
        ),
    ]
}

/// node-a is partitioned and goes NotReady, web-0 is marked for deletion; node-a is back and
/// stops it.
fn partition_events() -> Vec<EventRow> {
    vec![
        ev(
            52_000,
            "Normal",
            "NodeNotReady",
            "Node/node-a",
            "Node node-a status is now: NodeNotReady",
            1,
            "node-controller",
        ),
        ev(
            52_200,
            "Warning",
            "NodeNotReady",
            "Pod/default/web-0",
            "Node is not ready",
            1,
            "node-controller",
        ),
        ev(
            62_100,
            "Normal",
            "TaintManagerEviction",
            "Pod/default/web-0",
            "Marking for deletion Pod default/web-0",
            1,
            "taint-eviction-controller",
        ),
        ev(
            70_500,
            "Normal",
            "NodeReady",
            "Node/node-a",
            "Node node-a status is now: NodeReady",
            1,
            "kubelet node-a",
        ),
        ev(
            70_800,
            "Normal",
            "Killing",
            "Pod/default/web-0",
            "Stopping container web",
            1,
            "kubelet node-a",
        ),
    ]
}

/// The replacement web-0 is created and started on node-a.
fn replacement_events() -> Vec<EventRow> {
    vec![
        ev(
            72_600,
            "Normal",
            "SuccessfulCreate",
            "StatefulSet/default/web",
            "create Pod web-0 in StatefulSet web successful",
            2,
            "statefulset-controller",
        ),
        ev(
            72_700,
            "Normal",
            "Scheduled",
            "Pod/default/web-0",
            "Successfully assigned default/web-0 to node-a",
            1,
            "default-scheduler",
        ),
        ev(
            73_600,
            "Normal",
            "Started",
            "Pod/default/web-0",
            "Started container web",
            1,
            "kubelet node-a",
        ),
    ]
}

/// The replacement's probes fail: a restart, and it stays not Ready.
fn probe_failure_events() -> Vec<EventRow> {
    let probe = "Readiness probe failed: Get \"http://10.244.1.7:8080/readyz\": dial tcp 10.244.1.7:8080: connect: connection refused";
    vec![
        ev(
            75_000,
            "Warning",
            "Unhealthy",
            "Pod/default/web-0",
            probe,
            1,
            "kubelet node-a",
        ),
        ev(
            78_000,
            "Warning",
            "Unhealthy",
            "Pod/default/web-0",
            probe,
            4,
            "kubelet node-a",
        ),
        ev(
            80_000,
            "Warning",
            "Unhealthy",
            "Pod/default/web-0",
            "Liveness probe failed: Get \"http://10.244.1.7:8080/healthz\": dial tcp 10.244.1.7:8080: connect: connection refused",
            3,
            "kubelet node-a",
        ),
        ev(
            80_100,
            "Normal",
            "Killing",
            "Pod/default/web-0",
            "Container web failed liveness probe, will be restarted",
            1,
            "kubelet node-a",
        ),
        ev(
            83_500,
            "Normal",
            "Started",
            "Pod/default/web-0",
            "Started container web",
            2,
            "kubelet node-a",
        ),
        ev(
            86_000,
            "Warning",
            "Unhealthy",
            "Pod/default/web-0",
            probe,
            12,
            "kubelet node-a",
        ),
        ev(
            92_000,
            "Warning",
            "Unhealthy",
            "Pod/default/web-0",
            probe,
            18,
            "kubelet node-a",
        ),
    ]
}
