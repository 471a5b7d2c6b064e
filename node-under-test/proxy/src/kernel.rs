//! The proxy's kernel boundary: everything the sync engine and the cleanup ask of the kernel,
//! as one narrow trait. [`ToolKernel`] runs the real tools (`nft`, `iptables-save`,
//! `iptables-restore`, `iptables`, `conntrack`) in the namespace the proxy runs in;
//! [`Recording`] records each call and answers from what a test told it, so the engine's
//! decisions (full or partial sync, listing, flushes after a change, recovery from a failed
//! apply) are unit-tested without a namespace.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::conntrack::Flush;
use crate::error::{Error, Result};
use crate::exec::{self, Tools};

/// What the proxy does to the kernel.
pub trait Kernel: Send {
    /// Applies an nftables script as one transaction (`nft -f -`).
    fn nft_apply(&mut self, script: &str) -> Result<()>;
    /// One table's rules in `iptables-save` format.
    fn iptables_save(&mut self, table: &str) -> Result<String>;
    /// Applies an `iptables-restore` script without flushing what it does not name.
    fn iptables_restore(&mut self, script: &str) -> Result<()>;
    /// Deletes one copy of a rule; `false` when there was none (or no such chain or table).
    fn iptables_delete(&mut self, table: &str, chain: &str, spec: &[String]) -> Result<bool>;
    /// Deletes the conntrack entries `flush` names; none to delete is no error.
    fn conntrack_flush(&mut self, flush: &Flush) -> Result<()>;
}

/// The real kernel, through its tools.
#[derive(Clone, Debug, Default)]
pub struct ToolKernel {
    pub tools: Tools,
}

impl ToolKernel {
    pub fn new(tools: Tools) -> ToolKernel {
        ToolKernel { tools }
    }
}

impl Kernel for ToolKernel {
    fn nft_apply(&mut self, script: &str) -> Result<()> {
        exec::run(&self.tools.nft, &["-f", "-"], Some(script)).map(|_| ())
    }

    fn iptables_save(&mut self, table: &str) -> Result<String> {
        exec::run(&self.tools.iptables_save, &["-t", table], None)
    }

    fn iptables_restore(&mut self, script: &str) -> Result<()> {
        exec::run(&self.tools.iptables_restore, &["-w", "--noflush"], Some(script)).map(|_| ())
    }

    fn iptables_delete(&mut self, table: &str, chain: &str, spec: &[String]) -> Result<bool> {
        let mut args: Vec<&str> = vec!["-w", "-t", table, "-D", chain];
        args.extend(spec.iter().map(String::as_str));
        Ok(exec::run_raw(&self.tools.iptables, &args, None)?.success)
    }

    fn conntrack_flush(&mut self, flush: &Flush) -> Result<()> {
        let args = flush.args();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = exec::run_raw(&self.tools.conntrack, &refs, None)?;
        // `conntrack -D` exits 1 with "0 flow entries" when nothing matched.
        if out.stderr.contains("0 flow entries") {
            return Ok(());
        }
        exec::checked(&self.tools.conntrack, &refs, out).map(|_| ())
    }
}

/// One call a [`Recording`] kernel received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    NftApply(String),
    IptablesSave(String),
    IptablesRestore(String),
    IptablesDelete { table: String, chain: String, spec: Vec<String> },
    ConntrackFlush(Flush),
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<Call>,
    listings: BTreeMap<String, String>,
    failing_applies: usize,
    failing_flushes: bool,
}

/// A kernel that records every call; clones share what was recorded, so a test keeps one
/// while the engine owns another. Applies succeed unless [`Recording::fail_applies`] says
/// otherwise; `iptables-save` answers what [`Recording::set_listing`] gave (empty by default);
/// deletes find nothing.
#[derive(Clone, Debug, Default)]
pub struct Recording(Arc<Mutex<Recorded>>);

impl Recording {
    fn state(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.state().calls.clear();
    }

    /// The next `n` nft applies and iptables restores fail.
    pub fn fail_applies(&self, n: usize) {
        self.state().failing_applies = n;
    }

    /// Every conntrack flush fails.
    pub fn fail_flushes(&self) {
        self.state().failing_flushes = true;
    }

    /// What `iptables-save -t table` answers.
    pub fn set_listing(&self, table: &str, text: &str) {
        self.state().listings.insert(table.to_string(), text.to_string());
    }

    fn apply(&self, call: Call) -> Result<()> {
        let mut s = self.state();
        s.calls.push(call);
        if s.failing_applies > 0 {
            s.failing_applies -= 1;
            return Err(refused("apply"));
        }
        Ok(())
    }
}

/// The error of a call a [`Recording`] was told to refuse.
fn refused(cmd: &str) -> Error {
    Error::Command { cmd: cmd.into(), status: "exit 1".into(), stderr: "refused by the recording kernel".into() }
}

impl Kernel for Recording {
    fn nft_apply(&mut self, script: &str) -> Result<()> {
        self.apply(Call::NftApply(script.to_string()))
    }

    fn iptables_save(&mut self, table: &str) -> Result<String> {
        let mut s = self.state();
        s.calls.push(Call::IptablesSave(table.to_string()));
        Ok(s.listings.get(table).cloned().unwrap_or_default())
    }

    fn iptables_restore(&mut self, script: &str) -> Result<()> {
        self.apply(Call::IptablesRestore(script.to_string()))
    }

    fn iptables_delete(&mut self, table: &str, chain: &str, spec: &[String]) -> Result<bool> {
        self.state().calls.push(Call::IptablesDelete { table: table.into(), chain: chain.into(), spec: spec.to_vec() });
        Ok(false)
    }

    fn conntrack_flush(&mut self, flush: &Flush) -> Result<()> {
        let mut s = self.state();
        s.calls.push(Call::ConntrackFlush(flush.clone()));
        if s.failing_flushes {
            return Err(refused("conntrack"));
        }
        Ok(())
    }
}
