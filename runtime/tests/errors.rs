//! Bad input: a clear one-line error naming the field, a non-zero exit, nothing left behind;
//! runc-shaped JSON log lines.

mod common;
use common::*;
use serde_json::json;

fn expect_failure(w: &World, needle: &str) -> String {
    let (code, _, err) = w.run("bad");
    assert_ne!(code, 0, "expected failure");
    assert!(
        err.contains(needle),
        "error {err:?} does not mention {needle:?}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one error line expected: {err}"
    );
    w.assert_clean();
    err
}

#[test]
fn broken_json() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    std::fs::write(w.bundle.join("config.json"), "{\"ociVersion\": \"1.0.0\", ").unwrap();
    expect_failure(&w, "config.json");
}

#[test]
fn unknown_namespace_type() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["linux"]["namespaces"][2] = json!({"type": "bogus"});
    w.write_config(&c);
    expect_failure(&w, "linux.namespaces[2].type");
}

#[test]
fn missing_rootfs() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["root"]["path"] = json!("does-not-exist");
    w.write_config(&c);
    expect_failure(&w, "root.path");
}

#[test]
fn seccomp_notify_without_listener_path_is_refused() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    w.write_config(&c);
    expect_failure(&w, "linux.seccomp.listenerPath");
}

#[test]
fn failure_inside_init_leaves_nothing_behind() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/x", "source": "/nonexistent/source", "options": ["bind"]}));
    w.write_config(&c);
    expect_failure(&w, "mounts[7].source");
}

#[test]
fn invalid_container_id() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let out = w
        .berth()
        .args(["run", "--bundle"])
        .arg(&w.bundle)
        .arg("../escape")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid container ID"));
    assert!(!w.tmp.path().join("escape").exists());
}

#[test]
fn json_log_lines_like_runc() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let log = w.tmp.path().join("log.json");
    let out = w
        .berth()
        .args(["--log-format", "json", "--log"])
        .arg(&log)
        .args(["state", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("does not exist"));
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn systemd_cgroup_without_systemd_is_a_clear_error() {
    // Where systemd does not run, --systemd-cgroup create fails saying so and leaves nothing.
    // (The driver itself is tested against a real systemd in tests/systemd.rs.)
    if !can_run() || std::path::Path::new("/run/systemd/system").exists() {
        return;
    }
    let w = World::new(&["true"]);
    let id = w.id("sdc");
    let mut c = w.base_config(&["true"]);
    c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth-test:{id}"));
    w.write_config(&c);
    let out = w
        .berth()
        .arg("--systemd-cgroup")
        .args(["create", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("systemd is not running on this host"), "{err}");
    w.assert_clean();
}

#[test]
fn create_killed_half_way_is_removed_by_delete_force() {
    if !can_run() {
        return;
    }
    // A createRuntime hook that never returns holds `create` half-way; we kill create there.
    let w = World::new(&["sleep", "100"]);
    let mut c = w.base_config(&["sleep", "100"]);
    c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "100"]}]});
    w.write_config(&c);
    let id = w.id("halfway");
    let mut child = w
        .berth()
        .args(["create", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let state = w.root.join(&id).join("state.json");
    for _ in 0..500 {
        if state.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The hook runs as a child of create: note its PID, then kill both (they are ours).
    let pid = child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    child.kill().unwrap();
    child.wait().unwrap();
    for c in children.split_whitespace() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.parse().unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let out = w.berth().args(["delete", "--force", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.assert_clean();
}
