//! Escape-class attacks on the processes berth puts into a running container: an `exec`
//! process caught in its handshake (while it is still the berth binary) and the descriptors
//! that reach exec processes, hooks and the container's init.
//!
//! The handshake is caught deterministically with a seccomp agent (berth_conformance::agent): the profile
//! notifies `capset`, which berth calls after joining the container and before execve; the
//! agent holds the victim `exec` there while a second `exec` attacks it.

mod common;
use berth_conformance::agent::Agent;
use common::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// The victim's pid inside the container's pid namespace (last NSpid field).
fn ns_pid(host_pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    line.split_whitespace().last().unwrap().to_string()
}

/// What a process of the container can do with the victim's /proc entries.
const ATTACK: &str = r#"p=$VICTIM
echo "comm=$(cat /proc/$p/comm)"
/bin/busybox cat /proc/$p/exe > /dev/null 2>&1 && echo READ || echo NOREAD
( : >> /proc/$p/exe ) 2>/dev/null && echo WRITE || echo NOWRITE
/bin/busybox readlink /proc/$p/exe > /dev/null 2>&1 && echo LINK || echo NOLINK
n=0; for f in /proc/$p/fd/*; do n=$((n+1)); /bin/busybox readlink $f > /dev/null 2>&1 && echo FDLINK; done; echo "fds-tried=$n"
/bin/busybox ls /proc/$p/root/ > /dev/null 2>&1 && echo ROOT || echo NOROOT
"#;

/// runc CVE-2019-5736 class for `exec`: while an exec process is still the berth binary
/// (joined the container, not yet exec'd), another process of the container can neither read
/// nor open for writing its /proc/PID/exe, nor follow that link or those of its descriptors,
/// nor enter its root.
#[test]
fn proc_exe_of_exec_process_in_handshake_is_not_reachable() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "100"]);
    let agent = Agent::start(w.tmp.path()).unwrap();
    let mut c = w.base_config(&["sleep", "100"]);
    // Without noNewPrivileges the filter goes on before the capability switch (capset).
    c["process"]["noNewPrivileges"] = json!(false);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path,
        "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_NOTIFY"}]
    });
    w.write_config(&c);
    let id = w.id("handshake");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let (code, _, err) = w.detached(&["run", "-d", "--bundle", &bundle, &id]);
    assert_eq!(code, 0, "{err}");
    // Connection 1 was the init; hold the next one, the victim exec.
    agent.hold(2);
    let mut victim = w
        .berth()
        .args(["exec", &id, "true"])
        .stdout(std::fs::File::create(w.tmp.path().join("victim.out")).unwrap())
        .stderr(std::fs::File::create(w.tmp.path().join("victim.err")).unwrap())
        .spawn()
        .unwrap();
    let held = agent.held(Duration::from_secs(20));
    let Some(host_pid) = held else {
        let _ = victim.kill();
        let _ = victim.wait();
        panic!("the victim exec never reached capset");
    };
    let vpid = ns_pid(host_pid);
    let out = w
        .berth()
        .args([
            "exec",
            "--env",
            &format!("VICTIM={vpid}"),
            &id,
            "sh",
            "-c",
            ATTACK,
        ])
        .output()
        .unwrap();
    agent.release();
    let status = victim.wait().unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "attacker: {out} {err}");
    assert!(out.contains("comm=berth"), "the victim is not berth: {out}");
    for denied in ["NOREAD", "NOWRITE", "NOLINK", "NOROOT"] {
        assert!(out.contains(denied), "{denied} expected: {out}");
    }
    // Root in the container may list the fd numbers, but not follow or open a single one.
    assert!(
        !out.contains("FDLINK"),
        "a descriptor of the victim was reachable: {out}"
    );
    assert!(!out.contains("fds-tried=0"), "{out}");
    assert!(status.success(), "the victim exec failed after release");
    let _ = w.berth().args(["delete", "--force", &id]).output();
    drop(agent);
    w.assert_clean();
}

/// The descriptors a listing of /proc/self/fd shows, minus the listing's own directory fd.
fn fds_of(listing: &str) -> Vec<u32> {
    let mut v: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort();
    // `ls` opened one directory to list it: the highest number.
    v.pop();
    v
}

/// runc CVE-2024-21626 class: descriptors the caller of berth holds (a host file and a host
/// directory, not close-on-exec) reach neither the container's init, nor a startContainer hook
/// run in the container, nor an `exec` process; only stdio does.
#[test]
fn no_host_fd_reaches_init_hooks_or_exec() {
    if !can_run() {
        return;
    }
    let init = "ls /proc/self/fd > /tmp/init.fds; sleep 100";
    let w = World::new(&["sh", "-c", init]);
    let mut c = w.base_config(&["sh", "-c", init]);
    c["hooks"] = json!({"startContainer": [{"path": "/bin/sh",
        "args": ["sh", "-c", "ls /proc/self/fd > /tmp/hook.fds"]}]});
    w.write_config(&c);
    let id = w.id("fds");
    // The shell opens fd 7 (a host file) and fd 8 (the host's /) without close-on-exec and
    // then becomes berth.
    let with_fds = |args: &str| {
        let script = format!(
            "exec 7</etc/hostname 8</; exec {} --root {} {args}",
            berth_bin().display(),
            w.root.display()
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(w.tmp.path().join("o")).unwrap())
            .stderr(std::fs::File::create(w.tmp.path().join("e")).unwrap())
            .status()
            .unwrap();
        let read = |f: &str| std::fs::read_to_string(w.tmp.path().join(f)).unwrap_or_default();
        (out.code().unwrap_or(-1), read("o"), read("e"))
    };
    let (code, _, err) = with_fds(&format!("run -d --bundle {} {id}", w.bundle.display()));
    assert_eq!(code, 0, "{err}");
    let rootfs = w.bundle.join("rootfs");
    // The shell creates the file before `ls` writes it: wait for content, not the name.
    for _ in 0..200 {
        let written = std::fs::read_to_string(rootfs.join("tmp/init.fds")).unwrap_or_default();
        if written.ends_with('\n') {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, out, err) = with_fds(&format!("exec {id} ls /proc/self/fd"));
    assert_eq!(code, 0, "{err}");
    let init = std::fs::read_to_string(rootfs.join("tmp/init.fds")).unwrap();
    let hook = std::fs::read_to_string(rootfs.join("tmp/hook.fds")).unwrap();
    for (who, listing) in [
        ("init", &init),
        ("startContainer hook", &hook),
        ("exec", &out),
    ] {
        assert_eq!(fds_of(listing), vec![0, 1, 2], "{who} sees {listing:?}");
    }
    let _ = w.berth().args(["delete", "--force", &id]).output();
    w.assert_clean();
}
