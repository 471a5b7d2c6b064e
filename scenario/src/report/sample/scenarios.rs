//! The sample's scenarios.

use serde_json::json;

use crate::lanes::{Snapshot, node_lanes, pod_lanes};
use crate::record::{
    Artifact, Failure, FaultSpan, OpRecord, Outcome, Phase, ScenarioRecord, StepRecord,
    TrafficSummary,
};

use super::objects::{lease, node};
use super::story::{events, lease_snapshots, node_snapshots, pod_snapshots};
use super::{ev, op, step, ts};

pub(super) fn partition() -> ScenarioRecord {
    let end_ms = 96_500;
    let events = events();
    let nodes = node_lanes(&node_snapshots(), &lease_snapshots(), end_ms);
    let pods = pod_lanes(&pod_snapshots(), &events, end_ms);

    let mut steps = setup_steps();
    steps.extend(eviction_steps());
    steps.push(replacement_step());

    ScenarioRecord {
        name: "partitioned node heals".into(),
        file: "scenarios/node-failure/partitioned-node-heals.yaml".into(),
        description: Some(
            "node-a loses the API server for 65 s: the node lifecycle controller marks it Unknown and taints it unreachable, \
             the taint evicts web-0 after its 10 s toleration, and once the partition heals node-a must stop the deleted pod \
             and run the StatefulSet's replacement until it is Ready."
                .into(),
        ),
        cites: vec![
            "https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#taint-based-evictions".into(),
            "A node back from a partition kills the pods deleted meanwhile".into(),
        ],
        runtime: "containerd 2.1".into(),
        proxy_mode: "nftables".into(),
        duration_ms: end_ms,
        outcome: Outcome::Failed,
        message: Some(
            "Step 6 \"the replacement web-0 becomes Ready\" failed: the new web-0 on node-a stayed Ready=False for 20 s. \
             Its readiness and liveness probes got \"connection refused\" from 10.244.1.7 while the container logged that it \
             listens on 8080; node-a's pod forward chain still admits only the old pod's address 10.244.1.5."
                .into(),
        ),
        steps,
        nodes,
        pods,
        faults: vec![FaultSpan {
            text: "partition node-a from the API server".into(),
            target: "node-a".into(),
            start_ms: 5_000,
            end_ms: 70_000,
        }],
        events,
        traffic: vec![TrafficSummary {
            step: "web-0 is marked for deletion, web-1 serves".into(),
            target: "Service default/web 10.96.0.10:80 from client".into(),
            attempts: 20,
            succeeded: 20,
            per_endpoint: vec![("web-1 10.244.2.4:8080".into(), 20)],
            expected: "every request answered, none by the not-Ready web-0".into(),
        }],
        artifacts: vec![
            Artifact { label: "agent log node-a".into(), path: "partitioned-node-heals/node-a/agent.log".into() },
            Artifact { label: "agent log node-b".into(), path: "partitioned-node-heals/node-b/agent.log".into() },
            Artifact { label: "proxy log node-a".into(), path: "partitioned-node-heals/node-a/proxy.log".into() },
            Artifact { label: "audit log".into(), path: "partitioned-node-heals/audit.jsonl".into() },
            Artifact { label: "pcap step 4".into(), path: "partitioned-node-heals/step-4 client.pcap".into() },
            Artifact { label: "run record (JSON)".into(), path: "partitioned-node-heals/record.json".into() },
        ],
    }
}

/// The assert that fails: the replacement web-0 stays not Ready.
fn failed_assert() -> OpRecord {
    let mut assert_ready = op(
        Phase::Try,
        "assert",
        "assert Pod default/web-0 (Ready, within 20s)",
        74_000,
        94_000,
        Outcome::Failed,
    );
    assert_ready.failure = Some(Failure {
        message: "Pod default/web-0 did not match within 20s: status.conditions[type=Ready].status: expected \"True\", got \"False\" (reason ContainersNotReady)".into(),
        expected: Some(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "web-0", "namespace": "default" },
            "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] }
        })),
        actual: Some(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "web-0", "namespace": "default", "uid": "f0e1d2c3-9b33-4d77-8f20-3b4c5d6e7f82" },
            "status": {
                "phase": "Running",
                "conditions": [{ "type": "Ready", "status": "False", "reason": "ContainersNotReady",
                    "message": "containers with unready status: [web]", "lastTransitionTime": ts(72_900) }],
                "podIP": "10.244.1.7",
                "containerStatuses": [{ "name": "web", "ready": false, "restartCount": 1, "started": true,
                    "state": { "running": { "startedAt": ts(83_500) } },
                    "lastState": { "terminated": { "reason": "Error", "exitCode": 137, "finishedAt": ts(81_900) } } }]
            }
        })),
        diff: Some(
            "--- expected\n+++ actual (at 93.9s)\n@@ status.conditions[type=Ready] @@\n   type: Ready\n-  status: \"True\"\n+  status: \"False\"\n+  reason: ContainersNotReady\n+  message: 'containers with unready status: [web]'\n@@ status @@\n   phase: Running"
                .into(),
        ),
    });
    assert_ready
}

/// What the catch block collected once the assert had failed.
fn catch_ops() -> Vec<OpRecord> {
    let mut events_out = op(
        Phase::Catch,
        "events",
        "events default/web-0",
        94_000,
        94_100,
        Outcome::Passed,
    );
    events_out.output = Some(
        "LAST SEEN  TYPE     REASON     OBJECT     MESSAGE\n\
         20s        Normal   Scheduled  pod/web-0  Successfully assigned default/web-0 to node-a\n\
         10s        Normal   Killing    pod/web-0  Container web failed liveness probe, will be restarted\n\
         2s (x18)   Warning  Unhealthy  pod/web-0  Readiness probe failed: Get \"http://10.244.1.7:8080/readyz\": dial tcp 10.244.1.7:8080: connect: connection refused"
            .into(),
    );
    let mut logs = op(
        Phase::Catch,
        "podLogs",
        "pod logs default/web-0 (container web)",
        94_100,
        94_300,
        Outcome::Passed,
    );
    logs.output = Some(
        "I0601 10:01:23.512044       1 log.go:245] Started HTTP server on port 8080\n\
         I0601 10:01:23.512301       1 log.go:245] Started UDP server on port  8081"
            .into(),
    );
    let mut agent = op(
        Phase::Catch,
        "script",
        "script: nft list chain ip nodekit-pods forward (node-a)",
        94_300,
        94_600,
        Outcome::Passed,
    );
    agent.output = Some(
        "table ip nodekit-pods {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tip daddr 10.244.1.5 accept\n\t}\n}".into(),
    );
    vec![events_out, logs, agent]
}

/// web starts on both nodes, node-a is partitioned and goes Unknown.
fn setup_steps() -> Vec<StepRecord> {
    vec![
        step(
            "start web on both nodes",
            0,
            4_000,
            Outcome::Passed,
            vec![
                op(
                    Phase::Try,
                    "apply",
                    "apply StatefulSet default/web (2 replicas)",
                    0,
                    150,
                    Outcome::Passed,
                ),
                op(
                    Phase::Try,
                    "apply",
                    "apply Service default/web",
                    150,
                    200,
                    Outcome::Passed,
                ),
                op(
                    Phase::Try,
                    "assert",
                    "assert StatefulSet default/web (readyReplicas 2)",
                    200,
                    4_000,
                    Outcome::Passed,
                ),
            ],
        ),
        step(
            "partition node-a",
            4_000,
            5_000,
            Outcome::Passed,
            vec![op(
                Phase::Try,
                "fault",
                "fault partition node-a from the API server",
                4_900,
                5_000,
                Outcome::Passed,
            )],
        ),
        step(
            "node-a goes Unknown and is tainted",
            5_000,
            52_400,
            Outcome::Passed,
            vec![
                op(
                    Phase::Try,
                    "assert",
                    "assert Node node-a (Ready Unknown, within 60s)",
                    5_000,
                    52_100,
                    Outcome::Passed,
                ),
                op(
                    Phase::Try,
                    "assert",
                    "assert Node node-a (taint node.kubernetes.io/unreachable:NoExecute)",
                    52_100,
                    52_400,
                    Outcome::Passed,
                ),
            ],
        ),
    ]
}

/// web-0 is marked for deletion while web-1 serves; the partition heals.
fn eviction_steps() -> Vec<StepRecord> {
    vec![
        step(
            "web-0 is marked for deletion, web-1 serves",
            52_400,
            65_000,
            Outcome::Passed,
            vec![
                op(
                    Phase::Try,
                    "assert",
                    "assert Pod default/web-0 (deletionTimestamp set, within 15s)",
                    52_400,
                    62_300,
                    Outcome::Passed,
                ),
                op(
                    Phase::Try,
                    "traffic",
                    "traffic client → Service default/web:80 (20 requests)",
                    62_300,
                    65_000,
                    Outcome::Passed,
                ),
            ],
        ),
        step(
            "heal the partition",
            69_900,
            70_000,
            Outcome::Passed,
            vec![op(
                Phase::Try,
                "fault",
                "heal partition node-a",
                69_900,
                70_000,
                Outcome::Passed,
            )],
        ),
    ]
}

/// The replacement web-0 must become Ready on node-a, and does not.
fn replacement_step() -> StepRecord {
    let mut operations = vec![
        op(
            Phase::Try,
            "assert",
            "assert Node node-a (Ready True, within 30s)",
            70_000,
            70_600,
            Outcome::Passed,
        ),
        op(
            Phase::Try,
            "assert",
            "assert Pod default/web-0 (a new uid)",
            70_600,
            72_700,
            Outcome::Passed,
        ),
        op(
            Phase::Try,
            "assert",
            "assert Node node-a (no unreachable taints)",
            72_700,
            74_000,
            Outcome::Passed,
        ),
        failed_assert(),
    ];
    operations.extend(catch_ops());
    operations.push(op(
        Phase::Cleanup,
        "delete",
        "delete StatefulSet default/web",
        95_000,
        96_200,
        Outcome::Passed,
    ));
    step(
        "the replacement web-0 becomes Ready",
        70_000,
        96_200,
        Outcome::Failed,
        operations,
    )
}

pub(super) fn lease_renews() -> ScenarioRecord {
    let end_ms = 31_200;
    let nodes = node_lanes(
        &[Snapshot {
            at_ms: 0,
            object: node(
                "node-a",
                "10.77.0.11",
                "10.244.1.0/24",
                true,
                0,
                json!(null),
            ),
        }],
        &(0..4)
            .map(|i| Snapshot {
                at_ms: 200 + i * 10_000,
                object: lease("node-a", 200 + i * 10_000),
            })
            .collect::<Vec<_>>(),
        end_ms,
    );
    ScenarioRecord {
        name: "node lease renews every 10s".into(),
        file: "scenarios/heartbeats/lease-renews.yaml".into(),
        description: Some("The agent renews its Lease in kube-node-lease every 10 s and does not rewrite the Node status while nothing changes.".into()),
        cites: vec!["https://kubernetes.io/docs/concepts/architecture/leases/#node-heart-beats".into()],
        runtime: "containerd 2.1".into(),
        proxy_mode: "nftables".into(),
        duration_ms: end_ms,
        outcome: Outcome::Passed,
        message: None,
        steps: vec![
            step("node-a is Ready", 0, 200, Outcome::Passed, vec![
                op(Phase::Try, "assert", "assert Node node-a (Ready True)", 0, 200, Outcome::Passed),
            ]),
            step("three renewals, no status write", 200, 31_000, Outcome::Passed, vec![
                op(Phase::Try, "assert", "assert Lease kube-node-lease/node-a (renewTime advances 3 times, within 35s)", 200, 30_300, Outcome::Passed),
                op(Phase::Try, "error", "error Node node-a (status rewritten)", 30_300, 31_000, Outcome::Passed),
            ]),
        ],
        nodes,
        pods: vec![],
        faults: vec![],
        events: vec![ev(0, "Normal", "NodeReady", "Node/node-a", "Node node-a status is now: NodeReady", 1, "kubelet node-a")],
        traffic: vec![],
        artifacts: vec![Artifact { label: "agent log node-a".into(), path: "lease-renews/node-a/agent.log".into() }],
    }
}

pub(super) fn broken_world() -> ScenarioRecord {
    ScenarioRecord {
        name: "image pull failure backs off".into(),
        file: "scenarios/pod-lifecycle/image-pull-failure-backs-off.yaml".into(),
        description: None,
        cites: vec![],
        runtime: "containerd 1.6".into(),
        proxy_mode: "iptables".into(),
        duration_ms: 30_400,
        outcome: Outcome::Error,
        message: Some(
            "world: containerd on node-a did not become ready within 30s: dial unix /run/containerd/containerd.sock: connect: no such file or directory"
                .into(),
        ),
        steps: vec![],
        nodes: vec![],
        pods: vec![],
        faults: vec![],
        events: vec![],
        traffic: vec![],
        artifacts: vec![Artifact { label: "containerd log node-a".into(), path: "image-pull-failure-backs-off/node-a/containerd.log".into() }],
    }
}
