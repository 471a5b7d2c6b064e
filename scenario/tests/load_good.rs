//! Good scenario files load into exactly the model the runner expects.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scenario::load::{self, load_file, load_str};
use scenario::model::*;
use serde_json::json;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn the_full_scenario_loads() {
    let path = Path::new("tests/data/good/stuck-terminating.yaml");
    let all = load_file(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 1);
    let s = &all[0];
    assert_eq!(s.name, "stuck-terminating-while-partitioned");
    assert_eq!(s.file, path);
    assert_eq!(s.origin, Origin::Scenario);
    assert_eq!(s.reproduces.len(), 2);
    assert_eq!(s.world.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["node-a", "node-b"]);
    assert_eq!(s.world.runtime, Some(RuntimeName::FakeCri));
    assert_eq!(s.world.proxy_mode, ProxyMode::Iptables);
    assert_eq!(s.world.kubelet_config, json!({"evictionHard": {"memory.available": "100Mi"}}));
    assert_eq!(s.world.proxy_config, json!({"conntrack": {"maxPerCore": 0}}));
    assert_eq!(s.world.node_monitor_grace_period, secs(10));
    // Scenario timeouts over Chainsaw's defaults; step timeouts over the scenario's.
    let t = Timeouts { apply: secs(10), assert: secs(60), ..Timeouts::default() };
    assert_eq!(s.timeouts, t);
    assert_eq!(s.steps.len(), 3);
    let deploy = &s.steps[0];
    assert_eq!(deploy.name, "deploy");
    assert_eq!(deploy.timeouts, Timeouts { assert: secs(90), ..t });
    assert_eq!(s.steps[1].name, "step-2");
    assert_eq!(s.steps[1].timeouts, t);

    // apply from a file, relative to the scenario.
    let op = &deploy.try_[0];
    assert_eq!(op.line, 26);
    assert_eq!(op.timeout, None);
    let Action::Apply(r) = &op.action else { panic!("{op:?}") };
    assert_eq!(r.source, "pod.yaml");
    assert_eq!(r.objects.len(), 1);
    assert_eq!(r.objects[0]["spec"]["nodeName"], "node-a");

    // assert inline with holdFor and its own timeout.
    let op = &deploy.try_[1];
    assert_eq!(op.timeout, Some(secs(60)));
    let Action::Assert(c) = &op.action else { panic!("{op:?}") };
    assert_eq!(c.hold_for, Some(secs(10)));
    assert_eq!(c.source, "inline");
    assert_eq!(c.expected[0]["status"], json!({"(conditions[?type == 'Ready'])": [{"status": "True"}]}));
    // assert from a file with two documents.
    let Action::Assert(c) = &deploy.try_[2].action else { panic!() };
    assert_eq!(c.expected.len(), 2);
    assert_eq!(c.source, "pod-assert.yaml");

    // Faults.
    let faults = &s.steps[1].try_;
    assert_eq!(faults[0].description.as_deref(), Some("cut node-a off"));
    assert!(faults[0].continue_on_error);
    assert_eq!(
        faults[0].action,
        Action::Fault(Fault {
            name: Some("cut".into()),
            duration: Some(secs(30)),
            kind: FaultKind::Partition { node: "node-a".into(), direction: Direction::Both },
        })
    );
    assert_eq!(
        faults[1].action,
        Action::Fault(Fault {
            name: None,
            duration: None,
            kind: FaultKind::ApiServer(ApiServerFault {
                verb: Some("patch".into()),
                resource: Some("pods/status".into()),
                code: Some(500),
                message: Some("boom".into()),
                latency: Some(secs(2)),
                times: Some(10),
            }),
        })
    );
    assert_eq!(faults[2].action, Action::Fault(Fault { name: None, duration: None, kind: FaultKind::DropWatches }));
    assert_eq!(
        faults[3].action,
        Action::Fault(Fault {
            name: Some("slow".into()),
            duration: None,
            kind: FaultKind::Link(LinkFault {
                between: ("node-a".into(), "cp".into()),
                delay: Some(Duration::from_millis(200)),
                loss: Some(10.0),
                down: false,
            }),
        })
    );
    let Action::Fault(Fault { kind: FaultKind::Runtime { node, faults: rf }, .. }) = &faults[4].action else {
        panic!()
    };
    assert_eq!(node, "node-b");
    assert_eq!(rf.pull_error.get("nodekit.local/workload:1.0").map(String::as_str), Some("no such image"));
    assert_eq!(rf.crash_after.get("c"), Some(&secs(2)));
    assert_eq!(rf.latency, Some(Duration::from_millis(100)));
    assert!(matches!(
        &faults[5].action,
        Action::Fault(Fault { kind: FaultKind::Kill { component: Component::Node, .. }, .. })
    ));
    assert!(matches!(
        &faults[6].action,
        Action::Fault(Fault { kind: FaultKind::Restart { component: Component::Proxy, .. }, .. })
    ));
    assert!(matches!(
        &faults[7].action,
        Action::Fault(Fault { kind: FaultKind::Stop { component: Component::Agent, .. }, .. })
    ));
    assert_eq!(
        faults[8].action,
        Action::Delete(Delete::Ref(ObjectRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some("default".into()),
            name: Some("web".into()),
            labels: Default::default(),
        }))
    );
    let Action::Error(c) = &faults[9].action else { panic!() };
    assert_eq!(c.hold_for, None);
    assert_eq!(faults[10].action, Action::Heal(Heal { fault: Some("cut".into()) }));
    assert_eq!(faults[11].action, Action::Heal(Heal { fault: None }));
    // catch, finally, cleanup.
    let step = &s.steps[1];
    assert_eq!(
        step.catch[0].action,
        Action::Events(Events {
            namespace: Some("default".into()),
            name: Some("web".into()),
            selector: None,
            expect: None
        })
    );
    assert_eq!(
        step.catch[1].action,
        Action::PodLogs(PodLogs {
            namespace: Some("default".into()),
            name: Some("web".into()),
            selector: None,
            container: Some("c".into()),
            tail: Some(20),
        })
    );
    assert!(matches!(&step.finally[0].action, Action::Describe(q) if q.name.as_deref() == Some("web")));
    assert_eq!(step.cleanup[0].timeout, Some(secs(10)));

    // The third step.
    let ops = &s.steps[2].try_;
    assert_eq!(ops[0].timeout, Some(secs(30)));
    assert_eq!(
        ops[0].action,
        Action::Wait(Wait {
            target: ObjectQuery {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: Some("default".into()),
                name: Some("web".into()),
                selector: None,
            },
            for_: WaitFor::Condition { name: "Ready".into(), value: "true".into() },
        })
    );
    assert!(
        matches!(&ops[1].action, Action::Wait(w) if w.for_ == WaitFor::Deletion && w.target.selector.as_deref() == Some("app=web"))
    );
    assert!(
        matches!(&ops[2].action, Action::Wait(w) if w.for_ == WaitFor::JsonPath { path: "{.status.phase}".into(), value: "Running".into() })
    );
    assert_eq!(ops[3].action, Action::Sleep(secs(2)));
    assert_eq!(ops[3].timeout, None);
    assert_eq!(
        ops[4].action,
        Action::Script(Script {
            content: "kubectl get pods".into(),
            shell: None,
            shell_args: vec![],
            env: vec![("X".into(), "y".into()), ("N".into(), "3".into())],
            check: Some(json!({"($error == null)": true})),
        })
    );
    assert_eq!(
        ops[5].action,
        Action::Command(Command {
            entrypoint: "kubectl".into(),
            args: vec!["get".into(), "nodes".into()],
            env: vec![],
            check: Some(json!({"($error)": null})),
        })
    );
    assert_eq!(
        ops[6].action,
        Action::Events(Events {
            namespace: None,
            name: None,
            selector: None,
            expect: Some(EventExpectation {
                reason: Some("Unhealthy".into()),
                message: Some("*probe failed*".into()),
                type_: Some("Warning".into()),
                involved_kind: Some("Pod".into()),
                involved_name: Some("web".into()),
                involved_namespace: Some("default".into()),
                count: CountRule::AtLeast(3),
            }),
        })
    );
    assert!(
        matches!(&ops[7].action, Action::Events(Events { expect: Some(e), .. }) if e.count == CountRule::Exactly(1))
    );
    assert!(matches!(&ops[8].action, Action::Get(q) if q.selector.as_deref() == Some("app=web")));
    assert!(matches!(&ops[9].action, Action::Patch(r) if r.source == "inline"));
    assert!(matches!(&ops[10].action, Action::Update(r) if r.source == "pod.yaml"));
    assert!(matches!(&ops[11].action, Action::Create(r) if r.objects[0]["data"]["a"] == "1"));
    assert!(matches!(&ops[12].action, Action::Delete(Delete::Objects(r)) if r.source == "pod.yaml"));
    assert_eq!(ops[12].timeout, Some(secs(20)));
}

#[test]
fn traffic_and_capture_load() {
    let path = Path::new("tests/data/good/traffic.yaml");
    let all = load_file(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 1);
    let s = &all[0];
    let ops = &s.steps[0].try_;
    assert_eq!(
        ops[0].action,
        Action::Capture(CaptureSpec { hosts: vec!["node-a".into(), "client".into(), "cp".into()] })
    );
    assert_eq!(ops[0].timeout, None);
    // Defaults: from the client, 10 connections, the service in "default".
    assert_eq!(
        ops[1].action,
        Action::Traffic(Traffic {
            from: "client".into(),
            to: TrafficTarget::Service { namespace: "default".into(), name: "web".into(), port: 80 },
            connections: 10,
            expect: TrafficExpect { success_rate: Some(100.0), min_endpoints: Some(2), max_endpoints: None, refused: false },
        })
    );
    assert_eq!(ops[1].timeout, None);
    assert_eq!(ops[1].line, 13);
    assert_eq!(
        ops[2].action,
        Action::Traffic(Traffic {
            from: "node-b".into(),
            to: TrafficTarget::NodePort { node: "node-a".into(), port: 30080 },
            connections: 20,
            expect: TrafficExpect { success_rate: Some(99.5), min_endpoints: None, max_endpoints: None, refused: false },
        })
    );
    assert_eq!(ops[2].timeout, Some(secs(30)));
    assert_eq!(ops[3].description.as_deref(), Some("nothing listens on the pod's other port"));
    assert!(ops[3].continue_on_error);
    assert_eq!(
        ops[3].action,
        Action::Traffic(Traffic {
            from: "cp".into(),
            to: TrafficTarget::Pod { namespace: "shop".into(), name: "web-1".into(), port: 9376 },
            connections: 1,
            expect: TrafficExpect { success_rate: Some(0.0), min_endpoints: None, max_endpoints: None, refused: true },
        })
    );
    // No hosts: every host.
    let ops = &s.steps[1].try_;
    assert_eq!(ops[0].action, Action::Capture(CaptureSpec::default()));
    assert_eq!(ops[1].action, Action::Capture(CaptureSpec::default()));
    assert_eq!(
        ops[2].action,
        Action::Traffic(Traffic {
            from: "client".into(),
            to: TrafficTarget::Service { namespace: "shop".into(), name: "web".into(), port: 65535 },
            connections: 1000,
            expect: TrafficExpect { success_rate: None, min_endpoints: Some(1000), max_endpoints: None, refused: false },
        })
    );
    // The operation's timeout, else the step's assert timeout.
    assert_eq!(default_timeout(&ops[2].action, &s.steps[1].timeouts), secs(30));
}

#[test]
fn a_file_may_hold_a_scenario_and_a_test() {
    let all = load_file(Path::new("tests/data/good/two-in-one.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].origin, Origin::Scenario);
    assert_eq!(all[0].world.authorization_mode, AuthorizationMode::NodeRbac, "Node,RBAC unless the file says otherwise");
    assert_eq!(all[0].world.nodes.len(), 2);
    assert_eq!(all[0].world.nodes[1].kubelet_config, json!({"maxPods": 10}));
    assert_eq!(all[0].world.runtime, None);
    assert_eq!(all[0].world.proxy_mode, ProxyMode::Nftables);
    assert_eq!(all[0].world.node_monitor_grace_period, secs(20));
    assert!(matches!(
        &all[0].steps[0].try_[0].action,
        Action::Fault(Fault { kind: FaultKind::Partition { direction: Direction::Both, .. }, .. })
    ));
    // A Chainsaw Test in the default namespace: no namespace step.
    let t = &all[1];
    assert_eq!(t.origin, Origin::ChainsawTest);
    assert_eq!(t.steps.len(), 1);
    let Action::Apply(r) = &t.steps[0].try_[0].action else { panic!() };
    assert_eq!(r.objects[0]["metadata"]["namespace"], "default");
}

#[test]
fn the_chainsaw_test_loads_in_its_namespace() {
    let all =
        load_file(Path::new("tests/data/chainsaw/deployment/chainsaw-test.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 1);
    let t = &all[0];
    assert_eq!(t.name, "deployment");
    assert_eq!(t.origin, Origin::ChainsawTest);
    assert_eq!(t.world, scenario::chainsaw::default_world());
    assert_eq!(t.world.nodes[0].name, "node-a");
    assert_eq!(t.timeouts, Timeouts { assert: Duration::from_secs(120), ..Timeouts::default() });
    let ns = "chainsaw-deployment";
    // The namespace step comes first and creates the namespace.
    assert_eq!(t.steps.len(), 3);
    assert_eq!(t.steps[0].name, "namespace");
    let Action::Apply(r) = &t.steps[0].try_[0].action else { panic!() };
    assert_eq!(r.objects, vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})]);
    assert_eq!(t.steps[0].try_[0].line, 5);
    // Objects without a namespace get it.
    let create = &t.steps[1];
    assert_eq!(create.name, "create the deployment");
    let Action::Apply(r) = &create.try_[0].action else { panic!() };
    assert_eq!(r.source, "deployment.yaml");
    assert_eq!(r.objects[0]["metadata"]["namespace"], ns);
    let Action::Assert(c) = &create.try_[1].action else { panic!() };
    assert_eq!(c.expected[0]["metadata"]["namespace"], ns);
    assert_eq!(c.expected[0]["status"]["readyReplicas"], 2);
    // Collectors too.
    assert_eq!(
        create.catch[0].action,
        Action::PodLogs(PodLogs {
            namespace: Some(ns.into()),
            name: None,
            selector: Some("app=web".into()),
            container: None,
            tail: Some(30)
        })
    );
    assert_eq!(
        create.catch[1].action,
        Action::Events(Events { namespace: Some(ns.into()), name: None, selector: None, expect: None })
    );
    assert!(matches!(&create.catch[2].action, Action::Describe(q) if q.namespace.as_deref() == Some(ns)));
    let scale = &t.steps[2];
    let Action::Assert(c) = &scale.try_[1].action else { panic!() };
    // ($namespace) is the namespace.
    assert_eq!(c.expected[0]["metadata"]["namespace"], ns);
    assert_eq!(scale.try_[1].timeout, Some(Duration::from_secs(60)));
    let Action::Script(sc) = &scale.try_[2].action else { panic!() };
    assert_eq!(sc.env, vec![("NAMESPACE".to_string(), ns.to_string())]);
    assert!(matches!(&scale.finally[0].action, Action::Get(q) if q.namespace.as_deref() == Some(ns)));
    assert!(matches!(&scale.cleanup[0].action, Action::Delete(Delete::Ref(r)) if r.namespace.as_deref() == Some(ns)));
    assert!(
        matches!(&scale.cleanup[1].action, Action::Wait(w) if w.target.namespace.as_deref() == Some(ns) && w.for_ == WaitFor::Deletion)
    );
}

#[test]
fn a_chainsaw_proxy_is_refused_by_name() {
    let e = load_file(Path::new("tests/data/chainsaw/unsupported-proxy.yaml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tests/data/chainsaw/unsupported-proxy.yaml:10:7: spec.steps[0].try[1].proxy: Chainsaw's proxy operation is not supported by nodekit"
    );
    assert_eq!((e.line, e.column), (10, 7));
    assert_eq!(e.path, "spec.steps[0].try[1].proxy");
}

#[test]
fn test_level_catch_runs_before_the_steps() {
    let text = "\
apiVersion: chainsaw.kyverno.io/v1alpha1
kind: Test
metadata: {name: t}
spec:
  namespace: mine
  catch:
  - events: {}
  steps:
  - try:
    - sleep: {duration: 1s}
    catch:
    - podLogs: {}
";
    let all = load_str(text, Path::new("x/t.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let t = &all[0];
    assert_eq!(t.steps[0].name, "namespace");
    assert_eq!(t.steps[0].try_[0].line, 5);
    let step = &t.steps[1];
    assert_eq!(step.name, "step-1");
    assert!(matches!(&step.catch[0].action, Action::Events(e) if e.namespace.as_deref() == Some("mine")));
    assert!(matches!(&step.catch[1].action, Action::PodLogs(p) if p.namespace.as_deref() == Some("mine")));
}

#[test]
fn chainsaw_features_are_refused_by_name() {
    let cases = [
        (
            "spec:\n  bindings: []\n  steps: []",
            "t.yaml:6:3: spec.bindings: not supported by nodekit (Chainsaw bindings); remove it",
        ),
        (
            "spec:\n  steps:\n  - use: {template: x.yaml}",
            "t.yaml:7:5: spec.steps[0].use: not supported by nodekit (Chainsaw step templates); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - apply: {file: a.yaml, outputs: []}",
            "t.yaml:8:29: spec.steps[0].try[0].apply.outputs: not supported by nodekit (Chainsaw outputs); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - apply: {file: a.yaml, template: true}",
            "t.yaml:8:29: spec.steps[0].try[0].apply.template: not supported by nodekit (Chainsaw templating; nodekit sends objects as written); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - apply: {file: a.yaml, cluster: other}",
            "t.yaml:8:29: spec.steps[0].try[0].apply.cluster: not supported by nodekit (Chainsaw multi-cluster tests); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - compiler: cel\n      sleep: {duration: 1s}",
            "t.yaml:8:7: spec.steps[0].try[0].compiler: not supported by nodekit (Chainsaw expression compilers); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - create: {file: a.yaml, expect: []}",
            "t.yaml:8:30: spec.steps[0].try[0].create.expect: not supported by nodekit (Chainsaw expectations on operation results); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - apply: {file: a.yaml, dryRun: true}",
            "t.yaml:8:29: spec.steps[0].try[0].apply.dryRun: not supported by nodekit (Chainsaw dry runs); remove it",
        ),
        (
            "spec:\n  scenarios: []\n  steps: []",
            "t.yaml:6:3: spec.scenarios: not supported by nodekit (Chainsaw scenarios); remove it",
        ),
        (
            "spec:\n  namespaceTemplate: {}\n  steps: []",
            "t.yaml:6:3: spec.namespaceTemplate: not supported by nodekit (Chainsaw namespace templates); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - script: {content: ls, workDir: /tmp}",
            "t.yaml:8:29: spec.steps[0].try[0].script.workDir: not supported by nodekit (Chainsaw working directories; scripts run in the scenario's directory); remove it",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - patch: {file: a.yaml, subresource: status}",
            "t.yaml:8:29: spec.steps[0].try[0].patch.subresource: not supported by nodekit (Chainsaw patches of subresources); remove it",
        ),
        (
            "spec:\n  skip: true\n  steps: []",
            "t.yaml:6:3: spec.skip: not supported by nodekit (Chainsaw skip: true); leave the file out of the run",
        ),
        (
            "spec:\n  world: {nodes: 2}\n  steps: []",
            "t.yaml:6:3: spec.world: world is a nodekit addition, not part of a Chainsaw Test; write the file as apiVersion: nodekit.dev/v1alpha1, kind: Scenario",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - assert: {holdFor: 1s, resource: {apiVersion: v1, kind: Pod}}",
            "t.yaml:8:16: spec.steps[0].try[0].assert.holdFor: holdFor is a nodekit addition, not part of a Chainsaw Test; write the file as apiVersion: nodekit.dev/v1alpha1, kind: Scenario",
        ),
        (
            "spec:\n  steps:\n  - try:\n    - events: {reason: Started}",
            "t.yaml:8:16: spec.steps[0].try[0].events.reason: events.reason is a nodekit addition, not part of a Chainsaw Test; write the file as apiVersion: nodekit.dev/v1alpha1, kind: Scenario",
        ),
    ];
    for (spec, want) in cases {
        let text = format!("apiVersion: chainsaw.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: t\n{spec}\n");
        match load_str(&text, Path::new("t.yaml")) {
            Ok(_) => panic!("loaded:\n{text}"),
            Err(e) => assert_eq!(e.to_string(), want, "\n{text}"),
        }
    }
}

#[test]
fn harmless_chainsaw_fields_are_accepted() {
    let text = "\
apiVersion: chainsaw.kyverno.io/v1alpha1
kind: Test
metadata: {name: t, creationTimestamp: null}
spec:
  skip: false
  skipDelete: false
  concurrent: true
  failFast: true
  template: false
  steps:
  - template: false
    try:
    - apply: {resource: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}, dryRun: false, template: false}
    - describe: {apiVersion: v1, kind: Pod, name: p, showEvents: true}
    - command: {entrypoint: ls, skipLogOutput: true, skipCommandOutput: false}
";
    let all = load_str(text, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all[0].steps.len(), 2);
}

#[test]
fn discover_finds_scenarios_and_skips_referenced_objects() {
    let found = load::discover(&[PathBuf::from("tests/data/good"), PathBuf::from("tests/data/chainsaw/deployment")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        found,
        [
            PathBuf::from("tests/data/good/stuck-terminating.yaml"),
            PathBuf::from("tests/data/good/traffic.yaml"),
            PathBuf::from("tests/data/good/two-in-one.yaml"),
            PathBuf::from("tests/data/chainsaw/deployment/chainsaw-test.yaml"),
        ]
    );
    // A file given explicitly must be a scenario.
    let e = load::discover(&[PathBuf::from("tests/data/good/pod.yaml")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tests/data/good/pod.yaml:2:1: not a scenario: this file holds kind Pod (apiVersion v1); allowed: apiVersion nodekit.dev/v1alpha1 with kind Scenario, or apiVersion chainsaw.kyverno.io/v1alpha1 with kind Test"
    );
    let e = load::discover(&[PathBuf::from("tests/data/nowhere")]).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.to_string().starts_with("tests/data/nowhere: cannot read: "), "{e}");
    // Given explicitly, a scenario file is taken as is.
    let found = load::discover(&[PathBuf::from("tests/data/chainsaw/unsupported-proxy.yaml")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.len(), 1);
}

#[test]
fn discover_walks_directories_recursively_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let scenario = "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n  steps:\n  - try:\n    - sleep: {duration: 1s}\n";
    let test = "apiVersion: chainsaw.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: t}\nspec:\n  steps:\n  - try:\n    - sleep: {duration: 1s}\n";
    std::fs::create_dir_all(root.join("b/c")).expect("mkdir");
    std::fs::create_dir_all(root.join(".hidden")).expect("mkdir");
    std::fs::write(root.join("z.yaml"), scenario).expect("write");
    std::fs::write(root.join("a.yml"), test).expect("write");
    std::fs::write(root.join("b/c/deep.yaml"), scenario).expect("write");
    std::fs::write(root.join("b/pod.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n").expect("write");
    std::fs::write(root.join("b/config.yaml"), "apiVersion: chainsaw.kyverno.io/v1alpha2\nkind: Configuration\n")
        .expect("write");
    std::fs::write(root.join("b/notes.txt"), scenario).expect("write");
    std::fs::write(root.join(".hidden/x.yaml"), scenario).expect("write");
    let found = load::discover(&[root.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found, [root.join("a.yml"), root.join("b/c/deep.yaml"), root.join("z.yaml")]);
    for f in &found {
        load_file(f).unwrap_or_else(|e| panic!("{e}"));
    }
    // A broken YAML file in a directory is an error (it may be a broken scenario).
    std::fs::write(root.join("b/broken.yaml"), "a: [\n").expect("write");
    let e = load::discover(&[root.to_path_buf()]).unwrap_err();
    assert!(e.to_string().contains("broken.yaml:"), "{e}");
}

#[test]
fn file_globs_and_relative_origins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("manifests")).expect("mkdir");
    for name in ["01-a.yaml", "02-b.yaml"] {
        std::fs::write(
            root.join("manifests").join(name),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {}}}\n", &name[3..4]),
        )
        .expect("write");
    }
    let text = "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: s}\nspec:\n  steps:\n  - try:\n    - apply: {file: manifests/*.yaml}\n";
    let all = load_str(text, &root.join("s.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let Action::Apply(r) = &all[0].steps[0].try_[0].action else { panic!() };
    assert_eq!(r.objects.len(), 2);
    assert_eq!(r.objects[1]["metadata"]["name"], "b");
    assert_eq!(r.source, "manifests/*.yaml");
    let text = text.replace("*.yaml", "*.json");
    let e = load_str(&text, &root.join("s.yaml")).unwrap_err();
    assert_eq!(e.message, "manifests/*.json: no file matches");
}

#[test]
fn authorization_mode_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.yaml");
    let text = "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: bare\nspec:\n  world:\n    authorizationMode: AlwaysAllow\n  steps:\n  - try:\n    - sleep: {duration: 1s}\n";
    std::fs::write(&path, text).unwrap();
    let all = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all[0].world.authorization_mode, AuthorizationMode::AlwaysAllow);
}
