use std::io::Read;
use std::sync::Mutex;

use super::*;
use crate::cri::CriError;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn policy_has_upstream_defaults_and_checks() {
    let kc = KubeletConfiguration::default();
    let pol = RotatePolicy::from_config(&kc).unwrap().unwrap();
    assert_eq!(pol, RotatePolicy { max_size: 10 * 1024 * 1024, max_files: 5, workers: 1, interval: Duration::from_secs(10) });
    let with = |f: &dyn Fn(&mut KubeletConfiguration)| {
        let mut kc = KubeletConfiguration::default();
        f(&mut kc);
        RotatePolicy::from_config(&kc)
    };
    assert_eq!(
        with(&|k| k.container_log_max_files = 1).unwrap_err(),
        "containerLogMaxFiles (--container-log-max-files) 1 must be greater than 1"
    );
    assert_eq!(with(&|k| k.container_log_max_workers = 0).unwrap_err(), "containerLogMaxWorkers must be greater than or equal to 1");
    assert_eq!(
        with(&|k| k.container_log_monitor_interval = crate::config::GoDuration(Duration::from_secs(2))).unwrap_err(),
        "containerLogMonitorInterval must be a positive time duration greater than or equal to 3s"
    );
    assert!(with(&|k| k.container_log_max_size = "ten".into()).unwrap_err().starts_with("failed to parse container log max size \"ten\""));
    assert_eq!(with(&|k| k.container_log_max_size = "-1".into()).unwrap(), None);
    assert_eq!(with(&|k| k.container_log_max_size = "2Ki".into()).unwrap().unwrap().max_size, 2048);
}

#[test]
fn the_plan_keeps_max_files_minus_two_and_compresses_them() {
    // The first rotation: nothing before it.
    assert_eq!(plan(vec![], 3), Plan::default());
    // The second: the first rotated file is compressed.
    let one = vec![p("0.log.20261206-010101")];
    assert_eq!(plan(one, 3), Plan { remove: vec![], compress: vec![p("0.log.20261206-010101")] });
    // The third: the oldest goes, the newer is compressed.
    let two = vec![p("0.log.20261206-010104"), p("0.log.20261206-010101.gz")];
    assert_eq!(plan(two, 3), Plan { remove: vec![p("0.log.20261206-010101.gz")], compress: vec![p("0.log.20261206-010104")] });
    // Five files allowed: three rotated ones stay.
    let three = vec![p("0.log.3"), p("0.log.1.gz"), p("0.log.2.gz")];
    assert_eq!(plan(three, 5), Plan { remove: vec![], compress: vec![p("0.log.3")] });
}

#[test]
fn the_plan_removes_leftovers_of_an_interrupted_compression() {
    // A temporary file, and a plain file whose compressed twin exists.
    let files = vec![p("0.log.1"), p("0.log.1.gz"), p("0.log.2.tmp"), p("0.log.2")];
    let got = plan(files, 5);
    assert_eq!(got.remove, vec![p("0.log.1"), p("0.log.2.tmp")]);
    assert_eq!(got.compress, vec![p("0.log.2")]);
}

#[test]
fn rotated_names_carry_go_timestamps() {
    let now: jiff::Zoned = "2026-12-06T01:02:03+00:00[UTC]".parse().unwrap();
    assert_eq!(rotated_name(Path::new("/x/c/0.log"), &now), p("/x/c/0.log.20261206-010203"));
}

/// Records reopen calls; creates the new file as a runtime does, or fails.
struct Reopener {
    log: PathBuf,
    fail: bool,
    calls: Mutex<Vec<String>>,
}

impl ReopenLog for Reopener {
    async fn reopen(&self, id: &str) -> Result<(), CriError> {
        self.calls.lock().unwrap().push(id.to_string());
        if self.fail {
            return Err(CriError::Rpc { op: "ReopenContainerLog", code: tonic::Code::Unknown, message: "container is not running".into() });
        }
        std::fs::File::create(&self.log).map(|_| ()).map_err(|e| CriError::Rpc { op: "ReopenContainerLog", code: tonic::Code::Internal, message: e.to_string() })
    }
}

fn policy(max_size: u64, max_files: usize) -> RotatePolicy {
    RotatePolicy { max_size, max_files, workers: 1, interval: Duration::from_secs(3) }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn rotation_renames_reopens_compresses_and_bounds_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("0.log");
    let rt = Reopener { log: log.clone(), fail: false, calls: Mutex::new(vec![]) };
    std::fs::write(&log, "small\n").unwrap();
    assert!(!rotate(&rt, "c1", &log, &policy(100, 3)).await.unwrap(), "a log under the size is left alone");
    // Three earlier rotations exist already (names as rotation makes them).
    std::fs::write(dir.path().join("0.log.20261206-000001.gz"), b"old").unwrap();
    std::fs::write(dir.path().join("0.log.20261206-000002"), "second\n").unwrap();
    std::fs::write(&log, "x".repeat(100)).unwrap();
    assert!(rotate(&rt, "c1", &log, &policy(100, 3)).await.unwrap());
    let got = names(dir.path());
    assert_eq!(got.len(), 3, "live + compressed + just rotated: {got:?}");
    assert!(got.contains(&"0.log".into()) && got.contains(&"0.log.20261206-000002.gz".into()), "{got:?}");
    let rotated = got.iter().find(|n| n.len() == "0.log.YYYYmmdd-HHMMSS".len()).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join(rotated)).unwrap(), "x".repeat(100));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(dir.path().join("0.log.20261206-000002.gz")).unwrap())
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, "second\n");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0, "the runtime reopened an empty live file");
    assert_eq!(*rt.calls.lock().unwrap(), vec!["c1".to_string()]);
}

#[tokio::test]
async fn a_failed_reopen_puts_the_log_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("0.log");
    std::fs::write(&log, "x".repeat(10)).unwrap();
    let rt = Reopener { log: log.clone(), fail: true, calls: Mutex::new(vec![]) };
    let err = rotate(&rt, "c1", &log, &policy(5, 2)).await.unwrap_err();
    assert!(err.to_string().starts_with("failed to reopen container log \"c1\""), "{err}");
    assert_eq!(names(dir.path()), vec!["0.log".to_string()]);
}

#[tokio::test]
async fn a_missing_log_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("0.log");
    let rt = Reopener { log: log.clone(), fail: false, calls: Mutex::new(vec![]) };
    assert!(!rotate(&rt, "c1", &log, &policy(5, 2)).await.unwrap());
    assert!(log.exists());
}
