//! A minimal deterministic tar writer: POSIX ustar headers, with PAX
//! extended headers for long names, long link targets, large values and
//! extended attributes. Directory names end in `/`; user and group names
//! are left empty so that only the numeric ids matter.

use std::io::{self, Read, Write};

/// The kind of a tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of `size` bytes (data supplied by the caller).
    File {
        /// Content length.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link to `target` (bytes as stored on disk).
    Symlink(Vec<u8>),
    /// A hard link to an earlier entry's path.
    Hardlink(String),
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice(u32, u32),
    /// A block device.
    BlockDevice(u32, u32),
}

/// Metadata of one tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarHeader {
    /// Path relative to the layer root, `/`-separated, without a leading
    /// `./` or `/` and without a trailing `/`.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits (including setuid/setgid/sticky).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time in seconds since the epoch (negative values are
    /// written as 0).
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

const BLOCK: usize = 512;

fn octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    if s.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    true
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "<len> <key>=<value>\n" where <len> counts the whole record.
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    loop {
        let total = base + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Writes tar entries to `W`.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    /// A writer on `out`.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    fn raw_header(
        &mut self,
        name: &[u8],
        typeflag: u8,
        h: &TarHeader,
        size: u64,
        link: &[u8],
    ) -> io::Result<()> {
        let mut b = [0u8; BLOCK];
        let n = name.len().min(100);
        b[..n].copy_from_slice(&name[..n]);
        octal(&mut b[100..108], u64::from(h.mode & 0o7777));
        octal(&mut b[108..116], u64::from(h.uid).min(0o7777777));
        octal(&mut b[116..124], u64::from(h.gid).min(0o7777777));
        octal(&mut b[124..136], size.min(0o77777777777));
        octal(
            &mut b[136..148],
            u64::try_from(h.mtime.max(0))
                .unwrap_or(0)
                .min(0o77777777777),
        );
        b[156] = typeflag;
        let l = link.len().min(100);
        b[157..157 + l].copy_from_slice(&link[..l]);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        let (maj, min) = match h.kind {
            EntryKind::CharDevice(a, b) | EntryKind::BlockDevice(a, b) => (a, b),
            _ => (0, 0),
        };
        octal(&mut b[329..337], u64::from(maj).min(0o7777777));
        octal(&mut b[337..345], u64::from(min).min(0o7777777));
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        let s = format!("{sum:06o}");
        b[148..154].copy_from_slice(s.as_bytes());
        b[154] = 0;
        b[155] = b' ';
        self.out.write_all(&b)
    }

    /// Writes one entry; for a regular file `data` must yield exactly the
    /// declared size.
    pub fn append(&mut self, h: &TarHeader, data: &mut dyn Read) -> io::Result<()> {
        let mut name = h.path.clone().into_bytes();
        if h.kind == EntryKind::Dir {
            name.push(b'/');
        }
        let (typeflag, size, link): (u8, u64, Vec<u8>) = match &h.kind {
            EntryKind::File { size } => (b'0', *size, Vec::new()),
            EntryKind::Dir => (b'5', 0, Vec::new()),
            EntryKind::Symlink(t) => (b'2', 0, t.clone()),
            EntryKind::Hardlink(t) => (b'1', 0, t.clone().into_bytes()),
            EntryKind::Fifo => (b'6', 0, Vec::new()),
            EntryKind::CharDevice(..) => (b'3', 0, Vec::new()),
            EntryKind::BlockDevice(..) => (b'4', 0, Vec::new()),
        };
        let mut pax = Vec::new();
        if name.len() > 100 {
            pax.extend(pax_record("path", &name));
        }
        if link.len() > 100 {
            pax.extend(pax_record("linkpath", &link));
        }
        if size > 0o77777777777 {
            pax.extend(pax_record("size", size.to_string().as_bytes()));
        }
        if h.uid > 0o7777777 {
            pax.extend(pax_record("uid", h.uid.to_string().as_bytes()));
        }
        if h.gid > 0o7777777 {
            pax.extend(pax_record("gid", h.gid.to_string().as_bytes()));
        }
        for (k, v) in &h.xattrs {
            pax.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
        }
        if !pax.is_empty() {
            let pax_header = TarHeader {
                path: String::new(),
                kind: EntryKind::File {
                    size: pax.len() as u64,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Vec::new(),
            };
            self.raw_header(b"././@PaxHeader", b'x', &pax_header, pax.len() as u64, &[])?;
            self.out.write_all(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        self.raw_header(&name, typeflag, h, size, &link)?;
        if size > 0 {
            let copied = io::copy(&mut data.take(size), &mut self.out)?;
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} shrank while being archived ({copied} of {size} bytes)",
                        h.path
                    ),
                ));
            }
            self.pad(size)?;
        }
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(path: &str, kind: EntryKind) -> TarHeader {
        TarHeader {
            path: path.into(),
            kind,
            mode: 0o755,
            uid: 1000,
            gid: 50,
            mtime: 1_700_000_000,
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn pax_record_lengths() {
        assert_eq!(pax_record("path", b"abc"), b"12 path=abc\n");
        // Length crossing a digit boundary: 9 bytes without the count.
        let r = pax_record("a", b"12345");
        assert_eq!(r.len().to_string(), String::from_utf8_lossy(&r[..2]));
    }

    #[test]
    fn roundtrip_with_tar_crate() {
        let long = format!("d/{}", "x".repeat(150));
        let mut w = TarWriter::new(Vec::new());
        w.append(&hdr("d", EntryKind::Dir), &mut io::empty())
            .expect("dir");
        let mut f = hdr("d/f", EntryKind::File { size: 5 });
        f.xattrs = vec![("security.capability".into(), vec![1, 2, 0, 3])];
        w.append(&f, &mut &b"hello"[..]).expect("file");
        w.append(
            &hdr(&long, EntryKind::Symlink(long.clone().into_bytes())),
            &mut io::empty(),
        )
        .expect("long symlink");
        w.append(
            &hdr("d/h", EntryKind::Hardlink("d/f".into())),
            &mut io::empty(),
        )
        .expect("hardlink");
        let bytes = w.finish().expect("finish");
        assert_eq!(bytes.len() % 512, 0);

        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            let mut xattrs = Vec::new();
            if let Some(exts) = e.pax_extensions().expect("pax") {
                for ext in exts {
                    let ext = ext.expect("ext");
                    xattrs.push((
                        ext.key().expect("key").to_string(),
                        ext.value_bytes().to_vec(),
                    ));
                }
            }
            let h = e.header();
            seen.push((
                path,
                h.entry_type(),
                h.uid().expect("uid"),
                h.mtime().expect("mtime"),
                link,
                xattrs,
            ));
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("read");
            if seen.len() == 2 {
                assert_eq!(data, b"hello");
            }
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].0, "d/");
        assert_eq!(seen[0].1, tar::EntryType::Directory);
        assert_eq!((seen[1].2, seen[1].3), (1000, 1_700_000_000));
        assert_eq!(
            seen[1].5,
            vec![(
                "SCHILY.xattr.security.capability".to_string(),
                vec![1, 2, 0, 3]
            )]
        );
        assert_eq!(seen[2].0, long);
        assert_eq!(seen[2].4.as_deref(), Some(long.as_bytes()));
        assert_eq!(seen[3].1, tar::EntryType::Link);
        assert_eq!(seen[3].4.as_deref(), Some(&b"d/f"[..]));
    }
}
