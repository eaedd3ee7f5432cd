//! `berth ps`: the container's processes (JSON: their PIDs; table: `ps` output filtered to them).

use super::Ctx;
use berth::container;

/// Flags of ps.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: table or json.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Container id.
    pub id: String,
    /// Arguments for ps(1) (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// Runs ps.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let (_dir, state) = container::peek(&ctx.root, &a.id)?;
    // Rootless without a delegated cgroup there is no cgroup to list: walk /proc instead.
    let pids = if state.cgroup.dirs.is_empty() {
        container::procs::without_cgroup(state.pid)
    } else {
        state.cgroup.pids()
    };
    match a.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(0)
        }
        "table" => {
            let args = if a.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                a.ps_args.clone()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| anyhow::anyhow!("running ps: {e}"))?;
            if !out.status.success() {
                anyhow::bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| anyhow::anyhow!("ps output has no PID column"))?;
            println!("{header}");
            for l in lines {
                if let Some(pid) = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok())
                {
                    if pids.contains(&pid) {
                        println!("{l}");
                    }
                }
            }
            Ok(0)
        }
        _ => anyhow::bail!("invalid format option"),
    }
}
