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

/// Lays out `rows` as runc's Go tabwriter does (minimum width 12, padding 3, spaces): every
/// cell but the last of a line is padded to its column's width; the last cell is not padded.
fn tabwrite(rows: &[[String; 6]]) -> String {
    let mut widths = [12usize; 5];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (c, w) in r.iter().zip(widths) {
            out.push_str(&format!("{c:<w$}"));
        }
        out.push_str(&r[5]);
        out.push('\n');
    }
    out
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
            let table: Vec<[String; 6]> = std::iter::once(header).chain(rows).collect();
            print!("{}", tabwrite(&table));
        }
        _ => anyhow::bail!("invalid format option"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_gos_tabwriter() {
        let row = |v: [&str; 6]| v.map(String::from);
        let t = tabwrite(&[
            row(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]),
            row([
                "a-long-container-id",
                "42",
                "running",
                "/b",
                "2026-12-01T21:00:00Z",
                "",
            ]),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        // Widths: max(12, longest cell + 3) for every column but the last.
        let want0 = format!(
            "{:<22}{:<12}{:<12}{:<12}{:<23}OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        assert_eq!(lines[0], want0);
        let want1 = format!(
            "{:<22}{:<12}{:<12}{:<12}{:<23}",
            "a-long-container-id", "42", "running", "/b", "2026-12-01T21:00:00Z"
        );
        assert_eq!(lines[1], want1);
    }
}
