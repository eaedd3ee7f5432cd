//! docker drives berth unchanged (`dockerd --add-runtime berth=...`, `docker run --runtime
//! berth`): run, exit code, detached container, exec, pause/unpause, top, stop, rm, a terminal
//! and resource flags. A private dockerd (hack/with-docker.sh) with its own roots is used.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Two private dockerds at once would compete for the machine's resources and logs: the
/// tests here take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn docker_drives_berth() {
    if !can_run() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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

/// The configs docker generates for its common flags, on berth and on runc (docker's default
/// runtime): --read-only with --tmpfs, --init, --network container:X, --pid container:X.
#[test]
fn docker_flags_work_on_berth_and_runc() {
    if !can_run() {
        return;
    }
    if !Path::new("/usr/sbin/dockerd").exists() || !Path::new("/usr/bin/docker").exists() {
        eprintln!("skipped: docker.io is not installed (hack/test.sh installs it)");
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::Builder::new()
        .prefix("berth-docker-flags-")
        .tempdir()
        .unwrap();
    let script = r#"for rt in berth runc; do
R="--runtime $rt --network none"
echo "== $rt"
$DOCKER run --rm $R --read-only --tmpfs /scratch:rw,size=1m localhost/busybox:latest sh -c 'touch /scratch/a && echo tmpfs-ok; touch /etc/x 2>/dev/null || echo root-ro'
$DOCKER run --rm $R --init localhost/busybox:latest sh -c 'tr "\0" " " < /proc/1/cmdline; echo'
$DOCKER run -d --name base-$rt $R localhost/busybox:latest sleep 600 >/dev/null
$DOCKER run --rm --runtime $rt --network container:base-$rt --pid container:base-$rt localhost/busybox:latest sh -c 'ps -o comm | grep -c "^sleep$"; readlink /proc/self/ns/net' > /tmp/.joined-$$
echo "joined=$(head -1 /tmp/.joined-$$)"
pid=$($DOCKER inspect -f '{{.State.Pid}}' base-$rt)
[ "$(sed -n 2p /tmp/.joined-$$)" = "$(readlink /proc/$pid/ns/net)" ] && echo same-netns
rm -f /tmp/.joined-$$
$DOCKER rm -f base-$rt >/dev/null
done
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
    for section in out.split("== ").skip(1) {
        for want in [
            "tmpfs-ok",
            "root-ro",
            "/sbin/docker-init -- sh -c",
            "joined=1",
            "same-netns",
        ] {
            assert!(
                section.contains(want),
                "missing {want:?} in:\n{section}\n{err}"
            );
        }
    }
    assert_eq!(out.matches("== ").count(), 2, "{out}");
}
