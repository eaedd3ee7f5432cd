//! Safe extraction of layer tars.
//!
//! Every entry is created relative to a directory fd of the destination:
//! absolute paths and `..` are rejected, hard links must name a path inside
//! the same tree, symlinks are created but never followed out of the root
//! (parents are opened with `RESOLVE_NO_SYMLINKS` in a layer directory and
//! `RESOLVE_IN_ROOT` in a root filesystem), device nodes are skipped, and
//! `trusted.*` xattrs (which could steer overlayfs) are dropped.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{mknodat, Mode, SFlag};

use super::diff::{keep_xattr, OPAQUE_MARKER, WHITEOUT_PREFIX};
use super::LayerError;
use crate::fsutil::{self, errno_io, Resolve};

/// Where a layer is extracted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractMode {
    /// Into its own empty directory used as an overlayfs lower layer:
    /// whiteouts become 0/0 character devices and opaque markers the
    /// `trusted.overlay.opaque` xattr.
    Overlay,
    /// On top of a root filesystem holding the layers below: whiteouts
    /// delete, opaque markers empty the directory of older content.
    Flat,
}

/// Counts of what an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Entries written (files, dirs, links...).
    pub entries: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
    /// Device nodes skipped.
    pub skipped_devices: u64,
    /// The path of the first device node skipped.
    pub first_device: Option<String>,
}

/// Whether `.wh.TARGET` names a file to delete: not empty, not `.` or `..`, not itself a
/// whiteout name (the extractor and the pull's layer check apply the same rule).
pub fn valid_whiteout_target(target: &str) -> bool {
    !(target.is_empty() || target == "." || target == ".." || target.starts_with(WHITEOUT_PREFIX))
}

/// Validates a tar entry path and splits it into components. The empty
/// list is the root itself.
pub fn clean_entry_path(raw: &[u8]) -> Result<Vec<String>, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "the path is not UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err("absolute paths are not allowed in a layer".into());
    }
    if s.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    let mut out = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("`..` is not allowed in a layer path".into()),
            other => out.push(other.to_string()),
        }
    }
    Ok(out)
}

struct Extractor {
    root: OwnedFd,
    mode: ExtractMode,
    resolve: Resolve,
    created: HashSet<String>,
    dir_times: Vec<(String, i64)>,
    stats: ExtractStats,
}

/// Extracts the (uncompressed) tar stream `reader` into `dest`, which must
/// exist (and, in overlay mode, be empty).
pub fn extract<R: Read>(
    reader: R,
    dest: &Path,
    mode: ExtractMode,
) -> Result<ExtractStats, LayerError> {
    let root = fsutil::open_dir(dest).map_err(|e| LayerError::io(dest.display(), e))?;
    let mut x = Extractor {
        root,
        mode,
        resolve: match mode {
            ExtractMode::Overlay => Resolve::NoSymlinks,
            ExtractMode::Flat => Resolve::InRoot,
        },
        created: HashSet::new(),
        dir_times: Vec::new(),
        stats: ExtractStats::default(),
    };
    let mut ar = tar::Archive::new(reader);
    let entries = ar.entries().map_err(LayerError::Tar)?;
    for entry in entries {
        let mut entry = entry.map_err(LayerError::Tar)?;
        x.entry(&mut entry)?;
    }
    // Directory times last: creating children changed them.
    for (path, mtime) in x.dir_times.iter().rev() {
        if let Ok(fd) = fsutil::open_dir_at(x.root.as_fd(), path, x.resolve) {
            let t = nix::sys::time::TimeSpec::new(*mtime, 0);
            let _ = nix::sys::stat::futimens(fd.as_fd(), &t, &t);
        }
    }
    Ok(x.stats)
}

impl Extractor {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let unsafe_entry = |reason: String| LayerError::Unsafe {
            path: shown.clone(),
            reason,
        };
        let parts = clean_entry_path(&raw_path).map_err(unsafe_entry)?;
        let header = entry.header().clone();
        let etype = header.entry_type();
        if matches!(
            etype,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            return Ok(());
        }
        let Some((name, parents)) = parts.split_last() else {
            // The root directory itself: keep the destination's metadata.
            return Ok(());
        };
        let parent_rel = parents.join("/");
        let full = parts.join("/");
        let parent_refs: Vec<&str> = parents.iter().map(String::as_str).collect();
        let parent = fsutil::ensure_dir(self.root.as_fd(), &parent_refs, self.resolve)
            .map_err(|e| unsafe_entry(format!("cannot open its parent directory: {e}")))?;
        let mut prefix = String::new();
        for p in parents {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(p);
            self.created.insert(prefix.clone());
        }

        if name == OPAQUE_MARKER {
            self.stats.whiteouts += 1;
            return self.opaque(parent.as_fd(), &parent_rel);
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            if !valid_whiteout_target(target) {
                return Err(unsafe_entry("invalid whiteout name".into()));
            }
            self.stats.whiteouts += 1;
            let io_err = |e| LayerError::io(&shown, e);
            fsutil::remove_all_at(parent.as_fd(), target).map_err(io_err)?;
            if self.mode == ExtractMode::Overlay {
                mknodat(parent.as_fd(), target, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(|e| LayerError::io(&shown, errno_io(e)))?;
            }
            return Ok(());
        }

        let uid = u32::try_from(header.uid().unwrap_or(0)).unwrap_or(0);
        let gid = u32::try_from(header.gid().unwrap_or(0)).unwrap_or(0);
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0);
        let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Ok(key) = ext.key() {
                    if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                        if keep_xattr(x) {
                            xattrs.push((x.to_string(), ext.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
        let io_err = |e: io::Error| LayerError::io(&shown, e);
        let p = parent.as_fd();
        let existing = fsutil::lstat_at(p, name).map_err(io_err)?;
        let is_dir = etype == tar::EntryType::Directory;
        // A directory over a directory keeps it (and its content); anything
        // else replaces what was there.
        let keep_dir = match existing {
            Some(st) if is_dir && fsutil::file_type(&st) == SFlag::S_IFDIR => true,
            Some(_) => {
                fsutil::remove_all_at(p, name).map_err(io_err)?;
                false
            }
            None => false,
        };
        match etype {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = openat(
                    p,
                    name.as_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| io_err(errno_io(e)))?;
                // Large writes: io::copy fills the BufWriter's buffer directly.
                let mut w = io::BufWriter::with_capacity(256 << 10, File::from(fd));
                io::copy(entry, &mut w).map_err(io_err)?;
                let f = w.into_inner().map_err(|e| io_err(e.into_error()))?;
                for (k, v) in &xattrs {
                    fsutil::set_xattr_fd(f.as_fd(), k, v).map_err(io_err)?;
                }
                drop(f);
                fsutil::set_meta_at(p, name, uid, gid, Some(mode), mtime).map_err(io_err)?;
            }
            tar::EntryType::Directory => {
                if !keep_dir {
                    nix::sys::stat::mkdirat(p, name.as_str(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| io_err(errno_io(e)))?;
                }
                if !xattrs.is_empty() {
                    let d = fsutil::open_dir_at(p, name, Resolve::NoSymlinks).map_err(io_err)?;
                    for (k, v) in &xattrs {
                        fsutil::set_xattr_fd(d.as_fd(), k, v).map_err(io_err)?;
                    }
                }
                fsutil::set_meta_at(p, name, uid, gid, Some(mode), mtime).map_err(io_err)?;
                self.dir_times.push((full.clone(), mtime));
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("symlink without a target".into()))?
                    .into_owned();
                let target = std::ffi::OsStr::from_bytes(&target);
                fsutil::symlink_at(p, name, target).map_err(io_err)?;
                fsutil::set_meta_at(p, name, uid, gid, None, mtime).map_err(io_err)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("hard link without a target".into()))?
                    .into_owned();
                let tparts = clean_entry_path(&target)
                    .map_err(|r| unsafe_entry(format!("hard link target: {r}")))?;
                let Some((tname, tparents)) = tparts.split_last() else {
                    return Err(unsafe_entry("hard link to the root directory".into()));
                };
                let tdir =
                    fsutil::open_dir_at(self.root.as_fd(), &tparents.join("/"), self.resolve)
                        .map_err(|e| {
                            unsafe_entry(format!(
                                "hard link target {} is not in this layer: {e}",
                                tparts.join("/")
                            ))
                        })?;
                nix::unistd::linkat(
                    tdir.as_fd(),
                    tname.as_str(),
                    p,
                    name.as_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| {
                    unsafe_entry(format!(
                        "hard link to {} failed: {}",
                        tparts.join("/"),
                        errno_io(e)
                    ))
                })?;
            }
            tar::EntryType::Fifo => {
                nix::unistd::mkfifoat(p, name.as_str(), Mode::from_bits_truncate(0o600))
                    .map_err(|e| io_err(errno_io(e)))?;
                fsutil::set_meta_at(p, name, uid, gid, Some(mode), mtime).map_err(io_err)?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                tracing::warn!(path = %shown, "skipping device node in layer");
                self.stats.skipped_devices += 1;
                if self.stats.first_device.is_none() {
                    self.stats.first_device = Some(shown.clone());
                }
                return Ok(());
            }
            other => {
                tracing::warn!(path = %shown, kind = ?other, "skipping unsupported tar entry");
                return Ok(());
            }
        }
        self.created.insert(full);
        self.stats.entries += 1;
        Ok(())
    }

    fn opaque(&mut self, dir: BorrowedFd<'_>, dir_rel: &str) -> Result<(), LayerError> {
        let shown = format!("{dir_rel}/{OPAQUE_MARKER}");
        match self.mode {
            ExtractMode::Overlay => {
                let fd = fsutil::open_dir_at(dir, "", Resolve::NoSymlinks)
                    .map_err(|e| LayerError::io(&shown, e))?;
                fsutil::set_xattr_fd(fd.as_fd(), &crate::rootless::overlay_xattr("opaque"), b"y")
                    .map_err(|e| LayerError::io(&shown, e))
            }
            ExtractMode::Flat => {
                for child in fsutil::read_dir_names(dir).map_err(|e| LayerError::io(&shown, e))? {
                    let rel = if dir_rel.is_empty() {
                        child.clone()
                    } else {
                        format!("{dir_rel}/{child}")
                    };
                    if !self.created.contains(&rel) {
                        fsutil::remove_all_at(dir, &child)
                            .map_err(|e| LayerError::io(&shown, e))?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tarfmt::EntryKind;
    use crate::layer::test_tar::{h, tar_of};

    #[test]
    fn entry_paths() {
        assert_eq!(
            clean_entry_path(b"./a//b/./c"),
            Ok(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(clean_entry_path(b"./"), Ok(vec![]));
        assert!(clean_entry_path(b"/etc/passwd").is_err());
        assert!(clean_entry_path(b"a/../../x").is_err());
        assert!(clean_entry_path(b"..").is_err());
        assert!(clean_entry_path(b"\xff").is_err());
    }

    #[test]
    fn flat_extraction_applies_whiteouts_and_contains_symlinks() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let esc = outside.path().to_string_lossy().into_owned();
        let layer1 = tar_of(&[
            (h("etc", EntryKind::Dir), b""),
            (h("etc/a", EntryKind::File { size: 1 }), b"a"),
            (h("etc/b", EntryKind::File { size: 1 }), b"b"),
            (h("opt", EntryKind::Dir), b""),
            (h("opt/old", EntryKind::File { size: 0 }), b""),
            (h("esc", EntryKind::Symlink(esc.clone().into_bytes())), b""),
        ]);
        extract(&layer1[..], root.path(), ExtractMode::Flat).expect("layer1");
        // A dangling symlink parent is an error, never a write outside.
        let dangling = tar_of(&[(h("esc/pwned", EntryKind::File { size: 1 }), b"x")]);
        assert!(extract(&dangling[..], root.path(), ExtractMode::Flat).is_err());
        std::fs::create_dir_all(root.path().join(esc.trim_start_matches('/'))).expect("mkdir");
        let layer2 = tar_of(&[
            (h("etc/.wh.a", EntryKind::File { size: 0 }), b""),
            (h("opt/new", EntryKind::File { size: 1 }), b"n"),
            (h("opt/.wh..wh..opq", EntryKind::File { size: 0 }), b""),
            // Through the symlink: must land inside the root.
            (h("esc/pwned", EntryKind::File { size: 1 }), b"x"),
        ]);
        extract(&layer2[..], root.path(), ExtractMode::Flat).expect("layer2");
        let r = root.path();
        assert!(!r.join("etc/a").exists());
        assert!(r.join("etc/b").exists());
        assert!(r.join("opt/new").exists());
        assert!(!r.join("opt/old").exists());
        assert!(!outside.path().join("pwned").exists());
        assert!(r.join(esc.trim_start_matches('/')).join("pwned").exists());
    }

    #[test]
    fn rejects_escapes() {
        let root = tempfile::tempdir().expect("tempdir");
        for bad in [
            tar_of(&[(h("a", EntryKind::Hardlink("../../etc/passwd".into())), b"")]),
            tar_of(&[(h("b", EntryKind::Hardlink("/etc/passwd".into())), b"")]),
        ] {
            let err = extract(&bad[..], root.path(), ExtractMode::Flat).expect_err("unsafe");
            assert!(matches!(err, LayerError::Unsafe { .. }), "{err}");
        }
        // Raw header with an absolute or `..` name (our writer can't make one).
        for name in ["/abs", "x/../../up"] {
            let mut hd = tar::Header::new_gnu();
            hd.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            hd.set_size(0);
            hd.set_entry_type(tar::EntryType::Regular);
            hd.set_cksum();
            let mut bytes = hd.as_bytes().to_vec();
            bytes.extend([0u8; 1024]);
            let err = extract(&bytes[..], root.path(), ExtractMode::Flat).expect_err("unsafe");
            assert!(matches!(err, LayerError::Unsafe { .. }), "{err}");
        }
        // A symlink in a layer directory is never traversed.
        let dir = tempfile::tempdir().expect("tempdir");
        let t = tar_of(&[
            (h("l", EntryKind::Symlink(b"/tmp".to_vec())), b""),
            (h("l/x", EntryKind::File { size: 0 }), b""),
        ]);
        let err = extract(&t[..], dir.path(), ExtractMode::Overlay).expect_err("no follow");
        assert!(matches!(err, LayerError::Unsafe { .. }), "{err}");
    }
}
