//! `berth update`: new resource limits from a JSON file (`-r FILE|-`) and/or runc's flags.

use super::Ctx;
use berth::container;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;

/// Flags of update (runc's).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// LinuxResources JSON file, or - for stdin.
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (µs).
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (µs).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares.
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// Realtime period (µs).
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime (µs).
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs allowed (cpuset).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed (cpuset).
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g suffix; -1 for none).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation (soft limit).
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory + swap limit.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes (-1 or 0 for none).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Kernel memory limit (accepted and ignored, as the kernel ignores it).
    #[arg(long = "kernel-memory")]
    pub kernel_memory: Option<String>,
    /// Kernel TCP memory limit (accepted and ignored).
    #[arg(long = "kernel-memory-tcp")]
    pub kernel_memory_tcp: Option<String>,
    /// Intel RDT/CAT L3 cache schema (refused: berth has no Intel RDT support, which is what
    /// runc answers on hosts without RDT).
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (refused, as above).
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// Container id.
    pub id: String,
}

/// Parses a byte count with an optional k/m/g/t suffix (binary units, as docker and runc).
pub fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let t = s.trim().to_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (digits, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size {s:?}"))?;
    Ok((n * mult as f64) as i64)
}

fn set(v: &mut Value, section: &str, key: &str, val: Value) {
    if !v[section].is_object() {
        v[section] = json!({});
    }
    v[section][key] = val;
}

/// Runs update.
pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    if a.l3_cache_schema.is_some() {
        anyhow::bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if a.mem_bw_schema.is_some() {
        anyhow::bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    let mut v: Value = match &a.resources {
        Some(p) => {
            let mut text = Vec::new();
            if p.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut text)?;
            } else {
                text = std::fs::read(p)
                    .map_err(|e| anyhow::anyhow!("--resources {}: {e}", p.display()))?;
            }
            let name = if p.as_os_str() == "-" {
                PathBuf::from("<stdin>")
            } else {
                p.clone()
            };
            berth::spec::parse_json::<Value>(&name, &text)?
        }
        None => json!({}),
    };
    if let Some(w) = a.blkio_weight {
        set(&mut v, "blockIO", "weight", json!(w));
    }
    if let Some(x) = a.cpu_period {
        set(&mut v, "cpu", "period", json!(x));
    }
    if let Some(x) = a.cpu_quota {
        set(&mut v, "cpu", "quota", json!(x));
    }
    if let Some(x) = a.cpu_share {
        set(&mut v, "cpu", "shares", json!(x));
    }
    if let Some(x) = a.cpu_rt_period {
        set(&mut v, "cpu", "realtimePeriod", json!(x));
    }
    if let Some(x) = a.cpu_rt_runtime {
        set(&mut v, "cpu", "realtimeRuntime", json!(x));
    }
    if let Some(x) = &a.cpuset_cpus {
        set(&mut v, "cpu", "cpus", json!(x));
    }
    if let Some(x) = &a.cpuset_mems {
        set(&mut v, "cpu", "mems", json!(x));
    }
    if let Some(x) = &a.memory {
        set(&mut v, "memory", "limit", json!(parse_bytes(x)?));
    }
    if let Some(x) = &a.memory_reservation {
        set(&mut v, "memory", "reservation", json!(parse_bytes(x)?));
    }
    if let Some(x) = &a.memory_swap {
        set(&mut v, "memory", "swap", json!(parse_bytes(x)?));
    }
    if let Some(x) = a.pids_limit {
        set(&mut v, "pids", "limit", json!(x));
    }
    let name = a
        .resources
        .clone()
        .unwrap_or_else(|| PathBuf::from("<flags>"));
    let res: LinuxResources = berth::spec::parse_json(&name, v.to_string().as_bytes())?;
    let (dir, mut state) = container::load(&ctx.root, &a.id)?;
    container::update(&dir, &mut state, &res)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("4k").unwrap(), 4096);
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }
}
