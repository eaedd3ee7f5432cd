//! What this machine supports, found once per run (cgroup hierarchies, AppArmor, seccomp).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Facts about the host that decide whether a case can run here.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// cgroup v1 controllers and where each is mounted.
    pub v1: BTreeMap<String, PathBuf>,
    /// Mount point of the cgroup2 hierarchy, if any (e.g. /sys/fs/cgroup/unified).
    pub v2: Option<PathBuf>,
    /// Controllers available in the cgroup2 root.
    pub v2_controllers: Vec<String>,
    /// Whether AppArmor is enabled.
    pub apparmor: bool,
    /// Whether the kernel has seccomp filters.
    pub seccomp: bool,
    /// Whether the suite runs as root.
    pub root: bool,
}

impl Host {
    /// Inspects the running machine.
    pub fn detect() -> Host {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut h = parse_cgroup_mounts(&mountinfo);
        if let Some(v2) = &h.v2 {
            h.v2_controllers = std::fs::read_to_string(v2.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
        }
        h.apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .map(|s| s.trim() == "Y")
            .unwrap_or(false);
        h.seccomp = std::fs::read_to_string("/proc/self/status")
            .map(|s| s.contains("\nSeccomp:"))
            .unwrap_or(false);
        h.root = nix::unistd::geteuid().is_root();
        h
    }

    /// The cgroup directory `path` (a cgroupsPath) under v1 controller `ctrl`.
    pub fn v1_dir(&self, ctrl: &str, path: &str) -> Option<PathBuf> {
        self.v1
            .get(ctrl)
            .map(|m| m.join(path.trim_start_matches('/')))
    }

    /// The cgroup directory `path` in the cgroup2 hierarchy.
    pub fn v2_dir(&self, path: &str) -> Option<PathBuf> {
        self.v2
            .as_ref()
            .map(|m| m.join(path.trim_start_matches('/')))
    }

    /// Every hierarchy mount point (v1 and v2), for cleanup of the suite's own cgroups.
    pub fn all_hierarchies(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.v1.values().cloned().collect();
        if let Some(p) = &self.v2 {
            v.push(p.clone());
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Reads cgroup mounts from mountinfo text.
pub fn parse_cgroup_mounts(mountinfo: &str) -> Host {
    let mut h = Host::default();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if f.len() < 5 || r.len() < 3 {
            continue;
        }
        let mp = Path::new(f[4]);
        match r[0] {
            "cgroup2" if h.v2.is_none() => h.v2 = Some(mp.to_path_buf()),
            "cgroup" => {
                for opt in r[2].split(',') {
                    if !matches!(opt, "rw" | "ro") && !opt.contains('=') {
                        h.v1.entry(opt.to_string())
                            .or_insert_with(|| mp.to_path_buf());
                    } else if let Some(name) = opt.strip_prefix("name=") {
                        h.v1.entry(format!("name={name}"))
                            .or_insert_with(|| mp.to_path_buf());
                    }
                }
            }
            _ => {}
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_mountinfo() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let h = parse_cgroup_mounts(text);
        assert_eq!(h.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(
            h.v1["name=systemd"],
            PathBuf::from("/sys/fs/cgroup/systemd")
        );
        assert_eq!(h.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            h.v1_dir("memory", "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/a/b"))
        );
        assert!(h.v1_dir("pids", "/a").is_none());
    }
}
