//! Rootless builds: an unprivileged `berth-build` enters a user namespace of its own (its uid
//! and gid mapped to root) and a mount namespace before anything else, so overlay mounts and
//! RUN containers work there as in a rootful build. Inside it the runtime is rootless
//! ([`berth::rootless::active`]): no cgroups, devices bind-mounted. Overlay then keeps its
//! whiteout and opaque markers in `user.overlay.*` xattrs (`userxattr`), since `trusted.*`
//! needs real root. The store defaults to `$XDG_DATA_HOME/berth-build`.
//!
//! Only the caller's own ids are mapped: a RUN step may not chown to other ids (EINVAL).

use std::path::PathBuf;

/// Enters the user and mount namespaces when not root. Must run while the process is still
/// single-threaded. Returns whether it did.
pub fn enter() -> std::io::Result<bool> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if uid.is_root() {
        return Ok(false);
    }
    nix::sched::unshare(
        nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS,
    )
    .map_err(|e| std::io::Error::other(format!("rootless: create a user namespace: {e}")))?;
    let write = |f: &str, v: String| {
        std::fs::write(f, v).map_err(|e| std::io::Error::other(format!("rootless: write {f}: {e}")))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| std::io::Error::other(format!("rootless: make / private: {e}")))?;
    Ok(true)
}

/// Whether this build runs rootless (inside the namespace [`enter`] made, or any other).
pub fn active() -> bool {
    berth::rootless::active()
}

/// The name of overlay's xattr `name` (`opaque`, `whiteout`, ...) for this build's mounts.
pub fn overlay_xattr(name: &str) -> String {
    if active() {
        format!("user.overlay.{name}")
    } else {
        format!("trusted.overlay.{name}")
    }
}

/// The default store: /var/lib/berth-build for root, else `$XDG_DATA_HOME/berth-build`
/// (`~/.local/share/berth-build`).
pub fn default_store() -> PathBuf {
    if nix::unistd::geteuid().is_root() && !berth::rootless::in_user_namespace() {
        return PathBuf::from("/var/lib/berth-build");
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("berth-build");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/berth-build"),
        None => PathBuf::from(format!("/tmp/berth-build-{}", nix::unistd::getuid())),
    }
}
