//! World tests: each trial re-executes this binary in a sealed child (role in `NODEKIT_CHILD`)
//! and checks the outcome from the parent (pcaps with tcpdump, host state after a crash).

mod common;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use harness::sealed::{ChildSpec, child_role, run_child};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> ExitCode {
    harness::bench::hook();
    if let Some(role) = child_role() {
        return common::child_main(&role);
    }
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("reach_and_capture_as_root", || trial(reach(None))),
        Trial::test("reach_and_capture_as_nobody", || trial(reach(Some((65534, 65534))))),
        Trial::test("dnat_path_assertion", || trial(sealed_ok("dnat", None))),
        Trial::test("processes_in_hosts", || trial(sealed_ok("processes", None))),
        Trial::test("crash_leaves_nothing", || trial(common::crash::parent())),
        Trial::test("bench_world", || trial(bench())),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}

fn trial(r: Result<()>) -> Result<(), Failed> {
    r.map_err(|e| Failed::from(format!("{e:#}")))
}

/// A scratch directory that an unprivileged child can write to.
fn scratch() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("nodekit-harness-test-").tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
    Ok(dir)
}

fn sealed_ok(role: &str, user: Option<(u32, u32)>) -> Result<()> {
    let dir = scratch()?;
    run_role(role, user, dir.path()).map(|_| ())
}

fn run_role(role: &str, user: Option<(u32, u32)>, dir: &std::path::Path) -> Result<String> {
    let mut spec = ChildSpec::new(role).arg(dir).timeout(Duration::from_secs(60));
    if let Some((u, g)) = user {
        spec = spec.user(u, g);
    }
    let out = run_child(&spec)?;
    if !out.status.success() {
        bail!("sealed child {role} failed ({}):\nstdout:\n{}\nstderr:\n{}", out.status, out.stdout, out.stderr);
    }
    Ok(out.stdout)
}

/// Reachability between hosts and from the world root, capture, and the pcap read back by
/// tcpdump with the same packets the harness decoded.
fn reach(user: Option<(u32, u32)>) -> Result<()> {
    let dir = scratch()?;
    run_role("reach", user, dir.path())?;
    for name in ["node-a-eth0.pcap", "world-lan0.pcap"] {
        let pcap = dir.path().join(name);
        let ours = harness::packets::read_pcap(&pcap)?;
        let theirs = tcpdump(&pcap)?;
        ensure!(!ours.is_empty(), "{name}: nothing captured");
        ensure!(
            ours.len() == theirs.len(),
            "{name}: harness decoded {} packets, tcpdump printed {}:\n{}",
            ours.len(),
            theirs.len(),
            theirs.join("\n")
        );
        let mut tcp = 0;
        for (p, line) in ours.iter().zip(&theirs) {
            if let (Some(s), Some(d), Some(flags)) = (p.src(), p.dst(), p.tcp_flags()) {
                tcp += 1;
                let tuple = format!("IP {}.{} > {}.{}: Flags [", s.ip(), s.port(), d.ip(), d.port());
                ensure!(line.contains(&tuple), "{name}: tcpdump line {line:?} is not {tuple}…");
                let theirs_flags = line.split("Flags [").nth(1).and_then(|r| r.split(']').next()).unwrap_or("");
                ensure!(
                    sorted(theirs_flags) == sorted(&flags.to_string()),
                    "{name}: flags differ: tcpdump {theirs_flags:?}, harness {flags}"
                );
            }
        }
        ensure!(tcp >= 6, "{name}: only {tcp} TCP packets (a handshake, data and close expected)");
    }
    Ok(())
}

fn sorted(s: &str) -> Vec<char> {
    let mut v: Vec<char> = s.chars().collect();
    v.sort();
    v
}

fn tcpdump(pcap: &std::path::Path) -> Result<Vec<String>> {
    let out = std::process::Command::new("tcpdump")
        .args(["-nn", "-tt", "-r"])
        .arg(pcap)
        .output()
        .context("running tcpdump -r")?;
    ensure!(out.status.success(), "tcpdump -r failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
}

fn bench() -> Result<()> {
    let b = harness::bench::world(3)?;
    ensure!(b.builds.len() == 3 && b.netns.len() == 3, "{b:?}");
    ensure!(b.median_build > Duration::ZERO && b.median_netns > Duration::ZERO, "{b:?}");
    eprintln!("world build median {:?} (bare unshare(CLONE_NEWNET) {:?})", b.median_build, b.median_netns);
    Ok(())
}
