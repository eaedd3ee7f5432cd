//! OOM notification: on cgroup v1 an eventfd registered through `cgroup.event_control` on the
//! container's `memory.oom_control`, polled by the event loop. On cgroup2 (no such interface) the
//! OOM-kill counter in `memory.events` is compared whenever a process of the container exits.

use berth::cgroups::Placement;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Registers an OOM eventfd for the container's v1 memory cgroup, if it has one.
pub fn register(p: &Placement) -> Option<OwnedFd> {
    let dir = p.v1.get("memory")?;
    // SAFETY: eventfd with valid flags; the result is owned below.
    let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if efd < 0 {
        return None;
    }
    // SAFETY: efd was just created and is owned by nobody else.
    let efd = unsafe { OwnedFd::from_raw_fd(efd) };
    let ctl = std::fs::File::open(dir.join("memory.oom_control")).ok()?;
    let mut ev = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.event_control"))
        .ok()?;
    ev.write_all(format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd()).as_bytes())
        .ok()?;
    Some(efd)
}
