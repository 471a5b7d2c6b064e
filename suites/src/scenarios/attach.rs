//! `nodekit run --attach PATH`: the steps run against the world a `nodekit up` serves. Each
//! prepared scenario goes as one JSON line through the control socket next to that
//! kubeconfig; the live world runs it (faults included, all healed at its end, cleanup run)
//! and answers with the scenario's record as one JSON line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use scenario::record::ScenarioRecord;

use super::Prepared;

/// The control socket for `path`: a kubeconfig written by `nodekit up`, or a directory with
/// exactly one of them.
pub fn find_socket(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_dir() {
        let sockets: Vec<PathBuf> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sock") && is_socket(p))
            .collect();
        return match sockets.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("no nodekit up control socket (*.sock next to its kubeconfig) in this directory; is nodekit up running?"),
            _ => bail!("several control sockets here ({}); give the kubeconfig of the one to use", sockets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")),
        };
    }
    let socket = crate::live::control_socket(path);
    if !is_socket(&socket) {
        bail!("no control socket {}; is nodekit up running with this kubeconfig?", socket.display());
    }
    Ok(socket)
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Runs each scenario in turn through the control socket and returns their records.
pub fn run_attached(path: &Path, prepared: &[Prepared]) -> anyhow::Result<Vec<ScenarioRecord>> {
    let socket = find_socket(path)?;
    let mut records = Vec::new();
    for p in prepared {
        if let Some(why) = &p.skip {
            let mut r = super::error_record(p, format!("skipped: {why}"), 0);
            r.outcome = scenario::record::Outcome::Skipped;
            records.push(r);
            continue;
        }
        let mut conn = UnixStream::connect(&socket).with_context(|| format!("connecting to {}", socket.display()))?;
        writeln!(conn, "{}", serde_json::to_string(p)?)?;
        let mut line = String::new();
        BufReader::new(&conn).read_line(&mut line).context("reading the record")?;
        if line.trim().is_empty() {
            bail!("the live world ended before it answered (see nodekit up's terminal)");
        }
        let record: ScenarioRecord = serde_json::from_str(line.trim_end()).context("the record did not parse")?;
        eprintln!("nodekit run: {} {} ({:.1} s)", super::outcome_word(record.outcome), record.name, record.duration_ms as f64 / 1000.0);
        records.push(record);
    }
    Ok(records)
}
