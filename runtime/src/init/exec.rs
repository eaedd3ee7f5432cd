//! The child side of `exec`: join the running container's cgroups and namespaces, apply the
//! process settings and exec. Never returns.

use super::exit;
use super::setup::{prepare_process, ProcessSettings};
use super::sync::{Channel, Msg};
use crate::cgroups::Placement;
use crate::namespaces::NsKind;
use oci_spec::runtime::Process;
use std::os::fd::{AsFd, OwnedFd};

/// The message for a container that stopped while `exec` was joining it.
pub const NOT_RUNNING: &str = "container not running";

/// What the exec child needs (computed by the parent before fork).
pub struct ExecConfig {
    /// The process to run.
    pub process: Process,
    /// Host PID of the container's init, whose namespaces are joined.
    pub init_pid: i32,
    /// The container's cgroups.
    pub cgroup: Placement,
    /// Set in the child when it was cloned straight into the cgroup2 directory.
    pub in_unified_cgroup: bool,
    /// Connected console socket, for `--tty`.
    pub console_socket: Option<OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: i32,
    /// The container's `linux.seccomp`, applied to the new process too.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

/// Runs in the forked child. Never returns.
pub fn exec_stage1(cfg: &ExecConfig, ch: &Channel) -> ! {
    if let Err(e) = run(cfg, ch) {
        let _ = ch.send(&Msg::Error(e));
    }
    exit(1)
}

fn run(cfg: &ExecConfig, ch: &Channel) -> Result<(), String> {
    // Non-dumpable until exec, like the init (CVE-2019-5736 class).
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    cfg.cgroup
        .join(0, cfg.in_unified_cgroup)
        .map_err(|e| e.to_string())?;
    // A container without a mount namespace of its own is chrooted: take the init's root
    // (opened now, before anything is joined) to chroot into after joining the namespaces.
    // A container that stops meanwhile has no /proc/PID any more: it is not running.
    let init_root = std::fs::File::open(format!("/proc/{}/root", cfg.init_pid)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            NOT_RUNNING.to_string()
        } else {
            format!("open the container's root: {e}")
        }
    })?;
    // Open every namespace first: after joining the mount namespace, /proc is the container's.
    let mut joined = Vec::new();
    let mut own_mount_ns = false;
    for kind in NsKind::ORDER {
        let theirs = format!("/proc/{}/ns/{}", cfg.init_pid, kind.proc_name());
        let mine = format!("/proc/self/ns/{}", kind.proc_name());
        let (Ok(a), Ok(b)) = (std::fs::read_link(&theirs), std::fs::read_link(&mine)) else {
            continue;
        };
        if a == b {
            continue;
        }
        own_mount_ns |= kind == NsKind::Mount;
        let f = std::fs::File::open(&theirs).map_err(|e| format!("open {theirs}: {e}"))?;
        joined.push((kind, f));
    }
    for (kind, f) in &joined {
        nix::sched::setns(f.as_fd(), kind.flag())
            .map_err(|e| format!("join {} namespace of the container: {e}", kind.name()))?;
    }
    if joined.iter().any(|(k, _)| matches!(k, NsKind::User)) {
        let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
        let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
    }
    let joined_for_children = joined
        .iter()
        .any(|(k, _)| matches!(k, NsKind::Pid | NsKind::Time));
    drop(joined);
    if !own_mount_ns {
        nix::unistd::fchdir(&init_root)
            .map_err(|e| format!("chdir to the container's root: {e}"))?;
        nix::unistd::chroot(".").map_err(|e| format!("chroot to the container's root: {e}"))?;
    }
    drop(init_root);
    // Entering PID and time namespaces takes effect for children: fork once more, unless this
    // process was born in them (the parent pointed its namespaces for children there, see
    // `namespaces::ForChildren`) or the container shares them with the host.
    if joined_for_children {
        fork_into_joined(ch)?;
    }
    let settings = ProcessSettings {
        console_socket: cfg.console_socket.as_ref(),
        preserve_fds: cfg.preserve_fds,
        listen_fds: 0,
        seccomp: cfg.seccomp.as_ref(),
        sync: Some(ch),
    };
    let p = prepare_process(&cfg.process, &settings)?;
    ch.send(&Msg::Ready).map_err(|e| format!("sync: {e}"))?;
    // With noNewPrivileges the seccomp filter goes on as the very last step (runc's order).
    if let Some(f) = &p.seccomp {
        f.install().map_err(|e| e.to_string())?;
    }
    let e = nix::unistd::execve(&p.path, &p.argv, &p.envp).err();
    // runc's wording, Go's lower-case errno text ("exec /x: no such file or directory").
    Err(format!(
        "exec {}: {}",
        p.path.to_string_lossy(),
        e.map(|e| crate::process::errno_text(&std::io::Error::from(e)))
            .unwrap_or_else(|| "failed".into())
    ))
}

/// Forks the process that runs in the PID and time namespaces this one joined (they take
/// effect for children); this one sends its host PID to the parent and exits.
fn fork_into_joined(ch: &Channel) -> Result<(), String> {
    // SAFETY: this process is single-threaded (a fork of the single-threaded CLI).
    // A PID namespace whose init has died refuses new members with ENOMEM: the container
    // stopped between the parent's status check and now.
    match unsafe { nix::unistd::fork() }.map_err(|e| {
        if e == nix::Error::ENOMEM {
            NOT_RUNNING.to_string()
        } else {
            format!("fork: {e}")
        }
    })? {
        nix::unistd::ForkResult::Parent { child } => {
            ch.send(&Msg::Pid(child.as_raw()))
                .map_err(|e| format!("sync: {e}"))?;
            exit(0)
        }
        nix::unistd::ForkResult::Child => Ok(()),
    }
}
