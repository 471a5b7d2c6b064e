use super::*;

fn v(x: u64) -> Option<api::UInt64Value> {
    Some(api::UInt64Value { value: x })
}

fn cstats(id: &str, name: &str, cpu_ns: u64, ws: u64) -> api::ContainerStats {
    api::ContainerStats {
        attributes: Some(api::ContainerAttributes {
            id: id.into(),
            metadata: Some(api::ContainerMetadata { name: name.into(), attempt: 0 }),
            ..Default::default()
        }),
        cpu: Some(api::CpuUsage { timestamp: 2_000_000_000, usage_core_nano_seconds: v(cpu_ns), usage_nano_cores: v(1000) }),
        memory: Some(api::MemoryUsage { timestamp: 2_000_000_000, working_set_bytes: v(ws), usage_bytes: v(ws + 1), ..Default::default() }),
        writable_layer: Some(api::FilesystemUsage { timestamp: 2_000_000_000, used_bytes: v(7), inodes_used: v(2), ..Default::default() }),
        swap: None,
    }
}

fn sandbox(id: &str, name: &str, uid: &str, containers: Vec<api::ContainerStats>) -> api::PodSandboxStats {
    api::PodSandboxStats {
        attributes: Some(api::PodSandboxAttributes {
            id: id.into(),
            metadata: Some(api::PodSandboxMetadata { name: name.into(), namespace: "ns".into(), uid: uid.into(), attempt: 0 }),
            labels: [(keys::POD_UID.to_string(), uid.to_string())].into(),
            annotations: Default::default(),
        }),
        linux: Some(api::LinuxPodSandboxStats {
            process: Some(api::ProcessUsage { timestamp: 0, process_count: v(3) }),
            containers,
            ..Default::default()
        }),
        windows: None,
    }
}

fn capacity() -> Capacity {
    Capacity { memory: 1000, memory_other: 100, nodefs: 10_000, nodefs_other: 1000, inodes: 500, inodes_free: 400, pids: 99, pids_other: 5 }
}

fn input<'a>(
    stats: &'a [api::PodSandboxStats],
    created: &'a HashMap<String, i64>,
    usage: &'a HashMap<String, (PodUsage, String, String)>,
) -> SummaryInput<'a> {
    SummaryInput {
        node_name: "node-a",
        now: Timestamp::from_second(1_700_000_000).unwrap(),
        node_start: Timestamp::from_second(1_600_000_000).unwrap(),
        stats,
        created,
        usage,
        capacity: capacity(),
        node_cpu: None,
    }
}

#[test]
fn pods_and_containers_from_sandbox_stats() {
    let stats = vec![sandbox("sb1", "web", "u1", vec![cstats("c1", "main", 5_000, 200), cstats("c2", "side", 1_000, 50)])];
    let created: HashMap<String, i64> = [("sb1".into(), 1_000_000_000), ("c1".into(), 1_500_000_000)].into();
    let mut usage = crate::eviction::stats::from_sandbox_stats(&stats);
    usage.get_mut("u1").unwrap().0.local_disk = 100;
    let s = build_summary(&input(&stats, &created, &usage));
    assert_eq!(s.pods.len(), 1);
    let p = &s.pods[0];
    assert_eq!((p.pod_ref.name.as_str(), p.pod_ref.namespace.as_str(), p.pod_ref.uid.as_str()), ("web", "ns", "u1"));
    assert_eq!(p.start_time.0, Timestamp::from_second(1).unwrap());
    let main = p.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.start_time.0, Timestamp::from_nanosecond(1_500_000_000).unwrap());
    assert_eq!(main.cpu.as_ref().unwrap().usage_core_nano_seconds, Some(5_000));
    assert_eq!(main.memory.as_ref().unwrap().working_set_bytes, Some(200));
    assert_eq!(p.cpu.as_ref().unwrap().usage_core_nano_seconds, Some(6_000), "pod cpu is the containers' sum");
    assert_eq!(p.memory.as_ref().unwrap().working_set_bytes, Some(250));
    assert_eq!(p.ephemeral_storage.as_ref().unwrap().used_bytes, Some(7 + 7 + 100));
    assert_eq!(p.process_stats.as_ref().unwrap().process_count, Some(3));

    let n = &s.node;
    assert_eq!(n.node_name, "node-a");
    assert_eq!(n.memory.as_ref().unwrap().working_set_bytes, Some(100 + 250));
    assert_eq!(n.memory.as_ref().unwrap().available_bytes, Some(1000 - 350));
    assert_eq!(n.cpu.as_ref().unwrap().usage_core_nano_seconds, Some(6_000), "a sized node's cpu is its pods'");
    let fs = n.fs.as_ref().unwrap();
    assert_eq!((fs.capacity_bytes, fs.used_bytes, fs.available_bytes), (Some(10_000), Some(1114), Some(10_000 - 1114)));
    assert_eq!((fs.inodes, fs.inodes_free, fs.inodes_used), (Some(500), Some(400), Some(100)));
    assert_eq!(n.rlimit.as_ref().unwrap().curproc, Some(5 + 3));
}

#[test]
fn newest_sandbox_and_container_instance_win() {
    let stats = vec![
        sandbox("old", "web", "u1", vec![cstats("c0", "main", 1, 1)]),
        sandbox("new", "web", "u1", vec![cstats("c1", "main", 10, 1), cstats("c2", "main", 20, 1)]),
    ];
    let created: HashMap<String, i64> = [("old".into(), 1), ("new".into(), 2), ("c1".into(), 5), ("c2".into(), 9)].into();
    let usage = HashMap::new();
    let s = build_summary(&input(&stats, &created, &usage));
    assert_eq!(s.pods.len(), 1);
    assert_eq!(s.pods[0].containers.len(), 1);
    assert_eq!(s.pods[0].containers[0].cpu.as_ref().unwrap().usage_core_nano_seconds, Some(20));
}

#[test]
fn json_uses_upstream_names_and_omits_unset_fields() {
    let stats = vec![sandbox("sb1", "web", "u1", vec![cstats("c1", "main", 5_000, 200)])];
    let created = HashMap::new();
    let usage = crate::eviction::stats::from_sandbox_stats(&stats);
    let mut i = input(&stats, &created, &usage);
    i.node_cpu = Some(CpuStats { time: Time(i.now), usage_nano_cores: Some(5), usage_core_nano_seconds: Some(9) });
    let j = serde_json::to_value(build_summary(&i)).unwrap();
    assert_eq!(j["node"]["nodeName"], "node-a");
    assert_eq!(j["node"]["startTime"], "2020-09-13T12:26:40Z");
    assert_eq!(j["node"]["cpu"]["usageCoreNanoSeconds"], 9);
    assert!(j["node"]["runtime"]["imageFs"]["capacityBytes"].is_u64());
    assert_eq!(j["node"]["rlimit"]["maxpid"], 99);
    let p = &j["pods"][0];
    assert_eq!(p["podRef"], serde_json::json!({"name": "web", "namespace": "ns", "uid": "u1"}));
    assert_eq!(p["containers"][0]["memory"]["workingSetBytes"], 200);
    assert!(p["containers"][0]["memory"].get("rssBytes").is_none());
    assert!(p["ephemeral-storage"]["usedBytes"].is_u64());
    assert_eq!(p["process_stats"]["process_count"], 3);
    assert!(p.get("network").is_none());
}

#[test]
fn proc_stat_parsing() {
    let text = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3\nbtime 1700000000\n";
    // user nice system irq softirq steal = 100+5+50+3+2+1 = 161 ticks at 100 Hz.
    assert_eq!(parse_proc_stat_cpu(text, 100), Some(1_610_000_000));
    assert_eq!(parse_boot_time(text), Timestamp::from_second(1_700_000_000).ok());
    assert_eq!(parse_proc_stat_cpu("garbage", 100), None);
    assert_eq!(parse_boot_time("cpu 1 2"), None);
}
