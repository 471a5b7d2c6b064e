//! Sync benchmark, run inside a fresh network namespace per row: full sync and one-endpoint
//! change at N services × E endpoints in each mode, next to the floor measured in the same
//! namespace (the same number of entries loaded as one flat nft map with `nft -f`, and a
//! one-element `nft -f` into it). Then the first-packet latency to one ClusterIP with the same
//! rules loaded, next to its floor (`latency`, real TCP connects across namespaces).

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::config::Mode;
use crate::ctx::{Cidr, LocalDetect, RenderCtx};
use crate::engine::{Engine, RuleSizes};
use crate::error::Result;
use crate::exec::{self, Tools};
use crate::model::{Endpoint, Protocol, ServicePort, ServicePortName, State};
use crate::netns::in_fresh_netns;

#[path = "bench_latency.rs"]
pub mod latency;
pub use latency::{Latency, LatencyRow, latency_row};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOpts {
    pub services: Vec<usize>,
    pub endpoints_per_service: usize,
    pub modes: Vec<Mode>,
    /// One-endpoint-change syncs per row (the median is reported).
    pub change_rounds: usize,
    /// Measured TCP connects per latency row (and per floor); 0 skips the latency rows.
    pub latency_connections: usize,
    pub tools: Tools,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            services: vec![1_000, 10_000],
            endpoints_per_service: 2,
            modes: vec![Mode::Nftables, Mode::Iptables],
            change_rounds: 5,
            latency_connections: 200,
            tools: Tools::default(),
        }
    }
}

/// One measured configuration.
#[derive(Clone, Debug)]
pub struct Row {
    pub mode: Mode,
    pub services: usize,
    pub endpoints_per_service: usize,
    pub full_sync: Duration,
    pub full_script_bytes: usize,
    /// One endpoint replaced (endpoint count unchanged); median over the rounds.
    pub change_sync: Duration,
    /// One endpoint removed or added back (endpoint count changes); median over the rounds.
    pub scale_sync: Duration,
    pub change_plan: Duration,
    pub change_script_bytes: usize,
    pub sizes: RuleSizes,
    /// `nft -f` of services×endpoints elements into one flat map.
    pub floor_full: Duration,
    /// `nft -f` of one element into that map.
    pub floor_change: Duration,
}

/// All rows.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// First-packet latency rows, per mode in order of `services`.
    pub latency: Vec<LatencyRow>,
}

impl Report {
    /// For `mode`: (fewest services, most services, median ratio, p99 ratio) of the ClusterIP
    /// connect latency, most over fewest; `None` without two distinct sizes.
    pub fn latency_ratio(&self, mode: Mode) -> Option<(usize, usize, f64, f64)> {
        let rows: Vec<&LatencyRow> = self.latency.iter().filter(|r| r.mode == mode).collect();
        let lo = rows.iter().min_by_key(|r| r.services)?;
        let hi = rows.iter().max_by_key(|r| r.services)?;
        if lo.services == hi.services {
            return None;
        }
        let ratio = |a: Duration, b: Duration| if b.is_zero() { f64::NAN } else { a.as_secs_f64() / b.as_secs_f64() };
        Some((lo.services, hi.services, ratio(hi.cluster.median, lo.cluster.median), ratio(hi.cluster.p99, lo.cluster.p99)))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<9} {:>7} {:>4} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "mode", "svcs", "eps", "full", "change", "chg-plan", "scale", "chains", "rules", "elems", "floor-full", "floor-chg"
        )?;
        for r in &self.rows {
            let ms = |d: Duration| format!("{:.1}ms", d.as_secs_f64() * 1000.0);
            writeln!(
                f,
                "{:<9} {:>7} {:>4} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>10} {:>10}",
                format!("{:?}", r.mode).to_lowercase(),
                r.services,
                r.endpoints_per_service,
                ms(r.full_sync),
                ms(r.change_sync),
                ms(r.change_plan),
                ms(r.scale_sync),
                r.sizes.chains,
                r.sizes.rules + r.sizes.filter_rules,
                r.sizes.elements,
                ms(r.floor_full),
                ms(r.floor_change),
            )?;
        }
        if self.latency.is_empty() {
            return Ok(());
        }
        let us = |d: Duration| format!("{:.1}us", d.as_secs_f64() * 1e6);
        writeln!(f)?;
        writeln!(
            f,
            "first-packet latency: TCP connect() until established to one ClusterIP (the last service in rule order); \
             floor = the same connects straight to the endpoint, no rules loaded"
        )?;
        writeln!(
            f,
            "{:<9} {:>7} {:>4} {:>6} {:>20} {:>10} {:>10} {:>10} {:>10}  accepted per endpoint",
            "mode", "svcs", "eps", "conns", "clusterip", "p50", "p99", "floor-p50", "floor-p99"
        )?;
        for r in &self.latency {
            let acc: Vec<String> = r.accepted.iter().map(|(a, n)| format!("{a}={n}")).collect();
            writeln!(
                f,
                "{:<9} {:>7} {:>4} {:>6} {:>20} {:>10} {:>10} {:>10} {:>10}  {}",
                format!("{:?}", r.mode).to_lowercase(),
                r.services,
                r.endpoints_per_service,
                r.connections,
                r.cluster_ip.to_string(),
                us(r.cluster.median),
                us(r.cluster.p99),
                us(r.floor.median),
                us(r.floor.p99),
                acc.join(" "),
            )?;
        }
        let mut modes: Vec<Mode> = Vec::new();
        for r in &self.latency {
            if !modes.contains(&r.mode) {
                modes.push(r.mode);
            }
        }
        for m in modes {
            if let Some((lo, hi, p50, p99)) = self.latency_ratio(m) {
                writeln!(
                    f,
                    "{:<9} ClusterIP latency {hi}/{lo} services: p50 x{p50:.2}, p99 x{p99:.2}",
                    format!("{m:?}").to_lowercase()
                )?;
            }
        }
        Ok(())
    }
}

/// Render context of every bench row: the synthetic endpoints (and the latency client) lie in
/// the cluster CIDR.
fn bench_ctx() -> RenderCtx {
    RenderCtx {
        local: LocalDetect::Cidr(Cidr { addr: Ipv4Addr::new(10, 128, 0, 0), len: 9 }),
        masquerade_all: false,
        node_port_cidrs: None,
    }
}

fn ip(base: Ipv4Addr, n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n as u32))
}

/// A synthetic state: `n` TCP ClusterIP services with `e` endpoints each.
pub fn synthetic_state(n: usize, e: usize) -> State {
    let mut s = State::default();
    let svc_base = Ipv4Addr::new(10, 96, 0, 1);
    let ep_base = Ipv4Addr::new(10, 128, 0, 1);
    for i in 0..n {
        let name = ServicePortName {
            namespace: "bench".into(),
            name: format!("svc-{i}"),
            port: "http".into(),
            protocol: Protocol::Tcp,
        };
        let eps = (0..e).map(|j| Endpoint { ip: ip(ep_base, i * e + j), port: 8080, local: false }).collect();
        s.services.insert(
            name.clone(),
            ServicePort {
                name,
                cluster_ip: ip(svc_base, i),
                port: 80,
                protocol: Protocol::Tcp,
                node_port: None,
                external_ips: vec![],
                internal_local: false,
                external_local: false,
                affinity_timeout: None,
                cluster_endpoints: eps,
                local_endpoints: vec![],
                has_any_endpoints: e > 0,
            },
        );
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn floor(tools: &Tools, entries: usize) -> Result<(Duration, Duration)> {
    let mut script = String::from(
        "add table ip bench-floor\nadd map ip bench-floor flat { type ipv4_addr . inet_service : ipv4_addr . inet_service; }\n",
    );
    let elems: Vec<String> = (0..entries)
        .map(|i| format!("{} . 8080 : {} . 80", ip(Ipv4Addr::new(10, 128, 0, 1), i), ip(Ipv4Addr::new(10, 96, 0, 1), i / 2)))
        .collect();
    for chunk in elems.chunks(4096) {
        script.push_str(&format!("add element ip bench-floor flat {{ {} }}\n", chunk.join(", ")));
    }
    let t = Instant::now();
    exec::run(&tools.nft, &["-f", "-"], Some(&script))?;
    let full = t.elapsed();
    let one = "add element ip bench-floor flat { 10.255.255.1 . 8080 : 10.96.255.1 . 80 }\n";
    let t = Instant::now();
    exec::run(&tools.nft, &["-f", "-"], Some(one))?;
    let change = t.elapsed();
    exec::run(&tools.nft, &["delete table ip bench-floor"], None)?;
    Ok((full, change))
}

fn row(mode: Mode, n: usize, e: usize, rounds: usize, tools: Tools) -> Result<Row> {
    // Loopback up so the namespace behaves like a host (not needed by the rules themselves).
    let _ = exec::run_raw("ip", &["link", "set", "lo", "up"], None);
    let (floor_full, floor_change) = floor(&tools, n * e)?;
    let ctx = bench_ctx();
    let mut engine = Engine::new(mode, tools);
    engine.conntrack_cleanup = false;
    let mut state = synthetic_state(n, e);
    let full = engine.sync(&state, &ctx, true)?;
    let mut times = Vec::new();
    let mut plans = Vec::new();
    let mut bytes = 0;
    for round in 0..rounds.max(1) {
        let key = ServicePortName {
            namespace: "bench".into(),
            name: format!("svc-{}", (n / 2 + round * 7) % n.max(1)),
            port: "http".into(),
            protocol: Protocol::Tcp,
        };
        if let Some(sp) = state.services.get_mut(&key)
            && let Some(ep) = sp.cluster_endpoints.first_mut()
        {
            ep.ip = ip(Ipv4Addr::new(10, 200, 0, 1), round);
        }
        let hint = BTreeSet::from([key]);
        let r = engine.sync_hinted(&state, &ctx, false, Some(&hint))?;
        times.push(r.total_time);
        plans.push(r.plan_time);
        bytes = r.script_bytes;
    }
    let mut scale = Vec::new();
    for round in 0..rounds.max(1) {
        let key = ServicePortName {
            namespace: "bench".into(),
            name: format!("svc-{}", (n / 3 + round * 11) % n.max(1)),
            port: "http".into(),
            protocol: Protocol::Tcp,
        };
        let Some(sp) = state.services.get_mut(&key) else { break };
        let removed = sp.cluster_endpoints.pop();
        let hint = BTreeSet::from([key.clone()]);
        let r = engine.sync_hinted(&state, &ctx, false, Some(&hint))?;
        scale.push(r.total_time);
        if let (Some(ep), Some(sp)) = (removed, state.services.get_mut(&key)) {
            sp.cluster_endpoints.push(ep);
            let r = engine.sync_hinted(&state, &ctx, false, Some(&hint))?;
            scale.push(r.total_time);
        }
    }
    let sizes = full.sizes;
    Ok(Row {
        mode,
        services: n,
        endpoints_per_service: e,
        full_sync: full.total_time,
        full_script_bytes: full.script_bytes,
        change_sync: median(times),
        change_plan: median(plans),
        scale_sync: median(scale),
        change_script_bytes: bytes,
        sizes,
        floor_full,
        floor_change,
    })
}

/// Runs the benchmark; every row runs in its own fresh network namespace (the latency rows in
/// two: client and endpoint).
pub fn run(opts: &BenchOpts) -> Result<Report> {
    let mut report = Report::default();
    for &mode in &opts.modes {
        for &n in &opts.services {
            let (e, rounds, tools) = (opts.endpoints_per_service, opts.change_rounds, opts.tools.clone());
            let r = in_fresh_netns(move || row(mode, n, e, rounds, tools))??;
            report.rows.push(r);
        }
    }
    if opts.latency_connections > 0 {
        for &mode in &opts.modes {
            for &n in &opts.services {
                let r = latency_row(mode, n, opts.endpoints_per_service, opts.latency_connections, opts.tools.clone())?;
                report.latency.push(r);
            }
        }
    }
    Ok(report)
}
