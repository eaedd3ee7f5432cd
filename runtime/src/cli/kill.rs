//! `berth kill`.

use super::Ctx;
use berth::container;

/// Flags of kill.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Signal every process in the container's cgroup.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Runs kill.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let sig = berth::signal::parse(&a.signal).map_err(anyhow::Error::msg)?;
    let (dir, state) = container::load(&ctx.root, &a.id)?;
    container::kill(&dir, &state, sig, a.all)?;
    Ok(0)
}
