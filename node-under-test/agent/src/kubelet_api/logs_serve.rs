//! `GET /containerLogs/{namespace}/{pod}/{container}`: the container's CRI log file, read once
//! or followed (a chunked stream that ends when the container has exited and its file is read,
//! when the agent stops, or when the client goes away).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use futures::StreamExt;
use hyper::body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::containers::{self, Refusal};
use super::logs::{LogFormatter, LogOptions, complete_lines, parse_log_query, render_log, tail_start};
use super::respond::{Body, status, text, with_type};
use super::router::ContainerPath;
use crate::cri::{Runtime, api};
use crate::pods::registry::PodRegistry;

/// How often a followed log is checked for new lines (upstream's force check is 1 s).
const FOLLOW_POLL: Duration = Duration::from_millis(200);
const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

fn refused(r: Refusal) -> Response<Body> {
    text(status(r.status), r.message)
}

/// Serves one log request.
pub async fn serve<R: Runtime>(
    runtime: Arc<R>,
    pods: &PodRegistry,
    path: &ContainerPath,
    query: &str,
    cancel: CancellationToken,
) -> Response<Body> {
    let Some(pod) = pods.by_name(&path.namespace, &path.pod) else {
        return text(StatusCode::NOT_FOUND, format!("pod {:?} does not exist", path.pod));
    };
    if !containers::has_container(&pod, &path.container) {
        return text(StatusCode::NOT_FOUND, format!("container {:?} not found in pod {:?}", path.container, path.pod));
    }
    let opts = match parse_log_query(query, jiff::Timestamp::now()) {
        Ok(o) => o,
        Err(e) => return text(status(e.status()), e.to_string()),
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let picked = match containers::instances(runtime.as_ref(), &uid, &path.container).await {
        Ok(cs) => containers::pick_for_logs(&pod, &path.container, &cs, opts.previous),
        Err(r) => Err(r),
    };
    let id = match picked {
        Ok(id) => id,
        Err(r) => return refused(r),
    };
    let log_path = match runtime.container_status(&id).await {
        Ok(s) if !s.log_path.is_empty() => PathBuf::from(s.log_path),
        Ok(_) => return text(StatusCode::BAD_REQUEST, format!("container {:?} in pod {:?} has no log file", path.container, path.pod)),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut file = match tokio::fs::File::open(&log_path).await {
        Ok(f) => f,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("failed to open log file {:?}: {e}", log_path.display().to_string())),
    };
    let mut data = Vec::new();
    if let Err(e) = file.read_to_end(&mut data).await {
        return text(StatusCode::BAD_REQUEST, format!("failed to read log file {:?}: {e}", log_path.display().to_string()));
    }
    if !opts.follow {
        return with_type(StatusCode::OK, CONTENT_TYPE, super::respond::full(render_log(&data, &opts)));
    }
    let (first, follow) = start_follow(data, &opts, Follow::new(file, log_path, runtime, id, cancel).await);
    let head = futures::stream::iter((!first.is_empty()).then(|| Ok(Frame::data(Bytes::from(first)))));
    let rest = futures::stream::unfold(follow, |mut f| async move {
        let chunk = f.next_chunk().await?;
        Some((chunk.map(|c| Frame::data(Bytes::from(c))), f))
    });
    with_type(StatusCode::OK, CONTENT_TYPE, BodyExt::boxed_unsync(StreamBody::new(head.chain(rest))))
}

/// The followed part of a log: the file (and its inode, to notice a rotation), the
/// unterminated rest, the formatter.
struct Follow<R> {
    file: tokio::fs::File,
    path: PathBuf,
    inode: u64,
    carry: Vec<u8>,
    fmt: Option<LogFormatter>,
    runtime: Arc<R>,
    id: String,
    cancel: CancellationToken,
    ended: bool,
}

impl<R: Runtime> Follow<R> {
    async fn new(file: tokio::fs::File, path: PathBuf, runtime: Arc<R>, id: String, cancel: CancellationToken) -> Self {
        let inode = file.metadata().await.map(|m| m.ino()).unwrap_or(0);
        Follow { file, path, inode, carry: Vec::new(), fmt: None, runtime, id, cancel, ended: false }
    }

    /// After the file was read to its end: when the path now names another file (the log was
    /// rotated and the runtime reopened it), what was written to the old one is read and the
    /// new one is followed from its start, as upstream's follow does. True when it switched.
    async fn switch_if_rotated(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        if crate::faults::active(crate::faults::Fault::FollowIgnoresRotation) {
            return Ok(false);
        }
        let Ok(now) = tokio::fs::metadata(&self.path).await else { return Ok(false) };
        if now.ino() == self.inode {
            return Ok(false);
        }
        let Ok(next) = tokio::fs::File::open(&self.path).await else { return Ok(false) };
        while self.read_more().await? > 0 {}
        self.drain(out);
        self.inode = next.metadata().await.map(|m| m.ino()).unwrap_or(now.ino());
        self.file = next;
        Ok(true)
    }

    /// Formats the complete lines in `carry`, keeping the unterminated rest.
    fn drain(&mut self, out: &mut Vec<u8>) {
        let (lines, end) = complete_lines(&self.carry);
        if let Some(fmt) = self.fmt.as_mut() {
            for l in lines {
                fmt.push(l, out);
            }
        }
        self.carry.drain(..end);
    }

    async fn read_more(&mut self) -> std::io::Result<usize> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self.file.read(&mut buf).await?;
        self.carry.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    async fn running(&self) -> bool {
        self.runtime.container_status(&self.id).await.is_ok_and(|s| s.state == api::ContainerState::ContainerRunning as i32)
    }

    /// The next chunk for the client; `None` ends the response.
    async fn next_chunk(&mut self) -> Option<std::io::Result<Vec<u8>>> {
        let mut out = Vec::new();
        while !self.ended {
            if self.fmt.as_ref().is_none_or(LogFormatter::done) {
                return None;
            }
            match self.read_more().await {
                Ok(0) => match self.switch_if_rotated(&mut out).await {
                    Ok(true) if !out.is_empty() => return Some(Ok(out)),
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => return Some(Err(e)),
                },
                Ok(_) => {
                    self.drain(&mut out);
                    if !out.is_empty() {
                        return Some(Ok(out));
                    }
                    continue;
                }
                Err(e) => return Some(Err(e)),
            }
            if !self.running().await {
                // Lines written just before the exit, then the end.
                while let Ok(n) = self.read_more().await
                    && n > 0
                {}
                self.drain(&mut out);
                if let Some(fmt) = self.fmt.as_mut() {
                    fmt.finish(&mut out);
                }
                self.ended = true;
                break;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
        (!out.is_empty()).then_some(Ok(out))
    }
}

/// What the file already has (its last `tailLines`), and the follower positioned after it.
fn start_follow<R: Runtime>(data: Vec<u8>, opts: &LogOptions, mut follow: Follow<R>) -> (Vec<u8>, Follow<R>) {
    let (lines, end) = complete_lines(&data);
    let start = opts.tail_lines.map(|n| tail_start(&lines, n)).unwrap_or(0);
    let mut fmt = LogFormatter::new(opts);
    let mut out = Vec::new();
    for l in &lines[start..] {
        fmt.push(l, &mut out);
    }
    follow.carry = data[end..].to_vec();
    follow.fmt = Some(fmt);
    (out, follow)
}
