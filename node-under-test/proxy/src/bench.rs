//! Sync benchmark, run inside a fresh network namespace per row: full sync and one-endpoint
//! change at N services × E endpoints in each mode, next to the floor measured in the same
//! namespace (the same number of entries loaded as one flat nft map with `nft -f`, and a
//! one-element `nft -f` into it).

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

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOpts {
    pub services: Vec<usize>,
    pub endpoints_per_service: usize,
    pub modes: Vec<Mode>,
    /// One-endpoint-change syncs per row (the median is reported).
    pub change_rounds: usize,
    pub tools: Tools,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            services: vec![1_000, 10_000],
            endpoints_per_service: 2,
            modes: vec![Mode::Nftables, Mode::Iptables],
            change_rounds: 5,
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
        Ok(())
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
    let ctx = RenderCtx {
        local: LocalDetect::Cidr(Cidr { addr: Ipv4Addr::new(10, 128, 0, 0), len: 9 }),
        masquerade_all: false,
        node_port_cidrs: None,
    };
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

/// Runs the benchmark; every row runs in its own fresh network namespace.
pub fn run(opts: &BenchOpts) -> Result<Report> {
    let mut report = Report::default();
    for &mode in &opts.modes {
        for &n in &opts.services {
            let (e, rounds, tools) = (opts.endpoints_per_service, opts.change_rounds, opts.tools.clone());
            let r = in_fresh_netns(move || row(mode, n, e, rounds, tools))??;
            report.rows.push(r);
        }
    }
    Ok(report)
}
