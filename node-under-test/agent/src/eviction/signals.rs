//! Eviction signals (memory.available, nodefs.available, nodefs.inodesFree, imagefs.available,
//! pid.available) and how they are observed from node capacity and what pods use (pure).

use std::collections::BTreeMap;

/// An eviction signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    PidAvailable,
}

/// The node condition a signal drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pressure {
    Memory,
    Disk,
    Pid,
}

impl Pressure {
    pub const ALL: [Pressure; 3] = [Pressure::Memory, Pressure::Disk, Pressure::Pid];

    /// The node condition type.
    pub fn condition(self) -> &'static str {
        match self {
            Pressure::Memory => "MemoryPressure",
            Pressure::Disk => "DiskPressure",
            Pressure::Pid => "PIDPressure",
        }
    }

    /// The NoSchedule taint key the condition maps to.
    pub fn taint(self) -> &'static str {
        match self {
            Pressure::Memory => "node.kubernetes.io/memory-pressure",
            Pressure::Disk => "node.kubernetes.io/disk-pressure",
            Pressure::Pid => "node.kubernetes.io/pid-pressure",
        }
    }

    /// (status, reason, message) of the node condition, as upstream writes them.
    pub fn condition_text(self, on: bool) -> (&'static str, &'static str, &'static str) {
        match (self, on) {
            (Pressure::Memory, true) => ("True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
            (Pressure::Memory, false) => ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            (Pressure::Disk, true) => ("True", "KubeletHasDiskPressure", "kubelet has disk pressure"),
            (Pressure::Disk, false) => ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            (Pressure::Pid, true) => ("True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
            (Pressure::Pid, false) => ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        }
    }
}

impl Signal {
    pub const ALL: [Signal; 5] =
        [Signal::MemoryAvailable, Signal::NodeFsAvailable, Signal::NodeFsInodesFree, Signal::ImageFsAvailable, Signal::PidAvailable];

    pub fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::PidAvailable => "pid.available",
        }
    }

    pub fn pressure(self) -> Pressure {
        match self {
            Signal::MemoryAvailable => Pressure::Memory,
            Signal::PidAvailable => Pressure::Pid,
            _ => Pressure::Disk,
        }
    }

    /// The resource named in eviction messages.
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }
}

/// One observed signal: what is available out of what capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    pub available: i64,
    pub capacity: i64,
}

/// Usage of one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub memory: i64,
    pub disk: i64,
    pub inodes: i64,
}

/// Usage of one pod (its containers, plus its volumes and logs on the node's filesystem).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodUsage {
    pub uid: String,
    pub containers: Vec<ContainerUsage>,
    /// Bytes under the agent's root dir for this pod (emptyDir volumes, logs).
    pub local_disk: i64,
    pub local_inodes: i64,
    pub processes: i64,
}

impl PodUsage {
    pub fn memory(&self) -> i64 {
        self.containers.iter().map(|c| c.memory).sum()
    }
    pub fn disk(&self) -> i64 {
        self.containers.iter().map(|c| c.disk).sum::<i64>() + self.local_disk
    }
    pub fn inodes(&self) -> i64 {
        self.containers.iter().map(|c| c.inodes).sum::<i64>() + self.local_inodes
    }
}

/// The node's capacities, and what is used outside pods (zero for a configured node size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    pub memory: i64,
    pub memory_other: i64,
    pub nodefs: i64,
    pub nodefs_other: i64,
    pub inodes: i64,
    /// Inodes free on the node's filesystem (read from it; pods' inodes are already counted).
    pub inodes_free: i64,
    pub pids: i64,
    pub pids_other: i64,
}

/// Observes every signal: capacity minus what the pods use.
pub fn observe(cap: &Capacity, pods: &[PodUsage]) -> BTreeMap<Signal, Observed> {
    let mem: i64 = pods.iter().map(PodUsage::memory).sum();
    let disk: i64 = pods.iter().map(PodUsage::disk).sum();
    let procs: i64 = pods.iter().map(|p| p.processes).sum();
    let fs = Observed { available: (cap.nodefs - cap.nodefs_other - disk).max(0), capacity: cap.nodefs };
    BTreeMap::from([
        (Signal::MemoryAvailable, Observed { available: (cap.memory - cap.memory_other - mem).max(0), capacity: cap.memory }),
        (Signal::NodeFsAvailable, fs),
        (Signal::ImageFsAvailable, fs),
        (Signal::NodeFsInodesFree, Observed { available: cap.inodes_free.max(0), capacity: cap.inodes }),
        (Signal::PidAvailable, Observed { available: (cap.pids - cap.pids_other - procs).max(0), capacity: cap.pids }),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observes_capacity_minus_pod_usage() {
        let cap = Capacity { memory: 1000, nodefs: 5000, inodes: 100, inodes_free: 90, pids: 50, ..Default::default() };
        let pods = vec![
            PodUsage {
                uid: "a".into(),
                containers: vec![ContainerUsage { name: "c".into(), memory: 300, disk: 1000, inodes: 5 }],
                local_disk: 500,
                local_inodes: 3,
                processes: 7,
            },
            PodUsage { uid: "b".into(), containers: vec![ContainerUsage { name: "c".into(), memory: 900, ..Default::default() }], ..Default::default() },
        ];
        let o = observe(&cap, &pods);
        assert_eq!(o[&Signal::MemoryAvailable], Observed { available: 0, capacity: 1000 });
        assert_eq!(o[&Signal::NodeFsAvailable].available, 3500);
        assert_eq!(o[&Signal::NodeFsInodesFree].available, 90);
        let host = Capacity { memory: 1000, memory_other: 400, ..cap };
        assert_eq!(observe(&host, &pods[..1])[&Signal::MemoryAvailable].available, 300);
        assert_eq!(o[&Signal::PidAvailable].available, 43);
        assert_eq!(Signal::parse("pid.available"), Some(Signal::PidAvailable));
        assert_eq!(Signal::NodeFsInodesFree.pressure(), Pressure::Disk);
    }
}
