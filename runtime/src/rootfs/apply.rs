//! Applying the mount plan inside the container's mount namespace. Every target is resolved
//! inside the rootfs ([`super::resolve`]) and mounted through its `/proc/self/fd/N` path, so
//! nothing in the rootfs can redirect a mount to the host.

use super::plan::{DeviceNode, MountKind, MountStep, DEV_SYMLINKS};
use super::resolve::{create_in_root, is_dir, open_in_root, Leaf};
use super::RootfsError;
use crate::cgroups::Hierarchy;
use crate::sys::fd_path;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

type R<T> = Result<T, RootfsError>;

/// The container's cgroup directory in one hierarchy, for `type: cgroup` mounts.
#[derive(Clone, Debug)]
pub struct CgroupMountSource {
    /// The hierarchy.
    pub hierarchy: Hierarchy,
    /// The container's directory in it.
    pub dir: PathBuf,
}

/// Everything the mount phase needs besides the steps.
pub struct MountContext<'a> {
    /// The rootfs on the host.
    pub rootfs: &'a Path,
    /// True when the container has its own user namespace (devices are bind-mounted).
    pub in_userns: bool,
    /// True when the container has its own cgroup namespace.
    pub cgroupns: bool,
    /// The container's cgroups, for cgroup mounts.
    pub cgroups: &'a [CgroupMountSource],
    /// SELinux label for mounts, applied only where SELinux is enabled.
    pub mount_label: Option<&'a str>,
    /// Detached bind sources opened before the user namespace, by mount index.
    pub bind_sources: &'a [(usize, OwnedFd)],
}

/// Detached idmapped copies of the sources of every idmapped bind mount.
pub fn open_idmapped_sources(steps: &[MountStep]) -> R<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    for s in steps {
        if let (Some(map), Some(src)) = (&s.idmap, s.source.as_deref()) {
            out.push((s.index, super::idmap::idmapped_tree(s.index, src, map)?));
        }
    }
    Ok(out)
}

/// For a container with a new user namespace: detached copies (open_tree) of every bind
/// source, made while the caller still has its host credentials. Mounting them later needs no
/// access to the source path from inside the user namespace (runc opens them early too).
pub fn open_bind_sources(steps: &[MountStep]) -> R<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    for s in steps
        .iter()
        .filter(|s| s.kind == MountKind::Bind && s.idmap.is_none())
    {
        let Some(src) = s.source.as_deref() else {
            continue;
        };
        let recursive = s.flags.contains(MsFlags::MS_REC);
        let fd = crate::sys::open_tree_clone(src, recursive).map_err(|e| RootfsError::Plan {
            field: format!("mounts[{}].source", s.index),
            msg: format!("{}: {e}", src.display()),
        })?;
        out.push((s.index, fd));
    }
    Ok(out)
}

fn nix_io(e: nix::Error) -> std::io::Error {
    std::io::Error::from(e)
}

/// Makes the mount tree private to the container (slave, or the requested propagation when it is
/// private/slave) and bind-mounts the rootfs onto itself so it can be pivoted into. Returns an
/// O_PATH descriptor of the rootfs.
pub fn prepare(rootfs: &Path, propagation: Option<MsFlags>) -> R<OwnedFd> {
    let root_flags = match propagation {
        Some(p) if p.contains(MsFlags::MS_PRIVATE) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, root_flags, None::<&str>)
        .map_err(|e| RootfsError::sys("make / non-shared", nix_io(e)))?;
    bind_rootfs(rootfs)?;
    open_rootfs(rootfs)
}

/// Binds `rootfs` onto itself, recursively (the mount the container's mounts are made on).
pub fn bind_rootfs(rootfs: &Path) -> R<()> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys(format!("bind rootfs {}", rootfs.display()), nix_io(e)))
}

/// Opens `rootfs` for the mount plan.
pub fn open_rootfs(rootfs: &Path) -> R<OwnedFd> {
    let f = std::fs::File::open(rootfs)
        .map_err(|e| RootfsError::sys(format!("open rootfs {}", rootfs.display()), e))?;
    Ok(f.into())
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Performs every mount step in order.
pub fn mount_all(cx: &MountContext, root: &OwnedFd, steps: &[MountStep]) -> R<()> {
    for step in steps {
        mount_one(cx, root, step)?;
    }
    Ok(())
}

fn mount_one(cx: &MountContext, root: &OwnedFd, s: &MountStep) -> R<()> {
    let field = format!("mounts[{}]", s.index);
    let dest_display = format!("/{}", s.dest.display());
    if s.kind == MountKind::Cgroup {
        return mount_cgroup(cx, root, s);
    }
    let leaf = match (&s.kind, &s.source) {
        (MountKind::Bind, Some(src)) => {
            let early = cx.bind_sources.iter().find(|(i, _)| *i == s.index);
            let is_dir = match early {
                Some((_, fd)) => nix::sys::stat::fstat(fd)
                    .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                    .map_err(nix_io),
                None => std::fs::metadata(src).map(|m| m.is_dir()),
            }
            .map_err(|e| RootfsError::Plan {
                field: format!("{field}.source"),
                msg: format!("{}: {e}", src.display()),
            })?;
            if s.dest == Path::new("proc") {
                let magic = match early {
                    Some((_, fd)) => nix::sys::statfs::fstatfs(fd).map(|f| f.filesystem_type()),
                    None => nix::sys::statfs::statfs(src).map(|f| f.filesystem_type()),
                };
                if magic.ok() != Some(nix::sys::statfs::PROC_SUPER_MAGIC) {
                    return Err(RootfsError::Plan {
                        field: format!("{field}.source"),
                        msg: format!(
                            "{} is not a procfs: only a procfs may be bound onto /proc",
                            src.display()
                        ),
                    });
                }
            }
            if is_dir {
                Leaf::Dir
            } else {
                Leaf::File
            }
        }
        _ => Leaf::Dir,
    };
    let strict = matches!(s.kind, MountKind::Proc | MountKind::Sysfs);
    // A tmpfs over a directory the image has takes that directory's mode unless the options
    // give one (runc 1.1 applied the old mode even over `mode=`, which loses docker's
    // `--tmpfs /x:mode=700`; berth keeps the explicit option).
    let keep_mode = if s.fstype == "tmpfs" && !s.data.split(',').any(|o| o.starts_with("mode=")) {
        open_in_root(root, &s.dest, false)
            .ok()
            .and_then(|fd| nix::sys::stat::fstat(&fd).ok())
            .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .map(|st| st.st_mode & 0o7777)
    } else {
        None
    };
    let target = create_in_root(root, &s.dest, leaf, strict).map_err(|e| {
        if strict && e.raw_os_error() == Some(libc::ELOOP) {
            RootfsError::Plan {
                field: format!("{field}.destination"),
                msg: format!("{dest_display} is or passes through a symlink in the rootfs; {} must be mounted on a real directory", s.fstype),
            }
        } else {
            RootfsError::sys(format!("{field}: create mount point {dest_display}"), e)
        }
    })?;
    if strict && !is_dir(&target) {
        return Err(RootfsError::Plan {
            field: format!("{field}.destination"),
            msg: format!("{dest_display} is not a directory"),
        });
    }
    let tpath = fd_path(target.as_raw_fd());
    let mut data = s.data.clone();
    if let Some(label) = cx
        .mount_label
        .filter(|l| !l.is_empty() && s.kind != MountKind::Bind && selinux_enabled())
    {
        if !data.is_empty() {
            data.push(',');
        }
        data.push_str(&format!("context=\"{label}\""));
    }
    let data_opt = if data.is_empty() {
        None
    } else {
        Some(data.as_str())
    };
    match s.kind {
        MountKind::Bind => {
            let src = s.source.as_deref().unwrap_or(Path::new(""));
            if let Some((_, fd)) = cx.bind_sources.iter().find(|(i, _)| *i == s.index) {
                crate::sys::move_mount_fd(fd.as_raw_fd(), target.as_raw_fd()).map_err(|e| {
                    RootfsError::sys(
                        format!("{field}: attach {} to {dest_display}", src.display()),
                        e,
                    )
                })?;
            } else {
                mount(
                    Some(src),
                    tpath.as_str(),
                    None::<&str>,
                    s.flags,
                    None::<&str>,
                )
                .map_err(|e| {
                    RootfsError::sys(
                        format!("{field}: bind {} to {dest_display}", src.display()),
                        nix_io(e),
                    )
                })?;
            }
            if !s.remount_flags.is_empty() {
                // Re-open: the mount covered the old target, the fd still points below it.
                let t2 = reopen(root, s, &field)?;
                remount_bind(
                    &fd_path(t2.as_raw_fd()),
                    s.remount_flags | (s.flags & MsFlags::MS_REC),
                )
                .map_err(|e| {
                    RootfsError::sys(
                        format!("{field}: remount {dest_display} with its options"),
                        e,
                    )
                })?;
            }
        }
        _ => {
            let src = s
                .source
                .as_deref()
                .map(|p| p.as_os_str())
                .unwrap_or(s.fstype.as_ref());
            let r = mount(
                Some(src),
                tpath.as_str(),
                Some(s.fstype.as_str()),
                s.flags,
                data_opt,
            );
            // As runc does: mqueue and sysfs cannot be mounted in some nested user namespaces;
            // a recursive bind of the host's copy is the fallback.
            if let Err(nix::Error::EPERM) = r {
                if matches!(s.fstype.as_str(), "sysfs" | "mqueue") && cx.in_userns {
                    let host = if s.fstype == "sysfs" {
                        "/sys"
                    } else {
                        "/dev/mqueue"
                    };
                    mount(
                        Some(host),
                        tpath.as_str(),
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None::<&str>,
                    )
                    .map_err(|e| {
                        RootfsError::sys(
                            format!("{field}: bind {host} to {dest_display}"),
                            nix_io(e),
                        )
                    })?;
                    if s.flags.contains(MsFlags::MS_RDONLY) {
                        let t2 = reopen(root, s, &field)?;
                        remount_bind(
                            &fd_path(t2.as_raw_fd()),
                            MsFlags::MS_RDONLY | MsFlags::MS_REC,
                        )
                        .map_err(|e| {
                            RootfsError::sys(
                                format!("{field}: remount {dest_display} read-only"),
                                e,
                            )
                        })?;
                    }
                    return apply_propagation(root, s, &field);
                }
            }
            r.map_err(|e| {
                let hint = if e == nix::Error::EINVAL && !s.data.is_empty() {
                    format!(" (options passed to {}: {:?})", s.fstype, s.data)
                } else {
                    String::new()
                };
                RootfsError::Sys {
                    what: format!(
                        "{field}: mount {} ({}) on {dest_display}",
                        src.to_string_lossy(),
                        s.fstype
                    ),
                    source: std::io::Error::other(format!("{}{hint}", nix_io(e))),
                }
            })?;
            if s.tmpcopyup || keep_mode.is_some() {
                let new_root = reopen(root, s, &field)?;
                if s.tmpcopyup {
                    // `target` still refers to the image's directory under the new tmpfs.
                    let under = reopen_dir(&target).map_err(|e| {
                        RootfsError::sys(format!("{field}: open the image's {dest_display}"), e)
                    })?;
                    super::copyup::copy_tree(under.as_fd(), new_root.as_fd()).map_err(|e| {
                        RootfsError::sys(
                            format!("{field}: tmpcopyup of the image's {dest_display}"),
                            e,
                        )
                    })?;
                }
                if let Some(mode) = keep_mode {
                    std::fs::set_permissions(
                        fd_path(new_root.as_raw_fd()),
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )
                    .map_err(|e| RootfsError::sys(format!("{field}: chmod {dest_display}"), e))?;
                }
            }
        }
    }
    apply_propagation(root, s, &field)?;
    apply_recursive(root, s, &field)
}

/// Opens a mount step's target again after something was mounted on it (the descriptor taken
/// before points below the new mount).
fn reopen(root: &OwnedFd, s: &MountStep, field: &str) -> R<OwnedFd> {
    open_in_root(root, &s.dest, false)
        .map_err(|e| RootfsError::sys(format!("{field}: reopen /{}", s.dest.display()), e))
}

/// An O_RDONLY directory descriptor for the same directory as `fd` (which may be O_PATH).
fn reopen_dir(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    let f = std::fs::File::open(fd_path(fd.as_raw_fd()))?;
    Ok(f.into())
}

/// Applies the recursive attributes (`rro`, `rnosuid`, ...) with mount_setattr(AT_RECURSIVE).
fn apply_recursive(root: &OwnedFd, s: &MountStep, field: &str) -> R<()> {
    if s.recursive.is_empty() {
        return Ok(());
    }
    let t = reopen(root, s, field)?;
    crate::sys::mount_setattr(t.as_raw_fd(), true, s.recursive.set, s.recursive.clear).map_err(
        |e| {
            RootfsError::sys(
                format!(
                    "{field}: set recursive mount attributes on /{}",
                    s.dest.display()
                ),
                e,
            )
        },
    )
}

/// Makes the mounts whose read-only flag waited for /dev to be populated read-only now.
pub fn readonly_after_setup(root: &OwnedFd, steps: &[MountStep]) -> R<()> {
    for s in steps.iter().filter(|s| s.readonly_after_setup) {
        let field = format!("mounts[{}]", s.index);
        let t = reopen(root, s, &field)?;
        // A read-only bind remount: the mount becomes read-only, its superblock stays as it
        // was (what runc shows in mountinfo).
        let flags = (s.flags | MsFlags::MS_RDONLY)
            & (MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_NOATIME
                | MsFlags::MS_RELATIME
                | MsFlags::MS_STRICTATIME);
        remount_bind(&fd_path(t.as_raw_fd()), flags).map_err(|e| {
            RootfsError::sys(format!("{field}: make /{} read-only", s.dest.display()), e)
        })?;
    }
    Ok(())
}

fn apply_propagation(root: &OwnedFd, s: &MountStep, field: &str) -> R<()> {
    if s.propagation.is_empty() {
        return Ok(());
    }
    let t = reopen(root, s, field)?;
    for p in &s.propagation {
        mount(
            None::<&str>,
            fd_path(t.as_raw_fd()).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .map_err(|e| {
            RootfsError::sys(
                format!("{field}: set propagation on /{}", s.dest.display()),
                nix_io(e),
            )
        })?;
    }
    Ok(())
}

/// Remounts a bind mount with `flags`; flags the kernel locked on the source (nodev, nosuid,
/// noexec, atime flags in a user namespace) are kept so the remount is allowed.
fn remount_bind(target: &str, flags: MsFlags) -> std::io::Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(
        None::<&str>,
        target,
        None::<&str>,
        base | flags,
        None::<&str>,
    ) {
        Ok(()) => Ok(()),
        Err(nix::Error::EPERM) => {
            let st = nix::sys::statvfs::statvfs(target).map_err(nix_io)?;
            let locked = MsFlags::from_bits_truncate(st.flags().bits() as libc::c_ulong)
                & (MsFlags::MS_NODEV
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NOEXEC
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOATIME
                    | MsFlags::MS_NODIRATIME
                    | MsFlags::MS_RELATIME);
            mount(
                None::<&str>,
                target,
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
            .map_err(nix_io)
        }
        Err(e) => Err(nix_io(e)),
    }
}

/// `type: cgroup`: the container's own cgroups at the destination. v2: a cgroup2 mount (with a
/// cgroup namespace) or a bind of its directory. v1/hybrid: a tmpfs with one directory per
/// hierarchy, each a cgroup mount (with a cgroup namespace) or a bind of the container's directory.
fn mount_cgroup(cx: &MountContext, root: &OwnedFd, s: &MountStep) -> R<()> {
    let field = format!("mounts[{}]", s.index);
    let dest = format!("/{}", s.dest.display());
    let target = create_in_root(root, &s.dest, Leaf::Dir, true)
        .map_err(|e| RootfsError::sys(format!("{field}: create mount point {dest}"), e))?;
    let flags = s.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = s.flags.contains(MsFlags::MS_RDONLY);
    let only_v2 = cx.cgroups.iter().all(|c| c.hierarchy.v2);
    // Mounts hierarchy `c` at `rel` below the directory `base` (itself when `rel` is empty).
    let mount_hier = |base: &OwnedFd, rel: &Path, c: &CgroupMountSource| -> R<()> {
        let t = create_in_root(base, rel, Leaf::Dir, true).map_err(|e| {
            RootfsError::sys(format!("{field}: create {dest}/{}", rel.display()), e)
        })?;
        let tpath = fd_path(t.as_raw_fd());
        if cx.cgroupns {
            let (fstype, data) = if c.hierarchy.v2 {
                ("cgroup2", String::new())
            } else {
                ("cgroup", c.hierarchy.controllers.join(","))
            };
            mount(
                Some("cgroup"),
                tpath.as_str(),
                Some(fstype),
                flags,
                if data.is_empty() {
                    None
                } else {
                    Some(data.as_str())
                },
            )
            .map_err(|e| {
                RootfsError::sys(
                    format!("{field}: mount {fstype} on {dest}/{}", rel.display()),
                    nix_io(e),
                )
            })?;
        } else {
            mount(
                Some(&c.dir),
                tpath.as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| {
                RootfsError::sys(
                    format!("{field}: bind {} on {dest}", c.dir.display()),
                    nix_io(e),
                )
            })?;
        }
        if ro {
            let t2 = open_in_root(base, rel, true)
                .map_err(|e| RootfsError::sys(format!("{field}: reopen {dest}"), e))?;
            remount_bind(&fd_path(t2.as_raw_fd()), MsFlags::MS_RDONLY | flags).map_err(|e| {
                RootfsError::sys(
                    format!("{field}: make {dest}/{} read-only", rel.display()),
                    e,
                )
            })?;
        }
        Ok(())
    };
    drop(target);
    if only_v2 {
        if let Some(c) = cx.cgroups.first() {
            mount_hier(root, &s.dest, c)?;
        }
        return Ok(());
    }
    let target = open_in_root(root, &s.dest, true)
        .map_err(|e| RootfsError::sys(format!("{field}: open {dest}"), e))?;
    mount(
        Some("tmpfs"),
        fd_path(target.as_raw_fd()).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .map_err(|e| RootfsError::sys(format!("{field}: mount tmpfs on {dest}"), nix_io(e)))?;
    let base = open_in_root(root, &s.dest, true)
        .map_err(|e| RootfsError::sys(format!("{field}: reopen {dest}"), e))?;
    for c in cx.cgroups {
        let name = if c.hierarchy.v2 {
            "unified".to_string()
        } else {
            c.hierarchy
                .mount_point
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| c.hierarchy.controllers.join(","))
        };
        mount_hier(&base, Path::new(&name), c)?;
    }
    if ro {
        mount(
            None::<&str>,
            fd_path(base.as_raw_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            Some("mode=755"),
        )
        .map_err(|e| RootfsError::sys(format!("{field}: make {dest} read-only"), nix_io(e)))?;
    }
    Ok(())
}

/// Creates device nodes (mknod, or a bind of the host node inside a user namespace), the
/// standard /dev symlinks, and /dev/ptmx pointing at the devpts instance.
pub fn setup_dev(root: &OwnedFd, devices: &[DeviceNode], in_userns: bool) -> R<()> {
    for d in devices {
        let parent_rel = d.path.parent().unwrap_or(Path::new(""));
        let name = d.path.file_name().ok_or_else(|| RootfsError::Plan {
            field: "linux.devices".into(),
            msg: format!("{} has no file name", d.path.display()),
        })?;
        let parent = create_in_root(root, parent_rel, Leaf::Dir, false)
            .map_err(|e| RootfsError::sys(format!("create /{}", parent_rel.display()), e))?;
        let shown = format!("/{}", d.path.display());
        if in_userns {
            let t = create_in_root(root, &d.path, Leaf::File, false)
                .map_err(|e| RootfsError::sys(format!("create {shown}"), e))?;
            let host = Path::new("/").join(&d.path);
            mount(
                Some(&host),
                fd_path(t.as_raw_fd()).as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                RootfsError::sys(
                    format!("bind device {} to {shown}", host.display()),
                    nix_io(e),
                )
            })?;
            continue;
        }
        let kind = match d.kind {
            'b' => libc::S_IFBLK,
            'p' => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        };
        let cname =
            std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name)).map_err(|_| {
                RootfsError::Plan {
                    field: "linux.devices".into(),
                    msg: format!("{shown}: NUL in path"),
                }
            })?;
        // Replace whatever the image has at that path (a file or an older node).
        // SAFETY: valid dirfd and C string; unlinkat/mknodat/fchownat only touch that entry.
        unsafe {
            libc::unlinkat(parent.as_raw_fd(), cname.as_ptr(), 0);
        }
        // SAFETY: as above.
        let r = unsafe {
            libc::mknodat(
                parent.as_raw_fd(),
                cname.as_ptr(),
                kind | d.mode,
                libc::makedev(d.major as u32, d.minor as u32),
            )
        };
        if r < 0 {
            return Err(RootfsError::sys(
                format!("mknod {shown}"),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: as above; AT_SYMLINK_NOFOLLOW so a racing symlink is never followed.
        let r = unsafe {
            libc::fchownat(
                parent.as_raw_fd(),
                cname.as_ptr(),
                d.uid,
                d.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r < 0 {
            return Err(RootfsError::sys(
                format!("chown {shown}"),
                std::io::Error::last_os_error(),
            ));
        }
        // mknod applies the umask; set the exact mode. fchmodat does not follow the new node (not a link).
        // SAFETY: as above.
        let r = unsafe { libc::fchmodat(parent.as_raw_fd(), cname.as_ptr(), d.mode, 0) };
        if r < 0 {
            return Err(RootfsError::sys(
                format!("chmod {shown}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    let dev = create_in_root(root, Path::new("dev"), Leaf::Dir, false)
        .map_err(|e| RootfsError::sys("create /dev", e))?;
    let mut links: Vec<(&str, &str)> = DEV_SYMLINKS.to_vec();
    if Path::new("/proc/kcore").exists() {
        links.push(("dev/core", "/proc/kcore"));
    }
    for (link, target) in links {
        symlink_in(&dev, link.trim_start_matches("dev/"), target)?;
    }
    if open_in_root(root, Path::new("dev/pts/ptmx"), false).is_ok() {
        let name = c"ptmx";
        // SAFETY: valid dirfd and C string.
        unsafe { libc::unlinkat(dev.as_raw_fd(), name.as_ptr(), 0) };
        symlink_in(&dev, "ptmx", "pts/ptmx")?;
    }
    Ok(())
}

fn symlink_in(dir: &OwnedFd, name: &str, target: &str) -> R<()> {
    let (cn, ct) = match (std::ffi::CString::new(name), std::ffi::CString::new(target)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return Err(RootfsError::Plan {
                field: "dev".into(),
                msg: "NUL in symlink".into(),
            })
        }
    };
    // SAFETY: valid C strings and dirfd.
    if unsafe { libc::symlinkat(ct.as_ptr(), dir.as_raw_fd(), cn.as_ptr()) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(RootfsError::sys(format!("symlink /dev/{name}"), e));
        }
    }
    Ok(())
}

/// Makes `rootfs` the root with pivot_root(2), detaching the old root.
pub fn pivot(rootfs: &Path) -> R<()> {
    let old = std::fs::File::open("/").map_err(|e| RootfsError::sys("open /", e))?;
    let new = std::fs::File::open(rootfs)
        .map_err(|e| RootfsError::sys(format!("open {}", rootfs.display()), e))?;
    nix::unistd::fchdir(&new).map_err(|e| RootfsError::sys("chdir to rootfs", nix_io(e)))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(|e| RootfsError::sys(format!("pivot_root {}", rootfs.display()), nix_io(e)))?;
    nix::unistd::fchdir(&old).map_err(|e| RootfsError::sys("chdir to old root", nix_io(e)))?;
    // The old root must not propagate the unmount back to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| RootfsError::sys("make old root slave", nix_io(e)))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|e| RootfsError::sys("detach old root", nix_io(e)))?;
    nix::unistd::chdir("/").map_err(|e| RootfsError::sys("chdir /", nix_io(e)))?;
    Ok(())
}

/// Full procfs and sysfs mounts (their filesystem's root mounted) outside `rootfs`, deepest
/// first, from mountinfo text.
pub fn host_pseudo_fs_mounts(mountinfo: &str, rootfs: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let fstype = post.split(' ').next()?;
            let (root, point) = (
                pre.get(3)?,
                PathBuf::from(crate::cgroups::hierarchy::unescape(pre.get(4)?)),
            );
            let full_pseudo = *root == "/" && (fstype == "proc" || fstype == "sysfs");
            (full_pseudo && !point.starts_with(rootfs)).then_some(point)
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// `--no-pivot` leaves the old root in the mount namespace, reachable for mount(2): a full
/// procfs or sysfs there would let a process with CAP_SYS_ADMIN in a user namespace mount a
/// fresh, unmasked procfs (the kernel allows that when a full one is visible). Detach every such
/// mount outside the rootfs, or cover it with an empty tmpfs where it cannot be detached.
/// The mount tree is already a slave of the host's, so nothing propagates back.
fn hide_host_pseudo_fs(rootfs: &Path) -> R<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| RootfsError::sys("read /proc/self/mountinfo", e))?;
    for p in host_pseudo_fs_mounts(&text, rootfs) {
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            // Already gone with a parent.
            Err(nix::Error::ENOENT) => {}
            Err(nix::Error::EINVAL) | Err(nix::Error::EPERM) => {
                mount(
                    Some("tmpfs"),
                    &p,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some("size=0"),
                )
                .map_err(|e| {
                    RootfsError::sys(format!("--no-pivot: cover {}", p.display()), nix_io(e))
                })?;
            }
            Err(e) => {
                return Err(RootfsError::sys(
                    format!("--no-pivot: detach {}", p.display()),
                    nix_io(e),
                ))
            }
        }
    }
    Ok(())
}

/// `--no-pivot`: moves the rootfs over / and chroots into it (for ramdisk roots).
pub fn move_root(rootfs: &Path) -> R<()> {
    hide_host_pseudo_fs(rootfs)?;
    nix::unistd::chdir(rootfs)
        .map_err(|e| RootfsError::sys(format!("chdir {}", rootfs.display()), nix_io(e)))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| RootfsError::sys("move rootfs to /", nix_io(e)))?;
    nix::unistd::chroot(".").map_err(|e| RootfsError::sys("chroot", nix_io(e)))?;
    nix::unistd::chdir("/").map_err(|e| RootfsError::sys("chdir /", nix_io(e)))?;
    Ok(())
}

/// No mount namespace: chroot into `rootfs` and create the working directory there.
pub fn chroot_into(rootfs: &Path, cwd: &Path) -> R<()> {
    nix::unistd::chroot(rootfs)
        .map_err(|e| RootfsError::sys(format!("chroot {}", rootfs.display()), nix_io(e)))?;
    nix::unistd::chdir("/").map_err(|e| RootfsError::sys("chdir /", nix_io(e)))?;
    ensure_dir(&open_new_root()?, cwd)
}

/// The container's root after pivot_root.
fn open_new_root() -> R<OwnedFd> {
    Ok(std::fs::File::open("/")
        .map_err(|e| RootfsError::sys("open /", e))?
        .into())
}

/// Opens `rel` inside `root`; a path that does not exist is skipped (None), as runc does.
fn open_existing(root: &OwnedFd, rel: &Path, field: &str, shown: &str) -> R<Option<OwnedFd>> {
    match open_in_root(root, rel, false) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(RootfsError::sys(format!("{field}: open {shown}"), e)),
    }
}

/// Hides `linux.maskedPaths` (after pivot): /dev/null over files, an empty read-only tmpfs over
/// directories. Paths are opened without following symlinks.
pub fn mask_paths(paths: &[String]) -> R<()> {
    let root = open_new_root()?;
    for p in paths {
        let rel = super::plan::clean_dest(Path::new(p));
        let Some(fd) = open_existing(&root, &rel, "linux.maskedPaths", p)? else {
            continue;
        };
        let t = fd_path(fd.as_raw_fd());
        let r = if is_dir(&fd) {
            mount(
                Some("tmpfs"),
                t.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                t.as_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.map_err(|e| RootfsError::sys(format!("linux.maskedPaths: mask {p}"), nix_io(e)))?;
    }
    Ok(())
}

/// Makes `linux.readonlyPaths` read-only (after pivot) with a bind mount onto itself.
pub fn readonly_paths(paths: &[String]) -> R<()> {
    let root = open_new_root()?;
    for p in paths {
        let rel = super::plan::clean_dest(Path::new(p));
        let Some(fd) = open_existing(&root, &rel, "linux.readonlyPaths", p)? else {
            continue;
        };
        let t = fd_path(fd.as_raw_fd());
        mount(
            Some(t.as_str()),
            t.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys(format!("linux.readonlyPaths: bind {p}"), nix_io(e)))?;
        let fd2 = open_in_root(&root, &rel, false)
            .map_err(|e| RootfsError::sys(format!("linux.readonlyPaths: reopen {p}"), e))?;
        remount_bind(
            &fd_path(fd2.as_raw_fd()),
            MsFlags::MS_RDONLY | MsFlags::MS_REC,
        )
        .map_err(|e| RootfsError::sys(format!("linux.readonlyPaths: make {p} read-only"), e))?;
    }
    Ok(())
}

/// `root.readonly`: remounts the new root read-only.
pub fn readonly_root() -> R<()> {
    remount_bind("/", MsFlags::MS_RDONLY)
        .map_err(|e| RootfsError::sys("root.readonly: remount / read-only", e))
}

/// Applies `linux.rootfsPropagation` to the new root (after pivot).
pub fn set_root_propagation(flags: MsFlags) -> R<()> {
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(|e| RootfsError::sys("linux.rootfsPropagation", nix_io(e)))
}

/// Creates the working directory inside the rootfs if it does not exist (as runc does).
pub fn ensure_dir(root: &OwnedFd, path: &Path) -> R<()> {
    let rel = super::plan::clean_dest(path);
    create_in_root(root, &rel, Leaf::Dir, false)
        .map_err(|e| RootfsError::sys(format!("process.cwd: create {}", path.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod no_pivot_tests {
    use super::*;

    #[test]
    fn finds_full_proc_and_sysfs_outside_the_rootfs_deepest_first() {
        let text = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
23 1 0:22 / /sys rw,nosuid - sysfs sysfs rw
24 23 0:23 / /sys/kernel/security rw - securityfs securityfs rw
25 1 0:21 /sys /mnt/procsys rw - proc proc rw
26 1 0:24 / /b/root/proc rw - proc proc rw
27 1 0:22 / /b/x\\040y/sys rw - sysfs sysfs rw
28 22 0:30 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
29 1 0:21 / /run/netns/p rw - proc proc rw";
        let got = host_pseudo_fs_mounts(text, Path::new("/b/root"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/b/x y/sys"),
                PathBuf::from("/run/netns/p"),
                PathBuf::from("/proc"),
                PathBuf::from("/sys"),
            ]
        );
    }
}
