//! podman drives berth (`--runtime`), unchanged: run, exit codes, detached containers, exec,
//! pause/unpause, top, stop, rm, a terminal. Uses a private podman store in a temp dir.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Option<Podman> {
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!("skipped: podman is not installed (hack/test.sh installs it)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .unwrap();
        let p = Podman { dir };
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
            .arg(berth_bin())
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
