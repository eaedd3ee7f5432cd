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
    ]
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
