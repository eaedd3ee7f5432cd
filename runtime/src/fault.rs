//! Fault injection for the leak tests (debug builds only): `BERTH_FAULT=<point>` makes the
//! `berth` process SIGKILL itself when it reaches that point, as a crash or an OOM kill would.
//! Release builds compile every point to nothing and never read the variable. Points in
//! `create`: `after-dir`, `after-cgroup`, `after-state`, `after-fork`, `after-rootfs` (the init
//! has built the rootfs and waits), `before-ready` (the init is set up, its pid not yet
//! recorded); in `run`: `before-start` (created, the init waits on the sync channel); in
//! `start`: `before-exec` (the init was released and goes on to exec).

/// At point `name`: SIGKILL this process if BERTH_FAULT says so.
#[inline]
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    {
        if std::env::var_os("BERTH_FAULT").is_some_and(|v| v == name) {
            // SAFETY: raise(3) of SIGKILL on this process.
            unsafe { libc::raise(libc::SIGKILL) };
        }
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = name;
    }
}
