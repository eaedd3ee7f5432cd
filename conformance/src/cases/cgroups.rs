//! linux.cgroupsPath and linux.resources on cgroup v1 and on cgroup v2 (a private pure-v2 view
//! of the host), and the operations that work through the cgroup: pause, resume, update, ps,
//! events, kill --all.

use super::{wait_gone, SLEEP, WAIT};
use crate::bundle::Bundle;
use crate::case;
use crate::case::{Case, Ctx, Need};
use crate::error::Result;
use crate::runtime::Invoke;
use serde_json::json;
use std::path::Path;

/// The cgroups chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "cgroups";
    use Need::{CgroupManager, CgroupV1, CgroupV2};
    vec![
        case!(
            C,
            "v1-update-memory-unlimited",
            "update --memory -1 with a swap limit set lifts both (swap follows memory)",
            [CgroupV1("memory")],
            v1_update_memory_unlimited
        ),
        case!(
            C,
            "v1-cpuset-empty-parent",
            "a container below a pre-made cpuset parent with no cpus/mems still starts",
            [CgroupV1("cpuset")],
            v1_cpuset_empty_parent
        ),
        case!(
            C,
            "v1-frozen-cgroup-refused",
            "create in an already frozen cgroup fails with an error instead of hanging",
            [CgroupV1("freezer")],
            v1_frozen_cgroup_refused
        ),
        case!(
            C,
            "v1-device-rules-folded",
            "device rules are applied as their end state: an allow taken back later is never written",
            [CgroupV1("devices")],
            v1_device_rules_folded
        ),
        case!(
            C,
            "v1-placement",
            "the process is in cgroupsPath under every v1 controller",
            [CgroupV1("memory"), CgroupV1("pids")],
            v1_placement
        ),
        case!(
            C,
            "v1-memory",
            "memory limit and reservation are written (v1)",
            [CgroupV1("memory")],
            v1_memory
        ),
        case!(
            C,
            "v1-cpu",
            "cpu shares, quota and period are written (v1)",
            [CgroupV1("cpu")],
            v1_cpu
        ),
        case!(
            C,
            "v1-cpuset",
            "cpuset cpus and mems are written (v1)",
            [CgroupV1("cpuset")],
            v1_cpuset
        ),
        case!(
            C,
            "v1-pids",
            "pids limit is written and enforced (v1)",
            [CgroupV1("pids")],
            v1_pids
        ),
        case!(
            C,
            "v1-blkio",
            "blkio weight is written (v1)",
            [CgroupV1("blkio")],
            v1_blkio
        ),
        case!(
            C,
            "v1-removed",
            "delete removes the container's cgroups (v1)",
            [CgroupV1("memory")],
            v1_removed
        ),
        case!(
            C,
            "v1-pause-resume",
            "pause freezes (paused, FROZEN) and resume thaws (v1 freezer)",
            [CgroupV1("freezer")],
            v1_pause_resume
        ),
        case!(
            C,
            "pause-errors",
            "pause of a stopped and resume of a running container fail",
            [CgroupManager],
            pause_errors
        ),
        case!(
            C,
            "update",
            "update --pids-limit/--memory and --resources change the cgroup (v1)",
            [CgroupV1("pids"), CgroupV1("memory")],
            update
        ),
        case!(
            C,
            "ps",
            "ps lists the container's processes (table and --format json)",
            [CgroupManager],
            ps
        ),
        case!(
            C,
            "events-stats",
            "events --stats prints one stats JSON object",
            [CgroupManager],
            events_stats
        ),
        case!(
            C,
            "kill-all",
            "kill --all signals every process of the container",
            [CgroupManager],
            kill_all
        ),
        case!(
            C,
            "v2-placement",
            "the process is in cgroupsPath in cgroup2, removed on delete",
            [CgroupV2(None)],
            v2_placement
        ),
        case!(
            C,
            "v2-hugetlb",
            "hugepageLimits are written to hugetlb.<size>.max (v2)",
            [CgroupV2(Some("hugetlb"))],
            v2_hugetlb
        ),
        case!(
            C,
            "v2-unified",
            "linux.resources.unified keys are written verbatim (v2)",
            [CgroupV2(Some("hugetlb"))],
            v2_unified
        ),
        case!(
            C,
            "v2-pause-resume",
            "pause and resume through cgroup.freeze (v2)",
            [CgroupV2(None)],
            v2_pause_resume
        ),
        case!(
            C,
            "v2-memory",
            "memory.max from resources.memory.limit (v2)",
            [CgroupV2(Some("memory"))],
            v2_memory
        ),
        case!(
            C,
            "v2-pids",
            "pids.max from resources.pids.limit (v2)",
            [CgroupV2(Some("pids"))],
            v2_pids
        ),
    ]
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn pid_of(ctx: &mut Ctx, id: &str) -> Result<i64> {
    Ok(ctx.state(id)?["pid"].as_i64().unwrap_or(0))
}

fn procs_has(dir: &Path, pid: i64) -> bool {
    read(&dir.join("cgroup.procs"))
        .lines()
        .any(|l| l.trim() == pid.to_string())
}

fn v1_placement(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let pid = pid_of(ctx, &id)?;
    for ctrl in [
        "memory", "pids", "cpu", "cpuset", "devices", "freezer", "blkio",
    ] {
        if let Some(dir) = ctx.host.v1_dir(ctrl, &b.cgroups_path) {
            ctx.check(
                format!("pid is in {ctrl}{}", b.cgroups_path),
                procs_has(&dir, pid),
                format!("{}", dir.display()),
            );
        }
    }
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    ctx.check(
        "/proc/PID/cgroup names the path for memory",
        own.lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&b.cgroups_path)),
        own,
    );
    Ok(())
}

fn started_with(ctx: &mut Ctx, setup: impl FnOnce(&mut Bundle)) -> Result<(Bundle, String)> {
    let mut b = ctx.bundle(SLEEP)?;
    setup(&mut b);
    let id = ctx.start_ok(&b)?;
    Ok((b, id))
}

fn v1_memory(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = started_with(ctx, |b| {
        b.config["linux"]["resources"]["memory"] =
            json!({"limit": 67108864, "reservation": 33554432});
    })?;
    let d = ctx.v1_dir("memory", &b)?;
    ctx.check_eq(
        "memory.limit_in_bytes",
        read(&d.join("memory.limit_in_bytes")),
        "67108864".into(),
    );
    ctx.check_eq(
        "memory.soft_limit_in_bytes",
        read(&d.join("memory.soft_limit_in_bytes")),
        "33554432".into(),
    );
    Ok(())
}

fn v1_cpu(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = started_with(ctx, |b| {
        b.config["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000});
    })?;
    let d = ctx.v1_dir("cpu", &b)?;
    ctx.check_eq("cpu.shares", read(&d.join("cpu.shares")), "512".into());
    ctx.check_eq(
        "cpu.cfs_quota_us",
        read(&d.join("cpu.cfs_quota_us")),
        "50000".into(),
    );
    ctx.check_eq(
        "cpu.cfs_period_us",
        read(&d.join("cpu.cfs_period_us")),
        "100000".into(),
    );
    Ok(())
}

fn v1_cpuset(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = started_with(ctx, |b| {
        b.config["linux"]["resources"]["cpu"] = json!({"cpus": "0", "mems": "0"});
    })?;
    let d = ctx.v1_dir("cpuset", &b)?;
    ctx.check_eq("cpuset.cpus", read(&d.join("cpuset.cpus")), "0".into());
    ctx.check_eq("cpuset.mems", read(&d.join("cpuset.mems")), "0".into());
    Ok(())
}

fn v1_pids(ctx: &mut Ctx) -> Result<()> {
    let (b, _) = started_with(ctx, |b| {
        b.config["linux"]["resources"]["pids"] = json!({"limit": 32});
    })?;
    let d = ctx.v1_dir("pids", &b)?;
    ctx.check_eq("pids.max", read(&d.join("pids.max")), "32".into());
    let mut b = ctx.bundle(&[])?;
    b.sh("for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait");
    b.config["linux"]["resources"]["pids"] = json!({"limit": 4});
    let out = ctx.run(&b)?;
    ctx.check(
        "forking past the limit fails",
        super::mentions(&out.stderr, &["fork", "resource temporarily unavailable"]),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn v1_blkio(ctx: &mut Ctx) -> Result<()> {
    let root = ctx.host.v1.get("blkio").cloned().unwrap_or_default();
    let file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| root.join(f).exists());
    let Some(file) = file else {
        return Err(ctx.skip("no blkio.weight or blkio.bfq.weight (no proportional I/O scheduler)"));
    };
    let (b, _) = started_with(ctx, |b| {
        b.config["linux"]["resources"]["blockIO"] = json!({"weight": 500});
    })?;
    let d = ctx.v1_dir("blkio", &b)?;
    let got = read(&d.join(file));
    ctx.check(
        format!("{file} is 500"),
        got == "500" || got.starts_with("default 500"),
        got,
    );
    Ok(())
}

fn v1_removed(ctx: &mut Ctx) -> Result<()> {
    let (b, id) = started_with(ctx, |_| {})?;
    let d = ctx.v1_dir("memory", &b)?;
    ctx.check(
        "the memory cgroup exists while running",
        d.is_dir(),
        format!("{}", d.display()),
    );
    ctx.call(&["delete", "--force", &id])?.require()?;
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !d.exists()
    });
    ctx.check(
        "it is removed by delete",
        gone,
        format!("{} still exists", d.display()),
    );
    Ok(())
}

fn pause_resume(
    ctx: &mut Ctx,
    id: &str,
    state_file: &Path,
    frozen: &str,
    thawed: &str,
) -> Result<()> {
    let out = ctx.call(&["pause", id])?;
    ctx.check_ok("pause succeeds", &out);
    let st = ctx.status_of(id)?;
    ctx.check_eq("status is paused", st.as_str(), "paused");
    let f = read(state_file);
    ctx.check_eq(
        format!("{} is {frozen}", state_file.display()),
        f.as_str(),
        frozen,
    );
    let out = ctx.call(&["resume", id])?;
    ctx.check_ok("resume succeeds", &out);
    let st = ctx.status_of(id)?;
    ctx.check_eq("status is running again", st.as_str(), "running");
    let f = read(state_file);
    ctx.check_eq(
        format!("{} is {thawed}", state_file.display()),
        f.as_str(),
        thawed,
    );
    Ok(())
}

fn v1_pause_resume(ctx: &mut Ctx) -> Result<()> {
    let (b, id) = started_with(ctx, |_| {})?;
    let f = ctx.v1_dir("freezer", &b)?.join("freezer.state");
    pause_resume(ctx, &id, &f, "FROZEN", "THAWED")
}

fn pause_errors(ctx: &mut Ctx) -> Result<()> {
    let (_, id) = started_with(ctx, |_| {})?;
    let out = ctx.call(&["resume", &id])?;
    ctx.check_fails("resume of a running container fails", &out);
    ctx.call(&["kill", &id, "KILL"])?.require()?;
    ctx.wait_status(&id, "stopped", WAIT)?;
    let out = ctx.call(&["pause", &id])?;
    ctx.check_fails("pause of a stopped container fails", &out);
    Ok(())
}

fn update(ctx: &mut Ctx) -> Result<()> {
    let (b, id) = started_with(ctx, |b| {
        b.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    })?;
    let pids = ctx.v1_dir("pids", &b)?.join("pids.max");
    let mem = ctx.v1_dir("memory", &b)?.join("memory.limit_in_bytes");
    let out = ctx.call(&["update", "--pids-limit", "20", "--memory", "134217728", &id])?;
    ctx.check_ok("update with flags succeeds", &out);
    ctx.check_eq("pids.max is 20", read(&pids), "20".into());
    ctx.check_eq(
        "memory.limit_in_bytes is 128 MiB",
        read(&mem),
        "134217728".into(),
    );
    let opts = Invoke {
        stdin: Some(br#"{"pids": {"limit": 30}}"#.to_vec()),
        ..Invoke::default()
    };
    let out = ctx.call_with(&["update", "--resources", "-", &id], &opts)?;
    ctx.check_ok("update --resources - succeeds", &out);
    ctx.check_eq("pids.max is 30", read(&pids), "30".into());
    Ok(())
}

fn ps(ctx: &mut Ctx) -> Result<()> {
    let (_, id) = started_with(ctx, |_| {})?;
    let pid = pid_of(ctx, &id)?;
    let out = ctx.call(&["ps", "--format", "json", &id])?;
    ctx.check_ok("ps --format json succeeds", &out);
    let v = out.json()?;
    let listed = v
        .as_array()
        .map(|a| a.iter().any(|p| p.as_i64() == Some(pid)))
        .unwrap_or(false);
    ctx.check(
        "it lists the container's pid",
        listed,
        format!("{v} (pid {pid})"),
    );
    let out = ctx.call(&["ps", &id])?;
    ctx.check_ok("ps (table) succeeds", &out);
    ctx.check(
        "the table has a PID column and the sleep",
        out.stdout.contains("PID") && out.stdout.contains("sleep"),
        out.stdout.clone(),
    );
    Ok(())
}

fn events_stats(ctx: &mut Ctx) -> Result<()> {
    let (_, id) = started_with(ctx, |_| {})?;
    let out = ctx.call(&["events", "--stats", &id])?;
    ctx.check_ok("events --stats succeeds", &out);
    let v = out.json()?;
    ctx.check_eq("type is stats", v["type"].as_str(), Some("stats"));
    ctx.check_eq("id is the container's", v["id"].as_str(), Some(id.as_str()));
    ctx.check(
        "pids.current counts the process",
        v["data"]["pids"]["current"].as_i64().unwrap_or(0) >= 1,
        format!("{}", v["data"]["pids"]),
    );
    Ok(())
}

fn kill_all(ctx: &mut Ctx) -> Result<()> {
    let (_, id) = started_with(ctx, |b| {
        b.sh("sleep 600 & sleep 600 & wait");
    })?;
    let pid = pid_of(ctx, &id)?;
    let out = ctx.call(&["kill", "--all", &id, "KILL"])?;
    ctx.check_ok("kill --all succeeds", &out);
    let st = ctx.wait_status(&id, "stopped", WAIT)?;
    ctx.check_eq("the container stops", st.as_str(), "stopped");
    ctx.check(
        "the init process is gone",
        wait_gone(pid, WAIT),
        format!("pid {pid}"),
    );
    Ok(())
}

fn v2_started(
    ctx: &mut Ctx,
    setup: impl FnOnce(&mut Bundle),
) -> Result<(Bundle, String, std::path::PathBuf)> {
    ctx.use_cgroup2_view();
    let (b, id) = started_with(ctx, setup)?;
    let d = ctx.v2_dir(&b)?;
    Ok((b, id, d))
}

fn v2_placement(ctx: &mut Ctx) -> Result<()> {
    let (_, id, d) = v2_started(ctx, |_| {})?;
    let pid = pid_of(ctx, &id)?;
    ctx.check(
        "pid is in the cgroup2 directory",
        procs_has(&d, pid),
        format!("{}", d.display()),
    );
    ctx.call(&["delete", "--force", &id])?.require()?;
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !d.exists()
    });
    ctx.check(
        "delete removes it",
        gone,
        format!("{} still exists", d.display()),
    );
    Ok(())
}

fn v2_hugetlb(ctx: &mut Ctx) -> Result<()> {
    let (_, _, d) = v2_started(ctx, |b| {
        b.config["linux"]["resources"]["hugepageLimits"] =
            json!([{"pageSize": "2MB", "limit": 4194304}]);
    })?;
    ctx.check_eq(
        "hugetlb.2MB.max",
        read(&d.join("hugetlb.2MB.max")),
        "4194304".into(),
    );
    Ok(())
}

fn v2_unified(ctx: &mut Ctx) -> Result<()> {
    let (_, _, d) = v2_started(ctx, |b| {
        b.config["linux"]["resources"]["unified"] = json!({"hugetlb.2MB.max": "6291456"});
    })?;
    ctx.check_eq(
        "hugetlb.2MB.max",
        read(&d.join("hugetlb.2MB.max")),
        "6291456".into(),
    );
    Ok(())
}

fn v2_pause_resume(ctx: &mut Ctx) -> Result<()> {
    let (_, id, d) = v2_started(ctx, |_| {})?;
    pause_resume(ctx, &id, &d.join("cgroup.freeze"), "1", "0")
}

fn v2_memory(ctx: &mut Ctx) -> Result<()> {
    let (_, _, d) = v2_started(ctx, |b| {
        b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    })?;
    ctx.check_eq("memory.max", read(&d.join("memory.max")), "67108864".into());
    Ok(())
}

fn v2_pids(ctx: &mut Ctx) -> Result<()> {
    let (_, _, d) = v2_started(ctx, |b| {
        b.config["linux"]["resources"]["pids"] = json!({"limit": 32});
    })?;
    ctx.check_eq("pids.max", read(&d.join("pids.max")), "32".into());
    Ok(())
}

fn v1_update_memory_unlimited(ctx: &mut Ctx) -> Result<()> {
    let root = ctx.host.v1.get("memory").cloned().unwrap_or_default();
    if !root.join("memory.memsw.limit_in_bytes").exists() {
        return Err(ctx.skip("no memory.memsw.limit_in_bytes (swap accounting is off)"));
    }
    let (b, id) = started_with(ctx, |b| {
        b.config["linux"]["resources"]["memory"] = json!({"limit": 104857600, "swap": 209715200});
    })?;
    let d = ctx.v1_dir("memory", &b)?;
    let out = ctx.call(&["update", "--memory", "-1", &id])?;
    ctx.check_ok("update --memory -1 succeeds", &out);
    let unlimited = |v: String| v.parse::<u64>().map(|n| n > 1 << 60).unwrap_or(false);
    ctx.check(
        "memory.limit_in_bytes is unlimited",
        unlimited(read(&d.join("memory.limit_in_bytes"))),
        read(&d.join("memory.limit_in_bytes")),
    );
    ctx.check(
        "memory.memsw.limit_in_bytes followed",
        unlimited(read(&d.join("memory.memsw.limit_in_bytes"))),
        read(&d.join("memory.memsw.limit_in_bytes")),
    );
    let out = ctx.call(&["update", "--memory", "52428800", &id])?;
    ctx.check_ok("a new limit below the unlimited swap is accepted", &out);
    ctx.check_eq(
        "memory.limit_in_bytes is 50 MiB",
        read(&d.join("memory.limit_in_bytes")),
        "52428800".into(),
    );
    Ok(())
}

/// Makes the bundle's cgroup directory (in `ctrl`) beforehand and moves the container one
/// level below it, so the bundle's directory is a parent the runtime did not create.
fn premade_parent(ctx: &Ctx, b: &mut Bundle, ctrl: &str) -> Result<std::path::PathBuf> {
    let parent = ctx.v1_dir(ctrl, b)?;
    std::fs::create_dir_all(&parent)
        .map_err(|e| crate::error::Error::Other(format!("mkdir {}: {e}", parent.display())))?;
    b.config["linux"]["cgroupsPath"] = json!(format!("{}/ctr", b.cgroups_path));
    Ok(parent)
}

fn v1_cpuset_empty_parent(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&["/bin/cat", "/proc/self/cgroup"])?;
    let parent = premade_parent(ctx, &mut b, "cpuset")?;
    ctx.check_eq(
        "the pre-made parent starts with no cpus",
        read(&parent.join("cpuset.cpus")),
        String::new(),
    );
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "the container ran in the child cgroup",
        out.stdout
            .lines()
            .any(|l| l.contains("cpuset") && l.ends_with("/ctr")),
        format!("{out:?}"),
    );
    Ok(())
}

/// Thaws a v1 freezer directory when dropped, so a failing case leaves nothing frozen.
struct Thaw(std::path::PathBuf);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("freezer.state"), "THAWED");
    }
}

fn v1_frozen_cgroup_refused(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(&["/bin/true"])?;
    let parent = ctx.v1_dir("freezer", &b)?;
    std::fs::create_dir_all(&parent)
        .map_err(|e| crate::error::Error::Other(format!("mkdir {}: {e}", parent.display())))?;
    let _thaw = Thaw(parent.clone());
    std::fs::write(parent.join("freezer.state"), "FROZEN")
        .map_err(|e| crate::error::Error::Other(format!("freeze {}: {e}", parent.display())))?;
    b.write()?;
    let opts = Invoke {
        timeout: Some(std::time::Duration::from_secs(20)),
        ..Invoke::default()
    };
    let (_, out) = ctx.create_with(&b, &[], &opts)?;
    ctx.check(
        "create fails (and does not hang)",
        !out.ok() && !out.timed_out,
        format!("{out:?}"),
    );
    ctx.check(
        "the error says the cgroup is frozen",
        super::mentions(&out.stderr, &["frozen"]),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn v1_device_rules_folded(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    let parent = premade_parent(ctx, &mut b, "devices")?;
    // The parent forbids reading and writing /dev/fuse (10:229): allowing that in a child
    // would be refused.
    std::fs::write(parent.join("devices.deny"), "c 10:229 rw")
        .map_err(|e| crate::error::Error::Other(format!("devices.deny: {e}")))?;
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
    ]);
    b.sh("head -c 1 /dev/zero | wc -c");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "an allowed device works",
        out.stdout.lines().next() == Some("1"),
        format!("{out:?}"),
    );
    Ok(())
}
