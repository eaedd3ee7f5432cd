//! Cgroups: finding the hierarchies (v1, v2 or hybrid) from the mount table, resolving
//! `linux.cgroupsPath`, creating the container's cgroups, placing processes and removing
//! exactly the directories berth created.

pub mod devices_bpf;
pub mod devices_v1;
pub mod hierarchy;
pub mod manager;
pub mod placement;
pub mod resources;
pub mod stats;
pub mod systemd;

pub use hierarchy::{detect, Hierarchy, Mode};
pub use placement::{resolve_path, Placement};

/// Errors from cgroup handling.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The mount table could not be read or has no cgroup filesystem.
    #[error("cgroups: {0}")]
    Detect(String),
    /// A cgroup file or directory operation failed.
    #[error("cgroup {path}: {source}")]
    Io {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A resource value cannot be applied on this host.
    #[error("{0}")]
    Invalid(String),
    /// The configured path cannot be used.
    #[error("linux.cgroupsPath: {0}")]
    Path(String),
    /// The systemd driver failed (D-Bus, or systemd refused the unit).
    #[error("systemd: {0}")]
    Systemd(String),
}
