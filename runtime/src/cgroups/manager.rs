//! Operations on a container's cgroups: apply resources (v1 controllers, or cgroup2 with an
//! eBPF device filter), freeze and thaw, and signal every process.

use super::resources::{device_rules, plan_v1, plan_v2, Target, Write};
use super::{devices_bpf, CgroupError, Placement};
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn io(path: &Path) -> impl Fn(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    if !path.exists() {
        return Err(CgroupError::Invalid(format!(
            "{}: this kernel or cgroup does not provide {file}",
            dir.display()
        )));
    }
    std::fs::write(&path, value).map_err(io(&path))
}

/// Whether the container uses v1 controllers (legacy or hybrid host) or cgroup2 only.
pub fn is_v1(p: &Placement) -> bool {
    !p.v1.is_empty()
}

/// Applies `resources` to the container's cgroups.
pub fn apply(p: &Placement, r: &LinuxResources) -> Result<(), CgroupError> {
    if is_v1(p) {
        apply_v1(p, r)
    } else {
        apply_v2(p, r)
    }
}

fn apply_v1(p: &Placement, r: &LinuxResources) -> Result<(), CgroupError> {
    let writes = plan_v1(r)?;
    let dir_of = |w: &Write| -> Result<PathBuf, CgroupError> {
        let Target::V1(ctrl) = w.target else {
            return Err(CgroupError::Invalid(format!(
                "{}: not a v1 setting",
                w.file
            )));
        };
        p.v1.get(ctrl).cloned().ok_or_else(|| {
            CgroupError::Invalid(format!(
                "linux.resources: {} needs the {ctrl} controller, which is not mounted on this host",
                w.file
            ))
        })
    };
    // memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes: if raising the limit
    // fails, set the swap limit first and try again.
    let mut pending_limit: Option<(PathBuf, String)> = None;
    for w in &writes {
        let dir = dir_of(w)?;
        if w.file == "memory.limit_in_bytes" {
            if write_file(&dir, &w.file, &w.value).is_err() {
                pending_limit = Some((dir, w.value.clone()));
            }
            continue;
        }
        write_file(&dir, &w.file, &w.value)?;
    }
    if let Some((dir, v)) = pending_limit {
        write_file(&dir, "memory.limit_in_bytes", &v)?;
    }
    let rules = device_rules(r);
    if !rules.is_empty() {
        let dir = p.v1.get("devices").ok_or_else(|| {
            CgroupError::Invalid(
                "linux.resources.devices: the devices controller is not mounted".into(),
            )
        })?;
        for (allow, rule) in rules {
            let file = if allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write_file(dir, file, &rule)?;
        }
    }
    Ok(())
}

fn apply_v2(p: &Placement, r: &LinuxResources) -> Result<(), CgroupError> {
    let dir = p
        .unified
        .as_ref()
        .ok_or_else(|| CgroupError::Invalid("no cgroup2 directory".into()))?;
    let writes = plan_v2(r)?;
    let mut needed: Vec<&'static str> = Vec::new();
    for w in &writes {
        if let Target::V2 {
            controller: Some(c),
        } = w.target
        {
            if !needed.contains(&c) {
                needed.push(c);
            }
        }
    }
    enable_controllers(p, dir, &needed)?;
    for w in &writes {
        write_file(dir, &w.file, &w.value)?;
    }
    let rules = device_rules(r);
    if !rules.is_empty() {
        devices_bpf::attach(dir, &rules)?;
    }
    Ok(())
}

/// Enables `controllers` on the way down to `dir`: in every ancestor's cgroup.subtree_control.
/// Only cgroups berth created are changed; a pre-existing ancestor without the controller is an
/// error that says what to enable.
fn enable_controllers(p: &Placement, dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    if controllers.is_empty() {
        return Ok(());
    }
    let mut chain: Vec<PathBuf> = dir.ancestors().skip(1).map(Path::to_path_buf).collect();
    chain.reverse();
    for parent in chain {
        let sc = parent.join("cgroup.subtree_control");
        let Ok(enabled) = std::fs::read_to_string(&sc) else {
            continue;
        };
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        for c in controllers {
            if enabled.contains(c) {
                continue;
            }
            let ours = p.created.iter().any(|d| *d == parent);
            if !ours {
                return Err(CgroupError::Invalid(format!(
                    "the {c} controller is not enabled in {} and berth does not change cgroups it did not create: \
                     enable it there (echo +{c} > {}) or choose a cgroupsPath below a cgroup that has it",
                    sc.display(),
                    sc.display()
                )));
            }
            std::fs::write(&sc, format!("+{c}")).map_err(io(&sc))?;
        }
    }
    Ok(())
}

/// The directory that freezes the container: the v1 freezer, or the cgroup2 directory.
fn freezer(p: &Placement) -> Result<(PathBuf, bool), CgroupError> {
    if let Some(d) = p.v1.get("freezer") {
        return Ok((d.clone(), true));
    }
    match &p.unified {
        Some(d) => Ok((d.clone(), false)),
        None => Err(CgroupError::Invalid(
            "no freezer: neither the v1 freezer nor cgroup2 is available".into(),
        )),
    }
}

/// Freezes every process in the container and waits until the kernel reports it frozen.
pub fn freeze(p: &Placement) -> Result<(), CgroupError> {
    let (dir, v1) = freezer(p)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wait = Duration::from_micros(100);
    loop {
        if v1 {
            write_file(&dir, "freezer.state", "FROZEN")?;
            let s = std::fs::read_to_string(dir.join("freezer.state")).map_err(io(&dir))?;
            if s.trim() == "FROZEN" {
                return Ok(());
            }
        } else {
            write_file(&dir, "cgroup.freeze", "1")?;
            let ev = std::fs::read_to_string(dir.join("cgroup.events")).map_err(io(&dir))?;
            if ev.lines().any(|l| l.trim() == "frozen 1") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            let _ = thaw(p);
            return Err(CgroupError::Invalid(format!(
                "{}: the container did not freeze within 10s",
                dir.display()
            )));
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(10));
    }
}

/// Thaws the container.
pub fn thaw(p: &Placement) -> Result<(), CgroupError> {
    let (dir, v1) = freezer(p)?;
    if v1 {
        write_file(&dir, "freezer.state", "THAWED")
    } else {
        write_file(&dir, "cgroup.freeze", "0")
    }
}

/// Sends `sig` to every process in the container: frozen first so none can fork away, then
/// thawed (SIGKILL is delivered to frozen tasks on thaw), as runc does.
pub fn signal_all(p: &Placement, sig: nix::sys::signal::Signal) -> Result<(), CgroupError> {
    let frozen = freeze(p).is_ok();
    for pid in p.pids() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
    if frozen {
        thaw(p)?;
    }
    Ok(())
}
