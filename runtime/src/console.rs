//! Terminals: a pty made inside the container, its master sent to `--console-socket` with
//! SCM_RIGHTS (as runc does), the slave made the controlling terminal and stdio.

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Connects to the console socket given on the command line.
pub fn connect(path: &std::path::Path) -> io::Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("--console-socket {}: {e}", path.display()),
        )
    })
}

/// Opens a new pty pair from the container's /dev/ptmx; returns (master, slave, slave path).
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd, String)> {
    // SAFETY: open with a static path; the fd is wrapped at once.
    let m = unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if m < 0 {
        return Err(io::Error::new(
            io::Error::last_os_error().kind(),
            format!("open /dev/ptmx: {}", io::Error::last_os_error()),
        ));
    }
    // SAFETY: fresh fd.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to int.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &mut unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty number to an unsigned int.
    if unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let name = format!("/dev/pts/{n}");
    let cname = std::ffi::CString::new(name.clone()).map_err(|_| io::Error::other("pty name"))?;
    // SAFETY: valid C string.
    let s = unsafe {
        libc::open(
            cname.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(io::Error::new(
            io::Error::last_os_error().kind(),
            format!("open {name}: {}", io::Error::last_os_error()),
        ));
    }
    // SAFETY: fresh fd.
    Ok((master, unsafe { OwnedFd::from_raw_fd(s) }, name))
}

/// Sets the terminal size.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ takes a pointer to winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `fd` over the unix socket with `name` as the message payload.
pub fn send_fd(sock: RawFd, fd: RawFd, name: &str) -> io::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None).map_err(io::Error::from)?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`] (used by `run` in the foreground and by tests).
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(io::Error::other(
        "no file descriptor received on console socket",
    ))
}

/// Makes `slave` the controlling terminal of a new session and the process's stdio.
pub fn make_controlling(slave: &OwnedFd) -> io::Result<()> {
    // setsid fails if we already lead a session; that is fine.
    let _ = nix::unistd::setsid();
    // SAFETY: TIOCSCTTY with arg 0 on a valid tty fd.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    for target in 0..3 {
        // SAFETY: dup2 onto stdio numbers.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
