//! The live world and the scenario are the same thing: `nodekit up --scenario` builds the world
//! a scenario describes, runs its steps (report written) and hands it over; `nodekit run
//! --attach` runs another scenario's steps, faults included, against that world through the
//! control socket next to its kubeconfig; typed commands still work; Ctrl-C leaves nothing
//! (no kubeconfig, no control socket).

mod support;

use std::path::Path;
use std::process::Command;

use support::{NODEKIT, have_kubectl, up};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios").join(name).to_string_lossy().into_owned()
}

#[test]
fn up_with_a_scenario_then_attach_another() {
    if !have_kubectl() {
        return;
    }
    let reports = tempfile::tempdir().unwrap();
    let first = reports.path().join("up");
    let mut live = up(&["--scenario", &example("crashloop-backoff.yaml"), "--report", &first.to_string_lossy()]);
    let html = std::fs::read_to_string(first.join("report.html")).expect("the --scenario report");
    assert!(html.contains("crashloop-backoff") && html.contains("data-outcome=\"passed\""), "the report says the steps passed");
    // The pod the steps made is there for the user.
    let out = Command::new(support::KUBECTL)
        .args(["get", "pod", "crasher", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"])
        .env("KUBECONFIG", &live.kubeconfig)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).parse::<u32>().unwrap() >= 2);

    // Another scenario, with a partition fault, through the control socket.
    let second = reports.path().join("attach");
    let out = Command::new(NODEKIT)
        .args(["run", "--attach"])
        .arg(&live.kubeconfig)
        .arg(example("partitioned-node-stuck-terminating.yaml"))
        .arg("--report")
        .arg(&second)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The scenario names node-a and node-b; this world has only node-a.
    assert_eq!(out.status.code(), Some(1), "{err}");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(second.join("run.json")).unwrap()).unwrap();
    let msg = run["scenarios"][0]["message"].as_str().unwrap_or("");
    assert!(msg.contains("this world's nodes are node-a") && msg.contains("node-b"), "{msg}");

    let out = Command::new(NODEKIT)
        .args(["run", "--attach"])
        .arg(live.kubeconfig.parent().unwrap())
        .arg(example("readiness-flap-removes-endpoint.yaml"))
        .arg("--report")
        .arg(&second)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Typed commands go through the same faults.
    assert_eq!(live.command("partition node-a"), "nodekit up: node-a cut from the API server; its pods keep running");
    assert_eq!(live.command("partition node-a"), "nodekit up: node-a is cut off already");
    assert_eq!(live.command("heal node-a"), "nodekit up: node-a reconnected to the API server");
    live.interrupt();
}

#[test]
fn up_refuses_a_bad_scenario_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec:\n  steps:\n  - try:\n    - slep: {duration: 1s}\n").unwrap();
    let out = Command::new(NODEKIT).args(["up", "--scenario"]).arg(&file).arg("--kubeconfig").arg(dir.path().join("k")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:7:7: spec.steps[0].try[0].slep", file.display())), "{err}");
    let out = Command::new(NODEKIT).args(["up", "--nodes", "2", "--scenario"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nodes and --scenario"));
    let out = Command::new(NODEKIT).args(["run", "--attach"]).arg(dir.path()).arg(example("crashloop-backoff.yaml")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no nodekit up control socket"), "{}", String::from_utf8_lossy(&out.stderr));
}
