//! The cluster's Services, watched for the service environment variables of containers
//! ([`super::service_env`]), as upstream's kubelet keeps a Service informer. Until the first
//! list is in, a container of an API pod cannot be given its variables: its start fails with
//! upstream's message and is retried. A static pod does not wait (it may start before the API
//! server answers): it gets the variables of the Services seen so far, as upstream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::service_env::{ServiceInfo, service_env};

type ByKey = BTreeMap<(String, String), ServiceInfo>;

/// How long a container start waits for the first list of Services.
pub const SYNC_WAIT: Duration = Duration::from_secs(1);

/// Upstream's error while the Service informer has not synced.
pub const NOT_SYNCED: &str = "services have not yet been read at least once, cannot construct envvars";

/// The Services as last seen (`None` before the first list).
#[derive(Clone, Debug)]
pub struct Services {
    rx: watch::Receiver<Option<Arc<ByKey>>>,
}

impl Services {
    /// Watches every Service through `client` until `cancel` fires; the task is the caller's.
    pub fn watch(client: kube::Client, cancel: CancellationToken) -> (Services, impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, rx) = watch::channel(None);
        (Services { rx }, run(Api::all(client), tx, cancel))
    }

    /// A fixed set (tests, or no API server).
    pub fn fixed(services: Vec<ServiceInfo>) -> Services {
        let map = services.into_iter().map(|s| ((s.namespace.clone(), s.name.clone()), s)).collect();
        let (_, rx) = watch::channel(Some(Arc::new(map)));
        Services { rx }
    }

    /// The service variables of a container of a pod in `namespace`; `wait`: for the first
    /// list of Services (an API pod), else with what is known now (a static pod).
    pub async fn env(&self, namespace: &str, enable_service_links: bool, wait: bool) -> Result<BTreeMap<String, String>, String> {
        let mut rx = self.rx.clone();
        if !wait {
            let known = rx.borrow().clone();
            return Ok(known.map(|m| service_env(m.values(), namespace, enable_service_links)).unwrap_or_default());
        }
        // The map is taken out of the channel, so that the watch is not held up meanwhile.
        let known = match tokio::time::timeout(SYNC_WAIT, rx.wait_for(Option::is_some)).await {
            Ok(Ok(map)) => map.clone(),
            _ => return Err(NOT_SYNCED.to_string()),
        };
        Ok(known.map(|m| service_env(m.values(), namespace, enable_service_links)).unwrap_or_default())
    }
}

async fn run(api: Api<Service>, tx: watch::Sender<Option<Arc<ByKey>>>, cancel: CancellationToken) {
    let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut listing: Option<ByKey> = None;
    // A change edits the published map in place; it is copied only while a reader holds it.
    let change = |edit: &dyn Fn(&mut ByKey)| {
        tx.send_modify(|m| {
            if let Some(m) = m.as_mut() {
                edit(Arc::make_mut(m));
            }
        })
    };
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = stream.next() => ev,
        };
        let Some(ev) = ev else { return };
        let key = |s: &Service| (s.metadata.namespace.clone().unwrap_or_default(), s.metadata.name.clone().unwrap_or_default());
        match ev {
            Ok(watcher::Event::Init) => listing = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(s)) => {
                if let (Some(l), Some(info)) = (listing.as_mut(), ServiceInfo::of(&s)) {
                    l.insert(key(&s), info);
                }
            }
            Ok(watcher::Event::InitDone) => {
                tx.send_replace(Some(Arc::new(listing.take().unwrap_or_default())));
            }
            Ok(watcher::Event::Apply(s)) => {
                let (k, info) = (key(&s), ServiceInfo::of(&s));
                change(&|m| match &info {
                    Some(info) => {
                        m.insert(k.clone(), info.clone());
                    }
                    None => {
                        m.remove(&k);
                    }
                });
            }
            Ok(watcher::Event::Delete(s)) => {
                let k = key(&s);
                change(&|m| {
                    m.remove(&k);
                });
            }
            Err(e) => tracing::warn!(error = %e, "service watch error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches an API pod's container started without its service variables before the first
    /// list (upstream refuses), or a static pod held up by it (upstream goes on).
    #[tokio::test(start_paused = true)]
    async fn before_the_first_list_api_pods_fail_and_static_pods_go_on() {
        let (tx, rx) = watch::channel(None);
        let services = Services { rx };
        assert_eq!(services.env("ns", true, true).await.unwrap_err(), NOT_SYNCED);
        assert!(services.env("ns", true, false).await.unwrap().is_empty());
        let api = ServiceInfo { namespace: "default".into(), name: "kubernetes".into(), cluster_ip: "10.96.0.1".into(), ports: vec![("https".into(), 443, "TCP".into())] };
        tx.send_replace(Some(Arc::new([(("default".to_string(), "kubernetes".to_string()), api)].into())));
        assert_eq!(services.env("ns", true, true).await.unwrap()["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
    }
}
