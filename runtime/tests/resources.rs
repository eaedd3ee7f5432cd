//! Cgroup resources, pause/resume, update, ps, events and kill --all on this host's hybrid
//! cgroups, plus the cgroup2 paths inside a private pure-cgroup2 mount namespace.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

fn start(w: &World, name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let args = ["sh", "-c", "while true; do sleep 1; done"];
    let mut c = w.base_config(&args);
    edit(&mut c);
    w.write_config(&c);
    let id = w.id(name);
    let bundle = w.bundle.to_string_lossy().into_owned();
    let (code, _, err) = w.detached(&["run", "-d", "--bundle", &bundle, &id]);
    assert_eq!(code, 0, "run -d: {err}");
    id
}

fn v1(w: &World, ctrl: &str, file: &str) -> String {
    let p = PathBuf::from("/sys/fs/cgroup")
        .join(ctrl)
        .join(&w.cgroup_parent)
        .join("ctr")
        .join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn status(w: &World, id: &str) -> String {
    let out = w.berth().args(["state", id]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["status"].as_str().unwrap_or("").to_string()
}

fn hybrid() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
}

#[test]
fn resources_are_written_to_v1_controllers() {
    if !can_run() || !hybrid() {
        return;
    }
    let w = World::new(&["true"]);
    let id = start(&w, "res", |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 50},
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
        });
        c["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
            {"path": "/dev/fuse2", "type": "c", "major": 10, "minor": 229},
            {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}
        ]);
    });
    assert_eq!(v1(&w, "memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(v1(&w, "memory", "memory.soft_limit_in_bytes"), "33554432");
    assert_eq!(v1(&w, "memory", "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(v1(&w, "memory", "memory.swappiness"), "10");
    assert_eq!(v1(&w, "cpu", "cpu.shares"), "512");
    assert_eq!(v1(&w, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(v1(&w, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(v1(&w, "pids", "pids.max"), "50");
    let devices = v1(&w, "devices", "devices.list");
    assert!(
        devices.contains("c 10:229 rw")
            && devices.contains("c 1:3 rwm")
            && !devices.contains("a *:* rwm"),
        "{devices}"
    );
    // The device rules apply inside: /dev/null (default list) and the allowed 10:229 open,
    // /dev/kmsg (1:11, not allowed) does not, although the node exists and root may write it.
    let (code, out, err) = decode(
        w.berth()
            .args(["exec", &id, "sh", "-c", "echo x > /dev/null && echo null-ok; (exec 3</dev/fuse) && echo fuse-ok; (exec 3>/dev/kmsg) 2>/dev/null || echo kmsg-denied"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "null-ok\nfuse-ok\nkmsg-denied\n");
    assert!(w
        .berth()
        .args(["delete", "-f", &id])
        .status()
        .unwrap()
        .success());
    w.assert_clean();
}

#[test]
fn pids_limit_stops_fork() {
    if !can_run() || !hybrid() {
        return;
    }
    // busybox sh gives up with "can't fork" when a background job cannot be forked.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/busybox sleep 2 & done; echo all-forked";
    let w = World::new(&["sh", "-c", script]);
    let (code, out, _) = w.run("nolimit");
    assert_eq!(
        (code, out.as_str()),
        (0, "all-forked\n"),
        "control run without a limit"
    );
    let mut c = w.base_config(&["sh", "-c", script]);
    c["linux"]["resources"] = json!({"pids": {"limit": 4}});
    w.write_config(&c);
    let (code, out, err) = w.run("pids");
    assert_ne!(code, 0);
    assert!(!out.contains("all-forked"));
    assert!(err.contains("can't fork"), "{err}");
    w.assert_clean();
}

#[test]
fn memory_limit_oom_kills_and_events_reports_it() {
    if !can_run() || !hybrid() {
        return;
    }
    let w = World::new(&["true"]);
    let id = start(&w, "oom", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    });
    let mut ev = w
        .berth()
        .args(["events", "--interval", "200ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = ev.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first line is a stats event.
    let first: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(first["type"], "stats");
    assert_eq!(
        first["data"]["memory"]["usage"]["limit"],
        json!(33554432u64)
    );
    let (code, _, _) = decode(
        w.berth()
            .args([
                "exec",
                &id,
                "dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=100M",
                "count=1",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 137, "the memory hog must be OOM-killed");
    let mut saw_oom = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["type"] == "oom" {
            assert_eq!(v["id"], json!(id));
            saw_oom = true;
            break;
        }
    }
    let _ = ev.kill();
    let _ = ev.wait();
    assert!(saw_oom, "no oom event");
}

fn cpu_usage(w: &World, id: &str) -> u64 {
    let out = w.berth().args(["events", "--stats", id]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["data"]["cpu"]["usage"]["total"].as_u64().unwrap()
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !can_run() || !hybrid() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["sh", "-c", "while true; do i=$((i+1)); done"]);
    c["linux"]["resources"] = json!({});
    w.write_config(&c);
    let id = w.id("pause");
    let bundle = w.bundle.to_string_lossy().into_owned();
    assert_eq!(w.detached(&["run", "-d", "--bundle", &bundle, &id]).0, 0);
    assert!(w.berth().args(["pause", &id]).status().unwrap().success());
    assert_eq!(status(&w, &id), "paused");
    assert_eq!(v1(&w, "freezer", "freezer.state"), "FROZEN");
    let a = cpu_usage(&w, &id);
    std::thread::sleep(Duration::from_millis(300));
    let b = cpu_usage(&w, &id);
    assert_eq!(a, b, "a paused container used CPU");
    let out = w.berth().args(["pause", &id]).output().unwrap();
    assert!(!out.status.success());
    assert!(w.berth().args(["resume", &id]).status().unwrap().success());
    assert_eq!(status(&w, &id), "running");
    std::thread::sleep(Duration::from_millis(300));
    assert!(cpu_usage(&w, &id) > b, "a resumed container did not run");
    let out = w.berth().args(["resume", &id]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not paused"));
    // A paused container can be force-deleted.
    assert!(w.berth().args(["pause", &id]).status().unwrap().success());
    assert!(w
        .berth()
        .args(["delete", "--force", &id])
        .status()
        .unwrap()
        .success());
    w.assert_clean();
}

#[test]
fn update_changes_limits_and_records_them() {
    if !can_run() || !hybrid() {
        return;
    }
    let w = World::new(&["true"]);
    let id = start(&w, "upd", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    });
    let out = w
        .berth()
        .args([
            "update",
            "--memory",
            "128m",
            "--pids-limit",
            "20",
            "--cpu-share",
            "256",
            &id,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        v1(&w, "memory", "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(v1(&w, "pids", "pids.max"), "20");
    assert_eq!(v1(&w, "cpu", "cpu.shares"), "256");
    let res = w.tmp.path().join("res.json");
    std::fs::write(&res, r#"{"cpu": {"quota": 30000, "period": 100000}}"#).unwrap();
    let out = w
        .berth()
        .args(["update", "-r"])
        .arg(&res)
        .arg(&id)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v1(&w, "cpu", "cpu.cfs_quota_us"), "30000");
    std::fs::write(&res, r#"{"cpu": {"quota": "lots"}}"#).unwrap();
    let out = w
        .berth()
        .args(["update", "-r"])
        .arg(&res)
        .arg(&id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cpu.quota"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ps_and_kill_all() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    // Without a PID namespace killing init leaves the others: kill --all must get them all.
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    w.write_config(&c);
    let id = w.id("killall");
    let bundle = w.bundle.to_string_lossy().into_owned();
    assert_eq!(w.detached(&["run", "-d", "--bundle", &bundle, &id]).0, 0);
    std::thread::sleep(Duration::from_millis(200));
    let out = w.berth().args(["ps", "-f", "json", &id]).output().unwrap();
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.len(), 3, "{pids:?}");
    let out = w.berth().args(["ps", &id]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().next().unwrap().contains("PID"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.ends_with(" sleep 100")).count(),
        2,
        "{text}"
    );
    assert!(w
        .berth()
        .args(["kill", "--all", &id, "KILL"])
        .status()
        .unwrap()
        .success());
    for _ in 0..200 {
        if pids.iter().all(|p| {
            !std::path::Path::new(&format!("/proc/{p}/cmdline")).exists()
                || std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| s.contains(") Z"))
                    .unwrap_or(true)
        }) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in &pids {
        let st = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        assert!(
            st.is_empty() || st.contains(") Z"),
            "process {p} survived kill --all"
        );
    }
    assert!(w.berth().args(["delete", &id]).status().unwrap().success());
    w.assert_clean();
}

fn in_cgroup2_ns(w: &World, script: &str) -> (i32, String, String) {
    let full =
        format!("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && {script}");
    decode(
        std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &full])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("unshare: {e} ({})", w.tmp.path().display())),
    )
}

#[test]
fn cgroup2_device_filter_freeze_and_clear_errors() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["process"]["args"] = json!(["sh", "-c", "while true; do sleep 0.1; done"]);
    c["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]});
    c["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}
    ]);
    w.write_config(&c);
    let id = w.id("v2dev");
    let b = berth_bin().display().to_string();
    let r = w.root.display().to_string();
    let script = format!(
        "{b} --root {r} run -d --bundle {bundle} {id} >/dev/null 2>&1 || exit 10; \
         {b} --root {r} exec {id} sh -c 'echo x > /dev/null && echo null-ok; (exec 3</dev/fuse) && echo fuse-ok; (exec 3>/dev/kmsg) 2>/dev/null || echo kmsg-denied'; \
         {b} --root {r} pause {id} || exit 11; {b} --root {r} state {id} | grep -q paused || exit 12; \
         cat /sys/fs/cgroup/{parent}/ctr/cgroup.freeze; \
         {b} --root {r} resume {id} || exit 13; \
         {b} --root {r} update --pids-limit 5 {id} 2>&1; \
         {b} --root {r} delete -f {id}",
        bundle = w.bundle.display(),
        parent = w.cgroup_parent,
    );
    let (code, out, err) = in_cgroup2_ns(&w, &script);
    assert_eq!(code, 0, "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "null-ok");
    assert_eq!(lines[1], "fuse-ok", "{out}");
    assert_eq!(lines[2], "kmsg-denied", "{out}");
    assert_eq!(lines[3], "1");
    // Only hugetlb is enabled on this machine's cgroup2: berth says what to enable instead of
    // changing the root cgroup it did not create.
    assert!(out.contains("pids controller is not enabled"), "{out}");
    w.assert_clean();
}

/// crun's `--cgroup-manager=disabled`: the container runs, no cgroup is made for it and its
/// limits are ignored; `cgroupfs` is the default driver and `systemd` is --systemd-cgroup.
#[test]
fn cgroup_manager_disabled_makes_no_cgroup() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["sleep", "100"]);
    c["linux"]["resources"] = json!({"pids": {"limit": 10}});
    w.write_config(&c);
    let id = w.id("nocg");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let (code, _, err) = w.detached(&[
        "--cgroup-manager",
        "disabled",
        "run",
        "-d",
        "--bundle",
        &bundle,
        &id,
    ]);
    assert_eq!(code, 0, "run -d with --cgroup-manager=disabled: {err}");
    assert_eq!(status(&w, &id), "running");
    let made: Vec<_> = w.cgroup_dirs().into_iter().filter(|d| d.exists()).collect();
    let (code, _, err) = w.detached(&["delete", "-f", &id]);
    assert_eq!(code, 0, "delete -f: {err}");
    assert!(made.is_empty(), "cgroups made: {made:?}");
    w.assert_clean();
    c["process"]["args"] = json!(["true"]);
    w.write_config(&c);
    let out = w
        .berth()
        .args(["--cgroup-manager", "cgroupfs", "run", "--bundle"])
        .arg(&w.bundle)
        .arg(w.id("cgfs"))
        .output()
        .unwrap();
    let (code, _, err) = decode(out);
    assert_eq!(code, 0, "run with --cgroup-manager=cgroupfs: {err}");
    w.assert_clean();
}
