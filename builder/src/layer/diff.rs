//! Turning a directory in overlay "upper" format into an ordered list of
//! tar entries: overlay whiteouts become OCI `.wh.` files, opaque
//! directories get a `.wh..wh..opq` marker, overlay's private xattrs are
//! dropped, hard links are detected, mtimes are clamped.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::SFlag;

use super::tarfmt::{EntryKind, TarHeader};
use crate::fsutil;

/// The OCI whiteout prefix.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr that marks a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The overlayfs xattr that marks a regular file as a whiteout (used by
/// nested overlays instead of a 0/0 character device).
pub const OVERLAY_WHITEOUT_XATTR: &str = "trusted.overlay.whiteout";

/// What a scanned file is, as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannedKind {
    /// Regular file of this size.
    File(u64),
    /// Directory.
    Dir,
    /// Symlink with this target.
    Symlink(Vec<u8>),
    /// Named pipe.
    Fifo,
    /// Character device (major, minor); 0/0 is an overlay whiteout.
    Char(u32, u32),
    /// Block device.
    Block(u32, u32),
    /// A socket (never archived).
    Socket,
}

/// One file found in an upper directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Path relative to the scanned root, `/`-separated.
    pub path: String,
    /// Type.
    pub kind: ScannedKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds).
    pub mtime: i64,
    /// (device, inode) when the file has more than one link.
    pub link_key: Option<(u64, u64)>,
    /// All extended attributes, sorted.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// One planned tar entry and where its data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The tar header.
    pub header: TarHeader,
    /// For regular files with content: the path (relative to the scanned
    /// root) to read.
    pub source: Option<String>,
}

/// Which extended attributes a layer carries: file capabilities and
/// `user.*` (overlay's own `user.overlay.*` excluded). Everything else
/// (`trusted.*`, `security.selinux`, ACLs) is host-specific.
pub fn keep_xattr(name: &str) -> bool {
    name == "security.capability"
        || (name.starts_with("user.") && !name.starts_with("user.overlay."))
}

/// The sort key: components compared bytewise, so a directory always comes
/// right before its contents; the opaque marker sorts first in its dir.
fn sort_key(path: &str) -> Vec<(u8, &[u8])> {
    path.split('/')
        .map(|c| (u8::from(c != OPAQUE_MARKER), c.as_bytes()))
        .collect()
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Translates scanned files into the layer's tar entries, in their final
/// order. `epoch` (SOURCE_DATE_EPOCH) clamps every mtime to at most it.
pub fn plan_entries(scanned: Vec<Scanned>, epoch: Option<i64>) -> Vec<Planned> {
    let clamp = |t: i64| {
        match epoch {
            Some(e) => t.min(e),
            None => t,
        }
        .max(0)
    };
    let mut out: Vec<Planned> = Vec::new();
    // A rootless build's overlay (userxattr) keeps its markers in user.overlay.*.
    let (opaque_x, whiteout_x) = (
        crate::rootless::overlay_xattr("opaque"),
        crate::rootless::overlay_xattr("whiteout"),
    );
    for s in scanned {
        let is_whiteout = match &s.kind {
            ScannedKind::Char(0, 0) => true,
            ScannedKind::File(0) => s
                .xattrs
                .iter()
                .any(|(k, _)| k == OVERLAY_WHITEOUT_XATTR || *k == whiteout_x),
            _ => false,
        };
        let opaque = s.kind == ScannedKind::Dir
            && s.xattrs.iter().any(|(k, v)| {
                (k == OVERLAY_OPAQUE_XATTR || *k == opaque_x) && v.as_slice() == b"y"
            });
        let xattrs: Vec<(String, Vec<u8>)> = s
            .xattrs
            .iter()
            .filter(|(k, _)| keep_xattr(k))
            .cloned()
            .collect();
        let base = |path: String, kind: EntryKind| TarHeader {
            path,
            kind,
            mode: s.mode & 0o7777,
            uid: s.uid,
            gid: s.gid,
            mtime: clamp(s.mtime),
            xattrs: xattrs.clone(),
        };
        if is_whiteout {
            let (parent, name) = split_parent(&s.path);
            let mut h = base(
                join(parent, &format!("{WHITEOUT_PREFIX}{name}")),
                EntryKind::File { size: 0 },
            );
            h.mode = 0;
            h.xattrs.clear();
            out.push(Planned {
                header: h,
                source: None,
            });
            continue;
        }
        let (kind, source) = match &s.kind {
            ScannedKind::File(size) => (
                EntryKind::File { size: *size },
                (*size > 0).then(|| s.path.clone()),
            ),
            ScannedKind::Dir => (EntryKind::Dir, None),
            ScannedKind::Symlink(t) => (EntryKind::Symlink(t.clone()), None),
            ScannedKind::Fifo => (EntryKind::Fifo, None),
            ScannedKind::Char(a, b) => (EntryKind::CharDevice(*a, *b), None),
            ScannedKind::Block(a, b) => (EntryKind::BlockDevice(*a, *b), None),
            ScannedKind::Socket => continue,
        };
        let mut planned = Planned {
            header: base(s.path.clone(), kind),
            source,
        };
        if let (Some(key), EntryKind::File { .. }) = (s.link_key, &planned.header.kind) {
            // Marked for hard-link resolution after sorting.
            planned
                .header
                .xattrs
                .push((format!("\0link:{}:{}", key.0, key.1), Vec::new()));
        }
        out.push(planned);
        if opaque {
            let mut h = base(join(&s.path, OPAQUE_MARKER), EntryKind::File { size: 0 });
            h.mode = 0;
            h.xattrs.clear();
            out.push(Planned {
                header: h,
                source: None,
            });
        }
    }
    out.sort_by(|a, b| sort_key(&a.header.path).cmp(&sort_key(&b.header.path)));
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    for p in &mut out {
        let Some(pos) = p
            .header
            .xattrs
            .iter()
            .position(|(k, _)| k.starts_with('\0'))
        else {
            continue;
        };
        let (marker, _) = p.header.xattrs.remove(pos);
        match first.get(&marker) {
            Some(target) => {
                p.header.kind = EntryKind::Hardlink(target.clone());
                p.source = None;
            }
            None => {
                first.insert(marker, p.header.path.clone());
            }
        }
    }
    out
}

/// Scans directory `root` (an overlay upper dir or a plain tree) without
/// following symlinks. The root itself is not included.
pub fn scan_dir(root: &Path) -> io::Result<Vec<Scanned>> {
    let fd = fsutil::open_dir(root)?;
    let mut out = Vec::new();
    scan_into(fd.as_fd(), "", &mut out)?;
    Ok(out)
}

fn scan_into(
    dir: std::os::fd::BorrowedFd<'_>,
    prefix: &str,
    out: &mut Vec<Scanned>,
) -> io::Result<()> {
    for name in fsutil::read_dir_names(dir)? {
        let Some(st) = fsutil::lstat_at(dir, &name)? else {
            continue;
        };
        let path = join(prefix, &name);
        let ft = fsutil::file_type(&st);
        let rdev = st.st_rdev;
        let (maj, min) = (libc::major(rdev), libc::minor(rdev));
        let kind = match ft {
            SFlag::S_IFREG => ScannedKind::File(u64::try_from(st.st_size).unwrap_or(0)),
            SFlag::S_IFDIR => ScannedKind::Dir,
            SFlag::S_IFLNK => ScannedKind::Symlink(fsutil::readlink_at(dir, &name)?),
            SFlag::S_IFIFO => ScannedKind::Fifo,
            SFlag::S_IFCHR => ScannedKind::Char(maj, min),
            SFlag::S_IFBLK => ScannedKind::Block(maj, min),
            _ => ScannedKind::Socket,
        };
        let xattrs = if ft == SFlag::S_IFLNK {
            Vec::new()
        } else {
            fsutil::list_xattrs(dir, &name)?
        };
        let link_key = (ft != SFlag::S_IFDIR && st.st_nlink > 1).then_some((st.st_dev, st.st_ino));
        out.push(Scanned {
            path: path.clone(),
            kind: kind.clone(),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: st.st_mtime,
            link_key,
            xattrs,
        });
        if kind == ScannedKind::Dir {
            let sub = nix::fcntl::openat(
                dir,
                name.as_str(),
                nix::fcntl::OFlag::O_RDONLY
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_NOFOLLOW
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(fsutil::errno_io)?;
            scan_into(sub.as_fd(), &path, out)?;
        }
    }
    Ok(())
}

/// The absolute path of a planned entry's data.
pub fn source_path(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(path: &str, kind: ScannedKind) -> Scanned {
        Scanned {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 2_000_000_000,
            link_key: None,
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn whiteouts_and_opaque_dirs() {
        let mut opq = s("etc", ScannedKind::Dir);
        opq.xattrs = vec![
            (OVERLAY_OPAQUE_XATTR.into(), b"y".to_vec()),
            ("trusted.overlay.origin".into(), vec![1]),
            ("user.keep".into(), b"v".to_vec()),
        ];
        let planned = plan_entries(
            vec![
                s("a.b", ScannedKind::File(0)),
                s("a", ScannedKind::Dir),
                s("a/gone", ScannedKind::Char(0, 0)),
                opq,
                s("etc/+x", ScannedKind::File(3)),
                s("sock", ScannedKind::Socket),
            ],
            Some(1_000),
        );
        let paths: Vec<&str> = planned.iter().map(|p| p.header.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "a",
                "a/.wh.gone",
                "a.b",
                "etc",
                "etc/.wh..wh..opq",
                "etc/+x"
            ]
        );
        assert!(planned.iter().all(|p| p.header.mtime == 1_000));
        let etc = &planned[3].header;
        assert_eq!(etc.xattrs, vec![("user.keep".to_string(), b"v".to_vec())]);
        assert_eq!(planned[1].header.kind, EntryKind::File { size: 0 });
        assert_eq!(planned[5].source.as_deref(), Some("etc/+x"));
        assert_eq!(planned[2].source, None);
    }

    #[test]
    fn hardlinks_point_at_first_in_order() {
        let mut a = s("z", ScannedKind::File(4));
        a.link_key = Some((1, 9));
        let mut b = s("b", ScannedKind::File(4));
        b.link_key = Some((1, 9));
        let planned = plan_entries(vec![a, b], None);
        assert_eq!(planned[0].header.path, "b");
        assert_eq!(planned[0].header.kind, EntryKind::File { size: 4 });
        assert_eq!(planned[1].header.kind, EntryKind::Hardlink("b".into()));
        assert_eq!(planned[1].source, None);
        assert!(planned.iter().all(|p| p.header.xattrs.is_empty()));
        assert_eq!(planned[0].header.mtime, 2_000_000_000);
    }

    #[test]
    fn scan_plain_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        std::fs::write(dir.path().join("d/f"), b"hi").expect("write");
        std::fs::hard_link(dir.path().join("d/f"), dir.path().join("g")).expect("link");
        std::os::unix::fs::symlink("/nowhere", dir.path().join("l")).expect("symlink");
        let planned = plan_entries(scan_dir(dir.path()).expect("scan"), Some(0));
        let kinds: Vec<(&str, &EntryKind)> = planned
            .iter()
            .map(|p| (p.header.path.as_str(), &p.header.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("d", &EntryKind::Dir),
                ("d/f", &EntryKind::File { size: 2 }),
                ("g", &EntryKind::Hardlink("d/f".into())),
                ("l", &EntryKind::Symlink(b"/nowhere".to_vec())),
            ]
        );
    }
}
