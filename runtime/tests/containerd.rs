//! containerd drives berth unchanged through its runc shim (`--runc-binary`): run, exit codes,
//! detached tasks, exec, ps, pause/resume, metrics (events --stats), kill, delete. A private
//! containerd (hack/with-containerd.sh) with its own root, state and socket is used.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn containerd_runc_shim_drives_berth() {
    if !can_run() {
        return;
    }
    if Command::new("containerd")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: containerd is not installed (hack/test.sh installs it)");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-containerd-")
        .tempdir()
        .unwrap();
    let script = format!(
        r#"B={berth}
$CTR run --rm --runc-binary $B localhost/busybox:latest c1 sh -c 'echo hello-from-containerd; exit 5'; echo "rc=$?"
$CTR run -d --runc-binary $B localhost/busybox:latest c2 sleep 1000 >/dev/null && echo run-d-ok
$CTR task exec --exec-id e1 c2 sh -c 'echo exec-ok'
$CTR task ps c2 | tail -n +2 | wc -l | sed 's/^/ps-lines=/'
$CTR task pause c2 && $CTR task ls | grep -q PAUSED && echo paused-ok
$CTR task resume c2 && $CTR task ls | grep -q RUNNING && echo resumed-ok
$CTR task metrics c2 | grep -q memory.usage_in_bytes && echo metrics-ok
$CTR task kill -s KILL c2
for i in $(seq 50); do $CTR task ls | grep -q STOPPED && break; sleep 0.1; done
$CTR task delete c2 >/dev/null && $CTR container delete c2 && echo deleted-ok
"#,
        berth = berth_bin().display()
    );
    let out =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/with-containerd.sh"))
            .arg(dir.path())
            .args(["--", "sh", "-c", &script])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{out} {err}");
    for want in [
        "hello-from-containerd",
        "rc=5",
        "run-d-ok",
        "exec-ok",
        "ps-lines=1",
        "paused-ok",
        "resumed-ok",
        "metrics-ok",
        "deleted-ok",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}\n{err}");
    }
}
