//! Small file-system helpers that work relative to directory file
//! descriptors, so that nothing is ever resolved through a symlink that
//! points out of the tree being written (see the Security section of
//! ARCHITECTURE.md). Only this module uses `unsafe` (xattr wrappers).

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
pub(crate) fn ensure_dir(
    root: BorrowedFd<'_>,
    parts: &[&str],
    how: Resolve,
) -> io::Result<OwnedFd> {
    let mut prefix = String::new();
    let mut cur = open_dir_at(root, "", how)?;
    for part in parts {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        cur = match open_dir_at(root, &prefix, how) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                match mkdirat(cur.as_fd(), *part, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno_io(e)),
                }
                open_dir_at(root, &prefix, how)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
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
