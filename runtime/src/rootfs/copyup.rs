//! `tmpcopyup`: copies a directory tree from the image into the tmpfs mounted over it
//! (runc's extension, used by `podman run --read-only` for /run, /tmp, /var/tmp). Every step is
//! relative to an open directory descriptor and never follows symlinks, so nothing in the image
//! can point the copy outside the two trees.

use nix::dir::Dir;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from(e)
}

/// Copies the contents of directory `src` into directory `dst` (both open descriptors):
/// files, directories, symlinks, fifos and device nodes, with their modes, owners and
/// timestamps. Hard links become separate copies, as runc's copy does.
pub fn copy_tree(src: BorrowedFd, dst: BorrowedFd) -> std::io::Result<()> {
    copy_dir_contents(src, dst, 0)
}

const MAX_DEPTH: usize = 256;

fn copy_dir_contents(src: BorrowedFd, dst: BorrowedFd, depth: usize) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(std::io::Error::other("directory tree too deep"));
    }
    let dup = nix::unistd::dup(src).map_err(io)?;
    let mut dir = Dir::from_fd(dup).map_err(io)?;
    let names: Vec<CString> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        copy_entry(src, dst, &name, depth)?;
    }
    Ok(())
}

fn copy_entry(src: BorrowedFd, dst: BorrowedFd, name: &CStr, depth: usize) -> std::io::Result<()> {
    let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
    let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match kind {
        SFlag::S_IFDIR => {
            match nix::sys::stat::mkdirat(dst, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(io(e)),
            }
            let s = openat(
                src,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io)?;
            let d = openat(
                dst,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io)?;
            copy_dir_contents(s.as_fd(), d.as_fd(), depth + 1)?;
            return set_meta(d.as_fd(), &st, perm);
        }
        SFlag::S_IFREG => {
            let s = openat(
                src,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(io)?;
            let d = openat(
                dst,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(io)?;
            let mut sf = std::fs::File::from(s);
            let mut df = std::fs::File::from(d);
            std::io::copy(&mut sf, &mut df)?;
            return set_meta(OwnedFd::from(df).as_fd(), &st, perm);
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(src, name).map_err(io)?;
            nix::unistd::symlinkat(target.as_os_str(), dst, name).map_err(io)?;
        }
        SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFSOCK => {
            mknodat(dst, name, kind, perm, st.st_rdev).map_err(io)?;
        }
        _ => return Ok(()),
    }
    // Symlinks and special files: owner and times without following.
    fchownat(
        dst,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io)?;
    if kind != SFlag::S_IFLNK {
        nix::sys::stat::fchmodat(
            dst,
            name,
            perm,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(io)?;
    }
    set_times(dst, name, &st, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Owner, mode and times of `st` on the open file or directory `fd`.
fn set_meta(fd: BorrowedFd, st: &libc::stat, perm: Mode) -> std::io::Result<()> {
    fchownat(
        fd,
        c"",
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_EMPTY_PATH,
    )
    .map_err(io)?;
    fchmod(fd, perm).map_err(io)?;
    set_times(fd, c"", st, AtFlags::AT_EMPTY_PATH)
}

fn set_times(dir: BorrowedFd, name: &CStr, st: &libc::stat, flags: AtFlags) -> std::io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ];
    // SAFETY: valid dirfd, C string and a two-element timespec array.
    let r =
        unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), flags.bits()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir(a.path().join("sub")).unwrap();
        std::fs::write(a.path().join("sub/f"), b"hello").unwrap();
        std::fs::set_permissions(
            a.path().join("sub/f"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::set_permissions(
            a.path().join("sub"),
            std::fs::Permissions::from_mode(0o1777),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", a.path().join("link")).unwrap();
        let sa = std::fs::File::open(a.path()).unwrap();
        let sb = std::fs::File::open(b.path()).unwrap();
        copy_tree(sa.as_fd(), sb.as_fd()).unwrap();
        assert_eq!(std::fs::read(b.path().join("sub/f")).unwrap(), b"hello");
        let m = std::fs::metadata(b.path().join("sub/f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(
            std::fs::metadata(b.path().join("sub")).unwrap().mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            std::fs::metadata(a.path().join("sub/f")).unwrap().mtime(),
            m.mtime()
        );
        // The link is copied as a link, never followed.
        assert_eq!(
            std::fs::read_link(b.path().join("link")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
    }
}
