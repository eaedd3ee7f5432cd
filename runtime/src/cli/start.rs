//! `berth start`.

use super::log::Logger;
use super::Ctx;
use berth::container;

/// Flags of start.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// Runs start.
pub fn run(ctx: &Ctx, a: Args, log: &Logger) -> anyhow::Result<i32> {
    let (dir, state) = container::load(&ctx.root, &a.id)?;
    for w in container::start(&dir, &state)? {
        log.warn(&w);
    }
    Ok(0)
}
