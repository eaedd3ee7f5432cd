//! Resolving paths inside the container's root without ever leaving it: every lookup goes
//! through openat2(RESOLVE_IN_ROOT), so symlinks and `..` in the rootfs cannot redirect a
//! mount target, device node or directory outside (runc CVE-2021-30465 class).

use crate::sys::{openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What to create at the end of a path when it does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// A directory (mode 0755).
    Dir,
    /// An empty regular file (mode 0644), e.g. for a bind mount of a file.
    File,
}

/// Opens `rel` inside the root directory `root` as an O_PATH descriptor.
/// `no_symlinks` refuses any symlink on the way (used for /proc and /sys targets).
pub fn open_in_root(root: &OwnedFd, rel: &Path, no_symlinks: bool) -> io::Result<OwnedFd> {
    let mut resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    if no_symlinks {
        resolve |= RESOLVE_NO_SYMLINKS;
    }
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(root.as_raw_fd(), rel, libc::O_PATH, 0, resolve)
}

/// Opens `rel` inside `root`, creating missing directories on the way and the leaf as `leaf`.
/// Each missing component is created relative to its already-resolved parent descriptor,
/// so a symlink planted in the rootfs can only ever point back inside it.
pub fn create_in_root(
    root: &OwnedFd,
    rel: &Path,
    leaf: Leaf,
    no_symlinks: bool,
) -> io::Result<OwnedFd> {
    create_depth(root, rel, leaf, no_symlinks, 0)
}

fn create_depth(
    root: &OwnedFd,
    rel: &Path,
    leaf: Leaf,
    no_symlinks: bool,
    depth: u32,
) -> io::Result<OwnedFd> {
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    match open_in_root(root, rel, no_symlinks) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut prefix = PathBuf::new();
    let mut parent = open_in_root(root, Path::new("."), no_symlinks)?;
    for (i, name) in comps.iter().enumerate() {
        prefix.push(name);
        let last = i + 1 == comps.len();
        match open_in_root(root, &prefix, no_symlinks) {
            Ok(fd) => {
                parent = fd;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let cname = std::ffi::CString::new(name.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        if last && leaf == Leaf::File {
            // SAFETY: valid dirfd and NUL-terminated name; O_NOFOLLOW|O_EXCL never follows a link.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    cname.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            } else {
                // SAFETY: fd was just returned by openat and is closed exactly once here.
                unsafe { libc::close(fd) };
            }
        } else {
            // SAFETY: valid dirfd and NUL-terminated name.
            if unsafe { libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o755) } < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
        }
        match open_in_root(root, &prefix, no_symlinks) {
            Ok(fd) => parent = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // A dangling symlink: create what it points to, resolved inside the root.
                let target = nix::fcntl::readlinkat(&parent, *name).map_err(io::Error::from)?;
                let target = Path::new(&target);
                let base = if target.is_absolute() {
                    PathBuf::new()
                } else {
                    prefix.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                let mut redirected =
                    super::plan::clean_dest(&Path::new("/").join(base).join(target));
                for rest in &comps[i + 1..] {
                    redirected.push(rest);
                }
                return create_depth(root, &redirected, leaf, no_symlinks, depth + 1);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(parent)
}

/// Whether an O_PATH descriptor refers to a directory.
pub fn is_dir(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(p: &Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn absolute_symlink_stays_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        // A link that points at the host's copy of "outside" must resolve to root/<that path>.
        symlink(&outside, root.join("evil")).unwrap();
        let fd = create_in_root(&root_fd(&root), Path::new("evil/mnt"), Leaf::Dir, false).unwrap();
        let got = real(&fd);
        assert!(got.starts_with(&root), "{got:?} escaped {root:?}");
        assert!(!outside.join("mnt").exists());
    }

    #[test]
    fn dotdot_symlink_stays_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        let fd =
            create_in_root(&root_fd(&root), Path::new("up/etc/file"), Leaf::File, false).unwrap();
        assert!(real(&fd).starts_with(&root));
        assert!(root.join("etc/file").is_file());
    }

    #[test]
    fn no_symlinks_mode_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        symlink("real", dir.path().join("proc")).unwrap();
        let e = open_in_root(&root_fd(dir.path()), Path::new("proc"), true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn existing_file_and_dir_are_opened() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        let fd = create_in_root(&root_fd(dir.path()), Path::new("a/b"), Leaf::Dir, false).unwrap();
        assert!(is_dir(&fd));
    }
}
