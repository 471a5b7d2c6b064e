//! The sync engine: turns a `State` into one kernel transaction (nftables or iptables),
//! commits the tracking state on success, flushes stale UDP conntrack entries, and cleans up.
//! Blocking (runs tools); async callers use `spawn_blocking`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::config::Mode;
use crate::conntrack;
use crate::ctx::RenderCtx;
use crate::error::Result;
use crate::exec::Tools;
use crate::kernel::{Kernel, ToolKernel};
use crate::ipt::{self, sync::IptApplied};
use crate::model::{ServicePortName, State};
use crate::nft::sync::{NftApplied, cleanup_script};

/// Sizes of what is programmed, for metrics and the bench.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleSizes {
    pub chains: usize,
    pub rules: usize,
    /// nft map/set elements (0 in iptables mode).
    pub elements: usize,
    /// nft named sets/maps (0 in iptables mode).
    pub sets: usize,
    /// iptables filter rules (0 in nft mode).
    pub filter_rules: usize,
}

/// Outcome of one successful sync.
#[derive(Clone, Debug)]
pub struct SyncReport {
    pub full: bool,
    pub changed_services: usize,
    pub script_bytes: usize,
    /// Time spent planning (diff + render).
    pub plan_time: Duration,
    /// Time the kernel tool took.
    pub apply_time: Duration,
    pub total_time: Duration,
    pub sizes: RuleSizes,
    /// Conntrack flushes that failed (logged, not fatal).
    pub conntrack_errors: Vec<String>,
}

enum Backend {
    Nft(NftApplied),
    Ipt(IptApplied),
}

/// Programs the rules of one mode and remembers what it programmed.
pub struct Engine {
    kernel: Box<dyn Kernel>,
    backend: Backend,
    /// Flush stale UDP conntrack entries after syncs.
    pub conntrack_cleanup: bool,
}

impl Engine {
    /// An engine that programs the kernel with its tools.
    pub fn new(mode: Mode, tools: Tools) -> Engine {
        Engine::with_kernel(mode, Box::new(ToolKernel::new(tools)))
    }

    /// An engine that programs `kernel`.
    pub fn with_kernel(mode: Mode, kernel: Box<dyn Kernel>) -> Engine {
        let backend = match mode {
            Mode::Nftables => Backend::Nft(NftApplied::new()),
            Mode::Iptables => Backend::Ipt(IptApplied::new()),
        };
        Engine { kernel, backend, conntrack_cleanup: true }
    }

    pub fn mode(&self) -> Mode {
        match self.backend {
            Backend::Nft(_) => Mode::Nftables,
            Backend::Ipt(_) => Mode::Iptables,
        }
    }

    /// Syncs the kernel to `state`. `full` forces a full resync; the first sync and the one
    /// after a failure are full anyway.
    pub fn sync(&mut self, state: &State, ctx: &RenderCtx, full: bool) -> Result<SyncReport> {
        self.sync_hinted(state, ctx, full, None)
    }

    /// Like `sync`, but only the service ports in `hint` are compared with what was applied
    /// (the caller guarantees that no other service port changed since the last success).
    pub fn sync_hinted(
        &mut self,
        state: &State,
        ctx: &RenderCtx,
        full: bool,
        hint: Option<&BTreeSet<ServicePortName>>,
    ) -> Result<SyncReport> {
        let start = Instant::now();
        let flushes = if self.conntrack_cleanup {
            match (&self.backend, hint) {
                (Backend::Nft(a), Some(h)) => conntrack::stale(h.iter().filter_map(|k| a.applied_service(k)), state, hint),
                (Backend::Ipt(a), Some(h)) => conntrack::stale(h.iter().filter_map(|k| a.applied_service(k)), state, hint),
                (Backend::Nft(a), None) => conntrack::stale(a.applied_services(), state, None),
                (Backend::Ipt(a), None) => conntrack::stale(a.applied_services(), state, None),
            }
        } else {
            Vec::new()
        };
        let (full, changed, script_bytes, plan_time, apply_time, sizes) = match &mut self.backend {
            Backend::Nft(applied) => {
                let plan = applied.plan(state, ctx, full, hint);
                let plan_time = start.elapsed();
                let (f, c, b) = (plan.full, plan.changed_services, plan.script.len());
                let t = Instant::now();
                if !plan.script.is_empty()
                    && let Err(e) = self.kernel.nft_apply(&plan.script)
                {
                    applied.mark_dirty();
                    return Err(e);
                }
                let apply_time = t.elapsed();
                applied.commit(plan);
                let s = applied.sizes();
                let sizes = RuleSizes { chains: s.chains, rules: s.rules, elements: s.elements, sets: s.sets, filter_rules: 0 };
                (f, c, b, plan_time, apply_time, sizes)
            }
            Backend::Ipt(applied) => {
                let kernel = if applied.needs_listing() {
                    let nat = self.kernel.iptables_save("nat")?;
                    let filter = self.kernel.iptables_save("filter")?;
                    Some(ipt::sync::Listing::parse(&nat, &filter))
                } else {
                    None
                };
                let plan = applied.plan(state, ctx, full, kernel.as_ref(), hint);
                let plan_time = start.elapsed();
                let b = plan.script.len() + plan.pre_scripts.iter().map(String::len).sum::<usize>();
                let (f, c) = (plan.full, plan.changed_services);
                let t = Instant::now();
                for script in plan.pre_scripts.iter().chain(std::iter::once(&plan.script)) {
                    if let Err(e) = self.kernel.iptables_restore(script) {
                        applied.mark_dirty();
                        return Err(e);
                    }
                }
                let apply_time = t.elapsed();
                applied.commit(plan);
                let s = applied.sizes();
                let sizes = RuleSizes { chains: s.nat_chains, rules: s.nat_rules, elements: 0, sets: 0, filter_rules: s.filter_rules };
                (f, c, b, plan_time, apply_time, sizes)
            }
        };
        let mut conntrack_errors = Vec::new();
        for f in &flushes {
            if let Err(e) = self.kernel.conntrack_flush(f) {
                conntrack_errors.push(e.to_string());
            }
        }
        Ok(SyncReport {
            full,
            changed_services: changed,
            script_bytes,
            plan_time,
            apply_time,
            total_time: start.elapsed(),
            sizes,
            conntrack_errors,
        })
    }
}

/// Removes everything this proxy creates in both modes: the nft table, the jumps from the
/// built-in iptables chains and every `KUBE-*` chain it manages. Missing pieces are fine.
pub fn cleanup(tools: &Tools) -> Result<()> {
    cleanup_with(&mut ToolKernel::new(tools.clone()))
}

/// [`cleanup`] through `kernel`.
pub fn cleanup_with(kernel: &mut dyn Kernel) -> Result<()> {
    kernel.nft_apply(&cleanup_script())?;
    cleanup_iptables_with(kernel)
}

/// The iptables half of `cleanup`.
pub fn cleanup_iptables(tools: &Tools) -> Result<()> {
    cleanup_iptables_with(&mut ToolKernel::new(tools.clone()))
}

/// [`cleanup_iptables`] through `kernel`.
pub fn cleanup_iptables_with(kernel: &mut dyn Kernel) -> Result<()> {
    for (table, chain, spec) in ipt::jumps() {
        // Delete every copy; stops when the rule (or the chain / table) is gone.
        for _ in 0..16 {
            if !kernel.iptables_delete(table, chain, &spec)? {
                break;
            }
        }
    }
    for table in ["nat", "filter"] {
        // A table that cannot be listed (no iptables support here) holds nothing of ours.
        let listing = match kernel.iptables_save(table) {
            Ok(text) => text,
            Err(crate::Error::Command { .. }) => continue,
            Err(e) => return Err(e),
        };
        let chains: std::collections::BTreeSet<String> = ipt::sync::parse_save(&listing)
            .remove(table)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| is_ours(table, c))
            .collect();
        if !chains.is_empty() {
            kernel.iptables_restore(&ipt::sync::delete_chains_script(table, &chains))?;
        }
    }
    Ok(())
}

fn is_ours(table: &str, chain: &str) -> bool {
    match table {
        "nat" => {
            ipt::sync::is_service_chain(chain)
                || [ipt::NAT_SERVICES, ipt::NAT_NODEPORTS, ipt::NAT_POSTROUTING, ipt::MARK_MASQ].contains(&chain)
        }
        "filter" => [ipt::FILTER_SERVICES, ipt::FILTER_EXTERNAL, ipt::FILTER_FORWARD].contains(&chain),
        _ => false,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
