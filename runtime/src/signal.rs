//! Signal names and numbers as `kill` accepts them (KILL, SIGKILL, 9).

use nix::sys::signal::Signal;
use std::str::FromStr;

/// Parses a signal given by name (with or without `SIG`, any case) or number; 0 is accepted
/// (`kill ID 0` probes whether the container's init is alive, as with kill(2)).
pub fn parse(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("invalid signal number {n}"));
    }
    let up = s.to_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+')
                .parse()
                .map_err(|_| format!("unknown signal {s:?}"))?
        };
        return Ok(base + off);
    }
    if let Some(rt) = name.strip_prefix("SIGRTMAX") {
        let base = libc::SIGRTMAX();
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.parse::<i32>()
                .map_err(|_| format!("unknown signal {s:?}"))?
        };
        return Ok(base + off);
    }
    Signal::from_str(&name)
        .map(|s| s as i32)
        .map_err(|_| format!("unknown signal {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("hup").unwrap(), 1);
        assert_eq!(parse("10").unwrap(), 10);
        assert_eq!(parse("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse("NOPE").is_err());
        assert_eq!(parse("0").unwrap(), 0);
        assert!(parse("65").is_err());
    }
}
