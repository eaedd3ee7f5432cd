//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! `<prefix>-<name>.scope` in the slice `linux.cgroupsPath` names, started over D-Bus with the
//! container's first process in it and the resource properties systemd owns. Everything systemd
//! does not manage (v1 controllers it leaves alone, files it has no property for) is done the
//! cgroupfs way on the same placement.

pub mod dbus;
pub mod path;
pub mod properties;

use super::{CgroupError, Hierarchy, Placement};
use dbus::{Connection, DbusError, Value};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEST: &str = "org.freedesktop.systemd1";
const OBJ: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// What the state file remembers about a systemd-managed container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemdUnit {
    /// The unit berth started (`berth-abc.scope`).
    pub unit: String,
    /// Its slice.
    pub slice: String,
    /// Whether it lives in the user's systemd instance (rootless).
    #[serde(default)]
    pub user: bool,
}

fn sd(e: DbusError) -> CgroupError {
    CgroupError::Systemd(e.to_string())
}

/// The sockets to try for the system instance: the system bus first (measured faster: systemd
/// sets up a whole server-side connection object per private-socket client, about 1 ms more
/// than the bus's Hello and AddMatch, see docs/design.md), then systemd's private socket.
fn system_sockets() -> Vec<(PathBuf, bool)> {
    vec![
        (PathBuf::from("/run/dbus/system_bus_socket"), true),
        (PathBuf::from("/run/systemd/private"), false),
    ]
}

/// The sockets to try for the caller's user instance.
fn user_sockets() -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    if let Some(d) = &runtime {
        out.push((d.join("systemd/private"), false));
    }
    if let Ok(addr) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
        for part in addr.split(';') {
            if let Some(p) = part
                .strip_prefix("unix:")
                .and_then(|kv| kv.split(',').find_map(|kv| kv.strip_prefix("path=")))
            {
                out.push((PathBuf::from(p), true));
            }
        }
    }
    if let Some(d) = runtime {
        out.push((d.join("bus"), true));
    }
    out
}

/// Whether systemd runs as init here (what `sd_booted()` checks).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Connects to systemd's system instance, or the user's instance when `user`.
pub fn connect(user: bool) -> Result<Connection, CgroupError> {
    if !user && !booted() {
        return Err(CgroupError::Systemd(
            "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system)".into(),
        ));
    }
    let mut last = None;
    for (path, is_bus) in if user {
        user_sockets()
    } else {
        system_sockets()
    } {
        if !path.exists() {
            continue;
        }
        match Connection::connect(&path, is_bus) {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => sd(e),
        None => CgroupError::Systemd(format!(
            "--systemd-cgroup: no D-Bus socket of systemd's {} instance found",
            if user { "user" } else { "system" }
        )),
    })
}

/// Whether the driver is usable: systemd booted and its bus reachable (for `features`).
pub fn usable(user: bool) -> bool {
    (user || booted()) && connect(user).is_ok()
}

/// Plans the container's placement: the unit from cgroupsPath and its directory in every
/// hierarchy (nothing is created). The system instance's slices start at the hierarchy root;
/// a user instance's below its own cgroup (`user@UID.service`), asked from systemd.
pub fn plan(
    hierarchies: &[Hierarchy],
    cgroups_path: Option<&str>,
    id: &str,
    rootless: bool,
) -> Result<(path::UnitPath, Placement), CgroupError> {
    let mut unit = path::parse(cgroups_path, id, rootless)?;
    if rootless {
        let mut c = connect(true)?;
        let root = get_property(&mut c, OBJ, MANAGER, "ControlGroup")?;
        let root = root.as_str().unwrap_or_default().trim_end_matches('/');
        unit.cgroup = format!("{root}{}", unit.cgroup);
    }
    let placement = Placement::compute(hierarchies, &unit.cgroup)?;
    Ok((unit, placement))
}

/// The properties of the new unit: description, slice, the process, delegation, accounting,
/// then the resource properties, then the spec's `org.systemd.property.*` annotations (last, so
/// they win, as in runc).
pub fn unit_properties(
    unit: &path::UnitPath,
    id: &str,
    pid: i32,
    spec: &Spec,
    v1: bool,
) -> Result<Vec<properties::Property>, CgroupError> {
    let s = |v: &str| Value::Str(v.to_string());
    let mut props: Vec<properties::Property> =
        vec![("Description".into(), s(&format!("berth container {id}")))];
    if unit.unit.ends_with(".slice") {
        props.push((
            "Wants".into(),
            Value::Array("s".into(), vec![s(&unit.slice)]),
        ));
    } else {
        props.push(("Slice".into(), s(&unit.slice)));
        props.push((
            "PIDs".into(),
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ));
        props.push(("Delegate".into(), Value::Bool(true)));
    }
    props.push(("DefaultDependencies".into(), Value::Bool(false)));
    for a in ["MemoryAccounting", "CPUAccounting", "TasksAccounting"] {
        props.push((a.into(), Value::Bool(true)));
    }
    props.push((
        if v1 {
            "BlockIOAccounting"
        } else {
            "IOAccounting"
        }
        .into(),
        Value::Bool(true),
    ));
    if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        props.extend(properties::from_resources(r, v1)?);
    }
    if let Some(a) = spec.annotations() {
        props.extend(properties::from_annotations(a)?);
    }
    Ok(props)
}

fn prop_array(props: &[properties::Property]) -> Value {
    Value::Array(
        "(sv)".into(),
        props
            .iter()
            .map(|(k, v)| {
                Value::Struct(vec![
                    Value::Str(k.clone()),
                    Value::Variant(Box::new(v.clone())),
                ])
            })
            .collect(),
    )
}

fn subscribe(c: &mut Connection) -> Result<(), CgroupError> {
    if c.is_bus {
        c.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            &[Value::Str(
                "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'".into(),
            )],
        )
        .map_err(sd)?;
    }
    c.call(DEST, OBJ, MANAGER, "Subscribe", &[]).map_err(sd)?;
    Ok(())
}

/// Waits for the JobRemoved signal of `job`; its result must be "done".
fn wait_job(c: &mut Connection, job: &str, what: &str) -> Result<(), CgroupError> {
    let m = c
        .wait_signal(
            &format!("systemd to finish {what}"),
            Duration::from_secs(30),
            |m| m.member == "JobRemoved" && m.body.get(1).and_then(Value::as_str) == Some(job),
        )
        .map_err(sd)?;
    let result = m.body.get(3).and_then(Value::as_str).unwrap_or_default();
    if result != "done" {
        return Err(CgroupError::Systemd(format!(
            "systemd job for {what} finished with result {result:?} (see journalctl)"
        )));
    }
    Ok(())
}

/// Starts the transient unit with `props` and waits until systemd reports it started.
pub fn start_unit(
    c: &mut Connection,
    unit: &str,
    props: &[properties::Property],
) -> Result<(), CgroupError> {
    subscribe(c)?;
    let reply = c
        .call(
            DEST,
            OBJ,
            MANAGER,
            "StartTransientUnit",
            &[
                Value::Str(unit.into()),
                Value::Str("replace".into()),
                prop_array(props),
                Value::Array("(sa(sv))".into(), Vec::new()),
            ],
        )
        .map_err(|e| match e {
            DbusError::Remote { name, message } if name.ends_with("UnitExists") => {
                CgroupError::Systemd(format!(
                    "systemd unit {unit} already exists ({message}): another container uses this linux.cgroupsPath"
                ))
            }
            e => CgroupError::Systemd(format!("start {unit}: {e}")),
        })?;
    let job = reply
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| CgroupError::Systemd("StartTransientUnit: no job in reply".into()))?
        .to_string();
    if let Err(e) = wait_job(c, &job, &format!("starting {unit}")) {
        // The unit is ours but did not start: leave nothing behind (a failed unit stays listed).
        let _ = stop_unit(c, unit);
        return Err(e);
    }
    Ok(())
}

/// Stops `unit` and waits for it; a unit systemd already removed is not an error. A failed
/// unit left behind is reset so no unit remains.
pub fn stop_unit(c: &mut Connection, unit: &str) -> Result<(), CgroupError> {
    subscribe(c)?;
    match c.call(
        DEST,
        OBJ,
        MANAGER,
        "StopUnit",
        &[Value::Str(unit.into()), Value::Str("replace".into())],
    ) {
        Ok(reply) => {
            if let Some(job) = reply.first().and_then(Value::as_str) {
                let job = job.to_string();
                // A stop job that ends as "canceled"/"failed" still leaves the scope stopped or
                // gone; only a missing answer is an error.
                if let Err(CgroupError::Systemd(e)) = wait_job(c, &job, &format!("stopping {unit}"))
                {
                    if e.contains("timed out") {
                        return Err(CgroupError::Systemd(e));
                    }
                }
            }
        }
        Err(DbusError::Remote { name, .. }) if name.ends_with("NoSuchUnit") => {}
        Err(e) => return Err(CgroupError::Systemd(format!("stop {unit}: {e}"))),
    }
    let _ = c.call(
        DEST,
        OBJ,
        MANAGER,
        "ResetFailedUnit",
        &[Value::Str(unit.into())],
    );
    Ok(())
}

/// Sets properties on a running unit (runtime only, as runc does).
pub fn set_properties(
    c: &mut Connection,
    unit: &str,
    props: &[properties::Property],
) -> Result<(), CgroupError> {
    if props.is_empty() {
        return Ok(());
    }
    c.call(
        DEST,
        OBJ,
        MANAGER,
        "SetUnitProperties",
        &[
            Value::Str(unit.into()),
            Value::Bool(true),
            prop_array(props),
        ],
    )
    .map_err(|e| CgroupError::Systemd(format!("set properties of {unit}: {e}")))?;
    Ok(())
}

/// The object path of a loaded unit (GetUnit), None when systemd does not know it.
pub fn get_unit(c: &mut Connection, unit: &str) -> Result<Option<String>, CgroupError> {
    match c.call(DEST, OBJ, MANAGER, "GetUnit", &[Value::Str(unit.into())]) {
        Ok(r) => Ok(r.first().and_then(Value::as_str).map(str::to_string)),
        Err(DbusError::Remote { name, .. }) if name.ends_with("NoSuchUnit") => Ok(None),
        Err(e) => Err(sd(e)),
    }
}

/// Reads one property of a unit object (`org.freedesktop.DBus.Properties.Get`).
pub fn get_property(
    c: &mut Connection,
    object: &str,
    iface: &str,
    name: &str,
) -> Result<Value, CgroupError> {
    let r = c
        .call(
            DEST,
            object,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[Value::Str(iface.into()), Value::Str(name.into())],
        )
        .map_err(sd)?;
    r.into_iter()
        .next()
        .ok_or_else(|| CgroupError::Systemd(format!("Get {name}: empty reply")))
}

/// Starts the container's unit with `pid` in it, then creates the directories systemd does not
/// manage (v1 controllers such as cpuset or freezer), recording them in `placement.created`.
pub fn start_container(
    unit: &path::UnitPath,
    id: &str,
    user: bool,
    pid: i32,
    spec: &Spec,
    placement: &mut Placement,
) -> Result<SystemdUnit, CgroupError> {
    let v1 = super::manager::is_v1(placement);
    let props = unit_properties(unit, id, pid, spec, v1)?;
    let mut c = connect(user)?;
    start_unit(&mut c, &unit.unit, &props)?;
    let rec = SystemdUnit {
        unit: unit.unit.clone(),
        slice: unit.slice.clone(),
        user,
    };
    if let Err(e) = placement.create() {
        let _ = placement.remove();
        let _ = stop_unit(&mut c, &unit.unit);
        return Err(e);
    }
    Ok(rec)
}

/// Stops the container's unit (delete).
pub fn stop_container(u: &SystemdUnit) -> Result<(), CgroupError> {
    let mut c = connect(u.user)?;
    stop_unit(&mut c, &u.unit)
}

/// Sets the resource properties systemd owns on the container's unit (update).
pub fn update_container(
    u: &SystemdUnit,
    r: &oci_spec::runtime::LinuxResources,
    v1: bool,
) -> Result<(), CgroupError> {
    let props = properties::from_resources(r, v1)?;
    if props.is_empty() {
        return Ok(());
    }
    let mut c = connect(u.user)?;
    set_properties(&mut c, &u.unit, &props)
}
