//! iptables sync planning: keeps the last applied fragments and builds one
//! `iptables-restore --noflush` input per sync. Shared chains (`KUBE-SERVICES`, …) are always
//! rewritten; per-service chains only when they changed (partial) or all of them (full).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{
    jumps, FILTER_EXTERNAL, FILTER_FORWARD, FILTER_SERVICES, Fragment, MARK_MASQ, NAT_NODEPORTS,
    NAT_POSTROUTING, NAT_SERVICES, filter_base_rules, fragment, nat_base_rules, nat_nodeport_jump,
};
use crate::ctx::RenderCtx;
use crate::model::{ServicePort, ServicePortName, State};

/// Services per chunk of a full restore.
const CHUNK_SERVICES: usize = 500;

/// Sizes of the programmed rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub nat_chains: usize,
    pub nat_rules: usize,
    pub filter_rules: usize,
}

/// What was last applied.
#[derive(Debug, Default)]
pub struct IptApplied {
    ctx: Option<RenderCtx>,
    frags: BTreeMap<ServicePortName, (ServicePort, Fragment)>,
    dirty: bool,
}

/// A restore input plus what to commit once it was accepted.
#[derive(Debug)]
pub struct Plan {
    /// Restores to run before `script` (full syncs: the per-service chains in chunks, since
    /// one huge `--noflush` restore is superlinear in iptables-nft).
    pub pre_scripts: Vec<String>,
    pub script: String,
    pub full: bool,
    pub changed_services: usize,
    commit: Commit,
}

#[derive(Debug)]
enum Commit {
    Full { ctx: RenderCtx, frags: BTreeMap<ServicePortName, (ServicePort, Fragment)> },
    Partial { changes: Vec<(ServicePortName, Option<(ServicePort, Fragment)>)> },
}

/// Whether a nat chain name is one this proxy creates per service / endpoint.
pub fn is_service_chain(name: &str) -> bool {
    ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-"].iter().any(|p| name.starts_with(p))
}

/// What the kernel holds, read with `iptables-save` when the state is unknown.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Chains of the nat table.
    pub nat_chains: BTreeSet<String>,
    /// `-A …` lines per table.
    pub rules: BTreeMap<String, Vec<String>>,
}

impl Listing {
    /// Builds a listing from `iptables-save -t nat` and `-t filter` outputs.
    pub fn parse(nat: &str, filter: &str) -> Listing {
        let lines = |t: &str| t.lines().filter(|l| l.starts_with("-A ")).map(str::to_string).collect::<Vec<_>>();
        Listing {
            nat_chains: parse_save(nat).remove("nat").unwrap_or_default(),
            rules: BTreeMap::from([("nat".to_string(), lines(nat)), ("filter".to_string(), lines(filter))]),
        }
    }
}

/// Joins rule arguments for a restore file, quoting those with spaces.
pub fn quote_args(args: &[String]) -> String {
    args.iter()
        .map(|a| if a.contains(' ') { format!("\"{a}\"") } else { a.clone() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `rules` (iptables-save lines) hold the jump `spec` in `chain`.
fn has_jump(rules: &[String], chain: &str, spec: &[String]) -> bool {
    let want = format!("-A {chain} {}", quote_args(spec));
    rules.contains(&want)
}

/// Parses `iptables-save` output into (table → chain names).
pub fn parse_save(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_string();
        } else if let Some(rest) = line.strip_prefix(':')
            && let Some(name) = rest.split_whitespace().next()
        {
            out.entry(table.clone()).or_default().insert(name.to_string());
        }
    }
    out
}

impl IptApplied {
    pub fn new() -> IptApplied {
        IptApplied { dirty: true, ..Default::default() }
    }
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
    /// The next plan needs the kernel's chain list (`iptables-save -t nat`).
    pub fn needs_listing(&self) -> bool {
        self.dirty
    }

    /// Plans a sync. `kernel_nat` is the list of nat chains in the kernel, needed when
    /// `needs_listing()` (so stale chains from an earlier run are removed).
    pub fn plan(
        &self,
        state: &State,
        ctx: &RenderCtx,
        full: bool,
        kernel: Option<&Listing>,
        hint: Option<&BTreeSet<ServicePortName>>,
    ) -> Plan {
        let full = full || self.dirty || self.ctx.as_ref() != Some(ctx);
        let same_ctx = self.ctx.as_ref() == Some(ctx);
        let mut all: BTreeMap<ServicePortName, (ServicePort, Fragment)> = BTreeMap::new();
        let changes = if full {
            let mut changes = Vec::new();
            for (k, sp) in &state.services {
                match self.frags.get(k) {
                    Some((old, f)) if old == sp && same_ctx => {
                        all.insert(k.clone(), (sp.clone(), f.clone()));
                    }
                    _ => {
                        let v = (sp.clone(), fragment(sp, ctx));
                        all.insert(k.clone(), v.clone());
                        changes.push((k.clone(), Some(v)));
                    }
                }
            }
            for k in self.frags.keys() {
                if !state.services.contains_key(k) {
                    changes.push((k.clone(), None));
                }
            }
            changes
        } else {
            crate::nft::sync::diff(&self.frags, state, hint, |sp| fragment(sp, ctx))
        };
        // The shared chains (KUBE-SERVICES, …) only change when some service's contribution
        // to them does; endpoint changes only touch that service's own chains.
        let shared_changed = full
            || changes.iter().any(|(k, new)| {
                let old = self.frags.get(k).map(|(_, f)| f);
                match (old, new.as_ref().map(|(_, f)| f)) {
                    (Some(o), Some(n)) => {
                        o.nat_services != n.nat_services
                            || o.nat_nodeports != n.nat_nodeports
                            || o.filter_services != n.filter_services
                            || o.filter_external != n.filter_external
                    }
                    _ => true,
                }
            });
        // Fragments as they will be after this sync, for the shared chains.
        let changed_map: BTreeMap<&ServicePortName, Option<&Fragment>> =
            changes.iter().map(|(k, v)| (k, v.as_ref().map(|(_, f)| f))).collect();
        let frag_list: Vec<&Fragment> = if full {
            all.values().map(|(_, f)| f).collect()
        } else if !shared_changed {
            Vec::new()
        } else {
            let mut v = Vec::with_capacity(state.services.len());
            for k in state.services.keys() {
                match changed_map.get(k) {
                    Some(Some(f)) => v.push(*f),
                    Some(None) => {}
                    None => {
                        if let Some((_, f)) = self.frags.get(k) {
                            v.push(f);
                        }
                    }
                }
            }
            v
        };

        let mut out = String::with_capacity(frag_list.len() * 600 + 4096);
        let missing_jumps = |table: &str| -> Vec<String> {
            let Some(k) = kernel else { return Vec::new() };
            let rules = k.rules.get(table).map(Vec::as_slice).unwrap_or(&[]);
            jumps()
                .into_iter()
                .filter(|(t, _, _)| *t == table)
                .filter(|(_, chain, spec)| !has_jump(rules, chain, spec))
                .map(|(_, chain, spec)| format!("-I {chain} 1 {}", quote_args(&spec)))
                .collect()
        };
        if shared_changed {
            out.push_str("*filter\n");
            let mut chains = vec![FILTER_SERVICES, FILTER_EXTERNAL];
            if full {
                chains.push(FILTER_FORWARD);
            }
            for c in chains {
                let _ = writeln!(out, ":{c} - [0:0]");
            }
            for r in missing_jumps("filter") {
                let _ = writeln!(out, "{r}");
            }
            if full {
                for r in filter_base_rules() {
                    let _ = writeln!(out, "{r}");
                }
            }
            for f in &frag_list {
                for r in f.filter_services.iter().chain(f.filter_external.iter()) {
                    let _ = writeln!(out, "{r}");
                }
            }
            out.push_str("COMMIT\n");
        }
        out.push_str("*nat\n");
        let mut shared_nat = Vec::new();
        if shared_changed {
            shared_nat.extend([NAT_SERVICES, NAT_NODEPORTS]);
        }
        for c in shared_nat {
            let _ = writeln!(out, ":{c} - [0:0]");
        }
        // Own chains to (re)write and to delete.
        let mut write: BTreeMap<&str, &Vec<String>> = BTreeMap::new();
        let mut delete: BTreeSet<String> = BTreeSet::new();
        let mut pre_scripts = Vec::new();
        if full {
            // The masquerade chains first: per-service chains jump to KUBE-MARK-MASQ.
            let mut base = format!("*nat\n:{NAT_POSTROUTING} - [0:0]\n:{MARK_MASQ} - [0:0]\n");
            for r in nat_base_rules() {
                let _ = writeln!(base, "{r}");
            }
            base.push_str("COMMIT\n");
            pre_scripts.push(base);
            let mut desired: BTreeSet<&str> = BTreeSet::new();
            for chunk in frag_list.chunks(CHUNK_SERVICES) {
                let mut pre = String::from("*nat\n");
                for f in chunk {
                    for (name, _) in &f.nat_chains {
                        desired.insert(name);
                        let _ = writeln!(pre, ":{name} - [0:0]");
                    }
                }
                for f in chunk {
                    for (_, rules) in &f.nat_chains {
                        for r in rules {
                            let _ = writeln!(pre, "{r}");
                        }
                    }
                }
                pre.push_str("COMMIT\n");
                pre_scripts.push(pre);
            }
            let mut known: BTreeSet<String> = BTreeSet::new();
            for (_, f) in self.frags.values() {
                known.extend(f.nat_chains.iter().map(|(n, _)| n.clone()));
            }
            if let Some(k) = kernel {
                known.extend(k.nat_chains.iter().filter(|n| is_service_chain(n)).cloned());
            }
            for n in known {
                if !desired.contains(n.as_str()) {
                    delete.insert(n);
                }
            }
        } else {
            let empty = Fragment::default();
            let mut old: BTreeMap<&str, &Vec<String>> = BTreeMap::new();
            let mut new: BTreeMap<&str, &Vec<String>> = BTreeMap::new();
            for (k, nf) in &changes {
                let of = self.frags.get(k).map(|(_, f)| f).unwrap_or(&empty);
                for (n, r) in &of.nat_chains {
                    old.insert(n, r);
                }
                if let Some((_, f)) = nf {
                    for (n, r) in &f.nat_chains {
                        new.insert(n, r);
                    }
                }
            }
            for (n, r) in &new {
                if old.get(n) != Some(r) {
                    write.insert(n, r);
                }
            }
            for n in old.keys() {
                if !new.contains_key(n) {
                    delete.insert(n.to_string());
                }
            }
        }
        for n in write.keys() {
            let _ = writeln!(out, ":{n} - [0:0]");
        }
        for n in &delete {
            let _ = writeln!(out, ":{n} - [0:0]");
        }
        for r in missing_jumps("nat") {
            let _ = writeln!(out, "{r}");
        }
        if shared_changed {
            for f in &frag_list {
                for r in &f.nat_services {
                    let _ = writeln!(out, "{r}");
                }
            }
            for r in nat_nodeport_jump(ctx) {
                let _ = writeln!(out, "{r}");
            }
            for f in &frag_list {
                for r in &f.nat_nodeports {
                    let _ = writeln!(out, "{r}");
                }
            }
        }
        for rules in write.values() {
            for r in rules.iter() {
                let _ = writeln!(out, "{r}");
            }
        }
        for n in &delete {
            let _ = writeln!(out, "-X {n}");
        }
        out.push_str("COMMIT\n");
        let changed_services = changes.len();
        let commit = if full {
            Commit::Full { ctx: ctx.clone(), frags: all }
        } else {
            Commit::Partial { changes }
        };
        Plan { pre_scripts, script: out, full, changed_services, commit }
    }

    /// Records an accepted plan.
    pub fn commit(&mut self, plan: Plan) {
        match plan.commit {
            Commit::Full { ctx, frags } => {
                self.ctx = Some(ctx);
                self.frags = frags;
            }
            Commit::Partial { changes } => {
                for (k, v) in changes {
                    match v {
                        Some(v) => {
                            self.frags.insert(k, v);
                        }
                        None => {
                            self.frags.remove(&k);
                        }
                    }
                }
            }
        }
        self.dirty = false;
    }

    pub fn sizes(&self) -> Sizes {
        let mut s = Sizes { nat_chains: 4, nat_rules: nat_base_rules().len(), filter_rules: filter_base_rules().len() };
        if let Some(ctx) = &self.ctx {
            s.nat_rules += nat_nodeport_jump(ctx).len();
        }
        let mut chains = BTreeSet::new();
        for (_, f) in self.frags.values() {
            for (n, r) in &f.nat_chains {
                if chains.insert(n.as_str()) {
                    s.nat_rules += r.len();
                }
            }
            s.nat_rules += f.nat_services.len() + f.nat_nodeports.len();
            s.filter_rules += f.filter_services.len() + f.filter_external.len();
        }
        s.nat_chains += chains.len();
        s
    }

    /// The committed service port `k`.
    pub fn applied_service(&self, k: &ServicePortName) -> Option<&ServicePort> {
        self.frags.get(k).map(|(sp, _)| sp)
    }

    pub fn applied_services(&self) -> impl Iterator<Item = &ServicePort> {
        self.frags.values().map(|(sp, _)| sp)
    }
}

/// Restore input that flushes and deletes the given chains of one table.
pub fn delete_chains_script(table: &str, chains: &BTreeSet<String>) -> String {
    let mut out = format!("*{table}\n");
    for c in chains {
        let _ = writeln!(out, ":{c} - [0:0]");
    }
    for c in chains {
        let _ = writeln!(out, "-X {c}");
    }
    out.push_str("COMMIT\n");
    out
}
