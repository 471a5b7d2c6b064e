//! `nodekit`: run the conformance catalog against a node target, list it, or benchmark the kit.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Some(code) = suites::runner::child_entry() {
        return code;
    }
    if let Some(code) = suites::scenarios::child::child_entry() {
        return code;
    }
    if let Some(code) = suites::live::world::child_entry() {
        return code;
    }
    if let Some(code) = suites::live::janitor::child_entry() {
        return code;
    }
    harness::bench::hook();
    suites::cli::main()
}
