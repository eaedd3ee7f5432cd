//! `berth delete`.

use super::log::Logger;
use super::Ctx;
use berth::container::{self, Error};

/// Flags of delete.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill the container if it is still running.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id.
    pub id: String,
}

/// Runs delete; with --force a missing container is not an error (as runc).
pub fn run(ctx: &Ctx, a: Args, log: &Logger) -> anyhow::Result<i32> {
    let (dir, state) = match container::load(&ctx.root, &a.id) {
        Ok(v) => v,
        Err(Error::NotExist(_)) if a.force => return Ok(0),
        // A create killed before it wrote its state: clean up what it recorded it would make.
        Err(e) if a.force => {
            if container::delete_incomplete(&ctx.root, &a.id)? {
                return Ok(0);
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    for w in container::delete(dir, &state, a.force)? {
        log.warn(&w);
    }
    Ok(0)
}
