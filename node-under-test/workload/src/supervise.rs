//! Runs a subcommand under the SIGTERM policy and owns process exit (children are killed first).
use crate::args::{Invocation, TermPolicy};
use std::io::Write;
use std::process::Child;
use std::sync::Mutex;
use tokio::signal::unix::{SignalKind, signal};

/// Child processes held by `fork-processes`; killed when the workload exits.
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Registers a child process to be killed at exit.
pub fn hold_child(child: Child) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(child);
    }
}

/// Flushes the standard streams, kills held children and exits with `code`.
pub fn exit(code: i32) -> ! {
    if let Ok(mut children) = CHILDREN.lock() {
        for c in children.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// Runs the invocation; returns its exit code, or 0 after SIGTERM/SIGINT according to the policy.
pub async fn supervise(inv: Invocation) -> i32 {
    let policy = inv.term;
    let name = inv.command.clone();
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("workload: cannot install signal handlers");
            return 1;
        }
    };
    // Said once the policy is in force, so a test can wait for it before it signals: until
    // here a SIGTERM takes the default action (or, in a container, the runtime's init's).
    match policy {
        TermPolicy::Ignore => println!("workload {name}: SIGTERM will be ignored"),
        TermPolicy::Delay(d) => println!("workload {name}: SIGTERM will end it after {d:?}"),
        TermPolicy::Exit => {}
    }
    let mut task = tokio::spawn(crate::cmd::dispatch(inv));
    loop {
        tokio::select! {
            r = &mut task => {
                return match r {
                    Ok(Ok(code)) => code,
                    Ok(Err(e)) => {
                        eprintln!("workload {name}: {e}");
                        if matches!(e, crate::Error::Usage(_)) { 2 } else { 1 }
                    }
                    Err(e) => {
                        eprintln!("workload {name}: task failed: {e}");
                        1
                    }
                };
            }
            _ = term.recv() => {
                match policy {
                    TermPolicy::Ignore => {
                        println!("workload {name}: SIGTERM received, ignored");
                    }
                    TermPolicy::Exit => {
                        println!("workload {name}: SIGTERM received, exiting");
                        return 0;
                    }
                    TermPolicy::Delay(d) => {
                        println!("workload {name}: SIGTERM received, exiting in {d:?}");
                        tokio::time::sleep(d).await;
                        println!("workload {name}: exiting after term delay");
                        return 0;
                    }
                }
            }
            _ = int.recv() => {
                println!("workload {name}: SIGINT received, exiting");
                return 0;
            }
        }
    }
}
