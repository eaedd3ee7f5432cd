//! SSH agent forwarding (`--ssh` and `RUN --mount=type=ssh`): which agent
//! socket an id names, and the socket a RUN sees.
//!
//! A RUN never gets the host's socket itself: each ssh mount is a socket
//! of its own in the step's scratch directory, with the mount's mode and
//! owner, whose connections are relayed to the agent while the RUN runs
//! (as BuildKit does). The agent's keys never leave it.

use std::collections::BTreeMap;
use std::io;
use std::net::Shutdown;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use thiserror::Error;

/// Errors about SSH forwarding.
#[derive(Debug, Error)]
pub enum SshError {
    /// A `--ssh` value that cannot be used.
    #[error("invalid --ssh {spec:?}: {reason}")]
    Flag {
        /// The flag's value.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A `required` ssh mount whose id was not given.
    #[error("ssh agent {0:?} is required but was not provided: pass --ssh {0}=$SSH_AUTH_SOCK")]
    Missing(String),
    /// The relay socket could not be made.
    #[error("ssh agent {id:?}: {reason}")]
    Relay {
        /// The ssh id.
        id: String,
        /// What went wrong.
        reason: String,
    },
}

/// Parses one `--ssh` value: `ID` (the agent at `$SSH_AUTH_SOCK`) or
/// `ID=SOCKET`; `env_sock` is `$SSH_AUTH_SOCK`. Key files (which BuildKit
/// loads into an agent of its own) are refused with a clear message.
pub fn parse_ssh_flag(spec: &str, env_sock: Option<&str>) -> Result<(String, PathBuf), SshError> {
    let bad = |reason: &str| SshError::Flag {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (id, path) = match spec.split_once('=') {
        Some((id, p)) => (id, p.to_string()),
        None => (
            spec,
            env_sock
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("SSH_AUTH_SOCK is not set: give ID=SOCKET"))?
                .to_string(),
        ),
    };
    if id.is_empty() || id.contains(',') {
        return Err(bad("use ID or ID=SOCKET (e.g. default=$SSH_AUTH_SOCK)"));
    }
    if path.contains(',') {
        return Err(bad(
            "several paths (key files) are not supported: give one agent socket",
        ));
    }
    let path = PathBuf::from(path);
    match std::fs::metadata(&path) {
        Ok(m) if m.file_type().is_socket() => Ok((id.to_string(), path)),
        Ok(_) => Err(bad(&format!(
            "{} is not a socket; berth-build forwards running ssh-agents only (key files are not \
             supported: ssh-add them to an agent)",
            path.display()
        ))),
        Err(e) => Err(bad(&format!("{}: {e}", path.display()))),
    }
}

/// The agents given with `--ssh`, by id.
pub type SshAgents = BTreeMap<String, PathBuf>;

/// A relay socket in front of an agent, serving until dropped.
#[derive(Debug)]
pub struct AgentRelay {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AgentRelay {
    /// Listens on `path` (mode `mode`, owner `uid:gid`) and relays every
    /// connection to the agent socket `agent`.
    pub fn start(
        id: &str,
        agent: &Path,
        path: &Path,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<AgentRelay, SshError> {
        let fail = |what: &str, e: io::Error| SshError::Relay {
            id: id.to_string(),
            reason: format!("{what} {}: {e}", path.display()),
        };
        let listener = UnixListener::bind(path).map_err(|e| fail("cannot listen on", e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777))
            .map_err(|e| fail("chmod", e))?;
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| fail("chown", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let agent = agent.to_path_buf();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ssh-relay".into())
            .spawn(move || serve(listener, &agent, &flag))
            .map_err(|e| fail("thread for", e))?;
        Ok(AgentRelay {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// The relay socket's host path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: UnixListener, agent: &Path, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = conn else { continue };
        let upstream = match UnixStream::connect(agent) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("ssh relay: cannot reach agent {}: {e}", agent.display());
                continue;
            }
        };
        // Each connection: one thread per direction; they end with it.
        let _ = std::thread::Builder::new()
            .name("ssh-relay-conn".into())
            .spawn(move || relay(client, upstream));
    }
}

fn relay(client: UnixStream, upstream: UnixStream) {
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let back = std::thread::spawn(move || {
        let _ = io::copy(&mut u2, &mut c2);
        let _ = c2.shutdown(Shutdown::Write);
    });
    let (mut c, mut u) = (client, upstream);
    let _ = io::copy(&mut c, &mut u);
    let _ = u.shutdown(Shutdown::Write);
    let _ = back.join();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn flags() {
        let dir = tempfile::tempdir().expect("dir");
        let sock = dir.path().join("agent.sock");
        let _l = UnixListener::bind(&sock).expect("bind");
        let s = sock.display().to_string();
        assert_eq!(
            parse_ssh_flag("default", Some(&s)).expect("default"),
            ("default".to_string(), sock.clone())
        );
        assert_eq!(
            parse_ssh_flag(&format!("gh={s}"), None).expect("gh").0,
            "gh"
        );
        let file = dir.path().join("id_ed25519");
        std::fs::write(&file, "key").expect("key");
        for (spec, env, want) in [
            ("default".to_string(), None, "SSH_AUTH_SOCK"),
            (format!("default={}", file.display()), None, "not a socket"),
            (format!("default={s},{s}"), None, "key files"),
            (format!("={s}"), None, "ID=SOCKET"),
            ("default=/nonexistent/x".to_string(), None, "/nonexistent/x"),
        ] {
            let e = parse_ssh_flag(&spec, env).expect_err(&spec).to_string();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn relay_forwards_both_ways_and_cleans_up() {
        let dir = tempfile::tempdir().expect("dir");
        let agent = dir.path().join("agent.sock");
        let l = UnixListener::bind(&agent).expect("bind");
        let echo = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).expect("read");
            s.write_all(&buf).expect("echo");
        });
        let relay_path = dir.path().join("relay.sock");
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let r = AgentRelay::start("default", &agent, &relay_path, 0o600, uid, gid).expect("relay");
        let mode = std::fs::metadata(&relay_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut c = UnixStream::connect(r.path()).expect("connect");
        c.write_all(b"hello").expect("write");
        let mut got = [0u8; 5];
        c.read_exact(&mut got).expect("read back");
        assert_eq!(&got, b"hello");
        echo.join().expect("echo thread");
        drop(r);
        assert!(!relay_path.exists());
    }
}
