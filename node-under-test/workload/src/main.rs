//! Thin entry point of the `workload` binary; everything lives in the library.
fn main() {
    let code = workload::run(std::env::args().collect());
    workload::supervise::exit(code);
}
