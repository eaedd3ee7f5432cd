//! The shim's single-threaded event loop: one poll(2) over the ttrpc listener and connections,
//! a self-pipe written by the SIGCHLD handler, the stdio copiers and the OOM eventfds. Having
//! one thread is what makes forking containers from this process safe (no lock can be held by
//! another thread at fork time) and keeps the shim's memory small.

use crate::proto::{Code, Request, Status};
use crate::task::{Reply, Shim};
use crate::ttrpc;
use prost::Message;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The service names containerd calls: v2 (containerd 1.6-1.7, and 2.x for shims that print a
/// plain address) and v3 (containerd 2.x; the same messages with added fields).
pub const TASK_SERVICES: [&str; 2] = ["containerd.task.v2.Task", "containerd.task.v3.Task"];

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
/// Set by SIGTERM or SIGINT: the loop returns and the daemon removes what it owns.
static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGTERM || sig == libc::SIGINT {
        TERMINATE.store(true, Ordering::Relaxed);
    }
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the wake-up byte.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

extern "C" fn on_sigpipe(_: libc::c_int) {}

/// Installs the SIGCHLD, SIGTERM and SIGINT handlers (self-pipe) and a no-op SIGPIPE handler.
/// Handlers, unlike SIG_IGN or a blocked mask, are reset by execve, so containers start with
/// default signals.
pub fn install_signals() -> std::io::Result<OwnedFd> {
    let (r, w) = crate::stdio::pipe()?;
    crate::stdio::set_nonblock(r.as_raw_fd(), true)?;
    crate::stdio::set_nonblock(w.as_raw_fd(), true)?;
    SIGNAL_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w);
    for (sig, h) in [
        (libc::SIGCHLD, on_signal as extern "C" fn(libc::c_int)),
        (libc::SIGTERM, on_signal),
        (libc::SIGINT, on_signal),
        (libc::SIGPIPE, on_sigpipe),
    ] {
        // SAFETY: a zeroed sigaction with a valid handler and flags.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = h as usize;
            sa.sa_flags = libc::SA_RESTART
                | if sig == libc::SIGCHLD {
                    libc::SA_NOCLDSTOP
                } else {
                    0
                };
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(r)
}

struct Conn {
    stream: UnixStream,
    reader: ttrpc::Reader,
    out: Vec<u8>,
    closed: bool,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.flush();
    }

    fn flush(&mut self) {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
        if self.out.capacity() > 64 << 10 {
            self.out = Vec::new();
        }
    }
}

enum Token {
    Listener,
    Signal,
    Conn(u64),
    Copier(String, String, usize),
    Oom(String),
    Events,
}

/// Serves until Shutdown (with no containers left), SIGTERM/SIGINT, or until the listener
/// fails. On SIGTERM the containers keep running: containerd sees the shim gone and cleans up
/// through `delete`, as for a killed shim.
pub fn serve(listener: UnixListener, signals: OwnedFd, shim: &mut Shim) {
    let _ = listener.set_nonblocking(true);
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_conn = 0u64;
    loop {
        shim.reap();
        for (cid, bytes) in shim.outbox.drain(..) {
            if let Some(c) = conns.get_mut(&cid) {
                c.send(&bytes);
            }
        }
        for c in shim.containers.values_mut() {
            for p in std::iter::once(&mut c.init).chain(c.execs.values_mut()) {
                p.copiers.retain(|cp| !cp.finished());
            }
        }
        conns.retain(|_, c| !c.closed);
        // Leaving waits for the last events (TaskDelete) unless containerd cannot be reached.
        if shim.exit
            && conns.values().all(|c| c.out.is_empty())
            && (!shim.events.pending() || shim.events.needs_retry())
        {
            return;
        }
        if TERMINATE.load(Ordering::Relaxed) {
            tracing::debug!("SIGTERM: leaving");
            return;
        }
        let mut fds = Vec::new();
        let mut tokens = Vec::new();
        let mut add = |fd: RawFd, events: i16, t: Token| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            tokens.push(t);
        };
        add(listener.as_raw_fd(), libc::POLLIN, Token::Listener);
        add(signals.as_raw_fd(), libc::POLLIN, Token::Signal);
        if let Some(fd) = shim.events.fd() {
            add(fd, libc::POLLIN, Token::Events);
        }
        for (id, c) in &conns {
            let ev = libc::POLLIN | if c.out.is_empty() { 0 } else { libc::POLLOUT };
            add(c.stream.as_raw_fd(), ev, Token::Conn(*id));
        }
        for (id, c) in &shim.containers {
            if let Some(fd) = &c.oom_fd {
                add(fd.as_raw_fd(), libc::POLLIN, Token::Oom(id.clone()));
            }
            let procs = std::iter::once((String::new(), &c.init))
                .chain(c.execs.iter().map(|(k, v)| (k.clone(), v)));
            for (eid, p) in procs {
                for (i, cp) in p.copiers.iter().enumerate() {
                    if let Some((fd, ev)) = cp.interest() {
                        add(fd, ev, Token::Copier(id.clone(), eid.clone(), i));
                    }
                }
            }
        }
        // Events waiting for containerd (it is restarting) are retried every second.
        let timeout = if shim.events.needs_retry() { 1000 } else { -1 };
        // SAFETY: fds is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n == 0 {
            shim.events.flush();
            continue;
        }
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            tracing::error!("poll: {e}");
            return;
        }
        let mut served = false;
        for (pfd, tok) in fds.iter().zip(tokens) {
            if pfd.revents == 0 {
                continue;
            }
            match tok {
                Token::Listener => {
                    while let Ok((s, _)) = listener.accept() {
                        let _ = s.set_nonblocking(true);
                        next_conn += 1;
                        conns.insert(
                            next_conn,
                            Conn {
                                stream: s,
                                reader: ttrpc::Reader::default(),
                                out: Vec::new(),
                                closed: false,
                            },
                        );
                    }
                }
                Token::Signal => {
                    let mut buf = [0u8; 64];
                    while matches!(nix::unistd::read(&signals, &mut buf), Ok(n) if n > 0) {}
                }
                Token::Conn(id) => {
                    if let Some(c) = conns.get_mut(&id) {
                        if pfd.revents & libc::POLLOUT != 0 {
                            c.flush();
                        }
                        if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                            read_conn(id, c, shim);
                            served = true;
                        }
                    }
                }
                Token::Copier(cid, eid, i) => {
                    if let Some(c) = shim.containers.get_mut(&cid) {
                        let p = if eid.is_empty() {
                            Some(&mut c.init)
                        } else {
                            c.execs.get_mut(&eid)
                        };
                        if let Some(cp) = p.and_then(|p| p.copiers.get_mut(i)) {
                            cp.pump();
                        }
                    }
                }
                Token::Oom(cid) => shim.on_oom_event(&cid),
                Token::Events => shim.events.on_readable(),
            }
        }
        if served {
            // A Create or Exec parses a spec and allocates for the child it forks; what was
            // freed goes back to the kernel instead of staying in the long-lived heap.
            // SAFETY: malloc_trim only releases free memory of glibc's allocator.
            unsafe { libc::malloc_trim(0) };
        }
    }
}

fn read_conn(id: u64, c: &mut Conn, shim: &mut Shim) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => {
                c.closed = true;
                break;
            }
            Ok(n) => c.reader.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                c.closed = true;
                break;
            }
        }
    }
    loop {
        let frame = match c.reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("ttrpc: {e}; closing connection");
                c.closed = true;
                break;
            }
        };
        if frame.kind != ttrpc::TYPE_REQUEST {
            continue;
        }
        let reply = match Request::decode(frame.payload.as_slice()) {
            Err(e) => Reply::Now(Err(Status {
                code: Code::InvalidArgument as i32,
                message: format!("bad ttrpc request: {e}"),
                details: Vec::new(),
            })),
            Ok(req) if !TASK_SERVICES.contains(&req.service.as_str()) => Reply::Now(Err(Status {
                code: Code::Unimplemented as i32,
                message: format!("service {} is not served by berth's shim", req.service),
                details: Vec::new(),
            })),
            Ok(req) => {
                tracing::debug!(method = req.method, "request");
                shim.handle(id, frame.stream, &req.method, &req.payload)
            }
        };
        if let Reply::Now(r) = reply {
            if let Err(s) = &r {
                tracing::debug!(code = s.code, "error: {}", s.message);
            }
            c.send(&ttrpc::response(frame.stream, r));
        }
    }
}
