//! Runtime cases: container lifecycle, removal from every state, idempotency, listing, exit
//! codes and reasons, environment and arguments, OOM kills, host path mounts.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use k8s_cri::v1 as api;
use tonic::Code;

use super::pods::MISSING;
use super::{Env, WAIT, timing};
use crate::context::CaseCtx;
use crate::cri::{ContainerState, IMAGE, container, expect_code, labels, text, wait_log};

pub(crate) async fn lifecycle(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("c-lifecycle")?;
    let sid = e.cri.run_pod(&pod).await?;
    let t = Instant::now();
    let ctr = container("main", &[]).label("role", "main").annotation("nodekit.dev/note", "kept").attempt(2);
    let id = e.cri.create(&sid, &pod, &ctr).await?;
    timing(ctx, "CreateContainer", t.elapsed());
    let st = e.cri.status(&id).await.context("ContainerStatus after create")?;
    ensure!(st.state == ContainerState::ContainerCreated as i32, "a created container is CREATED: {st:?}");
    ensure!(st.created_at > 0 && st.started_at == 0 && st.finished_at == 0, "timestamps after create: {st:?}");
    ensure!(st.metadata.as_ref().map(|m| (m.name.as_str(), m.attempt)) == Some(("main", 2)), "metadata (name, attempt): {st:?}");
    ensure!(st.labels.get("role").map(String::as_str) == Some("main"), "labels: {st:?}");
    ensure!(st.annotations.get("nodekit.dev/note").map(String::as_str) == Some("kept"), "annotations: {st:?}");
    ensure!(st.image.as_ref().map(|i| i.image.as_str()) == Some(IMAGE), "image: {st:?}");
    expect_image_ref(e, &st.image_ref).await.context("ContainerStatus after create")?;
    let log = pod.log_dir().join("main.log");
    ensure!(st.log_path == log.to_string_lossy(), "log_path {:?} should be {}", st.log_path, log.display());
    // ListContainers answers the same attributes.
    let listed = e.cri.list(api::ContainerFilter { id: id.clone(), ..Default::default() }).await?;
    let [c] = listed.as_slice() else { anyhow::bail!("ListContainers by id: {listed:?}") };
    ensure!(c.metadata == st.metadata && c.pod_sandbox_id == sid, "ListContainers metadata and sandbox: {c:?}");
    ensure!(c.labels.get("role") == st.labels.get("role") && c.annotations.get("nodekit.dev/note") == st.annotations.get("nodekit.dev/note"), "ListContainers labels and annotations: {c:?}");
    ensure!(c.image_ref == st.image_ref && c.state == st.state, "ListContainers image_ref and state: {c:?} vs {st:?}");
    // critest's "same image identifier across all APIs": image_id, when the runtime sets it,
    // is the image's id, in ContainerStatus and ListContainers alike.
    let img = e.cri.image(IMAGE).await?.with_context(|| format!("ImageStatus {IMAGE}: absent"))?;
    ensure!(st.image_id.is_empty() || st.image_id == img.id, "ContainerStatus image_id {:?} is not the image id {:?}", st.image_id, img.id);
    ensure!(c.image_id == st.image_id, "ListContainers image_id {:?}, ContainerStatus {:?}", c.image_id, st.image_id);

    let t = Instant::now();
    e.cri.start(&id).await?;
    timing(ctx, "StartContainer", t.elapsed());
    let st = e.cri.status(&id).await.context("ContainerStatus after start")?;
    ensure!(st.state == ContainerState::ContainerRunning as i32, "a started container is RUNNING: {st:?}");
    ensure!(st.started_at >= st.created_at, "started_at before created_at: {st:?}");
    // pause logs once its SIGTERM handler is installed; a SIGTERM before that kills it (143).
    wait_log(&log, "workload pause: started", WAIT).await?;

    let t = Instant::now();
    e.cri.stop(&id, 10).await.context("StopContainer")?;
    timing(ctx, "StopContainer", t.elapsed());
    let st = e.cri.status(&id).await.context("ContainerStatus after stop")?;
    ensure!(st.state == ContainerState::ContainerExited as i32, "a stopped container is EXITED: {st:?}");
    ensure!(st.exit_code == 0 && st.reason == "Completed", "pause ends with 0 on SIGTERM: {st:?}");
    ensure!(st.finished_at >= st.started_at, "finished_at before started_at: {st:?}");
    e.cri.remove(&id).await.context("RemoveContainer")?;
    expect_code(e.cri.status(&id).await, Code::NotFound, "ContainerStatus of a removed container")?;
    let listed = e.cri.list(api::ContainerFilter { id: id.clone(), ..Default::default() }).await?;
    ensure!(listed.is_empty(), "a removed container is still listed: {listed:?}");
    Ok(())
}

pub(crate) async fn remove_from_every_state(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("c-remove")?;
    let sid = e.cri.run_pod(&pod).await?;
    let created = e.cri.create(&sid, &pod, &container("created", &[])).await?;
    let running = e.cri.run(&sid, &pod, &container("running", &[])).await?;
    let exited = e.cri.run(&sid, &pod, &container("exited", &["exit", "--code", "0"])).await?;
    e.cri.wait_state(&exited, ContainerState::ContainerExited, WAIT).await?;
    for (what, id) in [("CREATED", &created), ("RUNNING", &running), ("EXITED", &exited)] {
        e.cri.remove(id).await.with_context(|| format!("RemoveContainer of a {what} container"))?;
        expect_code(e.cri.status(id).await, Code::NotFound, &format!("ContainerStatus of a removed {what} container"))?;
    }
    let left = e.cri.list(api::ContainerFilter { pod_sandbox_id: sid, ..Default::default() }).await?;
    ensure!(left.is_empty(), "removed containers are still listed: {left:?}");
    Ok(())
}

pub(crate) async fn idempotent(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("c-idem")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    e.cri.stop(&id, 10).await.context("first StopContainer")?;
    e.cri.stop(&id, 10).await.context("second StopContainer of an exited container")?;
    e.cri.remove(&id).await.context("first RemoveContainer")?;
    e.cri.remove(&id).await.context("second RemoveContainer of a removed container")?;
    // As containerd: stopping an unknown container is NotFound, removing one succeeds.
    expect_code(e.cri.stop(MISSING, 10).await, Code::NotFound, "StopContainer of an unknown id")?;
    e.cri.remove(MISSING).await.context("RemoveContainer of an unknown id")?;
    expect_code(e.cri.status(MISSING).await, Code::NotFound, "ContainerStatus of an unknown id")?;
    Ok(())
}

fn ids(v: &[api::Container]) -> Vec<String> {
    let mut ids: Vec<String> = v.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids
}

fn sorted(v: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn state(s: ContainerState) -> Option<api::ContainerStateValue> {
    Some(api::ContainerStateValue { state: s as i32 })
}

pub(crate) async fn list_filters(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pa = e.cri.pod("list-a")?;
    let a = e.cri.run_pod(&pa).await?;
    let pb = e.cri.pod("list-b")?;
    let b = e.cri.run_pod(&pb).await?;
    let c1 = e.cri.run(&a, &pa, &container("one", &[]).label("role", "one")).await?;
    let c2 = e.cri.create(&a, &pa, &container("two", &[]).label("role", "two")).await?;
    let c3 = e.cri.run(&b, &pb, &container("three", &[]).label("role", "one")).await?;

    let all = e.cri.list(Default::default()).await?;
    ensure!(ids(&all) == sorted(&[&c1, &c2, &c3]), "unfiltered: {all:?}");
    let by_id = e.cri.list(api::ContainerFilter { id: c2.clone(), ..Default::default() }).await?;
    ensure!(ids(&by_id) == [c2.clone()], "by id: {by_id:?}");
    let created = e.cri.list(api::ContainerFilter { state: state(ContainerState::ContainerCreated), ..Default::default() }).await?;
    ensure!(ids(&created) == [c2.clone()], "CREATED: {created:?}");
    let running = e.cri.list(api::ContainerFilter { state: state(ContainerState::ContainerRunning), ..Default::default() }).await?;
    ensure!(ids(&running) == sorted(&[&c1, &c3]), "RUNNING: {running:?}");
    let in_a = e.cri.list(api::ContainerFilter { pod_sandbox_id: a.clone(), ..Default::default() }).await?;
    ensure!(ids(&in_a) == sorted(&[&c1, &c2]), "in sandbox a: {in_a:?}");
    let one = e.cri.list(api::ContainerFilter { label_selector: labels(&[("role", "one")]), ..Default::default() }).await?;
    ensure!(ids(&one) == sorted(&[&c1, &c3]), "label role=one: {one:?}");
    let one_in_b = e
        .cri
        .list(api::ContainerFilter { pod_sandbox_id: b.clone(), label_selector: labels(&[("role", "one")]), ..Default::default() })
        .await?;
    ensure!(ids(&one_in_b) == [c3.clone()], "role=one in sandbox b: {one_in_b:?}");
    let item = all.iter().find(|c| c.id == c1).context("c1 listed")?;
    ensure!(item.pod_sandbox_id == a, "listed sandbox id: {item:?}");
    ensure!(item.metadata.as_ref().map(|m| m.name.as_str()) == Some("one"), "listed metadata: {item:?}");
    ensure!(item.image.as_ref().map(|i| i.image.as_str()) == Some(IMAGE), "listed image spec: {item:?}");
    expect_image_ref(e, &item.image_ref).await.context("ListContainers")?;
    Ok(())
}

/// A container's `image_ref` names the image it runs: the image's id or one of its repo
/// digests, as ImageStatus reports them (not merely a non-empty string).
async fn expect_image_ref(e: &mut Env, image_ref: &str) -> anyhow::Result<()> {
    let img = e.cri.image(IMAGE).await?.with_context(|| format!("ImageStatus {IMAGE}: absent"))?;
    ensure!(
        image_ref == img.id || img.repo_digests.iter().any(|d| d == image_ref),
        "image_ref {image_ref:?} is neither the image id {:?} nor one of its repo digests {:?}",
        img.id,
        img.repo_digests
    );
    Ok(())
}

pub(crate) async fn exit_codes(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("exit-codes")?;
    let sid = e.cri.run_pod(&pod).await?;
    let mut ids = Vec::new();
    for code in [0, 1, 42] {
        let c = container(&format!("exit-{code}"), &["exit", "--code", &code.to_string()]);
        ids.push((code, e.cri.run(&sid, &pod, &c).await?));
    }
    for (code, id) in ids {
        let st = e.cri.wait_state(&id, ContainerState::ContainerExited, WAIT).await?;
        let reason = if code == 0 { "Completed" } else { "Error" };
        ensure!(st.exit_code == code && st.reason == reason, "exit {code}: expected reason {reason}, got {st:?}");
        // A fast exit may be recorded before the start is: containerd reports finished_at
        // slightly before started_at then, so only presence is checked.
        ensure!(st.started_at > 0 && st.finished_at > 0, "timestamps of exit {code}: {st:?}");
    }
    Ok(())
}

pub(crate) async fn env_and_args(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("env-args")?;
    let sid = e.cri.run_pod(&pod).await?;
    // No command and no args: the image's entrypoint and cmd (`/workload pause`) keep running.
    let default = e.cri.run(&sid, &pod, &container("default", &[]).env("GREETING", "hello").env("SPACED", "two words")).await?;
    let env = e.cri.exec_ok(&default, &["/workload", "env"]).await?;
    let lines: Vec<&str> = env.lines().collect();
    for want in ["GREETING=hello", "SPACED=two words", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] {
        ensure!(lines.contains(&want), "container env lacks {want:?}: {lines:?}");
    }
    let st = e.cri.status(&default).await.context("ContainerStatus")?;
    ensure!(st.state == ContainerState::ContainerRunning as i32, "the image default (pause) keeps running: {st:?}");
    // Args replace the image's cmd; the entrypoint stays.
    let args = e.cri.run(&sid, &pod, &container("args", &["exit", "--code", "7"])).await?;
    let st = e.cri.wait_state(&args, ContainerState::ContainerExited, WAIT).await?;
    ensure!(st.exit_code == 7, "args [exit --code 7] should exit 7: {st:?}");
    // A command replaces the entrypoint.
    let cmd = e.cri.run(&sid, &pod, &container("cmd", &["--code", "9"]).command(&["/workload", "exit"])).await?;
    let st = e.cri.wait_state(&cmd, ContainerState::ContainerExited, WAIT).await?;
    ensure!(st.exit_code == 9, "command [/workload exit] args [--code 9] should exit 9: {st:?}");
    // Args with spaces arrive as one argument each.
    let print = e.cri.run(&sid, &pod, &container("print", &["print", "--stdout", "one two  three"])).await?;
    let st = e.cri.wait_state(&print, ContainerState::ContainerExited, WAIT).await?;
    let log = std::fs::read_to_string(&st.log_path).with_context(|| format!("reading {}", st.log_path))?;
    ensure!(log.lines().any(|l| l.ends_with(" stdout F one two  three")), "log of print: {log:?}");
    Ok(())
}

pub(crate) async fn oom_killed(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("oom")?;
    let sid = e.cri.run_pod(&pod).await?;
    let c = container("hog", &["alloc-memory", "--mib", "256", "--step-mib", "16"]).memory_limit(64 << 20);
    let id = e.cri.run(&sid, &pod, &c).await?;
    let st = e.cri.wait_state(&id, ContainerState::ContainerExited, WAIT).await?;
    let log = std::fs::read_to_string(&st.log_path).unwrap_or_default();
    ensure!(
        st.exit_code == 137 && st.reason == "OOMKilled",
        "allocating 256 MiB under a 64 MiB limit: expected 137/OOMKilled, got {} {:?} ({}); log:\n{}",
        st.exit_code,
        st.reason,
        st.message,
        text(log.as_bytes())
    );
    Ok(())
}

/// The `Uid:` or `Gid:` line of `/proc/self/status` text: (real, effective).
fn ids_of(status: &str, key: &str) -> Option<(String, String)> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    Some((f.get(1)?.to_string(), f.get(2)?.to_string()))
}

pub(crate) async fn security_context(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("security")?;
    let sid = e.cri.run_pod(&pod).await?;
    // run_as_user / run_as_group apply to the container and to processes exec'd in it.
    let nobody = e.cri.run(&sid, &pod, &container("nobody", &[]).user(65534, 65534)).await?;
    let status = e.cri.exec_ok(&nobody, &["/workload", "cat", "/proc/self/status"]).await?;
    let want = Some(("65534".to_string(), "65534".to_string()));
    ensure!(ids_of(&status, "Uid:") == want, "uid of an exec in a run_as_user 65534 container:\n{status}");
    ensure!(ids_of(&status, "Gid:") == want, "gid of an exec in a run_as_group 65534 container:\n{status}");
    let root = e.cri.run(&sid, &pod, &container("root", &[])).await?;
    let status = e.cri.exec_ok(&root, &["/workload", "cat", "/proc/self/status"]).await?;
    ensure!(ids_of(&status, "Uid:") == Some(("0".into(), "0".into())), "the image's default user is root:\n{status}");
    // A read-only root filesystem refuses writes; a default one accepts them.
    let ro = e.cri.run(&sid, &pod, &container("readonly", &[]).readonly_rootfs()).await?;
    let r = e.cri.exec(&ro, &["/workload", "touch", "/probe"], 10).await.context("ExecSync touch on a read-only rootfs")?;
    ensure!(r.exit_code != 0, "touch /probe on a read-only rootfs succeeded: {r:?}");
    e.cri.exec_ok(&root, &["/workload", "touch", "/probe"]).await.context("touch /probe on a writable rootfs")?;
    e.cri.exec_ok(&root, &["/workload", "check-file", "/probe"]).await?;
    // Containers have their own root filesystems: the file is not visible in the other one.
    let r = e.cri.exec(&ro, &["/workload", "check-file", "/probe"], 10).await.context("ExecSync check-file")?;
    ensure!(r.exit_code == 1, "a file written in one container's rootfs shows in another's: {r:?}");
    Ok(())
}

/// critest's host path mounts. A file written on the node under a mount's host path is read
/// in the container at its container path; a write through a read-write mount reaches the node;
/// a read-only mount refuses writes, also when another container mounts the same path
/// read-write; a host path that is a symlink mounts the directory it points to; ContainerStatus
/// reports the mounts asked for. Catches a runtime that drops CreateContainer's mounts, mounts
/// them elsewhere, copies instead of binding, ignores `readonly`, or fails on a symlink.
pub(crate) async fn host_path_mounts(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let host = harness::backend::scratch_dir("host-path-mount")?;
    std::fs::write(host.join("from-node"), "written on the node\n")?;
    let pod = e.cri.pod("host-path")?;
    let sid = e.cri.run_pod(&pod).await?;
    let link = harness::backend::scratch_dir("host-path-link")?.join("to-data");
    if !link.exists() {
        std::os::unix::fs::symlink(&host, &link)?;
    }
    let rw = e.cri.run(&sid, &pod, &container("rw", &[]).mount(&host, "/data", false).mount(&link, "/via-link", false)).await?;
    let ro = e.cri.run(&sid, &pod, &container("ro", &[]).mount(&host, "/data", true)).await?;
    for (what, id) in [("read-write", &rw), ("read-only", &ro)] {
        let seen = e.cri.exec_ok(id, &["/workload", "cat", "/data/from-node"]).await.with_context(|| format!("reading through the {what} mount"))?;
        ensure!(seen == "written on the node\n", "the node's file read through the {what} mount: {seen:?}");
    }
    let seen = e.cri.exec_ok(&rw, &["/workload", "cat", "/via-link/from-node"]).await.context("reading through a mount of a symlinked host path")?;
    ensure!(seen == "written on the node\n", "the node's file read through the symlinked host path: {seen:?}");
    e.cri.exec_ok(&rw, &["/workload", "touch", "/data/from-container"]).await.context("writing through the read-write mount")?;
    ensure!(host.join("from-container").exists(), "a file written through the read-write mount is not at the host path {}", host.display());
    // Written after the containers started: a bind, not a copy made at create.
    std::fs::write(host.join("later"), "after start\n")?;
    let seen = e.cri.exec_ok(&ro, &["/workload", "cat", "/data/later"]).await.context("a file the node wrote after the start")?;
    ensure!(seen == "after start\n", "a file the node wrote after the start, read through the read-only mount: {seen:?}");
    let r = e.cri.exec(&ro, &["/workload", "touch", "/data/refused"], 10).await.context("ExecSync touch on the read-only mount")?;
    ensure!(r.exit_code != 0 && !host.join("refused").exists(), "a write through the read-only mount succeeded: {r:?}");
    for (id, readonly) in [(&rw, false), (&ro, true)] {
        let st = e.cri.status(id).await.context("ContainerStatus")?;
        let reported = st.mounts.iter().any(|m| m.container_path == "/data" && std::path::Path::new(&m.host_path) == host && m.readonly == readonly);
        ensure!(reported, "ContainerStatus mounts should list {} at /data (readonly {readonly}): {:?}", host.display(), st.mounts);
    }
    Ok(())
}
