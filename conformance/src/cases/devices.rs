//! linux.devices (nodes created in the container) and the device cgroup
//! (linux.resources.devices).

use crate::case;
use crate::case::{Case, Ctx, Need};
use crate::error::Result;
use serde_json::json;

/// The devices chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "devices";
    vec![
        case!(
            C,
            "nodes",
            "linux.devices creates char, block and fifo nodes with mode, uid, gid",
            [],
            nodes
        ),
        case!(
            C,
            "default-allowed",
            "null, zero and urandom are usable with a deny-all device cgroup",
            [],
            default_allowed
        ),
        case!(
            C,
            "cgroup-deny",
            "a device not allowed by the device cgroup cannot be opened",
            [Need::CgroupV1("devices")],
            cgroup_deny
        ),
        case!(
            C,
            "cgroup-allow",
            "an allow rule lets the device through and appears in devices.list",
            [Need::CgroupV1("devices")],
            cgroup_allow
        ),
    ]
}

fn nodes(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["stat", "/dev/mynull", "/dev/myloop", "/dev/myfifo"], |b| {
        b.config["linux"]["devices"] = json!([
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 2000},
            {"path": "/dev/myloop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"path": "/dev/myfifo", "type": "p", "fileMode": 0o644}
        ]);
    })?;
    let n = &f["/dev/mynull"];
    ctx.check(
        "/dev/mynull is char 1:3",
        n["type"] == "c" && n["major"] == 1 && n["minor"] == 3,
        format!("{n}"),
    );
    ctx.check_eq("its mode is 0640", n["mode"].as_i64(), Some(0o640));
    ctx.check_eq(
        "its owner is 1000:2000",
        (n["uid"].as_i64(), n["gid"].as_i64()),
        (Some(1000), Some(2000)),
    );
    let l = &f["/dev/myloop"];
    ctx.check(
        "/dev/myloop is block 7:0",
        l["type"] == "b" && l["major"] == 7 && l["minor"] == 0,
        format!("{l}"),
    );
    ctx.check_eq(
        "/dev/myfifo is a fifo",
        f["/dev/myfifo"]["type"].as_str(),
        Some("p"),
    );
    Ok(())
}

fn default_allowed(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(
        &["access", "/dev/null", "/dev/zero", "/dev/urandom"],
        |_| {},
    )?;
    ctx.check(
        "/dev/null is readable and writable",
        f["/dev/null"]["readable"] == true && f["/dev/null"]["writable"] == true,
        format!("{}", f["/dev/null"]),
    );
    ctx.check_eq(
        "/dev/zero is readable",
        f["/dev/zero"]["readable"].as_bool(),
        Some(true),
    );
    ctx.check_eq(
        "/dev/urandom is readable",
        f["/dev/urandom"]["readable"].as_bool(),
        Some(true),
    );
    Ok(())
}

// Device 1:2 (the removed /dev/kmem) is not in any runtime's default allow list and needs no
// capability to open: the device cgroup answers EPERM, the kernel itself ENXIO.
fn gone_device() -> serde_json::Value {
    json!([{"path": "/dev/gone", "type": "c", "major": 1, "minor": 2, "fileMode": 0o666, "uid": 0, "gid": 0}])
}

fn cgroup_deny(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["access", "/dev/gone"], |b| {
        b.config["linux"]["devices"] = gone_device();
    })?;
    let e = &f["/dev/gone"];
    ctx.check_eq("the node exists", e["exists"].as_bool(), Some(true));
    ctx.check(
        "opening it is refused with EPERM by the device cgroup",
        e["read_error"]
            .as_str()
            .map(|s| s.contains("Operation not permitted"))
            .unwrap_or(false),
        format!("{e}"),
    );
    Ok(())
}

fn cgroup_allow(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.checker_bundle(&["access", "/dev/gone"])?;
    b.config["linux"]["devices"] = gone_device();
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 2, "access": "rw"}
    ]);
    let f = ctx.run_json(&b)?;
    let e = &f["/dev/gone"];
    ctx.check(
        "opening it is no longer refused by the cgroup (ENXIO from the kernel)",
        e["read_error"]
            .as_str()
            .map(|s| !s.contains("Operation not permitted"))
            .unwrap_or(false),
        format!("{e}"),
    );
    let mut b2 = ctx.bundle(super::SLEEP)?;
    b2.config["linux"]["resources"]["devices"] = b.config["linux"]["resources"]["devices"].clone();
    let _id = ctx.start_ok(&b2)?;
    let list = std::fs::read_to_string(ctx.v1_dir("devices", &b2)?.join("devices.list"))
        .unwrap_or_default();
    ctx.check(
        "devices.list has c 1:2 rw",
        list.lines().any(|l| l.trim() == "c 1:2 rw"),
        list.clone(),
    );
    ctx.check(
        "devices.list does not allow everything",
        !list.contains("a *:* rwm"),
        list,
    );
    Ok(())
}
