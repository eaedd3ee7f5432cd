//! `linux.seccomp`: the OCI profile compiled to a classic BPF program by berth's own generator
//! ([`compile`], pure and unit-tested by running the program in a small interpreter), and
//! installed with seccomp(2) ([`Filter::install`]) as one of the last steps before execve.
//!
//! Semantics follow runc with libseccomp; see [`compile`] for the details and the documented
//! choices. SCMP_ACT_NOTIFY rules make the filter hand out a listener fd, which [`agent`]
//! sends to the seccomp agent at `linux.seccomp.listenerPath`.

pub mod agent;
pub mod bpf;
mod compile;
mod table;

pub use compile::{
    compile, syscall_number, Filter, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, FLAG_LOG,
    FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_TSYNC, FLAG_TSYNC_ESRCH, FLAG_WAIT_KILLABLE_RECV,
    RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_KILL_THREAD, RET_LOG, RET_TRACE, RET_TRAP,
    RET_USER_NOTIF, X32_SYSCALL_BIT,
};

/// What can go wrong with a seccomp profile or its installation.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A field of `linux.seccomp` cannot be honoured.
    #[error("{path}: {msg}")]
    Invalid {
        /// JSON path of the field (`linux.seccomp.syscalls[3].action`).
        path: String,
        /// What is wrong and how to fix it.
        msg: String,
    },
    /// seccomp(2) refused the filter.
    #[error("linux.seccomp: install the filter: {0}")]
    Install(std::io::Error),
    /// The listener could not be sent to the seccomp agent.
    #[error("linux.seccomp.listenerPath: send the seccomp listener to the agent at {}: {source}", path.display())]
    Agent {
        /// The agent's socket.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// SECCOMP_SET_MODE_FILTER.
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

impl Filter {
    /// Installs the filter on the calling thread with seccomp(2). Needs no_new_privs or
    /// CAP_SYS_ADMIN in the thread's user namespace. A filter that [`Filter::notifies`]
    /// returns its listener (close-on-exec); hand it to the agent before making any syscall the
    /// profile notifies.
    pub fn install(&self) -> Result<Option<std::os::fd::OwnedFd>, SeccompError> {
        let prog = libc::sock_fprog {
            len: self.program.len() as libc::c_ushort,
            // The kernel only reads the program; Insn has the layout of struct sock_filter.
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `self.program`, a live slice of `len` repr(C) instructions
        // laid out as `struct sock_filter`; the kernel copies the program before returning.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const libc::sock_fprog,
            )
        };
        match r {
            r if r < 0 => Err(SeccompError::Install(std::io::Error::last_os_error())),
            // SAFETY: with NEW_LISTENER a non-negative result is a new descriptor owned by us.
            fd if self.notifies() => Ok(Some(unsafe {
                <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32)
            })),
            0 => Ok(None),
            // With TSYNC, a positive result is a thread that could not be synchronised.
            tid => Err(SeccompError::Install(std::io::Error::other(format!(
                "SECCOMP_FILTER_FLAG_TSYNC: thread {tid} could not be synchronised"
            )))),
        }
    }
}

#[cfg(test)]
mod tests;
