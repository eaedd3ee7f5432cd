//! OCI archives: a tar of an image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`), as read by `podman load`, `skopeo` and `ctr`.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;

use super::layout::{tmp_sibling, Layout};
use super::types::{to_json, Descriptor, Index};
use super::OciError;
use crate::digest::Digest;
use crate::layer::tarfmt::{EntryKind, TarHeader, TarWriter};
use crate::layer::{extract, ExtractMode};

fn header(path: &str, kind: EntryKind, mode: u32, mtime: i64) -> TarHeader {
    TarHeader {
        path: path.to_string(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime,
        xattrs: Vec::new(),
    }
}

/// Writes an OCI archive at `dest` holding the image `manifest` (blobs
/// taken from `layout`) named `name`. The file appears only when complete.
pub fn write_archive(
    layout: &Layout,
    manifest: &Descriptor,
    blobs: &[Digest],
    dest: &Path,
    mtime: i64,
) -> Result<(), OciError> {
    write_archive_multi(layout, std::slice::from_ref(manifest), blobs, dest, mtime)
}

/// Writes an OCI archive at `dest` whose index lists `manifests` (each
/// with its own name annotations), with `blobs` from `layout`.
pub fn write_archive_multi(
    layout: &Layout,
    manifests: &[Descriptor],
    blobs: &[Digest],
    dest: &Path,
    mtime: i64,
) -> Result<(), OciError> {
    let tmp = tmp_sibling(dest);
    let result = (|| {
        let io_err = |e| OciError::io(dest.display(), e);
        let f = File::create(&tmp).map_err(io_err)?;
        let mut tw = TarWriter::new(BufWriter::new(f));
        let layout_json = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let index = Index {
            manifests: manifests.to_vec(),
            ..Index::default()
        };
        let index_json = to_json(&index);
        tw.append(
            &header("blobs", EntryKind::Dir, 0o755, mtime),
            &mut io::empty(),
        )
        .map_err(io_err)?;
        tw.append(
            &header("blobs/sha256", EntryKind::Dir, 0o755, mtime),
            &mut io::empty(),
        )
        .map_err(io_err)?;
        let mut sorted: Vec<&Digest> = blobs.iter().collect();
        sorted.sort();
        sorted.dedup();
        for d in sorted {
            let mut src = layout.open_blob(d)?;
            let size = src.metadata().map_err(io_err)?.len();
            tw.append(
                &header(
                    &format!("blobs/sha256/{}", d.hex()),
                    EntryKind::File { size },
                    0o644,
                    mtime,
                ),
                &mut src,
            )
            .map_err(io_err)?;
        }
        // The index last: a reader streaming the archive sees blobs first.
        tw.append(
            &header(
                "oci-layout",
                EntryKind::File {
                    size: layout_json.len() as u64,
                },
                0o644,
                mtime,
            ),
            &mut &layout_json[..],
        )
        .map_err(io_err)?;
        tw.append(
            &header(
                "index.json",
                EntryKind::File {
                    size: index_json.len() as u64,
                },
                0o644,
                mtime,
            ),
            &mut &index_json[..],
        )
        .map_err(io_err)?;
        let w = tw.finish().map_err(io_err)?;
        let f = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        f.sync_all().map_err(io_err)?;
        fs::rename(&tmp, dest).map_err(io_err)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Unpacks the OCI archive `file` into the empty directory `dir` (safely:
/// see [`crate::layer::extract`]) and opens it as a layout. A Docker
/// archive (`docker save`) is converted into a layout (see
/// [`super::docker`]).
pub fn open_archive(file: &Path, dir: &Path) -> Result<Layout, OciError> {
    let f = File::open(file).map_err(|e| OciError::io(file.display(), e))?;
    extract(io::BufReader::new(f), dir, ExtractMode::Flat)
        .map_err(|e| OciError::BadArchive(file.to_path_buf(), e.to_string()))?;
    if super::docker::is_docker_archive(dir) {
        return super::docker::convert(dir, file);
    }
    Layout::open(dir)
}
