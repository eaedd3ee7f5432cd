//! Small file-system helpers that work relative to directory file
//! descriptors, so that nothing is ever resolved through a symlink that
//! points out of the tree being written (see the Security section of
//! ARCHITECTURE.md). Only this module uses `unsafe` (xattr and ioctl
//! wrappers).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// How a multi-component path is resolved below a root directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// No symlinks may be crossed at all (a layer directory).
    NoSymlinks,
    /// Symlinks are followed but can never leave the root: `/` and `..`
    /// stop at the root (a root filesystem).
    InRoot,
}

pub(crate) fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Opens `dir` as a directory (O_PATH is not used: the fd is used for
/// `*at` calls and reading).
pub(crate) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_io)
}

/// Opens the directory at `rel` below `root` with the given resolution.
/// An empty `rel` opens the root itself.
pub(crate) fn open_dir_at(root: BorrowedFd<'_>, rel: &str, how: Resolve) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    let resolve = match how {
        Resolve::NoSymlinks => ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH,
        Resolve::InRoot => ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    };
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(resolve);
    openat2(root, rel, how).map_err(errno_io)
}

/// Opens (creating with mode 0755 and owner root where missing) the
/// directory made of `parts` below `root`. Returns the directory fd.
/// With [`Resolve::NoSymlinks`], an existing symlink among `parts` is an
/// error (ELOOP); with [`Resolve::InRoot`] it is followed inside the root.
/// A dangling symlink among `parts` is an error (ENOENT); see [`ensure_dir_following`].
pub(crate) fn ensure_dir(
    root: BorrowedFd<'_>,
    parts: &[&str],
    how: Resolve,
) -> io::Result<OwnedFd> {
    ensure_dir_depth(root, parts, how, None)
}

/// [`ensure_dir`] that also follows a symlink whose target is missing (`WORKDIR /link/sub`
/// with `/link -> /elsewhere`), as Docker does for WORKDIR: the target is created, inside the
/// root ([`Resolve::InRoot`] only).
pub(crate) fn ensure_dir_following(
    root: BorrowedFd<'_>,
    parts: &[&str],
    how: Resolve,
) -> io::Result<OwnedFd> {
    ensure_dir_depth(root, parts, how, Some(0))
}

/// Symlinks followed by one [`ensure_dir`] at most (the kernel's SYMLOOP_MAX).
const MAX_LINKS: usize = 40;

/// `links`: symlinks followed so far, None when dangling ones are not followed.
fn ensure_dir_depth(
    root: BorrowedFd<'_>,
    parts: &[&str],
    how: Resolve,
    links: Option<usize>,
) -> io::Result<OwnedFd> {
    let mut prefix = String::new();
    let mut cur = open_dir_at(root, "", how)?;
    for (i, part) in parts.iter().enumerate() {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        cur = match open_dir_at(root, &prefix, how) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match mkdirat(cur.as_fd(), *part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) if how == Resolve::InRoot && links.is_some() => {
                        // A dangling symlink: go on from its target, resolved in the root.
                        if let Some(target) = dangling_target(root, cur.as_fd(), part)? {
                            let n = links.unwrap_or(0);
                            if n >= MAX_LINKS {
                                return Err(errno_io(Errno::ELOOP));
                            }
                            let mut rest: Vec<&str> = target.iter().map(String::as_str).collect();
                            rest.extend_from_slice(&parts[i + 1..]);
                            return ensure_dir_depth(root, &rest, how, Some(n + 1));
                        }
                    }
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno_io(e)),
                }
                open_dir_at(root, &prefix, how)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// When `name` in `dir` is a symlink, its target as components from the root: an absolute
/// target starts at the root, a relative one at `dir`'s own place in the root; `..` never
/// climbs above the root.
fn dangling_target(
    root: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &str,
) -> io::Result<Option<Vec<String>>> {
    match lstat_at(dir, name)? {
        Some(st) if file_type(&st) == SFlag::S_IFLNK => {}
        _ => return Ok(None),
    }
    let target = nix::fcntl::readlinkat(dir, name).map_err(errno_io)?;
    let target = target.to_string_lossy().into_owned();
    let fd_path =
        |fd: BorrowedFd<'_>| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let (root_path, dir_path) = (fd_path(root)?, fd_path(dir)?);
    let base = dir_path
        .strip_prefix(&root_path)
        .map_err(|_| errno_io(Errno::EXDEV))?;
    let mut out: Vec<String> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(Some(out))
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<FileStat>> {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(errno_io(e)),
    }
}

/// The file type bits of a stat result.
pub(crate) fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

/// Removes `name` in `dir` and, for a directory, everything below it,
/// never following symlinks. A missing entry is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if file_type(&st) == SFlag::S_IFDIR {
        let sub = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_io)?;
        for child in read_dir_names(sub.as_fd())? {
            remove_all_at(sub.as_fd(), &child)?;
        }
        nix::unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(errno_io)
    } else {
        nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(errno_io)
    }
}

/// The names in directory `dir` (without `.` and `..`), sorted bytewise.
/// Names that are not UTF-8 are an error (they cannot be named in an
/// image's tar headers portably).
pub(crate) fn read_dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<String>> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_io)?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(errno_io)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(errno_io)?;
        let bytes = entry.file_name().to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let name = std::str::from_utf8(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "file name {:?} is not UTF-8",
                    String::from_utf8_lossy(bytes)
                ),
            )
        })?;
        names.push(name.to_string());
    }
    names.sort();
    Ok(names)
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn proc_fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The extended attributes of `name` in `dir` (not following a symlink),
/// sorted by name.
pub(crate) fn list_xattrs(dir: BorrowedFd<'_>, name: &str) -> io::Result<Vec<(String, Vec<u8>)>> {
    // The *at forms of the xattr calls are recent; use the fd path of the
    // parent, which is fine because `name` is a single component.
    let path = cstr(&format!("{}/{}", proc_fd_path(dir), name))?;
    let mut buf = vec![0u8; 1024];
    let len = loop {
        // SAFETY: `path` is NUL-terminated and `buf` is writable for its length.
        let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    };
    let mut out = Vec::new();
    for raw in buf[..len].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let key = String::from_utf8_lossy(raw).into_owned();
        if let Some(v) = get_xattr(&path, &key)? {
            out.push((key, v));
        }
    }
    out.sort();
    Ok(out)
}

fn get_xattr(path: &CString, key: &str) -> io::Result<Option<Vec<u8>>> {
    let ckey = cstr(key)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: both strings are NUL-terminated; `buf` is writable for its length.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                ckey.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENODATA) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Sets owner (as root only), mode (when given) and mtime of the open file
/// `fd`, skipping the owner and mode calls when they already match. Through
/// the descriptor, not a name: on an overlay mount every name-based call is
/// one more lookup through the layers.
pub(crate) fn set_meta_fd(
    fd: BorrowedFd<'_>,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    mtime: i64,
) -> io::Result<()> {
    use nix::sys::stat::{fchmod, fstat, futimens};
    use nix::sys::time::TimeSpec;
    let st = fstat(fd).map_err(errno_io)?;
    let mut chowned = false;
    if (st.st_uid != uid || st.st_gid != gid) && nix::unistd::geteuid().is_root() {
        nix::unistd::fchown(
            fd,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(errno_io)?;
        chowned = true;
    }
    if let Some(mode) = mode {
        // A chown may have cleared set-id bits: set the mode again after one.
        if chowned || st.st_mode & 0o7777 != mode & 0o7777 {
            fchmod(fd, Mode::from_bits_truncate(mode & 0o7777)).map_err(errno_io)?;
        }
    }
    let t = TimeSpec::new(mtime, 0);
    futimens(fd, &t, &t).map_err(errno_io)
}

/// `FS_TOPDIR_FL` (`chattr +T`): a directory whose subdirectories are
/// unrelated trees.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks directory `dir` as the top of unrelated directory trees
/// (`chattr +T`), where the file system supports it (ext2/3/4; elsewhere
/// nothing happens). ext4's Orlov allocator then spreads new
/// subdirectories, and the files made in them, over block groups instead of
/// packing them next to the parent. That matters for the store's scratch
/// trees: on ext4 without a journal, allocating an inode skips every free
/// inode of the group deleted in the last `dirty_expire_centisecs` (30 s),
/// one inode-table lookup each, so a step that creates 20000 files in the
/// group where the last build just deleted 20000 spent most of its time
/// there (docs/benchmarks.md, heavy context).
pub(crate) fn set_topdir(dir: &Path) -> io::Result<()> {
    let f = std::fs::File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int to the valid pointer.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int from the valid pointer.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets extended attribute `key` on the open file `fd`.
pub(crate) fn set_xattr_fd(fd: BorrowedFd<'_>, key: &str, value: &[u8]) -> io::Result<()> {
    let ckey = cstr(key)?;
    // SAFETY: `ckey` is NUL-terminated; `value` is readable for its length.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            ckey.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates a symlink `name` -> `target` in `dir`.
pub(crate) fn symlink_at(dir: BorrowedFd<'_>, name: &str, target: &OsStr) -> io::Result<()> {
    nix::unistd::symlinkat(Path::new(target), dir, name).map_err(errno_io)
}

/// Target of symlink `name` in `dir`.
pub(crate) fn readlink_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<Vec<u8>> {
    nix::fcntl::readlinkat(dir, name)
        .map(|s| s.as_bytes().to_vec())
        .map_err(errno_io)
}

/// Sets owner and times of `name` in `dir` without following a symlink,
/// then (for non-symlinks) the permission bits. Ownership changes are
/// skipped when not running as root.
pub(crate) fn set_meta_at(
    dir: BorrowedFd<'_>,
    name: &str,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    mtime: i64,
) -> io::Result<()> {
    use nix::fcntl::AtFlags;
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    if nix::unistd::geteuid().is_root() {
        nix::unistd::fchownat(
            dir,
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno_io)?;
    }
    if let Some(mode) = mode {
        nix::sys::stat::fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(mode & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(errno_io)?;
    }
    let t = TimeSpec::new(mtime, 0);
    utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(errno_io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_dir_follows_dangling_symlinks_inside_the_root() {
        let root = tempfile::tempdir().expect("root");
        let outside = tempfile::tempdir().expect("outside");
        let out = outside.path().display().to_string();
        std::os::unix::fs::symlink(format!("/../../..{out}"), root.path().join("abs"))
            .expect("abs");
        std::fs::create_dir(root.path().join("d")).expect("d");
        std::os::unix::fs::symlink(format!("../../../..{out}/r"), root.path().join("d/rel"))
            .expect("rel");
        std::os::unix::fs::symlink("loop", root.path().join("loop")).expect("loop");
        let fd = open_dir(root.path()).expect("open");
        // Plain ensure_dir refuses them (ENOENT), as layer extraction wants.
        assert!(ensure_dir(fd.as_fd(), &["abs", "sub"], Resolve::InRoot).is_err());
        ensure_dir_following(fd.as_fd(), &["abs", "sub"], Resolve::InRoot).expect("abs");
        ensure_dir_following(fd.as_fd(), &["d", "rel", "x"], Resolve::InRoot).expect("rel");
        let inside = root.path().join(out.trim_start_matches('/'));
        assert!(inside.join("sub").is_dir());
        assert!(inside.join("r/x").is_dir());
        assert_eq!(std::fs::read_dir(outside.path()).expect("ls").count(), 0);
        let e =
            ensure_dir_following(fd.as_fd(), &["loop", "x"], Resolve::InRoot).expect_err("loop");
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        // Layer directories never follow them.
        assert!(ensure_dir_following(fd.as_fd(), &["abs", "y"], Resolve::NoSymlinks).is_err());
    }

    #[test]
    fn topdir_flag_is_set_where_the_file_system_has_it() {
        let dir = tempfile::tempdir().expect("dir");
        let get = |p: &Path| -> libc::c_int {
            let f = std::fs::File::open(p).expect("open");
            let mut flags: libc::c_int = 0;
            // SAFETY: FS_IOC_GETFLAGS writes one int to the valid pointer.
            let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
            assert!(r >= 0, "GETFLAGS: {}", io::Error::last_os_error());
            flags
        };
        match set_topdir(dir.path()) {
            Ok(()) => {
                assert_ne!(get(dir.path()) & FS_TOPDIR_FL, 0);
                // Idempotent.
                set_topdir(dir.path()).expect("again");
            }
            // tmpfs and others have no such flag: an error the store ignores.
            Err(e) => assert!(matches!(
                e.raw_os_error(),
                Some(libc::ENOTTY) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
            )),
        }
        assert!(set_topdir(&dir.path().join("missing")).is_err());
    }
}
