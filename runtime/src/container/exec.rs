//! `exec`: run another process inside a running container.

use super::state::Status;
use super::{load, Error};
use crate::init::exec::{exec_stage1, ExecConfig};
use crate::init::sync::{Channel, Msg};
use oci_spec::runtime::Process;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Options of `exec`.
pub struct ExecOptions {
    /// State root.
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// The process to run (args, env, user, cwd, caps, terminal, ...).
    pub process: Process,
    /// `--console-socket`, needed when `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--ignore-paused`: allow exec into a paused container.
    pub ignore_paused: bool,
}

/// Starts the process in the container and returns its host PID once it has exec'd.
/// The caller waits for it (as a subreaper) or leaves it running (detached).
pub fn exec(opts: &ExecOptions) -> Result<i32, Error> {
    let (dir, state) = load(&opts.root, &opts.id)?;
    match state.status(&dir.path) {
        Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::BadState(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        Status::Created => {
            return Err(Error::BadState(
                "cannot exec in a created container: start it first".into(),
            ))
        }
        _ => return Err(Error::NotRunning),
    }
    drop(dir);
    match opts.process.args() {
        Some(a) if !a.is_empty() => {}
        _ => {
            return Err(Error::BadState(
                "exec: no command given (args are empty)".into(),
            ))
        }
    }
    if !opts.process.terminal().unwrap_or(false) && opts.console_socket.is_some() {
        return Err(Error::BadState(
            "cannot use console socket if berth will not detach or allocate tty".into(),
        ));
    }
    if opts.process.terminal().unwrap_or(false) && opts.console_socket.is_none() {
        return Err(Error::BadState(
            "cannot allocate tty if berth will detach without setting console socket".into(),
        ));
    }
    let console = match &opts.console_socket {
        Some(p) => Some(OwnedFd::from(
            crate::console::connect(p).map_err(|e| Error::io("console socket", e))?,
        )),
        None => None,
    };
    let mut cfg = ExecConfig {
        process: opts.process.clone(),
        init_pid: state.pid,
        cgroup: state.cgroup.clone(),
        in_unified_cgroup: false,
        console_socket: console,
        preserve_fds: opts.preserve_fds as i32,
        seccomp: state
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().clone()),
    };
    let (parent_ch, child_ch) = Channel::pair().map_err(|e| Error::io("socketpair", e))?;
    // SAFETY: the CLI is single-threaded; the child runs exec_stage1, which never returns.
    let child = match unsafe { super::fork_for(&cfg.cgroup) } {
        Ok((0, in_unified)) => {
            drop(parent_ch);
            cfg.in_unified_cgroup = in_unified;
            exec_stage1(&cfg, &child_ch)
        }
        Ok((pid, _)) => pid,
        Err(e) => return Err(Error::io("fork", e)),
    };
    drop(child_ch);
    drop(cfg);
    let mut pid = 0;
    let mut ready = false;
    let result = loop {
        match parent_ch.recv() {
            Ok(Some(Msg::Pid(p))) => pid = p,
            Ok(Some(Msg::Ready)) => ready = true,
            Ok(Some(Msg::Error(e))) if e == crate::init::exec::NOT_RUNNING => {
                break Err(Error::NotRunning)
            }
            Ok(Some(Msg::Error(e))) => break Err(Error::Init(e)),
            Ok(Some(_)) => break Err(Error::Init("unexpected message from exec process".into())),
            // The socket closes on exec (close-on-exec) or when the process dies.
            Ok(None) if ready && pid > 0 => break Ok(pid),
            Ok(None) => break Err(Error::Init("exec process exited during setup".into())),
            Err(e) => break Err(Error::io("read from exec process", e)),
        }
    };
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
    if result.is_err() && pid > 0 {
        // Reap the failed grandchild too (we are its subreaper when the caller waits).
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
    result
}
