//! Parent <-> container-init messages over a SOCK_SEQPACKET socketpair (one message per packet).

use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// One message between `berth create` and the process it forked.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Child -> parent: I made a user namespace; write my uid/gid maps.
    MapIds,
    /// Parent -> child: done; `state` is the OCI state JSON for hooks run in the container.
    Ack {
        /// State JSON, when the parent has it.
        state: Option<String>,
    },
    /// Child -> parent: the container's init has this host PID.
    Pid(i32),
    /// Child -> parent: mounts are done; run prestart and createRuntime hooks.
    RunHooks,
    /// Child -> parent: set up, waiting for `start`.
    Ready,
    /// Either way: a fatal error with its message.
    Error(String),
}

/// One end of the socketpair.
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair (close-on-exec, so neither end leaks into the user's program).
    pub fn pair() -> io::Result<(Channel, Channel)> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        Ok((Channel(a), Channel(b)))
    }

    /// Sends a message.
    pub fn send(&self, m: &Msg) -> io::Result<()> {
        let buf = serde_json::to_vec(m).map_err(io::Error::other)?;
        nix::sys::socket::send(
            self.0.as_raw_fd(),
            &buf,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        )
        .map_err(io::Error::from)?;
        Ok(())
    }

    /// Receives a message; `Ok(None)` when the other end closed.
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match nix::sys::socket::recv(
                self.0.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            ) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    return serde_json::from_slice(&buf[..n])
                        .map(Some)
                        .map_err(io::Error::other)
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }

    /// Waits for an Ack; an Error message or EOF becomes an error.
    pub fn expect_ack(&self) -> Result<Option<String>, String> {
        match self.recv() {
            Ok(Some(Msg::Ack { state })) => Ok(state),
            Ok(Some(Msg::Error(e))) => Err(e),
            Ok(Some(other)) => Err(format!("unexpected message {other:?}")),
            Ok(None) => Err("runtime parent went away".into()),
            Err(e) => Err(format!("sync socket: {e}")),
        }
    }

    /// The raw descriptor.
    pub fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }

    /// Rebuilds a channel from a raw descriptor.
    ///
    /// # Safety
    /// `fd` must be an open socket that nothing else owns.
    pub unsafe fn from_raw(fd: i32) -> Channel {
        // SAFETY: guaranteed by the caller.
        Channel(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
