//! Thin wrappers over syscalls that nix does not cover, each with its SAFETY note.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `struct open_how` for openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Resolve every path component as if the directory fd were `/` (no escapes via `..` or symlinks).
pub const RESOLVE_IN_ROOT: u64 = 0x10;
/// Refuse magic links such as `/proc/self/fd/N`.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// Refuse every symlink.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// Refuse to cross mount points.
pub const RESOLVE_NO_XDEV: u64 = 0x01;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// openat2(2): opens `path` relative to `dirfd` with the given resolve flags.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    // SAFETY: `c` is a valid NUL-terminated string and `how` a properly sized open_how that
    // outlive the call; the returned fd is fresh and owned by us.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_open(2): a descriptor that becomes readable when the process exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits up to `timeout_ms` (-1: forever) for the process behind `pidfd` to exit.
/// Returns true when it has exited.
pub fn pidfd_wait(pidfd: &OwnedFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0);
    }
}

/// Marks every descriptor from `first` upwards close-on-exec (close_range with CLOSE_RANGE_CLOEXEC),
/// falling back to walking /proc/self/fd on kernels without it.
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain syscall with integer arguments; it only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        if let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        {
            if fd >= first {
                set_cloexec(fd, true)?;
            }
        }
    }
    Ok(())
}

/// Sets or clears FD_CLOEXEC on one descriptor.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on an integer fd; an invalid fd yields EBADF, which we report.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `/proc/self/fd/N` path of a descriptor, used to mount onto or from an fd
/// that was resolved safely (the CVE-2021-30465 fix pattern).
pub fn fd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

/// Process start time in clock ticks since boot (field 22 of /proc/PID/stat), used to tell
/// a container's init from a later process that reused its PID.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Process state letter (field 3 of /proc/PID/stat): R, S, D, Z, T, ...
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, fsync-free
/// (state is volatile, like runc's), then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    AtomicFile::create(path)?.commit(data)
}

/// A file that replaces `path` at once, in two steps: [`AtomicFile::create`] makes its
/// temporary sibling (`.NAME.PID.tmp`), [`AtomicFile::commit`] fills it and renames it over
/// `path`. Making the inode is the expensive part on ext4 (about 0.4 ms here, against 50 us for
/// filling and renaming): a caller that has to wait anyway (for the container's process to get
/// ready) makes it while it waits. Dropped without a commit, the temporary is removed.
pub struct AtomicFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl AtomicFile {
    /// Creates the temporary file next to `path`.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = std::fs::File::create(&tmp)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    /// Writes `data` and renames the file over the target.
    pub fn commit(mut self, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("committed twice"))?;
        file.write_all(data)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path)?;
        // Renamed: nothing left for Drop to remove.
        self.tmp = std::path::PathBuf::new();
        Ok(())
    }
}

impl Drop for AtomicFile {
    /// An uncommitted (or failed) file's temporary is removed.
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `struct clone_args` for clone3(2), up to the `cgroup` field (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Forks with clone3: the child starts in the new namespaces `ns_flags` (CLONE_NEW*) and, with
/// `cgroup_fd`, in that cgroup2 directory (CLONE_INTO_CGROUP) without a later migration. A
/// migration takes the kernel's global cgroup threadgroup lock for writing, which waits for an
/// RCU grace period (milliseconds on an idle machine); this avoids it. Returns 0 in the child
/// and the child's PID (in the caller's PID namespace) in the parent, like fork.
///
/// # Safety
/// Same contract as fork(2): the calling process must be single-threaded, and the child must
/// only exec or _exit eventually, never return into code that assumes the parent's state.
pub unsafe fn clone_fork(ns_flags: u64, cgroup_fd: Option<RawFd>) -> io::Result<i32> {
    let args = CloneArgs {
        flags: ns_flags | cgroup_fd.map_or(0, |_| CLONE_INTO_CGROUP),
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_fd.map_or(0, |fd| fd as u64),
        ..Default::default()
    };
    // SAFETY: a valid clone_args of the size we pass; no CLONE_VM, so the child gets a copy of
    // the address space exactly as with fork. The caller guarantees single-threadedness.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as i32)
}

/// `struct mount_attr` for mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount at `fd` (AT_EMPTY_PATH), recursively when `recursive`:
/// sets the `set` attributes and clears the `clear` ones (`MOUNT_ATTR_*`).
pub fn mount_setattr(fd: RawFd, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    setattr(
        fd,
        recursive,
        &MountAttr {
            attr_set: set,
            attr_clr: clear,
            propagation: 0,
            userns_fd: 0,
        },
    )
}

fn setattr(fd: RawFd, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a properly sized mount_attr that outlives the call; the empty path is
    // a valid C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path` (recursive
/// when `recursive`), to be attached elsewhere with [`move_mount_fd`].
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let c = cstr(path)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `c` is a valid C string that outlives the call; the result is a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// move_mount(2) of the detached mount `from` onto the directory or file open at `to`.
pub fn move_mount_fd(from: RawFd, to: RawFd) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are empty C strings; the fds are valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// mount_setattr(2) with MOUNT_ATTR_IDMAP: makes the detached mount at `fd` idmapped through
/// the user namespace `userns_fd` (recursively when `recursive`).
pub fn mount_setattr_idmap(fd: RawFd, recursive: bool, userns_fd: RawFd) -> io::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    setattr(
        fd,
        recursive,
        &MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns_fd as u64,
        },
    )
}

/// Sets the extended attribute `name` of the open file `fd` to `value`.
pub fn fsetxattr(fd: RawFd, name: &str, value: &[u8]) -> io::Result<()> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: valid C string and buffer with its length.
    let r = unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The extended attribute `name` of the open file `fd`.
pub fn fgetxattr(fd: RawFd, name: &str) -> io::Result<Vec<u8>> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: valid C string and a buffer of the given length.
    let r = unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(r as usize);
    Ok(buf)
}
