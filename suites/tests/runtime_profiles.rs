//! Runtime profiles from the command line: a bad profile is exit 2 naming file, field and what
//! to fix before anything runs, and the shipped profiles run cases sealed like the built-in
//! runtimes do (a pod really runs on a runtime the profile started).

use std::path::{Path, PathBuf};

mod support;
use support::cli::{nodekit, text};


fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/runtimes").join(name)
}

fn on_path(bin: &str) -> bool {
    harness::backend::find_binary(bin).is_some()
}

/// Each broken copy of a shipped profile, and what the message must say: refused with exit 2
/// before any world starts.
#[test]
fn a_bad_profile_is_exit_2_with_file_field_and_fix() {
    let rows: &[(&str, &str, &str, &str)] = &[
        ("unknown-field", "  privateMounts: false\n", "  privateMount: false\n", "spec.privateMount: unknown field; the fields here are runtimeName, command"),
        ("no-socket", "    - \"{socket}\"\n", "    - /tmp/elsewhere.sock\n", "spec.command: the runtime is never told where to listen: use {socket}"),
        ("bad-placeholder", "    - \"{state_dir}\"\n", "    - \"{statedir}\"\n", "spec.command[4]: unknown placeholder {statedir}: use one of {socket}"),
        ("no-binary", "    - fake-cri\n", "    - no-such-cri-runtime\n", "spec.command[0]: binary \"no-such-cri-runtime\" not found on PATH (nor next to nodekit); install it or give an absolute path"),
    ];
    let dir = tempfile::tempdir().unwrap();
    refused(&dir, "fake-cri.yaml", rows);
    // The image runtime's host paths (the engine must be there for the check to be reached).
    if !on_path("dockerd") {
        eprintln!("skipped the image profile rows: dockerd missing (run ci/bootstrap)");
        return;
    }
    let missing = dir.path().join("missing.tar");
    let image_rows = [
        (
            "no-archive",
            "    archive: \"{fake_cri_image}\"\n",
            "    archive: missing.tar\n".to_string(),
            format!("spec.image.archive: {} does not exist; write it with `docker save nodekit.local/fake-cri-runtime:1 -o FILE`", missing.display()),
        ),
        (
            "no-mount",
            "    mounts: [/sys/fs/cgroup]\n",
            "    mounts: [/sys/fs/cgroup, /no/such/dir]\n".to_string(),
            "spec.image.mounts[1]: /no/such/dir does not exist on this host; create it or leave it out".to_string(),
        ),
    ];
    let image_rows: Vec<(&str, &str, &str, &str)> = image_rows.iter().map(|(n, f, t, w)| (*n, *f, t.as_str(), w.as_str())).collect();
    refused(&dir, "fake-cri-image.yaml", &image_rows);
}

/// Runs `conformance` with each row's broken copy of shipped profile `base` (written into
/// `dir`) and checks exit 2, the message `<file>: <want>` and that no run started.
fn refused(dir: &tempfile::TempDir, base: &str, rows: &[(&str, &str, &str, &str)]) {
    let good = std::fs::read_to_string(shipped(base)).unwrap();
    for (name, from, to, want) in rows {
        assert!(good.contains(from), "{from:?} is not in {base}");
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let artifacts = dir.path().join(format!("artifacts-{name}"));
        let o = nodekit(&["conformance", "--runtime", file.to_str().unwrap(), "--filter", "registration/"], &artifacts);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("{}: {want}", file.display())), "{name}: {err}");
        assert!(!artifacts.exists(), "{name}: the run started");
    }
}

/// The shipped fake-cri profile runs node cases (registration with the profile's runtime name,
/// a pod's whole life, RuntimeClass) on a fake-cri the profile started.
#[test]
fn the_fake_cri_profile_runs_node_cases() {
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("fake-cri.yaml");
    let o = nodekit(
        &[
            "conformance",
            "--runtime",
            profile.to_str().unwrap(),
            "--filter",
            "registration/node-fields",
            "--filter",
            "pod-lifecycle/runtime-class-selects-the-handler",
            "--filter",
            "pod-lifecycle/always-running-status",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Progress lines go to stderr: the profile's name is the target's.
    let progress = String::from_utf8_lossy(&o.stderr);
    assert!(progress.lines().any(|l| l.contains("PASS") && l.contains("registration/node-fields[fake-cri]")), "{}", text(&o));
}

/// The shipped containerd profile runs the CRI area and node cases on a containerd the profile
/// started (images imported with its command, cleaned up with its OCI roots).
#[test]
fn the_containerd_profile_runs_node_and_cri_cases() {
    if !(on_path("containerd") && on_path("ctr") && on_path("runc") && on_path("crun")) {
        eprintln!("skipped: containerd, ctr, runc or crun missing (run ci/bootstrap)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("containerd.yaml");
    let o = nodekit(
        &[
            "conformance",
            "--runtime",
            profile.to_str().unwrap(),
            "--filter",
            "runtime/",
            "--filter",
            "registration/node-fields",
            "--filter",
            "pod-lifecycle/runtime-class-selects-the-handler",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let progress = String::from_utf8_lossy(&o.stderr);
    for run in ["registration/node-fields[containerd]", "runtime/image-pull-by-tag-and-digest[containerd]"] {
        assert!(progress.lines().any(|l| l.contains("PASS") && l.contains(run)), "{run}: {}", text(&o));
    }
}

/// A runtime shipped as an OCI image: the shipped fake-cri-image profile has nodekit build a
/// FROM-scratch image around fake-cri, start a Docker Engine inside each node host, load the
/// image and run it with testcontainers. The whole CRI area passes on it (only the cases that
/// pull are skipped, as the profile says its runtime does not pull), each case's runtime really
/// ran as a container of its world's engine (the keeper's ready line), and no engine outlives
/// its world.
#[test]
fn the_image_profile_runs_the_cri_area_in_a_container() {
    if !on_path("dockerd") {
        eprintln!("skipped: dockerd missing (run ci/bootstrap, which installs docker.io)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("fake-cri-image.yaml");
    let o = nodekit(&["conformance", "--runtime", profile.to_str().unwrap(), "--filter", "runtime/", "--keep-artifacts"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let progress = String::from_utf8_lossy(&o.stderr);
    let runs: Vec<&str> = progress.lines().filter(|l| l.contains("[fake-cri-image]") && l.trim_start().starts_with('[')).collect();
    let passed = runs.iter().filter(|l| l.contains(" PASS ")).count();
    let skipped_pulls = runs.iter().filter(|l| l.contains(" SKIP ") && l.contains("spec.images.pulls: false")).count();
    assert!(passed >= 25, "only {passed} runtime cases passed: {}", text(&o));
    assert_eq!(passed + skipped_pulls, runs.len(), "a case neither passed nor was skipped as a pulling case: {}", text(&o));
    let keeper_logs: Vec<PathBuf> = walk(dir.path()).into_iter().filter(|p| p.ends_with("fake-cri-image-node-a.log")).collect();
    assert_eq!(keeper_logs.len(), passed, "one keeper log per case that ran, under {}", dir.path().display());
    for log in &keeper_logs {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.lines().any(|x| runtime_image::Ready::parse(x).is_some()), "{}: the keeper never ran the container", log.display());
    }
    let leftover: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("dockerd") && c.contains("/run/nodekit/"))
        .collect();
    assert!(leftover.is_empty(), "engines outlived their worlds: {leftover:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

/// Two targets of one name would write the same artifacts directory: refused before anything runs.
#[test]
fn two_targets_of_one_name_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let profile = shipped("fake-cri.yaml");
    let artifacts = dir.path().join("artifacts");
    let o = nodekit(&["conformance", "--runtime", "fake-cri", "--runtime", profile.to_str().unwrap()], &artifacts);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("are both called \"fake-cri\""), "{}", text(&o));
    assert!(!artifacts.exists(), "the run started");
}
