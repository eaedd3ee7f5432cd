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
        write_file(&dir, v1_file(&dir, &w.file), &w.value)?;
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
        for (file, rule) in super::devices_v1::plan(&rules) {
            write_file(dir, file, &rule)?;
        }
    }
    Ok(())
}

/// Kernels with the BFQ scheduler and no CFQ have `blkio.bfq.weight[_device]` instead of
/// `blkio.weight[_device]`: use it when the plain file is missing (runc does the same).
fn v1_file<'a>(dir: &Path, file: &'a str) -> &'a str {
    let alt = match file {
        "blkio.weight" => "blkio.bfq.weight",
        "blkio.weight_device" => "blkio.bfq.weight_device",
        _ => return file,
    };
    if !dir.join(file).exists() && dir.join(alt).exists() {
        alt
    } else {
        file
    }
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
            let ours = p.created.contains(&parent);
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

/// Refuses a cgroup that is already frozen (itself or through a frozen parent): the
/// container's init would stop in it and `create` would wait forever. runc's wording.
pub fn ensure_not_frozen(p: &Placement) -> Result<(), CgroupError> {
    let Ok((dir, v1)) = freezer(p) else {
        return Ok(());
    };
    let frozen = if v1 {
        std::fs::read_to_string(dir.join("freezer.state"))
            .map(|s| s.trim() != "THAWED")
            .unwrap_or(false)
    } else {
        std::fs::read_to_string(dir.join("cgroup.events"))
            .map(|s| s.lines().any(|l| l.trim() == "frozen 1"))
            .unwrap_or(false)
    };
    if frozen {
        return Err(CgroupError::Invalid(format!(
            "container's cgroup unexpectedly frozen ({}): thaw it first",
            dir.display()
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A fake cgroup2 tree: root/parent/ctr with the files the kernel would provide.
    fn fake_v2(created_parent: bool) -> (tempfile::TempDir, Placement) {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("parent");
        let ctr = parent.join("ctr");
        std::fs::create_dir_all(&ctr).unwrap();
        std::fs::write(tmp.path().join("cgroup.subtree_control"), "cpu memory pids").unwrap();
        std::fs::write(parent.join("cgroup.subtree_control"), "").unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "cpu.weight",
            "cpu.max",
            "pids.max",
            "cgroup.freeze",
            "io.max",
        ] {
            std::fs::write(ctr.join(f), "").unwrap();
        }
        std::fs::write(ctr.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        let mut created = vec![ctr.clone()];
        if created_parent {
            created.insert(0, parent.clone());
        }
        let p = Placement {
            path: "/parent/ctr".into(),
            dirs: vec![ctr.clone()],
            created,
            unified: Some(ctr),
            v1: Default::default(),
        };
        (tmp, p)
    }

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn v2_apply_writes_files_and_enables_controllers_in_own_parents() {
        let (tmp, p) = fake_v2(true);
        apply(&p, &res(json!({"memory": {"limit": 1000, "swap": 3000}, "cpu": {"shares": 1024, "quota": 5000}, "pids": {"limit": 9}}))).unwrap();
        let ctr = tmp.path().join("parent/ctr");
        let read = |f: &str| std::fs::read_to_string(ctr.join(f)).unwrap();
        assert_eq!(read("memory.max"), "1000");
        assert_eq!(read("memory.swap.max"), "2000");
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("cpu.max"), "5000 100000");
        assert_eq!(read("pids.max"), "9");
        // The parent berth created got the controllers; the root (not ours) was only read.
        assert!(
            std::fs::read_to_string(tmp.path().join("parent/cgroup.subtree_control"))
                .unwrap()
                .starts_with('+')
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("cgroup.subtree_control")).unwrap(),
            "cpu memory pids"
        );
    }

    #[test]
    fn v2_apply_refuses_to_change_a_parent_it_did_not_create() {
        let (_tmp, p) = fake_v2(false);
        let e = apply(&p, &res(json!({"pids": {"limit": 9}})))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pids controller is not enabled") && e.contains("did not create"),
            "{e}"
        );
    }

    #[test]
    fn v2_missing_file_is_a_clear_error() {
        let (_tmp, p) = fake_v2(true);
        let e = apply(
            &p,
            &res(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hugetlb"), "{e}");
    }

    #[test]
    fn v2_freeze_and_thaw_use_cgroup_freeze() {
        let (tmp, p) = fake_v2(true);
        freeze(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("parent/ctr/cgroup.freeze")).unwrap(),
            "1"
        );
        thaw(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("parent/ctr/cgroup.freeze")).unwrap(),
            "0"
        );
    }

    #[test]
    fn v1_blkio_weight_falls_back_to_bfq() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("blkio.bfq.weight"), "").unwrap();
        assert_eq!(v1_file(tmp.path(), "blkio.weight"), "blkio.bfq.weight");
        std::fs::write(tmp.path().join("blkio.weight"), "").unwrap();
        assert_eq!(v1_file(tmp.path(), "blkio.weight"), "blkio.weight");
        assert_eq!(
            v1_file(tmp.path(), "memory.limit_in_bytes"),
            "memory.limit_in_bytes"
        );
    }

    #[test]
    fn v1_apply_uses_controller_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let mut v1 = std::collections::BTreeMap::new();
        for c in ["memory", "pids", "devices"] {
            let d = tmp.path().join(c);
            std::fs::create_dir(&d).unwrap();
            v1.insert(c.to_string(), d);
        }
        for f in [
            "memory/memory.limit_in_bytes",
            "pids/pids.max",
            "devices/devices.allow",
            "devices/devices.deny",
        ] {
            std::fs::write(tmp.path().join(f), "").unwrap();
        }
        let p = Placement {
            v1,
            ..Default::default()
        };
        apply(&p, &res(json!({"memory": {"limit": 4096}, "pids": {"limit": -1}, "devices": [{"allow": false, "access": "rwm"}]}))).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("memory/memory.limit_in_bytes")).unwrap(),
            "4096"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("pids/pids.max")).unwrap(),
            "max"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("devices/devices.deny")).unwrap(),
            "a",
            "deny-all is written as the emulated reset"
        );
        // cpu is not mounted in this fake tree.
        let e = apply(&p, &res(json!({"cpu": {"shares": 2}})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpu controller"), "{e}");
    }
}
