//! The systemd cgroup driver against a real systemd: each test boots systemd 252 as PID 1 in a
//! berth container (hack/with-systemd.sh: a cached debootstrap rootfs, hybrid cgroups), runs the
//! berth under test inside it with `--systemd-cgroup` through `berth exec`, and checks placement,
//! unit properties, cgroup files and the lifecycle with systemctl and /proc. The environment is
//! stopped and removed when the test ends, also on failure.

mod common;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static N: AtomicUsize = AtomicUsize::new(0);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/with-systemd.sh")
}

/// One booted systemd environment.
struct Env {
    dir: PathBuf,
    tag: String,
}

impl Env {
    /// Boots an environment, or None (with the reason printed) when this machine cannot and we
    /// are not in CI.
    fn boot() -> Option<Env> {
        Self::boot_in("host")
    }

    /// Boots with systemd's cgroup mode: `host` (the host's layout; hybrid here) or `unified`.
    fn boot_in(mode: &str) -> Option<Env> {
        if !common::can_run() {
            return None;
        }
        let n = N.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("berth-sd-{tag}"));
        let out = Command::new("bash")
            .arg(script())
            .arg("up")
            .arg(&dir)
            .arg(common::berth_bin())
            .env("BERTH_SYSTEMD_CGROUP", mode)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let env = Env { dir, tag };
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).into_owned();
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("booting systemd failed: {why}");
            }
            eprintln!("skipped: cannot boot a systemd test environment here: {why}");
            return None;
        }
        Some(env)
    }

    /// Runs a shell command inside; returns (status, stdout, stderr).
    fn sh(&self, cmd: &str) -> (i32, String, String) {
        let out = Command::new("bash")
            .arg(script())
            .arg("exec")
            .arg(&self.dir)
            .args(["sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        common::decode(out)
    }

    /// Runs a shell command inside and returns its stdout, asserting success.
    fn ok(&self, cmd: &str) -> String {
        let (code, out, err) = self.sh(cmd);
        assert_eq!(code, 0, "{cmd}: stdout={out} stderr={err}");
        out
    }

    /// A berth command line inside, with this test's state root.
    fn berth(&self, args: &str) -> String {
        format!("berth --root /run/berth-{} {args}", self.tag)
    }

    /// Runs a berth command that leaves a container behind (create, run -d, exec -d): its stdio
    /// goes to files so that nothing waits for the container.
    fn detached(&self, args: &str) -> (i32, String, String) {
        self.sh(&format!(
            "{} </dev/null >/tmp/out 2>/tmp/err; s=$?; cat /tmp/out; cat /tmp/err >&2; exit $s",
            self.berth(args)
        ))
    }

    /// Makes a busybox bundle under /share/NAME with `config` edits applied; returns its path
    /// inside the environment.
    fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> String {
        let host = self.dir.join("share").join(name);
        common::make_rootfs(&host.join("rootfs"));
        let out = Command::new(common::berth_bin())
            .args(["spec", "--bundle"])
            .arg(&host)
            .output()
            .unwrap();
        assert!(out.status.success());
        let path = host.join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        c["root"]["readonly"] = json!(false);
        edit(&mut c);
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        format!("/share/{name}")
    }

    /// The init PID of a container inside.
    fn pid(&self, id: &str) -> i64 {
        let out = self.ok(&self.berth(&format!("state {id}")));
        let v: Value = serde_json::from_str(&out).unwrap();
        v["pid"].as_i64().unwrap()
    }

    /// `systemctl show -p P --value UNIT`.
    fn prop(&self, unit: &str, p: &str) -> String {
        self.ok(&format!("systemctl show -p {p} --value {unit}"))
            .trim()
            .to_string()
    }

    /// Whether systemd knows the unit at all (loaded, active, failed or inactive).
    fn unit_exists(&self, unit: &str) -> bool {
        let out = self.ok(&format!(
            "systemctl list-units --all --no-legend --plain {unit} || true"
        ));
        out.lines()
            .any(|l| l.split_whitespace().next() == Some(unit))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

/// The value of `hierarchy` in /proc/PID/cgroup text (`memory`, `name=systemd`, `` for v2).
fn cgroup_of(text: &str, hierarchy: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_, h, path) = (p.next()?, p.next()?, p.next()?);
        h.split(',')
            .any(|c| c == hierarchy)
            .then(|| path.to_string())
    })
}

#[test]
fn scope_placement_limits_and_lifecycle() {
    let Some(env) = Env::boot() else { return };
    let id = format!("c{}", env.tag);
    let unit = format!("berth-test-{id}.scope");
    let scope = format!("/system.slice/{unit}");
    let bundle = env.bundle("b1", &["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("system.slice:berth-test:{id}"));
        c["linux"]["resources"] = json!({
            "memory": {"limit": 64 << 20},
            "pids": {"limit": 50},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "devices": [{"allow": false, "access": "rwm"}]
        });
        c["annotations"] = json!({
            "org.systemd.property.TimeoutStopSec": "7",
            "org.systemd.property.CollectMode": "'inactive-or-failed'"
        });
    });

    // features: systemd usable inside; not on a host without systemd.
    let f: Value = serde_json::from_str(&env.ok("berth features")).unwrap();
    assert_eq!(f["linux"]["cgroup"]["systemd"], json!(true), "{f}");
    if !Path::new("/run/systemd/system").exists() {
        let out = Command::new(common::berth_bin())
            .arg("features")
            .output()
            .unwrap();
        let host: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(host["linux"]["cgroup"]["systemd"], json!(false));
    }

    let (code, _, err) = env.detached(&format!("--systemd-cgroup run -d -b {bundle} {id}"));
    assert_eq!(code, 0, "run -d: {err}");
    let pid = env.pid(&id);

    // Placement: every hierarchy has the process in <slice>/<prefix>-<name>.scope.
    let cg = env.ok(&format!("cat /proc/{pid}/cgroup"));
    for h in [
        "name=systemd",
        "",
        "memory",
        "pids",
        "cpu",
        "devices",
        "freezer",
        "cpuset",
    ] {
        assert_eq!(
            cgroup_of(&cg, h).as_deref(),
            Some(scope.as_str()),
            "{h}: {cg}"
        );
    }
    let status = env.ok(&format!("systemctl status --no-pager {unit}"));
    assert!(status.contains("Active: active (running)"), "{status}");
    assert!(status.contains(&format!("CGroup: {scope}")), "{status}");
    assert!(status.contains(&format!("{pid} sleep 1000")), "{status}");
    assert!(
        status.contains(&format!("berth container {id}")),
        "{status}"
    );

    // Limits as unit properties and in the cgroup files.
    assert_eq!(env.prop(&unit, "Delegate"), "yes");
    assert_eq!(env.prop(&unit, "Slice"), "system.slice");
    assert_eq!(env.prop(&unit, "MemoryLimit"), (64u64 << 20).to_string());
    assert_eq!(env.prop(&unit, "TasksMax"), "50");
    assert_eq!(env.prop(&unit, "CPUShares"), "512");
    assert_eq!(env.prop(&unit, "CPUQuotaPerSecUSec"), "500ms");
    assert_eq!(env.prop(&unit, "TimeoutStopUSec"), "7s");
    assert_eq!(env.prop(&unit, "CollectMode"), "inactive-or-failed");
    let file = |f: &str| {
        env.ok(&format!("cat /sys/fs/cgroup/{f}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        file(&format!("memory{scope}/memory.limit_in_bytes")),
        (64u64 << 20).to_string()
    );
    assert_eq!(file(&format!("pids{scope}/pids.max")), "50");
    assert_eq!(file(&format!("cpu{scope}/cpu.shares")), "512");
    assert_eq!(file(&format!("cpu{scope}/cpu.cfs_quota_us")), "50000");
    // The spec's deny-all device rule plus the default allow-list: an allow-list unit policy
    // (a wildcard minor by its /proc/devices name) and the same rules in the devices cgroup.
    assert_eq!(env.prop(&unit, "DevicePolicy"), "strict");
    let allow = env.ok(&format!("systemctl show -p DeviceAllow {unit}"));
    for want in [
        "DeviceAllow=/dev/char/1:3 rwm",
        "DeviceAllow=char-pts rwm",
        "DeviceAllow=char-* m",
    ] {
        assert!(allow.lines().any(|l| l == want), "{want} missing: {allow}");
    }
    let list = file(&format!("devices{scope}/devices.list"));
    assert!(list.lines().any(|l| l == "c 136:* rwm"), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("a ")), "{list}");

    // update: unit properties and files.
    env.ok(&env.berth(&format!("update --memory 32m --pids-limit 20 {id}")));
    assert_eq!(env.prop(&unit, "MemoryLimit"), (32u64 << 20).to_string());
    assert_eq!(env.prop(&unit, "TasksMax"), "20");
    assert_eq!(
        file(&format!("memory{scope}/memory.limit_in_bytes")),
        (32u64 << 20).to_string()
    );
    assert_eq!(file(&format!("pids{scope}/pids.max")), "20");

    // pause / resume.
    env.ok(&env.berth(&format!("pause {id}")));
    let st = env.ok(&env.berth(&format!("state {id}")));
    assert!(st.contains("\"paused\""), "{st}");
    assert_eq!(file(&format!("freezer{scope}/freezer.state")), "FROZEN");
    env.ok(&env.berth(&format!("resume {id}")));
    let st = env.ok(&env.berth(&format!("state {id}")));
    assert!(st.contains("\"running\""), "{st}");

    // exec joins the scope; ps lists both processes.
    let (code, _, err) = env.detached(&format!("exec -d {id} sleep 999"));
    assert_eq!(code, 0, "exec -d: {err}");
    let ps: Vec<i64> =
        serde_json::from_str(&env.ok(&env.berth(&format!("ps --format json {id}")))).unwrap();
    assert_eq!(ps.len(), 2, "{ps:?}");
    for p in &ps {
        let cg = env.ok(&format!("cat /proc/{p}/cgroup"));
        assert_eq!(cgroup_of(&cg, "").as_deref(), Some(scope.as_str()), "{cg}");
        assert_eq!(
            cgroup_of(&cg, "memory").as_deref(),
            Some(scope.as_str()),
            "{cg}"
        );
    }

    // events --stats reads the scope's files.
    let ev = env.ok(&env.berth(&format!("events --stats {id}")));
    let ev: Value = serde_json::from_str(ev.lines().next().unwrap_or("{}")).unwrap();
    assert_eq!(ev["type"], json!("stats"), "{ev}");
    assert_eq!(ev["data"]["pids"]["current"], json!(2), "{ev}");

    // kill --all empties the scope.
    env.ok(&env.berth(&format!("kill --all {id} KILL")));
    env.ok(&format!(
        "for i in $(seq 100); do [ \"$({} ps --format json {id})\" = \"[]\" ] && exit 0; sleep 0.05; done; exit 1",
        env.berth("")
    ));

    // delete: no unit and no cgroup left.
    env.ok(&env.berth(&format!("delete {id}")));
    assert!(!env.unit_exists(&unit), "{unit} left after delete");
    let left = env.ok(&format!(
        "ls -d /sys/fs/cgroup/*{scope} 2>/dev/null || true"
    ));
    assert!(left.trim().is_empty(), "cgroups left: {left}");
    let (code, _, _) = env.sh(&env.berth(&format!("state {id}")));
    assert_ne!(code, 0);
}

#[test]
fn nested_slice_default_path_and_scope_removed_by_systemd_first() {
    let Some(env) = Env::boot() else { return };
    // Without the system bus berth talks to systemd's private socket: this test covers that path.
    env.ok("systemctl stop dbus.socket dbus.service && rm -f /run/dbus/system_bus_socket");
    let id = format!("n{}", env.tag);
    // A nested slice that does not exist yet: systemd creates it with the scope.
    // The init handles SIGTERM (as PID 1 of its namespace it would ignore it otherwise), so
    // systemd's stop does not wait for its 90s timeout.
    let init = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"];
    let bundle = env.bundle("b2", &init, |c| {
        c["linux"]["cgroupsPath"] = json!(format!("berthtest-inner.slice:pfx:{id}"));
    });
    let (code, _, err) = env.detached(&format!("--systemd-cgroup create -b {bundle} {id}"));
    assert_eq!(code, 0, "create: {err}");
    let unit = format!("pfx-{id}.scope");
    let scope = format!("/berthtest.slice/berthtest-inner.slice/{unit}");
    let pid = env.pid(&id);
    let cg = env.ok(&format!("cat /proc/{pid}/cgroup"));
    assert_eq!(
        cgroup_of(&cg, "name=systemd").as_deref(),
        Some(scope.as_str()),
        "{cg}"
    );
    assert_eq!(env.prop(&unit, "Slice"), "berthtest-inner.slice");
    assert_eq!(env.prop("berthtest-inner.slice", "ActiveState"), "active");
    env.ok(&env.berth(&format!("start {id}")));

    // systemd stops and removes the scope itself; delete still cleans up.
    env.ok(&format!("systemctl stop {unit}"));
    env.ok(&format!(
        "for i in $(seq 100); do {} state {id} | grep -q stopped && exit 0; sleep 0.05; done; exit 1",
        env.berth("")
    ));
    env.ok(&env.berth(&format!("delete {id}")));
    assert!(!env.unit_exists(&unit), "{unit} left after delete");
    let left = env.ok(&format!(
        "ls -d /sys/fs/cgroup/*{scope} 2>/dev/null || true"
    ));
    assert!(left.trim().is_empty(), "cgroups left: {left}");

    // Empty cgroupsPath: system.slice/berth-<id>.scope, and run's exit status comes back.
    let id2 = format!("d{}", env.tag);
    let b3 = env.bundle("b3", &["sh", "-c", "cat /proc/self/cgroup; exit 3"], |c| {
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("cgroupsPath");
        // Without a cgroup namespace /proc/self/cgroup shows the host-side path.
        let ns = linux["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
    });
    let (code, out, err) = env.sh(&env.berth(&format!("--systemd-cgroup run -b {b3} {id2}")));
    assert_eq!(code, 3, "run: {out} {err}");
    let want = format!("/system.slice/berth-{id2}.scope");
    assert_eq!(
        cgroup_of(&out, "name=systemd").as_deref(),
        Some(want.as_str()),
        "{out}"
    );
    assert!(!env.unit_exists(&format!("berth-{id2}.scope")));

    // A name ending in .slice: a transient slice of its own (kubelet's pod slices).
    let id3 = format!("s{}", env.tag);
    let pod = format!("berthtest-pod{}.slice", env.tag);
    let b4 = env.bundle("b4", &["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("berthtest.slice::{pod}"));
    });
    let (code, _, err) = env.detached(&format!("--systemd-cgroup run -d -b {b4} {id3}"));
    assert_eq!(code, 0, "run -d: {err}");
    let pid = env.pid(&id3);
    let cg = env.ok(&format!("cat /proc/{pid}/cgroup"));
    let want = format!("/berthtest.slice/{pod}");
    assert_eq!(
        cgroup_of(&cg, "memory").as_deref(),
        Some(want.as_str()),
        "{cg}"
    );
    assert_eq!(env.prop(&pod, "ActiveState"), "active");
    assert_eq!(env.prop(&pod, "Wants"), "berthtest.slice");
    env.ok(&env.berth(&format!("delete -f {id3}")));
    assert!(!env.unit_exists(&pod), "{pod} left after delete");
}

#[test]
fn bad_cgroups_path_is_an_error_naming_the_field() {
    let Some(env) = Env::boot() else { return };
    for (i, (path, want)) in [
        ("a:b", "expects \"slice:prefix:name\""),
        ("system:p:n", "must end in \".slice\""),
        ("a--b.slice:p:n", "not a valid slice name"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("e{i}{}", env.tag);
        let bundle = env.bundle(&format!("e{i}"), &["true"], |c| {
            c["linux"]["cgroupsPath"] = json!(path);
        });
        let (code, _, err) = env.detached(&format!("--systemd-cgroup create -b {bundle} {id}"));
        // Errors on stderr are logrus lines (msg="..." with quotes escaped), as runc's.
        let err = err.replace("\\\"", "\"");
        assert_ne!(code, 0, "{path}: accepted");
        assert!(err.contains("linux.cgroupsPath"), "{path}: {err}");
        assert!(err.contains(want), "{path}: {err}");
        // Nothing left: no state, no unit.
        let (code, _, _) = env.sh(&env.berth(&format!("state {id}")));
        assert_ne!(code, 0);
        assert!(!env.unit_exists("p-n.scope"));
    }
    let units = env.ok("systemctl list-units --all --no-legend --plain '*.scope'");
    assert!(
        !units
            .lines()
            .any(|l| l.starts_with("p-") || l.starts_with("berth-")),
        "{units}"
    );
}

#[test]
fn podman_with_systemd_cgroup_manager_runs_berth() {
    let Some(env) = Env::boot() else { return };
    // A private podman configuration inside: berth as the runtime, systemd as cgroup manager,
    // storage on the environment's tmpfs (overlay cannot sit on the rootfs overlay).
    let image = env.dir.join("share/busybox-image");
    let st = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/make-busybox-image.sh"))
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let conf = env.dir.join("share/podman");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("containers.conf"),
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
         [engine]\ncgroup_manager = \"systemd\"\nevents_logger = \"file\"\nruntime = \"berth\"\n\
         runtime_supports_json = [\"berth\"]\n[engine.runtimes]\nberth = [\"/usr/local/bin/berth\"]\n\
         [network]\nnetwork_backend = \"netavark\"\n",
    )
    .unwrap();
    std::fs::write(
        conf.join("storage.conf"),
        "[storage]\ndriver = \"overlay\"\nrunroot = \"/tmp/podman/run\"\ngraphroot = \"/tmp/podman/graph\"\n",
    )
    .unwrap();
    let podman = "CONTAINERS_CONF=/share/podman/containers.conf \
                  CONTAINERS_STORAGE_CONF=/share/podman/storage.conf podman";
    env.ok(&format!(
        "cd /share/busybox-image && tar -cf /tmp/busybox.tar . && {podman} load -q -i /tmp/busybox.tar"
    ));
    let out = env.ok(&format!(
        "{podman} run --rm --pull=never --network none --cgroupns host localhost/busybox:latest cat /proc/self/cgroup"
    ));
    // podman names the scope libpod-<container id>.scope in machine.slice.
    let cg = cgroup_of(&out, "name=systemd").unwrap_or_default();
    assert!(
        cg.starts_with("/machine.slice/libpod-") && cg.ends_with(".scope"),
        "{out}"
    );
    assert_eq!(cgroup_of(&out, "memory").unwrap_or_default(), cg, "{out}");
    // Limits through podman: unit properties and files.
    let (code, _, err) = env.sh(&format!(
        "{podman} run -d --pull=never --network none --name lim --memory 48m --pids-limit 30 \
         localhost/busybox:latest sleep 1000 >/dev/null"
    ));
    assert_eq!(code, 0, "podman run -d: {err}");
    let cid = env.ok(&format!("{podman} inspect --format '{{{{.Id}}}}' lim"));
    let unit = format!("libpod-{}.scope", cid.trim());
    assert_eq!(env.prop(&unit, "MemoryLimit"), (48u64 << 20).to_string());
    assert_eq!(env.prop(&unit, "TasksMax"), "30");
    let f = env.ok(&format!(
        "cat /sys/fs/cgroup/memory/machine.slice/{unit}/memory.limit_in_bytes"
    ));
    assert_eq!(f.trim(), (48u64 << 20).to_string());
    env.ok(&format!("{podman} rm -f -t 0 lim"));
    assert!(!env.unit_exists(&unit), "{unit} left after podman rm");
}

#[test]
fn unified_mode_scope_pause_exec_kill_delete() {
    let Some(env) = Env::boot_in("unified") else {
        return;
    };
    assert_eq!(env.ok("stat -fc %T /sys/fs/cgroup").trim(), "cgroup2fs");
    let id = format!("u{}", env.tag);
    let unit = format!("berth-{id}.scope");
    let scope = format!("/system.slice/{unit}");
    // The host's cgroup2 has no memory controller to delegate: the limit exists as a unit
    // property only (set through the annotation, which is not written to files).
    let bundle = env.bundle("u", &["sleep", "1000"], |c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
        c["annotations"] = json!({"org.systemd.property.MemoryMax": "uint64 50331648"});
    });
    let (code, _, err) = env.detached(&format!("--systemd-cgroup run -d -b {bundle} {id}"));
    assert_eq!(code, 0, "run -d: {err}");
    let pid = env.pid(&id);
    let cg = env.ok(&format!("cat /proc/{pid}/cgroup"));
    assert_eq!(cgroup_of(&cg, "").as_deref(), Some(scope.as_str()), "{cg}");
    assert_eq!(env.prop(&unit, "MemoryMax"), "50331648");
    assert_eq!(env.prop(&unit, "Delegate"), "yes");
    env.ok(&env.berth(&format!("pause {id}")));
    assert_eq!(
        env.ok(&format!("cat /sys/fs/cgroup{scope}/cgroup.freeze"))
            .trim(),
        "1"
    );
    env.ok(&env.berth(&format!("resume {id}")));
    let (code, _, err) = env.detached(&format!("exec -d {id} sleep 999"));
    assert_eq!(code, 0, "exec -d: {err}");
    let ps: Vec<i64> =
        serde_json::from_str(&env.ok(&env.berth(&format!("ps --format json {id}")))).unwrap();
    assert_eq!(ps.len(), 2, "{ps:?}");
    env.ok(&env.berth(&format!("kill --all {id} KILL")));
    env.ok(&format!(
        "for i in $(seq 100); do [ \"$({} ps --format json {id})\" = \"[]\" ] && exit 0; sleep 0.05; done; exit 1",
        env.berth("")
    ));
    env.ok(&env.berth(&format!("delete {id}")));
    assert!(!env.unit_exists(&unit), "{unit} left after delete");
    let (code, _, _) = env.sh(&format!("test -e /sys/fs/cgroup{scope}"));
    assert_ne!(code, 0, "{scope} left after delete");
}

#[test]
fn containerd_runc_shim_with_systemd_cgroup_runs_berth() {
    let Some(env) = Env::boot() else { return };
    // containerd runs as a unit of the environment's systemd (Debian's containerd.service); its
    // runc shim is given berth as the runtime binary and SystemdCgroup (ctr --runc-systemd-cgroup).
    let image = env.dir.join("share/busybox-image");
    let st = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/make-busybox-image.sh"))
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    env.ok("for i in $(seq 200); do [ -S /run/containerd/containerd.sock ] && exit 0; sleep 0.05; done; \
            systemctl status --no-pager containerd; exit 1");
    let ctr = "ctr -n berthtest";
    env.ok(&format!(
        "cd /share/busybox-image && tar -cf /tmp/busybox.tar . && {ctr} images import /tmp/busybox.tar >/dev/null"
    ));
    let id = format!("k{}", env.tag);
    let unit = format!("berthtest-{id}.scope");
    let out = env.ok(&format!(
        "{ctr} run --rm --runc-binary /usr/local/bin/berth --runc-systemd-cgroup \
         --cgroup system.slice:berthtest:{id} --memory-limit 41943040 \
         localhost/busybox:latest {id} sh -c 'cat /proc/self/cgroup; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; exit 0' </dev/null"
    ));
    let want = format!("/system.slice/{unit}");
    assert_eq!(
        cgroup_of(&out, "name=systemd").as_deref(),
        Some(want.as_str()),
        "{out}"
    );
    assert_eq!(
        cgroup_of(&out, "memory").as_deref(),
        Some(want.as_str()),
        "{out}"
    );
    // A detached task: the unit carries the limit; delete leaves no unit.
    let id2 = format!("kd{}", env.tag);
    let unit2 = format!("berthtest-{id2}.scope");
    env.ok(&format!(
        "{ctr} run -d --runc-binary /usr/local/bin/berth --runc-systemd-cgroup \
         --cgroup system.slice:berthtest:{id2} --memory-limit 41943040 \
         localhost/busybox:latest {id2} sleep 1000 </dev/null >/dev/null"
    ));
    assert_eq!(env.prop(&unit2, "MemoryLimit"), "41943040");
    assert_eq!(
        env.ok(&format!(
            "cat /sys/fs/cgroup/memory/system.slice/{unit2}/memory.limit_in_bytes"
        ))
        .trim(),
        "41943040"
    );
    env.ok(&format!(
        "{ctr} task pause {id2} && {ctr} task resume {id2}"
    ));
    env.ok(&format!(
        "{ctr} task kill -s KILL {id2}; for i in $(seq 100); do {ctr} task ls | grep {id2} | grep -q STOPPED && break; sleep 0.05; done; \
         {ctr} task delete {id2} >/dev/null && {ctr} container delete {id2}"
    ));
    assert!(!env.unit_exists(&unit), "{unit} left");
    assert!(!env.unit_exists(&unit2), "{unit2} left");
}
