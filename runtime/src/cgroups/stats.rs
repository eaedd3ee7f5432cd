//! Resource usage of a container's cgroups, shaped like runc's `events --stats` data.

use super::Placement;
use serde_json::{json, Map, Value};
use std::path::Path;

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

fn num(dir: &Path, file: &str) -> u64 {
    read(dir, file).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// `max` or a number; `max` is reported as u64::MAX like runc does for "no limit".
fn limit(dir: &Path, file: &str) -> u64 {
    match read(dir, file).as_deref() {
        Some("max") => u64::MAX,
        Some(s) => s.parse().unwrap_or(0),
        None => 0,
    }
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events).
fn kv(dir: &Path, file: &str) -> Map<String, Value> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

fn get(m: &Map<String, Value>, k: &str) -> u64 {
    m.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Current statistics of the container's cgroups.
pub fn collect(p: &Placement) -> Value {
    if super::manager::is_v1(p) {
        collect_v1(p)
    } else {
        collect_v2(p)
    }
}

fn collect_v1(p: &Placement) -> Value {
    let mut data = Map::new();
    if let Some(d) = p.v1.get("cpuacct") {
        let percpu: Vec<u64> = read(d, "cpuacct.usage_percpu")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        let st = kv(d, "cpuacct.stat");
        // cpuacct.stat counts USER_HZ ticks (100 per second).
        let tick = 1_000_000_000 / 100;
        let thr =
            p.v1.get("cpu")
                .map(|c| kv(c, "cpu.stat"))
                .unwrap_or_default();
        data.insert(
            "cpu".into(),
            json!({
                "usage": {"total": num(d, "cpuacct.usage"), "percpu": percpu, "kernel": get(&st, "system") * tick, "user": get(&st, "user") * tick},
                "throttling": {"periods": get(&thr, "nr_periods"), "throttledPeriods": get(&thr, "nr_throttled"), "throttledTime": get(&thr, "throttled_time")}
            }),
        );
    }
    if let Some(d) = p.v1.get("memory") {
        let entry = |prefix: &str| {
            json!({
                "limit": num(d, &format!("{prefix}.limit_in_bytes")),
                "usage": num(d, &format!("{prefix}.usage_in_bytes")),
                "max": num(d, &format!("{prefix}.max_usage_in_bytes")),
                "failcnt": num(d, &format!("{prefix}.failcnt"))
            })
        };
        data.insert(
            "memory".into(),
            json!({
                "usage": entry("memory"), "swap": entry("memory.memsw"), "kernel": entry("memory.kmem"),
                "kernelTCP": entry("memory.kmem.tcp"), "raw": Value::Object(kv(d, "memory.stat"))
            }),
        );
    }
    if let Some(d) = p.v1.get("pids") {
        data.insert(
            "pids".into(),
            json!({"current": num(d, "pids.current"), "limit": limit(d, "pids.max")}),
        );
    }
    data.insert("blkio".into(), json!({}));
    data.insert("hugetlb".into(), json!({}));
    Value::Object(data)
}

fn collect_v2(p: &Placement) -> Value {
    let Some(d) = p.unified.as_deref() else {
        return json!({});
    };
    let cpu = kv(d, "cpu.stat");
    let mem_stat = kv(d, "memory.stat");
    json!({
        "cpu": {
            "usage": {"total": get(&cpu, "usage_usec") * 1000, "percpu": [], "kernel": get(&cpu, "system_usec") * 1000, "user": get(&cpu, "user_usec") * 1000},
            "throttling": {"periods": get(&cpu, "nr_periods"), "throttledPeriods": get(&cpu, "nr_throttled"), "throttledTime": get(&cpu, "throttled_usec") * 1000}
        },
        "memory": {
            "usage": {"limit": limit(d, "memory.max"), "usage": num(d, "memory.current"), "max": num(d, "memory.peak"), "failcnt": get(&kv(d, "memory.events"), "max")},
            "swap": {"limit": limit(d, "memory.swap.max"), "usage": num(d, "memory.swap.current")},
            "raw": Value::Object(mem_stat)
        },
        "pids": {"current": num(d, "pids.current"), "limit": limit(d, "pids.max")},
        "blkio": {},
        "hugetlb": {}
    })
}

/// The number of OOM kills the kernel has reported for the container so far.
pub fn oom_kills(p: &Placement) -> u64 {
    if let Some(d) = p.v1.get("memory") {
        return get(&kv(d, "memory.oom_control"), "oom_kill");
    }
    p.unified
        .as_deref()
        .map(|d| get(&kv(d, "memory.events"), "oom_kill"))
        .unwrap_or(0)
}
