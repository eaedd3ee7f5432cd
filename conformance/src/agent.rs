//! A small seccomp agent hosted by its caller (threads of the conformance suite, or of
//! runtime/tests/seccomp_notify.rs) for SCMP_ACT_NOTIFY: it listens on a unix socket, takes
//! the containerProcessState and the listener fd of each connection (one message, SCM_RIGHTS,
//! as the runtime spec describes) and answers the notified syscalls: mkdir/mkdirat by the
//! connection's `metadata` ("ERRNO=<n>" fails them with that errno, anything else makes them
//! "succeed" without creating anything); any other syscall continues, except that the first
//! one of a connection chosen with [`Agent::hold`] waits until [`Agent::release`].
//! A connection it cannot read (no fd, no JSON state) is dropped: the caller sees no state.

use serde_json::Value;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// struct seccomp_data.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// struct seccomp_notif.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

/// struct seccomp_notif_resp.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// _IOWR('!', 0, struct seccomp_notif).
const NOTIF_RECV: u64 = 0xc050_2100;
/// _IOWR('!', 1, struct seccomp_notif_resp).
const NOTIF_SEND: u64 = 0xc018_2101;
/// SECCOMP_USER_NOTIF_FLAG_CONTINUE.
const FLAG_CONTINUE: u32 = 1;

/// What the agent saw: one containerProcessState per connection, and the notified syscalls
/// (number, pid) it answered.
#[derive(Default)]
struct Seen {
    states: Vec<Value>,
    answered: Vec<(i32, u32)>,
    /// Host pid of the process waiting in a held syscall.
    held: Option<u32>,
}

/// Which connection's first non-mkdir syscall is held, and whether it was released.
#[derive(Default)]
struct Hold {
    conn: AtomicUsize,
    released: AtomicBool,
}

/// The agent: answers mkdir/mkdirat by the connection's `metadata`: "ERRNO=<n>" fails them
/// with that errno, anything else makes them "succeed" without creating anything; every other
/// notified syscall continues.
pub struct Agent {
    /// The socket to give as `linux.seccomp.listenerPath`.
    pub path: PathBuf,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    hold: Arc<Hold>,
    thread: Option<JoinHandle<()>>,
}

impl Agent {
    /// An agent listening at `dir`/agent.sock.
    pub fn start(dir: &Path) -> std::io::Result<Agent> {
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(Hold::default());
        let (s2, st2, h2) = (seen.clone(), stop.clone(), hold.clone());
        let thread = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            let mut n = 0;
            while !st2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let Some((state, fd)) = receive(conn) else {
                            continue;
                        };
                        let answer = answer_of(&state);
                        lock(&s2).states.push(state);
                        n += 1;
                        let held = h2.conn.load(Ordering::SeqCst) == n;
                        let (s3, st3, h3) = (s2.clone(), st2.clone(), h2.clone());
                        handlers.push(std::thread::spawn(move || {
                            serve(fd, answer, &s3, &st3, held.then_some(&*h3))
                        }));
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        Ok(Agent {
            path,
            seen,
            stop,
            hold,
            thread: Some(thread),
        })
    }

    /// The containerProcessState of each connection so far.
    pub fn states(&self) -> Vec<Value> {
        lock(&self.seen).states.clone()
    }

    /// The mkdir calls answered: (syscall number, host pid).
    pub fn answered(&self) -> Vec<(i32, u32)> {
        lock(&self.seen).answered.clone()
    }

    /// Holds the first notified non-mkdir syscall of connection `n` (1-based).
    pub fn hold(&self, n: usize) {
        self.hold.conn.store(n, Ordering::SeqCst);
    }

    /// Waits up to `timeout` for the held process; its host pid.
    pub fn held(&self, timeout: std::time::Duration) -> Option<u32> {
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if let Some(p) = lock(&self.seen).held {
                return Some(p);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        None
    }

    /// Lets the held syscall continue.
    pub fn release(&self) {
        self.hold.released.store(true, Ordering::SeqCst);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.release();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the agent saw so far; a poisoned lock (a panicking caller thread) still holds it.
fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads one connection: the fd from the first message's SCM_RIGHTS and the JSON state (read
/// on while incomplete: runc keeps the connection open, so EOF is no end marker). None when
/// the message has no single fd or no valid state.
fn receive(mut conn: UnixStream) -> Option<(Value, OwnedFd)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 1 << 16];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().ok()? {
        if let ControlMessageOwned::ScmRights(v) = c {
            // SAFETY: the kernel installed these descriptors for us.
            fds.extend(v.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    let n = msg.bytes;
    let mut data = buf[..n].to_vec();
    if fds.len() != 1 {
        return None;
    }
    let state: Value = loop {
        match serde_json::from_slice(&data) {
            Ok(v) => break v,
            Err(e) if e.is_eof() => {
                let mut more = [0u8; 4096];
                let k = conn.read(&mut more).ok().filter(|k| *k > 0)?;
                data.extend_from_slice(&more[..k]);
            }
            Err(_) => return None,
        }
    };
    Some((state, fds.pop()?))
}

/// The errno to answer mkdir with (0: fake success).
fn answer_of(state: &Value) -> i32 {
    state["metadata"]
        .as_str()
        .and_then(|m| m.strip_prefix("ERRNO="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Answers one listener's notifications until every process under the filter is gone (or the
/// agent stops).
fn serve(fd: OwnedFd, errno: i32, seen: &Mutex<Seen>, stop: &AtomicBool, hold: Option<&Hold>) {
    let mut hold = hold;
    let (mkdir, mkdirat) = (libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32);
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 50) };
        if r == 0 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        }
        if r < 0 || pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: every process under the filter has exited.
            return;
        }
        let mut n = Notif::default();
        // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a zeroed struct seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut n) } < 0 {
            continue; // ENOENT: the caller died meanwhile.
        }
        let mut resp = NotifResp {
            id: n.id,
            ..Default::default()
        };
        if n.data.nr == mkdir || n.data.nr == mkdirat {
            resp.error = -errno;
            lock(seen).answered.push((n.data.nr, n.pid));
        } else {
            if let Some(h) = hold.take() {
                lock(seen).held = Some(n.pid);
                while !h.released.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            resp.flags = FLAG_CONTINUE;
        }
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND with a filled struct seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &resp) };
    }
}
