//! start, kill, delete, list: operations on an existing container's state directory.

use super::create::{hook_state, short_socket_path};
use super::state::{ContainerDir, OciState, State, Status};
use super::Error;
use crate::hooks::{self, HookKind};
use nix::sys::signal::{kill as sys_kill, Signal};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::path::Path;

/// Opens, locks and reads a container's state.
pub fn load(root: &Path, id: &str) -> Result<(ContainerDir, State), Error> {
    super::validate_id(id).map_err(|_| Error::NotExist(id.to_string()))?;
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    Ok((dir, state))
}

/// Reads a container's state without taking its lock (for `state` and other read-only callers).
pub fn peek(root: &Path, id: &str) -> Result<(ContainerDir, State), Error> {
    super::validate_id(id).map_err(|_| Error::NotExist(id.to_string()))?;
    let dir = ContainerDir::peek(root, id)?;
    let state = dir.load()?;
    Ok((dir, state))
}

/// Starts the user program of a created container and runs poststart hooks.
/// Returns warnings (failed poststart hooks are reported, not fatal, per the runtime-spec).
pub fn start(dir: &ContainerDir, state: &State) -> Result<Vec<String>, Error> {
    match state.status(&dir.path) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::BadState(
                "cannot start a container that has stopped".into(),
            ))
        }
        Status::Running => {
            return Err(Error::BadState(
                "cannot start an already running container".into(),
            ))
        }
        Status::Paused => {
            return Err(Error::BadState(
                "cannot start a container in the paused state".into(),
            ))
        }
        Status::Creating => {
            return Err(Error::BadState(
                "cannot start a container that is still being created".into(),
            ))
        }
    }
    let sock = dir.exec_socket();
    let (addr, _keep) = short_socket_path(&sock)?;
    let mut conn = std::os::unix::net::UnixStream::connect(&addr)
        .map_err(|e| Error::io(format!("connect {}", sock.display()), e))?;
    // Unlinking marks the container as started for `state`; the connection stays usable.
    let _ = std::fs::remove_file(&sock);
    conn.write_all(b"s")
        .map_err(|e| Error::io("signal container init", e))?;
    crate::trace::mark("start-sent");
    // `start` dies while the init goes on to exec.
    crate::fault::point("before-exec");
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    finish_start(&reply, state)
}

/// Starts a container made with [`super::CreateOptions::start_here`] through its sync channel
/// (the same one-byte protocol as the exec socket); others through their exec socket.
pub fn start_created(created: &mut super::Created) -> Result<Vec<String>, Error> {
    let Some(ch) = created.start_channel.take() else {
        return start(&created.dir, &created.state);
    };
    let fd = ch.raw();
    // SAFETY: `fd` is the channel's open descriptor for the duration of these calls.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::sys::socket::send(fd, b"s", nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
        .map_err(|e| Error::io("signal container init", std::io::Error::from(e)))?;
    crate::trace::mark("start-sent");
    crate::fault::point("before-exec");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // One packet per write of the init; end of file once it has exec'd (close-on-exec).
    while let Ok(n) = nix::unistd::read(b, &mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    drop(ch);
    finish_start(&reply, &created.state)
}

/// The init's answer to `start` ("0", then end of file at exec; "E<message>" on failure), then
/// poststart hooks.
fn finish_start(reply: &[u8], state: &State) -> Result<Vec<String>, Error> {
    match reply.first() {
        Some(b'0') if reply.len() == 1 => {}
        _ => {
            let text = String::from_utf8_lossy(reply);
            let msg = text
                .trim_start_matches('0')
                .trim_start_matches('E')
                .trim()
                .to_string();
            return Err(Error::Init(if msg.is_empty() {
                "container init exited before exec".into()
            } else {
                msg
            }));
        }
    }
    let mut warnings = Vec::new();
    let post = HookKind::Poststart.of(&state.spec);
    if !post.is_empty() {
        if let Err(e) = hooks::run_all(
            HookKind::Poststart,
            &post,
            &hook_state(state, Status::Running),
            Some(&state.bundle),
        ) {
            warnings.push(e);
        }
    }
    Ok(warnings)
}

/// Sends `signal` to the container's init, or with `all` to every process in its cgroup, as
/// runc does: signal 0 is a liveness probe (no signal is sent), `--all` on a stopped container
/// whose cgroup is empty succeeds, and SIGKILL to a paused container thaws it so it dies.
pub fn kill(dir: &ContainerDir, state: &State, signal: i32, all: bool) -> Result<(), Error> {
    let status = state.status(&dir.path);
    let sig = if signal == 0 {
        None
    } else {
        Some(
            Signal::try_from(signal)
                .map_err(|_| Error::BadState(format!("invalid signal {signal}")))?,
        )
    };
    if all && state.cgroup.dirs.is_empty() {
        // Rootless without a delegated cgroup: the processes found through /proc.
        for pid in super::procs::without_cgroup(state.pid) {
            let _ = sys_kill(Pid::from_raw(pid), sig);
        }
        return Ok(());
    }
    if all {
        match sig {
            Some(s) => crate::cgroups::manager::signal_all(&state.cgroup, s)?,
            None => {
                for pid in state.cgroup.pids() {
                    let _ = sys_kill(Pid::from_raw(pid), None);
                }
            }
        }
        return Ok(());
    }
    if status == Status::Stopped {
        return Err(Error::NotRunning);
    }
    sys_kill(Pid::from_raw(state.pid), sig).map_err(signal_error)?;
    if status == Status::Paused && sig == Some(Signal::SIGKILL) {
        // A frozen task only dies once thawed (runc thaws for SIGKILL only).
        let _ = crate::cgroups::manager::thaw(&state.cgroup);
    }
    Ok(())
}

/// runc's wording for a failed kill(2) of the init, Go's lower-case errno text included:
/// callers match "no such process" (cri-o exactly, containerd in any case).
fn signal_error(e: nix::errno::Errno) -> Error {
    Error::BadState(format!(
        "unable to signal init: {}",
        crate::process::errno_text(&std::io::Error::from(e))
    ))
}

/// Waits up to `timeout_ms` for `pid` to exit (not needing to be its parent).
pub fn wait_exit(pid: i32, timeout_ms: i32) -> bool {
    match crate::sys::pidfd_open(pid) {
        Ok(fd) => crate::sys::pidfd_wait(&fd, timeout_ms).unwrap_or(false),
        Err(_) => true,
    }
}

/// Deletes a container: refused while it runs unless `force`, in which case everything in it
/// is killed. Removes its cgroups and state, then runs poststop hooks (failures are warnings).
pub fn delete(dir: ContainerDir, state: &State, force: bool) -> Result<Vec<String>, Error> {
    delete_loaded(dir, state, force)
}

/// `delete --force` of a container whose `create` was killed before it wrote state.json: the
/// cgroups it recorded it was about to make lose their processes and are removed (only those
/// that exist: it may have died before making them), then its directory. Returns false when
/// the container has a state (use [`delete`]) or does not exist.
pub fn delete_incomplete(root: &std::path::Path, id: &str) -> Result<bool, Error> {
    let dir = match ContainerDir::open(root, id) {
        Ok(d) => d,
        Err(Error::NotExist(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    if dir.has_state() {
        return Ok(false);
    }
    let dirs = dir.load_intent();
    let p = crate::cgroups::Placement {
        dirs: dirs.clone(),
        created: dirs.clone(),
        ..Default::default()
    };
    for d in &dirs {
        for pid in std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
        {
            let _ = sys_kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    let _ = p.remove();
    dir.remove()?;
    Ok(true)
}

fn delete_loaded(dir: ContainerDir, state: &State, force: bool) -> Result<Vec<String>, Error> {
    let status = state.status(&dir.path);
    match status {
        Status::Stopped | Status::Created => {}
        Status::Running | Status::Paused | Status::Creating if !force => {
            return Err(Error::BadState(format!(
                "cannot delete container {} that is not stopped: {}",
                state.id,
                status.as_str()
            )));
        }
        _ => {}
    }
    if state.alive() {
        let _ = sys_kill(Pid::from_raw(state.pid), Signal::SIGKILL);
        if status == Status::Paused {
            // A frozen task only dies once thawed.
            let _ = crate::cgroups::manager::thaw(&state.cgroup);
        }
        wait_exit(state.pid, 10_000);
    }
    crate::trace::mark("delete-killed");
    {
        // Processes left in the cgroup: without a PID namespace the others outlive init, and a
        // create that died half-way may have left its init behind without recording its PID.
        for _ in 0..100 {
            if state.cgroup.pids().is_empty() {
                break;
            }
            let _ = crate::cgroups::manager::signal_all(&state.cgroup, Signal::SIGKILL);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    let mut warnings = Vec::new();
    if let Some(u) = &state.systemd {
        // Stopped after its processes are gone; a scope systemd already removed is fine. If
        // systemd cannot be asked, the delete still goes on (systemd collects an empty
        // transient scope by itself) and says so.
        if let Err(e) = crate::cgroups::systemd::stop_container(u) {
            warnings.push(format!("stop systemd unit {}: {e}", u.unit));
        }
    }
    crate::trace::mark("delete-emptied");
    if let Err(e) = state.cgroup.remove() {
        warnings.push(e.to_string());
    }
    crate::trace::mark("delete-cgroup-removed");
    if let Some(id) = state.host_mount {
        if let Err(e) = crate::rootfs::host::remove(&state.rootfs, id) {
            warnings.push(e);
        }
    }
    dir.remove()?;
    crate::trace::mark("delete-state-removed");
    let post = HookKind::Poststop.of(&state.spec);
    if !post.is_empty() {
        if let Err(e) = hooks::run_all(
            HookKind::Poststop,
            &post,
            &hook_state(state, Status::Stopped),
            Some(&state.bundle),
        ) {
            warnings.push(e);
        }
    }
    Ok(warnings)
}

/// The state of every container under `root`, sorted by id; unreadable entries are skipped.
pub fn list(root: &Path) -> Result<Vec<OciState>, Error> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(format!("read {}", root.display()), e)),
    };
    for entry in entries.flatten() {
        let path = entry.path().join("state.json");
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let Ok(state) = serde_json::from_slice::<State>(&text) else {
            continue;
        };
        // No lock is taken for listing: state.json is replaced atomically.
        let status = state.status(&entry.path());
        let mut oci = state.oci(status);
        // runc's list names the owner of the state directory ("root"); `state` leaves it empty.
        oci.owner = owner_name(&entry.path());
        out.push(oci);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The user name of `dir`'s owner from the host's /etc/passwd, `#UID` when unknown (runc's list).
fn owner_name(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::metadata(dir) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    user_name(md.uid(), &passwd)
}

/// The name of `uid` in passwd text, `#UID` when it is not listed.
fn user_name(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Freezes a running or created container (`pause`); anything else is "container not
/// running", runc's answer (also for one already paused).
pub fn pause(dir: &ContainerDir, state: &State) -> Result<(), Error> {
    match state.status(&dir.path) {
        Status::Running | Status::Created => Ok(crate::cgroups::manager::freeze(&state.cgroup)?),
        _ => Err(Error::NotRunning),
    }
}

/// Thaws a paused container (`resume`); anything else is "container not paused" (runc).
pub fn resume(dir: &ContainerDir, state: &State) -> Result<(), Error> {
    match state.status(&dir.path) {
        Status::Paused => Ok(crate::cgroups::manager::thaw(&state.cgroup)?),
        _ => Err(Error::BadState("container not paused".into())),
    }
}

/// Applies new resource limits to a created, running or paused container and records them.
pub fn update(
    dir: &ContainerDir,
    state: &mut State,
    res: &oci_spec::runtime::LinuxResources,
) -> Result<(), Error> {
    if state.status(&dir.path) == Status::Stopped {
        return Err(Error::NotRunning);
    }
    let res = &swap_follows_unlimited_memory(res);
    if let Some(u) = &state.systemd {
        let v1 = crate::cgroups::manager::is_v1(&state.cgroup);
        crate::cgroups::systemd::update_container(u, res, v1)?;
    }
    crate::cgroups::manager::apply(&state.cgroup, res)?;
    let merged = merge_resources(
        state
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone()),
        res,
    );
    let mut linux = state.spec.linux().clone().unwrap_or_default();
    linux.set_resources(Some(merged));
    state.spec.set_linux(Some(linux));
    dir.save(state)
}

/// runc's rule for `update --memory -1` without `--memory-swap`: the swap limit becomes
/// unlimited too (memory+swap can never be below memory, so a kept swap limit would make the
/// kernel refuse the new memory limit).
fn swap_follows_unlimited_memory(
    res: &oci_spec::runtime::LinuxResources,
) -> oci_spec::runtime::LinuxResources {
    let mut out = res.clone();
    if let Some(m) = res.memory() {
        if m.limit() == Some(-1) && m.swap().is_none() {
            let mut m = *m;
            m.set_swap(Some(-1));
            out.set_memory(Some(m));
        }
    }
    out
}

/// Overlays the fields set in `new` on `old` (JSON merge, one level per resource kind).
fn merge_resources(
    old: Option<oci_spec::runtime::LinuxResources>,
    new: &oci_spec::runtime::LinuxResources,
) -> oci_spec::runtime::LinuxResources {
    let Some(old) = old else { return new.clone() };
    let mut a = serde_json::to_value(&old).unwrap_or_default();
    let b = serde_json::to_value(new).unwrap_or_default();
    if let (Some(ao), Some(bo)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in bo {
            match (ao.get_mut(k), v) {
                (Some(serde_json::Value::Object(x)), serde_json::Value::Object(y)) => {
                    for (kk, vv) in y {
                        x.insert(kk.clone(), vv.clone());
                    }
                }
                _ => {
                    ao.insert(k.clone(), v.clone());
                }
            }
        }
    }
    serde_json::from_value(a).unwrap_or(old)
}

#[cfg(test)]
mod kill_tests {
    use super::*;

    #[test]
    fn owner_names_like_runc() {
        let p = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n";
        assert_eq!(user_name(0, p), "root");
        assert_eq!(user_name(1000, p), "u");
        assert_eq!(user_name(7, p), "#7");
    }

    #[test]
    fn signal_errors_use_gos_wording() {
        assert_eq!(
            signal_error(nix::errno::Errno::ESRCH).to_string(),
            "unable to signal init: no such process"
        );
    }
}
