//! `berth exec`: a second process in the running container's namespaces and cgroups.

mod common;
use common::*;
use serde_json::json;

fn running(w: &World, name: &str) -> String {
    let id = w.id(name);
    let bundle = w.bundle.to_string_lossy().into_owned();
    let (code, _, err) = w.detached(&["run", "-d", "--bundle", &bundle, &id]);
    assert_eq!(code, 0, "run -d: {err}");
    id
}

fn exec(w: &World, args: &[&str]) -> (i32, String, String) {
    decode(w.berth().arg("exec").args(args).output().unwrap())
}

#[test]
fn exec_joins_namespaces_and_cgroups() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "100"]);
    let id = running(&w, "ex");
    let st: serde_json::Value =
        serde_json::from_slice(&w.berth().args(["state", &id]).output().unwrap().stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let (code, out, err) = exec(&w, &[&id, "sh", "-c", "cat /proc/1/cmdline; echo; readlink /proc/self/ns/net; readlink /proc/self/ns/mnt; hostname"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("sleep"), "{out}");
    assert_eq!(
        lines[1],
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .to_string_lossy()
    );
    assert_eq!(
        lines[2],
        std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
            .unwrap()
            .to_string_lossy()
    );
    assert_eq!(lines[3], "runc");
    // The exec'd process sits in the container's cgroup.
    let (_, out, _) = exec(&w, &[&id, "cat", "/proc/self/cgroup"]);
    assert!(out.lines().any(|l| l.ends_with(":memory:/")), "{out}");
}

#[test]
fn exec_flags_env_user_cwd_and_exit_status() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "100"]);
    let id = running(&w, "exf");
    let (code, out, err) = exec(
        &w,
        &[
            "-e",
            "FOO=bar",
            "-u",
            "1000:1000",
            "-g",
            "5",
            "--cwd",
            "/tmp",
            &id,
            "sh",
            "-c",
            "echo $FOO; id -u; id -G; pwd; exit 4",
        ],
    );
    assert_eq!(code, 4, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bar");
    assert_eq!(lines[1], "1000");
    assert!(lines[2].split_whitespace().any(|g| g == "5"), "{out}");
    assert_eq!(lines[3], "/tmp");
}

#[test]
fn exec_process_file_and_detach_with_pid_file() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "100"]);
    let id = running(&w, "exp");
    let pfile = w.tmp.path().join("process.json");
    std::fs::write(
        &pfile,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "echo from-process-json > /tmp/marker; sleep 1"],
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]
        }))
        .unwrap(),
    )
    .unwrap();
    let pid_file = w.tmp.path().join("exec.pid");
    let (code, _, err) = w.detached(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "-p",
        pfile.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(code, 0, "{err}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
    // The shell creates the file before it writes to it: wait for the content, not the name.
    let marker = w.bundle.join("rootfs/tmp/marker");
    let mut text = String::new();
    for _ in 0..300 {
        text = std::fs::read_to_string(&marker).unwrap_or_default();
        if text == "from-process-json\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(text, "from-process-json\n");
}

#[test]
fn exec_errors() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "100"]);
    let id = running(&w, "exe");
    let (code, _, err) = exec(&w, &[&id, "no-such-binary"]);
    assert_ne!(code, 0);
    assert!(err.contains("executable file not found"), "{err}");
    let (code, _, err) = exec(&w, &["missing-container", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("does not exist"), "{err}");
    assert!(w
        .berth()
        .args(["kill", &id, "KILL"])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (code, _, err) = exec(&w, &[&id, "true"]);
    assert_ne!(code, 0);
    // runc's message once the container is stopped; "container not running" when it stops
    // while exec is joining it.
    assert!(
        err.contains("cannot exec in a stopped container") || err.contains("container not running"),
        "{err}"
    );
    assert_eq!(code, 255);
}
