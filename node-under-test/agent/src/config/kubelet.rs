//! The `KubeletConfiguration` document: fields, upstream defaults, the accepted-and-ignored
//! upstream fields and the `nodekit:` extension block.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use serde::{Deserialize, Serialize};
use serde::de::IgnoredAny;

use super::server::{AUTHORIZATION_MODES, KubeletAuthentication, KubeletAuthorization};
use super::{ConfigError, GoDuration, Result, default_eviction_hard};

const API_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
const KIND: &str = "KubeletConfiguration";

/// Upstream KubeletConfiguration fields that are accepted and ignored (not implemented here).
pub const IGNORED_FIELDS: &[&str] = &[
    "readOnlyPort", "tlsCipherSuites", "tlsMinVersion", "rotateCertificates",
    "serverTLSBootstrap", "cgroupsPerQOS", "cgroupDriver", "enforceNodeAllocatable",
    "featureGates", "logging", "failSwapOn", "memorySwap", "podPidsLimit", "hairpinMode",
    "enableDebuggingHandlers", "streamingConnectionIdleTimeout", "imageGCHighThresholdPercent",
    "imageGCLowThresholdPercent", "imageMinimumGCAge", "imageMaximumGCAge", "volumeStatsAggPeriod",
    "kubeAPIQPS", "kubeAPIBurst", "eventRecordQPS", "eventBurst", "maxOpenFiles",
    "cpuManagerPolicy", "memoryManagerPolicy", "topologyManagerPolicy", "protectKernelDefaults",
    "makeIPTablesUtilChains", "podsPerCore", "oomScoreAdj", "staticPodURL", "httpCheckFrequency",
    "providerID", "imageServiceEndpoint", "shutdownGracePeriod",
    "shutdownGracePeriodCriticalPods", "volumePluginDir", "serializeImagePulls",
    "maxParallelImagePulls", "registryPullQPS", "registryBurst", "localStorageCapacityIsolation",
    "cpuCFSQuota", "cpuCFSQuotaPeriod", "systemReservedCgroup", "kubeReservedCgroup",
    "kubeletCgroups", "systemCgroups",
];

/// Upstream's `ResourceChangeDetectionStrategy`: how the configMaps and secrets pods use are
/// read (see `pods::objects`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ChangeDetectionStrategy {
    /// One watch per object in use (upstream's default).
    #[default]
    Watch,
    /// A GET reused for a TTL.
    Cache,
    /// A GET on every read.
    Get,
}

impl<'de> Deserialize<'de> for ChangeDetectionStrategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "Watch" => Ok(ChangeDetectionStrategy::Watch),
            "Cache" => Ok(ChangeDetectionStrategy::Cache),
            "Get" => Ok(ChangeDetectionStrategy::Get),
            _ => Err(serde::de::Error::custom(format!(
                "configMapAndSecretChangeDetectionStrategy {text:?} is not one of Watch, Cache, Get"
            ))),
        }
    }
}

/// kubelet.config.k8s.io/v1beta1 KubeletConfiguration, the implemented subset, upstream defaults.
/// Serializes (for /configz) with upstream field names, without apiVersion/kind, the ignored
/// fields and the `nodekit:` block.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct KubeletConfiguration {
    #[serde(skip_serializing)]
    pub api_version: Option<String>,
    #[serde(skip_serializing)]
    pub kind: Option<String>,
    /// Serve the kubelet API (upstream default true).
    pub enable_server: bool,
    /// IP address the kubelet API listens on (upstream default 0.0.0.0).
    pub address: String,
    /// Port of the kubelet API (upstream default 10250; 0 picks a free port).
    pub port: u16,
    /// Serving certificate (PEM); unset: a self-signed one is made at start.
    #[serde(rename = "tlsCertFile")]
    pub tls_cert_file: Option<String>,
    #[serde(rename = "tlsPrivateKeyFile")]
    pub tls_private_key_file: Option<String>,
    pub authentication: KubeletAuthentication,
    pub authorization: KubeletAuthorization,
    /// Directory of static pod manifests (accepted; static pods are not implemented yet).
    pub static_pod_path: Option<String>,
    pub sync_frequency: GoDuration,
    pub file_check_frequency: GoDuration,
    pub node_status_update_frequency: GoDuration,
    pub node_status_report_frequency: GoDuration,
    pub node_lease_duration_seconds: u32,
    pub max_pods: u32,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    /// Root of the pods' cgroups (cgroupfs driver): pods go under `<cgroupRoot>/kubepods/…`.
    pub cgroup_root: Option<String>,
    pub cluster_domain: Option<String>,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Vec<String>,
    pub resolv_conf: String,
    pub healthz_bind_address: String,
    pub healthz_port: u16,
    pub eviction_hard: BTreeMap<String, String>,
    pub eviction_pressure_transition_period: GoDuration,
    /// Soft eviction thresholds (signal → quantity or percentage); each needs a grace period.
    pub eviction_soft: BTreeMap<String, String>,
    /// Grace period of each soft threshold (signal → duration).
    pub eviction_soft_grace_period: BTreeMap<String, String>,
    /// Longest pod grace period (seconds) when evicting for a soft threshold.
    pub eviction_max_pod_grace_period: i32,
    /// Minimum amount to reclaim beyond a threshold once it is met (signal → quantity or %).
    pub eviction_minimum_reclaim: BTreeMap<String, String>,
    pub runtime_request_timeout: GoDuration,
    pub container_runtime_endpoint: Option<String>,
    pub register_node: bool,
    pub register_with_taints: Vec<Taint>,
    pub node_labels: BTreeMap<String, String>,
    pub system_reserved: BTreeMap<String, String>,
    pub kube_reserved: BTreeMap<String, String>,
    /// A container's log file is rotated once it reaches this size (a quantity; upstream
    /// default 10Mi; a negative size turns rotation off).
    pub container_log_max_size: String,
    /// Most log files per container, the live one included (upstream default 5, at least 2).
    pub container_log_max_files: i32,
    /// Containers whose logs are rotated at the same time (upstream default 1).
    pub container_log_max_workers: i32,
    /// How often log sizes are checked (upstream default 10s, at least 3s).
    pub container_log_monitor_interval: GoDuration,
    /// How pods' configMaps and secrets are read: `Watch` (upstream default), `Cache` or `Get`.
    pub config_map_and_secret_change_detection_strategy: ChangeDetectionStrategy,
    /// The non-upstream extension block.
    #[serde(skip_serializing)]
    pub nodekit: Extensions,

    // Accepted and ignored upstream fields (see IGNORED_FIELDS).
    #[serde(skip_serializing)]
    read_only_port: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    tls_cipher_suites: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    tls_min_version: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    rotate_certificates: Option<IgnoredAny>,
    #[serde(rename = "serverTLSBootstrap", skip_serializing)]
    server_tls_bootstrap: Option<IgnoredAny>,
    #[serde(rename = "cgroupsPerQOS", skip_serializing)]
    cgroups_per_qos: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    cgroup_driver: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    enforce_node_allocatable: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    feature_gates: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    logging: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    fail_swap_on: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    memory_swap: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    pod_pids_limit: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    hairpin_mode: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    enable_debugging_handlers: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    streaming_connection_idle_timeout: Option<IgnoredAny>,
    #[serde(rename = "imageGCHighThresholdPercent", skip_serializing)]
    image_gc_high_threshold_percent: Option<IgnoredAny>,
    #[serde(rename = "imageGCLowThresholdPercent", skip_serializing)]
    image_gc_low_threshold_percent: Option<IgnoredAny>,
    #[serde(rename = "imageMinimumGCAge", skip_serializing)]
    image_minimum_gc_age: Option<IgnoredAny>,
    #[serde(rename = "imageMaximumGCAge", skip_serializing)]
    image_maximum_gc_age: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    volume_stats_agg_period: Option<IgnoredAny>,
    #[serde(rename = "kubeAPIQPS", skip_serializing)]
    kube_api_qps: Option<IgnoredAny>,
    #[serde(rename = "kubeAPIBurst", skip_serializing)]
    kube_api_burst: Option<IgnoredAny>,
    #[serde(rename = "eventRecordQPS", skip_serializing)]
    event_record_qps: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    event_burst: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    max_open_files: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    cpu_manager_policy: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    memory_manager_policy: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    topology_manager_policy: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    protect_kernel_defaults: Option<IgnoredAny>,
    #[serde(rename = "makeIPTablesUtilChains", skip_serializing)]
    make_iptables_util_chains: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    pods_per_core: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    oom_score_adj: Option<IgnoredAny>,
    #[serde(rename = "staticPodURL", skip_serializing)]
    static_pod_url: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    http_check_frequency: Option<IgnoredAny>,
    #[serde(rename = "providerID", skip_serializing)]
    provider_id: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    image_service_endpoint: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    shutdown_grace_period: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    shutdown_grace_period_critical_pods: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    volume_plugin_dir: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    serialize_image_pulls: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    max_parallel_image_pulls: Option<IgnoredAny>,
    #[serde(rename = "registryPullQPS", skip_serializing)]
    registry_pull_qps: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    registry_burst: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    local_storage_capacity_isolation: Option<IgnoredAny>,
    #[serde(rename = "cpuCFSQuota", skip_serializing)]
    cpu_cfs_quota: Option<IgnoredAny>,
    #[serde(rename = "cpuCFSQuotaPeriod", skip_serializing)]
    cpu_cfs_quota_period: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    system_reserved_cgroup: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    kube_reserved_cgroup: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    kubelet_cgroups: Option<IgnoredAny>,
    #[serde(skip_serializing)]
    system_cgroups: Option<IgnoredAny>,
}

/// The non-upstream `nodekit:` block: time-compression knobs and test-world conveniences.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Extensions {
    /// First crash-loop back-off delay (upstream: 10s).
    pub container_back_off_base: GoDuration,
    /// Back-off cap (upstream: 300s).
    pub container_back_off_max: GoDuration,
    /// A back-off entry not updated for this long is forgotten (upstream: 2 × max = 10m).
    pub container_back_off_reset_after: GoDuration,
    /// Lease renew interval = nodeLeaseDurationSeconds × this (upstream: 0.25).
    pub node_lease_renew_interval_fraction: f64,
    /// Jitter factor on the renew interval (upstream: 0.04).
    pub node_lease_renew_jitter: f64,
    /// A configured node size instead of the host's (so a world can have a small node).
    pub node_size: NodeSize,
    /// Reported `nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// Timeout of every API request, so a hanging server cannot wedge a loop.
    pub api_request_timeout: GoDuration,
    /// How often the node's sandboxes and containers are relisted (upstream PLEG: 1s).
    pub runtime_relist_period: GoDuration,
    /// No relist for this long makes the PLEG unhealthy: the node NotReady and the sync loop
    /// stalled (upstream relistThreshold: 3m).
    pub pleg_relist_threshold: GoDuration,
    /// Floor of the sync-loop health threshold, which is max(2 × syncFrequency, this)
    /// (upstream: 5m).
    pub sync_loop_health_minimum: GoDuration,
    /// First image-pull back-off delay (upstream: 10s).
    pub image_pull_back_off_base: GoDuration,
    /// Image-pull back-off cap (upstream: 300s).
    pub image_pull_back_off_max: GoDuration,
    /// How often the eviction manager observes signals (upstream housekeeping: 10s).
    pub eviction_monitoring_period: GoDuration,
}

/// Node capacity overrides; unset fields come from the host.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NodeSize {
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub ephemeral_storage: Option<String>,
    /// Process IDs available to pods (pid.available capacity; default: the kernel's pid_max).
    pub pids: Option<u64>,
}

fn secs(s: u64) -> GoDuration {
    GoDuration(std::time::Duration::from_secs(s))
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            container_back_off_base: secs(10),
            container_back_off_max: secs(300),
            container_back_off_reset_after: secs(600),
            node_lease_renew_interval_fraction: 0.25,
            node_lease_renew_jitter: 0.04,
            node_size: NodeSize::default(),
            kubelet_version: "v1.34.2-nodekit".to_string(),
            api_request_timeout: secs(10),
            runtime_relist_period: secs(1),
            pleg_relist_threshold: secs(180),
            sync_loop_health_minimum: secs(300),
            image_pull_back_off_base: secs(10),
            image_pull_back_off_max: secs(300),
            eviction_monitoring_period: secs(10),
        }
    }
}

impl Default for KubeletConfiguration {
    fn default() -> Self {
        KubeletConfiguration {
            api_version: None,
            kind: None,
            enable_server: true,
            address: "0.0.0.0".to_string(),
            port: 10250,
            tls_cert_file: None,
            tls_private_key_file: None,
            authentication: KubeletAuthentication::default(),
            authorization: KubeletAuthorization::default(),
            static_pod_path: None,
            sync_frequency: secs(60),
            file_check_frequency: secs(20),
            node_status_update_frequency: secs(10),
            node_status_report_frequency: secs(300),
            node_lease_duration_seconds: 40,
            max_pods: 110,
            pod_cidr: None,
            cgroup_root: None,
            cluster_domain: None,
            cluster_dns: Vec::new(),
            resolv_conf: "/etc/resolv.conf".to_string(),
            healthz_bind_address: "127.0.0.1".to_string(),
            healthz_port: 10248,
            eviction_hard: default_eviction_hard(),
            eviction_pressure_transition_period: secs(300),
            eviction_soft: BTreeMap::new(),
            eviction_soft_grace_period: BTreeMap::new(),
            eviction_max_pod_grace_period: 0,
            eviction_minimum_reclaim: BTreeMap::new(),
            runtime_request_timeout: secs(120),
            container_runtime_endpoint: None,
            register_node: true,
            register_with_taints: Vec::new(),
            node_labels: BTreeMap::new(),
            system_reserved: BTreeMap::new(),
            kube_reserved: BTreeMap::new(),
            container_log_max_size: "10Mi".to_string(),
            container_log_max_files: 5,
            container_log_max_workers: 1,
            container_log_monitor_interval: secs(10),
            config_map_and_secret_change_detection_strategy: ChangeDetectionStrategy::Watch,
            nodekit: Extensions::default(),
            read_only_port: None,
            tls_cipher_suites: None,
            tls_min_version: None,
            rotate_certificates: None,
            server_tls_bootstrap: None,
            cgroups_per_qos: None,
            cgroup_driver: None,
            enforce_node_allocatable: None,
            feature_gates: None,
            logging: None,
            fail_swap_on: None,
            memory_swap: None,
            pod_pids_limit: None,
            hairpin_mode: None,
            enable_debugging_handlers: None,
            streaming_connection_idle_timeout: None,
            image_gc_high_threshold_percent: None,
            image_gc_low_threshold_percent: None,
            image_minimum_gc_age: None,
            image_maximum_gc_age: None,
            volume_stats_agg_period: None,
            kube_api_qps: None,
            kube_api_burst: None,
            event_record_qps: None,
            event_burst: None,
            max_open_files: None,
            cpu_manager_policy: None,
            memory_manager_policy: None,
            topology_manager_policy: None,
            protect_kernel_defaults: None,
            make_iptables_util_chains: None,
            pods_per_core: None,
            oom_score_adj: None,
            static_pod_url: None,
            http_check_frequency: None,
            provider_id: None,
            image_service_endpoint: None,
            shutdown_grace_period: None,
            shutdown_grace_period_critical_pods: None,
            volume_plugin_dir: None,
            serialize_image_pulls: None,
            max_parallel_image_pulls: None,
            registry_pull_qps: None,
            registry_burst: None,
            local_storage_capacity_isolation: None,
            cpu_cfs_quota: None,
            cpu_cfs_quota_period: None,
            system_reserved_cgroup: None,
            kube_reserved_cgroup: None,
            kubelet_cgroups: None,
            system_cgroups: None,
        }
    }
}

impl KubeletConfiguration {
    /// Checks apiVersion/kind and value ranges.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        match self.api_version.as_deref() {
            Some(API_VERSION) => {}
            other => return invalid(format!("apiVersion must be {API_VERSION:?}, got {other:?}")),
        }
        match self.kind.as_deref() {
            Some(KIND) => {}
            other => return invalid(format!("kind must be {KIND:?}, got {other:?}")),
        }
        if self.node_lease_duration_seconds == 0 {
            return invalid("nodeLeaseDurationSeconds must be > 0".into());
        }
        let f = self.nodekit.node_lease_renew_interval_fraction;
        if !(f > 0.0 && f < 1.0) {
            return invalid(format!("nodekit.nodeLeaseRenewIntervalFraction must be in (0,1), got {f}"));
        }
        let j = self.nodekit.node_lease_renew_jitter;
        if !(0.0..1.0).contains(&j) {
            return invalid(format!("nodekit.nodeLeaseRenewJitter must be in [0,1), got {j}"));
        }
        if self.node_status_update_frequency.0.is_zero() {
            return invalid("nodeStatusUpdateFrequency must be > 0".into());
        }
        if self.node_status_report_frequency.0 < self.node_status_update_frequency.0 {
            return invalid("nodeStatusReportFrequency must be >= nodeStatusUpdateFrequency".into());
        }
        if self.max_pods == 0 {
            return invalid("maxPods must be > 0".into());
        }
        let n = &self.nodekit;
        if n.container_back_off_base.0.is_zero() || n.container_back_off_max.0 < n.container_back_off_base.0 {
            return invalid("nodekit.containerBackOffBase must be > 0 and <= containerBackOffMax".into());
        }
        if n.image_pull_back_off_base.0.is_zero() || n.image_pull_back_off_max.0 < n.image_pull_back_off_base.0 {
            return invalid("nodekit.imagePullBackOffBase must be > 0 and <= imagePullBackOffMax".into());
        }
        if n.api_request_timeout.0.is_zero() || n.runtime_relist_period.0.is_zero() {
            return invalid("nodekit.apiRequestTimeout and runtimeRelistPeriod must be > 0".into());
        }
        for (what, q) in [("cpu", &n.node_size.cpu), ("memory", &n.node_size.memory), ("ephemeralStorage", &n.node_size.ephemeral_storage)] {
            if let Some(q) = q
                && crate::quantity::parse_quantity(q).is_none()
            {
                return invalid(format!("nodekit.nodeSize.{what}: invalid quantity {q:?}"));
            }
        }
        for (k, v) in &self.eviction_hard {
            if !v.ends_with('%') && crate::quantity::parse_quantity(v).is_none() {
                return invalid(format!("evictionHard[{k}]: invalid threshold {v:?}"));
            }
        }
        if let Err(m) = crate::eviction::thresholds::from_config(self) {
            return invalid(m);
        }
        if self.address.parse::<std::net::IpAddr>().is_err() {
            return invalid(format!("address {:?} is not an IP address", self.address));
        }
        if !AUTHORIZATION_MODES.contains(&self.authorization.mode.as_str()) {
            return invalid(format!("authorization.mode {:?} must be one of {AUTHORIZATION_MODES:?}", self.authorization.mode));
        }
        if self.tls_cert_file.is_some() != self.tls_private_key_file.is_some() {
            return invalid("tlsCertFile and tlsPrivateKeyFile must be set together".into());
        }
        if let Err(m) = crate::container_logs::RotatePolicy::from_config(self) {
            return invalid(m);
        }
        if n.eviction_monitoring_period.0.is_zero() {
            return invalid("nodekit.evictionMonitoringPeriod must be > 0".into());
        }
        Ok(())
    }
}
