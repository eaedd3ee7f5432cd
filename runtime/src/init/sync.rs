//! Parent <-> container-init messages over a SOCK_SEQPACKET socketpair (one message per packet).

use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

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
    /// Child -> parent, with the filter's listener fd attached (SCM_RIGHTS): the seccomp
    /// filter is on; send the listener to the agent at listenerPath and Ack.
    SeccompListener,
    /// Either way: a fatal error with its message.
    Error(String),
}

/// One end of the socketpair; a descriptor that came with the last message waits in
/// [`Channel::take_fd`].
pub struct Channel(OwnedFd, Mutex<Option<OwnedFd>>);

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
        Ok((Channel(a, Mutex::new(None)), Channel(b, Mutex::new(None))))
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

    /// Sends a message with `fd` attached (SCM_RIGHTS).
    pub fn send_with_fd(&self, m: &Msg, fd: BorrowedFd<'_>) -> io::Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let buf = serde_json::to_vec(m).map_err(io::Error::other)?;
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [io::IoSlice::new(&buf)];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(io::Error::from)?;
        Ok(())
    }

    /// Receives a message; `Ok(None)` when the other end closed. A descriptor sent with it is
    /// kept for [`Channel::take_fd`] (close-on-exec).
    pub fn recv(&self) -> io::Result<Option<Msg>> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let (n, fd) = match recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs().map_err(io::Error::from)? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: the kernel installed this descriptor for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    (msg.bytes, fd)
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            };
            if let Some(fd) = fd {
                *self.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
            }
            if n == 0 {
                return Ok(None);
            }
            return serde_json::from_slice(&buf[..n])
                .map(Some)
                .map_err(io::Error::other);
        }
    }

    /// The descriptor that came with the last message that carried one.
    pub fn take_fd(&self) -> Option<OwnedFd> {
        self.1.lock().unwrap_or_else(|e| e.into_inner()).take()
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
        Channel(unsafe { OwnedFd::from_raw_fd(fd) }, Mutex::new(None))
    }
}
