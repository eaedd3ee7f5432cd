//! `berth state`.

use super::Ctx;
use berth::container;

/// Flags of state.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// Prints the OCI state JSON (indented, as runc does).
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let (dir, state) = container::peek(&ctx.root, &a.id)?;
    let oci = state.oci(state.status(&dir.path));
    println!("{}", serde_json::to_string_pretty(&oci)?);
    Ok(0)
}
