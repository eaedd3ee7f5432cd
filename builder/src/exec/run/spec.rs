//! RUN: a berth container on the stage's overlay snapshot, created
//! in-process through the runtime library.

use std::path::Path;

use serde_json::{json, Value};

use super::ExecError;
use crate::user::ResolvedUser;

/// Docker's default capability set for build containers.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A `RUN --mount` as the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// A bind mount of a host path (a cache directory, a context path, a
    /// path in a mounted stage).
    Bind {
        /// Host path.
        source: String,
        /// Path in the container.
        destination: String,
        /// Mounted read-only.
        read_only: bool,
    },
    /// An empty tmpfs.
    Tmpfs {
        /// Path in the container.
        destination: String,
        /// Size limit in bytes.
        size: Option<u64>,
    },
}

/// The process settings of one RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// argv.
    pub args: Vec<String>,
    /// Environment as `K=V`.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub cwd: String,
    /// Identity.
    pub user: ResolvedUser,
    /// Share the host's network namespace (`--network=host`).
    pub host_network: bool,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// RLIMIT_NOFILE (soft and hard).
    pub nofile: u64,
    /// Extra read-only bind mounts: (host source, destination).
    pub binds: Vec<(String, String)>,
    /// `RUN --mount` mounts, after `binds`.
    pub mounts: Vec<RunMount>,
    /// `RUN --security=insecure` (allowed with `--allow security.insecure`):
    /// every capability the kernel has, no masked or read-only paths,
    /// /sys and the cgroup mount writable — as BuildKit's insecure mode.
    pub insecure: bool,
}

/// The capabilities of this process's bounding set, by name: what an
/// insecure RUN gets (as privileged containers do, a builder lacking e.g.
/// CAP_SYS_RESOURCE cannot hand it on).
pub fn bounding_caps() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let last = berth::capabilities::last_cap() as usize;
    berth::capabilities::NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| *i <= last && *i < 64 && mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The mount destinations the container needs; if missing from the
/// rootfs the runtime creates them, and the builder removes them again so
/// they do not end up in the layer.
pub fn mount_destinations(spec: &Value) -> Vec<String> {
    spec["mounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["destination"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// config.json for a RUN, starting from the runtime's default spec.
pub fn run_spec(s: &RunSettings) -> Value {
    // Rootless: the runtime's rootless spec (a user namespace inside the builder's, devpts
    // without gid=5, /sys bound), with the network namespace RUN has by default.
    let rootless = crate::rootless::active();
    let mut spec = berth::spec::default_spec(rootless);
    if rootless && !s.host_network {
        if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
            ns.push(json!({"type": "network"}));
        }
    }
    if rootless {
        // Every id of the builder's namespace (subordinate ranges included) maps through.
        for (key, file) in [
            ("uidMappings", "/proc/self/uid_map"),
            ("gidMappings", "/proc/self/gid_map"),
        ] {
            let maps: Vec<Value> = crate::rootless::identity_extents(file)
                .into_iter()
                .map(|(c, h, n)| json!({"containerID": c, "hostID": h, "size": n}))
                .collect();
            spec["linux"][key] = json!(maps);
        }
    }
    let caps = if s.insecure {
        json!(bounding_caps())
    } else {
        json!(DEFAULT_CAPS)
    };
    spec["process"] = json!({
        "terminal": false,
        "user": {
            "uid": s.user.uid,
            "gid": s.user.gid,
            "additionalGids": s.user.additional_gids,
        },
        "args": s.args,
        "env": s.env,
        "cwd": s.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": s.nofile, "soft": s.nofile}],
        "noNewPrivileges": false
    });
    spec["root"] = json!({"path": "rootfs", "readonly": false});
    spec["hostname"] = json!("buildkitsandbox");
    spec["linux"]["cgroupsPath"] = json!(s.cgroups_path);
    if s.host_network {
        if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "network");
        }
    }
    if s.insecure {
        if let Some(linux) = spec["linux"].as_object_mut() {
            linux.remove("maskedPaths");
            linux.remove("readonlyPaths");
        }
        for m in spec["mounts"].as_array_mut().into_iter().flatten() {
            if m["type"] == "sysfs" || m["type"] == "cgroup" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "ro");
                    opts.push(json!("rw"));
                }
            }
        }
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for (src, dst) in &s.binds {
            mounts.push(json!({
                "destination": dst, "type": "bind", "source": src,
                "options": ["rbind", "ro", "nosuid", "nodev"]
            }));
        }
        for m in &s.mounts {
            mounts.push(match m {
                RunMount::Bind {
                    source,
                    destination,
                    read_only,
                } => json!({
                    "destination": destination, "type": "bind", "source": source,
                    "options": ["rbind", if *read_only { "ro" } else { "rw" }]
                }),
                RunMount::Tmpfs { destination, size } => {
                    let mut options =
                        vec!["nosuid".to_string(), "nodev".into(), "mode=1777".into()];
                    if let Some(n) = size {
                        options.push(format!("size={n}"));
                    }
                    json!({
                        "destination": destination, "type": "tmpfs", "source": "tmpfs",
                        "options": options
                    })
                }
            });
        }
    }
    spec
}

/// Runs the container described by `bundle/config.json` to completion and
/// returns its exit status and the runtime's warnings. The process must be
/// single-threaded (the RUN helper, [`super::helper`]); the container
/// inherits its stdio.
pub fn run_container(
    bundle: &Path,
    id: &str,
    state_root: &Path,
) -> Result<(i32, Vec<String>), ExecError> {
    let opts = berth::container::CreateOptions {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        root: state_root.to_path_buf(),
        ..Default::default()
    };
    berth::container::run_to_completion(&opts).map_err(|e| ExecError::Runtime(e.to_string()))
}

/// The current RLIMIT_NOFILE hard limit (used for RUN's soft and hard).
pub fn nofile_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard.min(1 << 20))
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_for_run() {
        let s = RunSettings {
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/app".into(),
            user: ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10],
            },
            host_network: true,
            cgroups_path: "/berth-build-1/step-2".into(),
            nofile: 4096,
            binds: vec![("/etc/resolv.conf".into(), "/etc/resolv.conf".into())],
            mounts: vec![
                RunMount::Bind {
                    source: "/store/mounts/cache/x".into(),
                    destination: "/root/.cache".into(),
                    read_only: false,
                },
                RunMount::Tmpfs {
                    destination: "/tmp".into(),
                    size: Some(1 << 20),
                },
            ],
            insecure: false,
        };
        let v = run_spec(&s);
        assert_eq!(v["process"]["terminal"], json!(false));
        assert_eq!(v["process"]["user"]["additionalGids"], json!([10]));
        assert_eq!(v["root"]["readonly"], json!(false));
        assert_eq!(v["hostname"], json!("buildkitsandbox"));
        assert_eq!(v["linux"]["cgroupsPath"], json!("/berth-build-1/step-2"));
        let ns = v["linux"]["namespaces"].as_array().expect("ns");
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert!(ns.iter().any(|n| n["type"] == "mount"));
        assert!(mount_destinations(&v).contains(&"/etc/resolv.conf".to_string()));
        assert!(mount_destinations(&v).contains(&"/proc".to_string()));
        let mounts = v["mounts"].as_array().expect("mounts");
        let n = mounts.len();
        assert_eq!(
            mounts[n - 2],
            json!({"destination": "/root/.cache", "type": "bind",
                   "source": "/store/mounts/cache/x", "options": ["rbind", "rw"]})
        );
        assert_eq!(
            mounts[n - 1],
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777", "size=1048576"]})
        );
        let mut s2 = s.clone();
        s2.host_network = false;
        let v2 = run_spec(&s2);
        assert!(v2["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .iter()
            .any(|n| n["type"] == "network"));
        assert!(v2["linux"]["maskedPaths"].is_array());
        assert_eq!(
            v2["process"]["capabilities"]["bounding"],
            json!(DEFAULT_CAPS)
        );
        // --security=insecure: all caps, nothing masked, /sys writable.
        s2.insecure = true;
        let v3 = run_spec(&s2);
        let caps = v3["process"]["capabilities"]["effective"]
            .as_array()
            .expect("caps");
        assert!(caps.contains(&json!("CAP_SYS_ADMIN")), "{caps:?}");
        assert!(v3["linux"].get("maskedPaths").is_none());
        assert!(v3["linux"].get("readonlyPaths").is_none());
        let sys = v3["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["type"] == "sysfs")
            .expect("sysfs");
        assert!(!sys["options"]
            .as_array()
            .expect("opts")
            .contains(&json!("ro")));
    }
}
