//! Every conformance run as its own test, for `cargo nextest run`.

fn main() -> std::process::ExitCode {
    suites::entry::main()
}
