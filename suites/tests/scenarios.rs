//! `nodekit run` as a user runs it: every example under `suites/examples/scenarios` passes on
//! fake-cri (and, when containerd is installed, each that needs no fake-cri fault passes on
//! containerd too), a scenario that expects the wrong thing fails with a readable message, a
//! diff, a JUnit failure and a report that shows why, and malformed files are refused with
//! `file:line:column` and exit 2 before any world starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

const NODEKIT: &str = env!("CARGO_BIN_EXE_nodekit");

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut out = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn nodekit_run(args: &[&str], report: &Path) -> Output {
    Command::new(NODEKIT).arg("run").args(args).arg("--report").arg(report).output().expect("running nodekit")
}

fn text(o: &Output) -> String {
    format!("status {}\nstdout:\n{}\nstderr:\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn run_json(report: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(report.join("run.json")).expect("run.json")).expect("run.json parses")
}

fn example(file: PathBuf, runtime: &'static str) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let report = dir.path().join("report");
    let junit = dir.path().join("junit.xml");
    let file_arg = file.to_string_lossy().into_owned();
    let junit_arg = junit.to_string_lossy().into_owned();
    let out = nodekit_run(&[&file_arg, "--runtime", runtime, "--junit", &junit_arg], &report);
    let run = run_json(&report);
    let scenario = &run["scenarios"][0];
    if scenario["outcome"] == "skipped" || scenario["outcome"] == "Skipped" {
        return Err(format!("the example was skipped on {runtime}: {}", scenario["message"]).into());
    }
    if !out.status.success() {
        return Err(format!("{}\nmessage: {}", text(&out), scenario["message"]).into());
    }
    let junit = std::fs::read_to_string(&junit).map_err(|e| e.to_string())?;
    if !junit.contains("<testcase") || junit.contains("<failure") {
        return Err(format!("junit:\n{junit}").into());
    }
    let html = std::fs::read_to_string(report.join("report.html")).map_err(|e| e.to_string())?;
    if !html.contains("class=\"lane node") {
        return Err("the report has no node lane".into());
    }
    Ok(())
}

const WRONG: &str = "\
apiVersion: nodekit.dev/v1alpha1
kind: Scenario
metadata:
  name: expects-the-wrong-thing
spec:
  world: {nodes: 1}
  steps:
  - name: pause-pod
    try:
    - apply:
        resource:
          apiVersion: v1
          kind: Pod
          metadata: {name: sleeper, namespace: default}
          spec:
            containers:
            - {name: c, image: nodekit.local/workload:1.0, args: [pause]}
    - assert:
        timeout: 8s
        resource:
          apiVersion: v1
          kind: Pod
          metadata: {name: sleeper, namespace: default}
          status:
            phase: Succeeded
    catch:
    - describe: {apiVersion: v1, kind: Pod, namespace: default, name: sleeper}
  - name: never-runs
    try:
    - sleep: {duration: 1s}
";

/// A pause pod never Succeeds: the run exits 1; the record, JUnit and report carry the message
/// with the field's path, the last object seen and the diff; the step after it is skipped.
fn wrong_expectation() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("wrong.yaml");
    std::fs::write(&file, WRONG).map_err(|e| e.to_string())?;
    let report = dir.path().join("report");
    let junit = dir.path().join("junit.xml");
    let out = nodekit_run(&[&file.to_string_lossy(), "--junit", &junit.to_string_lossy()], &report);
    if out.status.code() != Some(1) {
        return Err(format!("expected exit 1\n{}", text(&out)).into());
    }
    let run = run_json(&report);
    let s = &run["scenarios"][0];
    let msg = s["message"].as_str().unwrap_or("");
    let step = &s["steps"][0];
    let failed = step["operations"].as_array().into_iter().flatten().find(|o| o["failure"].is_object()).cloned().unwrap_or(Value::Null);
    let checks = [
        (msg.contains("pause-pod") && msg.contains("status.phase") && msg.contains("Succeeded") && msg.contains("Running"), "the message names the step, the field and both values"),
        (failed["failure"]["actual"]["status"]["phase"] == "Running", "the failure keeps the object last seen"),
        (failed["failure"]["diff"].as_str().is_some_and(|d| d.contains("Succeeded") && d.contains("Running")), "the failure has a diff"),
        (step["operations"].as_array().is_some_and(|o| o.iter().any(|o| o["kind"] == "describe")), "catch ran"),
        (s["steps"][1]["outcome"].as_str().is_some_and(|o| o.eq_ignore_ascii_case("skipped")), "the later step is skipped"),
    ];
    for (ok, what) in checks {
        if !ok {
            return Err(format!("{what}; record:\n{}", serde_json::to_string_pretty(s).unwrap_or_default()).into());
        }
    }
    let junit = std::fs::read_to_string(&junit).map_err(|e| e.to_string())?;
    if !junit.contains("<failure message=\"") || junit.contains("<failure message=\"\"") || !junit.contains("Succeeded") {
        return Err(format!("junit has no readable failure:\n{junit}").into());
    }
    let html = std::fs::read_to_string(report.join("report.html")).map_err(|e| e.to_string())?;
    if !html.contains("class=\"failure") || !html.contains("Succeeded") {
        return Err("the report does not show the failure".into());
    }
    let Some(dom) = chromium_dom(&report.join("report.html"))? else { return Ok(()) };
    for want in ["data-lane=\"node-a\"", "data-lane=\"default/sleeper\"", "class=\"step-marker", "class=\"failure"] {
        if !dom.contains(want) {
            return Err(format!("Chromium's DOM of the report has no {want}").into());
        }
    }
    Ok(())
}

/// The DOM headless Chromium builds from `file` (None when Chromium is absent outside CI).
fn chromium_dom(file: &Path) -> Result<Option<String>, Failed> {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        if std::env::var_os("CI").is_some() {
            return Err("chromium is not installed: run ci/bootstrap".into());
        }
        eprintln!("skipping the Chromium check: /usr/bin/chromium is absent");
        return Ok(None);
    }
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .env("HOME", profile.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("Chromium did not finish within 60 s".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(Some(reader.join().unwrap_or_default()))
}

/// Each malformed file: exit 2, `file:line:column: path: message` on stderr, no world started
/// (no report written).
fn malformed() -> Result<(), Failed> {
    let cases: &[(&str, &str, &str)] = &[
        ("unknown-field.yaml", "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec:\n  steps:\n  - name: s\n    try:\n    - sleep: {duration: 1s, colour: red}\n", ":8:"),
        ("unknown-op.yaml", "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec:\n  steps:\n  - try:\n    - reboot: {node: node-a}\n", ":7:"),
        ("bad-duration.yaml", "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec:\n  steps:\n  - try:\n    - sleep: {duration: 5 seconds}\n", ":7:"),
        ("two-actions.yaml", "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec:\n  steps:\n  - try:\n    - sleep: {duration: 1s}\n      heal: {}\n", ":8:"),
        ("unknown-node.yaml", "apiVersion: nodekit.dev/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec:\n  world: {nodes: 1}\n  steps:\n  - try:\n    - fault: {partition: {node: node-b}}\n", ":8:"),
        ("not-yaml.yaml", "apiVersion: [\n", ":"),
    ];
    for (name, body, at) in cases {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = dir.path().join(name);
        std::fs::write(&file, body).map_err(|e| e.to_string())?;
        let report = dir.path().join("report");
        let out = nodekit_run(&[&file.to_string_lossy()], &report);
        let err = String::from_utf8_lossy(&out.stderr);
        let prefix = format!("{}{at}", file.display());
        if out.status.code() != Some(2) || !err.contains(&prefix) {
            return Err(format!("{name}: expected exit 2 and {prefix:?}…\n{}", text(&out)).into());
        }
        if report.exists() {
            return Err(format!("{name}: a report was written for a refused file").into());
        }
    }
    Ok(())
}

fn have_containerd() -> bool {
    Path::new("/usr/bin/containerd").exists()
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![Trial::test("scenarios/wrong-expectation-fails-readably", wrong_expectation), Trial::test("scenarios/malformed-files-exit-2", malformed)];
    for file in examples() {
        let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let f = file.clone();
        trials.push(Trial::test(format!("scenarios/fake-cri/{name}"), move || example(f, "fake-cri")));
        let needs_fake = scenario::load::load_file(&file).map_or(true, |all| all.iter().any(suites::scenarios::needs_fake_cri));
        if !needs_fake {
            let f = file.clone();
            trials.push(Trial::test(format!("scenarios/containerd/{name}"), move || example(f, "containerd")).with_ignored_flag(!have_containerd()));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
