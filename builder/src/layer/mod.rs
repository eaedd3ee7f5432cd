//! Layers: an overlay upper directory to a deterministic OCI diff tar
//! (gzip, zstd or uncompressed) with its digests, and safe extraction of layer
//! tars with whiteouts.

pub mod check;
pub mod diff;
pub mod extract;
pub mod pgzip;
pub mod tarfmt;
#[cfg(test)]
pub(crate) mod test_tar;

use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use thiserror::Error;

use crate::digest::{Digest, HashWriter};

pub use extract::{extract, ExtractMode, ExtractStats};

/// Media type of an uncompressed OCI layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker's media type for gzip layers (accepted on input).
pub const MEDIA_TYPE_DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Errors while writing or extracting layers.
#[derive(Debug, Error)]
pub enum LayerError {
    /// An entry that would escape the destination or is malformed.
    #[error("unsafe layer entry {path:?}: {reason}")]
    Unsafe {
        /// The entry's path as written in the tar.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The tar stream is malformed.
    #[error("malformed layer tar: {0}")]
    Tar(#[source] io::Error),
    /// A file-system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The path involved.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A layer compressed in a format this build does not read.
    #[error("layer media type {0} is not supported (use gzip, zstd or uncompressed layers)")]
    UnsupportedMediaType(String),
}

impl LayerError {
    pub(crate) fn io(what: impl Display, source: io::Error) -> Self {
        LayerError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// How layer blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// gzip (the default; what every consumer reads).
    #[default]
    Gzip,
    /// No compression.
    None,
    /// zstd (level 3, single-threaded, so the output is deterministic).
    Zstd,
}

/// The gzip level of written layers (gzip's default).
const GZIP_LEVEL: u32 = 6;

/// The zstd level of written layers (zstd's default).
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// The OCI media type for layers with this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => MEDIA_TYPE_TAR_GZIP,
            Compression::None => MEDIA_TYPE_TAR,
            Compression::Zstd => MEDIA_TYPE_TAR_ZSTD,
        }
    }
}

/// A layer blob that was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the blob (compressed bytes).
    pub digest: Digest,
    /// Digest of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Blob size in bytes.
    pub size: u64,
    /// OCI media type.
    pub media_type: &'static str,
    /// Number of tar entries.
    pub entries: usize,
}

fn emit<W: Write>(root: &Path, planned: &[diff::Planned], out: W) -> Result<W, LayerError> {
    let mut tw = tarfmt::TarWriter::new(out);
    for p in planned {
        let mut data: Box<dyn Read> = match &p.source {
            Some(rel) => {
                use std::os::unix::fs::OpenOptionsExt;
                let path = diff::source_path(root, rel);
                Box::new(
                    std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&path)
                        .map_err(|e| LayerError::io(path.display(), e))?,
                )
            }
            None => Box::new(io::empty()),
        };
        tw.append(&p.header, &mut data)
            .map_err(|e| LayerError::io(&p.header.path, e))?;
    }
    tw.finish().map_err(|e| LayerError::io("layer tar", e))
}

/// Archives directory `root` (in overlay upper format) as a deterministic
/// layer into the new file `dest`, with mtimes clamped to `epoch`.
pub fn write_layer(
    root: &Path,
    epoch: Option<i64>,
    compression: Compression,
    dest: File,
) -> Result<LayerBlob, LayerError> {
    let scanned = diff::scan_dir(root).map_err(|e| LayerError::io(root.display(), e))?;
    let planned = diff::plan_entries(scanned, epoch);
    let entries = planned.len();
    let file_hw = HashWriter::new(BufWriter::new(dest));
    let io_err = |e| LayerError::io("layer blob", e);
    let (file_hw, diff_id) = match compression {
        Compression::Gzip => {
            let gz = pgzip::ParallelGzip::new(file_hw, GZIP_LEVEL, pgzip::default_threads())
                .map_err(io_err)?;
            let tar_hw = emit(root, &planned, HashWriter::new(gz))?;
            let (gz, diff_id, _) = tar_hw.finish();
            (gz.finish().map_err(io_err)?, diff_id)
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(file_hw, ZSTD_LEVEL).map_err(io_err)?;
            // The checksum lets readers detect corruption; the content size
            // is unknown while streaming. Both keep the output deterministic.
            enc.include_checksum(true).map_err(io_err)?;
            let tar_hw = emit(root, &planned, HashWriter::new(enc))?;
            let (enc, diff_id, _) = tar_hw.finish();
            (enc.finish().map_err(io_err)?, diff_id)
        }
        Compression::None => {
            let tar_hw = emit(root, &planned, HashWriter::new(file_hw))?;
            let (file_hw, diff_id, _) = tar_hw.finish();
            (file_hw, diff_id)
        }
    };
    let (buf, digest, size) = file_hw.finish();
    let file = buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: compression.media_type(),
        entries,
    })
}

/// A reader of the uncompressed tar inside a layer blob of `media_type`.
pub fn decompress<'a, R: Read + 'a>(
    media_type: &str,
    blob: R,
) -> Result<Box<dyn Read + 'a>, LayerError> {
    match media_type {
        MEDIA_TYPE_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Box::new(blob)),
        MEDIA_TYPE_TAR_GZIP | MEDIA_TYPE_DOCKER_GZIP => {
            Ok(Box::new(flate2::read::GzDecoder::new(blob)))
        }
        MEDIA_TYPE_TAR_ZSTD => Ok(Box::new(
            zstd::stream::read::Decoder::new(blob).map_err(|e| LayerError::io("zstd layer", e))?,
        )),
        other => Err(LayerError::UnsupportedMediaType(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_is_deterministic_and_roundtrips() {
        let src = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(src.path().join("usr/bin")).expect("mkdir");
        std::fs::write(src.path().join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").expect("write");
        std::os::unix::fs::symlink("tool", src.path().join("usr/bin/alias")).expect("symlink");
        let out = tempfile::tempdir().expect("tempdir");
        let mut blobs = Vec::new();
        for (i, c) in [
            Compression::Gzip,
            Compression::Gzip,
            Compression::None,
            Compression::Zstd,
            Compression::Zstd,
        ]
        .into_iter()
        .enumerate()
        {
            let path = out.path().join(format!("blob{i}"));
            let f = File::create(&path).expect("create");
            let b = write_layer(src.path(), Some(0), c, f).expect("layer");
            assert_eq!(b.size, std::fs::metadata(&path).expect("stat").len());
            assert_eq!(Digest::of(&std::fs::read(&path).expect("read")), b.digest);
            blobs.push((path, b));
        }
        assert_eq!(blobs[0].1, blobs[1].1);
        assert_eq!(blobs[0].1.diff_id, blobs[2].1.diff_id);
        assert_eq!(blobs[2].1.digest, blobs[2].1.diff_id);
        // zstd: deterministic, same diff id, its own media type.
        assert_eq!(blobs[3].1, blobs[4].1);
        assert_eq!(blobs[3].1.diff_id, blobs[2].1.diff_id);
        assert_eq!(blobs[3].1.media_type, MEDIA_TYPE_TAR_ZSTD);
        assert_ne!(blobs[3].1.digest, blobs[0].1.digest);
        assert_eq!(
            std::fs::read(&blobs[3].0).expect("read")[..4],
            [0x28, 0xb5, 0x2f, 0xfd]
        );

        let dest = tempfile::tempdir().expect("tempdir");
        let f = File::open(&blobs[0].0).expect("open");
        extract(
            decompress(MEDIA_TYPE_TAR_GZIP, f).expect("gzip"),
            dest.path(),
            ExtractMode::Flat,
        )
        .expect("extract");
        assert_eq!(
            std::fs::read(dest.path().join("usr/bin/tool")).expect("read"),
            b"#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            std::fs::read_link(dest.path().join("usr/bin/alias")).expect("readlink"),
            Path::new("tool")
        );
        // The zstd blob decompresses to the uncompressed tar.
        let mut tar = Vec::new();
        decompress(MEDIA_TYPE_TAR_ZSTD, File::open(&blobs[3].0).expect("open"))
            .expect("zstd")
            .read_to_end(&mut tar)
            .expect("decompress");
        assert_eq!(tar, std::fs::read(&blobs[2].0).expect("read"));
        let zdest = tempfile::tempdir().expect("tempdir");
        extract(
            decompress(MEDIA_TYPE_TAR_ZSTD, File::open(&blobs[3].0).expect("open")).expect("zstd"),
            zdest.path(),
            ExtractMode::Flat,
        )
        .expect("extract");
        assert_eq!(
            std::fs::read(zdest.path().join("usr/bin/tool")).expect("read"),
            b"#!/bin/sh\necho hi\n"
        );
        // Corrupt zstd data is an error, not garbage.
        let mut bad = Vec::new();
        let r = decompress(MEDIA_TYPE_TAR_ZSTD, &b"\x28\xb5\x2f\xfdjunkjunk"[..])
            .map(|mut d| d.read_to_end(&mut bad));
        assert!(!matches!(r, Ok(Ok(_))));
        assert!(decompress("application/x-unknown", &b""[..]).is_err());
    }
}
