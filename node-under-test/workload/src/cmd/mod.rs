//! Subcommand table and dispatch.
use crate::args::Invocation;
use crate::Result;

mod basic;
mod https;
mod net;
mod resources;

/// Usage text listing every subcommand.
pub const USAGE: &str = "\
usage: workload [--term-delay D] [--ignore-sigterm] SUBCOMMAND [ARGS]
  pause                                   sleep until signalled
  serve-hostname [--port 9376]            HTTP: every path answers the hostname
  netexec [--http-port 8080] [--udp-port P]
                                          HTTP /healthz /hostname /echo?msg= /exit?code=
                                          /redirect?loc= /shell?cmd= /; UDP: hostname, echo X, clientip
  liveness [--fail-after 10s] [--port 8080]
                                          HTTP 200 until D has passed, 500 afterwards
  grpc-health [--port 5000] [--fail-after D] [--service NAME]
                                          grpc.health.v1 Health (Check, Watch)
  exit [--code 0] [--after D]             exit with the code (after D)
  check-file PATH [--contains TEXT]       exit 0 if PATH exists (and holds TEXT), else 1
  check-port PORT [--get PATH]            exit 0 if tcp 127.0.0.1:PORT accepts a connection, else 1;
                                          with --get, send GET PATH (HTTP/1.0) and print the answer
  https-get URL [--ca FILE] [--bearer-file FILE] [--method M] [--body TEXT]
                                          one HTTPS request; prints HTTP <status> and the body
  touch PATH | rm PATH                    create / remove a file
  cat [PATH|-]... | env | hostname        print files (or stdin) / the environment / the hostname
  agnhost SUBCOMMAND [FLAGS]              upstream agnhost's subcommands (also as /agnhost …)
  id                                      print the effective uid, gid and supplementary groups
  print [--stdout TEXT] [--stderr TEXT] [--partial TEXT] [--then-sleep D]
                                          write lines (partial: no newline) and exit 0
  tty-size                                print `rows R cols C` of the terminal on stdin, again
                                          at each resize (SIGWINCH), until stdin ends
  alloc-memory --mib N [--step-mib M] [--interval D] [--ready-port P]
                                          allocate and touch N MiB in steps, then hold
                                          (and listen on tcp P once all is allocated)
  fill-disk --path P --mib N              write N MiB to P, then hold
  fork-processes --count N                start N child processes and hold them
  tcp-echo [--port 7] | udp-echo [--port 7]
                                          echo servers
  sleep D                                 sleep for D, then exit 0";

const COMMANDS: &[&str] = &[
    "pause",
    "serve-hostname",
    "netexec",
    "liveness",
    "grpc-health",
    "exit",
    "check-file",
    "check-port",
    "https-get",
    "touch",
    "rm",
    "cat",
    "env",
    "hostname",
    "id",
    "print",
    "tty-size",
    "alloc-memory",
    "fill-disk",
    "fork-processes",
    "tcp-echo",
    "udp-echo",
    "sleep",
];

/// Whether `name` is a subcommand.
pub fn is_command(name: &str) -> bool {
    COMMANDS.contains(&name)
}

/// Runs the subcommand and returns its exit code.
pub async fn dispatch(inv: Invocation) -> Result<i32> {
    match inv.command.as_str() {
        "pause" => basic::pause().await,
        "serve-hostname" => crate::http::serve_hostname(&inv).await,
        "netexec" => crate::http::netexec(&inv).await,
        "liveness" => crate::http::liveness(&inv).await,
        "grpc-health" => net::grpc_health(&inv).await,
        "exit" => basic::exit(&inv).await,
        "check-file" => basic::check_file(&inv),
        "check-port" => net::check_port(&inv).await,
        "https-get" => https::https_get(&inv).await,
        "touch" => basic::touch(&inv),
        "rm" => basic::rm(&inv),
        "cat" => basic::cat(&inv),
        "env" => basic::env(),
        "hostname" => basic::hostname_cmd(),
        "id" => basic::id(),
        "print" => basic::print(&inv).await,
        "tty-size" => basic::tty_size().await,
        "alloc-memory" => resources::alloc_memory(&inv).await,
        "fill-disk" => resources::fill_disk(&inv).await,
        "fork-processes" => resources::fork_processes(&inv).await,
        "tcp-echo" => net::tcp_echo(&inv).await,
        "udp-echo" => net::udp_echo(&inv).await,
        "sleep" => basic::sleep(&inv).await,
        other => Err(crate::Error::Usage(format!("unknown subcommand {other:?}"))),
    }
}

/// The hostname of the current UTS namespace.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Sleeps forever.
pub async fn hold() -> ! {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}
