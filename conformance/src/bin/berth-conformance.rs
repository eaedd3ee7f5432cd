//! `berth-conformance`: runs the OCI runtime conformance cases against one runtime
//! (`--runtime PATH` or `RUNTIME=`) or several side by side (`--compare runc,crun,berth`).

use anyhow::{bail, Context, Result};
use berth_conformance::report::{compare_table, keep_hand_written, markdown, summary_table, Tap};
use berth_conformance::{cases, runtime, suite, RuntimeReport, Suite, Verdict};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;

/// OCI runtime-spec conformance checks for runc-compatible runtimes.
#[derive(Parser, Debug)]
#[command(name = "berth-conformance", version)]
struct Cli {
    /// The runtime to test: a path, or runc, crun, berth.
    #[arg(long, env = "RUNTIME")]
    runtime: Option<String>,
    /// Compare runtimes side by side, e.g. runc,crun,berth (names or paths).
    #[arg(long, value_delimiter = ',')]
    compare: Vec<String>,
    /// Only cases whose id (chapter/name) contains one of these comma-separated words.
    #[arg(long)]
    filter: Option<String>,
    /// Print TAP (one line per assertion) on stdout.
    #[arg(long)]
    tap: bool,
    /// Write the comparison as Markdown to this file (e.g. docs/compatibility.md).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// The command line shown in the Markdown as the way to regenerate it.
    #[arg(long, default_value = "hack/conformance.sh")]
    regenerate_command: String,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// Scratch directory for bundles and state.
    #[arg(long, default_value = "/var/tmp")]
    workdir: PathBuf,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let all = suite::select(cases::all(), cli.filter.as_deref());
    if cli.list {
        for c in &all {
            println!("{:<40} {}", c.id(), c.doc);
        }
        return Ok(());
    }
    let names: Vec<String> = if !cli.compare.is_empty() {
        cli.compare.clone()
    } else if let Some(r) = &cli.runtime {
        vec![r.clone()]
    } else {
        bail!("give --runtime PATH (or RUNTIME=) or --compare runc,crun,berth");
    };
    let ws = workspace();
    let suite = Suite::new(&cli.workdir).context("preparing the suite")?;
    let mut reports: Vec<RuntimeReport> = Vec::new();
    let mut tap = Tap::new();
    let stdout = std::io::stdout();
    if cli.tap {
        writeln!(stdout.lock(), "{}", Tap::header())?;
    }
    for name in &names {
        let (short, path) = runtime::resolve(name, &ws)?;
        let rt = suite.runtime(&short, &path)?;
        eprintln!("== {} ({}): {} cases", short, path.display(), all.len());
        let rep = suite.run(&rt, &all, |r| {
            if cli.tap {
                let mut lock = stdout.lock();
                for l in tap.lines(&short, r) {
                    let _ = writeln!(lock, "{l}");
                }
            } else {
                let mark = match &r.verdict {
                    Verdict::Pass => "pass".to_string(),
                    Verdict::Fail(why) => format!("FAIL  {why}"),
                    Verdict::Skip(why) => format!("skip  {why}"),
                };
                eprintln!("{:<40} {mark}", r.id);
            }
        });
        reports.push(rep);
    }
    if cli.tap {
        writeln!(stdout.lock(), "{}", tap.plan())?;
    }
    for rep in &reports {
        eprintln!();
        eprint!("{}", summary_table(rep));
    }
    if reports.len() > 1 {
        eprintln!();
        eprint!("{}", compare_table(&reports));
    }
    if let Some(md) = &cli.markdown {
        if let Some(dir) = md.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        let old = std::fs::read_to_string(md).unwrap_or_default();
        let text = keep_hand_written(&old, &markdown(&reports, &cli.regenerate_command));
        std::fs::write(md, text).with_context(|| format!("writing {}", md.display()))?;
        eprintln!("wrote {}", md.display());
    }
    for rep in &reports {
        let c = rep.counts();
        eprintln!(
            "{}: {} passed, {} failed, {} skipped",
            rep.name, c.pass, c.fail, c.skip
        );
    }
    let failed = reports.len() == 1 && reports[0].counts().fail > 0;
    // Remove the scratch directory before exiting (process::exit skips destructors).
    drop(suite);
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
