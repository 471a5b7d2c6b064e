//! A real gRPC C-core client (Debian's `python3-grpcio`, installed by `ci/bootstrap`) speaks
//! CRI to fake-cri with no channel option set: C-core sends the percent-encoded socket path as
//! `:authority`, which fake-cri must accept as containerd does (without that every call is
//! `RST_STREAM PROTOCOL_ERROR`). The script is `tests/data/cri_grpcio.py`.
mod common;

use common::World;

const PYTHON: &str = "/usr/bin/python3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_calls_fake_cri_over_the_unix_socket() {
    let w = World::start(&[]).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cri_grpcio.py");
    let out = tokio::process::Command::new(PYTHON).arg(&script).arg(w.socket()).output().await.expect("python3 runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "grpcio against fake-cri failed (is python3-grpcio installed? ci/bootstrap installs it)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for line in ["Version runtime_name=fake-cri runtime_api_version=v1", "Status conditions=", "ListPodSandbox items=0", "NoSuchMethod code=UNIMPLEMENTED"] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
