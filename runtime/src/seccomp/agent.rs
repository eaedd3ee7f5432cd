//! Handing a seccomp listener to the agent at `linux.seccomp.listenerPath`, as the runtime
//! spec describes it: one connection per listener to the AF_UNIX SOCK_STREAM socket, one
//! message whose payload is the `containerProcessState` JSON and whose SCM_RIGHTS carry the
//! listener (named "seccompFd" in `fds`), then the connection is closed.
//!
//! The container's process installs the filter and sends the listener to its berth parent
//! over the sync channel ([`crate::init::sync::Msg::SeccompListener`]); the parent, which is
//! on the host side of every namespace, calls [`hand_over`] and then lets the process go on.

use super::SeccompError;
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Map, Value};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

/// The name of the listener in `containerProcessState.fds`.
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// The fields of the runtime spec's State (runtime.md) kept from berth's state JSON (which
/// adds runc's `rootfs`, `created` and `owner`).
const STATE_FIELDS: &[&str] = &["ociVersion", "id", "status", "pid", "bundle", "annotations"];

/// The `containerProcessState` for the process `pid` of the container whose OCI state is
/// `state` (berth's state JSON with the status the container has now: "creating" for its
/// init, "running" for an `exec` process).
pub fn process_state(state: &Value, oci_version: &str, pid: i32, metadata: Option<&str>) -> Value {
    let mut st = Map::new();
    for k in STATE_FIELDS {
        if let Some(v) = state.get(*k) {
            st.insert((*k).to_string(), v.clone());
        }
    }
    let mut doc = json!({
        "ociVersion": oci_version,
        "fds": [SECCOMP_FD_NAME],
        "pid": pid,
        "state": Value::Object(st),
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        doc["metadata"] = json!(m);
    }
    doc
}

/// Sends `listener` with the state of process `pid` to the agent named by `profile`.
pub fn hand_over(
    profile: &LinuxSeccomp,
    state: &Value,
    oci_version: &str,
    pid: i32,
    listener: BorrowedFd<'_>,
) -> Result<(), SeccompError> {
    let path = profile
        .listener_path()
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| SeccompError::Invalid {
            path: "linux.seccomp.listenerPath".into(),
            msg: "must name the seccomp agent's unix socket when a rule uses SCMP_ACT_NOTIFY"
                .into(),
        })?;
    let doc = process_state(
        state,
        oci_version,
        pid,
        profile.listener_metadata().as_deref(),
    );
    let payload = serde_json::to_vec(&doc).map_err(|e| agent_err(path, e.into()))?;
    send(path, &payload, listener).map_err(|e| agent_err(path, e))
}

/// [`hand_over`] of the listener that came with the last message on `ch`, for a container
/// whose config is `spec`.
pub fn from_channel(
    spec: &oci_spec::runtime::Spec,
    ch: &crate::init::sync::Channel,
    state: &Value,
    pid: i32,
) -> Result<(), SeccompError> {
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let (Some(profile), Some(fd)) = (profile, ch.take_fd()) else {
        return Err(SeccompError::Invalid {
            path: "linux.seccomp".into(),
            msg: "the container's process reported a seccomp listener berth did not expect".into(),
        });
    };
    hand_over(profile, state, crate::OCI_VERSION, pid, fd.as_fd())
}

fn agent_err(path: &Path, source: std::io::Error) -> SeccompError {
    SeccompError::Agent {
        path: path.to_path_buf(),
        source,
    }
}

/// One connection, one message (payload + the fd), closed on return.
fn send(path: &Path, payload: &[u8], fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    connect(sock.as_raw_fd(), &addr)?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(payload)];
    let n = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    // A stream socket may take part of the payload; the fd went with the first byte.
    let mut sent = n;
    while sent < payload.len() {
        sent += nix::sys::socket::send(sock.as_raw_fd(), &payload[sent..], MsgFlags::MSG_NOSIGNAL)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_state_has_the_spec_fields_only() {
        let state = json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 0,
            "bundle": "/b", "rootfs": "/b/rootfs", "created": "x", "owner": "",
            "annotations": {"k": "v"}});
        let d = process_state(&state, "1.2.0", 42, Some("MKDIR=1"));
        assert_eq!(d["fds"], json!(["seccompFd"]));
        assert_eq!(d["pid"], json!(42));
        assert_eq!(d["metadata"], json!("MKDIR=1"));
        assert_eq!(d["state"]["id"], json!("c1"));
        assert_eq!(d["state"]["annotations"]["k"], json!("v"));
        assert!(d["state"].get("rootfs").is_none());
        assert!(d["state"].get("owner").is_none());
        let d = process_state(&state, "1.2.0", 42, None);
        assert!(d.get("metadata").is_none());
    }
}
