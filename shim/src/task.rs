//! The task service v2 handlers, mapped onto the berth library (no runtime binary is run).
//! Containers live in the shim's berth root, so `berth --root ROOT list/state/ps` sees them.

use crate::events::Publisher;
use crate::process::{Proc, Waiter};
use crate::proto::*;
use berth::container::{self as bc, CreateOptions, ExecOptions};
use prost::Message;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// Outcome of one request: an answer now, or none yet (a Wait on a live process).
pub enum Reply {
    /// Answer now.
    Now(Result<Vec<u8>, Status>),
    /// Parked; answered from [`Shim::reap`].
    Later,
}

/// One container in this shim.
pub struct Container {
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Its berth state root (the shim's, or the runtime options' Root).
    pub root: PathBuf,
    /// Owner (uid, gid) of the stdio pipes and fifos of its processes (IoUid/IoGid).
    pub io_owner: (u32, u32),
    /// rootfs we mounted (unmounted at delete).
    pub rootfs: Option<PathBuf>,
    /// Its cgroups.
    pub cgroup: berth::cgroups::Placement,
    /// The init process.
    pub init: Proc,
    /// Exec processes by exec id.
    pub execs: BTreeMap<String, Proc>,
    /// OOM notification eventfd (cgroup v1).
    pub oom_fd: Option<OwnedFd>,
    /// OOM kills already reported.
    pub oom_seen: u64,
}

/// The shim's state.
pub struct Shim {
    /// berth state root.
    pub root: PathBuf,
    /// containerd namespace.
    pub namespace: String,
    /// Event publisher.
    pub events: Publisher,
    /// Containers by id.
    pub containers: BTreeMap<String, Container>,
    /// Shutdown requested and allowed.
    pub exit: bool,
    /// Answers to parked calls: (connection, frame bytes).
    pub outbox: Vec<(u64, Vec<u8>)>,
    console_seq: u64,
}

fn status(code: Code, msg: impl Into<String>) -> Status {
    Status {
        code: code as i32,
        message: msg.into(),
        details: Vec::new(),
    }
}

fn berth_err(e: bc::Error) -> Status {
    match e {
        bc::Error::NotExist(_) => status(Code::NotFound, e.to_string()),
        bc::Error::Exists => status(Code::AlreadyExists, e.to_string()),
        bc::Error::NotRunning => status(Code::NotFound, "process already finished"),
        other => status(Code::Unknown, other.to_string()),
    }
}

fn decode<M: Message + Default>(b: &[u8]) -> Result<M, Status> {
    M::decode(b).map_err(|e| status(Code::InvalidArgument, format!("bad request: {e}")))
}

fn ok(m: &impl Message) -> Reply {
    Reply::Now(Ok(m.encode_to_vec()))
}

fn empty() -> Reply {
    Reply::Now(Ok(Vec::new()))
}

impl Shim {
    /// A shim with no containers.
    pub fn new(root: PathBuf, namespace: String, events: Publisher) -> Shim {
        Shim {
            root,
            namespace,
            events,
            containers: BTreeMap::new(),
            exit: false,
            outbox: Vec::new(),
            console_seq: 0,
        }
    }

    /// Dispatches one task API call.
    pub fn handle(&mut self, conn: u64, stream: u32, method: &str, payload: &[u8]) -> Reply {
        let r = match method {
            "Create" => decode(payload).map(|r| self.create(r)),
            "Start" => decode(payload).map(|r| self.start(r)),
            "State" => decode(payload).map(|r| self.state(r)),
            "Delete" => decode(payload).map(|r| self.delete(r)),
            "Pids" => decode(payload).map(|r| self.pids(r)),
            "Pause" => decode(payload).map(|r| self.pause(r, true)),
            "Resume" => decode(payload).map(|r| self.pause(r, false)),
            "Kill" => decode(payload).map(|r| self.kill(r)),
            "Exec" => decode(payload).map(|r| self.exec(r)),
            "ResizePty" => decode(payload).map(|r| self.resize(r)),
            "CloseIO" => decode(payload).map(|r| self.close_io(r)),
            "Update" => decode(payload).map(|r| self.update(r)),
            "Wait" => decode(payload).map(|r| self.wait(conn, stream, r)),
            "Stats" => decode(payload).map(|r| self.stats(r)),
            "Connect" => decode(payload).map(|r| self.connect(r)),
            "Shutdown" => decode(payload).map(|r| self.shutdown(r)),
            "Checkpoint" => decode::<CheckpointTaskRequest>(payload).map(|r| {
                Reply::Now(Err(status(
                    Code::Unimplemented,
                    format!("checkpoint of {} is not supported by berth", r.id),
                )))
            }),
            other => Ok(Reply::Now(Err(status(
                Code::Unimplemented,
                format!("containerd.task.v2.Task/{other} is not implemented by berth"),
            )))),
        };
        r.unwrap_or_else(|e| Reply::Now(Err(e)))
    }

    fn container(&mut self, id: &str) -> Result<&mut Container, Status> {
        self.containers
            .get_mut(id)
            .ok_or_else(|| status(Code::NotFound, format!("container {id} not found")))
    }

    /// The state root of a container of this shim (the shim's root for unknown ones).
    fn root_of(&self, id: &str) -> PathBuf {
        self.containers
            .get(id)
            .map(|c| c.root.clone())
            .unwrap_or_else(|| self.root.clone())
    }

    fn proc_mut(&mut self, id: &str, exec_id: &str) -> Result<&mut Proc, Status> {
        let c = self.container(id)?;
        if exec_id.is_empty() {
            return Ok(&mut c.init);
        }
        c.execs
            .get_mut(exec_id)
            .ok_or_else(|| status(Code::NotFound, format!("exec {exec_id} of {id} not found")))
    }

    fn console_path(&mut self) -> PathBuf {
        self.console_seq += 1;
        self.root.join(format!(
            ".console-{}-{}.sock",
            std::process::id(),
            self.console_seq
        ))
    }

    fn create(&mut self, r: CreateTaskRequest) -> Reply {
        Reply::Now(self.try_create(r))
    }

    fn try_create(&mut self, r: CreateTaskRequest) -> Result<Vec<u8>, Status> {
        if self.containers.contains_key(&r.id) {
            return Err(status(
                Code::AlreadyExists,
                format!("container {} already exists in this shim", r.id),
            ));
        }
        if !r.checkpoint.is_empty() || !r.parent_checkpoint.is_empty() {
            return Err(status(
                Code::Unimplemented,
                format!(
                    "restore from a checkpoint (CreateTaskRequest.checkpoint {:?}) is not supported by berth",
                    r.checkpoint
                ),
            ));
        }
        let topts = crate::options::decode(r.options.as_ref())
            .map_err(|e| status(Code::InvalidArgument, e))?;
        let bundle = PathBuf::from(&r.bundle);
        let root = match &topts.root {
            Some(base) => {
                let root = crate::options::state_root(Some(base), &self.namespace);
                // `delete` after a dead shim finds the container there.
                let f = bundle.join(crate::options::ROOT_FILE);
                berth::sys::write_atomic(&f, root.as_os_str().as_encoded_bytes())
                    .map_err(|e| status(Code::Unknown, format!("write {}: {e}", f.display())))?;
                root
            }
            None => self.root.clone(),
        };
        for dir in [&self.root, &root] {
            std::fs::create_dir_all(dir)
                .map_err(|e| status(Code::Unknown, format!("create {}: {e}", dir.display())))?;
        }
        let rootfs = bundle.join("rootfs");
        crate::mount::mount_all(&r.rootfs, &rootfs).map_err(|e| status(Code::Unknown, e))?;
        let mounted = (!r.rootfs.is_empty()).then(|| rootfs.clone());
        let undo = |m: &Option<PathBuf>| {
            if let Some(p) = m {
                crate::mount::unmount_all(p);
            }
        };
        let mut init = Proc {
            stdin: r.stdin.clone(),
            stdout: r.stdout.clone(),
            stderr: r.stderr.clone(),
            terminal: r.terminal,
            io_owner: (topts.io_uid, topts.io_gid),
            ..Default::default()
        };
        let console_path = self.console_path();
        let prepared = match init.prepare(&r.id, &self.namespace, console_path) {
            Ok(p) => p,
            Err(e) => {
                undo(&mounted);
                return Err(e);
            }
        };
        let opts = CreateOptions {
            id: r.id.clone(),
            bundle: bundle.clone(),
            root: root.clone(),
            console_socket: prepared.console.as_ref().map(|(p, _)| p.clone()),
            no_pivot: topts.no_pivot_root,
            no_new_keyring: topts.no_new_keyring,
            systemd_cgroup: topts.systemd_cgroup,
            ..Default::default()
        };
        let created = crate::stdio::with_stdio(prepared.raw(), || bc::create(&opts))
            .map_err(|e| status(Code::Unknown, format!("stdio: {e}")))
            .and_then(|r| r.map_err(berth_err));
        let Prepared { console, child } = prepared;
        drop(child);
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                if let Some((p, _)) = &console {
                    let _ = std::fs::remove_file(p);
                }
                undo(&mounted);
                return Err(e);
            }
        };
        let pid = created.state.pid;
        let cgroup = created.state.cgroup.clone();
        drop(created);
        if let Err(e) = init.attach_console(console) {
            if let Ok((dir, st)) = bc::load(&root, &r.id) {
                let _ = bc::delete(dir, &st, true);
            }
            undo(&mounted);
            return Err(e);
        }
        init.pid = pid;
        let oom_fd = crate::oom::register(&cgroup);
        let oom_seen = berth::cgroups::stats::oom_kills(&cgroup);
        self.containers.insert(
            r.id.clone(),
            Container {
                bundle: bundle.clone(),
                root,
                io_owner: (topts.io_uid, topts.io_gid),
                rootfs: mounted,
                cgroup,
                init,
                execs: BTreeMap::new(),
                oom_fd,
                oom_seen,
            },
        );
        self.events.publish(
            "/tasks/create",
            "containerd.events.TaskCreate",
            &TaskCreate {
                container_id: r.id.clone(),
                bundle: r.bundle.clone(),
                rootfs: r.rootfs.clone(),
                io: Some(TaskIo {
                    stdin: r.stdin,
                    stdout: r.stdout,
                    stderr: r.stderr,
                    terminal: r.terminal,
                }),
                checkpoint: String::new(),
                pid: pid as u32,
            },
        );
        Ok(CreateTaskResponse { pid: pid as u32 }.encode_to_vec())
    }

    fn start(&mut self, r: ProcRequest) -> Reply {
        Reply::Now(self.try_start(r))
    }

    fn try_start(&mut self, r: ProcRequest) -> Result<Vec<u8>, Status> {
        let root = self.root_of(&r.id);
        if r.exec_id.is_empty() {
            let c = self.container(&r.id)?;
            if c.init.started {
                return Err(status(
                    Code::FailedPrecondition,
                    format!("container {} is already started", r.id),
                ));
            }
            let (dir, st) = bc::load(&root, &r.id).map_err(berth_err)?;
            let res = bc::start(&dir, &st);
            drop(dir);
            let c = self.container(&r.id)?;
            c.init.started = true;
            let pid = c.init.pid as u32;
            if let Err(e) = res {
                return Err(berth_err(e));
            }
            self.events.publish(
                "/tasks/start",
                "containerd.events.TaskStart",
                &TaskStart {
                    container_id: r.id.clone(),
                    pid,
                },
            );
            return Ok(PidResponse { pid }.encode_to_vec());
        }
        let console_path = self.console_path();
        let ns = self.namespace.clone();
        let p = self.proc_mut(&r.id, &r.exec_id)?;
        if p.started {
            return Err(status(
                Code::FailedPrecondition,
                format!("exec {} is already started", r.exec_id),
            ));
        }
        let spec = p.spec.clone().unwrap_or_default();
        let prepared = p.prepare(&r.id, &ns, console_path)?;
        let opts = ExecOptions {
            root,
            id: r.id.clone(),
            process: spec,
            console_socket: prepared.console.as_ref().map(|(p, _)| p.clone()),
            preserve_fds: 0,
            ignore_paused: false,
            sub_cgroups: Default::default(),
        };
        let res = crate::stdio::with_stdio(prepared.raw(), || bc::exec(&opts))
            .map_err(|e| status(Code::Unknown, format!("stdio: {e}")))
            .and_then(|r| r.map_err(berth_err));
        let Prepared { console, child } = prepared;
        drop(child);
        let p = self.proc_mut(&r.id, &r.exec_id)?;
        let pid = match res {
            Ok(pid) => pid,
            Err(e) => {
                if let Some((path, _)) = &console {
                    let _ = std::fs::remove_file(path);
                }
                p.copiers.clear();
                return Err(e);
            }
        };
        p.pid = pid;
        p.started = true;
        p.attach_console(console)?;
        self.events.publish(
            "/tasks/exec-started",
            "containerd.events.TaskExecStarted",
            &TaskExec {
                container_id: r.id.clone(),
                exec_id: r.exec_id.clone(),
                pid: pid as u32,
            },
        );
        Ok(PidResponse { pid: pid as u32 }.encode_to_vec())
    }

    fn state(&mut self, r: ProcRequest) -> Reply {
        let root = self.root_of(&r.id);
        let bundle = match self.container(&r.id) {
            Ok(c) => c.bundle.display().to_string(),
            Err(e) => return Reply::Now(Err(e)),
        };
        let p = match self.proc_mut(&r.id, &r.exec_id) {
            Ok(p) => p,
            Err(e) => return Reply::Now(Err(e)),
        };
        let st = if p.exit.is_some() {
            TaskStatus::Stopped
        } else if !p.started {
            TaskStatus::Created
        } else if r.exec_id.is_empty() {
            match bc::peek(&root, &r.id).map(|(d, s)| s.status(&d.path)) {
                Ok(bc::Status::Paused) => TaskStatus::Paused,
                Ok(bc::Status::Stopped) => TaskStatus::Stopped,
                _ => TaskStatus::Running,
            }
        } else {
            TaskStatus::Running
        };
        let (exit_status, exited_at) = p.exit.map(|(s, t)| (s, Some(t))).unwrap_or((0, None));
        ok(&StateResponse {
            id: if r.exec_id.is_empty() {
                r.id.clone()
            } else {
                r.exec_id.clone()
            },
            bundle,
            pid: p.pid as u32,
            status: st as i32,
            stdin: p.stdin.clone(),
            stdout: p.stdout.clone(),
            stderr: p.stderr.clone(),
            terminal: p.terminal,
            exit_status,
            exited_at,
            exec_id: r.exec_id.clone(),
        })
    }

    fn delete(&mut self, r: ProcRequest) -> Reply {
        if !r.exec_id.is_empty() {
            let c = match self.container(&r.id) {
                Ok(c) => c,
                Err(e) => return Reply::Now(Err(e)),
            };
            let running = match c.execs.get(&r.exec_id) {
                None => {
                    return Reply::Now(Err(status(
                        Code::NotFound,
                        format!("exec {} of {} not found", r.exec_id, r.id),
                    )))
                }
                Some(p) => p.started && p.exit.is_none(),
            };
            if running {
                return Reply::Now(Err(status(
                    Code::FailedPrecondition,
                    format!("exec {} of {} is still running", r.exec_id, r.id),
                )));
            }
            let p = c.execs.remove(&r.exec_id).unwrap_or_default();
            let (code, at) = p.exit.unwrap_or((0, Timestamp::now()));
            return ok(&DeleteResponse {
                pid: p.pid as u32,
                exit_status: code,
                exited_at: Some(at),
            });
        }
        let root = self.root_of(&r.id);
        let c = match self.container(&r.id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        if c.init.started && c.init.exit.is_none() {
            return Reply::Now(Err(status(
                Code::FailedPrecondition,
                format!("cannot delete container {} while it is running", r.id),
            )));
        }
        match bc::load(&root, &r.id) {
            Ok((dir, st)) => {
                if let Err(e) = bc::delete(dir, &st, true) {
                    return Reply::Now(Err(berth_err(e)));
                }
            }
            Err(bc::Error::NotExist(_)) => {}
            Err(e) => return Reply::Now(Err(berth_err(e))),
        }
        let Some(c) = self.containers.remove(&r.id) else {
            return Reply::Now(Err(status(Code::NotFound, "container vanished")));
        };
        if let Some(p) = &c.rootfs {
            crate::mount::unmount_all(p);
        }
        let (code, at) = c.init.exit.unwrap_or((137, Timestamp::now()));
        self.events.publish(
            "/tasks/delete",
            "containerd.events.TaskDelete",
            &TaskDelete {
                container_id: r.id.clone(),
                pid: c.init.pid as u32,
                exit_status: code,
                exited_at: Some(at),
                id: r.id.clone(),
            },
        );
        ok(&DeleteResponse {
            pid: c.init.pid as u32,
            exit_status: code,
            exited_at: Some(at),
        })
    }

    fn pids(&mut self, r: IdRequest) -> Reply {
        let c = match self.container(&r.id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        // Exec processes carry their exec id, as the runc shim reports them.
        let processes = c
            .cgroup
            .pids()
            .into_iter()
            .map(|pid| ProcessInfo {
                pid: pid as u32,
                info: c
                    .execs
                    .iter()
                    .find(|(_, p)| p.pid == pid && p.exit.is_none())
                    .map(|(eid, _)| {
                        Any::pack(
                            "containerd.runc.v1.ProcessDetails",
                            &ProcessDetails {
                                exec_id: eid.clone(),
                            },
                        )
                    }),
            })
            .collect();
        ok(&PidsResponse { processes })
    }

    fn pause(&mut self, r: IdRequest, pause: bool) -> Reply {
        let res = bc::load(&self.root_of(&r.id), &r.id).and_then(|(dir, st)| {
            if pause {
                bc::pause(&dir, &st)
            } else {
                bc::resume(&dir, &st)
            }
        });
        if let Err(e) = res {
            return Reply::Now(Err(berth_err(e)));
        }
        let (topic, name) = if pause {
            ("/tasks/paused", "containerd.events.TaskPaused")
        } else {
            ("/tasks/resumed", "containerd.events.TaskResumed")
        };
        self.events.publish(
            topic,
            name,
            &ContainerEvent {
                container_id: r.id.clone(),
            },
        );
        empty()
    }

    fn kill(&mut self, r: KillRequest) -> Reply {
        let root = self.root_of(&r.id);
        let p = match self.proc_mut(&r.id, &r.exec_id) {
            Ok(p) => p,
            Err(e) => return Reply::Now(Err(e)),
        };
        if r.exec_id.is_empty() {
            if p.exit.is_some() && !r.all {
                return Reply::Now(Err(status(Code::NotFound, "process already finished")));
            }
            let res = bc::load(&root, &r.id)
                .and_then(|(dir, st)| bc::kill(&dir, &st, r.signal as i32, r.all));
            return match res {
                Ok(()) => empty(),
                Err(e) => Reply::Now(Err(berth_err(e))),
            };
        }
        if p.exit.is_some() || !p.started {
            return Reply::Now(Err(status(Code::NotFound, "process already finished")));
        }
        // SAFETY: kill(2) on a PID this shim is the parent (subreaper) of and has not reaped.
        if unsafe { libc::kill(p.pid, r.signal as i32) } < 0 {
            return Reply::Now(Err(status(
                Code::Unknown,
                format!("kill {}: {}", p.pid, std::io::Error::last_os_error()),
            )));
        }
        empty()
    }

    fn exec(&mut self, r: ExecProcessRequest) -> Reply {
        let c = match self.container(&r.id) {
            Ok(c) => c,
            Err(e) => return Reply::Now(Err(e)),
        };
        if c.execs.contains_key(&r.exec_id) {
            return Reply::Now(Err(status(
                Code::AlreadyExists,
                format!("exec {} of {} already exists", r.exec_id, r.id),
            )));
        }
        let spec: oci_spec::runtime::Process = match r.spec.as_ref() {
            Some(a) => match serde_json::from_slice(&a.value) {
                Ok(s) => s,
                Err(e) => {
                    return Reply::Now(Err(status(
                        Code::InvalidArgument,
                        format!("exec {}: process spec: {e}", r.exec_id),
                    )))
                }
            },
            None => {
                return Reply::Now(Err(status(
                    Code::InvalidArgument,
                    format!("exec {}: no process spec", r.exec_id),
                )))
            }
        };
        c.execs.insert(
            r.exec_id.clone(),
            Proc {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr,
                terminal: r.terminal,
                spec: Some(spec),
                io_owner: c.io_owner,
                ..Default::default()
            },
        );
        self.events.publish(
            "/tasks/exec-added",
            "containerd.events.TaskExecAdded",
            &TaskExec {
                container_id: r.id.clone(),
                exec_id: r.exec_id.clone(),
                pid: 0,
            },
        );
        empty()
    }

    fn resize(&mut self, r: ResizePtyRequest) -> Reply {
        let p = match self.proc_mut(&r.id, &r.exec_id) {
            Ok(p) => p,
            Err(e) => return Reply::Now(Err(e)),
        };
        let Some(m) = &p.master else {
            return Reply::Now(Err(status(
                Code::FailedPrecondition,
                "the process has no terminal",
            )));
        };
        match berth::console::set_size(m.as_raw_fd(), r.height as u16, r.width as u16) {
            Ok(()) => empty(),
            Err(e) => Reply::Now(Err(status(Code::Unknown, format!("resize pty: {e}")))),
        }
    }

    fn close_io(&mut self, r: CloseIoRequest) -> Reply {
        match self.proc_mut(&r.id, &r.exec_id) {
            Ok(p) => {
                if r.stdin {
                    p.close_stdin();
                }
                empty()
            }
            Err(e) => Reply::Now(Err(e)),
        }
    }

    fn update(&mut self, r: UpdateTaskRequest) -> Reply {
        let Some(a) = r.resources else {
            return Reply::Now(Err(status(Code::InvalidArgument, "update: no resources")));
        };
        let res: oci_spec::runtime::LinuxResources = match serde_json::from_slice(&a.value) {
            Ok(r) => r,
            Err(e) => {
                return Reply::Now(Err(status(
                    Code::InvalidArgument,
                    format!("update: resources ({}): {e}", a.type_url),
                )))
            }
        };
        match bc::load(&self.root_of(&r.id), &r.id)
            .and_then(|(dir, mut st)| bc::update(&dir, &mut st, &res))
        {
            Ok(()) => empty(),
            Err(e) => Reply::Now(Err(berth_err(e))),
        }
    }

    fn wait(&mut self, conn: u64, stream: u32, r: ProcRequest) -> Reply {
        let p = match self.proc_mut(&r.id, &r.exec_id) {
            Ok(p) => p,
            Err(e) => return Reply::Now(Err(e)),
        };
        match p.exit {
            Some((code, at)) => ok(&WaitResponse {
                exit_status: code,
                exited_at: Some(at),
            }),
            None => {
                p.waiters.push((conn, stream));
                Reply::Later
            }
        }
    }

    fn stats(&mut self, r: IdRequest) -> Reply {
        match self.container(&r.id) {
            Ok(c) => ok(&StatsResponse {
                stats: Some(crate::stats::collect(&c.cgroup)),
            }),
            Err(e) => Reply::Now(Err(e)),
        }
    }

    fn connect(&mut self, r: IdRequest) -> Reply {
        let task_pid = self
            .containers
            .get(&r.id)
            .map(|c| c.init.pid as u32)
            .unwrap_or(0);
        ok(&ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    fn shutdown(&mut self, r: ShutdownRequest) -> Reply {
        if r.now || self.containers.is_empty() {
            self.exit = true;
        }
        empty()
    }

    /// Reaps every exited child; records init/exec exits, publishes TaskExit (and TaskOOM), and
    /// queues the answers of parked Wait calls.
    pub fn reap(&mut self) {
        loop {
            let mut st = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            let code = crate::process::exit_code(st);
            self.on_exit(pid, code);
        }
    }

    fn on_exit(&mut self, pid: i32, code: u32) {
        let mut found = None;
        for (id, c) in self.containers.iter_mut() {
            if c.init.pid == pid && c.init.exit.is_none() {
                found = Some((id.clone(), String::new()));
                break;
            }
            if let Some((eid, _)) = c
                .execs
                .iter()
                .find(|(_, p)| p.pid == pid && p.started && p.exit.is_none())
            {
                found = Some((id.clone(), eid.clone()));
                break;
            }
        }
        let Some((id, exec_id)) = found else { return };
        self.check_oom(&id);
        let Some(c) = self.containers.get_mut(&id) else {
            return;
        };
        let p = if exec_id.is_empty() {
            &mut c.init
        } else {
            match c.execs.get_mut(&exec_id) {
                Some(p) => p,
                None => return,
            }
        };
        let waiters: Vec<Waiter> = p.exited(code);
        let at = p.exit.map(|(_, t)| t).unwrap_or_else(Timestamp::now);
        let reply = WaitResponse {
            exit_status: code,
            exited_at: Some(at),
        }
        .encode_to_vec();
        for (conn, stream) in waiters {
            self.outbox
                .push((conn, crate::ttrpc::response(stream, Ok(reply.clone()))));
        }
        self.events.publish(
            "/tasks/exit",
            "containerd.events.TaskExit",
            &TaskExit {
                container_id: id.clone(),
                id: if exec_id.is_empty() {
                    id.clone()
                } else {
                    exec_id
                },
                pid: pid as u32,
                exit_status: code,
                exited_at: Some(at),
            },
        );
    }

    /// Publishes TaskOOM when the kernel's OOM-kill count of the container grew.
    pub fn check_oom(&mut self, id: &str) {
        let Some(c) = self.containers.get_mut(id) else {
            return;
        };
        let n = berth::cgroups::stats::oom_kills(&c.cgroup);
        if n > c.oom_seen {
            c.oom_seen = n;
            self.events.publish(
                "/tasks/oom",
                "containerd.events.TaskOOM",
                &ContainerEvent {
                    container_id: id.to_string(),
                },
            );
        }
    }

    /// Drains an OOM eventfd that polled readable.
    pub fn on_oom_event(&mut self, id: &str) {
        if let Some(c) = self.containers.get(id) {
            if let Some(fd) = &c.oom_fd {
                let mut buf = [0u8; 8];
                let _ = nix::unistd::read(fd, &mut buf);
            }
        }
        self.check_oom(id);
    }
}

use crate::process::Prepared;

#[cfg(test)]
mod tests {
    use super::*;

    fn shim() -> Shim {
        Shim::new(
            std::env::temp_dir().join("berth-shim-unit-no-such-root"),
            "ns".into(),
            Publisher::new(String::new(), "ns".into()),
        )
    }

    fn err(r: Reply) -> Status {
        match r {
            Reply::Now(Err(s)) => s,
            Reply::Now(Ok(_)) => panic!("expected an error"),
            Reply::Later => panic!("expected an answer"),
        }
    }

    #[test]
    fn bad_requests_get_errors_not_panics() {
        let mut s = shim();
        let e = err(s.handle(1, 1, "Bogus", b""));
        assert_eq!(e.code, Code::Unimplemented as i32);
        let e = err(s.handle(1, 1, "State", b"\xff\xff\xff"));
        assert_eq!(e.code, Code::InvalidArgument as i32);
        let req = ProcRequest {
            id: "nope".into(),
            exec_id: String::new(),
        }
        .encode_to_vec();
        for m in [
            "State", "Start", "Delete", "Wait", "Pids", "Stats", "Kill", "CloseIO",
        ] {
            let e = err(s.handle(1, 1, m, &req));
            assert_eq!(e.code, Code::NotFound as i32, "{m}: {}", e.message);
        }
        let e = err(s.handle(1, 1, "Checkpoint", &req));
        assert_eq!(e.code, Code::Unimplemented as i32);
        let create = CreateTaskRequest {
            id: "c".into(),
            checkpoint: "/some/dir".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let e = err(s.handle(1, 1, "Create", &create));
        assert_eq!(e.code, Code::Unimplemented as i32);
        assert!(e.message.contains("checkpoint"), "{}", e.message);
    }

    #[test]
    fn shutdown_exits_only_when_empty() {
        let mut s = shim();
        let req = ShutdownRequest {
            id: "x".into(),
            now: false,
        }
        .encode_to_vec();
        assert!(matches!(
            s.handle(1, 1, "Shutdown", &req),
            Reply::Now(Ok(_))
        ));
        assert!(s.exit);
    }
}
