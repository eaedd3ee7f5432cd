//! Lifecycle and CLI contract: create/state/start/kill/delete as runc does them, run's exit
//! status, list, spec, features, and the error strings callers match on.

mod common;
use common::*;
use serde_json::{json, Value};

fn state(w: &World, id: &str) -> Value {
    let out = w.berth().args(["state", id]).output().unwrap();
    assert!(
        out.status.success(),
        "state: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn run_returns_the_exit_status() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let (code, out, err) = w.run("exit");
    assert_eq!(code, 7);
    assert_eq!(out, "out\n");
    assert!(err.contains("err"));
    w.assert_clean();
}

#[test]
fn killed_by_signal_exits_128_plus_signal() {
    if !can_run() {
        return;
    }
    // PID 1 ignores signals it has no handler for when they come from inside its namespace,
    // so the signal is sent from outside, as a user would with `berth kill`.
    let w = World::new(&["sleep", "100"]);
    let id = w.id("sig");
    let mut child = w
        .berth()
        .args(["run", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .spawn()
        .unwrap();
    let mut killed = false;
    for _ in 0..500 {
        let st = w.berth().args(["state", &id]).output().unwrap();
        if String::from_utf8_lossy(&st.stdout).contains("\"running\"") {
            killed = w
                .berth()
                .args(["kill", &id, "KILL"])
                .status()
                .unwrap()
                .success();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(killed, "container never reached running");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    w.assert_clean();
}

#[test]
fn create_state_start_kill_delete_sequence() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "1000"]);
    let id = w.id("seq");
    let pid_file = w.tmp.path().join("pid");
    let (code, _, err) = w.create(&id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(code, 0, "create: {err}");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let s = state(&w, &id);
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], json!(id));
    assert_eq!(s["pid"], json!(pid));
    assert_eq!(s["bundle"], json!(w.bundle.canonicalize().unwrap()));
    assert!(s["ociVersion"].as_str().unwrap().starts_with("1."));
    assert!(s["created"].as_str().unwrap().ends_with('Z'));
    assert!(s.get("owner").is_some());
    // The init waits before the user program: its command line is still berth's.
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!cmdline.starts_with("sleep"));

    let (code, _, err) = w.create(&id, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("container with given ID already exists"),
        "{err}"
    );

    let out = w.berth().args(["start", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&w, &id)["status"], "running");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep"), "{cmdline:?}");

    let out = w.berth().args(["start", &id]).output().unwrap();
    assert!(!out.status.success(), "second start must fail");

    let del = w.berth().args(["delete", &id]).output().unwrap();
    assert!(
        !del.status.success(),
        "delete of a running container without --force must fail"
    );
    assert!(String::from_utf8_lossy(&del.stderr).contains("not stopped"));

    let out = w.berth().args(["kill", &id, "KILL"]).output().unwrap();
    assert!(out.status.success());
    for _ in 0..500 {
        if state(&w, &id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let s = state(&w, &id);
    assert_eq!(s["status"], "stopped");
    assert_eq!(s["pid"], 0);

    let out = w.berth().args(["kill", &id, "TERM"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("container not running"));

    let out = w.berth().args(["delete", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = w.berth().args(["state", &id]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    w.assert_clean();
}

#[test]
fn kill_accepts_names_and_numbers_and_delete_force_removes_running() {
    if !can_run() {
        return;
    }
    let w = World::new(&[
        "sh",
        "-c",
        "trap 'echo got-usr1 > /tmp/usr1' USR1; while true; do sleep 0.05; done",
    ]);
    let id = w.id("kill");
    let bundle = w.bundle.to_string_lossy().into_owned();
    let (code, _, err) = w.detached(&["run", "-d", "--bundle", &bundle, &id]);
    assert_eq!(code, 0, "run -d: {err}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    for sig in ["SIGUSR1", "usr1", "10"] {
        let out = w.berth().args(["kill", &id, sig]).output().unwrap();
        assert!(
            out.status.success(),
            "kill {sig}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rootfs = w.bundle.join("rootfs");
    let mut seen = false;
    for _ in 0..200 {
        if rootfs.join("tmp/usr1").exists() {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(seen, "the container did not receive SIGUSR1");
    let out = w.berth().args(["kill", &id, "NOSUCHSIG"]).output().unwrap();
    assert!(!out.status.success());
    let out = w.berth().args(["delete", "--force", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "delete -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.assert_clean();
}

#[test]
fn delete_force_of_missing_container_succeeds_and_plain_delete_fails() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    assert!(w
        .berth()
        .args(["delete", "--force", "nope"])
        .status()
        .unwrap()
        .success());
    let out = w.berth().args(["delete", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("container does not exist"));
}

#[test]
fn delete_of_created_container_kills_init() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "100"]);
    let id = w.id("created");
    assert_eq!(w.create(&id, &[]).0, 0);
    let s = state(&w, &id);
    let pid = s["pid"].as_i64().unwrap();
    assert!(w.berth().args(["delete", &id]).status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(50));
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        st.is_empty() || st.contains(") Z"),
        "init still alive: {st}"
    );
    w.assert_clean();
}

#[test]
fn list_formats() {
    if !can_run() {
        return;
    }
    let w = World::new(&["sleep", "100"]);
    let out = w.berth().args(["list", "-f", "json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "null");
    let id = w.id("list");
    assert_eq!(w.create(&id, &[]).0, 0);
    let out = w.berth().args(["list", "-f", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], json!(id));
    assert_eq!(v[0]["status"], "created");
    let out = w.berth().args(["list", "-q"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id);
    let out = w.berth().arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ID"), "{text}");
    assert!(text.contains("created"));
}

#[test]
fn spec_writes_default_config_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(berth_bin())
        .args(["spec", "-b"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let c: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(c["process"]["args"], json!(["sh"]));
    assert_eq!(c["root"]["path"], "rootfs");
    let out = std::process::Command::new(berth_bin())
        .args(["spec", "-b"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
}

#[test]
fn features_document_is_truthful_json() {
    let out = std::process::Command::new(berth_bin())
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success());
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["hooks"]
        .as_array()
        .unwrap()
        .contains(&json!("createContainer")));
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("time")));
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(f["mountOptions"]
        .as_array()
        .unwrap()
        .contains(&json!("rbind")));
}

#[test]
fn version_flag() {
    let out = std::process::Command::new(berth_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("berth version "), "{text}");
    // runc's shape (podman and containerd parse it): version, commit, spec.
    let commit = std::env::var("BERTH_COMMIT").unwrap_or_else(|_| head_commit());
    assert_eq!(
        text.lines().nth(1).unwrap_or(""),
        format!("commit: {commit}"),
        "{text}"
    );
    assert!(
        text.lines().nth(2).unwrap_or("").starts_with("spec: 1."),
        "{text}"
    );
}

/// The checkout's HEAD commit (what build.rs gave the binary), or "unknown" outside git.
fn head_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

#[test]
fn parallel_creates_with_a_shared_cgroup_parent() {
    if !can_run() {
        return;
    }
    // Regression: under parallel creates, Ready could overtake the PID report (create returned
    // pid 0), and a fresh shared v1 cpuset parent could still be empty when a child copied it.
    let w = World::new(&["sleep", "100"]);
    let mut c = w.base_config(&["sleep", "100"]);
    let mut children = Vec::new();
    let mut ids = Vec::new();
    for i in 0..24 {
        let b = w.tmp.path().join(format!("b{i}"));
        std::fs::create_dir(&b).unwrap();
        c["root"]["path"] = json!(w.bundle.join("rootfs"));
        c["linux"]["cgroupsPath"] = json!(format!("/{}/c{i}", w.cgroup_parent));
        std::fs::write(b.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
        let id = w.id(&format!("par{i}"));
        // Output to a file: the container keeps the create's stdio open, a pipe would never end.
        let err = std::fs::File::create(b.join("stderr")).unwrap();
        children.push((
            b.clone(),
            w.berth()
                .args(["create", "--bundle"])
                .arg(&b)
                .arg(&id)
                .stdout(std::process::Stdio::null())
                .stderr(err)
                .spawn()
                .unwrap(),
        ));
        ids.push(id);
    }
    for ((b, mut child), id) in children.into_iter().zip(&ids) {
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{id}: {}",
            std::fs::read_to_string(b.join("stderr")).unwrap_or_default()
        );
        let s = state(&w, id);
        assert!(s["pid"].as_i64().unwrap() > 0, "{id}: {s}");
        assert_eq!(s["status"], "created");
    }
    for id in &ids {
        assert!(w
            .berth()
            .args(["delete", "--force", id])
            .status()
            .unwrap()
            .success());
    }
    assert!(
        std::fs::read_dir(&w.root).unwrap().next().is_none(),
        "state left behind"
    );
}
