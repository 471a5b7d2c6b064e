//! Node agent profiles from the command line: a bad profile is exit 2 naming file, field and
//! what to fix before anything runs; the shipped profile runs node cases with the agent it
//! starts; an agent that does not read nodekit's extensions gets a KubeletConfiguration without
//! them, and the run says what that means.

use std::path::{Path, PathBuf};

mod support;
use support::cli::{nodekit, run, text};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agents/node-agent.yaml")
}

/// The shipped profile with its first `from` replaced by `to`, written to `dir/name.yaml`.
fn edited_profile(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let good = std::fs::read_to_string(shipped()).unwrap();
    assert!(good.contains(from), "{from:?} is not in node-agent.yaml");
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
    file
}

/// Each broken copy of the shipped profile, and what the message must say.
#[test]
fn a_bad_node_agent_profile_is_exit_2_with_file_field_and_fix() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("unknown-field", "  env:\n", "  environment:\n", "spec.environment: unknown field; the fields here are command, env, config, stop"),
        ("no-runtime", "    - \"{cri_socket}\"\n", "    - unix:///run/containerd/containerd.sock\n", "spec.command: the agent is never given {cri_socket}"),
        ("no-binary", "    - node-agent\n", "    - no-such-kubelet\n", "spec.command[0]: binary \"no-such-kubelet\" not found on PATH (nor next to nodekit); install it or give an absolute path"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, from, to, want) in cases {
        let file = edited_profile(dir.path(), name, from, to);
        let artifacts = dir.path().join(format!("artifacts-{name}"));
        let o = nodekit(&["conformance", "--runtime", "fake-cri", "--node-agent", file.to_str().unwrap(), "--filter", "registration/"], &artifacts);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("--node-agent {}: {want}", file.display())), "{name}: {err}");
        assert!(!artifacts.exists(), "{name}: the run started");
    }
}

/// The reference agent started through the shipped profile passes registration and the
/// condition-order cases, and every run's timeline shows the profile's agent starting (not the
/// built-in start).
#[test]
fn the_shipped_node_agent_profile_runs_node_cases() {
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped();
    let args = [
        "conformance", "--runtime", "fake-cri", "--node-agent", profile.to_str().unwrap(),
        "--filter", "registration/", "--filter", "pod-lifecycle/condition-order", "--keep-artifacts",
    ];
    let o = nodekit(&args, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("registration        4       0        0"), "{out}");
    let mut runs = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let timeline = std::fs::read_to_string(entry.path().join("timeline.jsonl")).unwrap_or_default();
        if timeline.contains("registration") || entry.file_name().to_string_lossy().contains("registration") || timeline.contains("node-a") {
            assert!(timeline.contains("\"node agent node-agent started\""), "{}: {timeline}", entry.path().display());
            assert!(!timeline.contains("\"node-agent started\""), "{}: the built-in start ran", entry.path().display());
            runs += 1;
        }
    }
    assert!(runs >= 6, "timelines checked: {runs}");
}

/// With `nodekitExtensions: false` the agent's KubeletConfiguration has no `nodekit:` block (a
/// kubelet would refuse it) and the run warns that compressed timings are gone.
#[test]
fn an_agent_without_extensions_gets_no_nodekit_block() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_profile(dir.path(), "plain", "nodekitExtensions: true", "nodekitExtensions: false");
    let artifacts = dir.path().join("artifacts");
    let o = nodekit(
        &[
            "conformance", "--runtime", "fake-cri", "--node-agent", file.to_str().unwrap(),
            "--filter", "registration/node-becomes-ready", "--filter", "registration/node-fields", "--keep-artifacts",
        ],
        &artifacts,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not read nodekit's KubeletConfiguration extensions"), "{}", text(&o));
    // node-fields asserts the world's node size: skipped, saying why.
    let all = text(&o);
    let skip = all.lines().find(|l| l.contains("registration/node-fields") && l.contains("SKIP")).unwrap_or_default();
    assert!(skip.contains("spec.config.nodekitExtensions: false"), "{all}");
    let run = std::fs::read_dir(&artifacts).unwrap().flatten().find(|e| e.path().is_dir()).expect("a run directory");
    let config = std::fs::read_to_string(run.path().join("kubelet-config-node-a.yaml")).unwrap();
    assert!(config.contains("KubeletConfiguration") && !config.contains("\"nodekit\":"), "{config}");
    // The host's disk, not the world's node size: upstream's disk thresholds lowered to 1%, all
    // four signals named.
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let hard = &config["evictionHard"];
    for (signal, want) in [("memory.available", "100Mi"), ("nodefs.available", "1%"), ("imagefs.available", "1%"), ("nodefs.inodesFree", "1%")] {
        assert_eq!(hard[signal], want, "evictionHard {hard}");
    }
}

fn scenario_example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios").join(name)
}

/// `nodekit run` and `nodekit up` refuse a bad profile as `conformance` does: exit 2 naming
/// file, field and fix, nothing started (no report, no kubeconfig).
#[test]
fn run_and_up_refuse_a_bad_node_agent_profile() {
    let dir = tempfile::tempdir().unwrap();
    let file = edited_profile(dir.path(), "no-binary", "    - node-agent\n", "    - no-such-kubelet\n");
    let want = format!("--node-agent {}: spec.command[0]: binary \"no-such-kubelet\" not found", file.display());
    let report = dir.path().join("report");
    let scenario = scenario_example("crashloop-backoff.yaml");
    let o = run(&["run", "--node-agent", file.to_str().unwrap(), "--report", report.to_str().unwrap(), scenario.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("nodekit run: {want}")), "{}", text(&o));
    assert!(!report.exists(), "the run started");
    let kubeconfig = dir.path().join("kc");
    let o = run(&["up", "--node-agent", file.to_str().unwrap(), "--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("nodekit up: {want}")), "{}", text(&o));
    assert!(!kubeconfig.exists(), "the world started");
}

/// A scenario run with `--node-agent` passes with the profile's agent on its node, and its
/// world's timeline shows that agent starting, not the built-in one.
#[test]
fn a_scenario_runs_with_the_shipped_node_agent_profile() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let scenario = scenario_example("crashloop-backoff.yaml");
    let o = run(&["run", "--node-agent", shipped().to_str().unwrap(), "--report", report.to_str().unwrap(), scenario.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let run = std::fs::read_dir(&report).unwrap().flatten().find(|e| e.path().is_dir()).expect("the scenario's directory");
    let timeline = std::fs::read_to_string(run.path().join("timeline.jsonl")).unwrap_or_default();
    assert!(timeline.contains("\"node agent node-agent started\""), "{}: {timeline}", run.path().display());
    assert!(!timeline.contains("\"node-agent started\""), "the built-in start ran: {timeline}");
}

/// `nodekit list --node-agent` shows the runs such an agent skips and why, as `conformance`
/// would skip them: reference-agent cases always, extension cases only for an agent that does
/// not read the extensions.
#[test]
fn list_shows_what_a_node_agent_skips() {
    let dir = tempfile::tempdir().unwrap();
    let plain = edited_profile(dir.path(), "plain", "nodekitExtensions: true", "nodekitExtensions: false");
    let line = |profile: &Path, run_name: &str| {
        let o = run(&["list", "--node-agent", profile.to_str().unwrap(), "--filter", run_name]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.lines().find(|l| l.starts_with(run_name)).unwrap_or_else(|| panic!("no {run_name} in {out}")).to_string()
    };
    let internal = "static-pods/bad-manifest-isolated[fake-cri]";
    let ext = "registration/node-fields[fake-cri]";
    assert!(line(&shipped(), internal).contains("skipped: asserts what only the reference agent does"));
    assert!(!line(&shipped(), ext).contains("skipped"), "{}", line(&shipped(), ext));
    assert!(line(&plain, ext).contains("spec.config.nodekitExtensions: false"), "{}", line(&plain, ext));
    let o = run(&["list", "--filter", internal]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("skipped"), "without --node-agent: {}", text(&o));
}
