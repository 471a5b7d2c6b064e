//! nftables sync planning: keeps what was last applied (per-service fragments, element
//! reference counts) and turns a new `State` into one `nft -f -` transaction — full (flush and
//! refill everything, optionally recreating the table) or partial (only changed chains and
//! map elements). The plan is committed only after the kernel accepted the transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::{Base, Chain, Element, FAMILY, Fragment, SetDef, TABLE, base, fragment, is_map};
use crate::ctx::RenderCtx;
use crate::model::{ServicePort, ServicePortName, State};

type ElemKey = (&'static str, String);

/// Sizes of the programmed table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub chains: usize,
    pub rules: usize,
    pub elements: usize,
    pub sets: usize,
}

/// What was last applied to the kernel.
#[derive(Debug, Default)]
pub struct NftApplied {
    ctx: Option<RenderCtx>,
    base: Option<Base>,
    frags: BTreeMap<ServicePortName, (ServicePort, Fragment)>,
    elems: HashMap<ElemKey, (String, u32)>,
    shared: HashMap<String, (Chain, u32)>,
    /// Chains, rules and sets of all fragments' own chains (kept up to date on commit).
    frag_counts: (usize, usize, usize),
    /// The kernel state is unknown (start, or after a failed transaction): recreate the table.
    dirty: bool,
}

/// A transaction ready to send, plus what to commit if it succeeds.
#[derive(Debug)]
pub struct Plan {
    pub script: String,
    pub full: bool,
    /// Number of services whose fragment changed.
    pub changed_services: usize,
    commit: Commit,
}

#[derive(Debug)]
enum Commit {
    Full {
        ctx: RenderCtx,
        base: Base,
        frags: BTreeMap<ServicePortName, (ServicePort, Fragment)>,
        elems: HashMap<ElemKey, (String, u32)>,
        shared: HashMap<String, (Chain, u32)>,
    },
    Partial {
        changes: Vec<(ServicePortName, Option<(ServicePort, Fragment)>)>,
        elems: HashMap<ElemKey, (String, u32)>,
        shared: HashMap<String, (Chain, u32)>,
    },
}

fn t() -> String {
    format!("{FAMILY} {TABLE}")
}

fn add_elem(elems: &mut HashMap<ElemKey, (String, u32)>, e: &Element) {
    let entry = elems.entry((e.map, e.key.clone())).or_insert_with(|| (e.value.clone(), 0));
    entry.1 += 1;
}

fn write_elements(out: &mut String, verb: &str, by_map: BTreeMap<&'static str, Vec<String>>) {
    for (map, items) in by_map {
        for chunk in items.chunks(4096) {
            let _ = writeln!(out, "{verb} element {} {map} {{ {} }}", t(), chunk.join(", "));
        }
    }
}

fn elem_text(key: &str, value: &str) -> String {
    if value.is_empty() { key.to_string() } else { format!("{key} : {value}") }
}

fn write_set_decl(out: &mut String, s: &SetDef) {
    let kind = if is_map(&s.body) { "map" } else { "set" };
    let _ = writeln!(out, "add {kind} {} {} {{ {} }}", t(), s.name, s.body);
}

fn write_chain_rules(out: &mut String, c: &Chain) {
    for r in &c.rules {
        let _ = writeln!(out, "add rule {} {} {r}", t(), c.name);
    }
}

impl NftApplied {
    /// A fresh tracker: the first plan recreates the table.
    pub fn new() -> NftApplied {
        NftApplied { dirty: true, ..Default::default() }
    }

    /// Marks the kernel state unknown (a transaction failed); the next plan is a full recreate.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Plans a sync to `state`. `full` forces a full flush-and-refill. `hint`, when given,
    /// lists every service port that may differ from the last committed state (the others are
    /// not compared, which keeps a small change O(changes) at any scale).
    pub fn plan(&self, state: &State, ctx: &RenderCtx, full: bool, hint: Option<&BTreeSet<ServicePortName>>) -> Plan {
        let full = full || self.dirty || self.ctx.as_ref() != Some(ctx);
        if full { self.plan_full(state, ctx) } else { self.plan_partial(state, ctx, hint) }
    }

    /// The committed service port `k`.
    pub fn applied_service(&self, k: &ServicePortName) -> Option<&ServicePort> {
        self.frags.get(k).map(|(sp, _)| sp)
    }

    fn plan_full(&self, state: &State, ctx: &RenderCtx) -> Plan {
        let recreate = self.dirty;
        let base = base(ctx);
        let mut frags = BTreeMap::new();
        let mut elems = HashMap::new();
        let mut shared: HashMap<String, (Chain, u32)> = HashMap::new();
        for e in &base.elements {
            add_elem(&mut elems, e);
        }
        let mut changed = 0;
        for (k, sp) in &state.services {
            let frag = match self.frags.get(k) {
                Some((old, f)) if old == sp && self.ctx.as_ref() == Some(ctx) => f.clone(),
                _ => {
                    changed += 1;
                    fragment(sp, ctx)
                }
            };
            for e in &frag.elements {
                add_elem(&mut elems, e);
            }
            for c in &frag.shared_chains {
                shared.entry(c.name.clone()).or_insert_with(|| (c.clone(), 0)).1 += 1;
            }
            frags.insert(k.clone(), (sp.clone(), frag));
        }
        changed += self.frags.keys().filter(|k| !state.services.contains_key(*k)).count();
        let mut out = String::with_capacity(state.services.len() * 400 + 4096);
        let tn = t();
        if recreate {
            let _ = writeln!(out, "add table {tn}\ndelete table {tn}");
        }
        let _ = writeln!(out, "add table {tn}");
        let mut desired_sets: BTreeSet<&str> = BTreeSet::new();
        let all_sets = base.sets.iter().chain(frags.values().flat_map(|(_, f)| f.sets.iter()));
        for s in all_sets {
            if desired_sets.insert(&s.name) {
                write_set_decl(&mut out, s);
            }
        }
        for s in &base.sets {
            if !recreate {
                let kind = if is_map(&s.body) { "map" } else { "set" };
                let _ = writeln!(out, "flush {kind} {tn} {}", s.name);
            }
        }
        let mut shared_sorted: Vec<&Chain> = shared.values().map(|(c, _)| c).collect();
        shared_sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let chains: Vec<&Chain> = base
            .chains
            .iter()
            .chain(shared_sorted.iter().copied())
            .chain(frags.values().flat_map(|(_, f)| f.chains.iter()))
            .collect();
        for c in &chains {
            match &c.hook {
                Some(h) => {
                    let _ = writeln!(out, "add chain {tn} {} {{ {h} }}", c.name);
                }
                None => {
                    let _ = writeln!(out, "add chain {tn} {}", c.name);
                }
            }
            if !recreate {
                let _ = writeln!(out, "flush chain {tn} {}", c.name);
            }
        }
        for c in &chains {
            write_chain_rules(&mut out, c);
        }
        let mut by_map: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut sorted: Vec<(&ElemKey, &(String, u32))> = elems.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for ((map, key), (value, _)) in sorted {
            by_map.entry(map).or_default().push(elem_text(key, value));
        }
        write_elements(&mut out, "add", by_map);
        if !recreate {
            // Stale objects from the previous state (the table was not recreated).
            let desired_chains: BTreeSet<&str> = chains.iter().map(|c| c.name.as_str()).collect();
            let stale: BTreeSet<&str> = self
                .frags
                .values()
                .flat_map(|(_, f)| f.chains.iter().map(|c| c.name.as_str()))
                .chain(self.shared.keys().map(String::as_str))
                .filter(|n| !desired_chains.contains(n))
                .collect();
            for n in &stale {
                let _ = writeln!(out, "flush chain {tn} {n}");
            }
            for n in &stale {
                let _ = writeln!(out, "delete chain {tn} {n}");
            }
            let mut gone = BTreeSet::new();
            for (_, f) in self.frags.values() {
                for s in &f.sets {
                    if !desired_sets.contains(s.name.as_str()) && gone.insert(s.name.clone()) {
                        let _ = writeln!(out, "delete set {tn} {}", s.name);
                    }
                }
            }
            if let Some(old) = &self.base {
                for s in &old.sets {
                    if !desired_sets.contains(s.name.as_str()) {
                        let kind = if is_map(&s.body) { "map" } else { "set" };
                        let _ = writeln!(out, "delete {kind} {tn} {}", s.name);
                    }
                }
            }
        }
        Plan {
            script: out,
            full: true,
            changed_services: changed,
            commit: Commit::Full { ctx: ctx.clone(), base, frags, elems, shared },
        }
    }

    fn plan_partial(&self, state: &State, ctx: &RenderCtx, hint: Option<&BTreeSet<ServicePortName>>) -> Plan {
        let changes = diff(&self.frags, state, hint, |sp| fragment(sp, ctx));
        // Element reference counts of touched keys, before and after.
        let mut touched: HashMap<ElemKey, Option<(String, u32)>> = HashMap::new();
        let empty = Fragment::default();
        let old_of = |k: &ServicePortName| self.frags.get(k).map(|(_, f)| f).unwrap_or(&empty);
        for (k, new) in &changes {
            let new_f = new.as_ref().map(|(_, f)| f).unwrap_or(&empty);
            for e in old_of(k).elements.iter().chain(new_f.elements.iter()) {
                let key = (e.map, e.key.clone());
                touched.entry(key.clone()).or_insert_with(|| self.elems.get(&key).cloned());
            }
        }
        let mut after = touched.clone();
        for (k, new) in &changes {
            for e in &old_of(k).elements {
                if let Some(Some(v)) = after.get_mut(&(e.map, e.key.clone())) {
                    v.1 = v.1.saturating_sub(1);
                }
            }
            if let Some((_, f)) = new {
                for e in &f.elements {
                    let slot = after.entry((e.map, e.key.clone())).or_insert(None);
                    match slot {
                        Some(v) if v.1 > 0 => v.1 += 1,
                        _ => *slot = Some((e.value.clone(), 1)),
                    }
                }
            }
        }
        let mut del: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut add: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut keys: Vec<&ElemKey> = touched.keys().collect();
        keys.sort();
        for key in keys {
            let before = touched.get(key).cloned().flatten();
            let aft = after.get(key).cloned().flatten().filter(|v| v.1 > 0);
            let (map, k) = (key.0, &key.1);
            match (before, aft) {
                (Some(b), Some(a)) if b.0 == a.0 => {}
                (Some(_), Some(a)) => {
                    del.entry(map).or_default().push(k.clone());
                    add.entry(map).or_default().push(elem_text(k, &a.0));
                }
                (Some(_), None) => del.entry(map).or_default().push(k.clone()),
                (None, Some(a)) => add.entry(map).or_default().push(elem_text(k, &a.0)),
                (None, None) => {}
            }
        }
        // Chains and sets.
        let tn = t();
        let mut old_chains: BTreeMap<&str, &Chain> = BTreeMap::new();
        let mut new_chains: BTreeMap<&str, &Chain> = BTreeMap::new();
        let mut old_sets: BTreeSet<&str> = BTreeSet::new();
        let mut new_sets: BTreeMap<&str, &SetDef> = BTreeMap::new();
        for (k, new) in &changes {
            for c in &old_of(k).chains {
                old_chains.insert(&c.name, c);
            }
            for s in &old_of(k).sets {
                old_sets.insert(&s.name);
            }
            if let Some((_, f)) = new {
                for c in &f.chains {
                    new_chains.insert(&c.name, c);
                }
                for s in &f.sets {
                    new_sets.insert(&s.name, s);
                }
            }
        }
        // Shared chains: reference counts of touched names, before and after.
        let mut shared_after: HashMap<String, (Chain, u32)> = HashMap::new();
        for (k, new) in &changes {
            for c in &old_of(k).shared_chains {
                let e = shared_after
                    .entry(c.name.clone())
                    .or_insert_with(|| self.shared.get(&c.name).cloned().unwrap_or_else(|| (c.clone(), 0)));
                e.1 = e.1.saturating_sub(1);
            }
            if let Some((_, f)) = new {
                for c in &f.shared_chains {
                    let e = shared_after
                        .entry(c.name.clone())
                        .or_insert_with(|| self.shared.get(&c.name).cloned().unwrap_or_else(|| (c.clone(), 0)));
                    e.1 += 1;
                }
            }
        }
        let mut shared_added: Vec<&Chain> = Vec::new();
        let mut shared_removed: Vec<&str> = Vec::new();
        for (name, (c, after)) in &shared_after {
            let before = self.shared.get(name).map_or(0, |x| x.1);
            if before == 0 && *after > 0 {
                shared_added.push(c);
            } else if before > 0 && *after == 0 {
                shared_removed.push(name);
            }
        }
        shared_added.sort_by(|a, b| a.name.cmp(&b.name));
        shared_removed.sort();
        // Sets are per service-port and endpoint, so sets of changed services are theirs alone.
        let mut out = String::new();
        for c in &shared_added {
            let _ = writeln!(out, "add chain {tn} {}", c.name);
        }
        for (name, s) in &new_sets {
            if !old_sets.contains(name) {
                write_set_decl(&mut out, s);
            }
        }
        for name in new_chains.keys() {
            if !old_chains.contains_key(name) {
                let _ = writeln!(out, "add chain {tn} {name}");
            }
        }
        write_elements(&mut out, "delete", del);
        for (name, c) in &old_chains {
            match new_chains.get(name) {
                Some(n) if n.rules == c.rules => {}
                _ => {
                    let _ = writeln!(out, "flush chain {tn} {name}");
                }
            }
        }
        for name in &shared_removed {
            let _ = writeln!(out, "flush chain {tn} {name}");
        }
        for c in &shared_added {
            write_chain_rules(&mut out, c);
        }
        for (name, c) in &new_chains {
            match old_chains.get(name) {
                Some(o) if o.rules == c.rules => {}
                _ => write_chain_rules(&mut out, c),
            }
        }
        write_elements(&mut out, "add", add);
        for name in old_chains.keys() {
            if !new_chains.contains_key(name) {
                let _ = writeln!(out, "delete chain {tn} {name}");
            }
        }
        for name in &shared_removed {
            let _ = writeln!(out, "delete chain {tn} {name}");
        }
        for name in &old_sets {
            if !new_sets.contains_key(name) {
                let _ = writeln!(out, "delete set {tn} {name}");
            }
        }
        let elems = after.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
        Plan {
            script: out,
            full: false,
            changed_services: changes.len(),
            commit: Commit::Partial { changes, elems, shared: shared_after },
        }
    }

    /// Records a plan the kernel accepted.
    pub fn commit(&mut self, plan: Plan) {
        match plan.commit {
            Commit::Full { ctx, base, frags, elems, shared } => {
                self.ctx = Some(ctx);
                self.base = Some(base);
                self.frags = frags;
                self.elems = elems;
                self.shared = shared;
                self.frag_counts = (0, 0, 0);
                for (_, f) in self.frags.values() {
                    let c = counts(f);
                    self.frag_counts = (self.frag_counts.0 + c.0, self.frag_counts.1 + c.1, self.frag_counts.2 + c.2);
                }
            }
            Commit::Partial { changes, elems, shared } => {
                for (k, v) in shared {
                    if v.1 == 0 {
                        self.shared.remove(&k);
                    } else {
                        self.shared.insert(k, v);
                    }
                }
                for (k, new) in changes {
                    let old = match new {
                        Some(v) => {
                            let c = counts(&v.1);
                            self.frag_counts = (self.frag_counts.0 + c.0, self.frag_counts.1 + c.1, self.frag_counts.2 + c.2);
                            self.frags.insert(k, v)
                        }
                        None => self.frags.remove(&k),
                    };
                    if let Some((_, f)) = old {
                        let c = counts(&f);
                        self.frag_counts = (
                            self.frag_counts.0.saturating_sub(c.0),
                            self.frag_counts.1.saturating_sub(c.1),
                            self.frag_counts.2.saturating_sub(c.2),
                        );
                    }
                }
                for (k, v) in elems {
                    if v.1 == 0 {
                        self.elems.remove(&k);
                    } else {
                        self.elems.insert(k, v);
                    }
                }
            }
        }
        self.dirty = false;
    }

    /// Sizes of what is programmed (as last committed).
    pub fn sizes(&self) -> Sizes {
        let mut s = Sizes { elements: self.elems.len(), ..Default::default() };
        if let Some(b) = &self.base {
            s.chains += b.chains.len();
            s.rules += b.chains.iter().map(|c| c.rules.len()).sum::<usize>();
            s.sets += b.sets.len();
        }
        s.chains += self.shared.len() + self.frag_counts.0;
        s.rules += self.shared.values().map(|(c, _)| c.rules.len()).sum::<usize>() + self.frag_counts.1;
        s.sets += self.frag_counts.2;
        s
    }

    /// The last committed service ports (for conntrack cleanup decisions).
    pub fn applied_services(&self) -> impl Iterator<Item = &ServicePort> {
        self.frags.values().map(|(sp, _)| sp)
    }
}

/// (chains, rules, sets) owned by one fragment.
fn counts(f: &Fragment) -> (usize, usize, usize) {
    (f.chains.len(), f.chains.iter().map(|c| c.rules.len()).sum(), f.sets.len())
}

/// Service ports that differ between `applied` and `state` (only `hint` keys when given),
/// with their new rendering (`None` = removed).
pub(crate) fn diff<F: Clone>(
    applied: &BTreeMap<ServicePortName, (ServicePort, F)>,
    state: &State,
    hint: Option<&BTreeSet<ServicePortName>>,
    render: impl Fn(&ServicePort) -> F,
) -> Vec<(ServicePortName, Option<(ServicePort, F)>)> {
    let mut changes = Vec::new();
    let mut one = |k: &ServicePortName, new: Option<&ServicePort>, old: Option<&ServicePort>| match (new, old) {
        (Some(n), Some(o)) if n == o => {}
        (Some(n), _) => changes.push((k.clone(), Some((n.clone(), render(n))))),
        (None, Some(_)) => changes.push((k.clone(), None)),
        (None, None) => {}
    };
    match hint {
        Some(keys) => {
            for k in keys {
                one(k, state.services.get(k), applied.get(k).map(|(sp, _)| sp));
            }
        }
        None => {
            // Merge walk of two sorted maps.
            let mut a = applied.iter().peekable();
            let mut b = state.services.iter().peekable();
            loop {
                match (a.peek(), b.peek()) {
                    (None, None) => break,
                    (Some((ka, (oa, _))), None) => {
                        one(ka, None, Some(oa));
                        a.next();
                    }
                    (None, Some((kb, nb))) => {
                        one(kb, Some(nb), None);
                        b.next();
                    }
                    (Some((ka, (oa, _))), Some((kb, nb))) => match ka.cmp(kb) {
                        std::cmp::Ordering::Less => {
                            one(ka, None, Some(oa));
                            a.next();
                        }
                        std::cmp::Ordering::Greater => {
                            one(kb, Some(nb), None);
                            b.next();
                        }
                        std::cmp::Ordering::Equal => {
                            one(kb, Some(nb), Some(oa));
                            a.next();
                            b.next();
                        }
                    },
                }
            }
        }
    }
    changes
}

/// The script that removes the table (idempotent: `add` first so `delete` cannot fail).
pub fn cleanup_script() -> String {
    format!("add table {0}\ndelete table {0}\n", t())
}
