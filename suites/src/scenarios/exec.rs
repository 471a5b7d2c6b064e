//! Operations that run programs with the world's `KUBECONFIG`: `script`, `command`, `wait`
//! (as Chainsaw, through `kubectl wait`), and the collectors `podLogs`, `describe`, `get`,
//! `events`; and the `events` expectation, read through the API.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client};
use scenario::model::{CountRule, EventExpectation, Events, ObjectQuery, PodLogs, WaitFor};
use scenario::record::Failure;
use serde_json::{Value, json};

use super::objects::plain;

/// What a program did.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` with `KUBECONFIG` set, killed after `timeout`.
pub async fn run_program(program: &str, args: &[String], env: &[(String, String)], kubeconfig: &Path, timeout: Duration) -> Result<Ran, Failure> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env("KUBECONFIG", kubeconfig).kill_on_drop(true).stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => Err(plain(format!("{program} did not finish within {timeout:?}"))),
        Ok(Err(e)) => Err(plain(format!("cannot run {program}: {e}"))),
        Ok(Ok(out)) => Ok(Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
    }
}

/// Chainsaw's rule for `script` and `command`: without `check`, a non-zero exit fails; with
/// it, the check (an assertion tree over `$error`, `$stdout`, `$stderr`) decides.
pub fn judge(ran: &Ran, check: Option<&Value>) -> Result<String, Failure> {
    let error = match ran.code {
        Some(0) => Value::Null,
        Some(c) => json!(format!("exit status {c}")),
        None => json!("signal: killed"),
    };
    let shown = format!("{}{}", ran.stdout, if ran.stderr.is_empty() { String::new() } else { format!("\n[stderr]\n{}", ran.stderr) });
    let Some(check) = check else {
        return match error {
            Value::Null => Ok(shown),
            e => Err(plain(format!("{} ({e}); output:\n{shown}", "the program failed"))),
        };
    };
    let bindings = json!({"$error": error, "$stdout": ran.stdout, "$stderr": ran.stderr});
    let check = quote_bindings(check);
    match scenario::matcher::mismatches(&bindings, &check) {
        Ok(m) if m.is_empty() => Ok(shown),
        Ok(m) => Err(Failure {
            message: format!("check failed: {}", m.iter().map(|x| format!("{}: {}", x.path, x.message)).collect::<Vec<_>>().join("; ")),
            expected: Some(check.clone()),
            actual: Some(bindings.clone()),
            diff: Some(scenario::matcher::diff(&bindings, &check)),
        }),
        Err(e) => Err(plain(format!("check: {e}"))),
    }
}

/// Chainsaw binds `$error`, `$stdout`, `$stderr`; here they are fields of the checked
/// document, so `$name` becomes the quoted identifier `"$name"` inside `(expression)` keys.
fn quote_bindings(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let k = if k.starts_with('(') { quote_vars(k) } else { k.clone() };
                    (k, quote_bindings(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(quote_bindings).collect()),
        Value::String(s) if s.starts_with('(') => Value::String(quote_vars(s)),
        other => other.clone(),
    }
}

fn quote_vars(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let n = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.push_str(&format!("\"${}\"", &tail[..n]));
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// `kind.version.group/name` (or with a selector) as kubectl takes it.
fn kubectl_target(q: &ObjectQuery) -> Vec<String> {
    let resource = match q.api_version.split_once('/') {
        Some((group, version)) => format!("{}.{version}.{group}", q.kind),
        None => q.kind.clone(),
    };
    let mut args = Vec::new();
    match (&q.name, &q.selector) {
        (Some(n), _) => args.push(format!("{resource}/{n}")),
        (None, Some(s)) => args.extend([resource, "-l".into(), s.clone()]),
        (None, None) => args.extend([resource, "--all".into()]),
    }
    if let Some(ns) = &q.namespace {
        args.extend(["-n".into(), ns.clone()]);
    }
    args
}

/// `wait` through `kubectl wait`, as Chainsaw does it.
pub fn wait_args(w: &scenario::model::Wait, timeout: Duration) -> Vec<String> {
    let mut args = vec!["wait".to_string()];
    args.extend(kubectl_target(&w.target).into_iter().filter(|a| a != "--all" || w.target.name.is_none()));
    let cond = match &w.for_ {
        WaitFor::Creation => "create".to_string(),
        WaitFor::Deletion => "delete".to_string(),
        WaitFor::Condition { name, value } => format!("condition={name}={value}"),
        WaitFor::JsonPath { path, value } => format!("jsonpath={path}={value}"),
    };
    args.push(format!("--for={cond}"));
    args.push(format!("--timeout={}s", timeout.as_secs().max(1)));
    args
}

pub fn describe_args(q: &ObjectQuery) -> Vec<String> {
    let mut a = vec!["describe".to_string()];
    a.extend(kubectl_target(q).into_iter().filter(|x| x != "--all"));
    a
}

pub fn get_args(q: &ObjectQuery) -> Vec<String> {
    let mut a = vec!["get".to_string()];
    a.extend(kubectl_target(q).into_iter().filter(|x| x != "--all"));
    a.extend(["-o".into(), "yaml".into()]);
    a
}

pub fn logs_args(p: &PodLogs) -> Vec<String> {
    let mut a = vec!["logs".to_string()];
    match (&p.name, &p.selector) {
        (Some(n), _) => a.push(n.clone()),
        (None, Some(s)) => a.extend(["-l".into(), s.clone()]),
        (None, None) => a.extend(["-l".into(), "".into()]),
    }
    if let Some(ns) = &p.namespace {
        a.extend(["-n".into(), ns.clone()]);
    }
    match &p.container {
        Some(c) => a.extend(["-c".into(), c.clone()]),
        None => a.push("--all-containers".into()),
    }
    let tail = p.tail.unwrap_or(if p.name.is_some() { -1 } else { 10 });
    a.push(format!("--tail={tail}"));
    a.push("--prefix".into());
    a
}

pub fn events_args(e: &Events) -> Vec<String> {
    let mut a = vec!["get".to_string(), "events".into()];
    match &e.namespace {
        Some(ns) => a.extend(["-n".into(), ns.clone()]),
        None => a.push("-A".into()),
    }
    if let Some(n) = &e.name {
        a.push(format!("--field-selector=involvedObject.name={n}"));
    }
    if let Some(s) = &e.selector {
        a.extend(["-l".into(), s.clone()]);
    }
    a.push("--sort-by=.lastTimestamp".into());
    a
}

/// How many occurrences the matching Events add up to.
fn count_matching(events: &[Event], x: &EventExpectation) -> u32 {
    events
        .iter()
        .filter(|e| x.reason.as_ref().is_none_or(|r| e.reason.as_deref() == Some(r)))
        .filter(|e| x.type_.as_ref().is_none_or(|t| e.type_.as_deref() == Some(t)))
        .filter(|e| x.message.as_ref().is_none_or(|m| scenario::load::wildcard(m, e.message.as_deref().unwrap_or(""))))
        .filter(|e| x.involved_kind.as_ref().is_none_or(|k| e.involved_object.kind.as_deref() == Some(k)))
        .filter(|e| x.involved_name.as_ref().is_none_or(|n| e.involved_object.name.as_deref() == Some(n)))
        .filter(|e| x.involved_namespace.as_ref().is_none_or(|n| e.involved_object.namespace.as_deref() == Some(n)))
        .map(|e| e.count.unwrap_or(1).max(1) as u32)
        .sum()
}

/// The `events` expectation: within `timeout`, the matching Events add up to the count rule
/// (for "exactly", the count must be that at the end of the wait, and never above it).
pub async fn expect_events(client: &Client, e: &Events, x: &EventExpectation, timeout: Duration) -> Result<String, Failure> {
    let api: Api<Event> = match &e.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let deadline = Instant::now() + timeout;
    loop {
        let events = api.list(&ListParams::default()).await.map_err(|err| plain(format!("listing events: {err}")))?.items;
        let n = count_matching(&events, x);
        let seen = || {
            events
                .iter()
                .map(|e| format!("{} {} {}: {}", e.type_.as_deref().unwrap_or(""), e.reason.as_deref().unwrap_or(""), e.involved_object.name.as_deref().unwrap_or(""), e.message.as_deref().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        match x.count {
            CountRule::AtLeast(want) if n >= want => return Ok(format!("{n} matching events (at least {want})")),
            CountRule::Exactly(want) if n > want => return Err(plain(format!("{n} matching events, more than the {want} expected; events:\n{}", seen()))),
            CountRule::Exactly(want) if n == want && Instant::now() >= deadline => return Ok(format!("{n} matching events")),
            _ if Instant::now() >= deadline => {
                return Err(plain(format!("{n} matching events after {timeout:?}, expected {:?}; events:\n{}", x.count, seen())));
            }
            _ => {}
        }
        let step = match x.count {
            CountRule::Exactly(_) => Duration::from_millis(500),
            CountRule::AtLeast(_) => Duration::from_millis(200),
        };
        tokio::time::sleep(step.min(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10)))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_message_patterns() {
        let glob = scenario::load::wildcard;
        assert!(glob("*probe failed*", "Liveness probe failed: timeout"));
        assert!(glob("Back-off*", "Back-off restarting failed container"));
        assert!(!glob("Back-off*", "x Back-off"));
        assert!(!glob("a*b*c", "a--c--b"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn bindings_are_quoted() {
        assert_eq!(quote_vars("($error == null)"), "(\"$error\" == null)");
        assert_eq!(quote_vars("(contains($stdout, 'x'))"), "(contains(\"$stdout\", 'x'))");
    }

    #[test]
    fn script_checks() {
        let ok = Ran { code: Some(0), stdout: "hello\n".into(), stderr: String::new() };
        let bad = Ran { code: Some(3), stdout: String::new(), stderr: "boom".into() };
        assert!(judge(&ok, None).is_ok());
        assert!(judge(&bad, None).unwrap_err().message.contains("exit status 3"));
        let expect_fail = json!({"($error != null)": true});
        assert!(judge(&bad, Some(&expect_fail)).is_ok());
        assert!(judge(&ok, Some(&expect_fail)).is_err());
        let out = json!({"(contains($stdout, 'hello'))": true});
        assert!(judge(&ok, Some(&out)).is_ok());
    }
}
