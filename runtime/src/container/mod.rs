//! Containers: id rules, the state directory and its lock, status, and the lifecycle
//! operations (create, start, kill, delete) that the CLI, the shim and the builder call.

mod create;
mod exec;
mod id;
mod lifecycle;
pub mod procs;
mod run;
mod state;

pub use create::{create, CreateOptions, Created};
pub use exec::{
    check_status as check_exec_status, exec, parse_sub_cgroups, sub_placement, ExecOptions,
};
pub use id::validate_id;
pub use lifecycle::{
    delete, delete_incomplete, kill, list, load, pause, peek, resume, start, start_created, update,
    wait_exit,
};
pub use run::{become_subreaper, run_to_completion, wait_for};
pub use state::{ContainerDir, OciState, State, Status};

use std::path::PathBuf;

/// Errors from container operations; the messages callers match on are runc's, verbatim.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config is invalid.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The root filesystem plan is invalid.
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    /// Cgroup handling failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// `create` with an id already in use.
    #[error("container with given ID already exists")]
    Exists,
    /// No container by that id (runc's exact wording, which callers match on).
    #[error("container does not exist")]
    NotExist(String),
    /// The operation needs a live container.
    #[error("container not running")]
    NotRunning,
    /// The id is not acceptable.
    #[error("invalid container ID format: {0:?}")]
    InvalidId(String),
    /// The operation is not allowed in the container's current state.
    #[error("{0}")]
    BadState(String),
    /// The container's process reported an error while being set up.
    #[error("unable to start container process: {0}")]
    Init(String),
    /// A hook failed.
    #[error("{0}")]
    Hook(String),
    /// An I/O operation on the host failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with context.
    pub fn io(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// The default state root: /run/berth for root, `$XDG_RUNTIME_DIR/berth` when rootless (also
/// as root of a user namespace, see [`crate::rootless::honor_xdg_runtime_dir`]).
pub fn default_root() -> PathBuf {
    if crate::rootless::honor_xdg_runtime_dir() {
        if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
            return PathBuf::from(d).join("berth");
        }
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/berth");
    }
    PathBuf::from(format!("/tmp/berth-{}", nix::unistd::geteuid()))
}

/// A process forked by [`fork_for`], as the parent or the child sees it.
pub(crate) struct Forked {
    /// The child's PID in the parent, 0 in the child.
    pub pid: i32,
    /// Whether the child was cloned straight into the cgroup2 directory.
    pub in_unified: bool,
    /// The namespaces the child was born in (a subset of what was asked for).
    pub born_with: nix::sched::CloneFlags,
}

/// Forks a process that will enter the container: straight into its cgroup2 directory with
/// clone3(CLONE_INTO_CGROUP) when there is one (no migration, see [`crate::sys::clone_fork`])
/// and into the new namespaces `ns` when given (see [`crate::namespaces::born_with`]), else a
/// plain fork. A cgroup namespace in `ns` is only created together with the cgroup placement:
/// when that fails, the child joins its cgroup and unshares the cgroup namespace itself.
///
/// # Safety
/// As fork(2): the caller is single-threaded and the child never returns into code that assumes
/// the parent's state (it execs or _exits).
pub(crate) unsafe fn fork_for(
    cgroup: &crate::cgroups::Placement,
    ns: nix::sched::CloneFlags,
) -> std::io::Result<Forked> {
    use nix::sched::CloneFlags;
    use std::os::fd::AsRawFd;
    let forked = |pid: i32, in_unified: bool, born_with: CloneFlags| Forked {
        pid,
        in_unified,
        born_with,
    };
    if let Some(dir) = &cgroup.unified {
        if let Ok(f) = std::fs::File::open(dir) {
            // SAFETY: guaranteed by the caller.
            match unsafe { crate::sys::clone_fork(ns.bits() as u64, Some(f.as_raw_fd())) } {
                Ok(pid) => return Ok(forked(pid, true, ns)),
                // Older kernels or a cgroup that cannot take the process: fall back to a migration.
                Err(e) => tracing::debug!("clone3 into cgroup failed, falling back to fork: {e}"),
            }
        }
    }
    let ns = ns - CloneFlags::CLONE_NEWCGROUP;
    if !ns.is_empty() {
        // SAFETY: guaranteed by the caller.
        match unsafe { crate::sys::clone_fork(ns.bits() as u64, None) } {
            Ok(pid) => return Ok(forked(pid, false, ns)),
            Err(e) => tracing::debug!("clone3 into namespaces failed, falling back to fork: {e}"),
        }
    }
    // SAFETY: guaranteed by the caller.
    match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
        nix::unistd::ForkResult::Child => Ok(forked(0, false, CloneFlags::empty())),
        nix::unistd::ForkResult::Parent { child } => {
            Ok(forked(child.as_raw(), false, CloneFlags::empty()))
        }
    }
}
