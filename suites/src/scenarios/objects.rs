//! Object operations through the API server: apply / create / patch / update / delete, and
//! the eventually-true checks behind `assert` (with `holdFor`) and `error`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client};
use scenario::record::Failure;
use serde_json::Value;

/// How often an eventually-true check looks again.
const POLL: Duration = Duration::from_millis(200);

/// The API of one object's kind, in its namespace (`default` when it names none).
pub async fn api_for(client: &Client, api_version: &str, kind: &str, namespace: Option<&str>) -> anyhow::Result<(Api<DynamicObject>, bool)> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps): (ApiResource, ApiCapabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("the API server does not serve kind {kind} in {api_version}"))?;
    Ok(match caps.scope {
        Scope::Namespaced => (Api::namespaced_with(client.clone(), namespace.unwrap_or("default"), &ar), true),
        Scope::Cluster => (Api::all_with(client.clone(), &ar), false),
    })
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k)).and_then(Value::as_str)
}

/// apiVersion, kind, namespace and name of an object (name may be missing).
fn identity(obj: &Value) -> anyhow::Result<(&str, &str, Option<&str>, Option<&str>)> {
    let api_version = str_at(obj, &["apiVersion"]).context("the object has no apiVersion")?;
    let kind = str_at(obj, &["kind"]).context("the object has no kind")?;
    Ok((api_version, kind, str_at(obj, &["metadata", "namespace"]), str_at(obj, &["metadata", "name"])))
}

/// "Pod default/web" for messages.
pub fn describe(obj: &Value) -> String {
    let kind = str_at(obj, &["kind"]).unwrap_or("?");
    match (str_at(obj, &["metadata", "namespace"]), str_at(obj, &["metadata", "name"])) {
        (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
        (None, Some(n)) => format!("{kind} {n}"),
        (_, None) => match obj.pointer("/metadata/labels") {
            Some(l) => format!("{kind} with labels {l}"),
            None => format!("any {kind}"),
        },
    }
}

fn to_dynamic(obj: &Value) -> anyhow::Result<DynamicObject> {
    serde_json::from_value(obj.clone()).context("the object is not a Kubernetes object")
}

/// What an object operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Apply,
    Create,
    Patch,
    Update,
}

/// Writes each object; the first refusal is the error (with the API server's message).
pub async fn write(client: &Client, objects: &[Value], how: Write) -> anyhow::Result<String> {
    let mut done = Vec::new();
    for obj in objects {
        let (api_version, kind, ns, name) = identity(obj)?;
        let name = name.context("the object has no metadata.name")?;
        let (api, _) = api_for(client, api_version, kind, ns).await?;
        let what = describe(obj);
        let pp = PostParams::default();
        let result = match how {
            Write::Create => api.create(&pp, &to_dynamic(obj)?).await.map(|_| "created"),
            Write::Patch => api.patch(name, &PatchParams::default(), &Patch::Merge(obj)).await.map(|_| "patched"),
            Write::Update => {
                let live = api.get(name).await.with_context(|| format!("{what} to update"))?;
                let mut next = to_dynamic(obj)?;
                next.metadata.resource_version = live.metadata.resource_version;
                api.replace(name, &pp, &next).await.map(|_| "updated")
            }
            Write::Apply => match api.get_opt(name).await? {
                None => api.create(&pp, &to_dynamic(obj)?).await.map(|_| "created"),
                Some(_) => api.patch(name, &PatchParams::default(), &Patch::Merge(obj)).await.map(|_| "configured"),
            },
        };
        let verb = result.with_context(|| what.clone())?;
        done.push(format!("{what} {verb}"));
    }
    Ok(done.join("\n"))
}

/// What a `delete` removes: one named object, or every object of the kind with the labels.
#[derive(Debug, Clone)]
pub struct Target {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Deletes the objects (by name, or every object of the kind matching the labels) and waits
/// until they are gone.
pub async fn delete(client: &Client, targets: &[Target], timeout: Duration) -> anyhow::Result<String> {
    let mut gone = Vec::new();
    let deadline = Instant::now() + timeout;
    for Target { api_version, kind, namespace: ns, name, labels } in targets {
        let (api, _) = api_for(client, api_version, kind, ns.as_deref()).await?;
        let names: Vec<String> = match name {
            Some(n) => vec![n.clone()],
            None => api.list(&ListParams::default().labels(&selector(labels))).await?.items.into_iter().filter_map(|o| o.metadata.name).collect(),
        };
        for n in names {
            match api.delete(&n, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    if name.is_some() {
                        bail!("{kind} {n}: not found");
                    }
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("deleting {kind} {n}")),
            }
            while api.get_opt(&n).await?.is_some() {
                if Instant::now() > deadline {
                    bail!("{kind} {n} was still there {timeout:?} after its deletion");
                }
                tokio::time::sleep(POLL).await;
            }
            gone.push(format!("{kind} {n} deleted"));
        }
    }
    Ok(gone.join("\n"))
}

fn selector(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// The live objects an expected partial object is compared with: the named one, or every
/// object of its kind (with its labels, in its namespace).
pub async fn candidates(client: &Client, expected: &Value) -> anyhow::Result<Vec<Value>> {
    let (api_version, kind, ns, name) = identity(expected)?;
    let (api, _) = api_for(client, api_version, kind, ns).await?;
    let found = match name {
        Some(n) => api.get_opt(n).await?.into_iter().collect::<Vec<_>>(),
        None => {
            let labels: BTreeMap<String, String> = expected
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
                .unwrap_or_default();
            api.list(&ListParams::default().labels(&selector(&labels))).await?.items
        }
    };
    found.into_iter().map(|o| serde_json::to_value(o).context("encoding a live object")).collect()
}

/// The state of one check: matched, or the closest miss (the candidate with the fewest
/// mismatches) as a failure to report.
enum Verdict {
    Match,
    Miss(Failure),
}

async fn verdict(client: &Client, expected: &Value) -> anyhow::Result<Verdict> {
    let live = candidates(client, expected).await?;
    let mut best: Option<(usize, Failure)> = None;
    for actual in &live {
        let misses = scenario::matcher::mismatches(actual, expected)?;
        if misses.is_empty() {
            return Ok(Verdict::Match);
        }
        let message = misses.iter().map(|m| format!("{}: {}", m.path, m.message)).collect::<Vec<_>>().join("; ");
        if best.as_ref().is_none_or(|(n, _)| misses.len() < *n) {
            let failure = Failure {
                message: format!("{}: {message}", describe(expected)),
                expected: Some(expected.clone()),
                actual: Some(actual.clone()),
                diff: Some(scenario::matcher::diff(actual, expected)),
            };
            best = Some((misses.len(), failure));
        }
    }
    Ok(Verdict::Miss(best.map(|(_, f)| f).unwrap_or_else(|| Failure {
        message: format!("{}: not found", describe(expected)),
        expected: Some(expected.clone()),
        actual: None,
        diff: None,
    })))
}

/// `assert`: within `timeout` every expected object matches; with `hold`, each then keeps
/// matching for that long. The failure carries the last object seen and the diff.
pub async fn assert(client: &Client, expected: &[Value], timeout: Duration, hold: Option<Duration>) -> Result<String, Failure> {
    let deadline = Instant::now() + timeout;
    for exp in expected {
        loop {
            match verdict(client, exp).await {
                Ok(Verdict::Match) => break,
                Ok(Verdict::Miss(f)) if Instant::now() >= deadline => return Err(timed_out(f, timeout)),
                Ok(Verdict::Miss(_)) => {}
                Err(e) if Instant::now() >= deadline => return Err(plain(format!("{e:#}"))),
                Err(_) => {}
            }
            tokio::time::sleep(POLL).await;
        }
    }
    let Some(hold) = hold else { return Ok(format!("{} matched", expected.len())) };
    let until = Instant::now() + hold;
    let started = Instant::now();
    while Instant::now() < until {
        for exp in expected {
            match verdict(client, exp).await {
                Ok(Verdict::Match) => {}
                Ok(Verdict::Miss(mut f)) => {
                    f.message = format!("matched, then stopped matching {:.1} s into the {hold:?} it had to hold: {}", started.elapsed().as_secs_f64(), f.message);
                    return Err(f);
                }
                Err(e) => return Err(plain(format!("{e:#}"))),
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(format!("{} matched and held for {hold:?}", expected.len()))
}

/// `error`: within `timeout` no live object matches any of the expected ones.
pub async fn error(client: &Client, expected: &[Value], timeout: Duration) -> Result<String, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut matching = None;
        for exp in expected {
            match verdict(client, exp).await {
                Ok(Verdict::Match) => matching = Some(exp),
                Ok(Verdict::Miss(_)) => {}
                Err(e) => return Err(plain(format!("{e:#}"))),
            }
        }
        match matching {
            None => return Ok("no object matches".into()),
            Some(exp) if Instant::now() >= deadline => {
                return Err(Failure {
                    message: format!("{} still matches after {timeout:?}; it must not", describe(exp)),
                    expected: Some(exp.clone()),
                    actual: None,
                    diff: None,
                });
            }
            Some(_) => tokio::time::sleep(POLL).await,
        }
    }
}

fn timed_out(mut f: Failure, timeout: Duration) -> Failure {
    f.message = format!("no match within {timeout:?}: {}", f.message);
    f
}

pub fn plain(message: String) -> Failure {
    Failure { message, expected: None, actual: None, diff: None }
}

/// Waits until every node is Ready (the scenario's first step starts on a Ready world).
pub async fn nodes_ready(client: &Client, nodes: &[String], timeout: Duration) -> anyhow::Result<()> {
    for n in nodes {
        crate::kube_wait::node_condition(client, n, "Ready", "True", timeout).await?;
    }
    Ok(())
}
