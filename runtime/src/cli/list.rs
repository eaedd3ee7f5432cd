//! `berth list`.

use super::Ctx;
use berth::container;

/// Flags of list.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format: table or json.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Prints the containers.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let all = container::list(&ctx.root)?;
    if a.quiet {
        for c in &all {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => {
            if all.is_empty() {
                println!("null");
            } else {
                println!("{}", serde_json::to_string(&all)?);
            }
        }
        "table" => {
            let rows: Vec<[String; 6]> = all
                .iter()
                .map(|c| {
                    [
                        c.id.clone(),
                        c.pid.to_string(),
                        c.status.as_str().to_string(),
                        c.bundle.display().to_string(),
                        c.created.clone(),
                        c.owner.clone(),
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let mut widths = header.clone().map(|h| h.len());
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            for r in std::iter::once(&header).chain(rows.iter()) {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
        _ => anyhow::bail!("invalid format option"),
    }
    Ok(0)
}
