//! RFC 3339 timestamps in UTC without pulling in a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Converts days since 1970-01-01 to a (year, month, day) civil date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats seconds and nanoseconds since the epoch like Go's `time.RFC3339Nano` in UTC
/// (trailing zeros of the fraction trimmed), which is what runc writes in `created`.
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The current time as an RFC 3339 string with nanoseconds.
pub fn now_rfc3339_nano() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_nano(now.as_secs() as i64, now.subsec_nanos())
}

/// The current time as an RFC 3339 string in whole seconds (logrus's default, used by runc's
/// log lines).
pub fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_nano(now.as_secs() as i64, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_fraction() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000, 120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400, 1),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
