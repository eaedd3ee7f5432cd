//! `create`: validate, make the state directory and cgroups, fork the container's first process
//! and serve its requests (uid maps, createRuntime hooks) until it reports Ready.

use super::state::{ContainerDir, State, Status};
use super::Error;
use crate::cgroups::{self, Placement};
use crate::hooks::{self, HookKind};
use crate::init::sync::{Channel, Msg};
use crate::init::{self, InitConfig};
use crate::namespaces::{self, NsKind};
use crate::rootfs::apply::CgroupMountSource;
use crate::rootfs::plan;
use crate::spec;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Options of `create` (and the create half of `run`).
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// State root (`--root`).
    pub root: PathBuf,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--systemd-cgroup`: the container's cgroup is a transient systemd scope.
    pub systemd_cgroup: bool,
    /// `--cgroup-manager=disabled` (crun's option): no cgroup at all, resources ignored.
    pub no_cgroups: bool,
    /// The caller starts the container itself ([`super::start_created`], as `run` does): no
    /// exec socket is made (a new inode: 0.4 ms on this project's ext4); the init waits for
    /// `start` on the sync channel instead.
    pub start_here: bool,
}

/// A created container, not yet started.
pub struct Created {
    /// Its state.
    pub state: State,
    /// Its locked state directory.
    pub dir: ContainerDir,
    /// The sync channel to the waiting init, when the creator starts it ([`CreateOptions::start_here`]).
    pub(crate) start_channel: Option<Channel>,
}

/// Creates a container. On any error, everything made so far is removed again.
pub fn create(opts: &CreateOptions) -> Result<Created, Error> {
    super::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(|e| Error::io(format!("bundle {}", opts.bundle.display()), e))?;
    let spec = spec::load(&bundle)?;
    crate::trace::mark("config-loaded");
    spec::validate(&spec, &bundle)?;
    let steps = plan::plan(&spec, &bundle)?;
    crate::trace::mark("config-validated");
    let rootfs = spec::rootfs_path(&spec, &bundle).unwrap_or_default();
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| Error::io(format!("root.path {}", rootfs.display()), e))?;
    let namespaces = namespaces::from_spec(&spec);
    let configured_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    let (_mode, hierarchies) = if opts.no_cgroups {
        (cgroups::Mode::Unified, Vec::new())
    } else {
        cgroups::detect()?
    };
    crate::trace::mark("cgroups-detected");
    // The systemd driver: the unit and its directories are known now, systemd makes them once
    // the first process exists (see start_systemd_scope).
    let systemd_plan = if opts.systemd_cgroup {
        let rootless = !nix::unistd::geteuid().is_root();
        let p = configured_path.map(|p| p.to_string_lossy().into_owned());
        Some(cgroups::systemd::plan(
            &hierarchies,
            p.as_deref(),
            &opts.id,
            rootless,
        )?)
    } else {
        None
    };
    let cg_path = match &systemd_plan {
        Some((unit, _)) => unit.cgroup.clone(),
        None => cgroups::resolve_path(configured_path, &opts.id)?,
    };
    let console = match &opts.console_socket {
        Some(p) => Some(OwnedFd::from(
            crate::console::connect(p).map_err(|e| Error::io("console socket", e))?,
        )),
        None => None,
    };
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if !terminal && console.is_some() {
        return Err(Error::BadState(
            "cannot use console socket if berth will not detach or allocate tty".into(),
        ));
    }
    if terminal && console.is_none() {
        return Err(Error::BadState(
            "cannot allocate tty if berth will detach without setting console socket".into(),
        ));
    }

    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    crate::fault::point("after-dir");
    crate::trace::mark("state-dir");
    let mut placement = match Placement::compute(&hierarchies, &cg_path) {
        Ok(p) => p,
        Err(e) => {
            let _ = dir.remove();
            return Err(e.into());
        }
    };
    let mut guard = Cleanup {
        dir: Some(dir),
        placement: None,
        pid: 0,
        systemd: None,
        host_mounts: None,
    };
    if systemd_plan.is_none() {
        let missing = placement.missing_dirs();
        if let Some(d) = guard.dir.as_ref().filter(|_| !missing.is_empty()) {
            d.save_intent(&missing)?;
        }
        if !crate::rootless::active() {
            placement.create_listed(&missing).inspect_err(|_| {
                let _ = placement.remove();
            })?;
        } else {
            // Rootless: cgroups are used only where they are delegated to the caller.
            let skipped = placement.create_where_permitted()?;
            if !skipped.is_empty() {
                tracing::debug!(
                    ?skipped,
                    "rootless: cgroups not delegated to this user are skipped"
                );
                let wants_limits = spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.resources().as_ref())
                    .is_some_and(has_limits);
                if wants_limits && placement.dirs.is_empty() {
                    let _ = placement.remove();
                    return Err(Error::BadState(format!(
                        "linux.resources: a rootless container cannot get resource limits here: \
                         no cgroup is delegated to uid {} ({} not writable); remove the limits or \
                         delegate a cgroup2 subtree to the user",
                        nix::unistd::geteuid(),
                        skipped
                            .first()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default()
                    )));
                }
            }
        }
        guard.placement = Some(placement.clone());
        crate::cgroups::manager::ensure_not_frozen(&placement)?;
        crate::fault::point("after-cgroup");
        crate::trace::mark("cgroup-created");
        for (dir, n) in placement.populated_existing() {
            tracing::warn!(
                "the container's cgroup {} already has {n} process(es); they share its limits and \
                 `kill --all`/`delete --force` will signal them too",
                dir.display()
            );
        }
        // No limits without a cgroup: crun's --cgroup-manager=disabled, or rootless without
        // any usable cgroup (only device rules can be left then, limits were refused above,
        // and the devices are bind mounts anyway).
        let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        if let Some(res) = res.filter(|_| !opts.no_cgroups && !placement.dirs.is_empty()) {
            crate::cgroups::manager::apply(&placement, res)?;
        }
        crate::trace::mark("cgroup-resources");
    }

    let dir_path = guard
        .dir
        .as_ref()
        .map(|d| d.path.clone())
        .unwrap_or_default();
    let listener = if opts.start_here {
        None
    } else {
        Some(bind_exec_socket(&dir_path.join("exec.sock"))?)
    };
    let listen_fds: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cgroup_mounts = hierarchies
        .iter()
        .zip(&placement.dirs)
        .map(|(h, d)| CgroupMountSource {
            hierarchy: h.clone(),
            dir: d.clone(),
        })
        .collect();
    // Only root can clone mount trees before the user namespace exists; a rootless caller
    // reaches the sources with its own credentials from inside anyway.
    let mut bind_sources = if nix::unistd::geteuid().is_root()
        && namespaces
            .iter()
            .any(|n| n.kind == NsKind::User && n.path.is_none())
    {
        crate::rootfs::apply::open_bind_sources(&steps)?
    } else {
        Vec::new()
    };
    bind_sources.extend(crate::rootfs::apply::open_idmapped_sources(&steps)?);
    crate::trace::mark("exec-socket");
    let mut cfg = InitConfig {
        bind_sources,
        setup_dev: plan::needs_dev_setup(&steps),
        devices: plan::devices(&spec),
        steps,
        namespaces: namespaces.clone(),
        cgroup: placement.clone(),
        cgroup_mounts,
        console_socket: console,
        exec_listener: listener,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds as i32 + listen_fds,
        listen_fds,
        id: opts.id.clone(),
        rootfs: rootfs.clone(),
        spec,
        in_unified_cgroup: false,
        born_with: nix::sched::CloneFlags::empty(),
    };

    let mut state = State {
        id: opts.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs,
        created: crate::timefmt::now_rfc3339_nano(),
        owner: String::new(),
        cgroup: placement,
        pid_ns_private: namespaces
            .iter()
            .any(|n| n.kind == NsKind::Pid && n.path.is_none()),
        spec: cfg.spec.clone(),
        systemd: None,
        host_mount: None,
    };
    // No mount namespace: the init mounts below the rootfs in this namespace
    // (rootfs/host.rs); note what is mounted there now, to tell its bind apart.
    let host_mounts_before = (!namespaces.iter().any(|n| n.kind == NsKind::Mount)
        && crate::rootfs::host::needed(&state.spec))
    .then(|| crate::rootfs::host::mount_id(&state.rootfs));
    guard.host_mounts = host_mounts_before.map(|b| (state.rootfs.clone(), b));

    // state.json is written once, when the init is ready (as runc writes it). If this process
    // dies before that (killed, OOM), `delete --force` finds the cgroups.intent record and
    // removes the cgroups and every process in them; a set-up process whose parent is gone
    // sees its sync socket close and exits.
    crate::fault::point("after-state");
    crate::trace::mark("state-saved");
    let (parent_ch, child_ch) = Channel::pair().map_err(|e| Error::io("socketpair", e))?;
    // With systemd the scope does not exist yet: fork plainly, and hold the child at a gate
    // until systemd has moved it into the new scope.
    let gate = match systemd_plan {
        Some(_) => Some(Gate::new()?),
        None => None,
    };
    let fork_placement = match systemd_plan {
        Some(_) => Placement {
            unified: None,
            ..cfg.cgroup.clone()
        },
        None => cfg.cgroup.clone(),
    };
    // SAFETY: the CLI is single-threaded here; the child runs init::stage1, which execs or
    // _exits and never returns.
    // Born in its namespaces when nothing has to happen before they exist: no stage-1 fork.
    // The cgroup namespace only when the child is cloned into its one cgroup2 directory.
    let cgroupns_at_clone = fork_placement.unified.is_some()
        && fork_placement
            .dirs
            .iter()
            .all(|d| Some(d) == fork_placement.unified.as_ref());
    let ns_at_clone = namespaces::born_with(&namespaces, cgroupns_at_clone);
    let born_with;
    let stage1 = match unsafe { super::fork_for(&fork_placement, ns_at_clone) } {
        Ok(f) if f.pid == 0 => {
            drop(parent_ch);
            if let Some(fd) = guard.dir.as_ref().and_then(|d| d.lock_fd()) {
                // SAFETY: closes this child's copy of the lock descriptor; the parent keeps its own.
                unsafe { libc::close(fd) };
            }
            if let Some(g) = gate {
                g.wait_in_child();
            }
            cfg.in_unified_cgroup = f.in_unified;
            cfg.born_with = f.born_with;
            init::stage1(&cfg, &child_ch)
        }
        Ok(f) => {
            born_with = f.born_with;
            nix::unistd::Pid::from_raw(f.pid)
        }
        Err(e) => return Err(Error::io("fork", e)),
    };
    drop(child_ch);
    drop(cfg);
    crate::fault::point("after-fork");
    crate::trace::mark("forked");
    if let (Some((unit, _)), Some(gate)) = (&systemd_plan, gate) {
        guard.pid = stage1.as_raw();
        let started = start_systemd_scope(unit, stage1.as_raw(), &mut state, &mut guard);
        match started {
            Ok(()) => gate.open(),
            Err(e) => {
                drop(gate);
                let _ = nix::sys::wait::waitpid(stage1, None);
                guard.pid = 0;
                return Err(e);
            }
        }
        guard.pid = 0;
    }
    if !born_with.is_empty() {
        // The child is the container's init already (born in its PID namespace, if any).
        state.pid = stage1.as_raw();
        guard.pid = stage1.as_raw();
    }

    // state.json's inode is made now, while the child sets the container up (the parent only
    // waits for it), and filled once the init is ready.
    let prepared_state = guard.dir.as_ref().and_then(|d| d.prepare_save());
    tracing::debug!(stage1 = stage1.as_raw(), "forked container process");
    let result = serve_child(&parent_ch, stage1.as_raw(), &mut state, &mut guard);
    tracing::debug!(ok = result.is_ok(), "container process reported");
    // Reap stage 1 (it exits once the init is forked, or it is the init and stays). After a
    // failure it may still wait for an answer: close the channel and kill it first.
    let parent_ch = if result.is_err() {
        drop(parent_ch);
        let _ = nix::sys::signal::kill(stage1, nix::sys::signal::Signal::SIGKILL);
        None
    } else {
        Some(parent_ch)
    };
    if state.pid != stage1.as_raw() {
        let _ = nix::sys::wait::waitpid(stage1, None);
    }
    result?;
    crate::trace::mark("init-ready-received");
    if let Some(before) = host_mounts_before {
        state.host_mount = crate::rootfs::host::made(&state.rootfs, before);
    }
    state.pid_start = crate::sys::process_start_time(state.pid).unwrap_or(0);
    let dir = guard
        .disarm()
        .ok_or_else(|| Error::BadState("state directory vanished".into()))?;
    if let Err(e) = dir.save_prepared(prepared_state, &state) {
        drop(Cleanup {
            dir: Some(dir),
            placement: Some(state.cgroup.clone()),
            pid: state.pid,
            systemd: state.systemd.clone(),
            host_mounts: host_mounts_before.map(|b| (state.rootfs.clone(), b)),
        });
        return Err(e);
    }
    crate::trace::mark("created");
    Ok(Created {
        state,
        dir,
        start_channel: parent_ch.filter(|_| opts.start_here),
    })
}

/// Starts the container's systemd scope with the (gated) first process `pid` in it, creates the
/// directories systemd leaves to berth, applies the resources to the files and records all of it.
fn start_systemd_scope(
    unit: &cgroups::systemd::path::UnitPath,
    pid: i32,
    state: &mut State,
    guard: &mut Cleanup,
) -> Result<(), Error> {
    let user = !nix::unistd::geteuid().is_root();
    let mut placement = state.cgroup.clone();
    let rec =
        cgroups::systemd::start_container(unit, &state.id, user, pid, &state.spec, &mut placement)?;
    guard.systemd = Some(rec.clone());
    guard.placement = Some(placement.clone());
    state.cgroup = placement;
    state.systemd = Some(rec);
    if let Some(res) = state
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
    {
        crate::cgroups::manager::apply(&state.cgroup, res)?;
    }
    if let Some(d) = guard.dir.as_ref() {
        d.save(state)?;
    }
    Ok(())
}

/// A pipe that holds a forked child until the parent has placed it (systemd scopes).
struct Gate {
    r: OwnedFd,
    w: OwnedFd,
}

impl Gate {
    fn new() -> Result<Gate, Error> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io("pipe", std::io::Error::from(e)))?;
        Ok(Gate { r, w })
    }

    /// In the child: waits for the parent's byte; exits when the parent gave up.
    fn wait_in_child(self) {
        drop(self.w);
        let mut b = [0u8; 1];
        let n = nix::unistd::read(&self.r, &mut b).unwrap_or(0);
        if n != 1 {
            // SAFETY: _exit is async-signal-safe and ends the forked child at once.
            unsafe { libc::_exit(1) };
        }
    }

    /// In the parent: lets the child go on.
    fn open(self) {
        let _ = nix::unistd::write(&self.w, b"g");
    }
}

/// Answers the child's messages until Ready; errors from the child become `Error::Init`.
fn serve_child(
    ch: &Channel,
    stage1: i32,
    state: &mut State,
    guard: &mut Cleanup,
) -> Result<(), Error> {
    // Stage 1 reports the init's PID after forking it, while the init writes to the same socket:
    // a request that needs the PID (hooks, Ready) may arrive first. Hold it until the PID is in.
    let mut deferred: Option<Msg> = None;
    loop {
        let msg = match deferred.take() {
            Some(m) if state.pid > 0 => Some(m),
            held => {
                let next = ch
                    .recv()
                    .map_err(|e| Error::io("read from container init", e))?;
                match (held, next) {
                    (Some(h), Some(Msg::Pid(pid))) => {
                        state.pid = pid;
                        guard.pid = pid;
                        Some(h)
                    }
                    (Some(_), Some(Msg::Error(e))) => Some(Msg::Error(e)),
                    (Some(_), Some(other)) => {
                        return Err(Error::Init(format!(
                            "unexpected message {other:?} from container init"
                        )))
                    }
                    (Some(_), None) => None,
                    (None, Some(m @ (Msg::RunHooks | Msg::Ready | Msg::SeccompListener)))
                        if state.pid == 0 =>
                    {
                        deferred = Some(m);
                        continue;
                    }
                    (None, next) => next,
                }
            }
        };
        match msg {
            Some(Msg::MapIds) => {
                write_id_maps(&state.spec, stage1).map_err(Error::Init)?;
                ch.send(&Msg::Ack { state: None })
                    .map_err(|e| Error::io("sync", e))?;
            }
            Some(Msg::Pid(pid)) => {
                state.pid = pid;
                guard.pid = pid;
            }
            Some(Msg::RunHooks) => {
                // The init has built the rootfs and waits for this process.
                crate::fault::point("after-rootfs");
                let json = hook_state(state, Status::Creating);
                let mut res = Ok(());
                for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
                    let list = kind.of(&state.spec);
                    if res.is_ok() && !list.is_empty() {
                        res = hooks::run_all(kind, &list, &json, Some(&state.bundle));
                    }
                }
                match res {
                    Ok(()) => ch
                        .send(&Msg::Ack { state: Some(json) })
                        .map_err(|e| Error::io("sync", e))?,
                    Err(e) => {
                        let _ = ch.send(&Msg::Error(e.clone()));
                        return Err(Error::Hook(e));
                    }
                }
            }
            Some(Msg::SeccompListener) => {
                let json = serde_json::to_value(state.oci(Status::Creating)).unwrap_or_default();
                crate::seccomp::agent::from_channel(&state.spec, ch, &json, state.pid)
                    .map_err(|e| Error::Init(e.to_string()))?;
                ch.send(&Msg::Ack { state: None })
                    .map_err(|e| Error::io("sync", e))?;
            }
            Some(Msg::Ready) => {
                // The init is set up and waits for `start`; its pid may not be recorded yet.
                crate::fault::point("before-ready");
                return Ok(());
            }
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            Some(Msg::Ack { .. }) => {
                return Err(Error::Init("unexpected message from container init".into()))
            }
            None => return Err(Error::Init("container init exited during setup".into())),
        }
    }
}

/// Whether `r` asks for any limit (device rules alone do not count: without a cgroup the
/// devices a rootless container can reach are the ones bind-mounted into it).
fn has_limits(r: &oci_spec::runtime::LinuxResources) -> bool {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("devices");
        o.retain(|_, x| !x.is_null() && x != &serde_json::json!({}) && x != &serde_json::json!([]));
        return !o.is_empty();
    }
    false
}

/// The OCI state JSON given to hooks.
pub(crate) fn hook_state(state: &State, status: Status) -> String {
    serde_json::to_string(&state.oci(status)).unwrap_or_else(|_| "{}".into())
}

fn write_id_maps(spec: &oci_spec::runtime::Spec, pid: i32) -> Result<(), String> {
    let linux = spec.linux().as_ref();
    let triples = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .map(|m| (m.container_id(), m.host_id(), m.size()))
            .collect::<Vec<_>>()
    };
    let uid = triples(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = triples(linux.and_then(|l| l.gid_mappings().as_ref()));
    let root = nix::unistd::geteuid().is_root();
    // An unprivileged caller may map its own id alone; anything more goes through the setuid
    // helpers newuidmap/newgidmap (Debian's uidmap), which check /etc/subuid and /etc/subgid.
    let own =
        |maps: &[(u32, u32, u32)], id: u32| maps.len() == 1 && maps[0].1 == id && maps[0].2 == 1;
    if !root && !own(&uid, nix::unistd::geteuid().as_raw()) {
        helper_map("newuidmap", "linux.uidMappings", pid, &uid)?;
    } else {
        std::fs::write(format!("/proc/{pid}/uid_map"), text_of(&uid))
            .map_err(|e| format!("linux.uidMappings: write uid_map: {e}"))?;
    }
    if !root && !own(&gid, nix::unistd::getegid().as_raw()) {
        return helper_map("newgidmap", "linux.gidMappings", pid, &gid);
    }
    // Without CAP_SETGID in the parent namespace, gid_map can only be written once setgroups
    // is denied (the kernel's rule for unprivileged user namespaces).
    if !root {
        let _ = std::fs::write(format!("/proc/{pid}/setgroups"), "deny");
    }
    std::fs::write(format!("/proc/{pid}/gid_map"), text_of(&gid))
        .map_err(|e| format!("linux.gidMappings: write gid_map: {e}"))?;
    Ok(())
}

fn text_of(maps: &[(u32, u32, u32)]) -> String {
    maps.iter()
        .map(|(c, h, n)| format!("{c} {h} {n}\n"))
        .collect()
}

/// Writes mappings with newuidmap/newgidmap (`helper PID c h n [c h n ...]`).
fn helper_map(helper: &str, field: &str, pid: i32, maps: &[(u32, u32, u32)]) -> Result<(), String> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for (c, h, n) in maps {
        cmd.args([c.to_string(), h.to_string(), n.to_string()]);
    }
    let out = cmd.output().map_err(|e| {
        format!("{field}: mapping more than the caller's own id needs {helper} (apt-get install uidmap): {e}")
    })?;
    if !out.status.success() {
        return Err(format!(
            "{field}: {helper} failed (are the ranges in /etc/subuid and /etc/subgid?): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// A listening unix socket at `path` (long paths go through /proc/self/fd of the directory).
fn bind_exec_socket(path: &Path) -> Result<OwnedFd, Error> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::io("exec socket", std::io::Error::from(e)))?;
    let (addr_path, _dirfd) = short_socket_path(path)?;
    let addr = UnixAddr::new(addr_path.as_path()).map_err(|e| {
        Error::io(
            format!("exec socket {}", path.display()),
            std::io::Error::from(e),
        )
    })?;
    bind(fd.as_raw_fd(), &addr)
        .map_err(|e| Error::io(format!("bind {}", path.display()), std::io::Error::from(e)))?;
    listen(&fd, Backlog::new(1).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| Error::io("listen on exec socket", std::io::Error::from(e)))?;
    Ok(fd)
}

/// Unix socket paths are limited to 108 bytes: for longer ones, address the socket through an
/// open descriptor of its directory. The returned fd must stay open while the path is used.
pub(crate) fn short_socket_path(path: &Path) -> Result<(PathBuf, Option<std::fs::File>), Error> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = std::fs::File::open(parent)
        .map_err(|e| Error::io(format!("open {}", parent.display()), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((
        PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd())),
        Some(dir),
    ))
}

/// Undoes a half-made container when dropped: kills its init, removes cgroups and state.
struct Cleanup {
    dir: Option<ContainerDir>,
    placement: Option<Placement>,
    pid: i32,
    systemd: Option<cgroups::systemd::SystemdUnit>,
    /// No mount namespace: the rootfs, and the id of its topmost mount before the init ran;
    /// a newer one is the init's bind, detached with the mounts below it.
    host_mounts: Option<(PathBuf, Option<u64>)>,
}

impl Cleanup {
    /// Keeps everything: the container was created successfully.
    fn disarm(&mut self) -> Option<ContainerDir> {
        self.placement = None;
        self.pid = 0;
        self.systemd = None;
        self.host_mounts = None;
        self.dir.take()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.pid > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            if let Ok(fd) = crate::sys::pidfd_open(self.pid) {
                let _ = crate::sys::pidfd_wait(&fd, 2000);
            }
        }
        if let Some(p) = &self.placement {
            for pid in p.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if let Some(u) = &self.systemd {
            let _ = cgroups::systemd::stop_container(u);
        }
        if let Some((rootfs, before)) = &self.host_mounts {
            if let Some(id) = crate::rootfs::host::made(rootfs, *before) {
                let _ = crate::rootfs::host::remove(rootfs, id);
            }
        }
        if let Some(p) = &self.placement {
            let _ = p.remove();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.remove();
        }
    }
}
