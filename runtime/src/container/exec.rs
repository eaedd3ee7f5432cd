//! `exec`: run another process inside a running container.

use super::state::Status;
use super::{load, Error};
use crate::cgroups::Placement;
use crate::init::exec::{exec_stage1, ExecConfig};
use crate::init::sync::{Channel, Msg};
use oci_spec::runtime::Process;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

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
    /// `--cgroup`: sub-cgroups to run the process in, from [`parse_sub_cgroups`] (empty: the
    /// container's own cgroups).
    pub sub_cgroups: BTreeMap<String, String>,
}

/// Parses `--cgroup` values as runc does: `PATH` alone (one value only) applies to every
/// hierarchy, `CTRL[,CTRL...]:PATH` to the named v1 controllers. The result maps a controller
/// (or "" for all) to the sub-path.
pub fn parse_sub_cgroups(args: &[String]) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for a in args {
        let parts: Vec<&str> = a.splitn(3, ':').collect();
        match parts.as_slice() {
            [path] => {
                if args.len() != 1 {
                    return Err(Error::BadState(format!(
                        "invalid --cgroup argument: {a} (missing <controller>: prefix)"
                    )));
                }
                out.insert(String::new(), path.to_string());
            }
            [ctrls, path] => {
                for c in ctrls.split(',') {
                    out.insert(c.to_string(), path.to_string());
                }
            }
            _ => return Err(Error::BadState(format!("invalid --cgroup argument: {a}"))),
        }
    }
    Ok(out)
}

/// `base` joined with `sub` (cleaned lexically), which must stay at or below `base`, compared
/// by path components (runc compares strings, so `../ctr1x` escapes into a sibling there).
fn sub_dir(base: &Path, sub: &str) -> Result<PathBuf, Error> {
    let mut out = base.to_path_buf();
    let depth = base.components().count();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if out.components().count() <= depth {
                    return Err(Error::BadState(format!("{sub} is not a sub cgroup path")));
                }
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// The container's cgroups with the `--cgroup` sub-paths applied (pure; see
/// [`parse_sub_cgroups`]). A named controller the container has no directory for is an error.
pub fn sub_placement(
    base: &Placement,
    subs: &BTreeMap<String, String>,
) -> Result<Placement, Error> {
    if subs.is_empty() {
        return Ok(base.clone());
    }
    let mut p = base.clone();
    p.created.clear();
    if let Some(all) = subs.get("") {
        p.dirs = base
            .dirs
            .iter()
            .map(|d| sub_dir(d, all))
            .collect::<Result<_, _>>()?;
        p.unified = base.unified.as_ref().map(|d| sub_dir(d, all)).transpose()?;
        for d in p.v1.values_mut() {
            *d = sub_dir(d, all)?;
        }
        return Ok(p);
    }
    for (ctrl, sub) in subs {
        let Some(dir) = base.v1.get(ctrl) else {
            return Err(Error::BadState(format!(
                "unknown controller {ctrl} in SubCgroupPaths"
            )));
        };
        let new = sub_dir(dir, sub)?;
        for (i, d) in base.dirs.iter().enumerate() {
            if d == dir {
                p.dirs[i] = new.clone();
            }
        }
        p.v1.insert(ctrl.clone(), new);
    }
    Ok(p)
}

/// Whether a container in `status` takes an exec, with runc's messages. runc allows exec into
/// a created (not yet started) container: its namespaces exist.
pub fn check_status(status: Status, ignore_paused: bool) -> Result<(), Error> {
    match status {
        Status::Running | Status::Created => Ok(()),
        Status::Paused if ignore_paused => Ok(()),
        Status::Paused => Err(Error::BadState(
            "cannot exec in a paused container (use --ignore-paused to override)".into(),
        )),
        Status::Stopped => Err(Error::BadState("cannot exec in a stopped container".into())),
        Status::Creating => Err(Error::BadState(
            "cannot exec in a container that is still being created".into(),
        )),
    }
}

/// Starts the process in the container and returns its host PID once it has exec'd.
/// The caller waits for it (as a subreaper) or leaves it running (detached).
pub fn exec(opts: &ExecOptions) -> Result<i32, Error> {
    let (dir, state) = load(&opts.root, &opts.id)?;
    check_status(state.status(&dir.path), opts.ignore_paused)?;
    drop(dir);
    match opts.process.args() {
        Some(a) if !a.is_empty() => {}
        _ => return Err(Error::BadState("args must not be empty".into())),
    }
    let cgroup = sub_placement(&state.cgroup, &opts.sub_cgroups)?;
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
        cgroup,
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
    // The child is born in the container's PID and time namespaces where this process may
    // point its namespaces for children there (root; rootless berth may not): it then is the
    // exec process itself, with no second fork (docs/design.md, "Runtime performance").
    let born_in = crate::namespaces::ForChildren::enter(state.pid);
    let is_exec_process = born_in.is_some();
    // Born in the container's PID namespace, the child is visible to the container's processes
    // from its first instruction: it must be non-dumpable from birth (its /proc/PID/exe is the
    // berth binary, CVE-2019-5736 class), not only once it runs. The flag is inherited across
    // fork; this process gets its own value back right after.
    // SAFETY: prctl with integer arguments.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    if is_exec_process {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    // SAFETY: the CLI is single-threaded; the child runs exec_stage1, which never returns.
    let forked = unsafe { super::fork_for(&cfg.cgroup, nix::sched::CloneFlags::empty()) };
    if is_exec_process && dumpable > 0 && !matches!(forked, Ok(ref f) if f.pid == 0) {
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, dumpable as libc::c_ulong, 0, 0, 0) };
    }
    let child = match forked {
        Ok(f) if f.pid == 0 => {
            if let Some(b) = born_in {
                b.close_in_child();
            }
            drop(parent_ch);
            cfg.in_unified_cgroup = f.in_unified;
            exec_stage1(&cfg, &child_ch)
        }
        Ok(f) => f.pid,
        // A PID namespace whose init has died refuses new members with ENOMEM.
        Err(e) if is_exec_process && e.raw_os_error() == Some(libc::ENOMEM) => {
            return Err(Error::NotRunning)
        }
        Err(e) => return Err(Error::io("fork", e)),
    };
    if let Some(b) = born_in {
        if let Err(e) = b.restore() {
            sys_kill_and_reap(child);
            return Err(Error::io("restore the namespaces for children", e));
        }
    }
    drop(child_ch);
    drop(cfg);
    let mut pid = if is_exec_process { child } else { 0 };
    let mut ready = false;
    let result = loop {
        match parent_ch.recv() {
            Ok(Some(Msg::Pid(p))) => pid = p,
            Ok(Some(Msg::Ready)) => ready = true,
            // The exec process's pid comes from its parent, which forks it: the listener (sent
            // by the exec process itself) may overtake it.
            Ok(Some(Msg::SeccompListener)) => {
                if pid == 0 {
                    match parent_ch.recv() {
                        Ok(Some(Msg::Pid(p))) => pid = p,
                        Ok(Some(Msg::Error(e))) => break Err(Error::Init(e)),
                        _ => break Err(Error::Init("exec process exited during setup".into())),
                    }
                }
                let mut json = serde_json::to_value(state.oci(Status::Running)).unwrap_or_default();
                json["pid"] = serde_json::json!(state.pid);
                if let Err(e) =
                    crate::seccomp::agent::from_channel(&state.spec, &parent_ch, &json, pid)
                {
                    break Err(Error::Init(e.to_string()));
                }
                if let Err(e) = parent_ch.send(&Msg::Ack { state: None }) {
                    break Err(Error::io("sync", e));
                }
            }
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
    if is_exec_process {
        // The child is the exec process: the caller waits for it, unless it failed.
        if result.is_err() {
            sys_kill_and_reap(child);
        }
        return result;
    }
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

/// Kills and reaps a child that failed during set-up.
fn sys_kill_and_reap(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Placement {
        let mem = PathBuf::from("/sys/fs/cgroup/memory/p/c");
        let cpu = PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/p/c");
        let uni = PathBuf::from("/sys/fs/cgroup/unified/p/c");
        Placement {
            path: "/p/c".into(),
            dirs: vec![mem.clone(), cpu.clone(), uni.clone()],
            created: vec![mem.clone()],
            unified: Some(uni),
            v1: [
                ("memory".to_string(), mem),
                ("cpu".to_string(), cpu.clone()),
                ("cpuacct".to_string(), cpu),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_runc_cgroup_flags() {
        let m = parse_sub_cgroups(&args(&["sub"])).unwrap();
        assert_eq!(m.get(""), Some(&"sub".to_string()));
        let m = parse_sub_cgroups(&args(&["memory:a", "cpu,cpuacct:b"])).unwrap();
        assert_eq!(m["memory"], "a");
        assert_eq!(m["cpu"], "b");
        assert_eq!(m["cpuacct"], "b");
        assert!(parse_sub_cgroups(&args(&["a", "memory:b"]))
            .unwrap_err()
            .to_string()
            .contains("missing <controller>: prefix"));
        assert!(parse_sub_cgroups(&args(&["a:b:c"])).is_err());
    }

    #[test]
    fn sub_paths_stay_below_the_container() {
        let all = parse_sub_cgroups(&args(&["x/y"])).unwrap();
        let p = sub_placement(&base(), &all).unwrap();
        assert_eq!(p.dirs[0], PathBuf::from("/sys/fs/cgroup/memory/p/c/x/y"));
        assert_eq!(
            p.unified,
            Some(PathBuf::from("/sys/fs/cgroup/unified/p/c/x/y"))
        );
        assert!(p.created.is_empty(), "exec never removes cgroups");
        let root = sub_placement(&base(), &parse_sub_cgroups(&args(&["/"])).unwrap()).unwrap();
        assert_eq!(root.dirs, base().dirs);
        for bad in ["..", "../cx", "a/../../b"] {
            let e = sub_placement(&base(), &parse_sub_cgroups(&args(&[bad])).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a sub cgroup path"), "{bad}: {e}");
        }
        assert!(sub_placement(&base(), &parse_sub_cgroups(&args(&["a/../b"])).unwrap()).is_ok());
    }

    #[test]
    fn per_controller_sub_paths() {
        let m = parse_sub_cgroups(&args(&["memory:m"])).unwrap();
        let p = sub_placement(&base(), &m).unwrap();
        assert_eq!(p.dirs[0], PathBuf::from("/sys/fs/cgroup/memory/p/c/m"));
        assert_eq!(p.dirs[1], base().dirs[1]);
        assert_eq!(p.dirs[2], base().dirs[2]);
        let e = sub_placement(&base(), &parse_sub_cgroups(&args(&["whaaat:/"])).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown controller whaaat"), "{e}");
    }
}
