//! `berth create`.

use super::Ctx;
use berth::container::{self, CreateOptions};
use std::path::PathBuf;

/// Flags of create (runc's).
#[derive(clap::Args, Debug, Clone)]
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
    /// Move the rootfs with MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra descriptors (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

impl Args {
    /// The library options for these flags.
    pub fn options(&self, ctx: &Ctx) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            root: ctx.root.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            systemd_cgroup: ctx.systemd_cgroup,
            no_cgroups: ctx.no_cgroups,
            start_here: false,
        }
    }
}

/// Runs create.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let created = container::create(&a.options(ctx))?;
    if let Some(p) = &a.pid_file {
        if let Err(e) = super::write_pid_file(p, created.state.pid) {
            let _ = container::delete(created.dir, &created.state, true);
            return Err(e);
        }
    }
    Ok(0)
}
