//! `berth exec`: run a process in a running container (runc's flags).

use super::log::Logger;
use super::Ctx;
use berth::container::{self, ExecOptions};
use oci_spec::runtime::{Capability, Process};
use std::path::PathBuf;
use std::str::FromStr;

/// Flags of exec.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Unix socket that receives the pty master when --tty is given.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=value), repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// User as uid[:gid].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A process.json describing the process (overrides the other process flags).
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's PID to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label (accepted; SELinux is not supported).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile (accepted; AppArmor is not supported).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability, repeatable.
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Pass N extra descriptors (3..3+N).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec in a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Container id, then the command and its arguments.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn build_process(ctx: &Ctx, a: &Args) -> anyhow::Result<Process> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("--process {}: {e}", path.display()))?;
        return Ok(berth::spec::parse_json::<Process>(path, &text)?);
    }
    if a.command.is_empty() {
        anyhow::bail!("exec: a command is required (or --process FILE)");
    }
    let (_dir, state) = container::peek(&ctx.root, &a.id)?;
    let mut p = state.spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u.parse::<u32>()?, Some(g.parse::<u32>()?)),
            None => (
                u.parse::<u32>()
                    .map_err(|_| anyhow::anyhow!("--user {u:?}: give a numeric uid[:gid]"))?,
                None,
            ),
        };
        let mut user = p.user().clone();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let c = Capability::from_str(name.trim_start_matches("CAP_"))
                .map_err(|_| anyhow::anyhow!("--cap {name:?}: unknown capability"))?;
            let mut b = caps.bounding().clone().unwrap_or_default();
            b.insert(c);
            caps.set_bounding(Some(b));
            let mut e = caps.effective().clone().unwrap_or_default();
            e.insert(c);
            caps.set_effective(Some(e));
            let mut pm = caps.permitted().clone().unwrap_or_default();
            pm.insert(c);
            caps.set_permitted(Some(pm));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// Runs exec.
pub fn run(ctx: &Ctx, a: Args, _log: &Logger) -> anyhow::Result<i32> {
    let process = build_process(ctx, &a)?;
    if !a.detach {
        container::become_subreaper();
    }
    let pid = container::exec(&ExecOptions {
        root: ctx.root.clone(),
        id: a.id.clone(),
        process,
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    })?;
    if let Some(p) = &a.pid_file {
        super::write_pid_file(p, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    super::signals::forward_to(pid);
    Ok(container::wait_for(pid))
}
