//! `berth events`: stats (once with --stats, else every --interval) and OOM notifications,
//! one JSON object per line like runc's.

use super::Ctx;
use berth::container;
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

/// Flags of events.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats events (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id.
    pub id: String,
}

fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow::anyhow!("--interval {s:?}: use a duration such as 5s or 500ms");
    if let Some(ms) = s.strip_suffix("ms") {
        let ms: u64 = ms.parse().map_err(|_| bad())?;
        if ms == 0 {
            anyhow::bail!("duration interval must be greater than 0");
        }
        return Ok(Duration::from_millis(ms));
    }
    if let Some(m) = s.strip_suffix('m') {
        return Ok(Duration::from_secs(
            m.parse::<u64>().map_err(|_| bad())? * 60,
        ));
    }
    let secs: f64 = s
        .strip_suffix('s')
        .unwrap_or(s)
        .parse()
        .map_err(|_| bad())?;
    if secs <= 0.0 {
        anyhow::bail!("duration interval must be greater than 0");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One event as runc prints it, keys in runc's order: `{"type":...,"id":...,"data":...}`
/// (`data` left out when there is none, as for `oom`).
fn event_line(kind: &str, id: &str, data: Option<&Value>) -> String {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    match data {
        Some(d) => format!("{{\"type\":{},\"id\":{},\"data\":{d}}}", q(kind), q(id)),
        None => format!("{{\"type\":{},\"id\":{}}}", q(kind), q(id)),
    }
}

/// Runs events until the container stops (or once with --stats).
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let interval = parse_interval(&a.interval)?;
    let (dir, state) = container::peek(&ctx.root, &a.id)?;
    if state.status(&dir.path) == container::Status::Stopped {
        anyhow::bail!("container with id {} is not running", a.id);
    }
    let stats = || {
        event_line(
            "stats",
            &a.id,
            Some(&berth::cgroups::stats::collect(&state.cgroup)),
        )
    };
    let mut out = std::io::stdout();
    if a.stats {
        writeln!(out, "{}", stats())?;
        return Ok(0);
    }
    let mut ooms = berth::cgroups::stats::oom_kills(&state.cgroup);
    let mut next = Instant::now();
    loop {
        if Instant::now() >= next {
            writeln!(out, "{}", stats())?;
            out.flush()?;
            next += interval;
        }
        let now = berth::cgroups::stats::oom_kills(&state.cgroup);
        if now > ooms {
            ooms = now;
            writeln!(out, "{}", event_line("oom", &a.id, None))?;
            out.flush()?;
        }
        if !state.alive() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100).min(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_runc_key_order() {
        let d = serde_json::json!({"b": 1, "a": 2});
        assert_eq!(
            event_line("stats", "c\"1", Some(&d)),
            r#"{"type":"stats","id":"c\"1","data":{"a":2,"b":1}}"#
        );
        assert_eq!(event_line("oom", "x", None), r#"{"type":"oom","id":"x"}"#);
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("2").unwrap(), Duration::from_secs(2));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").is_err());
    }
}
