//! `berth run`: create + start, then (unless detached) wait for the container's init,
//! forwarding signals to it, and exit with its status.

use super::log::Logger;
use super::Ctx;
use berth::container;

/// Flags of run: create's, plus detach/keep.
#[derive(clap::Args, Debug)]
#[group(id = "run_args")]
pub struct Args {
    /// Return once the container has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Do not become a subreaper (accepted for compatibility).
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// The flags shared with create, and the container id.
    #[command(flatten)]
    pub create: super::create::Args,
}

/// Runs run.
pub fn run(ctx: &Ctx, a: Args, log: &Logger) -> anyhow::Result<i32> {
    if !a.detach {
        // The init may be a grandchild (PID namespace): become its reaper so we can wait for it.
        container::become_subreaper();
    }
    // A terminal in the foreground without a console socket: berth holds the pty itself. Only
    // then is config.json read here (create reads it again).
    let wants_own_console = a.create.console_socket.is_none()
        && !a.detach
        && berth::spec::load_quietly(&a.create.bundle)
            .ok()
            .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
            .unwrap_or(false);
    let own_console = if wants_own_console {
        Some(super::tty::OwnConsole::bind()?)
    } else {
        None
    };
    let mut create = a.create.clone();
    create.pid_file = None;
    if let Some(c) = &own_console {
        create.console_socket = Some(c.path.clone());
    }
    let mut opts = create.options(ctx);
    // This process starts the container itself: no exec socket, the init waits on its channel.
    opts.start_here = true;
    let mut created = container::create(&opts)?;
    let pid = created.state.pid;
    if let Some(p) = &a.create.pid_file {
        if let Err(e) = super::write_pid_file(p, pid) {
            let _ = container::delete(created.dir, &created.state, true);
            return Err(e);
        }
    }
    berth::fault::point("before-start");
    match container::start_created(&mut created) {
        Ok(warnings) => {
            berth::trace::mark("started");
            warnings.iter().for_each(|w| log.warn(w))
        }
        Err(e) => {
            let _ = container::delete(created.dir, &created.state, true);
            return Err(e.into());
        }
    }
    if a.detach {
        return Ok(0);
    }
    super::signals::forward_to(pid);
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
    berth::trace::mark("waited");
    tracing::debug!(code, "container exited");
    if !a.keep {
        let (dir, state) = container::load(&ctx.root, &a.create.id)?;
        berth::trace::mark("state-loaded");
        for w in container::delete(dir, &state, true)? {
            log.warn(&w);
        }
        berth::trace::mark("deleted");
        tracing::debug!("deleted");
    }
    Ok(code)
}
