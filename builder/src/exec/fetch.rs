//! ADD from `http://` and `https://` URLs: the file is downloaded (to a
//! scratch directory) before the step's cache key is computed, because the
//! key holds the content's digest. The file gets mode 0600 (unless
//! `--chmod`) and its mtime from `Last-Modified`; it is never unpacked.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ExecError;
use crate::digest::{Digest, HashWriter};

/// A downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The URL it came from.
    pub url: String,
    /// Its name (the last segment of the URL path; may be empty).
    pub name: String,
    /// The file in the scratch directory.
    pub path: PathBuf,
    /// Digest of its content.
    pub digest: Digest,
    /// `Last-Modified`, in seconds since the epoch (0 when absent).
    pub mtime: i64,
}

/// Whether `src` is an ADD source fetched over HTTP (not a git repository).
pub fn is_http_url(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://")
}

/// The name of the file a URL names: the last segment of its path.
pub fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let Some((_, path)) = rest.split_once('/') else {
        return String::new();
    };
    let name = path.rsplit('/').next().unwrap_or("");
    if name == "." || name == ".." {
        String::new()
    } else {
        name.to_string()
    }
}

/// Parses an HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) into
/// seconds since the epoch.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: i64 = it.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as i64 + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian calendar).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Downloads `url` into the directory `dir` (as `dir/NAME`, or
/// `dir/download` when the URL names no file), verifying `checksum` when
/// given. Redirects are followed; HTTP errors fail the download.
pub fn download(url: &str, dir: &Path, checksum: Option<&Digest>) -> Result<Download, ExecError> {
    let fail = |reason: String| ExecError::Download {
        url: url.to_string(),
        reason,
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .redirects(10)
        .build();
    let resp = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, r) => fail(format!("HTTP {code} {}", r.status_text())),
        other => fail(other.to_string()),
    })?;
    let mtime = resp
        .header("Last-Modified")
        .and_then(parse_http_date)
        .unwrap_or(0);
    let name = url_file_name(url);
    let path = dir.join(if name.is_empty() { "download" } else { &name });
    let io_err = |e| ExecError::io(format!("downloading {url}"), e);
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    let mut hw = HashWriter::new(BufWriter::new(f));
    io::copy(&mut resp.into_reader(), &mut hw).map_err(io_err)?;
    hw.flush().map_err(io_err)?;
    let (w, digest, _) = hw.finish();
    let f: File = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    if let Some(want) = checksum {
        if want != &digest {
            return Err(ExecError::ChecksumMismatch {
                url: url.to_string(),
                expected: want.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    let t = std::time::UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64);
    f.set_modified(t).map_err(io_err)?;
    Ok(Download {
        url: url.to_string(),
        name,
        path,
        digest,
        mtime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dates() {
        assert_eq!(
            url_file_name("https://h/a/b/file.tar.gz?x=1#f"),
            "file.tar.gz"
        );
        assert_eq!(url_file_name("http://h:8080/"), "");
        assert_eq!(url_file_name("http://h"), "");
        assert_eq!(url_file_name("http://h/a/.."), "");
        assert!(is_http_url("https://x/y") && !is_http_url("git@github.com:x/y"));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951_825_600)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }
}
