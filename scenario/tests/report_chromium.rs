//! The HTML report as a browser sees it: Debian's Chromium, headless, loads the rendered sample
//! from disk and dumps the DOM it built (and, in the second test, takes a screenshot).
//!
//! Without `/usr/bin/chromium` (the Debian package `chromium`, installed by `ci/bootstrap`) these
//! tests fail when `CI` is set and pass with a note otherwise.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(60);
const DOCS_HEIGHT: u32 = 2200;

/// Chromium's path, or None when the test should pass without it (not in CI).
fn chromium() -> Option<&'static Path> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("chromium is not installed: run ci/bootstrap");
    }
    eprintln!("chromium is not installed: run ci/bootstrap (skipping: CI is not set)");
    None
}

/// Writes the rendered sample report into `dir` and returns its path.
fn write_sample(dir: &Path) -> PathBuf {
    let html = scenario::report::render(&scenario::report::sample());
    let path = dir.join("report.html");
    std::fs::write(&path, html).expect("write the report");
    path
}

struct Output {
    stdout: String,
    stderr: String,
}

/// Runs Chromium headless with a fresh profile and the extra arguments; kills it (by its own
/// PID) if it is still running after a minute.
fn run_chromium(chromium: &Path, dir: &Path, extra: &[String]) -> Output {
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).expect("profile dir");
    let out_path = dir.join("chromium.stdout");
    let err_path = dir.join("chromium.stderr");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!("chromium did not finish within {TIMEOUT:?}; killed it. stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = Output {
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    };
    assert!(
        status.success(),
        "chromium exited with {status}; stderr:\n{}",
        out.stderr
    );
    out
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn chromium_builds_the_lanes_faults_steps_and_failure() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let report = write_sample(dir.path());
    let out = run_chromium(
        chromium,
        dir.path(),
        &["--dump-dom".into(), file_url(&report)],
    );
    let dom = out.stdout;
    assert!(
        dom.contains("<svg"),
        "no SVG in the DOM; stderr:\n{}",
        out.stderr
    );
    for needle in [
        // node lanes
        r#"class="lane node" data-lane="node-a""#,
        r#"class="lane node" data-lane="node-b""#,
        // pod lanes
        r#"class="lane pod" data-lane="default/web-0""#,
        r#"class="lane pod" data-lane="default/web-1""#,
        r#"class="track" data-track="container web""#,
        // the fault band and its text
        r#"class="fault""#,
        "partition node-a from the API server",
        // step markers, the failed one among them
        r#"class="step-marker""#,
        r#"class="step-marker" data-outcome="failed""#,
        // the failure with its diff
        r#"class="failure""#,
        r#"<pre class="diff">"#,
        r#"<span class="del">-  status: "True"</span>"#,
        r#"<span class="add">+  status: "False"</span>"#,
        r#"id="scenario-1""#,
    ] {
        assert!(dom.contains(needle), "the DOM has no {needle}");
    }
    // Every step of the sample has a marker.
    let markers = dom.matches(r#"class="step-marker""#).count();
    assert_eq!(
        markers,
        6 + 2,
        "step markers of both scenarios with timelines"
    );
}

#[test]
fn chromium_screenshots_the_report() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let report = write_sample(dir.path());
    let png = dir.path().join("report.png");
    screenshot(chromium, dir.path(), &report, &png, 1800);
    let bytes = std::fs::read(&png).expect("chromium wrote no screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 50_000,
        "a {}-byte screenshot is too small to show the report",
        bytes.len()
    );
    // IHDR: width and height as asked
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    assert_eq!((width, height), (1400, 1800));
}

fn screenshot(chromium: &Path, dir: &Path, report: &Path, png: &Path, height: u32) {
    run_chromium(
        chromium,
        dir,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size=1400,{height}"),
            file_url(report),
        ],
    );
}

/// Renders `docs/report.png` for the documentation:
/// `cargo test -p scenario --test report_chromium -- --ignored docs_picture`. The picture in
/// the docs is a real run's report, given with `NODEKIT_REPORT_HTML=<report.html>` (see the
/// README); without it the sample is rendered (and `NODEKIT_SAMPLE_HTML=<path>` keeps its HTML).
#[test]
#[ignore = "writes docs/report.png"]
fn docs_picture() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let report = match std::env::var_os("NODEKIT_REPORT_HTML") {
        Some(real) => std::path::PathBuf::from(real),
        None => write_sample(dir.path()),
    };
    if let Some(keep) = std::env::var_os("NODEKIT_SAMPLE_HTML") {
        std::fs::copy(&report, keep).expect("keep the sample's HTML");
    }
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report.png");
    // tall enough to show the summary, the timeline and the failed step's diff
    screenshot(chromium, dir.path(), &report, &png, DOCS_HEIGHT);
    assert!(png.exists());
}
