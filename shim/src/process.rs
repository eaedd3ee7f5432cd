//! Init and exec processes as the shim tracks them: their stdio, pty, exit status and time, and
//! the Wait calls parked until they exit.

use crate::proto::{Code, Status, Timestamp};
use crate::stdio::{self, Copier, Target};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// A ttrpc call waiting for a process to exit: (connection id, stream id).
pub type Waiter = (u64, u32);

/// One process (the container's init or an exec).
#[derive(Default)]
pub struct Proc {
    /// Host PID (0 before start for execs).
    pub pid: i32,
    /// The user program was started.
    pub started: bool,
    /// Exit status and time, once reaped.
    pub exit: Option<(u32, Timestamp)>,
    /// stdio strings as containerd gave them.
    pub stdin: String,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// Has a pty.
    pub terminal: bool,
    /// The exec's process spec (execs only).
    pub spec: Option<oci_spec::runtime::Process>,
    /// Byte movers (stdin pipe, pty copies).
    pub copiers: Vec<Copier>,
    /// The pty master, for resize.
    pub master: Option<OwnedFd>,
    /// Parked Wait calls.
    pub waiters: Vec<Waiter>,
    /// Owner (uid, gid) given to the pipes and fifos the process gets as stdio (runtime
    /// options IoUid/IoGid; (0, 0) leaves them alone).
    pub io_owner: (u32, u32),
    /// The stdin fifo and the stdout fifo kept until a pty master arrives.
    pub pending_pty: Option<(Option<OwnedFd>, Option<OwnedFd>)>,
}

/// Descriptors for the process being created: its fds 0-2 and, with a terminal, the console
/// socket berth sends the pty master to.
pub struct Prepared {
    /// What the process inherits as 0, 1, 2.
    pub child: [OwnedFd; 3],
    /// Console socket path and listener (terminal only).
    pub console: Option<(PathBuf, UnixListener)>,
}

impl Prepared {
    /// The raw fds to install as 0-2.
    pub fn raw(&self) -> [RawFd; 3] {
        [
            self.child[0].as_raw_fd(),
            self.child[1].as_raw_fd(),
            self.child[2].as_raw_fd(),
        ]
    }
}

fn err(msg: String) -> Status {
    Status {
        code: Code::Unknown as i32,
        message: msg,
        details: Vec::new(),
    }
}

fn open_output(t: &Target) -> Result<OwnedFd, Status> {
    match t {
        Target::Null | Target::Binary { .. } => stdio::dev_null().map_err(|e| err(e.to_string())),
        Target::Fifo(p) => stdio::open_fifo_rw(p).map_err(|e| err(e.to_string())),
        Target::File(p) => {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map(OwnedFd::from)
                .map_err(|e| err(format!("open log file {}: {e}", p.display())))
        }
    }
}

impl Proc {
    /// Opens the process's stdio (before create/exec). `console_path` is where a terminal's
    /// console socket is bound.
    pub fn prepare(
        &mut self,
        id: &str,
        namespace: &str,
        console_path: PathBuf,
    ) -> Result<Prepared, Status> {
        let stdin_fifo = if self.stdin.is_empty() {
            None
        } else {
            Some(stdio::open_fifo_reader(self.stdin.as_ref()).map_err(|e| err(e.to_string()))?)
        };
        let out = stdio::parse(&self.stdout).map_err(err)?;
        let errt = stdio::parse(&self.stderr).map_err(err)?;
        let null = || stdio::dev_null().map_err(|e| err(e.to_string()));
        if self.terminal {
            let out_fd = match &out {
                Target::Null => None,
                t => Some(open_output(t)?),
            };
            let _ = std::fs::remove_file(&console_path);
            let listener = UnixListener::bind(&console_path)
                .map_err(|e| err(format!("console socket {}: {e}", console_path.display())))?;
            self.pending_pty = Some((stdin_fifo, out_fd));
            return Ok(Prepared {
                child: [null()?, null()?, null()?],
                console: Some((console_path, listener)),
            });
        }
        let stdin_child = match stdin_fifo {
            Some(fifo) => {
                let (r, w) = stdio::pipe().map_err(|e| err(e.to_string()))?;
                self.copiers
                    .push(Copier::new(fifo, w, true, true).map_err(|e| err(e.to_string()))?);
                r
            }
            None => null()?,
        };
        let (out_fd, err_fd) = match (&out, &errt) {
            (Target::Binary { path, args }, _) => {
                stdio::spawn_logger(path, args, id, namespace).map_err(|e| err(e.to_string()))?
            }
            _ => (open_output(&out)?, open_output(&errt)?),
        };
        let child = [stdin_child, out_fd, err_fd];
        if self.io_owner != (0, 0) {
            for fd in &child {
                stdio::chown_pipe(fd, self.io_owner).map_err(|e| err(e.to_string()))?;
            }
        }
        Ok(Prepared {
            child,
            console: None,
        })
    }

    /// After create/exec with a terminal: takes the pty master from the console socket and
    /// starts copying between it and the fifos.
    pub fn attach_console(
        &mut self,
        console: Option<(PathBuf, UnixListener)>,
    ) -> Result<(), Status> {
        let Some((path, listener)) = console else {
            return Ok(());
        };
        let _ = std::fs::remove_file(&path);
        listener
            .set_nonblocking(true)
            .map_err(|e| err(e.to_string()))?;
        let (conn, _) = listener
            .accept()
            .map_err(|e| err(format!("console socket: no connection from berth: {e}")))?;
        conn.set_nonblocking(false)
            .map_err(|e| err(e.to_string()))?;
        let master = berth::console::recv_fd(conn.as_raw_fd()).map_err(|e| err(e.to_string()))?;
        let (stdin_fifo, out_fd) = self.pending_pty.take().unwrap_or((None, None));
        if let Some(fifo) = stdin_fifo {
            let m = stdio::dup(&master).map_err(|e| err(e.to_string()))?;
            self.copiers
                .push(Copier::new(fifo, m, false, true).map_err(|e| err(e.to_string()))?);
        }
        if let Some(out) = out_fd {
            let m = stdio::dup(&master).map_err(|e| err(e.to_string()))?;
            self.copiers
                .push(Copier::new(m, out, true, false).map_err(|e| err(e.to_string()))?);
        }
        self.master = Some(master);
        Ok(())
    }

    /// Records the exit; returns the parked waiters.
    pub fn exited(&mut self, status: u32) -> Vec<Waiter> {
        self.exit = Some((status, Timestamp::now()));
        // Copies from the pty keep running until the master reports EOF.
        std::mem::take(&mut self.waiters)
    }

    /// Closes stdin (CloseIO): the process sees EOF after what was written so far.
    pub fn close_stdin(&mut self) {
        for c in self.copiers.iter_mut().filter(|c| c.is_stdin) {
            c.close_input();
        }
    }
}

/// Maps a wait status to containerd's exit status (128 + signal for a signal death).
pub fn exit_code(status: libc::c_int) -> u32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u32
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status) as u32
    } else {
        255
    }
}
