//! COPY straight into the overlay upper directory, when that gives the
//! same layer as copying through the overlay mount.
//!
//! Every file created through overlayfs pays for lookups in every lower
//! layer and for the overlay's own inode, on top of the real file system's
//! work; for a COPY of thousands of files that is most of the step
//! (docs/benchmarks.md, heavy context). When the destination directory is
//! new, or an empty directory, in the merged view, nothing below it exists
//! in any lower layer, so the merged tree below it is exactly the upper
//! tree below it: the copy can go to the upper directory (through the very
//! same [`super::copy_sources`]) and the layer comes out the same. The
//! destination and its parents are made, or copied up, through the mount
//! first, as the copy through the mount would have made them.
//!
//! Not taken (the copy goes through the mount) when: a symlink is on the
//! destination path, the destination has entries, a source is a file,
//! `--parents`, URLs or heredocs are involved, or `BERTH_BUILD_COPY_VIA_OVERLAY`
//! is set (the tests compare both ways).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::fsutil::{self, Resolve};

use super::Matched;

/// The environment variable that turns the direct copy off.
pub const VIA_OVERLAY_ENV: &str = "BERTH_BUILD_COPY_VIA_OVERLAY";

/// The upper directory's root, ready for copying `matches` to `dest`
/// (absolute, clean) in place of the merged root `merged`, or None when
/// the copy must go through the mount. May create `dest` (and its
/// parents) through the mount, as the copy would have.
pub(crate) fn upper_root(
    merged: BorrowedFd<'_>,
    upper: &Path,
    matches: &[&Matched],
    dest: &str,
) -> Option<OwnedFd> {
    if std::env::var_os(VIA_OVERLAY_ENV).is_some()
        || matches.is_empty()
        || matches.iter().any(|m| !m.is_dir)
    {
        return None;
    }
    let parts: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    let rel = parts.join("/");
    // The directory that must exist in the upper directory before the copy:
    // the destination itself when it exists, else its parent (the copy then
    // makes the destination, with the source directory's owner and mode, as
    // it does through the mount).
    let ready = match fsutil::open_dir_at(merged, &rel, Resolve::NoSymlinks) {
        Ok(dir) => {
            // Empty in the merged view (whatever whiteouts hide): copy it
            // up, as the first file created in it would.
            if !fsutil::read_dir_names(dir.as_fd()).ok()?.is_empty() {
                return None;
            }
            copy_up(dir.as_fd())?;
            rel.clone()
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            // New: its missing parents are made through the mount exactly as
            // the copy makes them (mode 0755, root), never through a symlink,
            // and its parent is copied up.
            let (_, parents) = parts.split_last()?;
            let parent = fsutil::ensure_dir(merged, parents, Resolve::NoSymlinks).ok()?;
            copy_up(parent.as_fd())?;
            parents.join("/")
        }
        Err(_) => return None,
    };
    let up = fsutil::open_dir(upper).ok()?;
    if !ready.is_empty() {
        fsutil::open_dir_at(up.as_fd(), &ready, Resolve::NoSymlinks).ok()?;
    }
    tracing::debug!(dest, "COPY into the upper directory");
    Some(up)
}

/// Copies a directory of the merged view up into the upper directory (if it
/// only exists in a lower layer) by setting its owner to what it is, which
/// changes nothing else.
fn copy_up(dir: BorrowedFd<'_>) -> Option<()> {
    let st = nix::sys::stat::fstat(dir).ok()?;
    nix::unistd::fchown(
        dir,
        Some(nix::unistd::Uid::from_raw(st.st_uid)),
        Some(nix::unistd::Gid::from_raw(st.st_gid)),
    )
    .ok()
}
