//! SCMP_ACT_NOTIFY end to end: a small seccomp agent of our own (threads of this test) listens
//! at `linux.seccomp.listenerPath`, receives the listener fd and the containerProcessState
//! JSON, and answers the container's notified mkdir calls. The same cases run against runc
//! (it implements the same protocol) to prove the test.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// The agent: answers mkdir/mkdirat by the connection's `metadata`: "ERRNO=<n>" fails them
/// with that errno, anything else makes them "succeed" without creating anything; every other
/// notified syscall continues.
struct Agent {
    path: PathBuf,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            while !st2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let (state, fd) = receive(conn);
                        let answer = answer_of(&state);
                        s2.lock().unwrap().states.push(state);
                        let (s3, st3) = (s2.clone(), st2.clone());
                        handlers.push(std::thread::spawn(move || serve(fd, answer, &s3, &st3)));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    Err(e) => panic!("agent accept: {e}"),
                }
            }
            for h in handlers {
                h.join().unwrap();
            }
        });
        Agent {
            path,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn states(&self) -> Vec<Value> {
        self.seen.lock().unwrap().states.clone()
    }

    fn answered(&self) -> Vec<(i32, u32)> {
        self.seen.lock().unwrap().answered.clone()
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

/// Reads one connection: the fd from the first message's SCM_RIGHTS, the JSON until EOF.
fn receive(mut conn: UnixStream) -> (Value, OwnedFd) {
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
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(v) = c {
            // SAFETY: the kernel installed these descriptors for us.
            fds.extend(v.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    let n = msg.bytes;
    let mut data = buf[..n].to_vec();
    assert_eq!(fds.len(), 1, "exactly one fd expected with the state");
    // One message holds the whole state (runc keeps the connection open afterwards, so EOF
    // cannot be the end marker); read on only while the JSON is incomplete.
    let state: Value = loop {
        match serde_json::from_slice(&data) {
            Ok(v) => break v,
            Err(e) if e.is_eof() => {
                let mut more = [0u8; 4096];
                let k = conn.read(&mut more).unwrap();
                assert!(
                    k > 0,
                    "agent: truncated state {}",
                    String::from_utf8_lossy(&data)
                );
                data.extend_from_slice(&more[..k]);
            }
            Err(e) => panic!(
                "agent: bad state JSON {e}: {}",
                String::from_utf8_lossy(&data)
            ),
        }
    };
    (state, fds.pop().unwrap())
}

/// The errno to answer mkdir with (0: fake success).
fn answer_of(state: &Value) -> i32 {
    state["metadata"]
        .as_str()
        .and_then(|m| m.strip_prefix("ERRNO="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn serve(fd: OwnedFd, errno: i32, seen: &Mutex<Seen>, stop: &AtomicBool) {
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
            seen.lock().unwrap().answered.push((n.data.nr, n.pid));
        } else {
            resp.flags = FLAG_CONTINUE;
        }
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND with a filled struct seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND as _, &resp) };
    }
}

/// A runtime under test: berth, or runc to prove the test.
struct Rt {
    name: &'static str,
    bin: PathBuf,
}

fn runtimes() -> Vec<Rt> {
    let mut v = vec![Rt {
        name: "berth",
        bin: berth_bin(),
    }];
    let runc = PathBuf::from("/usr/sbin/runc");
    if runc.exists() {
        v.push(Rt {
            name: "runc",
            bin: runc,
        });
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("runc is missing: hack/test.sh installs it");
    } else {
        eprintln!("runc not installed: the agent is tested against berth only");
    }
    v
}

impl Rt {
    fn cmd(&self, w: &World) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&w.root);
        c.stdin(std::process::Stdio::null());
        c
    }

    fn run(&self, w: &World, id: &str) -> (i32, String, String) {
        decode(
            self.cmd(w)
                .args(["run", "--bundle"])
                .arg(&w.bundle)
                .arg(id)
                .output()
                .unwrap(),
        )
    }

    fn delete(&self, w: &World, id: &str) {
        let _ = self.cmd(w).args(["delete", "--force", id]).output();
    }
}

fn notify_config(w: &World, agent: &Agent, args: &[&str], metadata: &str, nnp: bool) {
    let mut c = w.base_config(args);
    c["process"]["noNewPrivileges"] = json!(nnp);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path,
        "listenerMetadata": metadata,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    w.write_config(&c);
}

const MKDIR: &str =
    "mkdir /tmp/made; echo rc=$?; if [ -d /tmp/made ]; then echo made; else echo absent; fi";

fn check_state(st: &Value, id: &str, bundle: &Path, status: &str, metadata: &str) {
    assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
    assert!(st["ociVersion"].is_string(), "{st}");
    assert_eq!(st["metadata"], json!(metadata), "{st}");
    assert!(st["pid"].as_i64().unwrap_or(0) > 0, "{st}");
    assert_eq!(st["state"]["id"], json!(id), "{st}");
    assert_eq!(st["state"]["status"], json!(status), "{st}");
    assert_eq!(
        st["state"]["bundle"].as_str().map(PathBuf::from),
        Some(bundle.canonicalize().unwrap()),
        "{st}"
    );
}

#[test]
fn agent_answers_notified_syscalls_of_the_init() {
    if !can_run() {
        return;
    }
    for rt in runtimes() {
        for nnp in [true, false] {
            let w = World::new(&["true"]);
            let agent = Agent::start(w.tmp.path());
            notify_config(&w, &agent, &["sh", "-c", MKDIR], "MKDIR=fake", nnp);
            let id = w.id("notify");
            let (code, out, err) = rt.run(&w, &id);
            rt.delete(&w, &id);
            let ctx = format!("{} nnp={nnp}: {out} {err}", rt.name);
            assert_eq!(code, 0, "{ctx}");
            // The agent made mkdir succeed without creating the directory.
            assert!(out.contains("rc=0"), "{ctx}");
            assert!(out.contains("absent"), "{ctx}");
            assert!(!w.bundle.join("rootfs/tmp/made").exists(), "{ctx}");
            let states = agent.states();
            assert_eq!(states.len(), 1, "{ctx}: {states:?}");
            check_state(&states[0], &id, &w.bundle, "creating", "MKDIR=fake");
            assert!(!agent.answered().is_empty(), "{ctx}");
            drop(agent);
            if rt.name == "berth" {
                w.assert_clean();
            }
        }
    }
}

#[test]
fn agent_answers_notified_syscalls_of_exec_processes() {
    if !can_run() {
        return;
    }
    for rt in runtimes() {
        let w = World::new(&["true"]);
        let agent = Agent::start(w.tmp.path());
        notify_config(&w, &agent, &["sleep", "30"], "ERRNO=18", true);
        let id = w.id("notify-exec");
        let bundle = w.bundle.to_string_lossy().into_owned();
        let st = rt
            .cmd(&w)
            .args(["run", "-d", "--bundle", &bundle, &id])
            .stdout(std::fs::File::create(w.tmp.path().join("out")).unwrap())
            .stderr(std::fs::File::create(w.tmp.path().join("err")).unwrap())
            .status()
            .unwrap();
        assert!(st.success(), "{}: run -d failed", rt.name);
        let (code, out, err) = decode(
            rt.cmd(&w)
                .args(["exec", &id, "sh", "-c", MKDIR])
                .output()
                .unwrap(),
        );
        rt.delete(&w, &id);
        let ctx = format!("{}: {out} {err} agent saw {:?}", rt.name, agent.states());
        assert_eq!(code, 0, "{ctx}");
        // EXDEV from the agent.
        assert!(out.contains("rc=1") && out.contains("absent"), "{ctx}");
        assert!(err.contains("cross-device"), "{ctx}");
        let states = agent.states();
        assert_eq!(states.len(), 2, "{ctx}: {states:?}");
        check_state(&states[0], &id, &w.bundle, "creating", "ERRNO=18");
        check_state(&states[1], &id, &w.bundle, "running", "ERRNO=18");
        let init_pid = states[0]["pid"].as_i64().unwrap();
        let exec_pid = states[1]["pid"].as_i64().unwrap();
        assert_ne!(init_pid, exec_pid, "{ctx}: {states:?}");
        // The notified mkdir came from the exec process (or a child of it).
        assert!(
            agent
                .answered()
                .iter()
                .any(|(_, p)| i64::from(*p) >= exec_pid),
            "{ctx}: {:?}",
            agent.answered()
        );
        drop(agent);
        if rt.name == "berth" {
            // runc leaves the cgroup parent behind; World's drop removes it.
            w.assert_clean();
        }
    }
}

#[test]
fn unreachable_agent_fails_create_and_leaves_nothing() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let mut c = w.base_config(&["true"]);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": w.tmp.path().join("nobody.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    });
    w.write_config(&c);
    let (code, _, err) = w.run("noagent");
    assert_ne!(code, 0);
    assert!(
        err.contains("linux.seccomp.listenerPath") && err.contains("nobody.sock"),
        "{err}"
    );
    w.assert_clean();
}
