//! Idmapped bind mounts: a user namespace carrying the mount's mappings is made by a short-lived
//! child (created, mapped by the parent, its namespace opened, then killed), and the detached
//! copy of the source is attached through it with mount_setattr(MOUNT_ATTR_IDMAP). Done by
//! `create` before the container exists, so it needs no access from inside the container.

use super::plan::IdMap;
use super::RootfsError;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

fn map_text(m: &[(u32, u32, u32)]) -> String {
    m.iter().map(|(c, h, n)| format!("{c} {h} {n}\n")).collect()
}

/// A user namespace with `map`'s mappings, as an open /proc/PID/ns/user descriptor.
pub fn userns_with(map: &IdMap) -> std::io::Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    // SAFETY: the CLI is single-threaded here; the child only unshares, writes one byte and
    // sleeps until it is killed (no allocation, no locks).
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            // SAFETY: unshare/write/pause/_exit are async-signal-safe.
            unsafe {
                let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
                let b: u8 = if ok { 1 } else { 0 };
                libc::write(
                    ready_w.as_raw_fd(),
                    &b as *const u8 as *const libc::c_void,
                    1,
                );
                loop {
                    libc::pause();
                }
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            let result = (|| {
                let mut b = [0u8; 1];
                let n = nix::unistd::read(&ready_r, &mut b).map_err(std::io::Error::from)?;
                if n != 1 || b[0] != 1 {
                    return Err(std::io::Error::other(
                        "the helper could not create a user namespace",
                    ));
                }
                let pid = child.as_raw();
                std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&map.uid))?;
                std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&map.gid))?;
                let f = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
                Ok(OwnedFd::from(f))
            })();
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

/// A detached, idmapped copy of `source` for mount `index`, ready to be attached by the init.
pub fn idmapped_tree(index: usize, source: &Path, map: &IdMap) -> Result<OwnedFd, RootfsError> {
    let field = format!("mounts[{index}]");
    let tree =
        crate::sys::open_tree_clone(source, map.recursive).map_err(|e| RootfsError::Plan {
            field: format!("{field}.source"),
            msg: format!("{}: {e}", source.display()),
        })?;
    let userns = userns_with(map).map_err(|e| {
        RootfsError::sys(format!("{field}: user namespace for the idmapped mount"), e)
    })?;
    crate::sys::mount_setattr_idmap(tree.as_raw_fd(), map.recursive, userns.as_raw_fd()).map_err(
        |e| {
            RootfsError::sys(
                format!(
                    "{field}: idmap {} (does its filesystem support idmapped mounts?)",
                    source.display()
                ),
                e,
            )
        },
    )?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_written_one_per_line() {
        assert_eq!(
            map_text(&[(0, 100000, 65536), (65536, 1000, 1)]),
            "0 100000 65536\n65536 1000 1\n"
        );
    }
}
