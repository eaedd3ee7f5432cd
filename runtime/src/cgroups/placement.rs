//! The container's cgroup directories: resolve, create (recording what was created), join, remove.

use super::{CgroupError, Hierarchy};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The cgroup directories of one container, one per hierarchy, and those berth created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The container's cgroup path inside each hierarchy (e.g. `/berth/ctr1`).
    pub path: String,
    /// The container's directory in every hierarchy it joins.
    pub dirs: Vec<PathBuf>,
    /// Directories created by berth, in creation order (parents first).
    pub created: Vec<PathBuf>,
    /// The container's directory in the cgroup2 hierarchy, if there is one.
    #[serde(default)]
    pub unified: Option<PathBuf>,
    /// The container's directory per v1 controller (`memory` -> /sys/fs/cgroup/memory/...).
    #[serde(default)]
    pub v1: std::collections::BTreeMap<String, PathBuf>,
}

/// Resolves `linux.cgroupsPath` as runc's cgroupfs driver does: absolute paths are taken from
/// the hierarchy root, relative ones below the caller's own cgroup, and none means `/<id>`.
pub fn resolve_path(configured: Option<&Path>, id: &str) -> Result<String, CgroupError> {
    let p = match configured {
        Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
        _ => format!("/{id}"),
    };
    if p.split('/').any(|c| c == "..") {
        return Err(CgroupError::Path(format!("{p:?} must not contain '..'")));
    }
    if p.contains(':') && !p.starts_with('/') {
        return Err(CgroupError::Path(format!(
            "{p:?} looks like a systemd slice:prefix:name path; the systemd cgroup driver is not built yet, use a cgroupfs path"
        )));
    }
    Ok(p)
}

/// The caller's own cgroup in each hierarchy, from /proc/self/cgroup text.
fn own_cgroup(text: &str, h: &Hierarchy) -> String {
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let matches = if h.v2 {
            ctrls.is_empty()
        } else {
            let set: Vec<&str> = ctrls.split(',').collect();
            !h.controllers.is_empty() && h.controllers.iter().all(|c| set.contains(&c.as_str()))
        };
        if matches {
            return path.to_string();
        }
    }
    "/".into()
}

/// The directory for cgroup `path` in hierarchy `h`.
pub fn dir_in(h: &Hierarchy, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(h.root.as_str())
        .filter(|_| h.root != "/")
        .unwrap_or(path);
    h.mount_point.join(rel.trim_start_matches('/'))
}

impl Placement {
    /// Computes the directories for `path` in every hierarchy (without creating them).
    pub fn compute(hierarchies: &[Hierarchy], path: &str) -> Result<Placement, CgroupError> {
        let own = if path.starts_with('/') {
            String::new()
        } else {
            std::fs::read_to_string("/proc/self/cgroup").map_err(|source| CgroupError::Io {
                path: "/proc/self/cgroup".into(),
                source,
            })?
        };
        let dirs: Vec<PathBuf> = hierarchies
            .iter()
            .map(|h| {
                if path.starts_with('/') {
                    dir_in(h, path)
                } else {
                    dir_in(
                        h,
                        &format!("{}/{}", own_cgroup(&own, h).trim_end_matches('/'), path),
                    )
                }
            })
            .collect();
        let unified = hierarchies
            .iter()
            .zip(&dirs)
            .find(|(h, _)| h.v2)
            .map(|(_, d)| d.clone());
        let mut v1 = std::collections::BTreeMap::new();
        for (h, d) in hierarchies.iter().zip(&dirs) {
            for c in &h.controllers {
                v1.insert(c.clone(), d.clone());
            }
        }
        Ok(Placement {
            path: path.to_string(),
            dirs,
            created: Vec::new(),
            unified,
            v1,
        })
    }

    /// Creates every missing directory, remembering which ones were created; a v1 cpuset
    /// directory inherits cpus and mems from its parent so tasks can join it.
    pub fn create(&mut self) -> Result<(), CgroupError> {
        let missing = self.missing_dirs();
        self.create_listed(&missing)
    }

    /// Creates `missing` (from [`Placement::missing_dirs`], parents first), remembering which
    /// ones were created.
    pub fn create_listed(&mut self, missing: &[PathBuf]) -> Result<(), CgroupError> {
        let cpuset = self.v1.get("cpuset").cloned();
        for m in missing.iter().cloned() {
            match std::fs::create_dir(&m) {
                Ok(()) => {
                    self.created.push(m.clone());
                    if cpuset.as_ref().is_some_and(|c| c.starts_with(&m)) {
                        init_cpuset(&m)?;
                    }
                }
                // Made by someone else in the meantime (a parallel create): its creator
                // fills in the cpuset; never write to a cgroup berth did not create.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(CgroupError::Io { path: m, source }),
            }
        }
        Ok(())
    }

    /// The directories [`Placement::create`] would make (missing ones, parents first), for the
    /// intent record a killed create is cleaned up from.
    pub fn missing_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            let mut missing: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|d| !d.exists())
                .map(Path::to_path_buf)
                .collect();
            missing.reverse();
            for m in missing {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// Rootless: creates what the caller may create and leaves out every hierarchy where it
    /// may not (not delegated to it), as runc's rootless mode does. Returns the hierarchies
    /// left out, for the caller to decide whether that is acceptable (resource limits).
    pub fn create_where_permitted(&mut self) -> Result<Vec<PathBuf>, CgroupError> {
        let mut skipped = Vec::new();
        for dir in self.dirs.clone() {
            // The controller map goes along: create_listed finds the cpuset hierarchy in it.
            let mut one = Placement {
                dirs: vec![dir.clone()],
                v1: self.v1.clone(),
                ..Default::default()
            };
            let usable = match one.create() {
                Ok(()) => {
                    // The directory may exist and still not be ours to join.
                    let procs = dir.join("cgroup.procs");
                    nix::unistd::access(&procs, nix::unistd::AccessFlags::W_OK).is_ok()
                }
                Err(CgroupError::Io { source, .. })
                    if matches!(
                        source.raw_os_error(),
                        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
                    ) =>
                {
                    false
                }
                Err(e) => {
                    let _ = one.remove();
                    return Err(e);
                }
            };
            if usable {
                self.created.extend(one.created);
            } else {
                let _ = one.remove();
                skipped.push(dir);
            }
        }
        self.dirs.retain(|d| !skipped.contains(d));
        self.v1.retain(|_, d| !skipped.contains(d));
        if self.unified.as_ref().is_some_and(|u| skipped.contains(u)) {
            self.unified = None;
        }
        Ok(skipped)
    }

    /// Moves process `pid` (0 = the caller) into every directory; `skip_unified` leaves out the
    /// cgroup2 one (the process was cloned straight into it).
    ///
    /// The caller (pid 0) must be single-threaded, as a freshly forked child is: it moves
    /// itself through the v1 `tasks` files. Moving one thread that is the caller spares the
    /// kernel the machine-wide threadgroup lock a `cgroup.procs` write takes, whose first
    /// taking waits for an RCU grace period (10-15 ms of every container start on a VM).
    pub fn join(&self, pid: i32, skip_unified: bool) -> Result<(), CgroupError> {
        let val = pid.to_string();
        for dir in &self.dirs {
            let unified = self.unified.as_ref() == Some(dir);
            if skip_unified && unified {
                continue;
            }
            if pid == 0 && !unified {
                // A cgroup2 directory has no `tasks` (a Placement may not know which is which).
                let f = dir.join("tasks");
                let moved = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .and_then(|mut t| std::io::Write::write_all(&mut t, b"0"));
                match moved {
                    Ok(()) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(CgroupError::Io { path: f, source }),
                }
            }
            let f = dir.join("cgroup.procs");
            std::fs::write(&f, &val).map_err(|source| CgroupError::Io { path: f, source })?;
        }
        Ok(())
    }

    /// Directories the container joins that berth did not create and that already hold
    /// processes, with their count (runc warns about these).
    pub fn populated_existing(&self) -> Vec<(PathBuf, usize)> {
        self.dirs
            .iter()
            .filter(|d| !self.created.contains(d))
            .filter_map(|d| {
                let n = std::fs::read_to_string(d.join("cgroup.procs"))
                    .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
                    .unwrap_or(0);
                (n > 0).then(|| (d.clone(), n))
            })
            .collect()
    }

    /// PIDs of every process in the container's cgroup (from the first hierarchy).
    pub fn pids(&self) -> Vec<i32> {
        let Some(dir) = self.dirs.first() else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Removes the directories berth created, deepest first. Retries briefly while the
    /// kernel still counts exiting tasks (EBUSY).
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.created.iter().rev() {
            let own = self.dirs.contains(dir);
            // The kernel may report EBUSY for a moment after the last task was reaped: back off
            // from 50us, up to about two seconds in all. A parent berth created for this
            // container but that other containers have joined since stays (EBUSY at once).
            let mut wait = std::time::Duration::from_micros(50);
            let mut waited = std::time::Duration::ZERO;
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && !own && has_children(dir) =>
                    {
                        break
                    }
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY)
                            && waited < std::time::Duration::from_secs(2) =>
                    {
                        std::thread::sleep(wait);
                        waited += wait;
                        wait = (wait * 2).min(std::time::Duration::from_millis(20));
                    }
                    Err(source) => {
                        return Err(CgroupError::Io {
                            path: dir.clone(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether a cgroup directory has child cgroups.
fn has_children(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .any(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        })
        .unwrap_or(false)
}

/// Copies cpuset.cpus/mems from the parent (a new v1 cpuset starts empty and takes no tasks).
fn init_cpuset(dir: &Path) -> Result<(), CgroupError> {
    init_cpuset_depth(dir, 0)
}

/// Fills empty `cpuset.cpus`/`cpuset.mems` of `dir` from its parent, filling empty ancestors
/// first (as runc does). This is the one write to a cgroup berth may not have created: a v1
/// cpuset with no CPUs or memory nodes cannot hold any task, so nothing running depends on it,
/// and a parallel create that made it writes the same values.
fn init_cpuset_depth(dir: &Path, depth: usize) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let cur = std::fs::read_to_string(&own).unwrap_or_default();
        if !cur.trim().is_empty() {
            continue;
        }
        let from = parent.join(file);
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let mut val = read(&from)?;
        if val.trim().is_empty() && depth < 64 {
            init_cpuset_depth(parent, depth + 1)?;
            val = read(&from)?;
        }
        if val.trim().is_empty() {
            return Err(CgroupError::Invalid(format!(
                "{} is empty: the parent cpuset has no CPUs or memory nodes to give",
                from.display()
            )));
        }
        std::fs::write(&own, val.trim()).map_err(|source| CgroupError::Io { path: own, source })?;
    }
    Ok(())
}

/// Whether the container's freezer (v1) or cgroup.freeze (v2) says it is frozen.
pub fn is_frozen(p: &Placement) -> bool {
    // Straight to the freezer: the v1 freezer's directory, else the cgroup2 one (one read; this
    // runs on every status check).
    if let Some(d) = p.v1.get("freezer") {
        return std::fs::read_to_string(d.join("freezer.state"))
            .map(|s| s.trim() == "FROZEN")
            .unwrap_or(false);
    }
    if let Some(d) = &p.unified {
        return std::fs::read_to_string(d.join("cgroup.freeze"))
            .map(|s| s.trim() == "1")
            .unwrap_or(false);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(mp: &str, ctrls: &[&str], v2: bool) -> Hierarchy {
        Hierarchy {
            mount_point: mp.into(),
            root: "/".into(),
            controllers: ctrls.iter().map(|s| s.to_string()).collect(),
            v2,
        }
    }

    #[test]
    fn default_path_is_slash_id() {
        assert_eq!(resolve_path(None, "abc").unwrap(), "/abc");
        assert_eq!(
            resolve_path(Some(Path::new("/x/y")), "abc").unwrap(),
            "/x/y"
        );
        assert!(resolve_path(Some(Path::new("/x/../y")), "abc").is_err());
        assert!(
            resolve_path(Some(Path::new("system.slice:berth:abc")), "abc")
                .unwrap_err()
                .to_string()
                .contains("systemd")
        );
    }

    #[test]
    fn own_cgroup_matches_controllers() {
        let text =
            "12:memory:/mem/path\n4:cpu,cpuacct:/cpu/path\n1:name=systemd:/sd\n0::/unified/path\n";
        assert_eq!(own_cgroup(text, &h("/m", &["memory"], false)), "/mem/path");
        assert_eq!(own_cgroup(text, &h("/c", &["cpu"], false)), "/cpu/path");
        assert_eq!(own_cgroup(text, &h("/s", &["name=systemd"], false)), "/sd");
        assert_eq!(own_cgroup(text, &h("/u", &[], true)), "/unified/path");
    }

    #[test]
    fn dir_in_strips_mount_root() {
        let mut hy = h("/sys/fs/cgroup/memory", &["memory"], false);
        assert_eq!(
            dir_in(&hy, "/a/b"),
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
        hy.root = "/docker/x".into();
        assert_eq!(
            dir_in(&hy, "/docker/x/a"),
            PathBuf::from("/sys/fs/cgroup/memory/a")
        );
    }

    #[test]
    fn create_records_only_new_dirs_and_remove_deletes_them() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("existing")).unwrap();
        let hy = h(tmp.path().to_str().unwrap(), &["pids"], false);
        let mut p = Placement::compute(&[hy], "/existing/new/leaf").unwrap();
        p.create().unwrap();
        assert_eq!(p.created.len(), 2);
        p.remove().unwrap();
        assert!(tmp.path().join("existing").exists());
        assert!(!tmp.path().join("existing/new").exists());
    }
}
