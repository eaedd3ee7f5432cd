//! `linux.resources` -> cgroup file writes. Pure: produces a list of writes for v1 controllers
//! or for cgroup2, with runc's conversions between the two (shares -> weight, blkio weight ->
//! io.weight, swap as memory+swap -> swap only), unit-tested without root.

use super::CgroupError;
use oci_spec::runtime::LinuxResources;

/// Which hierarchy a write goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A v1 controller, by name (`memory`, `cpu`, `net_cls`, ...).
    V1(&'static str),
    /// The cgroup2 hierarchy; `controller` is what must be enabled in the parents'
    /// cgroup.subtree_control for the file to exist (None for core files).
    V2 {
        /// Controller to enable, e.g. `memory`.
        controller: Option<&'static str>,
    },
}

/// One value to write into one cgroup file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Hierarchy.
    pub target: Target,
    /// File name inside the container's directory.
    pub file: String,
    /// Value.
    pub value: String,
}

fn v1(ctrl: &'static str, file: &str, value: impl ToString) -> Write {
    Write {
        target: Target::V1(ctrl),
        file: file.into(),
        value: value.to_string(),
    }
}

fn v2(ctrl: Option<&'static str>, file: &str, value: impl ToString) -> Write {
    Write {
        target: Target::V2 { controller: ctrl },
        file: file.into(),
        value: value.to_string(),
    }
}

/// cpu.shares (2..262144) -> cpu.weight (1..10000), runc's formula.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// blkio.weight (10..1000) -> io.weight (1..10000), runc's formula.
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).clamp(10, 1000) - 10) * 9999 / 990
}

fn limit_v2(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// A numeric setting of 0 means "not set", as runc (and docker, which sends zeros) treat it.
fn nz<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|x| *x != T::default())
}

/// Device rule in devices.allow/deny syntax (`c 1:3 rwm`, `a *:* rwm`).
pub fn device_rule(d: &oci_spec::runtime::LinuxDeviceCgroup) -> String {
    let typ = d
        .typ()
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "a".into());
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "*".into())
    };
    let access = d
        .access()
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "rwm".into());
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

/// Devices every container may use even under a default-deny rule list (runc adds the same
/// allow-list after the spec's rules): null, zero, full, tty, random, urandom, /dev/pts/*,
/// /dev/ptmx, /dev/console, and mknod of any char or block device.
pub const DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 5:1 rwm",
    "c 10:200 rwm",
];

/// The device rules to apply, in order: the spec's, then the default allow-list.
/// Each entry is (allow, rule).
pub fn device_rules(r: &LinuxResources) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = r
        .devices()
        .iter()
        .flatten()
        .map(|d| (d.allow(), device_rule(d)))
        .collect();
    if !out.is_empty() {
        out.extend(
            DEFAULT_ALLOWED_DEVICES
                .iter()
                .map(|r| (true, r.to_string())),
        );
    }
    out
}

/// Writes for v1 hierarchies. Device rules are not included (see [`device_rules`]).
pub fn plan_v1(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let mut w = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(l) = nz(m.limit()) {
            w.push(v1("memory", "memory.limit_in_bytes", l));
        }
        if let Some(s) = nz(m.swap()) {
            w.push(v1("memory", "memory.memsw.limit_in_bytes", s));
        }
        if let Some(v) = nz(m.reservation()) {
            w.push(v1("memory", "memory.soft_limit_in_bytes", v));
        }
        if let Some(v) = m.swappiness() {
            if v > 100 {
                return Err(CgroupError::Invalid(format!(
                    "linux.resources.memory.swappiness: {v} is above 100"
                )));
            }
            w.push(v1("memory", "memory.swappiness", v));
        }
        if m.disable_oom_killer() == Some(true) {
            w.push(v1("memory", "memory.oom_control", 1));
        }
        if m.use_hierarchy() == Some(true) {
            w.push(v1("memory", "memory.use_hierarchy", 1));
        }
        // kernel and kernelTCP limits are deprecated in the kernel and ignored, as runc does.
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = nz(c.shares()) {
            w.push(v1("cpu", "cpu.shares", v));
        }
        if let Some(v) = nz(c.period()) {
            w.push(v1("cpu", "cpu.cfs_period_us", v));
        }
        if let Some(v) = nz(c.quota()) {
            w.push(v1("cpu", "cpu.cfs_quota_us", v));
        }
        if let Some(v) = c.burst() {
            w.push(v1("cpu", "cpu.cfs_burst_us", v));
        }
        if let Some(v) = nz(c.realtime_period()) {
            w.push(v1("cpu", "cpu.rt_period_us", v));
        }
        if let Some(v) = nz(c.realtime_runtime()) {
            w.push(v1("cpu", "cpu.rt_runtime_us", v));
        }
        if let Some(v) = c.idle() {
            w.push(v1("cpu", "cpu.idle", v));
        }
        if let Some(v) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            w.push(v1("cpuset", "cpuset.cpus", v));
        }
        if let Some(v) = c.mems().as_ref().filter(|s| !s.is_empty()) {
            w.push(v1("cpuset", "cpuset.mems", v));
        }
    }
    if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
        w.push(v1(
            "pids",
            "pids.max",
            if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            },
        ));
    }
    if let Some(b) = r.block_io() {
        if let Some(v) = nz(b.weight()) {
            w.push(v1("blkio", "blkio.weight", v));
        }
        if let Some(v) = nz(b.leaf_weight()) {
            w.push(v1("blkio", "blkio.leaf_weight", v));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                w.push(v1(
                    "blkio",
                    "blkio.weight_device",
                    format!("{}:{} {v}", d.major(), d.minor()),
                ));
            }
            if let Some(v) = d.leaf_weight() {
                w.push(v1(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{}:{} {v}", d.major(), d.minor()),
                ));
            }
        }
        let throttles = [
            (
                b.throttle_read_bps_device(),
                "blkio.throttle.read_bps_device",
            ),
            (
                b.throttle_write_bps_device(),
                "blkio.throttle.write_bps_device",
            ),
            (
                b.throttle_read_iops_device(),
                "blkio.throttle.read_iops_device",
            ),
            (
                b.throttle_write_iops_device(),
                "blkio.throttle.write_iops_device",
            ),
        ];
        for (list, file) in throttles {
            for d in list.iter().flatten() {
                w.push(v1(
                    "blkio",
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        w.push(v1(
            "hugetlb",
            &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit(),
        ));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            w.push(v1("net_cls", "net_cls.classid", id));
        }
        for p in n.priorities().iter().flatten() {
            w.push(v1(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Invalid(
            "linux.resources.unified: needs a cgroup2 host (this one has v1 controllers)".into(),
        ));
    }
    Ok(w)
}

/// Writes for a cgroup2 hierarchy, converting v1-style fields as runc does.
pub fn plan_v2(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let mut w = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(l) = nz(m.limit()) {
            w.push(v2(Some("memory"), "memory.max", limit_v2(l)));
        }
        if let Some(s) = nz(m.swap()) {
            // The spec's swap is memory+swap; cgroup2 limits swap alone.
            let v = match (s, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l >= 0 => {
                    if s < l {
                        return Err(CgroupError::Invalid(format!(
                            "linux.resources.memory.swap: {s} is below the memory limit {l}"
                        )));
                    }
                    (s - l).to_string()
                }
                (s, _) => s.to_string(),
            };
            w.push(v2(Some("memory"), "memory.swap.max", v));
        }
        if let Some(v) = nz(m.reservation()) {
            w.push(v2(Some("memory"), "memory.low", limit_v2(v)));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(CgroupError::Invalid(
                "linux.resources.memory.disableOOMKiller: not supported on cgroup2".into(),
            ));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = nz(c.shares()) {
            w.push(v2(Some("cpu"), "cpu.weight", shares_to_weight(s)));
        }
        if nz(c.quota()).is_some() || nz(c.period()).is_some() {
            let quota = match c.quota() {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            let period = nz(c.period()).unwrap_or(100_000);
            w.push(v2(Some("cpu"), "cpu.max", format!("{quota} {period}")));
        }
        if let Some(v) = c.burst() {
            w.push(v2(Some("cpu"), "cpu.max.burst", v));
        }
        if let Some(v) = c.idle() {
            w.push(v2(Some("cpu"), "cpu.idle", v));
        }
        if nz(c.realtime_period()).is_some() || nz(c.realtime_runtime()).is_some() {
            return Err(CgroupError::Invalid(
                "linux.resources.cpu.realtimePeriod/realtimeRuntime: not supported on cgroup2"
                    .into(),
            ));
        }
        if let Some(v) = c.cpus().as_ref().filter(|s| !s.is_empty()) {
            w.push(v2(Some("cpuset"), "cpuset.cpus", v));
        }
        if let Some(v) = c.mems().as_ref().filter(|s| !s.is_empty()) {
            w.push(v2(Some("cpuset"), "cpuset.mems", v));
        }
    }
    if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
        w.push(v2(
            Some("pids"),
            "pids.max",
            if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            },
        ));
    }
    if let Some(b) = r.block_io() {
        if let Some(v) = nz(b.weight()) {
            w.push(v2(
                Some("io"),
                "io.weight",
                format!("default {}", blkio_to_io_weight(v)),
            ));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                w.push(v2(
                    Some("io"),
                    "io.weight",
                    format!("{}:{} {}", d.major(), d.minor(), blkio_to_io_weight(v)),
                ));
            }
        }
        let throttles = [
            (b.throttle_read_bps_device(), "rbps"),
            (b.throttle_write_bps_device(), "wbps"),
            (b.throttle_read_iops_device(), "riops"),
            (b.throttle_write_iops_device(), "wiops"),
        ];
        for (list, key) in throttles {
            for d in list.iter().flatten() {
                w.push(v2(
                    Some("io"),
                    "io.max",
                    format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        w.push(v2(
            Some("hugetlb"),
            &format!("hugetlb.{}.max", h.page_size()),
            h.limit(),
        ));
    }
    if r.network()
        .as_ref()
        .is_some_and(|n| n.class_id().is_some() || n.priorities().is_some())
    {
        return Err(CgroupError::Invalid(
            "linux.resources.network: net_cls/net_prio do not exist on cgroup2".into(),
        ));
    }
    if let Some(u) = r.unified() {
        let mut keys: Vec<_> = u.keys().collect();
        keys.sort();
        for k in keys {
            if k.contains('/') || k.starts_with('.') {
                return Err(CgroupError::Invalid(format!(
                    "linux.resources.unified.{k}: not a cgroup file name"
                )));
            }
            let ctrl = k.split('.').next().unwrap_or("");
            let ctrl: Option<&'static str> = [
                "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
            ]
            .into_iter()
            .find(|c| *c == ctrl);
            w.push(v2(ctrl, k, &u[k]));
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn find<'a>(w: &'a [Write], file: &str) -> &'a str {
        &w.iter()
            .find(|x| x.file == file)
            .unwrap_or_else(|| panic!("{file} missing"))
            .value
    }

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    #[test]
    fn v1_plan_covers_fields() {
        let r = res(json!({
            "memory": {"limit": 1048576, "swap": 2097152, "reservation": 524288, "swappiness": 10, "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0", "burst": 1000},
            "pids": {"limit": 32},
            "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "network": {"classID": 16, "priorities": [{"name": "eth0", "priority": 5}]}
        }));
        let w = plan_v1(&r).unwrap();
        assert_eq!(find(&w, "memory.limit_in_bytes"), "1048576");
        assert_eq!(find(&w, "memory.memsw.limit_in_bytes"), "2097152");
        assert_eq!(find(&w, "memory.soft_limit_in_bytes"), "524288");
        assert_eq!(find(&w, "memory.swappiness"), "10");
        assert_eq!(find(&w, "memory.oom_control"), "1");
        assert_eq!(find(&w, "cpu.shares"), "512");
        assert_eq!(find(&w, "cpu.cfs_quota_us"), "50000");
        assert_eq!(find(&w, "cpu.cfs_burst_us"), "1000");
        assert_eq!(find(&w, "cpuset.cpus"), "0");
        assert_eq!(find(&w, "pids.max"), "32");
        assert_eq!(find(&w, "blkio.weight"), "300");
        assert_eq!(find(&w, "blkio.throttle.read_bps_device"), "8:0 1000");
        assert_eq!(find(&w, "hugetlb.2MB.limit_in_bytes"), "0");
        assert_eq!(find(&w, "net_cls.classid"), "16");
        assert_eq!(find(&w, "net_prio.ifpriomap"), "eth0 5");
    }

    #[test]
    fn v2_plan_converts() {
        let r = res(json!({
            "memory": {"limit": 1048576, "swap": 3145728, "reservation": 1000},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
            "pids": {"limit": -1},
            "blockIO": {"weight": 1000, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]},
            "unified": {"memory.high": "2000000", "cgroup.freeze": "0"}
        }));
        let w = plan_v2(&r).unwrap();
        assert_eq!(find(&w, "memory.max"), "1048576");
        assert_eq!(find(&w, "memory.swap.max"), "2097152");
        assert_eq!(find(&w, "memory.low"), "1000");
        assert_eq!(find(&w, "cpu.weight"), "39");
        assert_eq!(find(&w, "cpu.max"), "50000 100000");
        assert_eq!(find(&w, "pids.max"), "max");
        assert_eq!(find(&w, "io.weight"), "default 10000");
        assert_eq!(find(&w, "io.max"), "8:0 wiops=10");
        assert_eq!(find(&w, "memory.high"), "2000000");
        let mh = w.iter().find(|x| x.file == "memory.high").unwrap();
        assert_eq!(
            mh.target,
            Target::V2 {
                controller: Some("memory")
            }
        );
        let fr = w.iter().find(|x| x.file == "cgroup.freeze").unwrap();
        assert_eq!(fr.target, Target::V2 { controller: None });
    }

    #[test]
    fn v2_rejects_what_it_cannot_express() {
        assert!(plan_v2(&res(json!({"memory": {"limit": 100, "swap": 50}}))).is_err());
        assert!(plan_v2(&res(json!({"cpu": {"realtimeRuntime": 100}}))).is_err());
        assert!(plan_v2(&res(json!({"network": {"classID": 1}}))).is_err());
        assert!(plan_v2(&res(json!({"unified": {"../x": "1"}}))).is_err());
        assert!(plan_v1(&res(json!({"unified": {"memory.high": "1"}}))).is_err());
    }

    #[test]
    fn zero_values_mean_unset_as_docker_sends_them() {
        let r = res(json!({
            "memory": {"limit": 0, "reservation": 0, "swap": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimePeriod": 0, "realtimeRuntime": 0},
            "pids": {"limit": 0},
            "blockIO": {"weight": 0}
        }));
        assert!(plan_v1(&r).unwrap().is_empty(), "{:?}", plan_v1(&r));
        assert!(plan_v2(&r).unwrap().is_empty());
    }

    #[test]
    fn device_rules_keep_order_and_add_defaults() {
        let r = res(
            json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}),
        );
        let rules = device_rules(&r);
        assert_eq!(rules[0], (false, "a *:* rwm".to_string()));
        assert_eq!(rules[1], (true, "c 10:229 rw".to_string()));
        assert!(rules.contains(&(true, "c 1:3 rwm".to_string())));
        assert!(device_rules(&res(json!({}))).is_empty());
    }
}
