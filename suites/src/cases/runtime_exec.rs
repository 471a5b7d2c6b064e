//! Runtime cases: exec sync (output, exit codes, timeouts), container logs (format, streams,
//! partial lines, reopen), stats, and images.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use k8s_cri::v1 as api;

use super::{Env, WAIT, timing};
use crate::context::CaseCtx;
use crate::cri::{ContainerState, IMAGE, LogLine, container, image_spec, labels, parse_log, text, wait_log};

pub(crate) async fn exec_sync(e: &mut Env, ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("exec")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    let t = Instant::now();
    let r = e.cri.exec(&id, &["/workload", "print", "--stdout", "to-out", "--stderr", "to-err"], 10).await.context("ExecSync print")?;
    timing(ctx, "ExecSync", t.elapsed());
    ensure!(r.exit_code == 0, "print exits 0: {r:?}");
    ensure!(text(&r.stdout) == "to-out\n", "stdout: {:?}", text(&r.stdout));
    ensure!(text(&r.stderr) == "to-err\n", "stderr: {:?}", text(&r.stderr));
    let r = e.cri.exec(&id, &["/workload", "exit", "--code", "3"], 10).await.context("ExecSync exit 3")?;
    ensure!(r.exit_code == 3, "exit --code 3 gives exit code 3: {r:?}");
    let r = e.cri.exec(&id, &["/workload", "check-file", "/nonexistent"], 10).await.context("ExecSync check-file")?;
    ensure!(r.exit_code == 1, "check-file of a missing file exits 1: {r:?}");
    // Output of an exec never lands in the container's log.
    let log = std::fs::read_to_string(pod.log_dir().join("main.log")).unwrap_or_default();
    ensure!(!log.contains("to-out") && !log.contains("to-err"), "exec output leaked into the container log: {log:?}");
    Ok(())
}

/// Host-visible processes (in this world) whose command line is exactly `cmd`.
fn processes(cmd: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = cmd.iter().flat_map(|a| a.bytes().chain(std::iter::once(0))).collect();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn exec_timeout(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("exec-timeout")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("main", &[])).await?;
    let cmd = ["/workload", "sleep", "4242"];
    let t = Instant::now();
    let (mut cri, exec_id) = (e.cri.clone(), id.clone());
    let call = tokio::spawn(async move { cri.exec(&exec_id, &cmd, 1).await });
    // While the exec runs, its process is visible from the world (so its absence later means something).
    let seen = harness::wait::wait_for("the exec process to appear", Duration::from_secs(5), || async { !processes(&cmd).is_empty() }).await;
    let r = call.await?;
    let took = t.elapsed();
    seen?;
    match &r {
        Err(s) if s.code() == tonic::Code::DeadlineExceeded => {}
        other => bail!("ExecSync past its 1 s timeout should fail with DeadlineExceeded (as containerd), got {other:?}"),
    }
    ensure!(took >= Duration::from_millis(900) && took < Duration::from_secs(10), "the 1 s timeout took {took:?}");
    // The timed-out process is killed, not left running in the container.
    harness::wait::wait_for("the timed-out exec process to be gone", Duration::from_secs(5), || async {
        let left = processes(&cmd);
        if left.is_empty() { Ok(()) } else { Err(left) }
    })
    .await?;
    let st = e.cri.status(&id).await.context("ContainerStatus")?;
    ensure!(st.state == ContainerState::ContainerRunning as i32, "the container survives a timed-out exec: {st:?}");
    let out = e.cri.exec_ok(&id, &["/workload", "hostname"]).await?;
    ensure!(out.trim() == "exec-timeout", "exec after a timeout: {out:?}");
    Ok(())
}

fn read_log(path: &str) -> anyhow::Result<Vec<LogLine>> {
    parse_log(&std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
}

pub(crate) async fn log_format(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("logs")?;
    let sid = e.cri.run_pod(&pod).await?;
    let args = ["print", "--stdout", "full out line", "--stderr", "full err line", "--partial", "no newline"];
    let id = e.cri.run(&sid, &pod, &container("printer", &args)).await?;
    let st = e.cri.wait_state(&id, ContainerState::ContainerExited, WAIT).await?;
    ensure!(st.exit_code == 0, "print exits 0: {st:?}");
    // The log is complete once the container is EXITED.
    let lines = read_log(&st.log_path)?;
    let mut got: Vec<(String, String, String)> = lines.iter().map(|l| (l.stream.clone(), l.tag.clone(), l.msg.clone())).collect();
    got.sort();
    let want = [("stderr", "F", "full err line"), ("stdout", "F", "full out line"), ("stdout", "P", "no newline")];
    let want: Vec<(String, String, String)> = want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    ensure!(got == want, "log lines {got:?}, expected {want:?}");
    // Timestamps are RFC 3339 with nanoseconds, in order within a stream.
    for l in &lines {
        ensure!(l.time.contains('.'), "timestamp without fractional seconds: {l:?}");
    }
    let outs: Vec<jiff::Timestamp> = lines.iter().filter(|l| l.stream == "stdout").map(|l| l.time.parse()).collect::<Result<_, _>>()?;
    ensure!(outs.windows(2).all(|w| w[0] <= w[1]), "stdout timestamps out of order: {lines:?}");
    // A second container of the pod logs to its own file, and only there.
    let second = e.cri.run(&sid, &pod, &container("second", &["print", "--stdout", "second's line"])).await?;
    let st2 = e.cri.wait_state(&second, ContainerState::ContainerExited, WAIT).await?;
    ensure!(st2.log_path != st.log_path, "two containers share the log {}", st2.log_path);
    let theirs = read_log(&st2.log_path)?;
    ensure!(theirs.iter().map(|l| l.msg.as_str()).collect::<Vec<_>>() == ["second's line"], "the second container's log: {theirs:?}");
    let mine = read_log(&st.log_path)?;
    ensure!(!mine.iter().any(|l| l.msg.contains("second's")), "the first container's log got the second's line: {mine:?}");
    Ok(())
}

pub(crate) async fn log_reopen(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("reopen")?;
    let sid = e.cri.run_pod(&pod).await?;
    let id = e.cri.run(&sid, &pod, &container("server", &["netexec", "--http-port", "8080"])).await?;
    let log = pod.log_dir().join("server.log");
    wait_log(&log, "serving HTTP on port 8080", WAIT).await?;
    let rotated = pod.log_dir().join("server.log.1");
    std::fs::rename(&log, &rotated).context("rotating the log")?;
    e.cri
        .rt
        .reopen_container_log(api::ReopenContainerLogRequest { container_id: id.clone() })
        .await
        .context("ReopenContainerLog")?;
    ensure!(log.exists(), "ReopenContainerLog did not create a new {}", log.display());
    // Make the container write after the reopen: /exit prints a line and exits. The request
    // comes from inside the pod (the exec may end with the container).
    let _ = e.cri.exec(&id, &["/workload", "check-port", "8080", "--get", "/exit?code=3"], 5).await;
    let st = e.cri.wait_state(&id, ContainerState::ContainerExited, WAIT).await?;
    ensure!(st.exit_code == 3, "netexec /exit?code=3 exits 3: {st:?}");
    let new = read_log(&log.to_string_lossy())?;
    let old = read_log(&rotated.to_string_lossy())?;
    ensure!(new.iter().any(|l| l.msg.contains("exiting with code 3")), "the reopened log lacks the last line: {new:?}");
    ensure!(!old.iter().any(|l| l.msg.contains("exiting with code 3")), "the rotated log got a line after the reopen: {old:?}");
    ensure!(!new.iter().any(|l| l.msg.contains("serving HTTP")), "the reopened log repeats old lines: {new:?}");
    // Reopening the log of a container that is not running fails.
    let r = e.cri.rt.reopen_container_log(api::ReopenContainerLogRequest { container_id: id.clone() }).await;
    ensure!(r.is_err(), "ReopenContainerLog of an exited container should fail");
    Ok(())
}

pub(crate) async fn stats(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("stats")?;
    let sid = e.cri.run_pod(&pod).await?;
    let hog = e.cri.run(&sid, &pod, &container("hog", &["alloc-memory", "--mib", "24"]).label("stats", "hog")).await?;
    let idle = e.cri.run(&sid, &pod, &container("idle", &[]).label("stats", "idle")).await?;
    let cri = e.cri.clone();
    let s = harness::wait::wait_for("the hog's working set to reach 24 MiB", WAIT, || {
        let mut cri = cri.clone();
        let hog = hog.clone();
        async move {
            let r = cri.rt.container_stats(api::ContainerStatsRequest { container_id: hog }).await;
            match r.map(|r| r.into_inner().stats) {
                Ok(Some(s)) if s.memory.as_ref().and_then(|m| m.working_set_bytes.as_ref()).is_some_and(|w| w.value >= 24 << 20) => Ok(s),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await?;
    let attrs = s.attributes.as_ref().context("stats without attributes")?;
    ensure!(attrs.id == hog, "stats of {hog} name {}", attrs.id);
    ensure!(attrs.metadata.as_ref().map(|m| m.name.as_str()) == Some("hog"), "attributes: {attrs:?}");
    ensure!(attrs.labels.get("stats").map(String::as_str) == Some("hog"), "attributes: {attrs:?}");
    let cpu = s.cpu.as_ref().context("stats without cpu")?;
    ensure!(cpu.timestamp > 0 && cpu.usage_core_nano_seconds.as_ref().is_some_and(|u| u.value > 0), "cpu: {cpu:?}");
    let mem = s.memory.as_ref().context("stats without memory")?;
    ensure!(mem.timestamp > 0, "memory: {mem:?}");
    ensure!(s.writable_layer.is_some(), "stats without writable_layer: {s:?}");

    let list = |f: api::ContainerStatsFilter| {
        let mut cri = cri.clone();
        async move {
            let r = cri.rt.list_container_stats(api::ListContainerStatsRequest { filter: Some(f) }).await?;
            let mut ids: Vec<String> = r.into_inner().stats.into_iter().filter_map(|s| s.attributes.map(|a| a.id)).collect();
            ids.sort();
            Ok::<_, tonic::Status>(ids)
        }
    };
    // No filter: every container (on an external runtime, this case's share of them).
    let mut both = vec![hog.clone(), idle.clone()];
    both.sort();
    let all = list(e.cri.scope_filter(api::ContainerStatsFilter::default())).await?;
    ensure!(all == both, "ListContainerStats without a filter: {all:?}, expected {both:?}");
    let by_label = list(api::ContainerStatsFilter { label_selector: labels(&[("stats", "idle")]), ..Default::default() }).await?;
    ensure!(by_label == [idle.clone()], "stats by label stats=idle: {by_label:?}");
    let by_id = list(api::ContainerStatsFilter { id: hog.clone(), ..Default::default() }).await?;
    ensure!(by_id == [hog.clone()], "stats by id: {by_id:?}");
    let by_pod = list(api::ContainerStatsFilter { pod_sandbox_id: sid.clone(), ..Default::default() }).await?;
    ensure!(by_pod == both, "stats by sandbox: {by_pod:?}");
    let r = e.cri.rt.container_stats(api::ContainerStatsRequest { container_id: super::pods::MISSING.into() }).await;
    ensure!(r.is_err(), "ContainerStats of an unknown id should fail: {r:?}");
    Ok(())
}

/// critest's stats of created containers: ListContainerStats without a filter (nil, as critest
/// sends it) lists three containers that are created but not started, each with its
/// attributes, next to a running one; with a filter naming the pod, the same four. Catches a
/// runtime that reports stats only for running containers, or ignores a nil filter.
pub(crate) async fn stats_of_created_containers(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let pod = e.cri.pod("stats-created")?;
    let sid = e.cri.run_pod(&pod).await?;
    let mut want = Vec::new();
    for name in ["created-1", "created-2", "created-3"] {
        want.push((e.cri.create(&sid, &pod, &container(name, &[])).await?, name));
    }
    want.push((e.cri.run(&sid, &pod, &container("running", &[])).await?, "running"));
    want.sort();
    let want: Vec<(String, String)> = want.into_iter().map(|(id, n)| (id, n.to_string())).collect();
    let listed = |stats: Vec<api::ContainerStats>| {
        let mut v: Vec<(String, String)> = stats
            .into_iter()
            .filter_map(|s| s.attributes)
            .map(|a| (a.id, a.metadata.map(|m| m.name).unwrap_or_default()))
            .filter(|(id, _)| want.iter().any(|(w, _)| w == id))
            .collect();
        v.sort();
        v
    };
    let nil = e.cri.rt.list_container_stats(api::ListContainerStatsRequest { filter: None }).await.context("ListContainerStats with a nil filter")?;
    let got = listed(nil.into_inner().stats);
    ensure!(got == want, "ListContainerStats with a nil filter: {got:?}, expected the three created containers and the running one {want:?}");
    let f = api::ContainerStatsFilter { pod_sandbox_id: sid.clone(), ..Default::default() };
    let by_pod = e.cri.rt.list_container_stats(api::ListContainerStatsRequest { filter: Some(f) }).await.context("ListContainerStats by sandbox")?;
    let got = listed(by_pod.into_inner().stats);
    ensure!(got == want, "ListContainerStats by sandbox: {got:?}, expected {want:?}");
    Ok(())
}

fn tagged(images: &[api::Image], reference: &str) -> bool {
    images.iter().any(|i| i.repo_tags.iter().any(|t| t == reference))
}

pub(crate) async fn images(e: &mut Env, _ctx: &CaseCtx) -> anyhow::Result<()> {
    let img = e.cri.image(IMAGE).await?.context("the workload image is present")?;
    ensure!(img.id.starts_with("sha256:"), "image id: {img:?}");
    ensure!(img.repo_tags.iter().any(|t| t == IMAGE), "repo_tags: {img:?}");
    ensure!(img.size > 1 << 20, "image size {} is smaller than the binary it holds", img.size);
    // critest's "image status should support all kinds of references": the same status by the
    // image's id, by each of its repo tags and by each of its repo digests.
    let mut refs = vec![img.id.clone()];
    refs.extend(img.repo_tags.iter().cloned());
    refs.extend(img.repo_digests.iter().cloned());
    // (An imported image may have no repo digest: containerd lists none for one.)
    for r in refs {
        let by = e.cri.image(&r).await?.with_context(|| format!("ImageStatus {r} (a reference of {IMAGE}) finds nothing"))?;
        ensure!(by == img, "ImageStatus {r} gives {by:?}, ImageStatus {IMAGE} gives {img:?}");
    }
    let absent = e.cri.image("nodekit.local/absent:0.0").await?;
    ensure!(absent.is_none(), "ImageStatus of an absent image is empty, not an error: {absent:?}");

    let base = e.cri.clone();
    let list = |filter: Option<&str>| {
        let mut cri = base.clone();
        let filter = filter.map(|f| api::ImageFilter { image: Some(image_spec(f)) });
        async move { Ok::<_, tonic::Status>(cri.img.list_images(api::ListImagesRequest { filter }).await?.into_inner().images) }
    };
    let all = list(None).await?;
    ensure!(tagged(&all, IMAGE) && tagged(&all, harness::backend::PAUSE_IMAGE), "ListImages: {all:?}");
    // containerd 1.6 ignores ListImages filters; the image must be in the answer either way.
    let one = list(Some(IMAGE)).await?;
    ensure!(tagged(&one, IMAGE), "ListImages filtered by {IMAGE}: {one:?}");

    let fs = e.cri.img.image_fs_info(api::ImageFsInfoRequest {}).await.context("ImageFsInfo")?.into_inner();
    ensure!(!fs.image_filesystems.is_empty(), "ImageFsInfo lists no filesystem: {fs:?}");

    // A runtime someone else runs keeps its images: the workload image is removed only when
    // it can be pulled back, and is pulled back at the end.
    let shared = e.cri.is_scoped();
    if shared {
        pull(e, "before removing it").await?;
    }
    e.cri.img.remove_image(api::RemoveImageRequest { image: Some(image_spec(IMAGE)) }).await.context("RemoveImage")?;
    ensure!(e.cri.image(IMAGE).await?.is_none(), "ImageStatus after RemoveImage still finds the image");
    let all = list(None).await?;
    ensure!(!tagged(&all, IMAGE), "ListImages after RemoveImage: {all:?}");
    e.cri
        .img
        .remove_image(api::RemoveImageRequest { image: Some(image_spec(IMAGE)) })
        .await
        .context("RemoveImage of an image that is already gone")?;
    if shared {
        pull(e, "to restore it").await?;
    }
    Ok(())
}

/// PullImage of the workload image (on an external runtime, which must be able to get it).
async fn pull(e: &mut Env, why: &str) -> anyhow::Result<()> {
    e.cri
        .img
        .pull_image(api::PullImageRequest { image: Some(image_spec(IMAGE)), auth: None, sandbox_config: None })
        .await
        .with_context(|| format!("PullImage {IMAGE} {why}: the runtime must be able to pull the workload image"))?;
    Ok(())
}
