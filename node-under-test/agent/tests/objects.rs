//! How the agent reads the configMaps and secrets its pods use, against the fake API server on
//! loopback: each change detection strategy's requests, what a read answers, and when a watch
//! stops.

mod support;

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use node_agent::config::ChangeDetectionStrategy;
use node_agent::pods::objects::Objects;
use serde_json::json;
use support::wait_for;
use tokio_util::sync::CancellationToken;

const NS: &str = "default";

struct Setup {
    server: fake_apiserver::Handle,
    client: kube::Client,
    _dir: tempfile::TempDir,
}

async fn setup() -> Result<Setup> {
    let server = fake_apiserver::Server::start(fake_apiserver::Config::with_listen("127.0.0.1:0")).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let client = node_agent::agent::client_from_kubeconfig(&kubeconfig).await?;
    Ok(Setup { server, client, _dir: dir })
}

impl Setup {
    fn objects(&self, strategy: ChangeDetectionStrategy) -> Objects {
        Objects::new(Some(self.client.clone()), strategy, Duration::from_secs(5), CancellationToken::new())
    }

    async fn config_map(&self, name: &str, value: &str, immutable: bool) -> Result<()> {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name}, "data": {"k": value}, "immutable": immutable,
        }))?;
        Api::<ConfigMap>::namespaced(self.client.clone(), NS).create(&PostParams::default(), &cm).await?;
        Ok(())
    }

    /// Requests of `verb` to configmaps (or secrets) since the audit was cleared.
    fn requests(&self, verb: &str, resource: &str) -> usize {
        let prefix = format!("/api/v1/namespaces/{NS}/{resource}");
        self.server.audit().iter().filter(|e| e.verb == verb && e.path.starts_with(&prefix)).count()
    }
}

fn value(keys: &Option<std::sync::Arc<node_agent::pods::objects::Keys>>) -> Option<String> {
    keys.as_ref().and_then(|k| k.get("k")).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Key `k` of configMap (or secret) `name` as pod `pod` reads it; `None` when absent.
async fn read(objects: &Objects, pod: &str, secret: bool, name: &str) -> Result<Option<String>> {
    Ok(value(&objects.keys(pod, secret, NS, name).await.map_err(anyhow::Error::msg)?))
}

/// Catches an agent that GETs a configMap for every pod that uses it, or that never sees its
/// changes: under `Watch`, thirty pods reading one object make one list and one watch; an
/// update and a deletion reach later reads; once no pod uses it the watch stops.
#[tokio::test]
async fn watch_shares_one_watch_per_object_and_follows_its_changes() -> Result<()> {
    let s = setup().await?;
    s.config_map("shared", "one", false).await?;
    s.server.clear_audit();
    let objects = s.objects(ChangeDetectionStrategy::Watch);
    let reads = (0..30).map(|i| {
        let o = objects.clone();
        async move { o.keys(&format!("pod-{i}"), false, NS, "shared").await }
    });
    for r in futures::future::join_all(reads).await {
        assert_eq!(value(&r.map_err(anyhow::Error::msg)?).as_deref(), Some("one"));
    }
    assert_eq!(s.requests("get", "configmaps"), 0, "{:?}", s.server.audit());
    assert_eq!(s.requests("list", "configmaps"), 1, "{:?}", s.server.audit());
    assert_eq!(objects.watching(), 1);

    let api = Api::<ConfigMap>::namespaced(s.client.clone(), NS);
    api.patch("shared", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "two"}}))).await?;
    wait_for("the update read", Duration::from_secs(5), || async {
        let v = value(&objects.keys("pod-0", false, NS, "shared").await.ok()?);
        (v.as_deref() == Some("two")).then_some(())
    })
    .await?;
    api.delete("shared", &DeleteParams::default()).await?;
    wait_for("the deletion read", Duration::from_secs(5), || async {
        objects.keys("pod-0", false, NS, "shared").await.ok()?.is_none().then_some(())
    })
    .await?;
    assert_eq!(s.requests("get", "configmaps"), 0, "{:?}", s.server.audit());

    for i in 0..29 {
        objects.release(&format!("pod-{i}"));
    }
    assert_eq!(objects.watching(), 1, "a pod still uses the object");
    objects.release("pod-29");
    assert_eq!(objects.watching(), 0);
    objects.shutdown().await;
    Ok(())
}

/// Catches a watch that is never started anew: an object read again after every pod released
/// it is listed afresh, and a missing object reads as absent (the caller's "not found").
#[tokio::test]
async fn a_released_object_is_watched_anew_and_a_missing_one_is_absent() -> Result<()> {
    let s = setup().await?;
    let objects = s.objects(ChangeDetectionStrategy::Watch);
    assert_eq!(objects.keys("p", true, NS, "nothing").await.map_err(anyhow::Error::msg)?, None);
    objects.release("p");
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "nothing"}, "data": {"k": "c2VjcmV0"}}))?;
    Api::<Secret>::namespaced(s.client.clone(), NS).create(&PostParams::default(), &secret).await?;
    s.server.clear_audit();
    assert_eq!(read(&objects, "q", true, "nothing").await?.as_deref(), Some("secret"));
    assert_eq!(s.requests("list", "secrets"), 1, "{:?}", s.server.audit());
    objects.shutdown().await;
    Ok(())
}

/// Catches a watch kept on an immutable object (upstream stops it): the object is still read.
#[tokio::test]
async fn an_immutable_object_is_not_watched_further() -> Result<()> {
    let s = setup().await?;
    s.config_map("frozen", "ice", true).await?;
    let objects = s.objects(ChangeDetectionStrategy::Watch);
    assert_eq!(read(&objects, "p", false, "frozen").await?.as_deref(), Some("ice"));
    wait_for("the watch to stop", Duration::from_secs(5), || async { (objects.watching() == 0).then_some(()) }).await?;
    assert_eq!(read(&objects, "p2", false, "frozen").await?.as_deref(), Some("ice"));
    objects.shutdown().await;
    Ok(())
}

/// Catches a read that waits forever or fails silently when the object cannot be listed: it
/// fails after upstream's 1 s with upstream's words and the API server's answer.
#[tokio::test]
async fn a_watch_that_cannot_list_fails_the_read_with_the_reason() -> Result<()> {
    let s = setup().await?;
    s.server.add_fault(fake_apiserver::FaultRule {
        verb: Some("list".into()),
        resource: Some("configmaps".into()),
        error_code: Some(403),
        error_message: Some("no access".into()),
        ..Default::default()
    });
    let objects = s.objects(ChangeDetectionStrategy::Watch);
    let started = std::time::Instant::now();
    let err = objects.keys("p", false, NS, "any").await.expect_err("the list is refused");
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert!(err.starts_with("failed to sync configmap cache: timed out waiting for the condition (last error: "), "{err}");
    assert!(err.contains("no access"), "{err}");
    objects.shutdown().await;
    Ok(())
}

/// Catches `Get` and `Cache` reading alike: `Get` asks the API server on every read; `Cache`
/// reuses an answer for its TTL but asks anew when another pod starts using the object.
#[tokio::test]
async fn get_reads_every_time_and_cache_reuses_within_its_ttl() -> Result<()> {
    let s = setup().await?;
    s.config_map("c", "v", false).await?;
    s.server.clear_audit();
    let get = s.objects(ChangeDetectionStrategy::Get);
    for _ in 0..3 {
        assert_eq!(read(&get, "p", false, "c").await?.as_deref(), Some("v"));
    }
    assert_eq!(s.requests("get", "configmaps"), 3);
    s.server.clear_audit();
    let cache = s.objects(ChangeDetectionStrategy::Cache);
    for _ in 0..3 {
        assert_eq!(read(&cache, "p", false, "c").await?.as_deref(), Some("v"));
    }
    assert_eq!(s.requests("get", "configmaps"), 1);
    cache.keys("p2", false, NS, "c").await.map_err(anyhow::Error::msg)?;
    assert_eq!(s.requests("get", "configmaps"), 2);
    assert_eq!(s.requests("list", "configmaps") + s.requests("watch", "configmaps"), 0);
    Ok(())
}
