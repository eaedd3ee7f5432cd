//! OCI bundles for the cases: a busybox-static rootfs with the checker at `/bin/checker`, and a
//! config.json kept as JSON so cases can set any field (or break it on purpose).

use crate::error::{io, Error, Result};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The statically linked checker built by `build.rs`, embedded in the suite.
pub static CHECKER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-conformance-checker"));

/// Where the checker is inside every rootfs.
pub const CHECKER_PATH: &str = "/bin/checker";

/// The host busybox the rootfs is made from (Debian package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";

/// The oci version written in configs: crun 1.8.1 rejects newer ones.
pub const OCI_VERSION: &str = "1.0.2";

/// Files shared by every rootfs of one run (hard-linked from here, so making a rootfs is cheap).
#[derive(Debug)]
pub struct Template {
    dir: PathBuf,
    applets: Vec<String>,
}

impl Template {
    /// Copies busybox and the checker into `dir` and lists busybox's applets.
    pub fn new(dir: &Path) -> Result<Template> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        if !Path::new(BUSYBOX).exists() {
            return Err(Error::Other(format!(
                "{BUSYBOX} is missing: apt-get install busybox-static"
            )));
        }
        let bb = dir.join("busybox");
        std::fs::copy(BUSYBOX, &bb).map_err(io("copying busybox to", &bb))?;
        let ck = dir.join("checker");
        std::fs::write(&ck, CHECKER).map_err(io("writing", &ck))?;
        for p in [&bb, &ck] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .map_err(io("chmod", p))?;
        }
        let out = std::process::Command::new(&bb)
            .arg("--list")
            .output()
            .map_err(io("running", &bb))?;
        let applets = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .collect();
        Ok(Template {
            dir: dir.to_path_buf(),
            applets,
        })
    }

    /// Makes a rootfs at `root`: /bin with busybox, its applets and the checker, /etc/passwd and
    /// /etc/group with a `user` (1000) and groups `user` (1000) and `extra` (2000), a /tmp of
    /// mode 1777 and empty mount points.
    pub fn make_rootfs(&self, root: &Path) -> Result<()> {
        for d in [
            "bin",
            "etc",
            "proc",
            "sys",
            "dev",
            "tmp",
            "root",
            "home/user",
            "shared",
            "var",
        ] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io("creating", &p))?;
        }
        let tmp = root.join("tmp");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .map_err(io("chmod", &tmp))?;
        for (from, to) in [("busybox", "bin/busybox"), ("checker", "bin/checker")] {
            let src = self.dir.join(from);
            let dst = root.join(to);
            if std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst).map_err(io("copying to", &dst))?;
            }
        }
        for a in &self.applets {
            let link = root.join("bin").join(a);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", &link).map_err(io("symlinking", &link))?;
            }
        }
        let files = [
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            ),
            (
                "etc/group",
                "root:x:0:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n",
            ),
            ("etc/hostname", "rootfs\n"),
        ];
        for (f, text) in files {
            let p = root.join(f);
            std::fs::write(&p, text).map_err(io("writing", &p))?;
        }
        Ok(())
    }
}

/// The default config: close to `runc spec`, but non-interactive, a writable root, the given
/// cgroups path, and ociVersion [`OCI_VERSION`].
pub fn default_config(args: &[&str], cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps.clone(),
                "effective": caps.clone(),
                "permitted": caps.clone(),
                "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berth-conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "cgroupsPath": cgroups_path,
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory and its (not yet written) config.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (holds `config.json` and `rootfs/`).
    pub dir: PathBuf,
    /// The config that [`Bundle::write`] saves.
    pub config: Value,
    /// The cgroups path given to this bundle's container.
    pub cgroups_path: String,
}

impl Bundle {
    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// A host directory bind-mounted at `/shared` in the container (created on first use),
    /// for files that the container and the suite (or hooks) both see.
    pub fn shared(&mut self) -> Result<PathBuf> {
        let host = self.dir.join("shared");
        if !host.exists() {
            std::fs::create_dir_all(&host).map_err(io("creating", &host))?;
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777))
                .map_err(io("chmod", &host))?;
            self.add_mount(json!({
                "destination": "/shared", "type": "bind",
                "source": host.to_string_lossy(), "options": ["rbind", "rw"]
            }));
        }
        Ok(host)
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Bundle {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Runs `script` with the container's `/bin/sh -c`.
    pub fn sh(&mut self, script: &str) -> &mut Bundle {
        self.args(&["/bin/sh", "-c", script])
    }

    /// Appends a mount to `mounts`.
    pub fn add_mount(&mut self, m: Value) -> &mut Bundle {
        if let Some(list) = self.config["mounts"].as_array_mut() {
            list.push(m);
        } else {
            self.config["mounts"] = json!([m]);
        }
        self
    }

    /// Adds a namespace of `kind` (with `path` when given), replacing one of the same type.
    pub fn set_namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Bundle {
        self.remove_namespace(kind);
        let mut ns = json!({"type": kind});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        if let Some(list) = self.config["linux"]["namespaces"].as_array_mut() {
            list.push(ns);
        }
        self
    }

    /// Removes the namespace of `kind`, so the container shares the runtime's.
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Bundle {
        if let Some(list) = self.config["linux"]["namespaces"].as_array_mut() {
            list.retain(|n| n["type"] != kind);
        }
        self
    }

    /// Writes `config.json`.
    pub fn write(&self) -> Result<()> {
        let p = self.dir.join("config.json");
        let text = serde_json::to_string_pretty(&self.config)
            .map_err(|e| Error::Other(format!("serializing config: {e}")))?;
        std::fs::write(&p, text).map_err(io("writing", &p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_a_valid_shape() {
        let c = default_config(&["/bin/true"], "/p/c");
        assert_eq!(c["ociVersion"], "1.0.2");
        assert_eq!(c["process"]["args"][0], "/bin/true");
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["linux"]["cgroupsPath"], "/p/c");
        assert_eq!(c["root"]["path"], "rootfs");
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
    }

    #[test]
    fn namespace_and_mount_edits() {
        let mut b = Bundle {
            dir: PathBuf::from("/nonexistent"),
            config: default_config(&["sh"], "/x"),
            cgroups_path: "/x".into(),
        };
        b.set_namespace("network", Some("/proc/1/ns/net"))
            .remove_namespace("uts");
        let ns = b.config["linux"]["namespaces"].as_array().unwrap();
        assert_eq!(ns.len(), 4);
        assert!(ns
            .iter()
            .any(|n| n["type"] == "network" && n["path"] == "/proc/1/ns/net"));
        assert!(!ns.iter().any(|n| n["type"] == "uts"));
        b.sh("echo hi")
            .add_mount(json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs"}));
        assert_eq!(
            b.config["process"]["args"],
            json!(["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(
            b.config["mounts"].as_array().unwrap().last().unwrap()["destination"],
            "/x"
        );
    }

    #[test]
    fn checker_is_embedded_and_static() {
        assert!(CHECKER.len() > 1000);
        assert_eq!(&CHECKER[..4], b"\x7fELF");
        // A static executable has no PT_INTERP program header (type 3).
        let phoff = u64::from_le_bytes(CHECKER[0x20..0x28].try_into().unwrap()) as usize;
        let phentsize = u16::from_le_bytes(CHECKER[0x36..0x38].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes(CHECKER[0x38..0x3a].try_into().unwrap()) as usize;
        for i in 0..phnum {
            let off = phoff + i * phentsize;
            let ty = u32::from_le_bytes(CHECKER[off..off + 4].try_into().unwrap());
            assert_ne!(ty, 3, "the checker has an ELF interpreter: not static");
        }
    }
}
