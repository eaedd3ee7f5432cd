//! What happens between fork and execve, as an ordered list of steps. Runs in the forked child
//! of `berth create` (single-threaded); it never returns: it execs the user's program or exits.
//!
//! Stage 1 (host PID namespace): join the cgroups, join listed namespaces (user first), create a
//! user namespace and have the parent write its maps, create the other namespaces; if a PID or
//! time namespace applies, fork so the child is born inside it. Stage 2 (the container's init):
//! build the rootfs, let the parent run createRuntime hooks, run createContainer hooks,
//! pivot_root, mask paths, apply process settings, report Ready, wait on the exec socket for
//! `start`, run startContainer hooks and exec.

pub mod exec;
pub mod setup;
pub mod sync;

use crate::cgroups::Placement;
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, NsConfig, NsKind};
use crate::rootfs::apply::{self, CgroupMountSource, MountContext};
use crate::rootfs::plan::{DeviceNode, MountStep};
use oci_spec::runtime::Spec;
use setup::{join_session_keyring, prepare_process, ProcessSettings};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use sync::{Channel, Msg};

/// Everything the child needs, computed by the parent before fork (so pure errors surface early).
pub struct InitConfig {
    /// The spec.
    pub spec: Spec,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Mount steps.
    pub steps: Vec<MountStep>,
    /// Whether to populate /dev.
    pub setup_dev: bool,
    /// Device nodes.
    pub devices: Vec<DeviceNode>,
    /// Namespaces in config order.
    pub namespaces: Vec<NsConfig>,
    /// Cgroups to join.
    pub cgroup: Placement,
    /// Cgroup hierarchies with the container's directory, for cgroup mounts.
    pub cgroup_mounts: Vec<CgroupMountSource>,
    /// Connected console socket, when `--console-socket` was given.
    pub console_socket: Option<OwnedFd>,
    /// Listening exec socket the init waits on.
    pub exec_listener: Option<OwnedFd>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// Descriptors 3..3+N stay open in the container (`--preserve-fds` plus LISTEN_FDS).
    pub preserve_fds: i32,
    /// LISTEN_FDS count inherited from the caller (socket activation).
    pub listen_fds: i32,
    /// Container id (for the session keyring name).
    pub id: String,
    /// Set in the child when it was cloned straight into its cgroup2 directory.
    pub in_unified_cgroup: bool,
    /// Set in the child to the new namespaces it was born in (clone3); then stage 1 only joins
    /// its cgroups, unshares what is left (a cgroup namespace) and goes on as the init.
    pub born_with: nix::sched::CloneFlags,
    /// Detached copies of bind sources (by mount index), made by the parent before the
    /// container's user namespace exists, so sources its root cannot reach still work.
    pub bind_sources: Vec<(usize, OwnedFd)>,
}

/// Stage 1: runs in the forked child. Never returns.
pub fn stage1(cfg: &InitConfig, ch: &Channel) -> ! {
    match stage1_inner(cfg, ch) {
        Ok(Some(())) => stage2(cfg, ch),
        Ok(None) => exit(0),
        Err(e) => fail(ch, e),
    }
}

/// Ends a forked runtime process without running the parent's atexit handlers or destructors.
pub(crate) fn exit(code: i32) -> ! {
    // SAFETY: _exit skips atexit handlers and destructors that belong to the parent's state.
    unsafe { libc::_exit(code) }
}

fn fail(ch: &Channel, msg: String) -> ! {
    let _ = ch.send(&Msg::Error(msg));
    exit(1)
}

/// Error mapper that prefixes what was being done.
pub(crate) fn errs<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Returns Some(()) when this process continues as the container init, None when it forked it.
fn stage1_inner(cfg: &InitConfig, ch: &Channel) -> Result<Option<()>, String> {
    // Until it execs the user's program this process is the berth binary: make it non-dumpable
    // so nothing in the container can open /proc/PID/exe and overwrite the host binary
    // (runc CVE-2019-5736). execve of the user's program resets the flag.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    cfg.cgroup
        .join(0, cfg.in_unified_cgroup)
        .map_err(|e| e.to_string())?;
    crate::trace::mark("stage1-cgroup-joined");
    if !cfg.born_with.is_empty() {
        let rest = cfg
            .namespaces
            .iter()
            .filter(|n| n.path.is_none())
            .fold(nix::sched::CloneFlags::empty(), |f, n| f | n.kind.flag())
            - cfg.born_with;
        namespaces::unshare(rest).map_err(errs("create namespaces"))?;
        crate::trace::mark("stage1-unshared");
        return Ok(Some(()));
    }

    // Join existing namespaces, user first, mount last.
    for kind in NsKind::ORDER {
        if let Some(ns) = cfg
            .namespaces
            .iter()
            .find(|n| n.kind == kind && n.path.is_some())
        {
            let p = ns.path.as_deref().unwrap_or(std::path::Path::new(""));
            namespaces::join(kind, p)
                .map_err(|e| format!("join {} namespace {}: {e}", kind.name(), p.display()))?;
        }
    }
    let new: Vec<NsKind> = cfg
        .namespaces
        .iter()
        .filter(|n| n.path.is_none())
        .map(|n| n.kind)
        .collect();
    if new.contains(&NsKind::User) {
        // An unprivileged parent can only open /proc/PID/uid_map of a dumpable process: be
        // dumpable while it writes the maps (nothing of the container exists yet to see this
        // process), then non-dumpable again.
        // (Also as root of a user namespace: this process's proc files then belong to an id
        // the parent cannot act as while it is non-dumpable.)
        let rootless = crate::rootless::active();
        namespaces::unshare(NsKind::User.flag()).map_err(errs("create user namespace"))?;
        if rootless {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        }
        ch.send(&Msg::MapIds).map_err(errs("sync"))?;
        let acked = ch.expect_ack();
        if rootless {
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        }
        acked?;
        crate::trace::mark("stage1-userns-mapped");
        // Become the namespace's root when it is mapped (the usual case).
        let _ = nix::unistd::setresgid(0.into(), 0.into(), 0.into());
        let _ = nix::unistd::setresuid(0.into(), 0.into(), 0.into());
    }
    let mut clone = nix::sched::CloneFlags::empty();
    for k in &new {
        if *k != NsKind::User {
            clone |= k.flag();
        }
    }
    tracing::debug!("stage1: joined cgroup and namespaces");
    namespaces::unshare(clone).map_err(errs("create namespaces"))?;
    tracing::debug!("stage1: unshared");
    crate::trace::mark("stage1-unshared");
    if new.contains(&NsKind::Time) {
        write_time_offsets(&cfg.spec)?;
    }
    let needs_fork = cfg
        .namespaces
        .iter()
        .any(|n| matches!(n.kind, NsKind::Pid | NsKind::Time));
    if !needs_fork {
        ch.send(&Msg::Pid(std::process::id() as i32))
            .map_err(errs("sync"))?;
        return Ok(Some(()));
    }
    // SAFETY: this process is single-threaded (a fork of the single-threaded CLI).
    match unsafe { nix::unistd::fork() }.map_err(errs("fork container init"))? {
        nix::unistd::ForkResult::Child => {
            crate::trace::mark("init-forked");
            Ok(Some(()))
        }
        nix::unistd::ForkResult::Parent { child } => {
            ch.send(&Msg::Pid(child.as_raw())).map_err(errs("sync"))?;
            Ok(None)
        }
    }
}

fn write_time_offsets(spec: &Spec) -> Result<(), String> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text)
        .map_err(errs("linux.timeOffsets: write /proc/self/timens_offsets"))
}

/// Stage 2: the container's init. Never returns.
fn stage2(cfg: &InitConfig, ch: &Channel) -> ! {
    match stage2_inner(cfg, ch) {
        Ok(exec) => exec_program(cfg, exec, ch),
        Err(e) => fail(ch, e),
    }
}

/// What is left to do after `start`.
struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    state_json: Option<String>,
    seccomp: Option<crate::seccomp::Filter>,
}

fn stage2_inner(cfg: &InitConfig, ch: &Channel) -> Result<Exec, String> {
    let spec = &cfg.spec;
    let process = spec.process().as_ref().ok_or("process: missing")?;
    let linux = spec.linux().as_ref();
    let has_new = |k: NsKind| {
        cfg.namespaces
            .iter()
            .any(|n| n.kind == k && n.path.is_none())
    };
    // Also when berth itself runs in a user namespace (podman rootless): no mknod there.
    let in_userns = cfg.namespaces.iter().any(|n| n.kind == NsKind::User)
        || crate::rootless::in_user_namespace();

    // SAFETY: umask only changes this process's file creation mask.
    unsafe { libc::umask(0o022) };
    let propagation = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(crate::rootfs::plan::propagation_flag);
    // The rootfs is built in the container's mount namespace, new or joined by path (as runc
    // does); with none, in the runtime's below a private bind of the rootfs (rootfs/host.rs),
    // or, when nothing is to be mounted, not at all: the container is only chrooted.
    let mount_ns = cfg.namespaces.iter().any(|n| n.kind == NsKind::Mount);
    let host_mounts = !mount_ns && crate::rootfs::host::needed(spec);
    let mut root_fd = None;
    if mount_ns || host_mounts {
        let root = if mount_ns {
            apply::prepare(&cfg.rootfs, propagation)
        } else {
            crate::rootfs::host::prepare(&cfg.rootfs)
        }
        .map_err(|e| e.to_string())?;
        let cx = MountContext {
            rootfs: &cfg.rootfs,
            in_userns,
            cgroupns: has_new(NsKind::Cgroup),
            cgroups: &cfg.cgroup_mounts,
            mount_label: linux.and_then(|l| l.mount_label().as_deref()),
            bind_sources: &cfg.bind_sources,
        };
        tracing::debug!("init: rootfs prepared");
        apply::mount_all(&cx, &root, &cfg.steps).map_err(|e| e.to_string())?;
        tracing::debug!("init: mounted");
        crate::trace::mark("init-mounted");
        if cfg.setup_dev {
            // SAFETY: see above; device modes are exact.
            unsafe { libc::umask(0) };
            apply::setup_dev(&root, &cfg.devices, in_userns).map_err(|e| e.to_string())?;
            // SAFETY: see above.
            unsafe { libc::umask(0o022) };
        }
        apply::readonly_after_setup(&root, &cfg.steps).map_err(|e| e.to_string())?;
        apply::ensure_dir(&root, process.cwd()).map_err(|e| e.to_string())?;
        root_fd = Some(root);
    }

    tracing::debug!("init: devices done");
    crate::trace::mark("init-dev");
    ch.send(&Msg::RunHooks).map_err(errs("sync"))?;
    let state_json = ch.expect_ack()?;
    crate::trace::mark("init-hooks-acked");
    let create_container = HookKind::CreateContainer.of(spec);
    if !create_container.is_empty() {
        hooks::run_all(
            HookKind::CreateContainer,
            &create_container,
            state_json.as_deref().unwrap_or("{}"),
            Some(&cfg.rootfs),
        )?;
    }

    if mount_ns {
        if cfg.no_pivot {
            apply::move_root(&cfg.rootfs).map_err(|e| e.to_string())?;
        } else {
            apply::pivot(&cfg.rootfs).map_err(|e| e.to_string())?;
        }
        drop(root_fd);
        tracing::debug!("init: pivoted");
        crate::trace::mark("init-pivoted");
        if let Some(p) = propagation {
            apply::set_root_propagation(p).map_err(|e| e.to_string())?;
        }
    } else {
        apply::chroot_into(&cfg.rootfs, process.cwd()).map_err(|e| e.to_string())?;
        drop(root_fd);
    }

    if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (k, v) in sysctl {
            let path = format!("/proc/sys/{}", k.replace('.', "/"));
            std::fs::write(&path, v).map_err(|e| format!("linux.sysctl.{k}: write {path}: {e}"))?;
        }
    }
    if mount_ns || host_mounts {
        if let Some(paths) = linux.and_then(|l| l.readonly_paths().as_ref()) {
            apply::readonly_paths(paths).map_err(|e| e.to_string())?;
        }
        if let Some(paths) = linux.and_then(|l| l.masked_paths().as_ref()) {
            apply::mask_paths(paths).map_err(|e| e.to_string())?;
        }
        if spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
        {
            apply::readonly_root().map_err(|e| e.to_string())?;
        }
    }

    tracing::debug!("init: paths masked");
    crate::trace::mark("init-masked");
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(errs("hostname"))?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|h| !h.is_empty()) {
        let c = CString::new(d.as_bytes()).map_err(errs("domainname"))?;
        // SAFETY: valid buffer and length.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } < 0 {
            return Err(format!("domainname: {}", std::io::Error::last_os_error()));
        }
    }

    if !cfg.no_new_keyring {
        join_session_keyring(&cfg.id)?;
    }
    let settings = ProcessSettings {
        console_socket: cfg.console_socket.as_ref(),
        preserve_fds: cfg.preserve_fds,
        listen_fds: cfg.listen_fds,
        seccomp: linux.and_then(|l| l.seccomp().as_ref()),
        sync: Some(ch),
    };
    let prepared = prepare_process(process, &settings)?;
    crate::trace::mark("init-process-prepared");
    ch.send(&Msg::Ready).map_err(errs("sync"))?;
    Ok(Exec {
        path: prepared.path,
        argv: prepared.argv,
        envp: prepared.envp,
        state_json,
        seccomp: prepared.seccomp,
    })
}

/// Blocks until `start` (on the exec socket, or on the sync channel when the process that
/// created the container starts it too), runs startContainer hooks, execs.
fn exec_program(cfg: &InitConfig, exec: Exec, ch: &Channel) -> ! {
    let conn = match &cfg.exec_listener {
        Some(listener) => loop {
            match nix::sys::socket::accept4(
                listener.as_raw_fd(),
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            ) {
                Ok(fd) => break fd,
                Err(nix::Error::EINTR) => continue,
                Err(_) => exit(1),
            }
        },
        // The same one-byte protocol over the channel's packets; it closes on exec too.
        None => ch.raw(),
    };
    let mut b = [0u8; 1];
    if !matches!(nix::unistd::read(unsafe_borrow(conn), &mut b), Ok(1)) {
        // Closed without the start byte: the creator is gone (nobody starts this container).
        exit(1);
    }
    crate::trace::mark("init-start-received");
    // With noNewPrivileges the seccomp filter goes on now: startContainer hooks run under it,
    // as the spec and runc order them; only a write and the execve follow (runc's order).
    if let Some(Err(e)) = exec.seccomp.as_ref().map(|f| f.install()) {
        let _ = nix::unistd::write(unsafe_borrow(conn), format!("E{e}\n").as_bytes());
        exit(1);
    }
    let start_hooks = HookKind::StartContainer.of(&cfg.spec);
    if !start_hooks.is_empty() {
        if let Err(e) = hooks::run_all(
            HookKind::StartContainer,
            &start_hooks,
            exec.state_json.as_deref().unwrap_or("{}"),
            None,
        ) {
            let _ = nix::unistd::write(unsafe_borrow(conn), format!("E{e}").as_bytes());
            exit(1);
        }
    }
    // Tell `start` we are about to exec; it returns once the socket closes on exec.
    let _ = nix::unistd::write(unsafe_borrow(conn), b"0");
    crate::trace::mark("init-execve");
    let e = nix::unistd::execve(&exec.path, &exec.argv, &exec.envp).err();
    let msg = format!(
        "exec {:?}: {}\n",
        exec.path,
        e.map(|e| e.desc()).unwrap_or("failed")
    );
    let _ = nix::unistd::write(unsafe_borrow(conn), format!("E{msg}").as_bytes());
    exit(127)
}

fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: `fd` stays open until the process execs or exits.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}
