//! A minimal seccomp agent hosted by the suite (threads of the suite process) for the
//! SCMP_ACT_NOTIFY case: it listens on a unix socket, takes the containerProcessState and the
//! listener fd of each connection (one message, SCM_RIGHTS, as the runtime spec describes),
//! makes every notified mkdir/mkdirat "succeed" without creating anything and lets any other
//! notified syscall continue.

use serde_json::Value;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// SECCOMP_IOCTL_NOTIF_RECV.
const NOTIF_RECV: u64 = 0xc050_2100;
/// SECCOMP_IOCTL_NOTIF_SEND.
const NOTIF_SEND: u64 = 0xc018_2101;
/// SECCOMP_USER_NOTIF_FLAG_CONTINUE.
const FLAG_CONTINUE: u32 = 1;

/// The agent: its socket, what it received, and its threads (stopped on drop).
pub struct Agent {
    /// The socket to give as `linux.seccomp.listenerPath`.
    pub path: PathBuf,
    states: Arc<Mutex<Vec<Value>>>,
    answered: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Agent {
    /// An agent listening at `dir`/agent.sock.
    pub fn start(dir: &Path) -> std::io::Result<Agent> {
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        let states = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, a2, st2) = (states.clone(), answered.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            while !st2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        if let Some((state, fd)) = receive(conn) {
                            if let Ok(mut s) = s2.lock() {
                                s.push(state);
                            }
                            let (a3, st3) = (a2.clone(), st2.clone());
                            handlers.push(std::thread::spawn(move || serve(fd, &a3, &st3)));
                        }
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
            states,
            answered,
            stop,
            thread: Some(thread),
        })
    }

    /// The containerProcessState of each connection so far.
    pub fn states(&self) -> Vec<Value> {
        self.states.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many mkdir calls it answered.
    pub fn answered(&self) -> usize {
        self.answered.lock().map(|a| *a).unwrap_or(0)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One message: the fd from its SCM_RIGHTS, the JSON (read on while incomplete; runc keeps
/// the connection open, so EOF is no end marker).
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
    let state = loop {
        match serde_json::from_slice::<Value>(&data) {
            Ok(v) => break v,
            Err(e) if e.is_eof() => {
                let mut more = [0u8; 4096];
                let k = conn.read(&mut more).ok().filter(|k| *k > 0)?;
                data.extend_from_slice(&more[..k]);
            }
            Err(_) => return None,
        }
    };
    Some((state, fds.into_iter().next()?))
}

fn serve(fd: OwnedFd, answered: &Mutex<usize>, stop: &AtomicBool) {
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
            return;
        }
        let mut n = Notif::default();
        // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a zeroed struct seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV as _, &mut n) } < 0 {
            continue;
        }
        let mut resp = NotifResp {
            id: n.id,
            ..Default::default()
        };
        if n.data.nr == mkdir || n.data.nr == mkdirat {
            if let Ok(mut a) = answered.lock() {
                *a += 1;
            }
        } else {
            resp.flags = FLAG_CONTINUE;
        }
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND with a filled struct seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &resp) };
    }
}
