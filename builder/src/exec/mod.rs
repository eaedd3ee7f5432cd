//! Executing filesystem steps on overlay snapshots: RUN through the berth
//! runtime library, COPY/ADD, WORKDIR.

pub mod config;
pub mod copy;
pub mod fetch;
pub mod from;
pub mod git;
pub mod overlay;
pub mod run;
pub mod snapshot;

use std::fmt::Display;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use nix::sys::stat::SFlag;
use thiserror::Error;

use crate::fsutil::{self, Resolve};

pub use overlay::Overlay;

/// Errors from executing a step.
#[derive(Debug, Error)]
pub enum ExecError {
    /// A COPY/ADD source that matches nothing.
    #[error("COPY source {0:?} not found in the build context (or excluded by .dockerignore)")]
    SourceNotFound(String),
    /// A source pattern that does not compile.
    #[error("invalid source pattern {0:?}: {1}")]
    BadPattern(String, String),
    /// An ADD archive that cannot be unpacked.
    #[error("cannot unpack archive {0}: {1}")]
    Archive(String, String),
    /// More layers than fit in one overlay mount.
    #[error("the stage has {0} layers, more than fit in one overlay mount (about 60): use fewer RUN/COPY steps")]
    TooManyLayers(usize),
    /// mount/umount failed.
    #[error("overlay mount at {0}: {1}")]
    Mount(PathBuf, String),
    /// The runtime could not run the container.
    #[error("running the build container: {0}")]
    Runtime(String),
    /// An ADD URL that could not be downloaded.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An ADD URL whose content does not match `--checksum`.
    #[error("ADD {url}: checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The `--checksum` value.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// `USER` that cannot be resolved.
    #[error("{0}")]
    User(String),
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ExecError {
    pub(crate) fn io(what: impl Display, source: std::io::Error) -> Self {
        ExecError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// Reads a small text file inside a root filesystem (following symlinks
/// only inside it); a missing file reads as empty.
pub fn read_root_file(root: BorrowedFd<'_>, path: &str) -> String {
    let rel = path.trim_start_matches('/');
    let how = nix::fcntl::OpenHow::new()
        .flags(
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NONBLOCK,
        )
        .resolve(nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT);
    let Ok(fd) = nix::fcntl::openat2(root, rel, how) else {
        return String::new();
    };
    let mut s = String::new();
    let _ = std::fs::File::from(fd).take(1 << 20).read_to_string(&mut s);
    s
}

/// The real path of `path` inside the directory tree `root`, with
/// symlinks and `..` resolved as if `root` were `/` (so the result never
/// leaves it).
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &str) -> std::io::Result<PathBuf> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = nix::fcntl::OpenHow::new()
        .flags(nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = nix::fcntl::openat2(root, rel, how).map_err(fsutil::errno_io)?;
    std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
}

/// Which of `paths` (absolute) do not exist in the root, including missing
/// parents, deepest first.
pub fn missing_paths(root: BorrowedFd<'_>, paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let parts = fsutil_parts(p);
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            let (dir, name) = match prefix.rsplit_once('/') {
                Some((d, n)) => (d.to_string(), n.to_string()),
                None => (String::new(), prefix.clone()),
            };
            let exists = fsutil::open_dir_at(root, &dir, Resolve::InRoot)
                .ok()
                .and_then(|d| fsutil::lstat_at(d.as_fd(), &name).ok().flatten())
                .is_some();
            if !exists && !out.contains(&prefix) {
                out.push(prefix);
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    out
}

fn fsutil_parts(p: &str) -> Vec<&str> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// Removes from an upper dir the entries the runtime created as mount
/// points (`missing`, from [`missing_paths`] before the run) when they are
/// still empty directories or empty files.
pub fn remove_created_mountpoints(upper: BorrowedFd<'_>, missing: &[String]) {
    for rel in missing {
        let (dir, name) = match rel.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", rel.as_str()),
        };
        let Ok(d) = fsutil::open_dir_at(upper, dir, Resolve::NoSymlinks) else {
            continue;
        };
        let Ok(Some(st)) = fsutil::lstat_at(d.as_fd(), name) else {
            continue;
        };
        let ft = fsutil::file_type(&st);
        let removable = match ft {
            SFlag::S_IFREG => st.st_size == 0,
            SFlag::S_IFDIR => fsutil::open_dir_at(d.as_fd(), name, Resolve::NoSymlinks)
                .and_then(|sub| fsutil::read_dir_names(sub.as_fd()))
                .map(|n| n.is_empty())
                .unwrap_or(false),
            _ => false,
        };
        if removable {
            let flag = if ft == SFlag::S_IFDIR {
                nix::unistd::UnlinkatFlags::RemoveDir
            } else {
                nix::unistd::UnlinkatFlags::NoRemoveDir
            };
            let _ = nix::unistd::unlinkat(d.as_fd(), name, flag);
        }
    }
}

/// Creates directory `path` (absolute) in the root filesystem if missing.
pub fn make_workdir(root: BorrowedFd<'_>, path: &str, owner: (u32, u32)) -> Result<(), ExecError> {
    let parts = fsutil_parts(path);
    let io_err = |e| ExecError::io(format!("WORKDIR {path}"), e);
    // The directories this WORKDIR creates belong to the stage's USER
    // (BuildKit); existing ones keep their owner.
    let missing: Vec<String> = (1..=parts.len())
        .map(|n| parts[..n].join("/"))
        .filter(|p| fsutil::open_dir_at(root, p, Resolve::InRoot).is_err())
        .collect();
    fsutil::ensure_dir_following(root, &parts, Resolve::InRoot).map_err(io_err)?;
    if owner != (0, 0) {
        for p in &missing {
            let fd = fsutil::open_dir_at(root, p, Resolve::InRoot).map_err(io_err)?;
            nix::unistd::fchown(fd.as_fd(), Some(owner.0.into()), Some(owner.1.into()))
                .map_err(|e| io_err(fsutil::errno_io(e)))?;
        }
    }
    Ok(())
}
