//! Process settings applied just before exec, shared by a container's init and `exec`:
//! terminal, oomScoreAdj, rlimits, environment, executable lookup, capabilities, user switch,
//! umask, cwd (checked to be inside the root), noNewPrivileges, seccomp and descriptor hygiene.

use super::errs;
use super::sync::{Channel, Msg};
use crate::capabilities::{self, CapSets};
use oci_spec::runtime::Process;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// Where the process's terminal and inherited descriptors come from.
pub struct ProcessSettings<'a> {
    /// Console socket to send the pty master to, when `process.terminal` is set.
    pub console_socket: Option<&'a OwnedFd>,
    /// Descriptors 3..3+N stay open across exec.
    pub preserve_fds: i32,
    /// LISTEN_FDS to announce (socket activation), 0 for none.
    pub listen_fds: i32,
    /// The container's `linux.seccomp` profile, applied to this process.
    pub seccomp: Option<&'a oci_spec::runtime::LinuxSeccomp>,
    /// The channel to the berth parent, which sends a notifying filter's listener to the
    /// seccomp agent.
    pub sync: Option<&'a Channel>,
}

/// A program ready to exec.
pub struct Prepared {
    /// Resolved executable.
    pub path: CString,
    /// argv.
    pub argv: Vec<CString>,
    /// envp.
    pub envp: Vec<CString>,
    /// With noNewPrivileges, the seccomp filter is not installed yet: the caller installs it as
    /// the very last step before execve (as runc does), so the fewest syscalls run under it.
    pub seccomp: Option<crate::seccomp::Filter>,
}

/// Joins a new session keyring named after the container (unless `--no-new-keyring`).
pub fn join_session_keyring(id: &str) -> Result<(), String> {
    let name = CString::new(format!("_ses.{id}")).map_err(errs("keyring"))?;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING (1) with a C string name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, 1, name.as_ptr()) };
    // Kernels without keyrings (ENOSYS) or with restrictive quotas are tolerated, as runc does.
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EDQUOT) | Some(libc::EACCES)
        ) {
            return Err(format!("join session keyring: {e}"));
        }
    }
    Ok(())
}

/// Installs `f`; a filter that notifies hands its listener to the berth parent over `sync`
/// at once (the parent sends it to the agent and acks), so every notified syscall made after
/// this has an agent to answer it. The process keeps no copy of its own listener.
pub fn install_filter(f: &crate::seccomp::Filter, sync: Option<&Channel>) -> Result<(), String> {
    let Some(listener) = f.install().map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let ch =
        sync.ok_or("linux.seccomp: SCMP_ACT_NOTIFY needs a berth parent to reach the agent")?;
    ch.send_with_fd(&Msg::SeccompListener, listener.as_fd())
        .map_err(errs("linux.seccomp: send the listener to berth"))?;
    drop(listener);
    ch.expect_ack().map(drop)
}

/// The filesystem magic of pipefs (anonymous pipes), from linux/magic.h.
const PIPEFS_MAGIC: i64 = 0x5049_5045;

/// Whether a stdio descriptor of this kind is handed to the process's user (see
/// [`fix_stdio_owner`]): a terminal of the container's own devpts (the pty slave berth made),
/// an anonymous pipe or a socket. Host objects that outlive the container (regular files, the
/// caller's terminal, /dev/null and other devices, named FIFOs) keep their owner.
fn stdio_is_ours(
    mode: u32,
    dev: u64,
    container_pts_dev: Option<u64>,
    fs_magic: Option<i64>,
) -> bool {
    match mode & libc::S_IFMT {
        libc::S_IFCHR => Some(dev) == container_pts_dev,
        libc::S_IFSOCK => true,
        libc::S_IFIFO => fs_magic == Some(PIPEFS_MAGIC),
        _ => false,
    }
}

/// Gives the process's stdio to its user, keeping the group, as runc's fixStdioPermissions
/// does, so a non-root process can use its terminal and reopen `/dev/stdout`: the pty slave
/// then belongs to the process's uid with devpts's group (`gid=5`, tty). Unlike runc, only
/// descriptors that live and die with the container are changed ([`stdio_is_ours`]): runc also
/// chowns a caller's regular file or host terminal, which hands that host object to a host uid
/// for good. Failures (EINVAL: group not mapped; EPERM: owner not mapped; EROFS) are ignored.
fn fix_stdio_owner(uid: u32) {
    use std::os::unix::fs::MetadataExt;
    let pts_dev = std::fs::metadata("/dev/pts").ok().map(|m| m.dev());
    for fd in 0..3 {
        // SAFETY: fstat into a zeroed stat buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_uid == uid {
            continue;
        }
        // SAFETY: fstatfs into a zeroed statfs buffer.
        let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
        let magic = (unsafe { libc::fstatfs(fd, &mut sfs) } == 0).then_some(sfs.f_type as i64);
        if !stdio_is_ours(st.st_mode, st.st_dev, pts_dev, magic) {
            continue;
        }
        // SAFETY: fchown on one of our stdio descriptors with plain integer ids.
        let _ = unsafe { libc::fchown(fd, uid, st.st_gid) };
    }
}

/// Applies `process` to the calling process (which is already inside the container's
/// namespaces and root) and returns what to exec.
pub fn prepare_process(process: &Process, settings: &ProcessSettings) -> Result<Prepared, String> {
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    let seccomp = match settings.seccomp {
        Some(p) => Some(crate::seccomp::compile(p).map_err(|e| e.to_string())?),
        None => None,
    };
    if process.terminal().unwrap_or(false) {
        let sock = settings
            .console_socket
            .ok_or("process.terminal is true but no --console-socket was given")?;
        let (master, slave, name) =
            crate::console::open_pty().map_err(|e| format!("process.terminal: {e}"))?;
        // process.consoleSize, applied only when both sides are set (runc's rule).
        if let Some(sz) = process
            .console_size()
            .filter(|s| s.height() > 0 && s.width() > 0)
        {
            crate::console::set_size(slave.as_raw_fd(), sz.height() as u16, sz.width() as u16)
                .map_err(errs("process.consoleSize"))?;
        }
        crate::console::send_fd(sock.as_raw_fd(), master.as_raw_fd(), &name)
            .map_err(errs("--console-socket: send pty"))?;
        crate::console::make_controlling(&slave)
            .map_err(errs("process.terminal: make controlling terminal"))?;
    }

    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            format!("process.oomScoreAdj: failed to update /proc/self/oom_score_adj: {e}")
        })?;
    }
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        crate::rlimits::apply(i, r)?;
    }

    let user = process.user();
    let mut env = process.env().clone().unwrap_or_default();
    crate::process::validate_env(&env)?;
    if settings.listen_fds > 0 {
        env.push(format!("LISTEN_FDS={}", settings.listen_fds));
        env.push("LISTEN_PID=1".to_string());
    }
    let env = crate::process::final_env(&env, user.uid());
    let args = process.args().clone().unwrap_or_default();
    let exe = crate::process::find_executable(&args[0], &env)?;

    // Without noNewPrivileges the kernel requires CAP_SYS_ADMIN to install a filter, which the
    // capability and user switch below may drop: install it now, while still privileged (runc
    // does the same). The profile then also covers the remaining setup syscalls.
    let seccomp = match seccomp {
        Some(f) if !no_new_privs => {
            install_filter(&f, settings.sync)?;
            None
        }
        late => late,
    };
    let caps = CapSets::from_spec(process.capabilities().as_ref());
    capabilities::drop_bounding(caps.bounding).map_err(errs("process.capabilities.bounding"))?;
    let cwd = process.cwd();
    let chdir_early = nix::unistd::chdir(cwd.as_path());
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    fix_stdio_owner(user.uid());
    crate::process::switch_user(
        user.uid(),
        user.gid(),
        user.additional_gids().as_deref().unwrap_or(&[]),
        setgroups_allowed,
    )?;
    capabilities::set_eip(caps.effective, caps.permitted, caps.inheritable)
        .map_err(errs("process.capabilities"))?;
    capabilities::set_ambient(caps.ambient).map_err(errs("process.capabilities.ambient"))?;
    if let Some(mask) = user.umask() {
        // SAFETY: see above.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    if chdir_early.is_err() {
        nix::unistd::chdir(cwd.as_path())
            .map_err(|e| format!("process.cwd: chdir to {}: {e}", cwd.display()))?;
    }
    // The working directory must lie inside the container's root (runc CVE-2024-21626).
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(format!(
                "process.cwd: {} is outside the container's root",
                cwd.display()
            ))
        }
    }
    if no_new_privs {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
            return Err(format!(
                "process.noNewPrivileges: {}",
                std::io::Error::last_os_error()
            ));
        }
    }

    // Nothing but stdio and the preserved descriptors may reach the user's program.
    let first = 3 + settings.preserve_fds;
    crate::sys::cloexec_from(first).map_err(errs("close inherited descriptors"))?;
    for fd in 3..first {
        let _ = crate::sys::set_cloexec(fd as RawFd, false);
    }

    let path = CString::new(exe.as_os_str().as_encoded_bytes()).map_err(errs("process.args[0]"))?;
    let argv = crate::process::cstrings(&args, "process.args")?;
    let envp = crate::process::cstrings(&env, "process.env")?;
    // A notifying filter goes on while the berth parent still listens on the sync channel
    // (as runc installs every filter before its init reports ready); others wait for the
    // caller to install them just before execve.
    let seccomp = match seccomp {
        Some(f) if f.notifies() => {
            install_filter(&f, settings.sync)?;
            None
        }
        late => late,
    };
    Ok(Prepared {
        path,
        argv,
        envp,
        seccomp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_container_owned_stdio_is_chowned() {
        let pts = Some(42);
        assert!(
            stdio_is_ours(libc::S_IFCHR | 0o620, 42, pts, None),
            "our pty slave"
        );
        assert!(
            !stdio_is_ours(libc::S_IFCHR | 0o620, 7, pts, None),
            "a host terminal"
        );
        assert!(
            !stdio_is_ours(libc::S_IFCHR | 0o666, 5, pts, None),
            "/dev/null"
        );
        assert!(
            stdio_is_ours(libc::S_IFIFO | 0o600, 13, pts, Some(PIPEFS_MAGIC)),
            "a pipe"
        );
        assert!(
            !stdio_is_ours(libc::S_IFIFO | 0o600, 13, pts, Some(0xEF53)),
            "a named FIFO"
        );
        assert!(
            stdio_is_ours(libc::S_IFSOCK | 0o777, 9, pts, None),
            "a socket"
        );
        assert!(
            !stdio_is_ours(libc::S_IFREG | 0o644, 3, pts, None),
            "a host file"
        );
        assert!(
            !stdio_is_ours(libc::S_IFCHR | 0o620, 42, None, None),
            "no devpts"
        );
    }
}
