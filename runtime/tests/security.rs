//! Regression tests for the escape classes in ARCHITECTURE.md.

mod common;
use common::*;
use serde_json::json;

/// runc CVE-2021-30465 class: a symlink in the rootfs must not redirect a mount target (or the
/// directories created for it) to the host.
#[test]
fn symlinked_mount_target_stays_inside_rootfs() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let outside = w.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, w.bundle.join("rootfs/evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", w.bundle.join("rootfs/up")).unwrap();
    let mut c = w.base_config(&["true"]);
    c["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/evil/newdir", "type": "tmpfs", "source": "tmpfs"}),
        json!({"destination": format!("/up{}/viaup", outside.display()), "type": "tmpfs", "source": "tmpfs"}),
    ]);
    w.write_config(&c);
    let (code, _, err) = w.run("sym");
    assert_eq!(code, 0, "{err}");
    assert!(
        !outside.join("newdir").exists(),
        "mount point created on the host"
    );
    assert!(
        !outside.join("viaup").exists(),
        "mount point created on the host via .."
    );
    let inside = w
        .bundle
        .join("rootfs")
        .join(outside.strip_prefix("/").unwrap());
    assert!(inside.join("newdir").is_dir() && inside.join("viaup").is_dir());
    w.assert_clean();
}

/// CVE-2019-16884 / CVE-2019-19921 class: /proc must not be mounted over a symlink, and
/// nothing but proc may cover /proc (which would defeat masked paths).
#[test]
fn proc_over_symlink_and_mounts_over_proc_are_refused() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    std::fs::remove_dir(w.bundle.join("rootfs/proc")).unwrap();
    std::fs::create_dir(w.bundle.join("rootfs/fakeproc")).unwrap();
    std::os::unix::fs::symlink("/fakeproc", w.bundle.join("rootfs/proc")).unwrap();
    let (code, _, err) = w.run("procsym");
    assert_ne!(code, 0);
    assert!(
        err.contains("mounts[0].destination") && err.contains("symlink"),
        "{err}"
    );
    w.assert_clean();

    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/proc/keys", "type": "tmpfs", "source": "tmpfs"}));
    w.write_config(&c);
    let (code, _, err) = w.run("overproc");
    assert_ne!(code, 0);
    assert!(err.contains("destination"), "{err}");
    w.assert_clean();
}

/// runc CVE-2024-21626 class: no host descriptor reaches the container, so a working directory
/// of /proc/self/fd/N can never point outside the root.
#[test]
fn cwd_through_leaked_fd_is_impossible() {
    if !can_run() {
        return;
    }
    for n in 3..10 {
        let w = World::new(&["sh", "-c", "pwd; ls"]);
        let mut c = w.base_config(&["sh", "-c", "pwd; ls -a"]);
        c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        w.write_config(&c);
        let (code, out, err) = w.run("cwdfd");
        if code == 0 {
            assert!(
                !out.contains("state.json")
                    && !out.contains("config.json")
                    && !out.contains("exec.sock"),
                "fd {n} leaked a host directory: {out}"
            );
        } else {
            assert!(!err.is_empty());
        }
        w.assert_clean();
    }
}

/// runc CVE-2019-5736 class: while the container's init is still the berth binary (created,
/// not started), another process in its PID namespace cannot open /proc/1/exe.
#[test]
fn proc_exe_of_waiting_init_is_not_reachable() {
    if !can_run() {
        return;
    }
    let a = World::new(&["sleep", "100"]);
    let id = a.id("victim");
    let (code, _, err) = a.create(&id, &[]);
    assert_eq!(code, 0, "{err}");
    let st: serde_json::Value =
        serde_json::from_slice(&a.berth().args(["state", &id]).output().unwrap().stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();

    let script = "/bin/busybox cat /proc/1/exe > /tmp/copy && echo OPENED || echo DENIED; /bin/busybox readlink /proc/1/exe || echo NOLINK";
    let w = World::new(&["sh", "-c", script]);
    let mut c = w.base_config(&["sh", "-c", script]);
    c["linux"]["namespaces"] =
        json!([{"type": "pid", "path": format!("/proc/{pid}/ns/pid")}, {"type": "mount"}]);
    c.as_object_mut().unwrap().remove("hostname");
    w.write_config(&c);
    let (code, out, err) = w.run("attacker");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("DENIED"),
        "container could open the runtime binary: {out}"
    );
    assert!(out.contains("NOLINK"), "{out}");
}

/// CVE-2022-29162 class: the inheritable and ambient sets hold only what the config lists,
/// even for a container running as root with many capabilities.
#[test]
fn inheritable_and_ambient_sets_are_not_leaked() {
    if !can_run() {
        return;
    }
    let w = World::new(&["cat", "/proc/self/status"]);
    let mut c = w.base_config(&["cat", "/proc/self/status"]);
    let all = json!(["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_KILL"]);
    c["process"]["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    w.write_config(&c);
    let out = w.run_ok("inh");
    for f in ["CapInh:", "CapAmb:"] {
        let line = out.lines().find(|l| l.starts_with(f)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
}
