//! Rootless podman with berth as its runtime: an unprivileged user (made by the test, with
//! /etc/subuid and /etc/subgid ranges) runs, execs, stops and removes a container through
//! `podman --runtime`-style configuration (hack/with-podman-rootless.sh), with slirp4netns
//! for its network. Podman runs berth as root of its own user namespace: berth must see that
//! it is rootless (state under XDG_RUNTIME_DIR, no cgroups it may not make, devices bound).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const UID: u32 = 47031;
const NAME: &str = "berthpod";
const SUB: &str = "berthpod:300000:65536";

/// The user and its subordinate id ranges, removed again on drop.
struct PodUser {
    made_user: bool,
}

impl PodUser {
    fn new() -> PodUser {
        let known = Command::new("getent")
            .args(["passwd", NAME])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        let made_user = !known
            && Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--uid",
                    &UID.to_string(),
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
        PodUser { made_user }
    }
}

impl Drop for PodUser {
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

fn missing(tool: &str) -> bool {
    !Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// run -d, exec (as the container's root, with slirp4netns's tap0), stop, rm.
const SCENARIO: &str = r#"
set -e
podman run -d --pull=never --name rl-c1 localhost/busybox sleep 300 > /dev/null
echo "== exec"
podman exec rl-c1 sh -c 'id -u; cat /proc/self/uid_map; ip -4 addr show tap0'
echo "== stop"
podman stop -t 1 rl-c1 2>/dev/null
podman inspect -f '{{.State.Status}}' rl-c1
echo "== rm"
podman rm rl-c1
echo "== ps"
podman ps -a -q
echo "== end"
"#;

#[test]
fn rootless_podman_runs_execs_stops_and_removes_with_berth() {
    if !can_run() {
        return;
    }
    for tool in ["podman", "slirp4netns", "newuidmap", "setpriv"] {
        if missing(tool) {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{tool} missing in CI: hack/test.sh installs it"
            );
            eprintln!("skipped: {tool} is not installed");
            return;
        }
    }
    let _user = PodUser::new();
    let dir = tempfile::Builder::new()
        .prefix("berth-podman-rootless-")
        .tempdir()
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/with-podman-rootless.sh");
    let out = Command::new(script)
        .arg(UID.to_string())
        .arg(dir.path().join("p"))
        .arg(berth_bin())
        .args(["--", "sh", "-c", SCENARIO])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let section = |name: &str| {
        out.split(&format!("== {name}\n"))
            .nth(1)
            .and_then(|s| s.split("== ").next())
            .unwrap_or("")
            .to_string()
    };
    let exec = section("exec");
    let mut lines = exec.lines();
    assert_eq!(
        lines.next(),
        Some("0"),
        "exec runs as the container's root: {exec}"
    );
    // The container's root is the user on the host; the user's subordinate ids follow.
    let map = lines.next().unwrap_or("");
    let f: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"0"), "{exec}");
    assert!(
        exec.contains("inet 10.0.2.100/"),
        "slirp4netns network: {exec}"
    );
    assert!(section("stop").contains("exited"), "{out}");
    assert!(section("rm").contains("rl-c1"), "{out}");
    assert!(section("ps").trim().is_empty(), "containers left: {out}");
    // berth kept its state under the user's XDG_RUNTIME_DIR, and nothing is left there.
    let state = dir.path().join("p/xdg/berth");
    assert!(
        state.is_dir(),
        "berth's state root was not under XDG_RUNTIME_DIR"
    );
    let left: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().collect();
    assert!(left.is_empty(), "state left: {left:?}");
}
