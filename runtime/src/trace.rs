//! Phase timestamps for latency work: with `BERTH_TRACE=FILE` in the environment, every
//! [`mark`] appends one line `berth-trace <pid> <CLOCK_MONOTONIC ns> <phase>` to FILE
//! (`BERTH_TRACE=2` writes to stderr). `hack/bench/breakdown.sh` records the clock just before
//! it spawns berth and turns the lines of many runs into a median per phase.
//!
//! Off (the variable unset), a mark is one relaxed atomic load. The trace file is opened
//! `O_CLOEXEC`, so the container's program never inherits it; marks made in the container's
//! set-up processes (stage 1, the init before execve) write with a single `write(2)` to the
//! shared descriptor, so lines of several processes never interleave.

use std::sync::atomic::{AtomicI32, Ordering};

/// The trace descriptor, -1 when tracing is off.
static FD: AtomicI32 = AtomicI32::new(-1);

/// Reads `BERTH_TRACE` and opens its file. Called once, first thing in `main`.
pub fn init_from_env() {
    let Some(target) = std::env::var_os("BERTH_TRACE") else {
        return;
    };
    if target == "2" {
        FD.store(2, Ordering::Relaxed);
        mark("main");
        return;
    }
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&target);
    if let Ok(f) = file {
        FD.store(std::os::fd::IntoRawFd::into_raw_fd(f), Ordering::Relaxed);
        mark("main");
    }
}

/// Whether tracing is on.
pub fn enabled() -> bool {
    FD.load(Ordering::Relaxed) >= 0
}

/// Records that `phase` ends now. Async-signal-safe apart from formatting into a stack
/// buffer, so forked children may call it.
pub fn mark(phase: &str) {
    let fd = FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a valid out pointer; getpid has no preconditions.
    let (pid, now) = unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        (libc::getpid(), ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
    };
    let mut buf = [0u8; 160];
    let line = format_line(&mut buf, pid, now, phase);
    // SAFETY: writes the formatted bytes to the trace descriptor; errors are ignored.
    unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) };
}

/// Records this process's memory (`VmHWM`, `RssAnon`, `RssFile` of /proc/self/status, kB)
/// as phases named `mem-<field>=<kB>`; called by the CLI before it exits.
pub fn mark_memory() {
    if !enabled() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        for field in ["VmHWM", "RssAnon", "RssFile"] {
            if let Some(v) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
                let kb = v.trim().trim_end_matches(" kB");
                mark(&format!("mem-{field}={kb}"));
            }
        }
    }
}

/// Formats `berth-trace PID NS PHASE\n` into `buf` without allocating.
fn format_line<'a>(buf: &'a mut [u8; 160], pid: i32, ns: i64, phase: &str) -> &'a [u8] {
    use std::io::Write;
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cur, "berth-trace {pid} {ns} ");
    let room = 159usize.saturating_sub(cur.position() as usize);
    let p = &phase.as_bytes()[..phase.len().min(room)];
    let _ = cur.write_all(p);
    let _ = cur.write_all(b"\n");
    let n = cur.position() as usize;
    &buf[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_pid_time_and_phase() {
        let mut buf = [0u8; 160];
        let l = format_line(&mut buf, 42, 123456789, "fork");
        assert_eq!(l, b"berth-trace 42 123456789 fork\n");
    }

    #[test]
    fn long_phase_names_are_cut_to_the_buffer() {
        let mut buf = [0u8; 160];
        let long = "x".repeat(400);
        let l = format_line(&mut buf, 1, 2, &long);
        assert_eq!(l.len(), 160);
        assert_eq!(l.last(), Some(&b'\n'));
    }
}
