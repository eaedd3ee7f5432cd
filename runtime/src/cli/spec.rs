//! `berth spec`.

use std::path::PathBuf;

/// Flags of spec.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to write config.json into.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Make a spec for a rootless container.
    #[arg(long)]
    pub rootless: bool,
}

/// Writes config.json; refuses to overwrite an existing one, like runc.
pub fn run(a: Args) -> anyhow::Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("File {} exists. Remove it first", path.display());
    }
    let text = serde_json::to_string_pretty(&berth::spec::default_spec(a.rootless))?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    Ok(0)
}
