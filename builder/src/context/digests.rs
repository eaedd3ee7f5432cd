//! Content digests of build-context files, remembered by their metadata so
//! that an unchanged file is not read again to compute a COPY's cache key
//! (BuildKit keeps such a checksum cache for its contexts too).
//!
//! A file's entry is keyed by device, inode, size, mode, mtime and ctime
//! (nanoseconds): writing a file changes its ctime, which no user can set
//! back. An entry is only recorded when the file's ctime is at least
//! [`SETTLE_SECS`] in the past, so a file written in the same clock tick
//! as it was hashed (the racy-git case) is always read. Stored as lines in
//! the store's `context-digests` file (not under `cache/`: `prune`
//! is about images and steps); a build keeps the entries it used or
//! made, so files that left the context drop out.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use nix::sys::stat::FileStat;

/// Seconds a file's ctime must be in the past for its digest to be kept.
pub const SETTLE_SECS: i64 = 2;

/// What identifies one version of a file.
type Key = (u64, u64, i64, u32, i64, i64, i64, i64);

fn key(st: &FileStat) -> Key {
    (
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mode,
        st.st_mtime,
        st.st_mtime_nsec,
        st.st_ctime,
        st.st_ctime_nsec,
    )
}

/// The remembered digests (sha256 of the content) of context files.
#[derive(Debug)]
pub struct FileDigests {
    path: PathBuf,
    /// Entries read from the file, then those used or made (`true`).
    map: Mutex<HashMap<Key, ([u8; 32], bool)>>,
}

impl FileDigests {
    /// Reads `path` (a missing or unreadable file is an empty cache).
    pub fn load(path: PathBuf) -> FileDigests {
        let mut map = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                if let Some((k, d)) = parse_line(line) {
                    map.insert(k, (d, false));
                }
            }
        }
        FileDigests {
            path,
            map: Mutex::new(map),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, ([u8; 32], bool)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The digest of the file with metadata `st`, if known.
    pub fn get(&self, st: &FileStat) -> Option<[u8; 32]> {
        let mut m = self.lock();
        let e = m.get_mut(&key(st))?;
        e.1 = true;
        Some(e.0)
    }

    /// Remembers `digest` for the file with metadata `st`, unless its ctime
    /// is too recent to be trusted.
    pub fn put(&self, st: &FileStat, digest: [u8; 32]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if st.st_ctime > now - SETTLE_SECS {
            return;
        }
        self.lock().insert(key(st), (digest, true));
    }

    /// Writes the entries used or made by this build (atomically).
    pub fn save(&self) -> io::Result<()> {
        let m = self.lock();
        if !m.values().any(|e| e.1) {
            return Ok(());
        }
        let mut out = Vec::with_capacity(m.len() * 120);
        for (k, (d, used)) in m.iter() {
            if !used {
                continue;
            }
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(
                out,
                "{} {} {} {} {} {} {} {} {hex}",
                k.0, k.1, k.2, k.3, k.4, k.5, k.6, k.7
            )?;
        }
        crate::oci::layout::write_atomic(&self.path, &out)
    }
}

fn parse_line(line: &str) -> Option<(Key, [u8; 32])> {
    let f: Vec<&str> = line.split(' ').collect();
    if f.len() != 9 || f[8].len() != 64 {
        return None;
    }
    let k = (
        f[0].parse().ok()?,
        f[1].parse().ok()?,
        f[2].parse().ok()?,
        f[3].parse().ok()?,
        f[4].parse().ok()?,
        f[5].parse().ok()?,
        f[6].parse().ok()?,
        f[7].parse().ok()?,
    );
    let mut d = [0u8; 32];
    for (i, b) in d.iter_mut().enumerate() {
        *b = u8::from_str_radix(f[8].get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some((k, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_settled_files_and_forgets_changed_ones() {
        let dir = tempfile::tempdir().expect("dir");
        let f = dir.path().join("f");
        std::fs::write(&f, b"one").expect("write");
        let st = nix::sys::stat::stat(&f).expect("stat");
        let path = dir.path().join("digests");
        let c = FileDigests::load(path.clone());
        // Just written: not trusted yet.
        c.put(&st, [1; 32]);
        assert_eq!(c.get(&st), None);
        let mut old = st;
        old.st_ctime -= 10;
        c.put(&old, [2; 32]);
        assert_eq!(c.get(&old), Some([2; 32]));
        c.save().expect("save");
        let again = FileDigests::load(path.clone());
        assert_eq!(again.get(&old), Some([2; 32]));
        // Any change of size, mtime or ctime is another file.
        let mut changed = old;
        changed.st_ctime_nsec += 1;
        assert_eq!(again.get(&changed), None);
        // Garbage lines are skipped.
        std::fs::write(&path, "1 2 3\nnot a line at all\n").expect("write");
        assert_eq!(FileDigests::load(path).get(&old), None);
    }
}
