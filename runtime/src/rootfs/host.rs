//! A container without a mount namespace of its own: its mounts are made in the runtime's mount
//! namespace, as the runtime-spec says ("If a namespace type is not specified in the namespaces
//! array, the container MUST inherit the runtime namespace of that type", config-linux.md) and
//! as runc does. berth makes them below a recursive bind of the rootfs onto itself, made
//! private so nothing propagates out of it, and on delete detaches that one bind, which takes
//! every mount of the container with it (runc leaves them in the host's mount table). The
//! host's own propagation is never changed (runc makes the host's `/` private).

use super::RootfsError;
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::OwnedFd;
use std::path::Path;

/// Whether a container whose spec is `spec` and that has no mount namespace needs mounts in the
/// runtime's namespace: configured mounts, masked or read-only paths, or a read-only root.
/// Without any, the container is only chrooted and nothing is mounted.
pub fn needed(spec: &Spec) -> bool {
    let linux = spec.linux().as_ref();
    let nonempty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    spec.mounts().as_ref().is_some_and(|m| !m.is_empty())
        || nonempty(linux.and_then(|l| l.masked_paths().as_ref()))
        || nonempty(linux.and_then(|l| l.readonly_paths().as_ref()))
        || spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
}

/// The warnings for a container without a mount namespace (pure: from the spec alone).
pub fn warnings(spec: &Spec) -> Vec<String> {
    let mut out = Vec::new();
    if needed(spec) {
        out.push(
            "the container has no mount namespace (linux.namespaces has no \"mount\"): its mounts \
             are made in the runtime's mount namespace, below root.path, and removed on delete"
                .to_string(),
        );
    }
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_ref())
        .is_some()
    {
        out.push(
            "linux.rootfsPropagation is ignored: the container has no mount namespace and berth \
             does not change the propagation of the runtime's mount namespace"
                .to_string(),
        );
    }
    out
}

/// In the container's init, before the mounts: binds `rootfs` onto itself (recursively, so
/// mounts already below it stay visible) and makes that bind and everything below it private,
/// then opens it for the mount plan.
pub fn prepare(rootfs: &Path) -> Result<OwnedFd, RootfsError> {
    super::apply::bind_rootfs(rootfs)?;
    mount(
        None::<&str>,
        rootfs,
        None::<&str>,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        RootfsError::sys(
            format!("make private the rootfs bind {}", rootfs.display()),
            std::io::Error::from_raw_os_error(e as i32),
        )
    })?;
    super::apply::open_rootfs(rootfs)
}

/// The id of the topmost mount at `path` (statx STATX_MNT_ID), `None` if it cannot be read.
pub fn mount_id(path: &Path) -> Option<u64> {
    const STATX_MNT_ID: u32 = 0x1000;
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statx fills the zeroed struct it is given; `c` is a valid C string.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the duration of the call.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            STATX_MNT_ID,
            &mut st,
        )
    };
    (rc == 0 && st.stx_mask & STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

/// After the init reported ready: the id of the bind it made at `rootfs`, when the topmost
/// mount there is no longer the one seen before the fork (`before`).
pub fn made(rootfs: &Path, before: Option<u64>) -> Option<u64> {
    let now = mount_id(rootfs)?;
    (Some(now) != before).then_some(now)
}

/// Removes the container's mounts: detaches the rootfs bind `id` with everything below it, if it
/// is still the topmost mount at `rootfs` (something mounted over it later is left alone, and so
/// is the bind then, with a message saying so).
pub fn remove(rootfs: &Path, id: u64) -> Result<(), String> {
    match mount_id(rootfs) {
        Some(now) if now == id => nix::mount::umount2(rootfs, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| {
                format!(
                    "unmount the container's mounts at {}: {e}",
                    rootfs.display()
                )
            }),
        Some(_) => Err(format!(
            "the container's mounts at {} are covered by another mount: left in place",
            rootfs.display()
        )),
        // The rootfs is gone (its bundle was removed): so are its mounts.
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_configs_with_mounts_need_the_host_namespace() {
        assert!(!needed(&spec(json!({"ociVersion": "1.0.0"}))));
        assert!(!needed(&spec(json!({"ociVersion": "1.0.0", "mounts": []}))));
        let m = spec(json!({"ociVersion": "1.0.0",
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}));
        assert!(needed(&m));
        assert_eq!(warnings(&m).len(), 1);
        assert!(needed(&spec(
            json!({"ociVersion": "1.0.0", "linux": {"maskedPaths": ["/proc/kcore"]}})
        )));
        assert!(needed(&spec(
            json!({"ociVersion": "1.0.0", "root": {"path": "r", "readonly": true}})
        )));
        let p = spec(json!({"ociVersion": "1.0.0", "linux": {"rootfsPropagation": "shared"}}));
        let w = warnings(&p);
        assert!(w.len() == 1 && w[0].contains("rootfsPropagation"), "{w:?}");
    }

    #[test]
    fn mount_id_of_root_is_readable() {
        assert!(mount_id(Path::new("/")).is_some());
        assert!(mount_id(Path::new("/nonexistent-berth-path")).is_none());
        assert_eq!(made(Path::new("/"), mount_id(Path::new("/"))), None);
    }
}
