//! `berth-docgen SHARE`: writes the man pages (SHARE/man/man1/*.1, one per command and
//! subcommand) and the bash, zsh and fish completions of `berth` and `berth-build`, where those
//! shells look under a prefix's share/ directory (SHARE/bash-completion/completions/NAME,
//! SHARE/zsh/site-functions/_NAME, SHARE/fish/vendor_completions.d/NAME.fish), rendered from
//! the same clap definitions the binaries parse with.
//!
//! The CLI modules are compiled here from the binaries' own source files, so there is one
//! definition of every flag; the binaries themselves never link clap_mangen or clap_complete.
//! The output is byte-for-byte the same for one source tree (no dates, sorted by clap's order).

// The command implementations come along with their definitions but are never called here.
// The test build leaves them out: their unit tests run in berth and berth-build.
#[cfg(not(test))]
#[allow(dead_code)]
#[path = "../../runtime/src/cli/mod.rs"]
mod berth_cli;

#[cfg(not(test))]
#[allow(dead_code)]
#[path = "../../builder/src/main.rs"]
mod builder_main;

mod render;

#[cfg(not(test))]
fn main() -> anyhow::Result<()> {
    use anyhow::{bail, Context};
    use clap::CommandFactory;
    use std::path::PathBuf;

    let args: Vec<String> = std::env::args().skip(1).collect();
    let [share] = args.as_slice() else {
        bail!("usage: berth-docgen SHARE_DIR");
    };
    let share = PathBuf::from(share);
    for cmd in [berth_cli::Cli::command(), builder_main::Cli::command()] {
        render::man_pages(&cmd, &share.join("man/man1"))
            .with_context(|| format!("man pages of {}", cmd.get_name()))?;
        render::completions(&cmd, &share)
            .with_context(|| format!("completions of {}", cmd.get_name()))?;
    }
    Ok(())
}
