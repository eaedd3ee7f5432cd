//! Root filesystem: mounts with their options, devices, masked and read-only paths,
//! a read-only root, propagation and --no-pivot.

mod common;
use common::*;
use serde_json::json;

fn run_with(
    args: &[&str],
    edit: impl FnOnce(&World, &mut serde_json::Value),
) -> (World, i32, String, String) {
    let w = World::new(args);
    let mut c = w.base_config(args);
    edit(&w, &mut c);
    w.write_config(&c);
    let (code, out, err) = w.run("mnt");
    (w, code, out, err)
}

#[test]
fn bind_mounts_tmpfs_options_and_readonly_bind() {
    if !can_run() {
        return;
    }
    let (w, code, out, err) = run_with(
        &["sh", "-c", "cat /data/in; echo x > /data/new 2>/dev/null && echo rw || echo ro; cat /rw/in; echo y > /rw/out; grep ' /scratch ' /proc/self/mountinfo; cat /etc/motd"],
        |w, c| {
            let data = w.tmp.path().join("data");
            std::fs::create_dir(&data).unwrap();
            std::fs::write(data.join("in"), "hello\n").unwrap();
            std::fs::write(w.tmp.path().join("motd"), "file bind\n").unwrap();
            c["mounts"].as_array_mut().unwrap().extend([
                json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}),
                json!({"destination": "/rw", "type": "none", "source": data, "options": ["bind"]}),
                json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m", "mode=700"]}),
                json!({"destination": "/etc/motd", "source": w.tmp.path().join("motd"), "options": ["bind", "ro"]}),
            ]);
        },
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello");
    assert_eq!(lines[1], "ro");
    assert_eq!(lines[2], "hello");
    assert!(
        lines[3].contains("nosuid")
            && lines[3].contains("nodev")
            && lines[3].contains("size=1024k")
            && lines[3].contains("mode=700"),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "file bind");
    assert_eq!(
        std::fs::read_to_string(w.tmp.path().join("data/out")).unwrap(),
        "y\n"
    );
}

#[test]
fn relative_bind_source_is_relative_to_the_bundle() {
    if !can_run() {
        return;
    }
    let (_w, code, out, err) = run_with(&["cat", "/mnt/f"], |w, c| {
        std::fs::create_dir(w.bundle.join("extra")).unwrap();
        std::fs::write(w.bundle.join("extra/f"), "rel\n").unwrap();
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt", "source": "extra", "options": ["rbind"]}));
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "rel\n");
}

#[test]
fn default_and_configured_devices() {
    if !can_run() {
        return;
    }
    let (_w, code, out, err) = run_with(&["sh", "-c", "ls -ln /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse; readlink /dev/fd; readlink /dev/stdin; readlink /dev/ptmx; echo ok > /dev/null"], |_, c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432, "uid": 7, "gid": 8}]);
    });
    assert_eq!(code, 0, "{err}");
    let null = out.lines().find(|l| l.ends_with("/dev/null")).unwrap();
    assert!(
        null.starts_with("crw-rw-rw-") && null.contains("1,   3"),
        "{null}"
    );
    let fuse = out.lines().find(|l| l.ends_with("/dev/fuse")).unwrap();
    assert!(
        fuse.starts_with("crw-rw----")
            && fuse.contains(" 7 ")
            && fuse.contains(" 8 ")
            && fuse.contains("10, 229"),
        "{fuse}"
    );
    assert!(
        out.contains("/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n"),
        "{out}"
    );
}

#[test]
fn masked_and_readonly_paths() {
    if !can_run() {
        return;
    }
    // busybox is invoked explicitly: the static shell runs applets in-process.
    let (_w, code, out, err) = run_with(
        &["sh", "-c", "/bin/busybox cat /proc/keys | wc -c; /bin/busybox ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo writable || echo readonly"],
        |_, _| {},
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, vec!["0", "0", "readonly"]);
}

#[test]
fn readonly_root() {
    if !can_run() {
        return;
    }
    let (_w, code, out, err) = run_with(
        &[
            "sh",
            "-c",
            "touch /newfile 2>/dev/null && echo rw || echo ro; touch /tmp/x && echo tmp-rw",
        ],
        |_, c| {
            c["root"]["readonly"] = json!(true);
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
        },
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ro\ntmp-rw\n");
}

#[test]
fn rootfs_propagation_and_no_pivot() {
    if !can_run() {
        return;
    }
    let (_w, code, out, err) = run_with(
        &["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"],
        |_, c| {
            c["linux"]["rootfsPropagation"] = json!("private");
        },
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty());
    assert!(
        !out.contains("shared:") && !out.contains("master:"),
        "{out}"
    );

    let w = World::new(&["cat", "/etc/passwd"]);
    let id = w.id("nopivot");
    let out = w
        .berth()
        .args(["run", "--no-pivot", "--bundle"])
        .arg(&w.bundle)
        .arg(&id)
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("root:x:0:0"));
}

#[test]
fn cgroup_mount_is_readonly_when_asked() {
    if !can_run() {
        return;
    }
    let (_w, code, out, err) = run_with(
        &[
            "sh",
            "-c",
            "mkdir /sys/fs/cgroup/memory/x 2>/dev/null && echo rw || echo ro",
        ],
        |_, _| {},
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ro\n");
}
