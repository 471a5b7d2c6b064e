//! metrics-server's storage (`pkg/storage`): the last two points of every node and container,
//! and the usage between them. A node's or container's CPU usage is the rate of its cumulative
//! counter between the two points; memory is the last working set; `timestamp` is the last
//! point's and `window` the time between the two. One scrape alone gives nothing, except for a
//! container that started less than one resolution (and at least 10 s) before its point, whose
//! start (counter 0) stands in for the missing earlier point.

use std::collections::BTreeMap;
use std::time::Duration;

/// A point in time in nanoseconds since the Unix epoch. [`Time::ZERO`] is Go's zero
/// `time.Time` (January 1 of year 1), which is before every time a kubelet reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i128);

impl Time {
    pub const ZERO: Time = Time(-62_135_596_800 * 1_000_000_000);

    pub fn now() -> Time {
        Time(jiff::Timestamp::now().as_nanosecond())
    }
    /// A Prometheus sample timestamp (milliseconds since the epoch).
    pub fn from_millis(ms: i64) -> Time {
        Time(i128::from(ms) * 1_000_000)
    }
    /// Whole milliseconds since the epoch (Prometheus' `timestamp.FromTime`).
    pub fn millis(self) -> i64 {
        i64::try_from(self.0.div_euclid(1_000_000)).unwrap_or(i64::MAX)
    }
    /// `self - earlier` as a Go `time.Duration` (saturating at its bounds).
    pub fn since(self, earlier: Time) -> i64 {
        let d = self.0 - earlier.0;
        i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
    }
}

/// One measurement of a node or container (upstream's `MetricsPoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// When the container started ([`Time::ZERO`] when unknown, and always for nodes).
    pub start: Time,
    /// When the point was measured.
    pub timestamp: Time,
    /// Cumulative CPU time since `start`, in core-nanoseconds.
    pub cpu: u64,
    /// Working set in bytes.
    pub memory: u64,
}

impl Point {
    /// The point nothing was recorded in (Go's zero `MetricsPoint`).
    pub const EMPTY: Point = Point { start: Time::ZERO, timestamp: Time::ZERO, cpu: 0, memory: 0 };
}

/// A pod's key: (namespace, name).
pub type PodKey = (String, String);
/// The points of one pod's containers, by container name.
pub type Containers = BTreeMap<String, Point>;

/// One scrape's points (upstream's `MetricsBatch`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub nodes: BTreeMap<String, Point>,
    pub pods: BTreeMap<PodKey, Containers>,
}

/// Usage computed from two points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

/// When a usage was measured: the later point's time and the time between the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeInfo {
    pub timestamp: Time,
    /// Nanoseconds (a Go `time.Duration`).
    pub window: i64,
}

/// Why no usage comes from two points (upstream logs these and leaves the object out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("unexpected decrease in startTime of node/container")]
    StartTimeDecreased,
    #[error("unexpected decrease in cumulative CPU usage value")]
    CpuDecreased,
    #[error("the two points have the same timestamp")]
    EmptyWindow,
}

/// Upstream's `resourceUsage`: CPU is the counter's increase over the window in nanocores
/// (computed in floating point and truncated, as Go does), memory the last working set.
pub fn resource_usage(last: &Point, prev: &Point) -> Result<(Usage, TimeInfo), UsageError> {
    if last.start < prev.start {
        return Err(UsageError::StartTimeDecreased);
    }
    if last.cpu < prev.cpu {
        return Err(UsageError::CpuDecreased);
    }
    let window = last.timestamp.since(prev.timestamp);
    if window == 0 {
        return Err(UsageError::EmptyWindow);
    }
    // Go's Duration.Seconds(): whole seconds plus the fraction.
    let seconds = (window / 1_000_000_000) as f64 + (window % 1_000_000_000) as f64 / 1e9;
    let cpu = ((last.cpu - prev.cpu) as f64 / seconds) as u64;
    Ok((Usage { cpu_nanocores: cpu, memory_bytes: last.memory }, TimeInfo { timestamp: last.timestamp, window }))
}

/// A node's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSample {
    pub usage: Usage,
    pub time: TimeInfo,
}

/// A pod's usage: its containers (by name) and the earliest container's time, `None` when
/// no container gave a usage (upstream then writes a zero time and window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSample {
    pub containers: Vec<(String, Usage)>,
    pub time: Option<TimeInfo>,
}

/// How long before its point a container must have started for its start to count as the
/// earlier point (upstream's `freshContainerMinMetricsResolution`).
const FRESH_CONTAINER_MIN: i64 = 10_000_000_000;

/// The last two points of every node and container.
#[derive(Debug, Default)]
pub struct Storage {
    /// The scrape period (metrics-server's `--metric-resolution`).
    resolution: Duration,
    nodes_last: BTreeMap<String, Point>,
    nodes_prev: BTreeMap<String, Point>,
    pods_last: BTreeMap<PodKey, Containers>,
    pods_prev: BTreeMap<PodKey, Containers>,
}

impl Storage {
    pub fn new(resolution: Duration) -> Storage {
        Storage { resolution, ..Storage::default() }
    }

    /// Keeps one scrape: every node and container not in it is forgotten.
    pub fn store(&mut self, batch: Batch) {
        self.store_nodes(batch.nodes);
        self.store_pods(batch.pods);
    }

    /// Whether some node, and some container, has two points (upstream's readiness).
    pub fn ready(&self) -> (bool, bool) {
        (!self.nodes_prev.is_empty(), !self.pods_prev.is_empty())
    }

    fn store_nodes(&mut self, nodes: BTreeMap<String, Point>) {
        let mut prev = BTreeMap::new();
        for (name, new) in &nodes {
            let Some(last) = self.nodes_last.get(name) else { continue };
            if new.timestamp > last.timestamp {
                prev.insert(name.clone(), *last);
            } else if let Some(p) = self.nodes_prev.get(name) {
                if p.timestamp < new.timestamp {
                    prev.insert(name.clone(), *p);
                } else {
                    tracing::debug!(node = %name, "new node metrics point is older than the stored previous one, dropping the previous");
                }
            }
        }
        self.nodes_last = nodes;
        self.nodes_prev = prev;
    }

    /// The earlier point to keep for a container's `new` point, if any.
    fn container_prev(&self, key: &PodKey, container: &str, new: &Point) -> Option<Point> {
        let age = new.timestamp.since(new.start);
        let resolution = i64::try_from(self.resolution.as_nanos()).unwrap_or(i64::MAX);
        if new.start < new.timestamp && age < resolution && age >= FRESH_CONTAINER_MIN {
            // A fresh container: its start, with nothing used yet, is the earlier point.
            return Some(Point { timestamp: new.start, cpu: 0, ..*new });
        }
        let last = self.pods_last.get(key)?.get(container)?;
        // A container that restarted since the last point starts over.
        if new.start >= last.timestamp {
            return None;
        }
        if new.timestamp > last.timestamp {
            return Some(*last);
        }
        let prev = self.pods_prev.get(key)?.get(container)?;
        if prev.timestamp < new.timestamp {
            return Some(*prev);
        }
        tracing::debug!(pod = %format!("{}/{}", key.0, key.1), container, "new container metrics point is older than the stored previous one, dropping the previous");
        None
    }

    fn store_pods(&mut self, pods: BTreeMap<PodKey, Containers>) {
        let mut prev_pods = BTreeMap::new();
        for (key, containers) in &pods {
            let prev: Containers =
                containers.iter().filter_map(|(name, new)| Some((name.clone(), self.container_prev(key, name, new)?))).collect();
            if !prev.is_empty() {
                prev_pods.insert(key.clone(), prev);
            }
        }
        self.pods_last = pods;
        self.pods_prev = prev_pods;
    }

    /// Node `name`'s usage, if it has two usable points.
    pub fn node(&self, name: &str) -> Option<NodeSample> {
        let (last, prev) = (self.nodes_last.get(name)?, self.nodes_prev.get(name)?);
        match resource_usage(last, prev) {
            Ok((usage, time)) => Some(NodeSample { usage, time }),
            Err(e) => {
                tracing::warn!(node = name, "skipping node usage metric: {e}");
                None
            }
        }
    }

    /// Pod `namespace/name`'s usage: absent unless every container of its last point has an
    /// earlier one; a container whose usage cannot be computed (its counter went backwards,
    /// …) is left out of it.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodSample> {
        let key = (namespace.to_string(), name.to_string());
        let (last, prev) = (self.pods_last.get(&key)?, self.pods_prev.get(&key)?);
        let mut containers = Vec::with_capacity(last.len());
        let mut earliest: Option<TimeInfo> = None;
        for (container, l) in last {
            let p = prev.get(container)?;
            match resource_usage(l, p) {
                Ok((usage, time)) => {
                    containers.push((container.clone(), usage));
                    if earliest.is_none_or(|e| e.timestamp > time.timestamp) {
                        earliest = Some(time);
                    }
                }
                Err(e) => tracing::warn!(pod = %format!("{namespace}/{name}"), container, "skipping container usage metric: {e}"),
            }
        }
        Some(PodSample { containers, time: earliest })
    }
}

#[cfg(test)]
mod tests;
