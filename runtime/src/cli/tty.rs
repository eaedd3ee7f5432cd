//! Foreground `run` of a container with `process.terminal` and no `--console-socket`: berth
//! receives the pty master itself and copies between it and its own stdio (as runc does),
//! with the host terminal in raw mode and window size changes passed on.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// A console socket berth listens on for its own container.
pub struct OwnConsole {
    listener: UnixListener,
    dir: PathBuf,
    /// Path to pass as the console socket.
    pub path: PathBuf,
}

impl OwnConsole {
    /// Binds a socket in a private temporary directory.
    pub fn bind() -> anyhow::Result<OwnConsole> {
        let dir = std::env::temp_dir().join(format!("berth-tty-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("console.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(OwnConsole {
            listener,
            dir,
            path,
        })
    }

    /// Takes the pty master the container's init sent.
    pub fn receive(&self) -> anyhow::Result<OwnedFd> {
        let (conn, _) = self.listener.accept()?;
        Ok(berth::console::recv_fd(conn.as_raw_fd())?)
    }
}

impl Drop for OwnConsole {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Raw mode on a terminal, restored on drop.
struct Raw {
    fd: i32,
    saved: libc::termios,
}

impl Raw {
    fn enter(fd: i32) -> Option<Raw> {
        // SAFETY: isatty/tcgetattr/tcsetattr on an fd with a valid termios buffer.
        unsafe {
            if libc::isatty(fd) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            Some(Raw { fd, saved })
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: restoring the saved attributes on the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Copies the size of our terminal to the container's.
pub fn sync_size(master: &OwnedFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a valid winsize buffer.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Copies stdin -> master and master -> stdout until the container side closes.
pub fn proxy(master: &OwnedFd) {
    let _raw = Raw::enter(0);
    sync_size(master);
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if stdin_open {
            fds.push(libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: poll over a valid array.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                sync_size(master);
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            match nix::unistd::read(master, &mut buf) {
                Ok(n) if n > 0 => {
                    // SAFETY: fd 1 stays open for the life of the process.
                    let out = unsafe { BorrowedFd::borrow_raw(1) };
                    let _ = nix::unistd::write(out, &buf[..n]);
                }
                // EIO once the last slave descriptor is closed: the container has exited.
                _ => return,
            }
        }
        if stdin_open && fds.len() > 1 && fds[1].revents != 0 {
            // SAFETY: fd 0 stays open for the life of the process.
            let input = unsafe { BorrowedFd::borrow_raw(0) };
            match nix::unistd::read(input, &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = nix::unistd::write(master, &buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
    }
}
