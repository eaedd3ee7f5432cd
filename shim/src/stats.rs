//! Cgroup metrics in containerd's own types: `io.containerd.cgroups.v1.Metrics` for v1 (and
//! hybrid) placements, `io.containerd.cgroups.v2.Metrics` for pure cgroup2, read straight from
//! the container's cgroup files.

use crate::proto::{v1, v2, Any};
use berth::cgroups::Placement;
use std::collections::HashMap;
use std::path::Path;

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn num(dir: &Path, file: &str) -> u64 {
    match read(dir, file).as_str() {
        "max" => u64::MAX,
        s => s.parse().unwrap_or(0),
    }
}

/// Parses "key value" lines.
pub fn kv(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The container's metrics as an Any.
pub fn collect(p: &Placement) -> Any {
    if berth::cgroups::manager::is_v1(p) {
        Any::pack("io.containerd.cgroups.v1.Metrics", &collect_v1(p))
    } else {
        Any::pack("io.containerd.cgroups.v2.Metrics", &collect_v2(p))
    }
}

fn collect_v1(p: &Placement) -> v1::Metrics {
    let mut m = v1::Metrics::default();
    if let Some(d) = p.v1.get("pids") {
        m.pids = Some(v1::PidsStat {
            current: num(d, "pids.current"),
            limit: match num(d, "pids.max") {
                u64::MAX => 0,
                n => n,
            },
        });
    }
    if let Some(d) = p.v1.get("cpuacct") {
        let st = kv(&read(d, "cpuacct.stat"));
        let tick = 1_000_000_000 / 100;
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        let thr =
            p.v1.get("cpu")
                .map(|c| kv(&read(c, "cpu.stat")))
                .unwrap_or_default();
        let t = |k: &str| thr.get(k).copied().unwrap_or(0);
        m.cpu = Some(v1::CpuStat {
            usage: Some(v1::CpuUsage {
                total: num(d, "cpuacct.usage"),
                kernel: g("system") * tick,
                user: g("user") * tick,
                per_cpu: read(d, "cpuacct.usage_percpu")
                    .split_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
            }),
            throttling: Some(v1::Throttle {
                periods: t("nr_periods"),
                throttled_periods: t("nr_throttled"),
                throttled_time: t("throttled_time"),
            }),
        });
    }
    if let Some(d) = p.v1.get("memory") {
        let st = kv(&read(d, "memory.stat"));
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        let entry = |prefix: &str| v1::MemoryEntry {
            limit: num(d, &format!("{prefix}.limit_in_bytes")),
            usage: num(d, &format!("{prefix}.usage_in_bytes")),
            max: num(d, &format!("{prefix}.max_usage_in_bytes")),
            failcnt: num(d, &format!("{prefix}.failcnt")),
        };
        m.memory = Some(v1::MemoryStat {
            cache: g("cache"),
            rss: g("rss"),
            rss_huge: g("rss_huge"),
            mapped_file: g("mapped_file"),
            dirty: g("dirty"),
            writeback: g("writeback"),
            pg_pg_in: g("pgpgin"),
            pg_pg_out: g("pgpgout"),
            pg_fault: g("pgfault"),
            pg_maj_fault: g("pgmajfault"),
            inactive_anon: g("inactive_anon"),
            active_anon: g("active_anon"),
            inactive_file: g("inactive_file"),
            active_file: g("active_file"),
            unevictable: g("unevictable"),
            hierarchical_memory_limit: g("hierarchical_memory_limit"),
            hierarchical_swap_limit: g("hierarchical_memsw_limit"),
            total_cache: g("total_cache"),
            total_rss: g("total_rss"),
            total_pg_fault: g("total_pgfault"),
            total_pg_maj_fault: g("total_pgmajfault"),
            usage: Some(entry("memory")),
            swap: Some(entry("memory.memsw")),
            kernel: Some(entry("memory.kmem")),
            kernel_tcp: Some(entry("memory.kmem.tcp")),
        });
        let oc = kv(&read(d, "memory.oom_control"));
        let o = |k: &str| oc.get(k).copied().unwrap_or(0);
        m.memory_oom_control = Some(v1::MemoryOomControl {
            oom_kill_disable: o("oom_kill_disable"),
            under_oom: o("under_oom"),
            oom_kill: o("oom_kill"),
        });
    }
    m
}

fn collect_v2(p: &Placement) -> v2::Metrics {
    let Some(d) = p.unified.as_deref() else {
        return v2::Metrics::default();
    };
    let cpu = kv(&read(d, "cpu.stat"));
    let c = |k: &str| cpu.get(k).copied().unwrap_or(0);
    let st = kv(&read(d, "memory.stat"));
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    let ev = kv(&read(d, "memory.events"));
    let e = |k: &str| ev.get(k).copied().unwrap_or(0);
    v2::Metrics {
        pids: Some(v1::PidsStat {
            current: num(d, "pids.current"),
            limit: match num(d, "pids.max") {
                u64::MAX => 0,
                n => n,
            },
        }),
        cpu: Some(v2::CpuStat {
            usage_usec: c("usage_usec"),
            user_usec: c("user_usec"),
            system_usec: c("system_usec"),
            nr_periods: c("nr_periods"),
            nr_throttled: c("nr_throttled"),
            throttled_usec: c("throttled_usec"),
        }),
        memory: Some(v2::MemoryStat {
            anon: g("anon"),
            file: g("file"),
            kernel_stack: g("kernel_stack"),
            slab: g("slab"),
            sock: g("sock"),
            shmem: g("shmem"),
            file_mapped: g("file_mapped"),
            pgfault: g("pgfault"),
            pgmajfault: g("pgmajfault"),
            usage: num(d, "memory.current"),
            usage_limit: num(d, "memory.max"),
            swap_usage: num(d, "memory.swap.current"),
            swap_limit: num(d, "memory.swap.max"),
            max_usage: num(d, "memory.peak"),
        }),
        memory_events: Some(v2::MemoryEvents {
            low: e("low"),
            high: e("high"),
            max: e("max"),
            oom: e("oom"),
            oom_kill: e("oom_kill"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_files_parse() {
        let m = kv("cache 4096\nrss 8192\nbad line x\n");
        assert_eq!(m["cache"], 4096);
        assert_eq!(m["rss"], 8192);
        assert!(!m.contains_key("bad"));
    }
}
