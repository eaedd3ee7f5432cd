//! Namespaces: new ones of every kind, joining existing ones by path, user namespace mappings,
//! time namespace offsets, and the container's cgroup placement.

mod common;
use common::*;
use serde_json::json;

fn run_with(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> (World, String) {
    let w = World::new(args);
    let mut c = w.base_config(args);
    edit(&mut c);
    w.write_config(&c);
    let out = w.run_ok("ns");
    (w, out)
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_new_namespace_differs_from_the_host() {
    if !can_run() {
        return;
    }
    let kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];
    let script = kinds
        .iter()
        .map(|k| format!("readlink /proc/self/ns/{k}"))
        .collect::<Vec<_>>()
        .join("; ");
    let (w, out) = run_with(
        &[
            "sh",
            "-c",
            &format!("echo $$; {script}; cat /proc/net/dev | tail -n +3 | cut -d: -f1"),
        ],
        |_| {},
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the process is PID 1 in its PID namespace");
    for (i, k) in kinds.iter().enumerate() {
        assert_ne!(lines[i + 1], host_ns(k), "{k} namespace is the host's");
    }
    let ifaces: Vec<&str> = lines[kinds.len() + 1..].iter().map(|l| l.trim()).collect();
    assert_eq!(ifaces, vec!["lo"], "a new network namespace has only lo");
    w.assert_clean();
}

#[test]
fn without_a_namespace_the_host_one_is_shared() {
    if !can_run() {
        return;
    }
    let (_w, out) = run_with(&["readlink", "/proc/self/ns/net"], |c| {
        c["linux"]["namespaces"] =
            json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]);
    });
    assert_eq!(out.trim(), host_ns("net"));
}

#[test]
fn joins_another_containers_namespaces_by_path() {
    if !can_run() {
        return;
    }
    let a = World::new(&["sleep", "100"]);
    let id = a.id("owner");
    let (code, _, err) = a.create(&id, &[]);
    assert_eq!(code, 0, "{err}");
    let st: serde_json::Value =
        serde_json::from_slice(&a.berth().args(["state", &id]).output().unwrap().stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let want_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let want_uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
    let (_w, out) = run_with(
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
        ],
        |c| {
            c["linux"]["namespaces"] = json!([
                {"type": "pid"}, {"type": "mount"},
                {"type": "network", "path": format!("/proc/{pid}/ns/net")},
                {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}
            ]);
            c.as_object_mut().unwrap().remove("hostname");
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], want_net.to_string_lossy());
    assert_eq!(lines[1], want_uts.to_string_lossy());
}

#[test]
fn user_namespace_with_mappings() {
    if !can_run() {
        return;
    }
    let (w, out) = run_with(
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/f; ls -ln /tmp/f",
        ],
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // A user-namespaced container cannot mount a fresh sysfs/cgroup on this host's setup
            // reliably; keep the test about mappings.
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "cgroup");
        },
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&words[0..3], &["0", "100000", "65536"]);
    assert_eq!(&words[3..6], &["0", "100000", "65536"]);
    assert_eq!(words[6], "0");
    // The file was created by container root, i.e. host uid 100000.
    let md = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(w.bundle.join("rootfs/tmp/f")).unwrap(),
    );
    assert_eq!(md, 100000);
}

#[test]
fn time_namespace_offsets() {
    if !can_run() {
        return;
    }
    let (_w, out) = run_with(&["cat", "/proc/uptime"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
    });
    let up: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        up >= 1_000_000.0,
        "uptime {up} does not include the boottime offset"
    );
}

#[test]
fn placed_in_its_cgroup_and_cgroup_removed_after() {
    if !can_run() {
        return;
    }
    let w = World::new(&["cat", "/proc/self/cgroup"]);
    let mut c = w.base_config(&["cat", "/proc/self/cgroup"]);
    // Without a cgroup namespace the full path is visible.
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    w.write_config(&c);
    let out = w.run_ok("cg");
    let want = format!("/{}/ctr", w.cgroup_parent);
    for ctrl in ["memory", "pids", "freezer", "cpu"] {
        let line = out
            .lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .unwrap_or("");
        assert!(line.ends_with(&want), "{ctrl}: {line}");
    }
    let unified = out.lines().find(|l| l.starts_with("0::")).unwrap_or("");
    assert!(unified.ends_with(&want), "unified: {unified}");
    w.assert_clean();
}

#[test]
fn cgroup_namespace_hides_the_host_path() {
    if !can_run() {
        return;
    }
    let (_w, out) = run_with(
        &[
            "sh",
            "-c",
            "grep memory /proc/self/cgroup; ls /sys/fs/cgroup",
        ],
        |_| {},
    );
    assert!(out.lines().next().unwrap().ends_with(":memory:/"), "{out}");
    assert!(out.contains("unified") && out.contains("memory"));
}

#[test]
fn runs_on_a_pure_cgroup2_host() {
    if !can_run() {
        return;
    }
    // A private mount namespace where /sys/fs/cgroup is the cgroup2 hierarchy only: the code path
    // of a unified host (clone3 into the cgroup, cgroup2 mount in the container).
    let w = World::new(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup; ls /sys/fs/cgroup/cgroup.procs",
    ]);
    let id = w.id("v2");
    let script = format!(
        "umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec {} --root {} run --bundle {} {}",
        berth_bin().display(),
        w.root.display(),
        w.bundle.display(),
        id
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, out, err) = decode(out);
    assert_eq!(code, 0, "{err}");
    // v1 hierarchies still exist in the kernel and show up in /proc/self/cgroup; the container
    // sits at the root of its cgroup2 namespace and sees the cgroup2 filesystem.
    assert!(out.lines().any(|l| l == "0::/"), "{out}");
    assert!(out.ends_with("/sys/fs/cgroup/cgroup.procs\n"), "{out}");
    w.assert_clean();
}
