//! `nodekit up --image ARCHIVE`: the world's registry serves the archive's images and pods pull
//! them by name through real kubectl; a bad archive or a runtime that does not pull is exit 2
//! before anything starts.

mod support;

use std::process::Command;

use support::{NODEKIT, have_kubectl, up};

fn have_containerd() -> bool {
    ["containerd", "ctr", "runc"].iter().all(|b| harness::backend::find_binary(b).is_some())
}

#[test]
fn up_refuses_a_bad_image_archive_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("k");
    let not_an_archive = dir.path().join("notes.tar");
    std::fs::write(&not_an_archive, b"not a tarball").unwrap();
    let cases = [
        (vec!["--runtime", "containerd", "--image", "/nonexistent/app.tar"], "--image /nonexistent/app.tar: No such file or directory"),
        (vec!["--runtime", "containerd", "--image", not_an_archive.to_str().unwrap()], &*format!("--image {}: ", not_an_archive.display())),
        (vec!["--image", not_an_archive.to_str().unwrap()], "--image needs --runtime containerd"),
    ];
    for (args, want) in cases {
        let o = Command::new(NODEKIT).arg("up").args(&args).arg("--kubeconfig").arg(&kubeconfig).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!kubeconfig.exists(), "{args:?}: the world started");
    }
}

/// An image nodekit never imports (its own archive, a name of a registry host the world does
/// not know otherwise) runs as a pod: containerd pulled it from the world's registry.
#[test]
fn a_pod_pulls_an_image_from_an_archive_given_to_up() {
    if !have_kubectl() || !have_containerd() {
        eprintln!("skipped: kubectl or containerd missing (run ci/bootstrap)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("app.tar");
    let mut spec = harness::oci::ImageSpec::workload(&harness::backend::workload_binary().unwrap());
    spec.reference = "registry.example.com/team/app:v1".into();
    spec.labels = vec![("org.example.app".into(), "v1".into())];
    harness::oci::write_image_tar(&spec, &archive).unwrap();
    let mut live = up(&["--runtime", "containerd", "--image", archive.to_str().unwrap()]);
    live.kubectl(&["run", "app", "--image=registry.example.com/team/app:v1", "--image-pull-policy=IfNotPresent", "--command", "--", "/workload", "pause"]);
    live.kubectl(&["wait", "--for=condition=Ready", "pod/app", "--timeout=90s"]);
    let pod = live.kubectl_json(&["get", "pod", "app"]);
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["image"], "registry.example.com/team/app:v1", "{status}");
    let image_id = status["imageID"].as_str().unwrap_or_default();
    assert!(image_id.starts_with("registry.example.com/team/app@sha256:"), "imageID {image_id:?}: not pulled by name from a registry");
    let events = live.kubectl(&["get", "events", "--field-selector", "involvedObject.name=app", "-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}"]);
    assert!(events.contains("Pulled: Successfully pulled image \"registry.example.com/team/app:v1\""), "{events}");
    live.interrupt();
}
