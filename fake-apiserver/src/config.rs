//! Server configuration.

use std::path::PathBuf;
use std::time::Duration;

/// Configuration of one fake API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind in [`crate::Server::start`], e.g. "127.0.0.1:0".
    pub listen: String,
    /// Service ClusterIP range.
    pub service_cidr: String,
    /// Events kept per resource for resuming watches; older resumes get 410 Gone.
    pub watch_history: usize,
    /// Interval between watch bookmarks (when the client allows them).
    pub bookmark_interval: Duration,
    /// Audit entries kept in memory.
    pub audit_limit: usize,
    /// Optional JSON-lines audit file.
    pub audit_file: Option<PathBuf>,
    /// Maximum request body size (bytes); larger bodies get 413.
    pub max_body_bytes: usize,
    /// Run the node lifecycle controller.
    pub node_lifecycle: bool,
    /// Grace period after which a node whose lease was not renewed becomes Unknown (upstream
    /// `--node-monitor-grace-period`, 50 s since v1.32).
    pub node_monitor_grace_period: Duration,
    /// How often the node lifecycle controller checks.
    pub node_monitor_period: Duration,
    /// Nodes per second that get the NoExecute `not-ready` / `unreachable` taint in a healthy
    /// zone (`--node-eviction-rate`, 0.1; burst 1, so the first one at once).
    pub node_eviction_rate: f64,
    /// The same in a partially disrupted zone larger than 50 nodes
    /// (`--secondary-node-eviction-rate`, 0.01).
    pub secondary_node_eviction_rate: f64,
    /// Run the endpointslice controller.
    pub endpointslices: bool,
    /// Run the ReplicaSet and Deployment controllers (`kube-controller-manager`'s
    /// `replicaset-controller` and `deployment-controller`).
    pub workloads: bool,
    /// Run the DaemonSet controller (`daemonset-controller`).
    pub daemonsets: bool,
    /// Run the disruption controller (PodDisruptionBudget status); the eviction API honours
    /// budgets whether or not it runs, as upstream's does.
    pub disruption: bool,
    /// Run the taint eviction controller (`taint-eviction-controller`): pods on nodes with
    /// NoExecute taints they do not tolerate are deleted.
    pub taint_eviction: bool,
    /// Run the pod garbage collector (`pod-garbage-collector`).
    pub pod_gc: bool,
    /// PodGC: time between passes (upstream `gcCheckPeriod`, 20 s).
    pub pod_gc_period: Duration,
    /// PodGC: how long a pod bound to a missing node waits before it is deleted (upstream 40 s).
    pub pod_gc_orphan_quarantine: Duration,
    /// PodGC: terminated pods kept before the oldest are deleted (`--terminated-pod-gc-threshold`,
    /// 12500).
    pub terminated_pod_gc_threshold: usize,
    /// DefaultTolerationSeconds admission: tolerationSeconds of the `not-ready` NoExecute
    /// toleration added to every pod (`--default-not-ready-toleration-seconds`, 300).
    pub default_not_ready_toleration_seconds: i64,
    /// DefaultTolerationSeconds admission: the same for `unreachable`
    /// (`--default-unreachable-toleration-seconds`, 300).
    pub default_unreachable_toleration_seconds: i64,
    /// Run the scheduler (binds pending pods of the default scheduler to nodes).
    pub scheduler: bool,
    /// The scheduler's backoff timings (1 s initial, 10 s max, 5 min unschedulable).
    pub scheduler_timing: crate::controllers::scheduler::Timing,
    /// Events are removed this long after their last write (upstream `--event-ttl`, 1h).
    pub event_ttl: Duration,
    /// Version reported on /version (e.g. "v1.34.2").
    pub version: String,
    /// Serve HTTPS with these files (plain HTTP when `None`).
    pub tls: Option<TlsConfig>,
    /// How this server reaches kubelets (`pods/log`, `pods/exec`, `nodes/proxy`, …): without
    /// it, no client certificate is presented and kubelet certificates are not verified.
    pub kubelet_client: Option<KubeletClientConfig>,
    /// Serve `metrics.k8s.io/v1beta1` (NodeMetrics, PodMetrics) as metrics-server would,
    /// scraping every node's kubelet `/metrics/resource` each `metric_resolution`. Off by
    /// default: the scrape dials each Node's InternalIP, which a test's Node may have made up.
    pub metrics_server: bool,
    /// metrics-server's `--metric-resolution`: the scrape period, which is also the shortest
    /// `window` (15 s as metrics-server is deployed; its binary's default is 60 s).
    pub metric_resolution: Duration,
    /// Authorize every request as kube-apiserver with `--authorization-mode=Node,RBAC` and the
    /// NodeRestriction admission plugin: impersonation checked, refusals answered with 403
    /// `Status`es, decisions in the audit annotations. Off by default: every request is served
    /// (the bootstrap RBAC policy and the review APIs are there either way). Plain-HTTP
    /// requests act as `system:unsecured` in `system:masters`.
    pub authorization: bool,
    /// Upstream's `--token-auth-file`, parsed: a request without a client certificate that
    /// carries `Authorization: Bearer <token>` acts as the token's user; a token the file does
    /// not have is answered 401 `Unauthorized`. `None`: bearer tokens are not looked at.
    pub token_auth: Option<crate::auth::token_file::TokenFile>,
    /// ServiceAccount tokens (always on, as upstream's authenticator): the issuer, audiences,
    /// keys and expiration limits of the `serviceaccounts/token` subresource and of the
    /// bearer tokens it issues.
    pub service_accounts: crate::auth::service_account::ServiceAccountConfig,
    /// Run the serviceaccounts controller: a `default` ServiceAccount in every namespace,
    /// recreated when deleted.
    pub serviceaccounts_controller: bool,
    /// Run the root CA publisher: a `kube-root-ca.crt` ConfigMap in every namespace holding
    /// [`Config::root_ca_file`] (or, without it, the client CA bundle of [`Config::tls`]) as
    /// `ca.crt`. Without TLS nothing is published.
    pub root_ca_publisher: bool,
    /// kube-controller-manager's `--root-ca-file`: the CA bundle published as `ca.crt`.
    pub root_ca_file: Option<PathBuf>,
    /// The ServiceAccount admission plugin: a new pod's account must exist, and (where a root
    /// CA is published for it) every container gets the `kube-api-access-*` volume.
    pub service_account_admission: bool,
    /// Upstream's `--anonymous-auth`: an HTTPS request without a client certificate or bearer
    /// token is `system:anonymous` (on, upstream's default) or refused with 401 (off).
    pub anonymous_auth: bool,
}

/// Upstream's `--kubelet-client-certificate`, `--kubelet-client-key` and
/// `--kubelet-certificate-authority`.
#[derive(Debug, Clone)]
pub struct KubeletClientConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Verify kubelet serving certificates against this CA (not verified when `None`).
    pub ca_file: Option<PathBuf>,
}

/// HTTPS serving: upstream's `--tls-cert-file`, `--tls-private-key-file` and `--client-ca-file`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The serving certificate (PEM; chain after the leaf allowed).
    pub cert_file: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA bundle (PEM) that client certificates are verified against. A client that presents
    /// a certificate this CA did not sign is refused at the handshake; a client without one is
    /// served as `system:anonymous`.
    pub client_ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:6443".into(),
            service_cidr: "10.96.0.0/16".into(),
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(60),
            audit_limit: 100_000,
            audit_file: None,
            max_body_bytes: 3 * 1024 * 1024,
            node_lifecycle: true,
            node_monitor_grace_period: Duration::from_secs(50),
            node_monitor_period: Duration::from_secs(5),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            endpointslices: true,
            workloads: true,
            daemonsets: true,
            disruption: true,
            taint_eviction: true,
            pod_gc: true,
            pod_gc_period: Duration::from_secs(20),
            pod_gc_orphan_quarantine: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12_500,
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
            token_auth: None,
            scheduler: true,
            scheduler_timing: crate::controllers::scheduler::Timing::default(),
            event_ttl: Duration::from_secs(3600),
            version: "v1.34.2".into(),
            tls: None,
            kubelet_client: None,
            metrics_server: false,
            metric_resolution: Duration::from_secs(15),
            authorization: false,
            service_accounts: crate::auth::service_account::ServiceAccountConfig::default(),
            serviceaccounts_controller: true,
            root_ca_publisher: true,
            root_ca_file: None,
            service_account_admission: true,
            anonymous_auth: true,
        }
    }
}

impl Config {
    /// A configuration listening on `addr` with everything else default.
    pub fn with_listen(addr: impl Into<String>) -> Config {
        Config { listen: addr.into(), ..Config::default() }
    }
}
