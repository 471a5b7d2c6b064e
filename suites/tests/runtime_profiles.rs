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

/// Each broken copy of the shipped fake-cri profile, and what the message must say.
#[test]
fn a_bad_profile_is_exit_2_with_file_field_and_fix() {
    let good = std::fs::read_to_string(shipped("fake-cri.yaml")).unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("unknown-field", "  privateMounts: false\n", "  privateMount: false\n", "spec.privateMount: unknown field; the fields here are runtimeName, command"),
        ("no-socket", "    - \"{socket}\"\n", "    - /tmp/elsewhere.sock\n", "spec.command: the runtime is never told where to listen: use {socket}"),
        ("bad-placeholder", "    - \"{state_dir}\"\n", "    - \"{statedir}\"\n", "spec.command[4]: unknown placeholder {statedir}: use one of {socket}"),
        ("no-binary", "    - fake-cri\n", "    - no-such-cri-runtime\n", "spec.command[0]: binary \"no-such-cri-runtime\" not found on PATH (nor next to nodekit); install it or give an absolute path"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, from, to, want) in cases {
        assert!(good.contains(from), "{from:?} is not in fake-cri.yaml");
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
