//! Go-style durations (`30s`, `1m30s`, `1.5h`, `100ms`) as used by
//! HEALTHCHECK options.

use std::time::Duration;

/// Parses a Go duration string. Negative durations are rejected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {s:?}: use a number with a unit, e.g. 30s, 1m30s, 500ms");
    let body = s.strip_prefix('+').unwrap_or(s);
    if let Some(negative) = body.strip_prefix('-') {
        if !negative.is_empty() && negative.chars().all(|c| c == '0') {
            return Ok(Duration::ZERO);
        }
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(bad());
    }
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut total_ns: u128 = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let int: String = chars[start..i].iter().collect();
        let mut frac = String::new();
        if chars.get(i) == Some(&'.') {
            i += 1;
            let fs = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            frac = chars[fs..i].iter().collect();
        }
        if int.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let us = i;
        while i < chars.len() && !(chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let unit: String = chars[us..i].iter().collect();
        let scale: u128 = match unit.as_str() {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let int_val: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut part = int_val.checked_mul(scale).ok_or_else(bad)?;
        let mut div = 1u128;
        for d in frac.chars().take(20) {
            div *= 10;
            let digit = u128::from(d.to_digit(10).unwrap_or(0));
            part = part.checked_add(digit * scale / div).ok_or_else(bad)?;
        }
        total_ns = total_ns.checked_add(part).ok_or_else(bad)?;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).map_err(|_| bad())?;
    // The remainder is below 1e9 and so fits in u32.
    let nanos = u32::try_from(total_ns % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("30s", Duration::from_secs(30)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("100ms", Duration::from_millis(100)),
            ("2us", Duration::from_micros(2)),
            ("0", Duration::ZERO),
            ("5m0s", Duration::from_secs(300)),
            (".5s", Duration::from_millis(500)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for s in [
            "",
            "10",
            "1x",
            "-5s",
            "s",
            "1.s5",
            "h1",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
