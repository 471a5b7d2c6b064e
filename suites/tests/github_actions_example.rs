//! `ci/examples/github-actions.yml` does what it says: its matrix expands to `ci/conformance`
//! command lines that nodekit accepts, the shards of each runtime partition that runtime's
//! catalog, and every job uploads its JUnit report and artifacts even when it failed.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
struct Workflow {
    jobs: BTreeMap<String, Job>,
}

#[derive(Deserialize)]
struct Job {
    strategy: Strategy,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Strategy {
    matrix: Matrix,
}

#[derive(Deserialize)]
struct Matrix {
    runtime: Vec<String>,
    shard: Vec<u32>,
}

#[derive(Deserialize)]
struct Step {
    run: Option<String>,
    uses: Option<String>,
    #[serde(rename = "if")]
    condition: Option<String>,
    with: Option<BTreeMap<String, String>>,
}

fn workflow() -> Workflow {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/examples/github-actions.yml");
    let text = std::fs::read_to_string(path).expect("reading the example workflow");
    serde_saphyr::from_str(&text).expect("the example workflow parses")
}

/// The `ci/conformance` arguments of the job's run step for one matrix entry.
fn conformance_args(job: &Job, runtime: &str, shard: u32) -> Vec<String> {
    let run = job.steps.iter().filter_map(|s| s.run.as_deref()).find(|r| r.contains("ci/conformance")).expect("a ci/conformance step");
    let line = run.replace("${{ matrix.runtime }}", runtime).replace("${{ matrix.shard }}", &shard.to_string());
    assert!(!line.contains("${{"), "unexpanded expression in {line:?}");
    let words: Vec<String> = line.split_whitespace().map(String::from).collect();
    let at = words.iter().position(|w| w == "ci/conformance").expect("ci/conformance in the step");
    words[at + 1..].to_vec()
}

/// `nodekit list` names of a selection (`--runtime` and `--shard` taken from `args`).
fn listed(args: &[String]) -> BTreeSet<String> {
    let mut sel = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--runtime" || a == "--shard" {
            sel.push(a.clone());
            sel.push(it.next().expect("a value").clone());
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nodekit")).arg("list").args(&sel).output().unwrap();
    assert!(out.status.success(), "nodekit list {sel:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().skip(1).filter_map(|l| l.split_whitespace().next().map(String::from)).collect()
}

#[test]
fn matrix_commands_run_and_shards_partition_each_runtime() {
    let wf = workflow();
    let job = wf.jobs.get("conformance").expect("job conformance");
    let n = job.strategy.matrix.shard.len() as u32;
    assert_eq!(job.strategy.matrix.shard, (1..=n).collect::<Vec<_>>(), "shards must be 1..=N");
    for runtime in &job.strategy.matrix.runtime {
        let mut union = BTreeSet::new();
        for &k in &job.strategy.matrix.shard {
            let args = conformance_args(job, runtime, k);
            assert!(args.windows(2).any(|w| w[0] == "--shard" && w[1] == format!("{k}/{n}")), "{args:?}");
            // The whole command line is accepted: with a filter that matches nothing, nodekit
            // gets as far as selecting (exit 2, "no case matches"), past argument parsing and
            // the target checks.
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_nodekit"))
                .arg("conformance")
                .args(args.iter().map(|a| if a == "artifacts" { dir.path().to_str().unwrap().to_string() } else { a.clone() }))
                .args(["--filter", "no-such-case-anywhere"])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.code() == Some(2) && err.contains("no case matches"), "{args:?}: {err}");
            let part = listed(&args);
            assert!(!part.is_empty(), "shard {k}/{n} of {runtime} is empty");
            assert!(union.is_disjoint(&part), "shard {k}/{n} of {runtime} overlaps another");
            union.extend(part);
        }
        let whole = listed(&["--runtime".into(), runtime.clone()]);
        assert_eq!(union, whole, "the shards of {runtime} do not cover its catalog");
    }
}

#[test]
fn results_are_uploaded_even_when_the_job_failed() {
    let wf = workflow();
    let job = wf.jobs.get("conformance").expect("job conformance");
    let upload = job
        .steps
        .iter()
        .find(|s| s.uses.as_deref().is_some_and(|u| u.starts_with("actions/upload-artifact@")))
        .expect("an upload-artifact step");
    assert_eq!(upload.condition.as_deref(), Some("always()"));
    let with = upload.with.as_ref().expect("upload inputs");
    let path = with.get("path").expect("upload path");
    assert!(path.contains("junit.xml") && path.contains("artifacts/"), "{path}");
    let name = with.get("name").expect("upload name");
    assert!(name.contains("${{ matrix.runtime }}") && name.contains("${{ matrix.shard }}"), "names must differ per job: {name}");
    let args = conformance_args(job, "fake-cri", 1);
    assert!(args.windows(2).any(|w| w == ["--junit", "junit.xml"]) && args.windows(2).any(|w| w == ["--artifacts", "artifacts"]), "{args:?}");
}
