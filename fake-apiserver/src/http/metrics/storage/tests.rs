//! The cases of metrics-server's pkg/storage tests (node_test.go, pod_test.go).

use super::*;

const SEC: i128 = 1_000_000_000;
const CORE_SECOND: u64 = 1_000_000_000;
const MIB: u64 = 1024 * 1024;
const T0: Time = Time(1_700_000_000 * SEC);

fn at(secs: i128) -> Time {
    Time(T0.0 + secs * SEC)
}

fn point(start: Time, ts: Time, cpu: u64, memory: u64) -> Point {
    Point { start, timestamp: ts, cpu, memory }
}

fn nodes(points: &[(&str, Point)]) -> Batch {
    Batch { nodes: points.iter().map(|(n, p)| (n.to_string(), *p)).collect(), ..Batch::default() }
}

fn pod(containers: &[(&str, Point)]) -> Batch {
    let c: Containers = containers.iter().map(|(n, p)| (n.to_string(), *p)).collect();
    Batch { pods: [(("ns1".to_string(), "pod1".to_string()), c)].into(), ..Batch::default() }
}

fn storage() -> Storage {
    Storage::new(Duration::from_secs(60))
}

fn usage(cpu: u64, memory: u64) -> Usage {
    Usage { cpu_nanocores: cpu, memory_bytes: memory }
}

#[test]
fn node_usage_needs_two_points() {
    let mut s = storage();
    s.store(nodes(&[("node1", point(T0, at(10), 10 * CORE_SECOND, 2 * MIB))]));
    assert!(!s.ready().0);
    assert_eq!(s.node("node1"), None);
    s.store(nodes(&[("node1", point(T0, at(20), 20 * CORE_SECOND, 3 * MIB))]));
    assert!(s.ready().0);
    let m = s.node("node1").unwrap();
    assert_eq!(m.usage, usage(CORE_SECOND, 3 * MIB));
    assert_eq!(m.time, TimeInfo { timestamp: at(20), window: 10_000_000_000 });
    assert_eq!(s.node("node2"), None);
    s.store(nodes(&[]));
    assert_eq!(s.node("node1"), None, "a node missing from a scrape is forgotten");
}

#[test]
fn node_repeated_point_gives_nothing() {
    let mut s = storage();
    let b = nodes(&[("node1", point(T0, at(10), 10 * CORE_SECOND, 2 * MIB))]);
    s.store(b.clone());
    s.store(b);
    assert_eq!(s.node("node1"), None);
    assert!(!s.ready().0);
}

#[test]
fn node_restart_and_decrease_give_nothing() {
    let mut s = storage();
    s.store(nodes(&[("node1", point(T0, at(10), 10 * CORE_SECOND, 2 * MIB))]));
    s.store(nodes(&[("node1", point(at(15), at(20), 5 * CORE_SECOND, 3 * MIB))]));
    assert_eq!(s.node("node1"), None, "restarted");
    let mut s = storage();
    s.store(nodes(&[("node1", point(T0, at(15), 50 * CORE_SECOND, 3 * MIB))]));
    s.store(nodes(&[("node1", point(T0, at(25), 10 * CORE_SECOND, 5 * MIB))]));
    assert_eq!(s.node("node1"), None, "counter went backwards");
}

#[test]
fn node_point_older_than_prev_drops_prev() {
    let mut s = storage();
    s.store(nodes(&[("node1", point(T0, at(15), 10 * CORE_SECOND, 3 * MIB))]));
    s.store(nodes(&[("node1", point(T0, at(35), 50 * CORE_SECOND, 5 * MIB))]));
    s.store(nodes(&[("node1", point(T0, at(5), 6 * CORE_SECOND, 2 * MIB))]));
    assert_eq!(s.node("node1"), None);
}

#[test]
fn node_point_between_prev_and_last_keeps_prev() {
    let mut s = storage();
    s.store(nodes(&[("node1", point(T0, at(15), 10 * CORE_SECOND, MIB))]));
    s.store(nodes(&[("node1", point(T0, at(35), 50 * CORE_SECOND, 4 * MIB))]));
    s.store(nodes(&[("node1", point(T0, at(25), 35 * CORE_SECOND, 2 * MIB))]));
    let m = s.node("node1").unwrap();
    assert_eq!(m.usage, usage(2_500_000_000, 2 * MIB));
    assert_eq!(m.time, TimeInfo { timestamp: at(25), window: 10_000_000_000 });
}

#[test]
fn node_without_start_time() {
    let mut s = storage();
    s.store(nodes(&[("node1", point(Time::ZERO, at(10), 10 * CORE_SECOND, 2 * MIB))]));
    s.store(nodes(&[("node1", point(Time::ZERO, at(20), 20 * CORE_SECOND, 3 * MIB))]));
    assert_eq!(s.node("node1").unwrap().usage, usage(CORE_SECOND, 3 * MIB));
}

#[test]
fn pod_usage_from_two_points() {
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(120), CORE_SECOND, 4 * MIB))]));
    assert_eq!(s.pod("ns1", "pod1"), None);
    s.store(pod(&[("container1", point(T0, at(125), 6 * CORE_SECOND, 5 * MIB))]));
    let m = s.pod("ns1", "pod1").unwrap();
    assert_eq!(m.containers, vec![("container1".to_string(), usage(CORE_SECOND, 5 * MIB))]);
    assert_eq!(m.time, Some(TimeInfo { timestamp: at(125), window: 5_000_000_000 }));
    assert_eq!(s.pod("ns1", "pod2"), None);
    s.store(Batch::default());
    assert_eq!(s.pod("ns1", "pod1"), None);
}

#[test]
fn pod_time_is_the_earliest_containers() {
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(110), CORE_SECOND, 4 * MIB)), ("container2", point(T0, at(115), 2 * CORE_SECOND, 5 * MIB))]));
    s.store(pod(&[("container1", point(T0, at(120), 6 * CORE_SECOND, 6 * MIB)), ("container2", point(T0, at(125), 7 * CORE_SECOND, 7 * MIB))]));
    let m = s.pod("ns1", "pod1").unwrap();
    assert_eq!(m.time, Some(TimeInfo { timestamp: at(120), window: 10_000_000_000 }));
    assert_eq!(m.containers.len(), 2);
}

#[test]
fn pod_container_restart_uses_its_start() {
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(10), CORE_SECOND, 4 * MIB))]));
    s.store(pod(&[("container1", point(at(15), at(25), 5 * CORE_SECOND, 5 * MIB))]));
    let m = s.pod("ns1", "pod1").unwrap();
    assert_eq!(m.time, Some(TimeInfo { timestamp: at(25), window: 10_000_000_000 }));
    assert_eq!(m.containers, vec![("container1".to_string(), usage(500_000_000, 5 * MIB))]);
}

#[test]
fn pod_container_counter_backwards_is_left_out() {
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(110), 20 * CORE_SECOND, 4 * MIB))]));
    s.store(pod(&[("container1", point(T0, at(120), 10 * CORE_SECOND, 4 * MIB))]));
    let m = s.pod("ns1", "pod1").unwrap();
    assert!(m.containers.is_empty());
    assert_eq!(m.time, None);
}

#[test]
fn pod_point_older_than_prev_and_between() {
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(1115), 20 * CORE_SECOND, 4 * MIB))]));
    s.store(pod(&[("container1", point(T0, at(1125), 40 * CORE_SECOND, 4 * MIB))]));
    s.store(pod(&[("container1", point(T0, at(115), 10 * CORE_SECOND, 4 * MIB))]));
    assert_eq!(s.pod("ns1", "pod1"), None);
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(115), 10 * CORE_SECOND, 4 * MIB))]));
    s.store(pod(&[("container1", point(T0, at(125), 50 * CORE_SECOND, 5 * MIB))]));
    s.store(pod(&[("container1", point(T0, at(120), 35 * CORE_SECOND, 5 * MIB))]));
    let m = s.pod("ns1", "pod1").unwrap();
    assert_eq!(m.time, Some(TimeInfo { timestamp: at(120), window: 5_000_000_000 }));
    assert_eq!(m.containers[0].1, usage(5 * CORE_SECOND, 5 * MIB));
}

#[test]
fn fresh_container_gives_usage_in_one_scrape() {
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(120), CORE_SECOND, 4 * MIB))]));
    assert_eq!(s.pod("ns1", "pod1"), None, "long-running: needs a second point");
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(10), 10 * CORE_SECOND, 4 * MIB))]));
    assert!(s.ready().1);
    let m = s.pod("ns1", "pod1").unwrap();
    assert_eq!(m.time, Some(TimeInfo { timestamp: at(10), window: 10_000_000_000 }));
    assert_eq!(m.containers, vec![("container1".to_string(), usage(CORE_SECOND, 4 * MIB))]);
    for ts in [-10, 9] {
        let mut s = storage();
        s.store(pod(&[("container1", point(T0, at(ts), 10 * CORE_SECOND, 4 * MIB))]));
        assert_eq!(s.pod("ns1", "pod1"), None, "started {ts}s before its point");
    }
}

#[test]
fn pod_without_start_time() {
    let mut s = storage();
    s.store(pod(&[("container1", point(Time::ZERO, at(120), CORE_SECOND, 4 * MIB))]));
    assert_eq!(s.pod("ns1", "pod1"), None);
    s.store(pod(&[("container1", point(Time::ZERO, at(125), 6 * CORE_SECOND, 5 * MIB))]));
    assert_eq!(s.pod("ns1", "pod1").unwrap().containers, vec![("container1".to_string(), usage(CORE_SECOND, 5 * MIB))]);
}

#[test]
fn pod_with_a_container_lacking_an_earlier_point_is_absent() {
    let mut s = storage();
    s.store(pod(&[("container1", point(T0, at(110), CORE_SECOND, 4 * MIB))]));
    s.store(pod(&[("container1", point(T0, at(120), 6 * CORE_SECOND, 6 * MIB)), ("container2", point(T0, at(120), 8 * CORE_SECOND, 5 * MIB))]));
    assert_eq!(s.pod("ns1", "pod1"), None);
}

#[test]
fn rate_is_computed_as_go_does() {
    let prev = point(Time::ZERO, Time(1_000), 1_000_000_000, 1);
    let last = point(Time::ZERO, Time(1_000 + 1_500_000_000), 1_000_000_000 + 1_000_000_000, 2);
    let (u, t) = resource_usage(&last, &prev).unwrap();
    assert_eq!(u, usage(666_666_666, 2));
    assert_eq!(t.window, 1_500_000_000);
    assert_eq!(resource_usage(&prev, &prev), Err(UsageError::EmptyWindow));
    assert_eq!(resource_usage(&prev, &last), Err(UsageError::CpuDecreased));
    let restarted = point(Time(5), Time(2_000_000_000), 3_000_000_000, 1);
    assert_eq!(resource_usage(&last, &restarted), Err(UsageError::StartTimeDecreased));
}
