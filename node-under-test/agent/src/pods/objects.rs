//! Where the agent reads the configMaps and secrets its pods use (volumes, projected sources,
//! `env`/`envFrom`), by upstream's `configMapAndSecretChangeDetectionStrategy`:
//! - `Watch` (upstream's default, `watch_based_manager.go`): one list+watch per referenced
//!   object, named by a `metadata.name` field selector and shared by every pod that uses it. A
//!   read waits up to 1 s for the watch's first list, then answers from it; the watch stops when
//!   the last pod using the object is gone, and once the object is immutable.
//! - `Cache` (`cache_based_manager.go`): a GET whose answer is reused for upstream's default TTL
//!   of one minute, fetched anew whenever another pod starts using the object.
//! - `Get`: a GET on every read.
//!
//! A pod starts using an object with its first read and stops when its worker ends
//! ([`Objects::release`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::ChangeDetectionStrategy;

/// An object's keys and their contents (a configMap's `data` and `binaryData`, a secret's `data`).
pub type Keys = BTreeMap<String, Vec<u8>>;

/// Upstream's `defaultTTL` of the `Cache` strategy. Upstream takes a node's
/// `node.alpha.kubernetes.io/ttl` annotation over it; this agent does not read it.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// How long a read waits for a new watch's first list (upstream polls `hasSynced` for 1 s).
pub const SYNC_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ObjectKey {
    secret: bool,
    namespace: String,
    name: String,
}

impl ObjectKey {
    fn resource(&self) -> &'static str {
        if self.secret { "secret" } else { "configmap" }
    }
}

/// An object as read: its keys and, for a secret, its type.
#[derive(Clone, Debug)]
struct Entry {
    keys: Arc<Keys>,
    secret_type: Option<String>,
}

/// What a watch has seen of its object.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// `None` until the first list is done; then the object, `None` when it does not exist.
    synced: Option<Option<Entry>>,
    /// The watch's last error, shown when a read times out waiting for the first list.
    last_error: Option<String>,
}

struct Item {
    /// The pods (by uid) that use the object.
    pods: HashSet<String>,
    /// `Watch`: what the watch has seen, and the token that stops it.
    seen: Option<(watch::Receiver<Seen>, CancellationToken)>,
    /// `Cache`: the last GET's answer and when it was made.
    fetched: Option<(Instant, Option<Entry>)>,
}

struct Inner {
    client: Option<kube::Client>,
    strategy: ChangeDetectionStrategy,
    timeout: Duration,
    cancel: CancellationToken,
    items: Mutex<HashMap<ObjectKey, Item>>,
    watches: Mutex<JoinSet<()>>,
}

/// The node's configMap and secret reads, shared by every pod worker.
#[derive(Clone)]
pub struct Objects {
    inner: Arc<Inner>,
}

impl Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").field("strategy", &self.inner.strategy).finish_non_exhaustive()
    }
}

impl Objects {
    /// Reads through `client`; watches stop when `cancel` fires or at [`Objects::shutdown`].
    pub fn new(client: Option<kube::Client>, strategy: ChangeDetectionStrategy, timeout: Duration, cancel: CancellationToken) -> Objects {
        Objects {
            inner: Arc::new(Inner {
                client,
                strategy,
                timeout,
                cancel,
                items: Mutex::new(HashMap::new()),
                watches: Mutex::new(JoinSet::new()),
            }),
        }
    }

    /// No API server: every read fails.
    pub fn none() -> Objects {
        Objects::new(None, ChangeDetectionStrategy::Get, Duration::ZERO, CancellationToken::new())
    }

    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Item>> {
        self.inner.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys of configMap (or secret) `ns/name` for pod `pod_uid`, `None` when the object
    /// does not exist; the error is the reason a read failed.
    pub async fn keys(&self, pod_uid: &str, secret: bool, ns: &str, name: &str) -> Result<Option<Arc<Keys>>, String> {
        Ok(self.entry(pod_uid, secret, ns, name).await?.map(|e| e.keys))
    }

    /// Secret `ns/name` for pod `pod_uid`: its keys and its type (`None` when it does not
    /// exist), read as [`Objects::keys`] reads.
    pub async fn secret(&self, pod_uid: &str, ns: &str, name: &str) -> Result<Option<(Arc<Keys>, String)>, String> {
        Ok(self.entry(pod_uid, true, ns, name).await?.map(|e| (e.keys, e.secret_type.unwrap_or_default())))
    }

    async fn entry(&self, pod_uid: &str, secret: bool, ns: &str, name: &str) -> Result<Option<Entry>, String> {
        let Some(client) = &self.inner.client else { return Err("no API server to read from".into()) };
        let key = ObjectKey { secret, namespace: ns.to_string(), name: name.to_string() };
        match self.inner.strategy {
            ChangeDetectionStrategy::Get => get(client, &key, self.inner.timeout).await,
            ChangeDetectionStrategy::Cache => self.cached(client, key, pod_uid).await,
            ChangeDetectionStrategy::Watch => self.watched(client, key, pod_uid).await,
        }
    }

    async fn cached(&self, client: &kube::Client, key: ObjectKey, pod_uid: &str) -> Result<Option<Entry>, String> {
        {
            let mut items = self.items();
            let item = items.entry(key.clone()).or_insert_with(|| Item { pods: HashSet::new(), seen: None, fetched: None });
            // A pod that starts using the object gets it fresh (upstream resets the entry
            // when a reference is added).
            let new_user = item.pods.insert(pod_uid.to_string());
            if let Some((at, keys)) = &item.fetched
                && !new_user
                && at.elapsed() < CACHE_TTL
            {
                return Ok(keys.clone());
            }
        }
        let keys = get(client, &key, self.inner.timeout).await?;
        if let Some(item) = self.items().get_mut(&key) {
            item.fetched = Some((Instant::now(), keys.clone()));
        }
        Ok(keys)
    }

    async fn watched(&self, client: &kube::Client, key: ObjectKey, pod_uid: &str) -> Result<Option<Entry>, String> {
        let mut rx = {
            let mut items = self.items();
            let item = items.entry(key.clone()).or_insert_with(|| Item { pods: HashSet::new(), seen: None, fetched: None });
            item.pods.insert(pod_uid.to_string());
            match &item.seen {
                Some((rx, _)) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(Seen::default());
                    let stop = self.inner.cancel.child_token();
                    self.spawn_watch(client.clone(), &key, tx, stop.clone());
                    item.seen = Some((rx.clone(), stop));
                    rx
                }
            }
        };
        let synced = tokio::time::timeout(SYNC_WAIT, rx.wait_for(|s| s.synced.is_some())).await.map(|r| r.map(|seen| seen.synced.clone().flatten()));
        match synced {
            Ok(Ok(keys)) => Ok(keys),
            Ok(Err(_)) => Err(format!("failed to sync {} cache: the watch stopped", key.resource())),
            Err(_) => {
                let why = rx.borrow().last_error.clone().map(|e| format!(" (last error: {e})")).unwrap_or_default();
                Err(format!("failed to sync {} cache: timed out waiting for the condition{why}", key.resource()))
            }
        }
    }

    fn spawn_watch(&self, client: kube::Client, key: &ObjectKey, tx: watch::Sender<Seen>, stop: CancellationToken) {
        let mut set = self.inner.watches.lock().unwrap_or_else(|e| e.into_inner());
        // Watches stopped since the last spawn are reaped here.
        while set.try_join_next().is_some() {}
        let name = key.name.clone();
        if key.secret {
            set.spawn(watch_object(Api::<Secret>::namespaced(client, &key.namespace), name, secret_entry, tx, stop));
        } else {
            set.spawn(watch_object(Api::<ConfigMap>::namespaced(client, &key.namespace), name, config_map_entry, tx, stop));
        }
    }

    /// Pod `pod_uid` uses no object any more; an object no pod uses is forgotten and its
    /// watch stopped.
    pub fn release(&self, pod_uid: &str) {
        self.items().retain(|_, item| {
            item.pods.remove(pod_uid);
            if item.pods.is_empty()
                && let Some((_, stop)) = &item.seen
            {
                stop.cancel();
            }
            !item.pods.is_empty()
        });
    }

    /// How many objects have a running watch.
    pub fn watching(&self) -> usize {
        self.items().values().filter(|i| i.seen.as_ref().is_some_and(|(rx, stop)| !stop.is_cancelled() && rx.has_changed().is_ok())).count()
    }

    /// Stops every watch and waits for them to end.
    pub async fn shutdown(&self) {
        for item in self.items().values() {
            if let Some((_, stop)) = &item.seen {
                stop.cancel();
            }
        }
        let mut set = std::mem::take(&mut *self.inner.watches.lock().unwrap_or_else(|e| e.into_inner()));
        while set.join_next().await.is_some() {}
    }
}

/// One GET of the object.
async fn get(client: &kube::Client, key: &ObjectKey, timeout: Duration) -> Result<Option<Entry>, String> {
    let op = format!("get {}", key.resource());
    if key.secret {
        let api: Api<Secret> = Api::namespaced(client.clone(), &key.namespace);
        let s = crate::error::api(op, timeout, api.get_opt(&key.name)).await.map_err(|e| e.to_string())?;
        Ok(s.map(|s| secret_entry(s).0))
    } else {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &key.namespace);
        let c = crate::error::api(op, timeout, api.get_opt(&key.name)).await.map_err(|e| e.to_string())?;
        Ok(c.map(|c| config_map_entry(c).0))
    }
}

/// A configMap's keys, and whether it is immutable.
pub fn config_map_keys(c: ConfigMap) -> (Keys, bool) {
    let mut keys: Keys = c.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
    keys.extend(c.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
    (keys, c.immutable == Some(true))
}

/// A secret's keys, and whether it is immutable.
pub fn secret_keys(s: Secret) -> (Keys, bool) {
    (s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(), s.immutable == Some(true))
}

fn config_map_entry(c: ConfigMap) -> (Entry, bool) {
    let (keys, immutable) = config_map_keys(c);
    (Entry { keys: Arc::new(keys), secret_type: None }, immutable)
}

fn secret_entry(s: Secret) -> (Entry, bool) {
    let secret_type = s.type_.clone();
    let (keys, immutable) = secret_keys(s);
    (Entry { keys: Arc::new(keys), secret_type }, immutable)
}

/// Lists and watches object `name` until `stop` fires, publishing what it sees; an immutable
/// object is published once and not watched further.
async fn watch_object<K>(api: Api<K>, name: String, keys_of: fn(K) -> (Entry, bool), tx: watch::Sender<Seen>, stop: CancellationToken)
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    let mut listed: Option<K> = None;
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = stream.next() => ev,
        };
        let Some(ev) = ev else { return };
        let now = match ev {
            Ok(watcher::Event::Init) => {
                listed = None;
                continue;
            }
            Ok(watcher::Event::InitApply(o)) => {
                listed = Some(o);
                continue;
            }
            Ok(watcher::Event::InitDone) => listed.take(),
            Ok(watcher::Event::Apply(o)) => Some(o),
            Ok(watcher::Event::Delete(_)) => None,
            Err(e) => {
                tracing::debug!(object = %name, error = %e, "object watch error");
                tx.send_modify(|s| s.last_error = Some(e.to_string()));
                continue;
            }
        };
        let (keys, immutable) = match now.map(keys_of) {
            Some((e, immutable)) => (Some(e), immutable),
            None => (None, false),
        };
        tx.send_modify(|s| {
            s.synced = Some(keys);
            s.last_error = None;
        });
        if immutable {
            tracing::debug!(object = %name, "stopped watching: the object is immutable");
            return;
        }
    }
}
