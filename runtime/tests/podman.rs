//! podman drives berth (`--runtime`), unchanged: run, exit codes, detached containers, exec,
//! pause/unpause, top, stop, rm, a terminal, and the configs podman generates for its common
//! flags (--read-only, --tmpfs, --device, --uidmap, --cap-add/--cap-drop, --security-opt,
//! --sysctl, --init, pods sharing namespaces), checked with runc too. Uses a private podman store
//! in a temp dir.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// podman's lock table is machine-wide shared memory: two podman stores used by parallel tests
/// would fight over the same lock numbers, so the tests here take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Podman {
    dir: tempfile::TempDir,
    runtime: PathBuf,
}

impl Podman {
    fn new() -> Option<Podman> {
        Self::with_runtime(berth_bin())
    }

    fn with_runtime(runtime: PathBuf) -> Option<Podman> {
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!("skipped: podman is not installed (hack/test.sh installs it)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .unwrap();
        let p = Podman { dir, runtime };
        let (code, out, err) = p.run(&["podman", "image", "exists", "localhost/busybox:latest"]);
        assert!(code == 0 || code == 1, "setup: {out} {err}");
        Some(p)
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/with-podman.sh")
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(Self::script())
            .arg(self.dir.path())
            .arg(&self.runtime)
            .arg("--")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        decode(out)
    }

    fn podman(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["podman"];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "--all", "--force"]);
        let _ = self.podman(&["system", "reset", "--force"]);
        // The overlay driver keeps a private bind mount of its home; release it before removal.
        let graph = self.dir.path().join("graph");
        let _ = Command::new("umount")
            .arg("-R")
            .arg("-l")
            .arg(&graph)
            .output();
    }
}

// podman's default seccomp profile applies (berth implements linux.seccomp).
const RUN: &[&str] = &["run", "--rm", "--network", "none", "--pull=never"];

#[test]
fn podman_drives_berth() {
    if !can_run() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = Podman::new() else { return };
    let mut args = RUN.to_vec();
    args.extend([
        "localhost/busybox:latest",
        "sh",
        "-c",
        "echo hello via berth; grep '^Seccomp:' /proc/self/status; exit 3",
    ]);
    let (code, out, err) = p.podman(&args);
    assert_eq!(code, 3, "{out} {err}");
    assert!(out.contains("hello via berth"), "{out} {err}");
    assert!(
        out.contains("Seccomp:\t2"),
        "podman's seccomp filter is not in place: {out}"
    );

    let mut args = RUN.to_vec();
    args.extend(["-t", "localhost/busybox:latest", "tty"]);
    let (code, out, err) = p.podman(&args);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("/dev/pts/0"), "{out}");

    // One test, one store: podman's lock table is machine-wide shared memory, so two podman
    // stores in parallel tests would fight over the same lock numbers.
    let (code, _, err) = p.podman(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "--pull=never",
        "localhost/busybox:latest",
        "sleep",
        "1000",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = p.podman(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo exec-ok; cat /proc/1/cmdline",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("exec-ok\nsleep"), "{out}");
    // podman maps berth's runc-worded exec errors and statuses: 127 for a missing command,
    // the process's own status otherwise; a non-root exec's stdout is its own (fchowned).
    let (code, _, err) = p.podman(&["exec", "web", "no-such-command"]);
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = p.podman(&["exec", "web", "sh", "-c", "exit 5"]);
    assert_eq!(code, 5, "{err}");
    let (code, out, err) = p.podman(&[
        "exec",
        "-t",
        "-u",
        "1000",
        "web",
        "sh",
        "-c",
        "stat -c %u:%g $(tty)",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "1000:5", "{out}");
    let (code, _, err) = p.podman(&["pause", "web"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = p.podman(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(out.trim(), "paused");
    let (code, _, err) = p.podman(&["unpause", "web"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = p.podman(&["top", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sleep 1000"), "{out}");
    let (code, _, err) = p.podman(&["stop", "-t", "1", "web"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = p.podman(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(out.trim(), "exited");
    let (code, _, err) = p.podman(&["rm", "web"]);
    assert_eq!(code, 0, "{err}");
}

/// Each of podman's common flags, as one `sh -c` check inside a container: (flags, command,
/// text the output must contain).
const FLAG_CASES: &[(&[&str], &str, &str)] = &[
    (
        &["--read-only"],
        "touch /tmp/a /run/b /var/tmp/c && echo tmpfs-writable; touch /etc/x 2>/dev/null || echo root-ro",
        "tmpfs-writable\nroot-ro",
    ),
    (
        &["--tmpfs", "/scratch:rw,size=1m,mode=1777"],
        "stat -c %a /scratch; grep -c ' /scratch .*size=1024k' /proc/self/mountinfo",
        "1777\n1",
    ),
    (
        &["--device", "/dev/fuse"],
        "stat -c '%t:%T' /dev/fuse",
        "a:e5",
    ),
    (
        &["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"],
        "cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //'",
        "0 100000 65536",
    ),
    (
        &["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--security-opt", "no-new-privileges"],
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -d '\t'",
        "CapEff:0000000000000400\nNoNewPrivs:1",
    ),
    (
        &["--security-opt", "mask=/etc/hostname", "--security-opt", "unmask=/proc/keys"],
        "echo hostname=$(cat /etc/hostname | wc -c); test $(cat /proc/keys | wc -c) -gt 0 && echo keys-visible",
        "hostname=0\nkeys-visible",
    ),
    (
        &["--security-opt", "seccomp=unconfined"],
        "grep ^Seccomp: /proc/self/status",
        "Seccomp:\t0",
    ),
    (
        &["--sysctl", "net.ipv4.ip_forward=1"],
        "cat /proc/sys/net/ipv4/ip_forward",
        "1",
    ),
    (
        &["--init"],
        "tr '\\0' ' ' < /proc/1/cmdline",
        "/run/podman-init -- sh -c",
    ),
];

/// The flag checks and a pod on one runtime; returns the failures.
fn flag_failures(p: &Podman) -> Vec<String> {
    let mut failures = Vec::new();
    for (flags, cmd, want) in FLAG_CASES {
        let mut args = RUN.to_vec();
        args.extend_from_slice(flags);
        args.extend(["localhost/busybox:latest", "sh", "-c", cmd]);
        let (code, out, err) = p.podman(&args);
        if code != 0 || !out.contains(want) {
            failures.push(format!(
                "{flags:?}: exit {code}, want {want:?}, got {out:?} {err}"
            ));
        }
    }
    // A pod sharing pid, ipc and uts: the second container sees the first one's process.
    let pod = |args: &[&str]| p.podman(args);
    let (code, _, err) = pod(&[
        "pod",
        "create",
        "--name",
        "pod1",
        "--share",
        "pid,ipc,uts",
        "--network",
        "none",
    ]);
    if code != 0 {
        failures.push(format!("pod create: {err}"));
        return failures;
    }
    let (code, _, err) = pod(&[
        "run",
        "-d",
        "--pod",
        "pod1",
        "--name",
        "pod1-a",
        "--pull=never",
        "localhost/busybox:latest",
        "sleep",
        "600",
    ]);
    if code != 0 {
        failures.push(format!("pod member a: {err}"));
    }
    let (code, out, err) = pod(&[
        "run",
        "--rm",
        "--pod",
        "pod1",
        "--pull=never",
        "localhost/busybox:latest",
        "sh",
        "-c",
        "ps -o comm | grep -c '^sleep$'; readlink /proc/self/ns/ipc",
    ]);
    let (_, a_ipc, _) = pod(&["exec", "pod1-a", "readlink", "/proc/self/ns/ipc"]);
    if code != 0
        || !out.starts_with("1\n")
        || !out.contains(a_ipc.trim())
        || a_ipc.trim().is_empty()
    {
        failures.push(format!(
            "pod sharing: exit {code}, {out:?} vs {a_ipc:?} {err}"
        ));
    }
    let (code, _, err) = pod(&["pod", "rm", "-f", "pod1"]);
    if code != 0 {
        failures.push(format!("pod rm: {err}"));
    }
    failures
}

#[test]
fn podman_flags_work_on_berth_and_runc() {
    if !can_run() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = Vec::new();
    for rt in [berth_bin(), PathBuf::from("/usr/sbin/runc")] {
        if !rt.exists() {
            eprintln!("skipped {}: not installed", rt.display());
            continue;
        }
        let Some(p) = Podman::with_runtime(rt.clone()) else {
            return;
        };
        for f in flag_failures(&p) {
            report.push(format!("{}: {f}", rt.display()));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
