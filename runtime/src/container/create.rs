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
}

/// A created container, not yet started.
pub struct Created {
    /// Its state.
    pub state: State,
    /// Its locked state directory.
    pub dir: ContainerDir,
}

/// Creates a container. On any error, everything made so far is removed again.
pub fn create(opts: &CreateOptions) -> Result<Created, Error> {
    super::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(|e| Error::io(format!("bundle {}", opts.bundle.display()), e))?;
    let spec = spec::load(&bundle)?;
    spec::validate(&spec, &bundle)?;
    let steps = plan::plan(&spec, &bundle)?;
    let rootfs = spec::rootfs_path(&spec, &bundle).unwrap_or_default();
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| Error::io(format!("root.path {}", rootfs.display()), e))?;
    let namespaces = namespaces::from_spec(&spec);
    if !namespaces
        .iter()
        .any(|n| n.kind == NsKind::Mount && n.path.is_none())
    {
        return Err(Error::Spec(spec::SpecError::Invalid {
            file: bundle.join("config.json"),
            path: "linux.namespaces".into(),
            msg: "a new mount namespace is required to set up the container's root filesystem"
                .into(),
        }));
    }
    let configured_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    let (_mode, hierarchies) = cgroups::detect()?;
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
    };
    if systemd_plan.is_none() {
        placement.create().inspect_err(|_| {
            let _ = placement.remove();
        })?;
        guard.placement = Some(placement.clone());
        if let Some(res) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            crate::cgroups::manager::apply(&placement, res)?;
        }
    }

    let dir_path = guard
        .dir
        .as_ref()
        .map(|d| d.path.clone())
        .unwrap_or_default();
    let listener = bind_exec_socket(&dir_path.join("exec.sock"))?;
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
    let mut cfg = InitConfig {
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
    };

    // Record the container before forking: if this process dies half-way (killed, OOM),
    // `delete --force` still finds the state and removes the cgroups and any process in them.
    if let Some(d) = guard.dir.as_ref() {
        d.save(&state)?;
    }
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
    let stage1 = match unsafe { super::fork_for(&fork_placement) } {
        Ok((0, in_unified)) => {
            drop(parent_ch);
            if let Some(g) = gate {
                g.wait_in_child();
            }
            cfg.in_unified_cgroup = in_unified;
            init::stage1(&cfg, &child_ch)
        }
        Ok((pid, _)) => nix::unistd::Pid::from_raw(pid),
        Err(e) => return Err(Error::io("fork", e)),
    };
    drop(child_ch);
    drop(cfg);
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

    tracing::debug!(stage1 = stage1.as_raw(), "forked container process");
    let result = serve_child(&parent_ch, stage1.as_raw(), &mut state, &mut guard);
    tracing::debug!(ok = result.is_ok(), "container process reported");
    // Reap stage 1 (it exits once the init is forked, or it is the init and stays).
    if state.pid != stage1.as_raw() {
        let _ = nix::sys::wait::waitpid(stage1, None);
    }
    result?;
    state.pid_start = crate::sys::process_start_time(state.pid).unwrap_or(0);
    let dir = guard
        .disarm()
        .ok_or_else(|| Error::BadState("state directory vanished".into()))?;
    if let Err(e) = dir.save(&state) {
        drop(Cleanup {
            dir: Some(dir),
            placement: Some(state.cgroup.clone()),
            pid: state.pid,
            systemd: state.systemd.clone(),
        });
        return Err(e);
    }
    Ok(Created { state, dir })
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
                    (None, Some(m @ (Msg::RunHooks | Msg::Ready))) if state.pid == 0 => {
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
                let json = hook_state(state, Status::Creating);
                let mut res = Ok(());
                for kind in [HookKind::Prestart, HookKind::CreateRuntime] {
                    let list = kind.of(&state.spec);
                    if res.is_ok() && !list.is_empty() {
                        res = hooks::run_all(kind, &list, &json);
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
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            Some(Msg::Ack { .. }) => {
                return Err(Error::Init("unexpected message from container init".into()))
            }
            None => return Err(Error::Init("container init exited during setup".into())),
        }
    }
}

/// The OCI state JSON given to hooks.
pub(crate) fn hook_state(state: &State, status: Status) -> String {
    serde_json::to_string(&state.oci(status)).unwrap_or_else(|_| "{}".into())
}

fn write_id_maps(spec: &oci_spec::runtime::Spec, pid: i32) -> Result<(), String> {
    let linux = spec.linux().as_ref();
    let fmt = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = fmt(linux.and_then(|l| l.gid_mappings().as_ref()));
    std::fs::write(format!("/proc/{pid}/uid_map"), &uid)
        .map_err(|e| format!("linux.uidMappings: write uid_map: {e}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
        .map_err(|e| format!("linux.gidMappings: write gid_map: {e}"))?;
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
}

impl Cleanup {
    /// Keeps everything: the container was created successfully.
    fn disarm(&mut self) -> Option<ContainerDir> {
        self.placement = None;
        self.pid = 0;
        self.systemd = None;
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
        if let Some(p) = &self.placement {
            let _ = p.remove();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.remove();
        }
    }
}
