//! Process stdio as containerd describes it: fifo paths (ctr, the CRI), `file://` and
//! `binary://` log URIs, or nothing. stdout/stderr fifos are opened read-write, so the process
//! never gets EPIPE when no one reads and opening never blocks; they are handed to the process
//! directly (no copy). stdin goes through a pipe fed by a [`Copier`] so that EOF on the fifo or a
//! CloseIO closes the process's stdin. With a terminal, copiers move bytes between the fifos
//! and the pty master.

use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::Mode;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// Where one output stream goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Nowhere (/dev/null).
    Null,
    /// A fifo (or any path) opened read-write.
    Fifo(PathBuf),
    /// `file:///path`: appended to a file.
    File(PathBuf),
    /// `binary:///path?args`: a logging program reading fds 3 and 4.
    Binary {
        /// The program.
        path: PathBuf,
        /// Its arguments, from the query string.
        args: Vec<String>,
    },
}

/// Parses containerd's stdio string.
pub fn parse(s: &str) -> Result<Target, String> {
    if s.is_empty() {
        return Ok(Target::Null);
    }
    if let Some(rest) = s.strip_prefix("file://") {
        return Ok(Target::File(PathBuf::from(rest)));
    }
    if let Some(rest) = s.strip_prefix("binary://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut args = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            args.push(unescape(k));
            if !v.is_empty() {
                args.push(unescape(v));
            }
        }
        return Ok(Target::Binary {
            path: PathBuf::from(unescape(path)),
            args,
        });
    }
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(format!(
            "unsupported stdio URI scheme {scheme:?} in {s:?} (fifo paths, file:// and binary:// are)"
        ));
    }
    Ok(Target::Fifo(PathBuf::from(s)))
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn ctx(what: &str, path: &std::path::Path, e: impl Into<io::Error>) -> io::Error {
    let e = e.into();
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// /dev/null, close-on-exec.
pub fn dev_null() -> io::Result<OwnedFd> {
    let fd = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    Ok(fd)
}

/// Opens an output fifo read-write (never blocks, never EPIPE).
pub fn open_fifo_rw(path: &std::path::Path) -> io::Result<OwnedFd> {
    open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| ctx("open", path, e))
}

/// Opens an stdin fifo for reading without waiting for a writer.
pub fn open_fifo_reader(path: &std::path::Path) -> io::Result<OwnedFd> {
    open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx("open", path, e))
}

/// A close-on-exec pipe (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
}

/// Sets or clears O_NONBLOCK.
pub fn set_nonblock(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: the caller owns fd for the duration of the call.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let flags = OFlag::from_bits_truncate(fcntl(bfd, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_NONBLOCK
    } else {
        flags & !OFlag::O_NONBLOCK
    };
    fcntl(bfd, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Gives a pipe or fifo to `owner` (uid, gid), so a process running as that user can reopen
/// it through /proc/self/fd (`echo > /dev/stdout`); other descriptors (/dev/null, log files)
/// are left alone.
pub fn chown_pipe(fd: &OwnedFd, owner: (u32, u32)) -> io::Result<()> {
    let st = nix::sys::stat::fstat(fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Ok(());
    }
    nix::unistd::fchown(
        fd,
        Some(nix::unistd::Uid::from_raw(owner.0)),
        Some(nix::unistd::Gid::from_raw(owner.1)),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("chown stdio to {owner:?}: {e}"),
        )
    })
}

/// Duplicates a descriptor (close-on-exec).
pub fn dup(fd: &impl AsFd) -> io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}

/// Moves bytes from `src` to `dst` without blocking the event loop: the loop polls `src` for
/// input while the buffer is empty and `dst` for output while it is not.
pub struct Copier {
    /// Source (non-blocking).
    pub src: Option<OwnedFd>,
    /// Destination (non-blocking); dropped at the end of input when `close_dst` is set.
    pub dst: Option<OwnedFd>,
    buf: Vec<u8>,
    pos: usize,
    /// The source reached EOF (or was closed by CloseIO).
    pub eof: bool,
    /// Close `dst` once the source is exhausted (stdin pipes, output fifos).
    pub close_dst: bool,
    /// Which process stream this is, for CloseIO: true for stdin.
    pub is_stdin: bool,
}

impl Copier {
    /// A copier from `src` to `dst`; both are made non-blocking.
    pub fn new(src: OwnedFd, dst: OwnedFd, close_dst: bool, is_stdin: bool) -> io::Result<Copier> {
        set_nonblock(src.as_raw_fd(), true)?;
        set_nonblock(dst.as_raw_fd(), true)?;
        Ok(Copier {
            src: Some(src),
            dst: Some(dst),
            buf: Vec::new(),
            pos: 0,
            eof: false,
            close_dst,
            is_stdin,
        })
    }

    /// The descriptor and events to poll for, if any.
    pub fn interest(&self) -> Option<(RawFd, i16)> {
        if self.pos < self.buf.len() {
            return self.dst.as_ref().map(|d| (d.as_raw_fd(), libc::POLLOUT));
        }
        if self.eof || self.dst.is_none() {
            return None;
        }
        self.src.as_ref().map(|s| (s.as_raw_fd(), libc::POLLIN))
    }

    /// Done: nothing more will move.
    pub fn finished(&self) -> bool {
        (self.eof && self.pos >= self.buf.len()) || self.dst.is_none()
    }

    /// Marks the input as ended (CloseIO): what is already readable is still copied.
    pub fn close_input(&mut self) {
        let _ = self.pump_read();
        self.eof = true;
        self.src = None;
        self.finish_if_done();
    }

    fn finish_if_done(&mut self) {
        if self.eof && self.pos >= self.buf.len() && self.close_dst {
            self.dst = None;
        }
    }

    fn pump_read(&mut self) -> io::Result<()> {
        let Some(src) = self.src.as_ref() else {
            return Ok(());
        };
        if self.pos < self.buf.len() {
            return Ok(());
        }
        let mut tmp = [0u8; 32 * 1024];
        match nix::unistd::read(src, &mut tmp) {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.buf.clear();
                self.buf.extend_from_slice(&tmp[..n]);
                self.pos = 0;
            }
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            // A pty master reports EIO once every slave is closed: that is its EOF.
            Err(_) => self.eof = true,
        }
        Ok(())
    }

    /// Moves what can be moved now.
    pub fn pump(&mut self) {
        let _ = self.pump_read();
        while self.pos < self.buf.len() {
            let Some(dst) = self.dst.as_ref() else { break };
            match nix::unistd::write(dst, &self.buf[self.pos..]) {
                Ok(n) => self.pos += n,
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => break,
                Err(_) => {
                    // The reader went away for good (a closed pipe): drop the stream.
                    self.dst = None;
                    self.buf.clear();
                    self.pos = 0;
                }
            }
        }
        if self.pos >= self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        }
        self.finish_if_done();
    }
}

/// Opens containerd's shim log fifo for writing without blocking (None when no one reads it).
pub fn open_log_fifo(path: &std::path::Path) -> Option<OwnedFd> {
    let fd = open(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK, Mode::empty()).ok()?;
    Some(fd)
}

/// Starts a `binary://` logger with the process's stdout/stderr pipes as fds 3 and 4 and a
/// readiness pipe as fd 5 (closed by the logger when it is ready), as containerd's shims do.
/// Returns the write ends for the process's stdout and stderr.
pub fn spawn_logger(
    path: &std::path::Path,
    args: &[String],
    id: &str,
    namespace: &str,
) -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::unix::process::CommandExt;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = std::process::Command::new(path);
    cmd.args(args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in fds.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| ctx("start logging binary", path, e))?;
    drop((out_r, err_r, ready_w));
    // Wait (bounded) for the logger to close its end of the readiness pipe.
    let mut pfd = libc::pollfd {
        fd: ready_r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, 10_000) };
    // The logger is reaped by the shim's SIGCHLD handling like any other child.
    std::mem::forget(child);
    Ok((out_w, err_w))
}

/// Runs `f` with `fds` installed as this process's fds 0, 1 and 2 (so a process berth forks
/// inherits them), then puts the shim's own stdio back. The shim is single-threaded, so no other
/// code observes the swap.
pub fn with_stdio<T>(fds: [RawFd; 3], f: impl FnOnce() -> T) -> io::Result<T> {
    let mut saved = Vec::with_capacity(3);
    for i in 0..3 {
        // SAFETY: F_DUPFD_CLOEXEC on a standard descriptor; the result is owned below.
        let s = unsafe { libc::fcntl(i, libc::F_DUPFD_CLOEXEC, 10) };
        if s < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: s was just returned by fcntl and is owned by nobody else.
        saved.push(unsafe { OwnedFd::from_raw_fd(s) });
    }
    for (i, fd) in fds.iter().enumerate() {
        // SAFETY: dup2 onto a standard descriptor.
        if unsafe { libc::dup2(*fd, i as i32) } < 0 {
            let e = io::Error::last_os_error();
            restore(&saved);
            return Err(e);
        }
    }
    let out = f();
    restore(&saved);
    Ok(out)
}

fn restore(saved: &[OwnedFd]) {
    for (i, s) in saved.iter().enumerate() {
        // SAFETY: dup2 of an fd we own onto a standard descriptor.
        unsafe { libc::dup2(s.as_raw_fd(), i as i32) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_containerd_stdio_forms() {
        assert_eq!(parse("").unwrap(), Target::Null);
        assert_eq!(
            parse("/run/containerd/fifo/1/c-stdout").unwrap(),
            Target::Fifo("/run/containerd/fifo/1/c-stdout".into())
        );
        assert_eq!(
            parse("file:///var/log/c.log").unwrap(),
            Target::File("/var/log/c.log".into())
        );
        assert_eq!(
            parse("binary:///usr/bin/logger?tag=web&debug").unwrap(),
            Target::Binary {
                path: "/usr/bin/logger".into(),
                args: vec!["tag".into(), "web".into(), "debug".into()]
            }
        );
        assert_eq!(
            parse("binary:///bin/l?a=x%20y").unwrap(),
            Target::Binary {
                path: "/bin/l".into(),
                args: vec!["a".into(), "x y".into()]
            }
        );
        assert!(parse("tcp://1.2.3.4:5").unwrap_err().contains("tcp"));
    }

    #[test]
    fn copier_moves_bytes_and_closes_at_eof() {
        let (a_r, a_w) = pipe().unwrap();
        let (b_r, b_w) = pipe().unwrap();
        let mut c = Copier::new(a_r, b_w, true, true).unwrap();
        nix::unistd::write(&a_w, b"abc").unwrap();
        c.pump();
        drop(a_w);
        c.pump();
        assert!(c.finished());
        assert!(c.dst.is_none());
        let mut buf = [0u8; 8];
        let n = nix::unistd::read(&b_r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"abc");
        assert_eq!(nix::unistd::read(&b_r, &mut buf).unwrap(), 0);
    }
}
