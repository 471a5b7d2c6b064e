//! The statsapi (k8s.io/kubelet/pkg/apis/stats/v1alpha1) types of `/stats/summary`, with
//! upstream JSON names; unset optional fields are left out, as upstream's `omitempty`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// The whole summary.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Summary {
    pub node: NodeStats,
    pub pods: Vec<PodStats>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    pub start_time: Time,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime: Option<RuntimeStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rlimit: Option<RlimitStats>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStats {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub image_fs: Option<FsStats>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RlimitStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub maxpid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub curproc: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct PodReference {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    pub start_time: Time,
    pub containers: Vec<ContainerStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub network: Option<NetworkStats>,
    #[serde(rename = "ephemeral-storage", skip_serializing_if = "Option::is_none", default)]
    pub ephemeral_storage: Option<FsStats>,
    #[serde(rename = "process_stats", skip_serializing_if = "Option::is_none", default)]
    pub process_stats: Option<ProcessStats>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ProcessStats {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_count: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    pub start_time: Time,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<CpuStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub memory: Option<MemoryStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rootfs: Option<FsStats>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub usage_nano_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub usage_core_nano_seconds: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub working_set_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub page_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub major_page_faults: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStats {
    pub time: Time,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rx_errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tx_errors: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    pub time: Time,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capacity_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inodes_free: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inodes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inodes_used: Option<u64>,
}
