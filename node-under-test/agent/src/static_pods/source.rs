//! The directory source: reads `staticPodPath` at start, every `fileCheckFrequency` and whenever
//! inotify reports a change in the directory, and publishes the desired [`StaticSet`].
//! A bad manifest is logged with its file and error and counted; the others are unaffected.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::StaticSet;
use super::manifest::{self, ManifestError};
use crate::metrics::Metrics;

/// Reads manifests of one directory; remembers when each UID was first seen.
pub struct DirSource {
    dir: PathBuf,
    node: String,
    seen: HashMap<String, String>,
    metrics: Metrics,
    /// Errors already logged (file → message), so an unchanged bad file is logged once.
    logged: HashMap<PathBuf, String>,
}

impl DirSource {
    pub fn new(dir: PathBuf, node: String, metrics: Metrics) -> DirSource {
        DirSource { dir, node, seen: HashMap::new(), metrics, logged: HashMap::new() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory once.
    pub fn read(&mut self) -> StaticSet {
        let (pods, errors) = read_dir(&self.dir, &self.node, &mut self.seen);
        let mut now_bad = HashMap::new();
        for e in errors {
            let path = match &e {
                ManifestError::Read { path, .. } | ManifestError::Parse { path, .. } | ManifestError::Invalid { path, .. } => path.clone(),
            };
            let msg = e.to_string();
            if self.logged.get(&path) != Some(&msg) {
                tracing::error!(file = %path.display(), error = %msg, "bad static pod manifest");
                self.metrics.static_pod_manifest_errors.inc();
            }
            now_bad.insert(path, msg);
        }
        self.logged = now_bad;
        self.seen.retain(|uid, _| pods.contains_key(uid));
        pods
    }
}

/// Reads every manifest in `dir` (sorted by file name); a pod whose `namespace/name` is already
/// taken by an earlier file is an error.
pub fn read_dir(dir: &Path, node: &str, seen: &mut HashMap<String, String>) -> (StaticSet, Vec<ManifestError>) {
    let mut out = StaticSet::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            if source.kind() != std::io::ErrorKind::NotFound {
                errors.push(ManifestError::Read { path: dir.to_path_buf(), source });
            }
            return (out, errors);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file() || t.is_symlink()).unwrap_or(false))
        .filter(|e| manifest::is_manifest_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => {
                errors.push(ManifestError::Read { path, source });
                continue;
            }
        };
        let docs = match manifest::parse_documents(&path, &text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for raw in docs {
            let uid_guess = manifest::config_hash(&raw, node, &path);
            let stamp = seen.entry(uid_guess).or_insert_with(|| jiff::Timestamp::now().to_string()).clone();
            match manifest::prepare(raw, node, &path, &stamp) {
                Ok(pod) => {
                    let full = super::full_name(&pod);
                    if let Some(first) = names.get(&full) {
                        errors.push(ManifestError::Invalid {
                            path: path.clone(),
                            message: format!("pod {full} is already defined in {}", first.display()),
                        });
                        continue;
                    }
                    names.insert(full, path.clone());
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    out.insert(uid, pod);
                }
                Err(e) => errors.push(e),
            }
        }
    }
    (out, errors)
}

struct Watcher(Inotify);

impl AsRawFd for Watcher {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

fn watch_dir(dir: &Path) -> Option<AsyncFd<Watcher>> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
    let flags = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF;
    ino.add_watch(dir, flags).ok()?;
    // The deprecation is about types whose raw fd may change or close under the AsyncFd; the
    // Watcher owns its inotify fd for its whole life, which is exactly what registration needs.
    #[allow(deprecated)]
    let fd = AsyncFd::new(Watcher(ino));
    fd.ok()
}

/// Waits for inotify activity (pending forever without a watch). Returns false when the watch
/// broke (the directory went away) and must be set up again.
async fn changed(w: &mut Option<AsyncFd<Watcher>>) -> bool {
    let Some(fd) = w.as_ref() else { return std::future::pending().await };
    match fd.readable().await {
        Ok(mut guard) => {
            let mut broke = false;
            loop {
                match guard.get_inner().0.read_events() {
                    Ok(evs) => {
                        if evs.iter().any(|e| e.mask.intersects(nix::sys::inotify::AddWatchFlags::IN_IGNORED)) {
                            broke = true;
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(_) => {
                        broke = true;
                        break;
                    }
                }
            }
            !broke
        }
        Err(_) => false,
    }
}

/// Runs the source until `cancel` fires, publishing every change of the desired set on `tx`.
pub async fn run_source(mut src: DirSource, period: Duration, tx: watch::Sender<StaticSet>, cancel: CancellationToken) {
    let mut watcher = watch_dir(src.dir());
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                if watcher.is_none() {
                    watcher = watch_dir(src.dir());
                }
            }
            ok = changed(&mut watcher) => {
                if !ok {
                    watcher = watch_dir(src.dir());
                }
            }
        }
        let set = src.read();
        tx.send_if_modified(|cur| {
            if *cur == set {
                false
            } else {
                *cur = set;
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: NAME\nspec:\n  containers:\n  - name: c\n    image: workload\n";

    #[test]
    fn bad_manifest_does_not_affect_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), POD.replace("NAME", "a")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), "apiVersion: v1\nkind: Pod\nspec: [").unwrap();
        std::fs::write(dir.path().join("c.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"c"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), POD.replace("NAME", "h")).unwrap();
        let metrics = Metrics::default();
        let mut src = DirSource::new(dir.path().to_path_buf(), "n1".into(), metrics.clone());
        let set = src.read();
        let names: Vec<_> = set.values().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"a-n1".to_string()) && names.contains(&"c-n1".to_string()));
        assert_eq!(metrics.static_pod_manifest_errors.get(), 1);
        // An unchanged bad file is counted once; the seen time of a pod stays the same.
        let again = src.read();
        assert_eq!(metrics.static_pod_manifest_errors.get(), 1);
        assert_eq!(set, again);
    }

    #[test]
    fn duplicate_names_keep_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), POD.replace("NAME", "x")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), POD.replace("NAME", "x").replace("workload", "other")).unwrap();
        let (set, errors) = read_dir(dir.path(), "n", &mut HashMap::new());
        assert_eq!(set.len(), 1);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("b.yaml"));
    }

    #[tokio::test]
    async fn publishes_changes_on_notification() {
        let dir = tempfile::tempdir().unwrap();
        let src = DirSource::new(dir.path().to_path_buf(), "n".into(), Metrics::default());
        let (tx, mut rx) = watch::channel(StaticSet::new());
        let cancel = CancellationToken::new();
        // A long period: only the notification can deliver the change in time.
        let task = tokio::spawn(run_source(src, Duration::from_secs(3600), tx, cancel.clone()));
        std::fs::write(dir.path().join("a.yaml"), POD.replace("NAME", "a")).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if rx.borrow_and_update().len() == 1 {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(got.is_ok(), "no update after writing a manifest");
        cancel.cancel();
        task.await.unwrap();
    }
}
