//! Semantic checks on a parsed spec: everything that would otherwise fail half-way
//! through container creation is rejected up front, naming the field.

use super::{rootfs_path, Spec, SpecError};
use crate::namespaces::{self, NsKind};
use std::collections::HashSet;
use std::path::Path;

struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, path: impl Into<String>, msg: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            file: self.file.to_path_buf(),
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// Checks a spec loaded from `bundle` before anything is created on the host.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<(), SpecError> {
    let file = bundle.join("config.json");
    let cx = Ctx { file: &file };

    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(cx.err(
            "ociVersion",
            format!("unsupported version {version:?}: this runtime implements 1.x"),
        ));
    }

    let rootfs = rootfs_path(spec, bundle)
        .ok_or_else(|| cx.err("root", "required for a Linux container"))?;
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(cx.err(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ))
        }
        Err(e) => return Err(cx.err("root.path", format!("rootfs {}: {e}", rootfs.display()))),
    }

    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| cx.err("process", "required to create a container"))?;
    match process.args() {
        Some(a) if !a.is_empty() => {}
        _ => return Err(cx.err("process.args", "must name the program to run")),
    }
    unsupported(&cx, spec)?;
    if let Some(w) = crate::capabilities::unavailable(process.capabilities().as_ref()) {
        tracing::warn!("{w}");
    }
    if !process.cwd().is_absolute() {
        return Err(cx.err("process.cwd", "must be an absolute path"));
    }
    if let Some(rlimits) = process.rlimits() {
        let mut seen = HashSet::new();
        for (i, r) in rlimits.iter().enumerate() {
            if !seen.insert(format!("{:?}", r.typ())) {
                return Err(cx.err(
                    format!("process.rlimits[{i}].type"),
                    "duplicate rlimit type",
                ));
            }
            if r.soft() > r.hard() {
                return Err(cx.err(
                    format!("process.rlimits[{i}]"),
                    "soft limit is above the hard limit",
                ));
            }
        }
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(cx.err(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not of the form KEY=value"),
                ));
            }
        }
    }

    // config.md: a relative destination (deprecated) MUST be taken relative to "/" (the mount
    // plan does), so it is a warning, as runc gives one.
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                tracing::warn!(
                    "mounts[{i}].destination: {:?} is not an absolute path: taken relative to \"/\" \
                     (relative destinations are deprecated)",
                    m.destination()
                );
            }
        }
    }

    if let Some(hooks) = spec.hooks() {
        let lists = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in lists {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(cx.err(
                        format!("hooks.{name}[{i}].path"),
                        "must be an absolute path",
                    ));
                }
                if matches!(h.timeout(), Some(t) if t <= 0) {
                    return Err(cx.err(
                        format!("hooks.{name}[{i}].timeout"),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }

    let linux = spec.linux().as_ref();
    let nss = namespaces::from_spec(spec);
    let mut seen = HashSet::new();
    for (i, ns) in nss.iter().enumerate() {
        if !seen.insert(ns.kind) {
            return Err(cx.err(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace {:?}", ns.kind.name()),
            ));
        }
        if let Some(p) = &ns.path {
            if !p.exists() {
                return Err(cx.err(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} does not exist", p.display()),
                ));
            }
            if ns.kind == NsKind::Time {
                // Joining a time namespace is possible but offsets cannot be set on it.
                if linux.and_then(|l| l.time_offsets().as_ref()).is_some() {
                    return Err(cx.err(
                        "linux.timeOffsets",
                        "cannot be set when joining an existing time namespace",
                    ));
                }
            }
        }
    }
    let has = |k: NsKind| nss.iter().any(|n| n.kind == k);
    let new_ns = |k: NsKind| nss.iter().any(|n| n.kind == k && n.path.is_none());

    if let Some(linux) = linux {
        let user_new = new_ns(NsKind::User);
        if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) && !user_new {
            return Err(cx.err(
                "linux.uidMappings",
                "requires a new user namespace in linux.namespaces",
            ));
        }
        if linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()) && !user_new {
            return Err(cx.err(
                "linux.gidMappings",
                "requires a new user namespace in linux.namespaces",
            ));
        }
        if user_new && linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(cx.err(
                "linux.uidMappings",
                "a new user namespace needs uid mappings",
            ));
        }
        if user_new && linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
            return Err(cx.err(
                "linux.gidMappings",
                "a new user namespace needs gid mappings",
            ));
        }
        if let Some(seccomp) = linux.seccomp() {
            crate::seccomp::compile(seccomp).map_err(|e| match e {
                crate::seccomp::SeccompError::Invalid { path, msg } => cx.err(path, msg),
                e => cx.err("linux.seccomp", e.to_string()),
            })?;
        }
        if linux.time_offsets().is_some() && !new_ns(NsKind::Time) {
            return Err(cx.err(
                "linux.timeOffsets",
                "requires a new time namespace in linux.namespaces",
            ));
        }
        if let Some(offsets) = linux.time_offsets() {
            for clock in offsets.keys() {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(cx.err(
                        format!("linux.timeOffsets.{clock}"),
                        "only the monotonic and boottime clocks can be offset",
                    ));
                }
            }
        }
        if let Some(sysctl) = linux.sysctl() {
            let mut keys: Vec<_> = sysctl.keys().collect();
            keys.sort();
            for key in keys {
                check_sysctl(&cx, key, &has)?;
            }
        }
        if let Some(prop) = linux.rootfs_propagation() {
            if crate::rootfs::plan::propagation_flag(prop).is_none() {
                return Err(cx.err(
                    "linux.rootfsPropagation",
                    format!("unknown propagation {prop:?}: use shared, slave, private or unbindable (optionally r-prefixed)"),
                ));
            }
        }
        if let Some(devices) = linux.devices() {
            for (i, d) in devices.iter().enumerate() {
                if !d.path().is_absolute() {
                    return Err(cx.err(
                        format!("linux.devices[{i}].path"),
                        "must be an absolute path",
                    ));
                }
                use oci_spec::runtime::LinuxDeviceType as T;
                if !matches!(d.typ(), T::C | T::U | T::B | T::P) {
                    return Err(cx.err(format!("linux.devices[{i}].type"), "must be c, u, b or p"));
                }
            }
        }
    }
    // A uts namespace joined by path counts too (runc sets the hostname in it).
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(NsKind::Uts) {
        return Err(cx.err(
            "hostname",
            "setting the hostname needs a uts namespace (new or joined by path)",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(NsKind::Uts) {
        return Err(cx.err(
            "domainname",
            "setting the domain name needs a uts namespace (new or joined by path)",
        ));
    }
    // Without a mount namespace the mounts are made in the runtime's (rootfs/host.rs), as the
    // spec says a namespace that is not listed is inherited; the caller is told.
    if !has(NsKind::Mount) {
        for w in crate::rootfs::host::warnings(spec) {
            tracing::warn!("{w}");
        }
    }
    Ok(())
}

/// Properties of the spec's newer versions that berth parses but does not apply. config.md:
/// "Runtimes MUST generate an error when invalid or unsupported values are encountered", and
/// runtime.md (create): "If the runtime cannot apply a property as specified in the
/// configuration, it MUST generate an error". Silently running without them would be worse.
fn unsupported(cx: &Ctx, spec: &Spec) -> Result<(), SpecError> {
    let process = spec.process().as_ref();
    let linux = spec.linux().as_ref();
    let set = [
        (
            "process.scheduler",
            process.is_some_and(|p| p.scheduler().is_some()),
        ),
        (
            "process.ioPriority",
            process.is_some_and(|p| p.io_priority().is_some()),
        ),
        (
            "process.execCPUAffinity",
            process.is_some_and(|p| p.exec_cpu_affinity().is_some()),
        ),
        (
            "linux.personality",
            linux.is_some_and(|l| l.personality().is_some()),
        ),
        (
            "linux.intelRdt",
            linux.is_some_and(|l| l.intel_rdt().is_some()),
        ),
        (
            "linux.memoryPolicy",
            linux.is_some_and(|l| l.memory_policy().is_some()),
        ),
        (
            "linux.netDevices",
            linux.is_some_and(|l| l.net_devices().as_ref().is_some_and(|d| !d.is_empty())),
        ),
    ];
    match set.iter().find(|(_, present)| *present) {
        Some((field, _)) => Err(cx.err(
            *field,
            "not supported by this runtime: remove it (berth does not run a container without \
             a property it was asked to apply)",
        )),
        None => Ok(()),
    }
}

/// A sysctl may only be set when it is isolated by a namespace the container owns.
fn check_sysctl(cx: &Ctx, key: &str, has: &dyn Fn(NsKind) -> bool) -> Result<(), SpecError> {
    let path = format!("linux.sysctl.{key}");
    let ipc_keys = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc_keys.contains(&key) || key.starts_with("fs.mqueue.") {
        if !has(NsKind::Ipc) {
            return Err(cx.err(path, "needs an ipc namespace"));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if !has(NsKind::Net) {
            return Err(cx.err(path, "needs a network namespace"));
        }
        return Ok(());
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        if !has(NsKind::Uts) {
            return Err(cx.err(path, "needs a uts namespace"));
        }
        return Ok(());
    }
    Err(cx.err(path, "is not namespaced and cannot be set for a container"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle_with(config: serde_json::Value) -> (tempfile::TempDir, Result<(), SpecError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let spec: Spec = serde_json::from_value(config).unwrap();
        let r = validate(&spec, dir.path());
        (dir, r)
    }

    fn base() -> serde_json::Value {
        json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
        })
    }

    fn err_of(config: serde_json::Value) -> String {
        bundle_with(config).1.unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_minimal_config_and_any_1x_version() {
        assert!(bundle_with(base()).1.is_ok());
        let mut c = base();
        c["ociVersion"] = json!("1.3.0");
        assert!(bundle_with(c).1.is_ok());
    }

    #[test]
    fn rejects_version_2() {
        let mut c = base();
        c["ociVersion"] = json!("2.0.0");
        assert!(err_of(c).contains("ociVersion"));
    }

    #[test]
    fn unsupported_properties_are_errors_naming_them() {
        let mut c = base();
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        assert!(err_of(c).contains("linux.personality: not supported"));
        let mut c = base();
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        assert!(err_of(c).contains("process.ioPriority"));
        let mut c = base();
        c["linux"]["intelRdt"] = json!({"closID": "x"});
        assert!(err_of(c).contains("linux.intelRdt"));
    }

    #[test]
    fn relative_mount_destination_is_accepted() {
        let mut c = base();
        c["mounts"] = json!([{"destination": "/proc", "type": "proc"}, {"destination": "tmp", "type": "tmpfs"}]);
        assert!(bundle_with(c).1.is_ok());
    }

    #[test]
    fn missing_rootfs_names_root_path() {
        let mut c = base();
        c["root"] = json!({"path": "nope"});
        assert!(err_of(c).contains("root.path"));
    }

    #[test]
    fn empty_args_and_relative_cwd_are_rejected() {
        let mut c = base();
        c["process"]["args"] = json!([]);
        assert!(err_of(c).contains("process.args"));
        let mut c = base();
        c["process"]["cwd"] = json!("tmp");
        assert!(err_of(c).contains("process.cwd"));
    }

    #[test]
    fn duplicate_namespace_is_rejected() {
        let mut c = base();
        c["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(err_of(c).contains("linux.namespaces[1].type"));
    }

    #[test]
    fn mappings_need_a_user_namespace() {
        let mut c = base();
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        assert!(err_of(c).contains("linux.uidMappings"));
    }

    #[test]
    fn seccomp_profiles_are_checked() {
        let mut c = base();
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]});
        assert!(bundle_with(c.clone()).1.is_ok());
        c["linux"]["seccomp"]["syscalls"][0]["action"] = json!("SCMP_ACT_NOTIFY");
        let e = err_of(c.clone());
        assert!(e.contains("linux.seccomp.listenerPath"), "{e}");
        c["linux"]["seccomp"]["listenerPath"] = json!("/run/agent.sock");
        assert!(bundle_with(c).1.is_ok());
    }

    #[test]
    fn sysctl_must_be_namespaced() {
        let mut c = base();
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        assert!(err_of(c).contains("network namespace"));
        let mut c = base();
        c["linux"]["sysctl"] = json!({"vm.swappiness": "1"});
        assert!(err_of(c).contains("not namespaced"));
        let mut c = base();
        c["linux"]["namespaces"] = json!([{"type": "ipc"}]);
        c["linux"]["sysctl"] = json!({"kernel.shmmax": "100000"});
        assert!(bundle_with(c).1.is_ok());
    }

    #[test]
    fn hostname_needs_uts() {
        let mut c = base();
        c["hostname"] = json!("box");
        c["linux"]["namespaces"] = json!([{"type": "pid"}]);
        assert!(err_of(c).contains("hostname"));
    }

    #[test]
    fn hook_paths_must_be_absolute() {
        let mut c = base();
        c["hooks"] = json!({"poststop": [{"path": "bin/true"}]});
        assert!(err_of(c).contains("hooks.poststop[0].path"));
    }

    #[test]
    fn soft_rlimit_above_hard_is_rejected() {
        let mut c = base();
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
        assert!(err_of(c).contains("process.rlimits[0]"));
    }
}
