//! CRI container logs: `RFC3339Nano stdout|stderr P|F message` lines, long lines split into
//! partial (P) chunks as containerd does (and so is an unterminated last line), reopen after
//! rotation.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest line written as one entry; longer lines are split into P entries.
pub const MAX_LINE: usize = 16 * 1024;

/// An open CRI log file, and a tap on the output as it is read (what `attach` streams).
pub struct LogSink {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    tap: tokio::sync::broadcast::Sender<Output>,
}

/// A chunk of a container's output as read from its pipe.
#[derive(Clone, Debug)]
pub struct Output {
    /// "stdout" or "stderr".
    pub stream: &'static str,
    pub data: bytes::Bytes,
}

/// Chunks buffered per attached client; a client that falls further behind misses output
/// (it is told so in the runtime's log).
const TAP_BUFFER: usize = 1024;

fn open_append(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io(format!("open log {}", path.display())))
}

impl LogSink {
    /// Opens (creates) the log file for appending.
    pub fn open(path: &Path) -> Result<Arc<Self>> {
        let f = open_append(path)?;
        let (tap, _) = tokio::sync::broadcast::channel(TAP_BUFFER);
        Ok(Arc::new(LogSink { path: path.to_path_buf(), file: Mutex::new(Some(f)), tap }))
    }

    /// The output read from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Output> {
        self.tap.subscribe()
    }

    /// Closes the file and opens the path again (after the kubelet renamed it).
    pub fn reopen(&self) -> Result<()> {
        let f = open_append(&self.path)?;
        if let Ok(mut g) = self.file.lock() {
            *g = Some(f);
        }
        Ok(())
    }

    /// Writes one entry.
    pub fn write_entry(&self, stream: &str, partial: bool, msg: &[u8]) {
        let mut line = Vec::with_capacity(msg.len() + 48);
        line.extend_from_slice(format_ts(jiff::Timestamp::now()).as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.as_bytes());
        line.extend_from_slice(if partial { b" P " } else { b" F " });
        line.extend_from_slice(msg);
        line.push(b'\n');
        if let Ok(mut g) = self.file.lock()
            && let Some(f) = g.as_mut() {
                let _ = f.write_all(&line);
            }
    }
}

/// RFC 3339 with nanoseconds (trailing zeros trimmed, like Go's RFC3339Nano).
pub fn format_ts(t: jiff::Timestamp) -> String {
    let secs = t.as_second();
    let nanos = t.subsec_nanosecond();
    let base = jiff::Timestamp::from_second(secs).map(|s| s.strftime("%Y-%m-%dT%H:%M:%S").to_string()).unwrap_or_default();
    if nanos == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

/// Splits a byte buffer into complete entries; returns (entries (partial?, bytes), rest).
pub fn split_entries(buf: &mut Vec<u8>, eof: bool) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            if nl > MAX_LINE {
                let chunk: Vec<u8> = buf.drain(..MAX_LINE).collect();
                out.push((true, chunk));
                continue;
            }
            let mut line: Vec<u8> = buf.drain(..=nl).collect();
            line.pop();
            out.push((false, line));
        } else if buf.len() > MAX_LINE {
            let chunk: Vec<u8> = buf.drain(..MAX_LINE).collect();
            out.push((true, chunk));
        } else {
            // A line the stream ended without terminating stays partial (containerd writes P).
            if eof && !buf.is_empty() {
                out.push((true, std::mem::take(buf)));
            }
            return out;
        }
    }
}

/// Copies a stream into the sink until EOF.
pub async fn copy_stream<R: AsyncRead + Unpin>(mut r: R, stream: &'static str, sink: Option<Arc<LogSink>>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    loop {
        let n = r.read(&mut chunk).await.unwrap_or(0);
        let eof = n == 0;
        if let Some(s) = sink.as_ref().filter(|s| n > 0 && s.tap.receiver_count() > 0) {
            let _ = s.tap.send(Output { stream, data: bytes::Bytes::copy_from_slice(&chunk[..n]) });
        }
        buf.extend_from_slice(&chunk[..n]);
        for (partial, line) in split_entries(&mut buf, eof) {
            if let Some(s) = &sink {
                s.write_entry(stream, partial, &line);
            }
        }
        if eof {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let mut b = b"one\ntwo\nthr".to_vec();
        let e = split_entries(&mut b, false);
        assert_eq!(e, vec![(false, b"one".to_vec()), (false, b"two".to_vec())]);
        assert_eq!(b, b"thr");
        let e = split_entries(&mut b, true);
        assert_eq!(e, vec![(true, b"thr".to_vec())]);
        let mut long = vec![b'x'; MAX_LINE * 2 + 5];
        long.push(b'\n');
        let e = split_entries(&mut long, false);
        assert_eq!(e.iter().map(|(p, l)| (*p, l.len())).collect::<Vec<_>>(), vec![(true, MAX_LINE), (true, MAX_LINE), (false, 5)]);
    }

    #[test]
    fn timestamps() {
        let t = jiff::Timestamp::from_nanosecond(1_700_000_000_120_000_000).unwrap();
        assert_eq!(format_ts(t), "2023-11-14T22:13:20.12Z");
        let t = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        assert_eq!(format_ts(t), "2023-11-14T22:13:20Z");
    }
}
