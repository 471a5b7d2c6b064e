//! World build benchmark: median time to build cp + two nodes + client, next to one bare
//! `unshare(CLONE_NEWNET)`, each run in its own sealed child of the current binary.
//!
//! The binary calling [`world`] must call [`hook`] first thing in `main` (before any thread
//! or runtime): in a bench child it runs the measurement and exits.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sealed::{ChildSpec, child_role, run_child};
use crate::world::{Plan, World};

/// Role of a bench child (value of [`crate::sealed::CHILD_ENV`]).
pub const ROLE: &str = "nodekit-bench-world";
const MARK: &str = "NODEKIT_BENCH_RESULT ";

/// Results of [`world`].
#[derive(Debug, Clone)]
pub struct WorldBench {
    /// Build time of each run.
    pub builds: Vec<Duration>,
    /// Time of one bare `unshare(CLONE_NEWNET)` (on a fresh thread) in each run.
    pub netns: Vec<Duration>,
    /// Median of `builds`.
    pub median_build: Duration,
    /// Median of `netns`.
    pub median_netns: Duration,
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

/// Runs `runs` sealed children (sequentially), each building the default world once.
pub fn world(runs: usize) -> Result<WorldBench> {
    let mut builds = Vec::new();
    let mut netns = Vec::new();
    for i in 0..runs {
        let out = run_child(&ChildSpec::new(ROLE).timeout(Duration::from_secs(30)))?;
        let line = out.stdout.lines().find_map(|l| l.strip_prefix(MARK)).ok_or_else(|| {
            Error::Child(format!("bench run {i} ({}) printed no result; stderr:\n{}", out.status, out.stderr))
        })?;
        let mut it = line.split_whitespace().map(|n| n.parse::<u64>());
        match (it.next(), it.next()) {
            (Some(Ok(b)), Some(Ok(n))) => {
                builds.push(Duration::from_nanos(b));
                netns.push(Duration::from_nanos(n));
            }
            _ => return Err(Error::Child(format!("bench run {i}: bad result line {line:?}"))),
        }
    }
    Ok(WorldBench { median_build: median(&builds), median_netns: median(&netns), builds, netns })
}

/// Entry hook: in a bench child (env `NODEKIT_CHILD=nodekit-bench-world`) enters a sealed
/// world, measures, prints the result and exits; otherwise returns at once.
pub fn hook() {
    if child_role().as_deref() != Some(ROLE) {
        return;
    }
    let code = match measure() {
        Ok((build, bare)) => {
            println!("{MARK}{} {}", build.as_nanos(), bare.as_nanos());
            0
        }
        Err(e) => {
            eprintln!("bench child: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn measure() -> Result<(Duration, Duration)> {
    crate::sealed::block_on_sealed(async {
        let t = Instant::now();
        let ns = tokio::task::spawn_blocking(crate::ns::NetNs::create)
            .await
            .map_err(|e| Error::Child(e.to_string()))??;
        let bare = t.elapsed();
        drop(ns);
        let plan = Plan::two_nodes().named("bench-world");
        let t = Instant::now();
        let world = World::build(&plan).await?;
        let build = t.elapsed();
        world.artifacts().finish(true);
        Ok((build, bare))
    })
}
