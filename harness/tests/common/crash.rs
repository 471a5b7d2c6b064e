//! Crash safety: SIGKILL the outermost process of a busy world and check the host is unchanged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use harness::artifacts::Artifacts;
use harness::process::ProcessSpec;
use harness::sealed::{ChildSpec, spawn_child};
use harness::wait::wait_blocking;
use harness::world::{Plan, World};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TOKEN_ENV: &str = "NODEKIT_CRASH_TOKEN";

/// Child side: a world with a process in every host, rules and sysctls, then wait forever.
pub async fn child(dir: PathBuf) -> Result<()> {
    let world = World::build_with(&Plan::two_nodes(), Artifacts::at(&dir)).await?;
    let mut procs = Vec::new();
    let mut inodes = vec![world.root().netns().inode()?];
    for h in std::iter::once(world.root()).chain(world.hosts()) {
        procs.push(h.spawn(ProcessSpec::new("/bin/sleep", &format!("sleep-{}", h.name())).arg("3600"))?);
        inodes.push(h.netns().inode()?);
    }
    let pod = world.add_pod_host("node-a", "pod1", "10.244.1.10".parse()?).await?;
    procs.push(pod.spawn(ProcessSpec::new("/bin/sleep", "sleep-pod1").arg("3600"))?);
    inodes.push(pod.netns().inode()?);
    world.host("node-a")?.nft("table ip crash {\n chain c {\n  type filter hook forward priority 0; policy accept;\n }\n}\n").await?;
    world.host("node-b")?.sysctl("net.ipv4.ip_forward", "0")?;
    let text: Vec<String> = inodes.iter().map(|i| i.to_string()).collect();
    std::fs::write(dir.join("ready.tmp"), text.join("\n"))?;
    std::fs::rename(dir.join("ready.tmp"), dir.join("ready"))?;
    std::future::pending::<()>().await;
    drop(procs);
    Ok(())
}

fn run(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
    ensure!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host state a world must never change.
fn snapshot() -> Result<Vec<(&'static str, String)>> {
    let iptables: String = run("iptables-save", &[])?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| if l.starts_with(':') { l.split(" [").next().unwrap_or(l) } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let netns = std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    Ok(vec![
        ("links", run("ip", &["-j", "link", "show"])?),
        ("addresses", run("ip", &["-j", "addr", "show"])?),
        ("routes", run("ip", &["-j", "route", "show", "table", "all"])?),
        ("rules", run("ip", &["-j", "rule", "show"])?),
        ("nft", run("nft", &["list", "ruleset"])?),
        ("iptables", iptables),
        ("ip_forward", std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?),
        ("bridge-nf-call-iptables", std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")?),
        ("mountinfo", std::fs::read_to_string("/proc/self/mountinfo")?),
        ("/run/netns", netns),
    ])
}

fn proc_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Host pids of processes whose environment carries the token (every process of the world).
fn marked(token: &str) -> Vec<u32> {
    let needle = format!("{TOKEN_ENV}={token}\0").into_bytes();
    proc_pids()
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ")).is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// Which of `inodes` are still referenced by a process (namespace link or open fd).
fn referenced(inodes: &BTreeSet<u64>) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    let mut look = |link: &Path| {
        if let Ok(t) = std::fs::read_link(link)
            && let Some(n) = t.to_str().and_then(|s| s.strip_prefix("net:[")).and_then(|s| s.strip_suffix(']'))
            && let Ok(n) = n.parse::<u64>()
            && inodes.contains(&n)
        {
            seen.insert(n);
        }
    };
    for p in proc_pids() {
        let base = PathBuf::from(format!("/proc/{p}"));
        if let Ok(tasks) = std::fs::read_dir(base.join("task")) {
            for t in tasks.filter_map(|e| e.ok()) {
                look(&t.path().join("ns/net"));
            }
        }
        if let Ok(fds) = std::fs::read_dir(base.join("fd")) {
            for f in fds.filter_map(|e| e.ok()) {
                look(&f.path());
            }
        }
    }
    seen
}

fn kill_all(pids: &[u32]) {
    for p in pids {
        let _ = kill(Pid::from_raw(*p as i32), Signal::SIGKILL);
    }
}

/// A runner that starts the sealed crash child with `spawn_sealed` and waits for it.
pub fn runner(dir: PathBuf) -> std::process::ExitCode {
    let token = std::env::var(TOKEN_ENV).unwrap_or_default();
    match spawn_child(&ChildSpec::new("crash").arg(dir).env(TOKEN_ENV, token)).map(|mut c| c.wait()) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runner: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Parent side: SIGKILL the outer sealed process (`via_runner == false`) or the runner that
/// spawned it (`true`), then check that nothing of the world is left.
pub fn parent(via_runner: bool) -> Result<()> {
    ensure!(nix::unistd::geteuid().is_root(), "the crash test inspects /proc/*/environ and needs root");
    let dir = tempfile::Builder::new().prefix("nodekit-crash-").tempdir()?;
    let token = format!("{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond());
    let before = snapshot()?;
    let role = if via_runner { "runner" } else { "crash" };
    let mut child = spawn_child(&ChildSpec::new(role).arg(dir.path()).env(TOKEN_ENV, &token))?;
    let ready = dir.path().join("ready");
    let waited = wait_blocking("the crash child to build its world", Duration::from_secs(30), || {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(Err(anyhow::anyhow!("the crash child exited early: {st}")));
        }
        std::fs::read_to_string(&ready).ok().map(Ok)
    });
    let text = match waited.map_err(anyhow::Error::from).and_then(|r| r) {
        Ok(t) => t,
        Err(e) => {
            kill_all(&marked(&token));
            let _ = child.wait();
            bail!("{e}");
        }
    };
    let inodes: BTreeSet<u64> = text.lines().filter_map(|l| l.parse().ok()).collect();
    let procs = marked(&token);
    // [runner +] outer + init + case + one sleep per host (4), world root and pod.
    let expected = if via_runner { 10 } else { 9 };
    let sanity = (|| {
        ensure!(procs.len() >= expected, "expected at least {expected} world processes, found {procs:?}");
        ensure!(inodes.len() == 6, "expected 6 namespaces, got {inodes:?}");
        ensure!(referenced(&inodes) == inodes, "not all world namespaces are visible before the kill");
        Ok(())
    })();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)?;
    let _ = child.wait();
    sanity.inspect_err(|_| kill_all(&marked(&token)))?;

    let gone = wait_blocking("every world process to die", Duration::from_secs(10), || {
        let left = marked(&token);
        if left.is_empty() { Ok(()) } else { Err(format!("still running: {left:?}")) }
    });
    if let Err(e) = gone {
        kill_all(&marked(&token));
        bail!("{e}");
    }
    wait_blocking("the world's network namespaces to be released", Duration::from_secs(10), || {
        let r = referenced(&inodes);
        if r.is_empty() { Ok(()) } else { Err(format!("still referenced: {r:?}")) }
    })?;
    let after = snapshot()?;
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        ensure!(a == b, "host {name} changed:\nbefore:\n{b}\nafter:\n{a}");
    }
    Ok(())
}
