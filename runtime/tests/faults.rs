//! Fault injection: `berth` is SIGKILLed at every step of create and start (BERTH_FAULT, a
//! debug-build hook), as a crash or an OOM kill would; `delete --force` must then leave no state
//! directory, cgroup, mount or process behind. hack/fault-inject.sh runs many cycles of the
//! same; this is CI's short version (each point once, with and without a pid namespace).

mod common;
use common::*;

/// Every fault point and the command that reaches it.
const POINTS: &[(&str, &str)] = &[
    ("after-dir", "create"),
    ("after-cgroup", "create"),
    ("after-state", "create"),
    ("after-fork", "create"),
    ("after-rootfs", "create"),
    ("before-ready", "create"),
    ("before-start", "run"),
    ("before-exec", "run"),
];

fn mounts_below(p: &std::path::Path) -> Vec<String> {
    let p = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&p))
        .map(str::to_string)
        .collect()
}

fn kill_and_clean(point: &str, cmd: &str, pid_ns: bool) {
    let w = World::new(&["sleep", "600"]);
    let mut c = w.base_config(&["sleep", "600"]);
    if !pid_ns {
        if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "pid");
        }
    }
    c["linux"]["resources"] = serde_json::json!({"pids": {"limit": 100}});
    w.write_config(&c);
    let id = w.id(&format!("fault-{point}"));
    let out = w
        .berth()
        .env("BERTH_FAULT", point)
        .args(if cmd == "run" {
            vec![cmd, "-d", "--bundle"]
        } else {
            vec![cmd, "--bundle"]
        })
        .arg(&w.bundle)
        .arg(&id)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.signal(),
        Some(libc::SIGKILL),
        "{point}: berth {cmd} was not killed at the fault point ({out:?})"
    );
    if point == "before-start" {
        // Nobody will start it: the init sees its channel close and exits on its own, without
        // running the program (its cgroup empties before any delete).
        let procs: Vec<_> = w
            .cgroup_dirs()
            .iter()
            .map(|d| d.join("ctr/cgroup.procs"))
            .filter(|p| p.exists())
            .collect();
        let empty = || {
            procs.iter().all(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .trim()
                    .is_empty()
            })
        };
        let mut emptied = false;
        for _ in 0..100 {
            if empty() {
                emptied = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            !procs.is_empty() && emptied,
            "before-start: the init did not exit by itself"
        );
    }
    let del = w.berth().args(["delete", "--force", &id]).output().unwrap();
    let (code, _, err) = decode(del);
    assert!(
        code == 0 || err.contains("does not exist"),
        "{point}: delete --force: {err}"
    );
    // The container's processes may take a moment to be reaped after SIGKILL.
    for _ in 0..100 {
        if w.cgroup_dirs().iter().all(|d| !d.exists()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    w.assert_clean();
    let left = mounts_below(w.tmp.path());
    assert!(left.is_empty(), "{point}: mounts left behind: {left:?}");
}

#[test]
fn a_killed_create_or_start_leaves_nothing_after_delete_force() {
    if !can_run() {
        return;
    }
    if !cfg!(debug_assertions) {
        eprintln!("skipped: fault points exist in debug builds only");
        return;
    }
    for pid_ns in [true, false] {
        for (point, cmd) in POINTS {
            kill_and_clean(point, cmd, pid_ns);
        }
    }
}
