//! The full benchmark (1,000 and 10,000 services × 2 endpoints, both modes), ignored by
//! default: `cargo nextest run -p node-proxy --test bench --run-ignored only --no-capture`.
//! `NODE_PROXY_BENCH_SIZES=1000,10000` and `NODE_PROXY_BENCH_MODES=nftables,iptables` narrow it.

use node_proxy::bench::{BenchOpts, run};
use node_proxy::config::Mode;

#[test]
#[ignore = "benchmark: minutes of CPU"]
fn bench_report() {
    let mut opts = BenchOpts::default();
    if let Ok(s) = std::env::var("NODE_PROXY_BENCH_SIZES") {
        opts.services = s.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    }
    if let Ok(s) = std::env::var("NODE_PROXY_BENCH_MODES") {
        opts.modes = s
            .split(',')
            .filter_map(|m| match m.trim() {
                "nftables" => Some(Mode::Nftables),
                "iptables" => Some(Mode::Iptables),
                _ => None,
            })
            .collect();
    }
    let report = run(&opts).expect("bench");
    println!("{report}");
    for r in &report.rows {
        assert!(r.sizes.chains + r.sizes.elements >= r.services, "{report}");
    }
}
