//! The container's root filesystem: a pure mount plan built from the spec ([`plan`]),
//! and the code that applies it inside the container's mount namespace ([`apply`]), or in the
//! runtime's own one when the container has none ([`host`]).

pub mod apply;
pub mod copyup;
pub mod host;
pub mod idmap;
pub mod plan;
pub mod resolve;

/// Errors while planning or building the root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// The spec asks for a mount that cannot be made safely or at all.
    #[error("{field}: {msg}")]
    Plan {
        /// JSON path of the mount, e.g. `mounts[3]`.
        field: String,
        /// What is wrong.
        msg: String,
    },
    /// A syscall failed while applying the plan.
    #[error("{what}: {source}")]
    Sys {
        /// The operation, naming the path.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl RootfsError {
    /// Wraps an OS error with what was being done.
    pub fn sys(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        RootfsError::Sys {
            what: what.into(),
            source: source.into(),
        }
    }
}
