//! Docker archives (`docker save` / `skopeo copy ... docker-archive:`): a
//! tar with `manifest.json`, the image configurations and the layer tars
//! (uncompressed, gzip or zstd). They are converted in place into an OCI
//! layout: layer digests and diff ids are computed and checked against the
//! configuration's `rootfs.diff_ids`.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::layout::{ref_annotations, Layout};
use super::types::{
    to_json, Descriptor, ImageConfig, Manifest, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST,
};
use super::OciError;
use crate::digest::{Digest, HashReader};
use crate::layer;

/// One image of a Docker archive's `manifest.json`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Whether the unpacked archive in `dir` is a Docker archive (it has a
/// `manifest.json` and no `oci-layout`).
pub fn is_docker_archive(dir: &Path) -> bool {
    dir.join("manifest.json").is_file() && !dir.join("oci-layout").exists()
}

/// The file `name` (a path inside the unpacked archive `dir`), refusing
/// names or symbolic links that lead outside it.
fn member(dir: &Path, archive: &Path, name: &str) -> Result<PathBuf, OciError> {
    let bad = |why: &str| OciError::BadArchive(archive.to_path_buf(), format!("{name:?}: {why}"));
    let rel = Path::new(name);
    if name.is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad("not a relative path inside the archive"));
    }
    let root = dir
        .canonicalize()
        .map_err(|e| OciError::io(dir.display(), e))?;
    let real = root
        .join(rel)
        .canonicalize()
        .map_err(|e| OciError::BadArchive(archive.to_path_buf(), format!("{name:?}: {e}")))?;
    if !real.starts_with(&root) || !real.is_file() {
        return Err(bad("not a file inside the archive"));
    }
    Ok(real)
}

/// The media type of a layer tar from its first bytes.
fn sniff(path: &Path) -> Result<&'static str, OciError> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path).map_err(|e| OciError::io(path.display(), e))?;
    let mut n = 0;
    while n < magic.len() {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(OciError::io(path.display(), e)),
        }
    }
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => layer::MEDIA_TYPE_TAR_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => layer::MEDIA_TYPE_TAR_ZSTD,
        _ => layer::MEDIA_TYPE_TAR,
    })
}

/// Digest of the file and of its decompressed content (the diff id).
fn layer_digests(path: &Path, media_type: &str) -> Result<(Digest, Digest, u64), OciError> {
    let f = File::open(path).map_err(|e| OciError::io(path.display(), e))?;
    let mut outer = HashReader::new(BufReader::new(f));
    let diff_id = {
        let inner = layer::decompress(media_type, &mut outer)
            .map_err(|e| OciError::BadArchive(path.to_path_buf(), e.to_string()))?;
        let mut hashed = HashReader::new(inner);
        io::copy(&mut hashed, &mut io::sink()).map_err(|e| OciError::io(path.display(), e))?;
        hashed
            .drain()
            .map_err(|e| OciError::io(path.display(), e))?
            .0
    };
    let (digest, size) = outer.drain().map_err(|e| OciError::io(path.display(), e))?;
    Ok((digest, diff_id, size))
}

/// Converts the Docker archive unpacked in `dir` (from `archive`) into an
/// OCI layout in the same directory: every image of `manifest.json` gets
/// an index entry named after each of its `RepoTags` (or an unnamed one).
pub fn convert(dir: &Path, archive: &Path) -> Result<Layout, OciError> {
    let bad = |why: String| OciError::BadArchive(archive.to_path_buf(), why);
    let text = fs::read(dir.join("manifest.json")).map_err(|e| OciError::io("manifest.json", e))?;
    let entries: Vec<Entry> = serde_json::from_slice(&text).map_err(|e| {
        OciError::BadJson(
            format!("{}: manifest.json", archive.display()),
            e.to_string(),
        )
    })?;
    if entries.is_empty() {
        return Err(bad("manifest.json lists no images".into()));
    }
    let layout = Layout::create(dir)?;
    for entry in &entries {
        let config_path = member(dir, archive, &entry.config)?;
        let config_bytes =
            fs::read(&config_path).map_err(|e| OciError::io(config_path.display(), e))?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| OciError::BadJson(entry.config.clone(), e.to_string()))?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(bad(format!(
                "config {} lists {} diff_ids but manifest.json has {} layers",
                entry.config,
                config.rootfs.diff_ids.len(),
                entry.layers.len()
            )));
        }
        let config_digest = layout.write_blob(&config_bytes)?;
        let mut layers = Vec::new();
        for (name, want) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let path = member(dir, archive, name)?;
            let media_type = sniff(&path)?;
            let (digest, diff_id, size) = layer_digests(&path, media_type)?;
            if &diff_id != want {
                return Err(OciError::DigestMismatch {
                    what: format!("{}: layer {name}", archive.display()),
                    expected: want.to_string(),
                    actual: diff_id.to_string(),
                });
            }
            let mut f = File::open(&path).map_err(|e| OciError::io(path.display(), e))?;
            layout.import_blob(&mut f, &digest, Some(size))?;
            layers.push(Descriptor::new(media_type, digest, size));
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.to_string()),
            config: Descriptor::new(MEDIA_TYPE_CONFIG, config_digest, config_bytes.len() as u64),
            layers,
            annotations: None,
        };
        let manifest_bytes = to_json(&manifest);
        let digest = layout.write_blob(&manifest_bytes)?;
        let desc = Descriptor::new(MEDIA_TYPE_MANIFEST, digest, manifest_bytes.len() as u64);
        let tags = entry.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            layout.add_to_index(desc.clone())?;
        }
        for t in tags {
            let mut d = desc.clone();
            d.annotations = Some(ref_annotations(&t));
            layout.add_to_index(d)?;
        }
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{write_layer, Compression};

    fn archive_dir(diff_id: Option<&Digest>, layer_name: &str) -> (tempfile::TempDir, Digest) {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = tempfile::tempdir().expect("tempdir");
        fs::write(src.path().join("f"), b"data").expect("write");
        let f = File::create(dir.path().join("layer.tar")).expect("create");
        let blob = write_layer(src.path(), Some(0), Compression::None, f).expect("layer");
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.unwrap_or(&blob.diff_id).to_string()]},
        });
        fs::write(dir.path().join("c.json"), config.to_string()).expect("config");
        let manifest = serde_json::json!([
            {"Config": "c.json", "RepoTags": ["localhost/t:1"], "Layers": [layer_name]}
        ]);
        fs::write(dir.path().join("manifest.json"), manifest.to_string()).expect("manifest");
        (dir, blob.diff_id)
    }

    #[test]
    fn converts_and_verifies() {
        let (dir, diff_id) = archive_dir(None, "layer.tar");
        assert!(is_docker_archive(dir.path()));
        let layout = convert(dir.path(), Path::new("a.tar")).expect("convert");
        let img = layout.resolve(Some("localhost/t:1")).expect("resolve");
        assert_eq!(img.manifest.layers.len(), 1);
        assert_eq!(img.manifest.layers[0].media_type, layer::MEDIA_TYPE_TAR);
        assert_eq!(img.manifest.layers[0].digest, diff_id);
        assert_eq!(img.config.config.cmd, Some(vec!["sh".to_string()]));
        assert!(layout.resolve(Some("1")).is_ok());

        let wrong = Digest::of(b"other");
        let (dir, _) = archive_dir(Some(&wrong), "layer.tar");
        assert!(matches!(
            convert(dir.path(), Path::new("a.tar")),
            Err(OciError::DigestMismatch { .. })
        ));
        for name in ["../layer.tar", "/etc/passwd", ""] {
            let (dir, _) = archive_dir(None, name);
            assert!(
                matches!(
                    convert(dir.path(), Path::new("a.tar")),
                    Err(OciError::BadArchive(..))
                ),
                "{name}"
            );
        }
        let (dir, _) = archive_dir(None, "link.tar");
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.tar")).expect("symlink");
        assert!(matches!(
            convert(dir.path(), Path::new("a.tar")),
            Err(OciError::BadArchive(..))
        ));
    }
}
