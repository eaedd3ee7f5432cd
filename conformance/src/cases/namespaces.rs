//! linux.namespaces: new namespaces, shared ones, joining by path, user namespaces with
//! mappings, and sysctls that must live in a namespace.

use super::SLEEP;
use crate::case;
use crate::case::{Case, Ctx};
use crate::error::Result;
use serde_json::{json, Value};

/// The namespaces chapter (sysctl included: it is namespaced state).
pub fn cases() -> Vec<Case> {
    const C: &str = "namespaces";
    vec![
        case!(
            C,
            "new",
            "each listed namespace type is new (differs from the host's)",
            [],
            new_namespaces
        ),
        case!(
            C,
            "pid-one",
            "in a new pid namespace the process is pid 1 and sees only its own",
            [],
            pid_one
        ),
        case!(
            C,
            "shared",
            "an omitted namespace type is shared with the host",
            [],
            shared
        ),
        case!(
            C,
            "join-path",
            "a namespace with a path joins that namespace",
            [],
            join_path
        ),
        case!(
            C,
            "user-mappings",
            "a user namespace gets the uid/gid mappings and host ids map",
            [],
            user_mappings
        ),
        case!(
            C,
            "sysctl",
            "linux.sysctl values are set in the container's namespaces",
            [],
            sysctl
        ),
        case!(
            C,
            "sysctl-host-net",
            "a net.* sysctl without a network namespace is refused",
            [],
            sysctl_host_net
        ),
        case!(
            C,
            "sysctl-not-namespaced",
            "a sysctl that is not namespaced is refused",
            [],
            sysctl_not_namespaced
        ),
        case!(
            C,
            "bad-namespace",
            "an unknown namespace type is refused",
            [],
            bad_namespace
        ),
        case!(
            C,
            "no-mount-namespace",
            "without a mount namespace (and no mounts) the process runs chrooted in root.path",
            [],
            no_mount_namespace
        ),
        case!(
            C,
            "no-mount-namespace-no-leak",
            "without a mount namespace the configured mounts are made (in the runtime's mount namespace) and removed on delete (runc leaves them)",
            [],
            no_mount_namespace_no_leak
        ),
        case!(
            C,
            "join-mount-namespace",
            "a mount namespace given by path is joined and the rootfs is built in it",
            [],
            join_mount_namespace
        ),
        case!(
            C,
            "hostname-joined-uts",
            "hostname is set in a uts namespace joined by path",
            [],
            hostname_joined_uts
        ),
        case!(
            C,
            "userns-bind-unreachable-source",
            "a bind source that the user namespace's root cannot reach is still mounted",
            [],
            userns_bind_unreachable_source
        ),
    ]
}

/// A host process holding namespaces of its own (`unshare FLAGS sleep`), killed when dropped.
struct Holder(std::process::Child);

impl Holder {
    fn start(flags: &[&str]) -> Result<Holder> {
        let child = std::process::Command::new("unshare")
            .args(flags)
            .args(["sleep", "600"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .map_err(|e| crate::error::Error::Other(format!("unshare: {e}")))?;
        let h = Holder(child);
        // Wait until unshare has exec'd sleep (its namespaces differ from ours).
        let pid = h.pid();
        for _ in 0..200 {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                return Ok(h);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(crate::error::Error::Other(
            "unshare did not start sleep".into(),
        ))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn ns(&self, kind: &str) -> String {
        std::fs::read_link(format!("/proc/{}/ns/{kind}", self.pid()))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn no_mount_namespace(ctx: &mut Ctx) -> Result<()> {
    no_mount_namespace_run(ctx)
}

fn no_mount_namespace_no_leak(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    b.remove_namespace("mount");
    // runc refuses maskedPaths and readonlyPaths without a mount namespace of its own.
    if let Some(l) = b.config["linux"].as_object_mut() {
        l.remove("maskedPaths");
        l.remove("readonlyPaths");
    }
    b.add_mount(
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m"]}),
    );
    b.sh("grep -c ' /data ' /proc/self/mountinfo; test -r /proc/self/status && echo proc-mounted");
    let rootfs = b.rootfs().to_string_lossy().into_owned();
    let under_rootfs = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m == &rootfs || m.starts_with(&format!("{rootfs}/")))
            .count()
    };
    let before = under_rootfs();
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "the configured tmpfs is mounted on /data",
        out.stdout.lines().next().is_some_and(|l| l.trim() != "0"),
        format!("{out:?}"),
    );
    ctx.check(
        "the configured /proc is mounted",
        out.stdout.contains("proc-mounted"),
        format!("{out:?}"),
    );
    let after = under_rootfs();
    ctx.check_eq(
        "after delete nothing is left mounted below the rootfs in the host's mount table",
        after,
        before,
    );
    Ok(())
}

fn no_mount_namespace_run(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    let marker = b.rootfs().join("marker-no-mntns");
    std::fs::write(&marker, "").map_err(crate::error::io("writing", &marker))?;
    b.remove_namespace("mount");
    b.config["mounts"] = json!([]);
    b.config["root"]["readonly"] = json!(false);
    if let Some(l) = b.config["linux"].as_object_mut() {
        l.remove("maskedPaths");
        l.remove("readonlyPaths");
        l.remove("rootfsPropagation");
    }
    // runc needs /proc/self/fd inside the root: provide a host-side proc mount there, as a
    // caller without a mount namespace would (counted out of the leak check below).
    let proc_dir = b.rootfs().join("proc");
    ctx.host_mount(&["-t", "proc", "proc"], &proc_dir)?;
    b.args(&["/bin/ls", "/"]);
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "/ is the container's root.path",
        out.stdout.lines().any(|l| l == "marker-no-mntns"),
        format!("{out:?}"),
    );
    Ok(())
}

fn join_mount_namespace(ctx: &mut Ctx) -> Result<()> {
    let holder = Holder::start(&["-m", "--propagation", "private"])?;
    let want = holder.ns("mnt");
    let mut b = ctx.checker_bundle(&["ns"])?;
    b.set_namespace("mount", Some(&format!("/proc/{}/ns/mnt", holder.pid())));
    let f = ctx.run_json(&b)?;
    ctx.check_eq(
        "the container is in the given mount namespace",
        f["mnt"].as_str().unwrap_or(""),
        want.as_str(),
    );
    ctx.check("it is not the host's", want != host_ns("mnt"), want.clone());
    Ok(())
}

fn hostname_joined_uts(ctx: &mut Ctx) -> Result<()> {
    let holder = Holder::start(&["-u"])?;
    let mut b = ctx.bundle(&["/bin/hostname"])?;
    b.set_namespace("uts", Some(&format!("/proc/{}/ns/uts", holder.pid())));
    b.config["hostname"] = json!("joined-uts");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check_eq(
        "the container sees the hostname",
        out.stdout.trim(),
        "joined-uts",
    );
    let theirs = std::process::Command::new("nsenter")
        .args(["-t", &holder.pid().to_string(), "-u", "hostname"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    ctx.check_eq(
        "it was set in the joined namespace",
        theirs.as_str(),
        "joined-uts",
    );
    Ok(())
}

fn userns_bind_unreachable_source(ctx: &mut Ctx) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let outer = ctx.work.join("private-0700");
    let inner = outer.join("shared");
    std::fs::create_dir_all(&inner).map_err(crate::error::io("creating", &inner))?;
    std::fs::write(inner.join("file"), "reached").map_err(crate::error::io("writing", &inner))?;
    std::fs::set_permissions(&outer, std::fs::Permissions::from_mode(0o700))
        .map_err(crate::error::io("chmod", &outer))?;
    let mut b = ctx.bundle(&["/bin/cat", "/data/file"])?;
    let mnt = b.rootfs().join("data");
    std::fs::create_dir_all(&mnt).map_err(crate::error::io("creating", &mnt))?;
    b.set_namespace("user", None);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.add_mount(json!({"destination": "/data", "type": "bind", "source": inner, "options": ["rbind", "ro"]}));
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check_eq(
        "the file below the unreachable directory is read",
        out.stdout.trim(),
        "reached",
    );
    Ok(())
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn new_namespaces(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["ns"], |b| {
        b.set_namespace("cgroup", None);
    })?;
    for (spec, proc_name) in [
        ("pid", "pid"),
        ("network", "net"),
        ("ipc", "ipc"),
        ("uts", "uts"),
        ("mount", "mnt"),
        ("cgroup", "cgroup"),
    ] {
        let inside = f[proc_name].as_str().unwrap_or("").to_string();
        let host = host_ns(proc_name);
        ctx.check(
            format!("{spec} namespace is new"),
            !inside.is_empty() && inside != host,
            format!("container {inside:?}, host {host:?}"),
        );
    }
    Ok(())
}

fn pid_one(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["facts"], |_| {})?;
    ctx.check_eq("the process is pid 1", f["pid"].as_i64(), Some(1));
    let mut b = ctx.bundle(&[])?;
    b.sh("ls /proc | grep -c '^[0-9]'");
    let out = ctx.run(&b)?.require()?;
    let n: i64 = out.stdout.trim().parse().unwrap_or(-1);
    ctx.check(
        "only the container's processes are visible",
        (1..=3).contains(&n),
        format!("{n} pids in /proc"),
    );
    Ok(())
}

fn shared(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["ns"], |b| {
        b.remove_namespace("network").remove_namespace("ipc");
    })?;
    for k in ["net", "ipc"] {
        let inside = f[k].as_str().unwrap_or("").to_string();
        ctx.check_eq(format!("{k} namespace is the host's"), inside, host_ns(k));
    }
    Ok(())
}

fn join_path(ctx: &mut Ctx) -> Result<()> {
    let first = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&first)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(0);
    let target = |k: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{k}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let f = ctx.checker(&["ns"], |b| {
        b.set_namespace("network", Some(&format!("/proc/{pid}/ns/net")));
        b.set_namespace("ipc", Some(&format!("/proc/{pid}/ns/ipc")));
        b.set_namespace("uts", Some(&format!("/proc/{pid}/ns/uts")));
        b.config.as_object_mut().map(|c| c.remove("hostname"));
    })?;
    for k in ["net", "ipc", "uts"] {
        let inside = f[k].as_str().unwrap_or("").to_string();
        ctx.check_eq(
            format!("joined the first container's {k} namespace"),
            inside,
            target(k),
        );
    }
    Ok(())
}

fn user_mappings(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    b.set_namespace("user", None);
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    let id = ctx.start_ok(&b)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(0);
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
    let gid_map = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap_or_default();
    let fields = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    ctx.check_eq(
        "uid_map is 0 200000 65536",
        fields(&uid_map),
        fields("0 200000 65536"),
    );
    ctx.check_eq(
        "gid_map is 0 200000 65536",
        fields(&gid_map),
        fields("0 200000 65536"),
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or("")
        .to_string();
    ctx.check(
        "the process runs as host uid 200000",
        uid_line.split_whitespace().nth(1) == Some("200000"),
        uid_line,
    );
    let user_ns = std::fs::read_link(format!("/proc/{pid}/ns/user"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    ctx.check(
        "the user namespace is new",
        user_ns != host_ns("user"),
        user_ns,
    );
    Ok(())
}

fn sysctl(ctx: &mut Ctx) -> Result<()> {
    let f: Value = ctx.checker(
        &[
            "sysctl",
            "net.ipv4.ip_forward",
            "net.ipv4.ip_unprivileged_port_start",
            "kernel.msgmax",
        ],
        |b| {
            b.config["linux"]["sysctl"] = json!({
                "net.ipv4.ip_forward": "1",
                "net.ipv4.ip_unprivileged_port_start": "80",
                "kernel.msgmax": "4096"
            });
        },
    )?;
    ctx.check_eq(
        "net.ipv4.ip_forward is 1",
        f["net.ipv4.ip_forward"].as_str(),
        Some("1"),
    );
    ctx.check_eq(
        "net.ipv4.ip_unprivileged_port_start is 80",
        f["net.ipv4.ip_unprivileged_port_start"].as_str(),
        Some("80"),
    );
    ctx.check_eq(
        "kernel.msgmax is 4096 (ipc namespace)",
        f["kernel.msgmax"].as_str(),
        Some("4096"),
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap_or_default();
    ctx.check(
        "the host's kernel.msgmax is unchanged",
        host.trim() != "4096",
        host,
    );
    Ok(())
}

fn sysctl_host_net(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.checker_bundle(&["ns"])?;
    b.remove_namespace("network");
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let out = ctx.run(&b)?;
    ctx.check_fails("run fails", &out);
    Ok(())
}

fn sysctl_not_namespaced(ctx: &mut Ctx) -> Result<()> {
    // Ask for the host's current value, so a runtime that wrongly applies it changes nothing.
    let current = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap_or_default();
    let mut b = ctx.checker_bundle(&["ns"])?;
    b.config["linux"]["sysctl"] = json!({"vm.swappiness": current.trim()});
    let out = ctx.run(&b)?;
    ctx.check_fails("run fails", &out);
    Ok(())
}

fn bad_namespace(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.checker_bundle(&["ns"])?;
    b.set_namespace("bogus", None);
    let out = ctx.run(&b)?;
    ctx.check_fails("run fails", &out);
    Ok(())
}
