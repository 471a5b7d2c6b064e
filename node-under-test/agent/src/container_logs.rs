//! Container log rotation, as upstream's container log manager (`pkg/kubelet/logs`): every
//! `containerLogMonitorInterval`, each running container whose CRI log file has reached
//! `containerLogMaxSize` has the file renamed to `<log>.<YYYYmmdd-HHMMSS>` and the runtime
//! reopens the log (ReopenContainerLog). Before that, the rotated files of earlier rounds are
//! tidied: leftovers of an interrupted compression go, the oldest go until at most
//! `containerLogMaxFiles - 2` remain, and every remaining one is gzip-compressed. So a container
//! keeps at most `containerLogMaxFiles` files: the live one, the one just rotated (plain, so a
//! reader that followed it can finish), and the compressed rest.
//!
//! The plan for one log is a pure function ([`plan`]); the file operations and the runtime call
//! are in [`rotate`]; [`run_log_manager`] is the periodic loop.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::config::KubeletConfiguration;
use crate::cri::{Runtime, api};

/// Suffix of a compressed rotated log.
const COMPRESS_SUFFIX: &str = ".gz";
/// Suffix of a compression in progress.
const TMP_SUFFIX: &str = ".tmp";
/// Go's `20060102-150405`.
const TIMESTAMP_FORMAT: &str = "%Y%m%d-%H%M%S";

/// The rotation settings of the KubeletConfiguration.
#[derive(Clone, Debug, PartialEq)]
pub struct RotatePolicy {
    /// Rotate at this many bytes.
    pub max_size: u64,
    /// Most files per container, the live one included.
    pub max_files: usize,
    /// Containers handled at once.
    pub workers: usize,
    /// Time between two rounds.
    pub interval: Duration,
}

impl RotatePolicy {
    /// The policy, `None` when rotation is off (a negative size, as upstream), or upstream's
    /// validation message.
    pub fn from_config(kc: &KubeletConfiguration) -> Result<Option<RotatePolicy>, String> {
        if kc.container_log_max_files < 2 {
            return Err(format!(
                "containerLogMaxFiles (--container-log-max-files) {} must be greater than 1",
                kc.container_log_max_files
            ));
        }
        if kc.container_log_max_workers < 1 {
            return Err("containerLogMaxWorkers must be greater than or equal to 1".into());
        }
        if kc.container_log_monitor_interval.0 < Duration::from_secs(3) {
            return Err("containerLogMonitorInterval must be a positive time duration greater than or equal to 3s".into());
        }
        let text = kc.container_log_max_size.as_str();
        let (negative, magnitude) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let size = crate::quantity::parse_quantity(magnitude)
            .ok_or_else(|| format!("failed to parse container log max size {:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'", kc.container_log_max_size))?;
        if negative && size > 0.0 {
            return Ok(None);
        }
        Ok(Some(RotatePolicy {
            max_size: size.ceil() as u64,
            max_files: kc.container_log_max_files as usize,
            workers: kc.container_log_max_workers as usize,
            interval: kc.container_log_monitor_interval.0,
        }))
    }
}

/// What to do with the rotated files of one log (`siblings`: every `<log>.*`) before the log
/// itself is rotated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Unused leftovers and the oldest rotated files, in this order.
    pub remove: Vec<PathBuf>,
    /// Rotated files still plain, to be gzip-compressed.
    pub compress: Vec<PathBuf>,
}

fn has_suffix(p: &Path, suffix: &str) -> bool {
    p.to_string_lossy().ends_with(suffix)
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Upstream's `isInUse`: temporary files are not; compressed files are; a plain file whose
/// compressed twin exists is not (its compression finished, the removal did not).
fn in_use(l: &Path, all: &[PathBuf]) -> bool {
    if has_suffix(l, TMP_SUFFIX) {
        return false;
    }
    if has_suffix(l, COMPRESS_SUFFIX) {
        return true;
    }
    let gz = with_suffix(l, COMPRESS_SUFFIX);
    !all.contains(&gz)
}

/// The plan for one log: leftovers go, then the oldest (by name: the timestamps sort) until
/// `max_files - 2` remain, and the plain ones among those are compressed.
pub fn plan(mut siblings: Vec<PathBuf>, max_files: usize) -> Plan {
    siblings.sort();
    let (inuse, mut remove): (Vec<PathBuf>, Vec<PathBuf>) = {
        let all = siblings.clone();
        siblings.into_iter().partition(|l| in_use(l, &all))
    };
    let keep = max_files.saturating_sub(2);
    let excess = inuse.len().saturating_sub(keep);
    remove.extend(inuse[..excess].iter().cloned());
    let compress = inuse[excess..].iter().filter(|l| !has_suffix(l, COMPRESS_SUFFIX)).cloned().collect();
    Plan { remove, compress }
}

/// The name a log is rotated to at `now`.
pub fn rotated_name(log: &Path, now: &jiff::Zoned) -> PathBuf {
    with_suffix(log, &format!(".{}", now.strftime(TIMESTAMP_FORMAT)))
}

/// Why a rotation round failed for one container.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("failed to {what} {path:?}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("failed to reopen container log {id:?}: {source}")]
    Reopen { id: String, source: crate::cri::CriError },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RotateError + 'a {
    move |source| RotateError::Io { what, path: path.to_path_buf(), source }
}

/// Compresses `log` into `<log>.gz` through `<log>.tmp`, then removes `log`.
fn compress(log: &Path) -> Result<(), RotateError> {
    let tmp = with_suffix(log, TMP_SUFFIX);
    let write = || -> std::io::Result<()> {
        let mut r = std::fs::File::open(log)?;
        let f = std::fs::File::create(&tmp)?;
        let mut w = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        std::io::copy(&mut r, &mut w)?;
        w.finish()?.flush()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(RotateError::Io { what: "compress", path: log.to_path_buf(), source: e });
    }
    let gz = with_suffix(log, COMPRESS_SUFFIX);
    std::fs::rename(&tmp, &gz).map_err(io("rename", &tmp))?;
    std::fs::remove_file(log).map_err(io("remove", log))
}

/// Every `<log>.*` next to `log`.
fn siblings(log: &Path) -> Result<Vec<PathBuf>, RotateError> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else { return Ok(Vec::new()) };
    let prefix = format!("{}.", name.to_string_lossy());
    let entries = std::fs::read_dir(dir).map_err(io("read", dir))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect())
}

/// The one runtime call a rotation makes.
pub trait ReopenLog: Sync {
    /// CRI ReopenContainerLog.
    fn reopen(&self, id: &str) -> impl Future<Output = Result<(), crate::cri::CriError>> + Send;
}

impl<R: Runtime> ReopenLog for R {
    fn reopen(&self, id: &str) -> impl Future<Output = Result<(), crate::cri::CriError>> + Send {
        self.reopen_container_log(id)
    }
}

/// One round for one running container: rotates its log if it has reached the size (true when
/// it did). A log file that has gone is reopened (upstream does the same).
pub async fn rotate(runtime: &impl ReopenLog, id: &str, log: &Path, policy: &RotatePolicy) -> Result<bool, RotateError> {
    let size = match std::fs::metadata(log) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            runtime.reopen(id).await.map_err(|source| RotateError::Reopen { id: id.into(), source })?;
            return Ok(false);
        }
        Err(e) => return Err(RotateError::Io { what: "stat", path: log.to_path_buf(), source: e }),
    };
    if size < policy.max_size {
        return Ok(false);
    }
    let p = plan(siblings(log)?, policy.max_files);
    for l in &p.remove {
        std::fs::remove_file(l).map_err(io("remove", l))?;
    }
    for l in p.compress {
        // Compressing a 10 MiB log takes a while: off the agent's task thread.
        let path = l.clone();
        tokio::task::spawn_blocking(move || compress(&path))
            .await
            .map_err(|e| RotateError::Io { what: "compress", path: l, source: std::io::Error::other(e) })??;
    }
    let rotated = rotated_name(log, &jiff::Zoned::now());
    std::fs::rename(log, &rotated).map_err(io("rename", log))?;
    if let Err(source) = runtime.reopen(id).await {
        // Back where it was, so the next round tries again.
        let _ = std::fs::rename(&rotated, log);
        return Err(RotateError::Reopen { id: id.into(), source });
    }
    Ok(true)
}

/// One round: every running container, `workers` at a time.
async fn round<R: Runtime>(runtime: &R, policy: &RotatePolicy) {
    let containers = match runtime.list_containers(Default::default()).await {
        Ok(cs) => cs,
        Err(e) => {
            tracing::warn!(error = %e, "failed to list containers for log rotation");
            return;
        }
    };
    let running = containers.into_iter().filter(|c| c.state == api::ContainerState::ContainerRunning as i32);
    futures::stream::iter(running)
        .for_each_concurrent(policy.workers, |c| async move {
            let log = match runtime.container_status(&c.id).await {
                Ok(s) if !s.log_path.is_empty() => PathBuf::from(s.log_path),
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(id = %c.id, error = %e, "failed to get container status for log rotation");
                    return;
                }
            };
            match rotate(runtime, &c.id, &log, policy).await {
                Ok(true) => tracing::debug!(id = %c.id, log = %log.display(), "rotated container log"),
                Ok(false) => {}
                Err(e) => tracing::warn!(id = %c.id, error = %e, "failed to rotate log for container"),
            }
        })
        .await;
}

/// Rotates container logs every `policy.interval` until cancelled.
pub async fn run_log_manager<R: Runtime>(runtime: Arc<R>, policy: RotatePolicy, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(policy.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => round(runtime.as_ref(), &policy).await,
        }
    }
}

#[cfg(test)]
mod tests;
