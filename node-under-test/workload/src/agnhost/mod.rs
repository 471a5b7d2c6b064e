//! The agnhost personality: `/agnhost SUBCOMMAND [FLAGS]` (argv0 basename `agnhost` or
//! `agnhost-2`, or `workload agnhost SUBCOMMAND …`) runs upstream's subcommands with upstream's
//! flag spellings, defaults, texts and signal behaviour, so pod specs copied from Kubernetes
//! e2e tests (image `registry.k8s.io/e2e-test-images/agnhost`, Entrypoint `/agnhost`, Cmd
//! `pause`) run unchanged. Upstream: kubernetes/kubernetes `test/images/agnhost/`.
//!
//! Signals follow what upstream's Go binary does as a container's pid 1: a subcommand that does
//! not handle SIGTERM/SIGINT exits 2 on them (the Go runtime's `exit(2)` when pid 1 cannot die
//! of the re-raised signal); `pause` exits 2 on SIGTERM and 1 on SIGINT; `netexec` exits 0 on
//! SIGTERM after `--delay-shutdown` seconds (its `/readyz` says 503 meanwhile);
//! `serve-hostname` exits 0 60 s after SIGTERM. The workload's `--term-delay`/
//! `--ignore-sigterm` (and their environment variables) do not apply here.
//!
//! Exit codes: an unknown or unsupported subcommand or flag exits 2 with a message listing what
//! is supported; a flag upstream would reject exits 1 (cobra's `Error: …`); `--help` exits 0;
//! a `klog.Fatalf` of upstream's (`logs-generator` without lines or duration) exits 255.
pub mod connect;
pub mod dial;
pub mod files;
pub mod flags;
pub mod gofmt;
pub mod logsgen;
pub mod netexec;
pub mod server;
pub mod simple;

use flags::{FlagError, FlagSpec, Flags};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Names under which the binary is agnhost (upstream's image has `/agnhost` and `/agnhost-2`).
pub const PROGRAM_NAMES: &[&str] = &["agnhost", "agnhost-2"];

/// One supported subcommand.
#[derive(Debug, Clone, Copy)]
pub struct Subcommand {
    /// Upstream's name.
    pub name: &'static str,
    /// Its flags (klog's are added to every one).
    pub flags: &'static [FlagSpec],
    /// Positional arguments allowed (None: any).
    pub max_args: Option<usize>,
    /// One line of help.
    pub summary: &'static str,
}

const fn sub(name: &'static str, flags: &'static [FlagSpec], max_args: Option<usize>, summary: &'static str) -> Subcommand {
    Subcommand { name, flags, max_args, summary }
}

/// The subcommands this stand-in implements.
pub const SUBCOMMANDS: &[Subcommand] = &[
    sub("connect", connect::FLAGS, Some(1), "Attempts a TCP connection and returns useful errors"),
    sub("dns-server-list", &[], Some(0), "Prints the host's DNS Server list"),
    sub("dns-suffix", &[], Some(0), "Prints the host's DNS suffix list"),
    sub("entrypoint-tester", &[], None, "Prints the args it's passed and exits"),
    sub("etc-hosts", &[], Some(0), "Prints the host's /etc/hosts file"),
    sub("liveness", &[], Some(0), "Starts a server that is alive for 10 seconds"),
    sub("logs-generator", logsgen::FLAGS, Some(0), "Outputs lines of logs to stdout uniformly"),
    sub("netexec", netexec::FLAGS, Some(0), "Creates HTTP and UDP servers with various endpoints"),
    sub("pause", &[], Some(0), "Pauses the execution"),
    sub("porter", simple::PORTER_FLAGS, Some(0), "Serves requested data on ports specified in ENV variables"),
    sub("serve-hostname", simple::SERVE_HOSTNAME_FLAGS, Some(0), "Serves the hostname"),
    sub("test-webserver", simple::TEST_WEBSERVER_FLAGS, Some(0), "Starts a simple HTTP fileserver"),
];

/// Upstream subcommands this stand-in does not implement (named as such when asked for).
pub const NOT_IMPLEMENTED: &[&str] = &[
    "audit-proxy",
    "crd-conversion-webhook",
    "fake-gitserver",
    "grpc-health-checking",
    "guestbook",
    "inclusterclient",
    "mounttest",
    "net",
    "nettest",
    "no-snat-test",
    "no-snat-test-proxy",
    "port-forward-tester",
    "resource-consumer-controller",
    "stress",
    "tcp-reset",
    "test-service-account-issuer-discovery",
    "webhook",
];

/// Why an agnhost command line cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgnhostError {
    /// Not a subcommand at all.
    #[error("unknown agnhost subcommand {name:?}; supported: {}", supported())]
    UnknownSubcommand {
        /// What was asked for.
        name: String,
    },
    /// An upstream subcommand this stand-in lacks.
    #[error("agnhost subcommand {name:?} is not implemented by nodekit's workload; supported: {}", supported())]
    NotImplemented {
        /// What was asked for.
        name: String,
    },
    /// The subcommand's flags or arguments are wrong.
    #[error("{0}")]
    Flags(#[from] FlagError),
}

impl AgnhostError {
    /// The exit code: 2 for what this stand-in lacks, 1 where upstream's cobra fails too, 0 for help.
    pub fn exit_code(&self) -> i32 {
        match self {
            AgnhostError::Flags(FlagError::Help) => 0,
            AgnhostError::Flags(_) => 1,
            _ => 2,
        }
    }
}

/// The supported subcommand names, comma-separated.
pub fn supported() -> String {
    SUBCOMMANDS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// A parsed agnhost command line.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The subcommand (None: none given, print help).
    pub subcommand: Option<Subcommand>,
    /// Its flags.
    pub flags: Flags,
    /// The whole argv (entrypoint-tester prints it).
    pub argv: Vec<String>,
}

/// The agnhost arguments of `argv` if it asks for agnhost: argv0 `…/agnhost[-2]`, or
/// `workload agnhost …`.
pub fn requested(argv: &[String]) -> Option<&[String]> {
    let base = argv.first()?.rsplit('/').next().unwrap_or_default();
    if PROGRAM_NAMES.contains(&base) {
        return Some(&argv[1..]);
    }
    match argv.get(1) {
        Some(a) if a == "agnhost" => Some(&argv[2..]),
        _ => None,
    }
}

/// Parses the arguments after the program name: klog flags may precede the subcommand.
pub fn parse(args: &[String], argv: &[String]) -> Result<Invocation, AgnhostError> {
    let mut before = Vec::new();
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') && args[i] != "--" {
        let a = &args[i];
        before.push(a.clone());
        let name = flags::normalize(a.trim_start_matches('-').split('=').next().unwrap_or_default());
        let takes_value = flags::KLOG_FLAGS.iter().any(|f| f.name == name && f.kind != flags::Kind::Bool);
        if takes_value && !a.contains('=') && args.get(i + 1).is_some() {
            before.push(args[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    let Some(name) = args.get(i).filter(|a| *a != "--") else {
        flags::parse(&before, &[], Some(0))?;
        return Ok(Invocation { subcommand: None, flags: Flags::default(), argv: argv.to_vec() });
    };
    if name == "help" {
        return Err(FlagError::Help.into());
    }
    let Some(sub) = SUBCOMMANDS.iter().find(|s| s.name == name) else {
        return Err(if NOT_IMPLEMENTED.contains(&name.as_str()) {
            AgnhostError::NotImplemented { name: name.clone() }
        } else {
            AgnhostError::UnknownSubcommand { name: name.clone() }
        });
    };
    before.extend(args[i + 1..].iter().cloned());
    let parsed = flags::parse(&before, sub.flags, sub.max_args)?;
    Ok(Invocation { subcommand: Some(*sub), flags: parsed, argv: argv.to_vec() })
}

/// Usage text: the subcommands, or one subcommand's flags.
pub fn usage(sub: Option<&Subcommand>) -> String {
    match sub {
        Some(s) => format!("{}\n\nUsage:\n  app {} [flags]\n\nFlags:\n{}", s.summary, s.name, flags::usage(s.flags)),
        None => {
            let list: String = SUBCOMMANDS.iter().map(|s| format!("  {:<20} {}\n", s.name, s.summary)).collect();
            format!("agnhost (nodekit workload stand-in)\n\nUsage:\n  app [command]\n\nAvailable Commands:\n{list}")
        }
    }
}

/// Runs agnhost with `args` (after the program name) and returns the exit code.
pub fn run(args: &[String], argv: &[String]) -> i32 {
    gofmt::process_start();
    let inv = match parse(args, argv) {
        Ok(inv) => inv,
        Err(AgnhostError::Flags(FlagError::Help)) => {
            let name = args.iter().find(|a| !a.starts_with('-'));
            println!("{}", usage(name.and_then(|n| SUBCOMMANDS.iter().find(|s| s.name == n.as_str()))));
            return 0;
        }
        Err(e) => {
            eprintln!("Error: {e}");
            return e.exit_code();
        }
    };
    let Some(sub) = inv.subcommand else {
        println!("{}", usage(None));
        return 0;
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agnhost: cannot start runtime: {e}");
            return 1;
        }
    };
    rt.block_on(supervise(sub, inv))
}

/// Set once SIGTERM arrived (netexec's `/readyz` reports it).
static TERMINATING: AtomicBool = AtomicBool::new(false);

/// Whether SIGTERM arrived.
pub fn terminating() -> bool {
    TERMINATING.load(Ordering::SeqCst)
}

/// What a signal does to a subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnSignal {
    /// Exit with this code at once.
    Exit(i32),
    /// Log these lines, keep running for the delay, then exit with the code.
    ExitAfter(Duration, i32, Vec<String>),
}

/// (SIGTERM, SIGINT) behaviour of a subcommand, as upstream's binary shows it as pid 1.
pub fn signal_policy(sub: &str, flags: &Flags) -> (OnSignal, OnSignal) {
    match sub {
        "pause" => (OnSignal::Exit(2), OnSignal::Exit(1)),
        "netexec" => {
            let secs = flags.int("delay-shutdown");
            let lines = if secs > 0 { vec![format!("Sleeping {secs} seconds before terminating...")] } else { vec![] };
            let delay = Duration::from_secs(u64::try_from(secs).unwrap_or(0));
            (OnSignal::ExitAfter(delay, 0, lines), OnSignal::Exit(2))
        }
        "serve-hostname" => {
            let lines = vec!["Shutting down after receiving signal: terminated.".into(), "Awaiting pod deletion.".into()];
            (OnSignal::ExitAfter(Duration::from_secs(60), 0, lines), OnSignal::Exit(2))
        }
        _ => (OnSignal::Exit(2), OnSignal::Exit(2)),
    }
}

async fn dispatch(sub: Subcommand, inv: Invocation) -> crate::Result<i32> {
    let f = &inv.flags;
    match sub.name {
        "connect" => connect::connect(f).await,
        "dns-server-list" => simple::resolv_conf_list("nameserver"),
        "dns-suffix" => simple::resolv_conf_list("search"),
        "entrypoint-tester" => simple::entrypoint_tester(&inv.argv),
        "etc-hosts" => simple::etc_hosts(),
        "liveness" => simple::liveness().await,
        "logs-generator" => logsgen::run(f).await,
        "netexec" => netexec::run(f).await,
        "pause" => simple::pause().await,
        "porter" => simple::porter(f).await,
        "serve-hostname" => simple::serve_hostname(f).await,
        "test-webserver" => simple::test_webserver(f).await,
        other => Err(crate::Error::Usage(AgnhostError::UnknownSubcommand { name: other.into() }.to_string())),
    }
}

async fn apply(policy: OnSignal) -> i32 {
    match policy {
        OnSignal::Exit(code) => code,
        OnSignal::ExitAfter(delay, code, lines) => {
            for l in lines {
                gofmt::log(l);
            }
            tokio::time::sleep(delay).await;
            code
        }
    }
}

/// Runs the subcommand under its signal policy; returns the exit code.
async fn supervise(sub: Subcommand, inv: Invocation) -> i32 {
    let (on_term, on_int) = signal_policy(sub.name, &inv.flags);
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("agnhost: cannot install signal handlers");
            return 1;
        }
    };
    let task = tokio::spawn(dispatch(sub, inv));
    tokio::select! {
        r = task => match r {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => {
                gofmt::log(format!("{}: {e}", sub.name));
                if matches!(e, crate::Error::Usage(_)) { 2 } else { 1 }
            }
            Err(e) => {
                gofmt::log(format!("{}: task failed: {e}", sub.name));
                1
            }
        },
        _ = term.recv() => {
            TERMINATING.store(true, Ordering::SeqCst);
            apply(on_term).await
        }
        _ = int.recv() => apply(on_int).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn p(v: &[&str]) -> Result<Invocation, AgnhostError> {
        let a = argv(v);
        parse(&a, &a)
    }

    #[test]
    fn agnhost_is_recognised_by_name() {
        let a = argv(&["/agnhost", "netexec"]);
        assert_eq!(requested(&a), Some(&a[1..]));
        let a = argv(&["/agnhost-2", "entrypoint-tester"]);
        assert_eq!(requested(&a), Some(&a[1..]));
        let a = argv(&["/workload", "agnhost", "pause"]);
        assert_eq!(requested(&a), Some(&a[2..]));
        assert_eq!(requested(&argv(&["/workload", "netexec"])), None);
        assert_eq!(requested(&argv(&["/pause"])), None);
    }

    #[test]
    fn netexec_flag_forms() {
        for form in [&["netexec", "--http-port=8080"][..], &["netexec", "--http-port", "8080"], &["netexec", "--http_port=8080"]] {
            let inv = p(form).unwrap();
            assert_eq!(inv.subcommand.unwrap().name, "netexec");
            assert_eq!(inv.flags.int("http-port"), 8080);
        }
        let inv = p(&["netexec", "--http-port=9000", "--udp-port=-1", "--delay-shutdown", "5"]).unwrap();
        assert_eq!((inv.flags.int("http-port"), inv.flags.int("udp-port"), inv.flags.int("delay-shutdown")), (9000, -1, 5));
        let inv = p(&["netexec"]).unwrap();
        assert_eq!((inv.flags.int("http-port"), inv.flags.int("udp-port"), inv.flags.int("sctp-port")), (8080, 8081, -1));
        let inv = p(&["netexec", "--http-override=/hostname"]).unwrap();
        assert_eq!(inv.flags.str("http-override"), "/hostname");
    }

    #[test]
    fn serve_hostname_flag_forms() {
        let inv = p(&["serve-hostname", "--port", "9377", "--http=false", "--udp", "--close"]).unwrap();
        let f = &inv.flags;
        assert_eq!((f.int("port"), f.bool("http"), f.bool("udp"), f.bool("tcp"), f.bool("close")), (9377, false, true, false, true));
        let f = p(&["serve-hostname"]).unwrap().flags;
        assert_eq!((f.int("port"), f.bool("http")), (9376, true));
        assert_eq!(p(&["serve-hostname", "--port=9000"]).unwrap().flags.int("port"), 9000);
    }

    #[test]
    fn other_subcommands_and_klog_flags() {
        assert_eq!(p(&["test-webserver"]).unwrap().flags.int("port"), 80);
        assert_eq!(p(&["test-webserver", "--port=8000"]).unwrap().flags.int("port"), 8000);
        assert!(p(&["porter", "--json-response"]).unwrap().flags.bool("json-response"));
        assert_eq!(p(&["liveness"]).unwrap().subcommand.unwrap().name, "liveness");
        assert_eq!(p(&["pause"]).unwrap().subcommand.unwrap().name, "pause");
        assert_eq!(p(&["--v=2", "pause"]).unwrap().subcommand.unwrap().name, "pause");
        assert_eq!(p(&["--v", "2", "netexec", "--http-port=1"]).unwrap().flags.int("http-port"), 1);
        let inv = p(&["entrypoint-tester", "override", "arguments"]).unwrap();
        assert_eq!(inv.flags.positional, argv(&["override", "arguments"]));
        assert!(p(&[]).unwrap().subcommand.is_none());
        for name in ["etc-hosts", "dns-suffix", "dns-server-list"] {
            assert_eq!(p(&[name]).unwrap().subcommand.unwrap().name, name);
            assert_eq!(p(&[name, "extra"]).unwrap_err().exit_code(), 1, "{name} takes no arguments");
        }
        // Every supported subcommand parses with no arguments (their defaults).
        for s in SUBCOMMANDS {
            assert!(p(&[s.name]).is_ok(), "{}", s.name);
        }
    }

    #[test]
    fn unknown_and_unsupported() {
        let e = p(&["bogus"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unknown agnhost subcommand \"bogus\"") && e.to_string().contains("netexec, pause"), "{e}");
        let e = p(&["mounttest", "--fs_type=/x"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not implemented"), "{e}");
        // Subcommands of the workload are not agnhost's.
        assert_eq!(p(&["hostname"]).unwrap_err().exit_code(), 2);
        let e = p(&["netexec", "--bogus"]).unwrap_err();
        assert_eq!((e.exit_code(), e.to_string()), (1, "unknown flag: --bogus".into()));
        assert_eq!(p(&["pause", "extra"]).unwrap_err().exit_code(), 1);
        assert_eq!(p(&["netexec", "--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(p(&["help"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn signal_policies() {
        let none = Flags::default();
        assert_eq!(signal_policy("pause", &none), (OnSignal::Exit(2), OnSignal::Exit(1)));
        assert_eq!(signal_policy("liveness", &none), (OnSignal::Exit(2), OnSignal::Exit(2)));
        let f = p(&["netexec", "--delay-shutdown=3"]).unwrap().flags;
        let (term, _) = signal_policy("netexec", &f);
        assert_eq!(term, OnSignal::ExitAfter(Duration::from_secs(3), 0, vec!["Sleeping 3 seconds before terminating...".into()]));
        let (term, _) = signal_policy("netexec", &p(&["netexec"]).unwrap().flags);
        assert_eq!(term, OnSignal::ExitAfter(Duration::ZERO, 0, vec![]));
    }
}
