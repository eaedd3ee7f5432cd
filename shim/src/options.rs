//! containerd's runtime options for a task (CreateTaskRequest.options), as the runc shim takes
//! them: `containerd.runc.v1.Options` directly, or the CRI's and ctr's
//! `runtimeoptions.v1.Options`, whose ConfigPath (or ConfigBody) holds the same options as
//! TOML keys with the Go field names (`SystemdCgroup = true`, `Root = "/run/x"`, ...). For a
//! runtime type other than runc's, containerd's CRI plugin decodes
//! `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.NAME.options]` into the latter, and
//! `ctr run --runtime-config-path FILE` sends it.
//!
//! Honoured: Root (the berth state root; the namespace is appended, as the runc shim does),
//! SystemdCgroup (berth's systemd cgroup driver), NoPivotRoot, NoNewKeyring, IoUid/IoGid (owner
//! of the stdio pipes and fifos the process gets). Ignored, with the reason: BinaryName (no
//! runtime binary is run: the shim is the runtime), CriuPath/CriuImagePath/CriuWorkPath
//! (checkpoints are refused), ShimCgroup (one shim serves a whole group; placing the shim is
//! left to whoever places containerd), TaskApiAddress/TaskApiVersion (containerd 2.x sandbox
//! API, not served).

use crate::proto::Any;
use prost::Message;
use std::path::{Path, PathBuf};

/// containerd.runc.v1.Options.
#[derive(Clone, PartialEq, Message)]
pub struct RuncOptions {
    /// NoPivotRoot.
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    /// NoNewKeyring.
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    /// ShimCgroup (ignored).
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    /// IoUid.
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    /// IoGid.
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    /// BinaryName (ignored).
    #[prost(string, tag = "6")]
    pub binary_name: String,
    /// Root.
    #[prost(string, tag = "7")]
    pub root: String,
    /// CriuPath (ignored).
    #[prost(string, tag = "8")]
    pub criu_path: String,
    /// SystemdCgroup.
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
    /// CriuImagePath (ignored).
    #[prost(string, tag = "10")]
    pub criu_image_path: String,
    /// CriuWorkPath (ignored).
    #[prost(string, tag = "11")]
    pub criu_work_path: String,
    /// TaskApiAddress (ignored).
    #[prost(string, tag = "12")]
    pub task_api_address: String,
    /// TaskApiVersion (ignored).
    #[prost(uint32, tag = "13")]
    pub task_api_version: u32,
}

/// runtimeoptions.v1.Options (the CRI's options for runtimes other than runc).
#[derive(Clone, PartialEq, Message)]
pub struct ConfigOptions {
    /// TypeUrl (unused).
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// ConfigPath: a TOML file with runc option names.
    #[prost(string, tag = "2")]
    pub config_path: String,
    /// ConfigBody: the same TOML inline (containerd 1.7+).
    #[prost(bytes = "vec", tag = "3")]
    pub config_body: Vec<u8>,
}

/// What the shim does with a task's options.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TaskOptions {
    /// State root base (the namespace is appended), if not the default.
    pub root: Option<PathBuf>,
    /// Use the systemd cgroup driver.
    pub systemd_cgroup: bool,
    /// Do not pivot_root (move the rootfs onto / and chroot).
    pub no_pivot_root: bool,
    /// Do not create a session keyring.
    pub no_new_keyring: bool,
    /// Owner of the process's stdio pipes and fifos.
    pub io_uid: u32,
    /// Group of the process's stdio pipes and fifos.
    pub io_gid: u32,
}

/// Decodes CreateTaskRequest.options (None or an empty Any: defaults).
pub fn decode(any: Option<&Any>) -> Result<TaskOptions, String> {
    let Some(any) = any.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
        return Ok(TaskOptions::default());
    };
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name.ends_with("containerd.runc.v1.Options") {
        let o = RuncOptions::decode(any.value.as_slice())
            .map_err(|e| format!("runtime options ({name}): {e}"))?;
        return Ok(from_runc(&o));
    }
    if name.ends_with("runtimeoptions.v1.Options") {
        let o = ConfigOptions::decode(any.value.as_slice())
            .map_err(|e| format!("runtime options ({name}): {e}"))?;
        if !o.config_body.is_empty() {
            let text = String::from_utf8_lossy(&o.config_body);
            return parse_toml(&text, "runtime options ConfigBody").map(|o| from_runc(&o));
        }
        if o.config_path.is_empty() {
            return Ok(TaskOptions::default());
        }
        let path = Path::new(&o.config_path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("runtime options ConfigPath {}: {e}", path.display()))?;
        return parse_toml(&text, &path.display().to_string()).map(|o| from_runc(&o));
    }
    Err(format!(
        "runtime options of type {:?} are not understood by berth's shim (containerd.runc.v1.Options and runtimeoptions.v1.Options are)",
        any.type_url
    ))
}

fn from_runc(o: &RuncOptions) -> TaskOptions {
    if !o.binary_name.is_empty() {
        tracing::warn!(
            "runtime option BinaryName {:?} ignored: berth's shim runs containers in-process",
            o.binary_name
        );
    }
    TaskOptions {
        root: (!o.root.is_empty()).then(|| PathBuf::from(&o.root)),
        systemd_cgroup: o.systemd_cgroup,
        no_pivot_root: o.no_pivot_root,
        no_new_keyring: o.no_new_keyring,
        io_uid: o.io_uid,
        io_gid: o.io_gid,
    }
}

/// Reads runc's options from TOML `Key = value` lines (the Go field names; a `[section]` line
/// or comments are skipped; unknown keys are errors naming the line).
pub fn parse_toml(text: &str, source: &str) -> Result<RuncOptions, String> {
    let mut o = RuncOptions::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let at = || format!("{source}:{}", n + 1);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{}: expected `Key = value`, found {line:?}", at()))?;
        let (key, value) = (key.trim(), value.trim());
        let value = match value.find(" #") {
            Some(i) if !value.starts_with('"') => value[..i].trim(),
            _ => value,
        };
        let string = || -> Result<String, String> {
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_string)
                .ok_or_else(|| format!("{}: {key} needs a quoted string, found {value}", at()))
        };
        let boolean = || -> Result<bool, String> {
            match value {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!(
                    "{}: {key} needs true or false, found {value}",
                    at()
                )),
            }
        };
        let number = || -> Result<u32, String> {
            value
                .parse()
                .map_err(|_| format!("{}: {key} needs a number, found {value}", at()))
        };
        match key {
            "NoPivotRoot" => o.no_pivot_root = boolean()?,
            "NoNewKeyring" => o.no_new_keyring = boolean()?,
            "ShimCgroup" => o.shim_cgroup = string()?,
            "IoUid" => o.io_uid = number()?,
            "IoGid" => o.io_gid = number()?,
            "BinaryName" => o.binary_name = string()?,
            "Root" => o.root = string()?,
            "CriuPath" => o.criu_path = string()?,
            "SystemdCgroup" => o.systemd_cgroup = boolean()?,
            "CriuImagePath" => o.criu_image_path = string()?,
            "CriuWorkPath" => o.criu_work_path = string()?,
            "TaskAPIAddress" => o.task_api_address = string()?,
            "TaskAPIVersion" => o.task_api_version = number()?,
            other => return Err(format!("{}: unknown runtime option {other:?}", at())),
        }
    }
    Ok(o)
}

/// The state root for a namespace: `base/namespace` (the default base is
/// /run/containerd/berth).
pub fn state_root(base: Option<&Path>, namespace: &str) -> PathBuf {
    base.unwrap_or(Path::new("/run/containerd/berth"))
        .join(if namespace.is_empty() {
            "default"
        } else {
            namespace
        })
}

/// The file in a bundle that records a non-default state root, for `delete` after a dead shim.
pub const ROOT_FILE: &str = "berth-root";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_options_decode() {
        let o = RuncOptions {
            systemd_cgroup: true,
            root: "/run/alt".into(),
            io_uid: 1000,
            io_gid: 100,
            no_pivot_root: true,
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: o.encode_to_vec(),
        };
        let t = decode(Some(&any)).unwrap();
        assert_eq!(t.root.as_deref(), Some(Path::new("/run/alt")));
        assert!(t.systemd_cgroup && t.no_pivot_root && !t.no_new_keyring);
        assert_eq!((t.io_uid, t.io_gid), (1000, 100));
        assert_eq!(decode(None).unwrap(), TaskOptions::default());
        let bad = Any {
            type_url: "example.com/Other".into(),
            value: vec![1],
        };
        assert!(decode(Some(&bad))
            .unwrap_err()
            .contains("example.com/Other"));
    }

    #[test]
    fn toml_options_parse_with_errors_naming_the_line() {
        let o = parse_toml(
            "# berth\n[options]\nSystemdCgroup = true\nRoot = \"/x\" \nIoUid = 7 # uid\nNoNewKeyring = false\n",
            "f.toml",
        )
        .unwrap();
        assert!(o.systemd_cgroup && !o.no_new_keyring);
        assert_eq!((o.root.as_str(), o.io_uid), ("/x", 7));
        let e = parse_toml("Root = /x\n", "f.toml").unwrap_err();
        assert!(e.starts_with("f.toml:1: Root needs a quoted string"), "{e}");
        let e = parse_toml("\nBogus = 1\n", "f.toml").unwrap_err();
        assert_eq!(e, "f.toml:2: unknown runtime option \"Bogus\"");
        let e = parse_toml("SystemdCgroup = yes", "f.toml").unwrap_err();
        assert!(e.contains("needs true or false"), "{e}");
        let body = ConfigOptions {
            config_body: b"NoPivotRoot = true\n".to_vec(),
            ..Default::default()
        };
        let any = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: body.encode_to_vec(),
        };
        assert!(decode(Some(&any)).unwrap().no_pivot_root);
    }
}
