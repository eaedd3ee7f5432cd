//! docker drives berth unchanged (`dockerd --add-runtime berth=...`, `docker run --runtime
//! berth`): run, exit code, detached container, exec, pause/unpause, top, stop, rm, a terminal
//! and resource flags. A private dockerd (hack/with-docker.sh) with its own roots is used.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn docker_drives_berth() {
    if !can_run() {
        return;
    }
    if !Path::new("/usr/sbin/dockerd").exists() || !Path::new("/usr/bin/docker").exists() {
        eprintln!("skipped: docker.io is not installed (hack/test.sh installs it)");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-docker-")
        .tempdir()
        .unwrap();
    // docker's default seccomp profile applies.
    let script = r#"R="--runtime berth --network none"
$DOCKER run --rm $R localhost/busybox:latest sh -c 'echo hello-from-docker; grep ^Seccomp: /proc/self/status; exit 4'; echo "rc=$?"
$DOCKER run --rm -t $R localhost/busybox:latest tty
$DOCKER run --rm $R --memory 64m --pids-limit 30 localhost/busybox:latest cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
$DOCKER run -d --name web1 $R localhost/busybox:latest sleep 1000 >/dev/null && echo run-d-ok
$DOCKER exec web1 sh -c 'echo exec-ok'
$DOCKER pause web1 >/dev/null && echo "state=$($DOCKER inspect -f '{{.State.Status}}' web1)"
$DOCKER unpause web1 >/dev/null && echo "state=$($DOCKER inspect -f '{{.State.Status}}' web1)"
$DOCKER top web1 | grep -q 'sleep 1000' && echo top-ok
$DOCKER stop -t 1 web1 >/dev/null && echo "state=$($DOCKER inspect -f '{{.State.Status}}' web1)"
$DOCKER rm web1 >/dev/null && echo rm-ok
"#;
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/with-docker.sh"))
        .arg(dir.path())
        .arg(berth_bin())
        .args(["--", "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{out} {err}");
    for want in [
        "hello-from-docker",
        "Seccomp:\t2",
        "rc=4",
        "/dev/pts/0",
        "67108864",
        "\n30",
        "run-d-ok",
        "exec-ok",
        "state=paused",
        "state=running",
        "top-ok",
        "state=exited",
        "rm-ok",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
}
