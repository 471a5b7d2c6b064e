//! Container log rotation (`containerLogMaxSize`, `containerLogMaxFiles`,
//! `containerLogMonitorInterval`) and a followed log that goes on across rotations, as
//! upstream's container log manager and `ReadLogs` do.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use serde_json::json;

use crate::context::CaseCtx;
use crate::fixtures::{NODE, NodeEnv};
use crate::kube_wait;
use crate::pods::{self, container};

/// Lines the generator writes, and over how long: about 4 KiB a second, so each 3 s round
/// finds the 4 KiB limit passed.
const LINES: u64 = 450;
const RUN: &str = "15s";
const MAX_FILES: usize = 3;

const ROTATION: &str = "containerLogMaxSize: 4Ki\ncontainerLogMaxFiles: 3\ncontainerLogMonitorInterval: 3s\n";

/// The generator's line number (`… logs_generator.go:NN] <id> <METHOD> <url> <status>`).
fn line_id(line: &str) -> Option<u64> {
    line.split_once("] ")?.1.split(' ').next()?.parse().ok()
}

/// The ids of CRI log records (`<time> <stream> <tag> <text>`), in order.
fn record_ids(data: &str) -> Vec<u64> {
    data.lines().filter_map(|l| l.splitn(4, ' ').nth(3)).filter_map(line_id).collect()
}

/// Ensures `ids` are `first, first+1, …` without a gap or a repeat.
fn contiguous(what: &str, ids: &[u64]) -> anyhow::Result<()> {
    for w in ids.windows(2) {
        ensure!(w[1] == w[0] + 1, "{what}: line {} follows line {} (a lost or repeated line): {ids:?}", w[1], w[0]);
    }
    Ok(())
}

/// The files of the container's log directory, by name.
fn log_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

fn read_log(p: &Path) -> anyhow::Result<String> {
    let mut s = String::new();
    let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    if p.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(f).read_to_string(&mut s).with_context(|| format!("{} is not gzip", p.display()))?;
    } else {
        std::io::BufReader::new(f).read_to_string(&mut s)?;
    }
    Ok(s)
}

/// A container logging about 4 KiB/s under `containerLogMaxSize: 4Ki`, `containerLogMaxFiles:
/// 3`: its log is rotated while it runs; at the end its directory holds the live `0.log`, one
/// plain rotated file and one gzip-compressed one (never more than 3), and the three hold
/// consecutive runs of the container's lines. A log followed from the start delivers every line
/// from where it started to the last, across the rotations, once each; a plain read gives the
/// live file only (upstream). Catches an agent that never rotates (one big file), keeps too many
/// files or none compressed, loses or repeats lines at a rotation, or a follow that stays on the
/// renamed file and stops at the first rotation.
pub fn logs_rotated(ctx: CaseCtx) -> crate::catalog::BodyFuture {
    Box::pin(async move {
        let env = NodeEnv::start_secure(&ctx, ROTATION).await?;
        env.wait_ready(Duration::from_secs(30)).await?;
        let args = ["agnhost", "logs-generator", "--log-lines-total", &LINES.to_string(), "--run-duration", RUN];
        let spec = pods::pod("chatty", NODE, vec![container("chatty", &args)], json!({"restartPolicy": "Never"}))?;
        let created = pods::create(&env.client, &spec).await?;
        let uid = created.metadata.uid.clone().unwrap_or_default();
        kube_wait::pod(&env.client, "default", "chatty", "Running", Duration::from_secs(30), |p| (kube_wait::phase(p) == "Running").then_some(())).await?;
        let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let mut stream = api.log_stream("chatty", &LogParams { follow: true, ..Default::default() }).await?.lines();
        let mut followed = Vec::new();
        let follow = async {
            while let Some(l) = stream.try_next().await? {
                followed.extend(line_id(&l));
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(60), follow).await.context("the followed log did not end after the container exited")??;
        kube_wait::pod(&env.client, "default", "chatty", "Succeeded", Duration::from_secs(30), |p| (kube_wait::phase(p) == "Succeeded").then_some(())).await?;

        let dir = env.agent.root_dir().join("pods").join(format!("default_chatty_{uid}")).join("chatty");
        let files = log_files(&dir)?;
        let names: Vec<String> = files.iter().filter_map(|f| f.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        ensure!(files.len() <= MAX_FILES, "{} log files, containerLogMaxFiles is {MAX_FILES}: {names:?}", files.len());
        let live = dir.join("0.log");
        let gz: Vec<&PathBuf> = files.iter().filter(|f| f.extension().is_some_and(|e| e == "gz")).collect();
        let plain: Vec<&PathBuf> = files.iter().filter(|f| **f != live && !gz.contains(f)).collect();
        ensure!(gz.len() == 1 && plain.len() == 1 && files.contains(&live), "expected 0.log, one rotated and one compressed file after several rotations: {names:?}");
        // Oldest to newest: compressed, rotated, live — one run of lines. The live file may
        // be empty (a rotation between the last line and the exit); the rotated ones are not.
        let ids: Vec<Vec<u64>> = [gz[0], plain[0], &live].into_iter().map(|f| read_log(f).map(|d| record_ids(&d))).collect::<anyhow::Result<_>>()?;
        ensure!(!ids[0].is_empty() && !ids[1].is_empty(), "a rotated file holds no line: {names:?}");
        let all: Vec<u64> = ids.concat();
        contiguous("compressed + rotated + live files", &all)?;
        ensure!(all.last() == Some(&(LINES - 1)), "the files end at line {:?}, the container wrote {LINES}", all.last());

        contiguous("the followed log", &followed)?;
        ensure!(followed.last() == Some(&(LINES - 1)), "the followed log ended at line {:?} of {LINES}: it did not go on across a rotation", followed.last());
        let first_rotated = ids[1][0];
        ensure!(
            followed.first().is_some_and(|f| *f < first_rotated),
            "the follow began at line {:?}, after the rotation that started the rotated file (line {first_rotated}): no rotation was crossed",
            followed.first()
        );
        let plain_read = api.logs("chatty", &LogParams::default()).await?;
        let live_ids: Vec<u64> = plain_read.lines().filter_map(line_id).collect();
        ensure!(live_ids == ids[2], "a plain read gives the live file only (lines {:?}), got lines {live_ids:?}", ids[2]);
        env.stop().await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_generator_lines() {
        let l = "I1206 01:02:03.123456       1 logs_generator.go:67] 12 GET /api/v1/namespaces/ns-a/pods/abc 404";
        assert_eq!(line_id(l), Some(12));
        let rec = format!("2026-12-06T01:02:03.1Z stderr F {l}\n2026-12-06T01:02:03.2Z stderr F {}", l.replace("] 12", "] 13"));
        assert_eq!(record_ids(&rec), vec![12, 13]);
        assert!(contiguous("x", &[3, 4, 5]).is_ok());
        assert!(contiguous("x", &[3, 5]).is_err());
        assert!(contiguous("x", &[3, 3]).is_err());
    }
}
