//! `berth pause` and `berth resume`.

use super::Ctx;
use berth::container;

/// Flags of pause/resume.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// Freezes the container.
pub fn pause(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let (dir, state) = container::load(&ctx.root, &a.id)?;
    container::pause(&dir, &state)?;
    Ok(0)
}

/// Thaws the container.
pub fn resume(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let (dir, state) = container::load(&ctx.root, &a.id)?;
    container::resume(&dir, &state)?;
    Ok(0)
}
