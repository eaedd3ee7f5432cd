//! Rootless builds: an unprivileged `berth-build` enters a user namespace of its own (its uid
//! and gid mapped to root) and a mount namespace before anything else, so overlay mounts and
//! RUN containers work there as in a rootful build. Inside it the runtime is rootless
//! ([`berth::rootless::active`]): no cgroups, devices bind-mounted. Overlay then keeps its
//! whiteout and opaque markers in `user.overlay.*` xattrs (`userxattr`), since `trusted.*`
//! needs real root. The store defaults to `$XDG_DATA_HOME/berth-build`.
//!
//! With ranges for the caller in /etc/subuid and /etc/subgid (and newuidmap/newgidmap
//! installed), ids 1.. are those ranges, so RUN steps may chown; without them only the
//! caller's own ids exist and a chown to another id fails (EINVAL).

use std::path::PathBuf;

/// Enters the user and mount namespaces when not root. Must run while the process is still
/// single-threaded. Returns whether it did.
pub fn enter() -> std::io::Result<bool> {
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if uid.is_root() {
        return Ok(false);
    }
    let ranges = sub_ranges(uid.as_raw(), gid.as_raw());
    // newuidmap must run outside the new namespace: fork the helper first, let it go once
    // this process has unshared.
    let helper = match ranges {
        Some((u, g)) => Some(spawn_mapper(uid.as_raw(), gid.as_raw(), u, g)?),
        None => None,
    };
    let unshared = nix::sched::unshare(
        nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS,
    )
    .map_err(|e| std::io::Error::other(format!("rootless: create a user namespace: {e}")));
    if let Some((pid, go)) = helper {
        let _ = nix::unistd::write(&go, if unshared.is_ok() { b"g" } else { b"x" });
        drop(go);
        let ok = matches!(
            nix::sys::wait::waitpid(pid, None),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
        );
        unshared?;
        if !ok {
            return Err(std::io::Error::other(
                "rootless: newuidmap/newgidmap could not map the ranges of /etc/subuid and /etc/subgid",
            ));
        }
    } else {
        unshared?;
        let write = |f: &str, v: String| {
            std::fs::write(f, v)
                .map_err(|e| std::io::Error::other(format!("rootless: write {f}: {e}")))
        };
        write("/proc/self/setgroups", "deny".into())?;
        write("/proc/self/uid_map", format!("0 {uid} 1"))?;
        write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    }
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

/// The caller's first subordinate uid and gid ranges (start, count), when both exist and the
/// setuid helpers are installed.
fn sub_ranges(uid: u32, gid: u32) -> Option<((u32, u32), (u32, u32))> {
    if !std::path::Path::new("/usr/bin/newuidmap").exists()
        || !std::path::Path::new("/usr/bin/newgidmap").exists()
    {
        return None;
    }
    // Names from /etc/passwd and /etc/group directly: the binary is static (.cargo/config.toml),
    // and glibc's NSS modules (libnss_systemd, ...) cannot be loaded into a static program.
    // The setuid helpers accept subordinate ranges listed by id too.
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let (passwd, groups) = (read("/etc/passwd"), read("/etc/group"));
    let user = crate::user::user_name(&passwd, uid).map(str::to_string);
    let group = crate::user::group_name(&groups, gid).map(str::to_string);
    let find = |file: &str, name: Option<&str>, id: u32| -> Option<(u32, u32)> {
        let text = std::fs::read_to_string(file).ok()?;
        parse_sub(&text, name.unwrap_or(""), id)
    };
    let u = find("/etc/subuid", user.as_deref(), uid)?;
    let g = find("/etc/subgid", group.as_deref().or(user.as_deref()), gid)
        .or_else(|| find("/etc/subgid", user.as_deref(), gid))?;
    Some((u, g))
}

/// The first `name:start:count` (or `id:start:count`) line for the user.
fn parse_sub(text: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if (name.is_empty() || who != name) && who != id.to_string() {
            return None;
        }
        Some((start.parse().ok()?, count.parse().ok()?)).filter(|(_, c)| *c > 0)
    })
}

/// Forks the helper that, once this process has unshared its user namespace (a byte on the
/// returned pipe), maps 0 to the caller and 1.. to the subordinate ranges with
/// newuidmap/newgidmap.
fn spawn_mapper(
    uid: u32,
    gid: u32,
    (us, uc): (u32, u32),
    (gs, gc): (u32, u32),
) -> std::io::Result<(nix::unistd::Pid, std::os::fd::OwnedFd)> {
    let (r, w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let me = std::process::id().to_string();
    // SAFETY: called from main before any thread exists; the child only reads, runs the two
    // helpers and exits.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok((child, w)),
        nix::unistd::ForkResult::Child => {
            drop(w);
            let mut b = [0u8; 1];
            let go = matches!(nix::unistd::read(&r, &mut b), Ok(1)) && b[0] == b'g';
            let run = |tool: &str, id: u32, start: u32, count: u32| {
                let args = [
                    me.clone(),
                    "0".into(),
                    id.to_string(),
                    "1".into(),
                    "1".into(),
                    start.to_string(),
                    count.to_string(),
                ];
                std::process::Command::new(tool)
                    .args(args)
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            };
            let ok = go
                && run("/usr/bin/newuidmap", uid, us, uc)
                && run("/usr/bin/newgidmap", gid, gs, gc);
            // SAFETY: _exit in the forked child, skipping the parent's atexit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
    }
}

/// The extents of this process's id map (`file`: /proc/self/uid_map or gid_map) as identity
/// mappings `(inside, inside, count)`: a child namespace maps every id the builder has, one
/// extent per extent of its own (the kernel maps a child extent through a single parent one).
pub fn identity_extents(file: &str) -> Vec<(u64, u64, u64)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    parse_extents(&text)
}

fn parse_extents(text: &str) -> Vec<(u64, u64, u64)> {
    let v: Vec<(u64, u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3 && f[2] > 0).then(|| (f[0], f[0], f[2]))
        })
        .collect();
    if v.is_empty() {
        vec![(0, 0, 1)]
    } else {
        v
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_id() {
        let t = "other:1:2\nbob:100000:65536\n1001:200000:10\nzero:5:0\n";
        assert_eq!(parse_sub(t, "bob", 1000), Some((100000, 65536)));
        assert_eq!(parse_sub(t, "carol", 1001), Some((200000, 10)));
        assert_eq!(parse_sub(t, "zero", 7), None);
        assert_eq!(parse_sub(t, "nobody", 9), None);
        assert_eq!(parse_sub(t, "", 1001), Some((200000, 10)));
        assert_eq!(parse_sub("::1:2\n", "", 5), None);
    }

    #[test]
    fn child_maps_follow_the_extents() {
        let m = "         0      47013          1\n         1     165536      65536\n";
        assert_eq!(parse_extents(m), vec![(0, 0, 1), (1, 1, 65536)]);
        assert_eq!(parse_extents(""), vec![(0, 0, 1)]);
    }
}
