//! COPY and ADD: resolving sources (wildcards, `.dockerignore`), hashing
//! them for the cache key, and copying them into the stage's root
//! filesystem without ever following a symlink out of either root.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use super::Chmod;
use super::ExecError;
use crate::context::digests::FileDigests;
use crate::context::{clean_path, Dockerignore};
use crate::digest::{Digest, Hasher};
use crate::fsutil::{self, errno_io, Resolve};
use crate::glob::Glob;
use crate::layer::{extract, ExtractMode};

/// Filters for a source tree.
#[derive(Debug, Clone, Default)]
pub struct SourceFilter {
    /// `.dockerignore` (build context only).
    pub ignore: Dockerignore,
    /// `--exclude` patterns.
    pub exclude: Dockerignore,
}

impl SourceFilter {
    fn excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && (self.ignore.is_excluded(rel) || self.exclude.is_excluded(rel))
    }

    fn skip_dir(&self, rel: &str) -> bool {
        !rel.is_empty() && ((self.ignore.can_skip_dir(rel)) || self.exclude.can_skip_dir(rel))
    }
}

/// A matched source: a path relative to the source root ("" = the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Relative path.
    pub rel: String,
    /// Whether it is (resolves to) a directory.
    pub is_dir: bool,
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Cleans a source pattern: relative to the root, `..` cannot climb out.
pub fn clean_source(pattern: &str) -> String {
    let c = clean_path(&format!("/{pattern}"));
    c.trim_start_matches('/').to_string()
}

/// The `--parents` pivot of a source pattern: the cleaned part before its
/// last `/./` (BuildKit: only what follows is kept), or "" (keep the whole
/// path relative to the source root).
pub fn parents_pivot(pattern: &str) -> String {
    match pattern.rfind("/./") {
        Some(i) => clean_source(&pattern[..i]),
        None => String::new(),
    }
}

/// The path a `--parents` match keeps under the destination: `rel` without
/// the `pivot` directory (see [`parents_pivot`]).
pub fn parents_rel<'r>(rel: &'r str, pivot: &str) -> &'r str {
    if pivot.is_empty() {
        return rel;
    }
    match rel.strip_prefix(pivot) {
        Some("") => "",
        Some(rest) if rest.starts_with('/') => &rest[1..],
        _ => rel,
    }
}

fn open_in_root(root: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how).map_err(errno_io)
}

/// Finds what `pattern` names under `root`. Wildcards are matched against
/// every path (`*` does not cross `/`); excluded paths are invisible.
pub fn match_sources(
    root: BorrowedFd<'_>,
    pattern: &str,
    filter: &SourceFilter,
) -> Result<Vec<Matched>, ExecError> {
    let cleaned = clean_source(pattern);
    let not_found = || ExecError::SourceNotFound(pattern.to_string());
    if !has_glob(&cleaned) {
        if filter.excluded(&cleaned) {
            return Err(not_found());
        }
        let fd = match open_in_root(root, &cleaned) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(not_found()),
            Err(e) => return Err(ExecError::io(format!("COPY source {pattern}"), e)),
        };
        let st = fstat(fd.as_fd()).map_err(|e| ExecError::io(pattern, errno_io(e)))?;
        return Ok(vec![Matched {
            rel: cleaned,
            is_dir: fsutil::file_type(&st) == SFlag::S_IFDIR,
        }]);
    }
    let glob = Glob::path_pattern(&cleaned)
        .map_err(|e| ExecError::BadPattern(pattern.to_string(), e.to_string()))?;
    // Walk from the longest literal directory prefix.
    let literal: Vec<&str> = cleaned.split('/').take_while(|c| !has_glob(c)).collect();
    let start = literal.join("/");
    let mut out = Vec::new();
    if let Ok(dir) = fsutil::open_dir_at(root, &start, Resolve::InRoot) {
        walk_matches(dir.as_fd(), &start, &glob, filter, &mut out)?;
    }
    if out.is_empty() {
        return Err(not_found());
    }
    Ok(out)
}

fn walk_matches(
    dir: BorrowedFd<'_>,
    prefix: &str,
    glob: &Glob,
    filter: &SourceFilter,
    out: &mut Vec<Matched>,
) -> Result<(), ExecError> {
    let names = fsutil::read_dir_names(dir).map_err(|e| ExecError::io(prefix, e))?;
    for name in names {
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let Some(st) = fsutil::lstat_at(dir, &name).map_err(|e| ExecError::io(&rel, e))? else {
            continue;
        };
        let is_dir = fsutil::file_type(&st) == SFlag::S_IFDIR;
        if glob.matches(&rel) && !filter.excluded(&rel) {
            out.push(Matched {
                rel: rel.clone(),
                is_dir,
            });
            continue;
        }
        if is_dir && !filter.skip_dir(&rel) && glob.may_match_with_prefix(&format!("{rel}/")) {
            let sub = fsutil::open_dir_at(dir, &name, Resolve::NoSymlinks)
                .map_err(|e| ExecError::io(&rel, e))?;
            walk_matches(sub.as_fd(), &rel, glob, filter, out)?;
        }
    }
    Ok(())
}

/// A content hash of the matched sources: paths, types, modes, sizes and
/// file contents (each file's sha256; not times, not owners).
pub fn hash_sources(
    root: BorrowedFd<'_>,
    matches: &[Matched],
    filter: &SourceFilter,
) -> Result<Digest, ExecError> {
    hash_sources_with(root, matches, filter, None)
}

/// [`hash_sources`], taking the digests of files whose metadata did not
/// change from `known` instead of reading them (and adding the others).
pub fn hash_sources_with(
    root: BorrowedFd<'_>,
    matches: &[Matched],
    filter: &SourceFilter,
    known: Option<&FileDigests>,
) -> Result<Digest, ExecError> {
    let mut h = Hasher::new();
    for m in matches {
        h.update(format!("source {}\0", m.rel).as_bytes());
        let fd = open_in_root(root, &m.rel).map_err(|e| ExecError::io(&m.rel, e))?;
        let st = fstat(fd.as_fd()).map_err(|e| ExecError::io(&m.rel, errno_io(e)))?;
        hash_fd(Some(fd), &st, &m.rel, filter, known, &mut h)?;
    }
    Ok(h.finish())
}

/// The header of one entry in a sources hash.
fn hash_header(st: &nix::sys::stat::FileStat, h: &mut Hasher) {
    let size = if fsutil::file_type(st) == SFlag::S_IFREG {
        st.st_size
    } else {
        0
    };
    h.update(format!("{:o} {size}\0", st.st_mode).as_bytes());
}

/// Hashes the entry with metadata `st`; `fd` is it opened, or None for a
/// regular file whose digest `known` has (then it is not opened at all).
fn hash_fd(
    fd: Option<OwnedFd>,
    st: &nix::sys::stat::FileStat,
    rel: &str,
    filter: &SourceFilter,
    known: Option<&FileDigests>,
    h: &mut Hasher,
) -> Result<(), ExecError> {
    let ft = fsutil::file_type(st);
    hash_header(st, h);
    let Some(fd) = fd else {
        if let Some(d) = known.and_then(|k| k.get(st)) {
            h.update(&d);
            return Ok(());
        }
        return Err(ExecError::io(
            rel,
            io::Error::other("internal: entry to hash was not opened"),
        ));
    };
    match ft {
        SFlag::S_IFREG => {
            let digest = match known.and_then(|k| k.get(st)) {
                Some(d) => d,
                None => {
                    let mut f = File::from(fd);
                    let mut fh = Hasher::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = f.read(&mut buf).map_err(|e| ExecError::io(rel, e))?;
                        if n == 0 {
                            break;
                        }
                        fh.update(&buf[..n]);
                    }
                    let d = fh.finish_bytes();
                    if let Some(k) = known {
                        k.put(st, d);
                    }
                    d
                }
            };
            h.update(&digest);
        }
        SFlag::S_IFDIR => {
            for name in fsutil::read_dir_names(fd.as_fd()).map_err(|e| ExecError::io(rel, e))? {
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                if filter.excluded(&child) && filter.skip_dir(&child) {
                    continue;
                }
                let Some(cst) =
                    fsutil::lstat_at(fd.as_fd(), &name).map_err(|e| ExecError::io(&child, e))?
                else {
                    continue;
                };
                if filter.excluded(&child) && fsutil::file_type(&cst) != SFlag::S_IFDIR {
                    continue;
                }
                h.update(format!("{name}\0").as_bytes());
                if fsutil::file_type(&cst) == SFlag::S_IFLNK {
                    h.update(b"link\0");
                    h.update(
                        &fsutil::readlink_at(fd.as_fd(), &name)
                            .map_err(|e| ExecError::io(&child, e))?,
                    );
                    continue;
                }
                // A file known by its metadata is not opened.
                if fsutil::file_type(&cst) == SFlag::S_IFREG
                    && known.is_some_and(|k| k.get(&cst).is_some())
                {
                    hash_fd(None, &cst, &child, filter, known, h)?;
                    continue;
                }
                let sub = openat(
                    fd.as_fd(),
                    name.as_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                    Mode::empty(),
                );
                match sub {
                    Ok(sub) => {
                        let st =
                            fstat(sub.as_fd()).map_err(|e| ExecError::io(&child, errno_io(e)))?;
                        hash_fd(Some(sub), &st, &child, filter, known, h)?
                    }
                    Err(_) => h.update(b"special\0"),
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Ownership and permission overrides of a COPY.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyAttrs {
    /// `--chown` (uid, gid); default 0:0.
    pub chown: Option<(u32, u32)>,
    /// `--chmod` (octal or symbolic).
    pub chmod: Option<Chmod>,
    /// ADD: unpack local tar archives.
    pub unpack_archives: bool,
    /// Without `--chown`: keep the source's owners (COPY --from a stage or
    /// image) instead of 0:0 (the build context).
    pub keep_owner: bool,
}

impl CopyAttrs {
    /// The owner a copied file whose source has `uid:gid` gets.
    pub fn owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        match self.chown {
            Some(o) => o,
            None if self.keep_owner => (uid, gid),
            None => (0, 0),
        }
    }

    /// The mode a copied file (or directory) whose source mode is
    /// `src_mode` gets.
    pub fn mode(&self, src_mode: u32, is_dir: bool) -> u32 {
        match &self.chmod {
            Some(c) => c.apply(src_mode, is_dir),
            None => src_mode & 0o7777,
        }
    }
}

/// Copies `matches` from `src_root` to `dest` (an absolute path in the
/// root filesystem `dst_root`). `dest_dir` says the destination is a
/// directory (it ends with `/`, or there are several sources).
pub fn copy_sources(
    src_root: BorrowedFd<'_>,
    matches: &[Matched],
    filter: &SourceFilter,
    dst_root: BorrowedFd<'_>,
    dest: &str,
    dest_dir: bool,
    attrs: CopyAttrs,
) -> Result<u64, ExecError> {
    let dest_clean = clean_source(dest);
    let dest_parts: Vec<&str> = dest_clean.split('/').filter(|c| !c.is_empty()).collect();
    let existing_dir = fsutil::open_dir_at(dst_root, &dest_clean, Resolve::InRoot).is_ok();
    let mut count = 0;
    for m in matches {
        let src = open_in_root(src_root, &m.rel).map_err(|e| ExecError::io(&m.rel, e))?;
        if m.is_dir {
            let created = !dest_parts.is_empty()
                && fsutil::open_dir_at(dst_root, &dest_clean, Resolve::InRoot).is_err();
            let dir = fsutil::ensure_dir(dst_root, &dest_parts, Resolve::InRoot)
                .map_err(|e| ExecError::io(format!("COPY destination {dest}"), e))?;
            count += copy_dir_contents(src.as_fd(), &m.rel, filter, dir.as_fd(), attrs)?;
            if created {
                // A directory this COPY made takes the source directory's
                // owner (after --chown) and mode (after --chmod), as in BuildKit.
                let st = fstat(src.as_fd()).map_err(|e| ExecError::io(&m.rel, errno_io(e)))?;
                let (uid, gid) = attrs.owner(st.st_uid, st.st_gid);
                nix::unistd::fchown(dir.as_fd(), Some(uid.into()), Some(gid.into()))
                    .map_err(|e| ExecError::io(format!("COPY destination {dest}"), errno_io(e)))?;
                nix::sys::stat::fchmod(
                    dir.as_fd(),
                    Mode::from_bits_truncate(attrs.mode(st.st_mode, true)),
                )
                .map_err(|e| ExecError::io(format!("COPY destination {dest}"), errno_io(e)))?;
            }
            continue;
        }
        let base = m.rel.rsplit('/').next().unwrap_or(&m.rel).to_string();
        let into_dir = dest_dir || existing_dir || dest_parts.is_empty();
        let (parent_parts, name) = if into_dir {
            (dest_parts.clone(), base)
        } else {
            let (last, parents) = dest_parts
                .split_last()
                .map(|(l, p)| (l.to_string(), p.to_vec()))
                .unwrap_or_default();
            (parents, last)
        };
        let parent = fsutil::ensure_dir(dst_root, &parent_parts, Resolve::InRoot)
            .map_err(|e| ExecError::io(format!("COPY destination {dest}"), e))?;
        if attrs.unpack_archives && is_archive(src.as_fd()) {
            let dir = if into_dir {
                parent
            } else {
                fsutil::ensure_dir(dst_root, &dest_parts, Resolve::InRoot)
                    .map_err(|e| ExecError::io(format!("ADD destination {dest}"), e))?
            };
            count += unpack_archive(src, dir.as_fd(), &m.rel)?;
            continue;
        }
        copy_file(src, parent.as_fd(), &name, attrs, &m.rel)?;
        count += 1;
    }
    Ok(count)
}

/// Whether ADD unpacks this file: a tar, or a gzip whose content is a tar
/// (a gzip of anything else is copied as it is, as BuildKit does).
fn is_archive(fd: BorrowedFd<'_>) -> bool {
    let Ok(dup) = fd.try_clone_to_owned() else {
        return false;
    };
    let f = File::from(dup);
    let mut head = [0u8; 512];
    let mut magic = [0u8; 2];
    let gz = read_at_start(&f, &mut magic) == 2 && magic == [0x1f, 0x8b];
    let n = if gz {
        // Positional reads only: the descriptor's offset is shared.
        let mut dec = flate2::read::GzDecoder::new(ReadAt { f: &f, pos: 0 });
        read_full(&mut dec, &mut head)
    } else {
        read_at_start(&f, &mut head)
    };
    n == 512 && looks_like_tar(&head)
}

/// A tar header: the ustar magic, or (old v7 archives) a valid checksum.
fn looks_like_tar(h: &[u8; 512]) -> bool {
    if &h[257..262] == b"ustar" {
        return true;
    }
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    h[0] != 0 && sum == want
}

/// `Read` over a file by positional reads.
struct ReadAt<'f> {
    f: &'f File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.f.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

fn read_at_start(f: &File, buf: &mut [u8]) -> usize {
    use std::os::unix::fs::FileExt;
    f.read_at(buf, 0).unwrap_or(0)
}

fn unpack_archive(src: OwnedFd, dir: BorrowedFd<'_>, rel: &str) -> Result<u64, ExecError> {
    let f = File::from(src);
    let mut magic = [0u8; 2];
    let gz = read_at_start(&f, &mut magic) == 2 && magic == [0x1f, 0x8b];
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(f)))
    } else {
        Box::new(io::BufReader::new(f))
    };
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir));
    let stats = extract(reader, std::path::Path::new(&path), ExtractMode::Flat)
        .map_err(|e| ExecError::Archive(rel.to_string(), e.to_string()))?;
    Ok(stats.entries)
}

fn copy_file(
    src: OwnedFd,
    parent: BorrowedFd<'_>,
    name: &str,
    attrs: CopyAttrs,
    rel: &str,
) -> Result<(), ExecError> {
    let st = fstat(src.as_fd()).map_err(|e| ExecError::io(rel, errno_io(e)))?;
    if fsutil::file_type(&st) != SFlag::S_IFREG {
        return Err(ExecError::io(
            rel,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file or directory",
            ),
        ));
    }
    write_file(parent, name, &mut File::from(src), &st, attrs, rel)
}

/// Generic over the reader so that a `File` source takes std's in-kernel
/// `copy_file_range` path (a `dyn Read` would copy through 8 KiB reads).
fn write_file<R: Read>(
    parent: BorrowedFd<'_>,
    name: &str,
    data: &mut R,
    st: &nix::sys::stat::FileStat,
    attrs: CopyAttrs,
    rel: &str,
) -> Result<(), ExecError> {
    let io_err = |e| ExecError::io(format!("copying {rel}"), e);
    let (uid, gid) = attrs.owner(st.st_uid, st.st_gid);
    let mode = attrs.mode(st.st_mode, false);
    // Created with its final permission bits (less the umask), so the
    // chmod is usually not needed. O_EXCL first, and only when something
    // is there already a look at what (one lookup less per new file, which
    // on an overlay mount is one walk through every layer).
    let create = || {
        openat(
            parent,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode & 0o777),
        )
    };
    let fd = match create() {
        Err(nix::errno::Errno::EEXIST) => {
            if let Some(existing) = fsutil::lstat_at(parent, name).map_err(io_err)? {
                if fsutil::file_type(&existing) == SFlag::S_IFDIR {
                    return Err(ExecError::io(
                        format!("copying {rel}"),
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("destination {name} is a directory"),
                        ),
                    ));
                }
                fsutil::remove_all_at(parent, name).map_err(io_err)?;
            }
            create()
        }
        r => r,
    }
    .map_err(|e| io_err(errno_io(e)))?;
    let mut out = File::from(fd);
    io::copy(data, &mut out).map_err(io_err)?;
    fsutil::set_meta_fd(out.as_fd(), uid, gid, Some(mode), st.st_mtime).map_err(io_err)
}

/// Writes an inline file (COPY heredoc) named `name` into `dest`.
pub fn write_inline(
    dst_root: BorrowedFd<'_>,
    dest: &str,
    dest_dir: bool,
    name: &str,
    content: &[u8],
    attrs: CopyAttrs,
    mtime: i64,
) -> Result<(), ExecError> {
    let dest_clean = clean_source(dest);
    let mut parts: Vec<&str> = dest_clean.split('/').filter(|c| !c.is_empty()).collect();
    let existing_dir = fsutil::open_dir_at(dst_root, &dest_clean, Resolve::InRoot).is_ok();
    let file_name = if dest_dir || existing_dir || parts.is_empty() {
        name.to_string()
    } else {
        parts.pop().map(str::to_string).unwrap_or_default()
    };
    let parent = fsutil::ensure_dir(dst_root, &parts, Resolve::InRoot)
        .map_err(|e| ExecError::io(format!("COPY destination {dest}"), e))?;
    let mut st = fstat(parent.as_fd()).map_err(|e| ExecError::io(dest, errno_io(e)))?;
    st.st_mode = 0o644;
    st.st_mtime = mtime;
    write_file(
        parent.as_fd(),
        &file_name,
        &mut &content[..],
        &st,
        attrs,
        name,
    )
}

fn copy_dir_contents(
    src: BorrowedFd<'_>,
    rel: &str,
    filter: &SourceFilter,
    dst: BorrowedFd<'_>,
    attrs: CopyAttrs,
) -> Result<u64, ExecError> {
    let mut count = 0;
    for name in fsutil::read_dir_names(src).map_err(|e| ExecError::io(rel, e))? {
        let child = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let Some(st) = fsutil::lstat_at(src, &name).map_err(|e| ExecError::io(&child, e))? else {
            continue;
        };
        let ft = fsutil::file_type(&st);
        if filter.excluded(&child) && (ft != SFlag::S_IFDIR || filter.skip_dir(&child)) {
            continue;
        }
        let io_err = |e| ExecError::io(format!("copying {child}"), e);
        let (uid, gid) = attrs.owner(st.st_uid, st.st_gid);
        match ft {
            SFlag::S_IFDIR => {
                match fsutil::lstat_at(dst, &name).map_err(io_err)? {
                    Some(e) if fsutil::file_type(&e) == SFlag::S_IFDIR => {}
                    Some(_) => {
                        fsutil::remove_all_at(dst, &name).map_err(io_err)?;
                        nix::sys::stat::mkdirat(
                            dst,
                            name.as_str(),
                            Mode::from_bits_truncate(0o700),
                        )
                        .map_err(|e| io_err(errno_io(e)))?;
                    }
                    None => {
                        nix::sys::stat::mkdirat(dst, name.as_str(), Mode::from_bits_truncate(0o700))
                            .map_err(|e| io_err(errno_io(e)))?
                    }
                }
                let s = fsutil::open_dir_at(src, &name, Resolve::NoSymlinks).map_err(io_err)?;
                let d = fsutil::open_dir_at(dst, &name, Resolve::NoSymlinks).map_err(io_err)?;
                count += copy_dir_contents(s.as_fd(), &child, filter, d.as_fd(), attrs)?;
                let mode = attrs.mode(st.st_mode, true);
                fsutil::set_meta_at(dst, &name, uid, gid, Some(mode), st.st_mtime)
                    .map_err(io_err)?;
            }
            SFlag::S_IFREG => {
                let fd = openat(
                    src,
                    name.as_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(errno_io(e)))?;
                copy_file(fd, dst, &name, attrs, &child)?;
            }
            SFlag::S_IFLNK => {
                let target = fsutil::readlink_at(src, &name).map_err(io_err)?;
                fsutil::remove_all_at(dst, &name).map_err(io_err)?;
                use std::os::unix::ffi::OsStrExt;
                fsutil::symlink_at(dst, &name, std::ffi::OsStr::from_bytes(&target))
                    .map_err(io_err)?;
                fsutil::set_meta_at(dst, &name, uid, gid, None, st.st_mtime).map_err(io_err)?;
            }
            _ => {
                tracing::warn!(path = %child, "skipping special file in COPY source");
                continue;
            }
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path();
        fs::create_dir_all(p.join("src/sub")).expect("mkdir");
        fs::write(p.join("src/a.txt"), b"a").expect("w");
        fs::write(p.join("src/b.log"), b"b").expect("w");
        fs::write(p.join("src/sub/c.txt"), b"c").expect("w");
        fs::write(p.join("top.txt"), b"t").expect("w");
        std::os::unix::fs::symlink("/etc", p.join("src/etc-link")).expect("symlink");
        d
    }

    #[test]
    fn parents_paths() {
        assert_eq!(parents_pivot("a/b/c.txt"), "");
        assert_eq!(parents_pivot("./a/b/c.txt"), "");
        assert_eq!(parents_pivot("./x/./y/*.txt"), "x");
        assert_eq!(parents_pivot("x/y/./z"), "x/y");
        assert_eq!(parents_rel("a/b/c.txt", ""), "a/b/c.txt");
        assert_eq!(parents_rel("x/y/a.txt", "x"), "y/a.txt");
        assert_eq!(parents_rel("x", "x"), "");
        assert_eq!(parents_rel("xy/a", "x"), "xy/a");
    }

    #[test]
    fn matching_and_hashing() {
        let d = tree();
        let root = fsutil::open_dir(d.path()).expect("open");
        let none = SourceFilter::default();
        let m = match_sources(root.as_fd(), "src/*.txt", &none).expect("glob");
        assert_eq!(
            m,
            vec![Matched {
                rel: "src/a.txt".into(),
                is_dir: false
            }]
        );
        let m = match_sources(root.as_fd(), "*.txt", &none).expect("glob");
        assert_eq!(m.len(), 1);
        let m = match_sources(root.as_fd(), "../../src", &none).expect("clamped");
        assert_eq!(
            m,
            vec![Matched {
                rel: "src".into(),
                is_dir: true
            }]
        );
        let err = match_sources(root.as_fd(), "missing/*.c", &none).expect_err("missing");
        assert!(err.to_string().contains("missing/*.c"), "{err}");
        let ignore = SourceFilter {
            ignore: Dockerignore::parse("*.txt\nsrc/sub\n").expect("ignore"),
            ..SourceFilter::default()
        };
        assert!(match_sources(root.as_fd(), "top.txt", &ignore).is_err());

        let all = match_sources(root.as_fd(), "src", &none).expect("src");
        let h1 = hash_sources(root.as_fd(), &all, &none).expect("hash");
        // mtime changes do not matter, content does.
        let f = fs::File::options()
            .write(true)
            .open(d.path().join("src/a.txt"))
            .expect("open");
        f.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .expect("touch");
        assert_eq!(hash_sources(root.as_fd(), &all, &none).expect("hash"), h1);
        fs::write(d.path().join("src/sub/c.txt"), b"C").expect("w");
        assert_ne!(hash_sources(root.as_fd(), &all, &none).expect("hash"), h1);
        let h_ign = hash_sources(root.as_fd(), &all, &ignore).expect("hash");
        fs::write(d.path().join("src/sub/c.txt"), b"CC").expect("w");
        assert_eq!(
            hash_sources(root.as_fd(), &all, &ignore).expect("hash"),
            h_ign
        );
    }

    #[test]
    fn copies_into_root_without_escaping() {
        let d = tree();
        let dst = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), dst.path().join("evil")).expect("symlink");
        let src = fsutil::open_dir(d.path()).expect("open");
        let root = fsutil::open_dir(dst.path()).expect("open");
        let none = SourceFilter::default();
        let m = match_sources(src.as_fd(), "src", &none).expect("src");
        copy_sources(
            src.as_fd(),
            &m,
            &none,
            root.as_fd(),
            "/app/",
            true,
            CopyAttrs::default(),
        )
        .expect("copy dir");
        assert_eq!(
            fs::read(dst.path().join("app/sub/c.txt")).expect("read"),
            b"c"
        );
        assert_eq!(
            fs::read_link(dst.path().join("app/etc-link")).expect("link"),
            std::path::Path::new("/etc")
        );
        let m = match_sources(src.as_fd(), "top.txt", &none).expect("file");
        copy_sources(
            src.as_fd(),
            &m,
            &none,
            root.as_fd(),
            "/app/renamed",
            false,
            CopyAttrs::default(),
        )
        .expect("copy file");
        assert_eq!(
            fs::read(dst.path().join("app/renamed")).expect("read"),
            b"t"
        );
        // Through an absolute symlink: stays inside the root.
        let r = copy_sources(
            src.as_fd(),
            &m,
            &none,
            root.as_fd(),
            "/evil/x",
            false,
            CopyAttrs::default(),
        );
        assert!(fs::read_dir(outside.path()).expect("ls").next().is_none());
        if r.is_ok() {
            let inside = dst
                .path()
                .join(outside.path().strip_prefix("/").expect("abs"))
                .join("x");
            assert!(inside.exists());
        }
        write_inline(
            root.as_fd(),
            "/etc/conf",
            false,
            "EOF",
            b"k=v\n",
            CopyAttrs::default(),
            0,
        )
        .expect("inline");
        assert_eq!(
            fs::read(dst.path().join("etc/conf")).expect("read"),
            b"k=v\n"
        );
    }
}
