//! Rootless berth: an unprivileged uid (no passwd entry needed) runs `berth spec --rootless`
//! and drives the container through run, run -d, exec, kill and delete; its own uid is mapped
//! to root inside; cgroups not delegated to it are skipped, and resource limits that cannot be
//! applied are a clear error. The uid's state lives under its XDG_RUNTIME_DIR and is gone after.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An unprivileged uid/gid for the test, unlikely to own anything on the machine.
const UID: u32 = 47011;

struct Rootless {
    tmp: tempfile::TempDir,
    uid: u32,
}

impl Rootless {
    fn new() -> Rootless {
        Self::as_uid(UID)
    }

    fn as_uid(uid: u32) -> Rootless {
        let tmp = tempfile::Builder::new()
            .prefix("berth-rootless-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = tmp.path().join("bundle");
        make_rootfs(&bundle.join("rootfs"));
        std::fs::create_dir_all(tmp.path().join("xdg")).unwrap();
        chown_tree(tmp.path(), uid);
        Rootless { tmp, uid }
    }

    fn bundle(&self) -> PathBuf {
        self.tmp.path().join("bundle")
    }

    fn xdg(&self) -> PathBuf {
        self.tmp.path().join("xdg")
    }

    /// Runs berth as the unprivileged uid, stdio on files it owns.
    fn berth(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.tmp.path().join("out");
        let err = self.tmp.path().join("err");
        for f in [&out, &err] {
            std::fs::write(f, "").unwrap();
            std::os::unix::fs::chown(f, Some(self.uid), Some(self.uid)).unwrap();
        }
        let status = Command::new(berth_bin())
            .args(args)
            .current_dir(self.bundle())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", self.xdg())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .uid(self.uid)
            .gid(self.uid)
            .status()
            .unwrap();
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&out).unwrap_or_default(),
            std::fs::read_to_string(&err).unwrap_or_default(),
        )
    }

    fn set_args(&self, args: &[&str], extra: impl FnOnce(&mut serde_json::Value)) {
        let path = self.bundle().join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        c["process"]["args"] = serde_json::json!(args);
        c["process"]["terminal"] = serde_json::json!(false);
        extra(&mut c);
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        for id in ["rl-run", "rl-detached", "rl-limits", "rl-ps"] {
            let _ = self.berth(&["delete", "--force", id]);
        }
    }
}

fn chown_tree(p: &Path, uid: u32) {
    let _ = std::os::unix::fs::lchown(p, Some(uid), Some(uid));
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

/// Without a delegated cgroup, `ps` and `kill --all` find the container's processes through
/// its pid namespace: the init, its children and an `exec` process.
#[test]
fn ps_and_kill_all_without_a_cgroup_use_the_pid_namespace() {
    if !can_run() {
        return;
    }
    let r = Rootless::new();
    let (code, _, err) = r.berth(&["spec", "--rootless"]);
    assert_eq!(code, 0, "spec --rootless: {err}");
    r.set_args(&["sh", "-c", "sleep 301 & sleep 302"], |_| {});
    let (code, out, err) = r.berth(&["run", "-d", "rl-ps"]);
    assert_eq!(code, 0, "run -d: {out} {err}");
    let (code, out, err) = r.berth(&["exec", "-d", "rl-ps", "sleep", "303"]);
    assert_eq!(code, 0, "exec -d: {out} {err}");
    let (_, out, _) = r.berth(&["state", "rl-ps"]);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    let init = st["pid"].as_i64().unwrap();
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let cmdline = |p: i64| std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
    let mut pids = Vec::new();
    for _ in 0..100 {
        let (code, out, err) = r.berth(&["ps", "--format", "json", "rl-ps"]);
        assert_eq!(code, 0, "ps: {err}");
        pids = serde_json::from_str::<Vec<i64>>(&out).unwrap();
        if pids.len() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(pids.contains(&init), "{pids:?}");
    for want in ["301", "302", "303"] {
        assert!(
            pids.iter()
                .any(|p| String::from_utf8_lossy(&cmdline(*p)).contains(want)),
            "sleep {want} missing from {pids:?}"
        );
    }
    for p in &pids {
        assert_eq!(
            ns(*p),
            ns(init),
            "{p} is not in the container's pid namespace"
        );
    }
    let (code, out, _) = r.berth(&["ps", "rl-ps"]);
    assert_eq!(code, 0);
    assert!(out.contains("PID") && out.contains("sleep 303"), "{out}");
    let (code, _, err) = r.berth(&["kill", "--all", "rl-ps", "KILL"]);
    assert_eq!(code, 0, "kill --all: {err}");
    // Alive: not gone and not a zombie (an exec -d process is reparented to the machine's init,
    // which may reap it late).
    let alive = |p: &i64| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        !stat.is_empty() && state != Some("Z")
    };
    for _ in 0..100 {
        if !pids.iter().any(alive) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left: Vec<String> = pids
        .iter()
        .filter(|p| alive(p))
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
        .collect();
    assert!(left.is_empty(), "survivors of kill --all: {left:?}");
    let (code, _, err) = r.berth(&["delete", "rl-ps"]);
    assert_eq!(code, 0, "delete: {err}");
}

#[test]
fn an_unprivileged_user_runs_execs_kills_and_deletes() {
    if !can_run() {
        return;
    }
    let r = Rootless::new();
    let (code, _, err) = r.berth(&["spec", "--rootless"]);
    assert_eq!(code, 0, "spec --rootless: {err}");

    // The spec as written runs (only the command changed).
    r.set_args(
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map",
        ],
        |_| {},
    );
    let (code, out, err) = r.berth(&["run", "rl-run"]);
    assert_eq!(code, 0, "rootless run: {out} {err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.first(), Some(&vec!["0"]), "{out}");
    let uid = UID.to_string();
    assert_eq!(
        lines.get(1),
        Some(&vec!["0", uid.as_str(), "1"]),
        "uid_map: {out}"
    );
    assert_eq!(
        lines.get(2),
        Some(&vec!["0", uid.as_str(), "1"]),
        "gid_map: {out}"
    );

    r.set_args(&["sleep", "600"], |_| {});
    let (code, out, err) = r.berth(&["run", "-d", "rl-detached"]);
    assert_eq!(code, 0, "run -d: {out} {err}");
    let (code, out, err) = r.berth(&["exec", "rl-detached", "sh", "-c", "echo exec-ok; exit 5"]);
    assert_eq!(code, 5, "exec: {out} {err}");
    assert!(out.contains("exec-ok"), "{out}");
    let (code, out, _) = r.berth(&["state", "rl-detached"]);
    assert_eq!(code, 0);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["status"], "running");
    let pid = st["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let host_uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string();
    assert_eq!(host_uid, uid, "the container runs as the user on the host");
    let (code, _, err) = r.berth(&["kill", "rl-detached", "KILL"]);
    assert_eq!(code, 0, "kill: {err}");
    for _ in 0..100 {
        let (_, out, _) = r.berth(&["state", "rl-detached"]);
        if out.contains("\"stopped\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _, err) = r.berth(&["delete", "rl-detached"]);
    assert_eq!(code, 0, "delete: {err}");

    // Limits without a delegated cgroup: a clear error, nothing left behind.
    r.set_args(&["true"], |c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 16777216});
    });
    let (code, _, err) = r.berth(&["run", "rl-limits"]);
    if code == 0 {
        // A cgroup was delegated to the user on this machine (cgroup2 subtree): fine too.
        return;
    }
    assert!(err.contains("linux.resources"), "{err}");
    let left: Vec<_> = std::fs::read_dir(r.xdg().join("berth"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left behind: {left:?}");
}

/// A passwd entry and subordinate id ranges for UID (newuidmap needs both), removed on drop.
struct SubIds {
    made_user: bool,
}

/// The uid of the newuidmap test (its own, so removing its passwd entry never races the
/// other test's containers).
const MAP_UID: u32 = 47012;
const NAME: &str = "berth-rootless-test";
const SUB: &str = "47012:300000:65536";

impl SubIds {
    fn new() -> Option<SubIds> {
        if !Path::new("/usr/bin/newuidmap").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "newuidmap missing in CI: hack/test.sh installs uidmap"
            );
            eprintln!("skipped: newuidmap is not installed (apt-get install uidmap)");
            return None;
        }
        let known = Command::new("getent")
            .args(["passwd", &MAP_UID.to_string()])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        let made_user = !known
            && Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--uid",
                    &MAP_UID.to_string(),
                    "--user-group",
                    NAME,
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        for f in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            if !text.lines().any(|l| l == SUB) {
                std::fs::write(f, format!("{text}{SUB}\n")).unwrap();
            }
        }
        Some(SubIds { made_user })
    }
}

impl Drop for SubIds {
    fn drop(&mut self) {
        for f in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let kept: String = text
                .lines()
                .filter(|l| *l != SUB)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(f, kept);
        }
        if self.made_user {
            let _ = Command::new("userdel").arg(NAME).status();
        }
    }
}

#[test]
fn several_ranges_are_mapped_through_newuidmap() {
    if !can_run() {
        return;
    }
    let Some(_ids) = SubIds::new() else { return };
    let r = Rootless::as_uid(MAP_UID);
    let (code, _, err) = r.berth(&["spec", "--rootless"]);
    assert_eq!(code, 0, "spec --rootless: {err}");
    let maps = serde_json::json!([
        {"containerID": 0, "hostID": MAP_UID, "size": 1},
        {"containerID": 1, "hostID": 300000, "size": 65536}
    ]);
    r.set_args(&["cat", "/proc/self/uid_map", "/proc/self/gid_map"], |c| {
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps.clone();
    });
    let (code, out, err) = r.berth(&["run", "rl-run"]);
    assert_eq!(code, 0, "run with two ranges: {out} {err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let uid = MAP_UID.to_string();
    let want = vec![
        vec!["0", uid.as_str(), "1"],
        vec!["1", "300000", "65536"],
        vec!["0", uid.as_str(), "1"],
        vec!["1", "300000", "65536"],
    ];
    assert_eq!(lines, want, "{out}");
}
