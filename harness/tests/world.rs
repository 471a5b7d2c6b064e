//! World tests: each trial re-executes this binary in a sealed child (role in `NODEKIT_CHILD`)
//! and checks the outcome from the parent (pcaps with tcpdump, host state after a crash).

mod child;
mod common;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use harness::sealed::{ChildSpec, child_role, run_child};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> ExitCode {
    harness::bench::hook();
    if let Some(role) = child_role() {
        if role == "exit-code" || role == "exit-signal" {
            return exit_child(&role);
        }
        if role == "runner" {
            return common::crash::runner(std::env::args_os().nth(1).unwrap_or_default().into());
        }
        return common::child_main(&role);
    }
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("reach_and_capture_as_root", || trial(reach(None))),
        Trial::test("reach_and_capture_as_nobody", || trial(reach(Some((65534, 65534))))),
        Trial::test("dnat_path_assertion", || trial(sealed_ok("dnat", None))),
        Trial::test("processes_in_hosts", || trial(sealed_ok("processes", None))),
        Trial::test("crash_of_outer_process_leaves_nothing", || trial(common::crash::parent(false))),
        Trial::test("crash_of_runner_leaves_nothing", || trial(common::crash::parent(true))),
        Trial::test("exit_status_propagates", || trial(exit_status())),
        Trial::test("world_refuses_to_build_unsealed", || trial(unsealed())),
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
        // The test binary may sit below a directory the user cannot enter (a clone in a
        // `mktemp -d` directory is 0700): it runs a copy from the shared scratch directory.
        let exe = dir.join("test-binary");
        std::fs::copy(std::env::current_exe()?, &exe)?;
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        spec.program = Some(exe);
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
        // Kernel timestamps of this run (records are in socket-queue order; timestamps of
        // packets queued by different CPUs may interleave by microseconds, as in tcpdump).
        let now = std::time::SystemTime::now();
        for p in &ours {
            let off = now.duration_since(p.ts).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
            ensure!(off < Duration::from_secs(120), "{name}: packet timestamp {:?} is far from now", p.ts);
        }
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

/// The case process ends with code 7 / by SIGUSR1; the outer process reports the same.
fn exit_child(role: &str) -> ExitCode {
    if let Err(e) = harness::sealed::enter() {
        eprintln!("enter: {e}");
        return ExitCode::from(3);
    }
    if !harness::sealed::is_sealed() || std::process::id() != 2 {
        eprintln!("the case process is not pid 2 of a sealed world");
        return ExitCode::from(4);
    }
    if role == "exit-signal" {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGUSR1);
    }
    ExitCode::from(7)
}

fn exit_status() -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    let code = run_child(&ChildSpec::new("exit-code"))?;
    ensure!(code.status.code() == Some(7), "exit code: {} {}", code.status, code.stderr);
    let sig = run_child(&ChildSpec::new("exit-signal"))?;
    ensure!(sig.status.signal() == Some(libc_sigusr1()), "signal: {} {}", sig.status, sig.stderr);
    Ok(())
}

fn libc_sigusr1() -> i32 {
    nix::sys::signal::Signal::SIGUSR1 as i32
}

fn unsealed() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let r = rt.block_on(harness::world::World::build_with(
        &harness::world::Plan::single_node(),
        harness::artifacts::Artifacts::at(std::env::temp_dir()),
    ));
    match r {
        Ok(_) => bail!("a world was built in the test runner's own namespaces"),
        Err(e) => ensure!(e.to_string().contains("sealed"), "{e}"),
    }
    // With a second thread alive, enter() must refuse (and not fork this test process).
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || rx.recv());
    let r = harness::sealed::enter();
    drop(tx);
    let _ = helper.join();
    match r {
        Err(harness::Error::NotSingleThreaded { threads }) if threads >= 2 => Ok(()),
        other => bail!("enter() in a multi-threaded process returned {other:?}"),
    }
}

fn bench() -> Result<()> {
    let b = harness::bench::world(3)?;
    ensure!(b.builds.len() == 3 && b.netns.len() == 3, "{b:?}");
    ensure!(b.median_build > Duration::ZERO && b.median_netns > Duration::ZERO, "{b:?}");
    println!("world build median {:?} (bare unshare(CLONE_NEWNET) {:?})", b.median_build, b.median_netns);
    Ok(())
}
