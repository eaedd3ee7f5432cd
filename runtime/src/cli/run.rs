//! `berth run`: create + start, then (unless detached) wait for the container's init,
//! forwarding signals to it, and exit with its status.

use super::log::Logger;
use super::Ctx;
use berth::container;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};

/// Flags of run.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bundle directory (default: current directory).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// File to write the container's init PID to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Return once the container has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Move the rootfs with MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra descriptors (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Do not become a subreaper (accepted for compatibility).
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Container id.
    pub id: String,
}

static TARGET: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Runs run.
pub fn run(ctx: &Ctx, a: Args, log: &Logger) -> anyhow::Result<i32> {
    if !a.detach {
        // The init may be a grandchild (PID namespace): become its reaper so we can wait for it.
        container::become_subreaper();
    }
    // A terminal in the foreground without a console socket: berth holds the pty itself.
    let terminal = berth::spec::load(&a.bundle)
        .ok()
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false);
    let own_console = if terminal && a.console_socket.is_none() && !a.detach {
        Some(super::tty::OwnConsole::bind()?)
    } else {
        None
    };
    let create = super::create::Args {
        bundle: a.bundle.clone(),
        pid_file: None,
        console_socket: own_console
            .as_ref()
            .map(|c| c.path.clone())
            .or_else(|| a.console_socket.clone()),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        id: a.id.clone(),
    };
    let created = container::create(&create.options(ctx))?;
    let pid = created.state.pid;
    if let Some(p) = &a.pid_file {
        if let Err(e) = super::write_pid_file(p, pid) {
            let _ = container::delete(created.dir, &created.state, true);
            return Err(e);
        }
    }
    match container::start(&created.dir, &created.state) {
        Ok(warnings) => warnings.iter().for_each(|w| log.warn(w)),
        Err(e) => {
            let _ = container::delete(created.dir, &created.state, true);
            return Err(e.into());
        }
    }
    if a.detach {
        return Ok(0);
    }
    TARGET.store(pid, Ordering::Relaxed);
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGCONT,
    ] {
        // SAFETY: installing a handler that only calls kill(2).
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
    // Release the lock while waiting so `state`, `kill` and friends work on the running container.
    drop(created.dir);
    if let Some(console) = &own_console {
        match console.receive() {
            Ok(master) => super::tty::proxy(&master),
            Err(e) => log.warn(&format!("terminal: {e}")),
        }
    }
    tracing::debug!(pid, "started; waiting");
    let code = container::wait_for(pid);
    tracing::debug!(code, "container exited");
    if !a.keep {
        let (dir, state) = container::load(&ctx.root, &a.id)?;
        for w in container::delete(dir, &state, true)? {
            log.warn(&w);
        }
        tracing::debug!("deleted");
    }
    Ok(code)
}
