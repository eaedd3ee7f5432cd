//! OCI image layout directories: blobs are written first (each through a
//! temporary file and a rename), `index.json` last and atomically, so an
//! interrupted writer never leaves a layout that names a missing or partial
//! blob.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::types::{
    to_json, Descriptor, ImageConfig, Index, Manifest, ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME, MEDIA_TYPE_CONFIG, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
};
use super::OciError;
use crate::digest::{Digest, HashReader};

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// A resolved image: its manifest descriptor, manifest and config.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The manifest's descriptor (as found in the index).
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The image configuration.
    pub config: ImageConfig,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary name next to `path`.
pub(crate) fn tmp_sibling(path: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".tmp-{}-{n}-{name}", std::process::id()))
}

/// Writes `data` to `path` atomically (temporary file, fsync, rename).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = tmp_sibling(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl Layout {
    /// Opens an existing layout (it must have an `oci-layout` file).
    pub fn open(dir: &Path) -> Result<Layout, OciError> {
        let marker = dir.join("oci-layout");
        let text = fs::read_to_string(&marker)
            .map_err(|e| OciError::NotALayout(dir.to_path_buf(), e.to_string()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| OciError::NotALayout(dir.to_path_buf(), e.to_string()))?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(OciError::NotALayout(
                dir.to_path_buf(),
                "unsupported imageLayoutVersion (want 1.0.0)".into(),
            ));
        }
        Ok(Layout {
            root: dir.to_path_buf(),
        })
    }

    /// Opens the layout at `dir`, creating the directory structure if needed.
    pub fn create(dir: &Path) -> Result<Layout, OciError> {
        let io_err = |e| OciError::io(dir.display(), e);
        fs::create_dir_all(dir.join("blobs/sha256")).map_err(io_err)?;
        let marker = dir.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, OCI_LAYOUT.as_bytes()).map_err(io_err)?;
        }
        Layout::open(dir)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether blob `digest` is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Writes the image config `config_json` and a manifest of it and `layers` as blobs;
    /// returns the manifest and its descriptor.
    pub fn write_manifest(
        &self,
        config_json: &[u8],
        layers: Vec<Descriptor>,
        annotations: Option<std::collections::BTreeMap<String, String>>,
    ) -> Result<(Manifest, Descriptor), OciError> {
        let config_digest = self.write_blob(config_json)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.into()),
            config: Descriptor::new(MEDIA_TYPE_CONFIG, config_digest, config_json.len() as u64),
            layers,
            annotations,
        };
        let manifest_json = to_json(&manifest);
        let digest = self.write_blob(&manifest_json)?;
        let desc = Descriptor::new(MEDIA_TYPE_MANIFEST, digest, manifest_json.len() as u64);
        Ok((manifest, desc))
    }

    /// Stores `data` as a blob and returns its digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<Digest, OciError> {
        let digest = Digest::of(data);
        let path = self.blob_path(&digest);
        if !path.exists() {
            write_atomic(&path, data).map_err(|e| OciError::io(path.display(), e))?;
        }
        Ok(digest)
    }

    /// Copies a blob from `reader` into the layout, verifying that it has
    /// `digest` (and `size`, when given) before it becomes visible.
    pub fn import_blob(
        &self,
        reader: &mut dyn Read,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<(), OciError> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        let tmp = tmp_sibling(&path);
        let result = (|| {
            let mut f = File::create(&tmp).map_err(|e| OciError::io(tmp.display(), e))?;
            let mut hr = HashReader::new(reader);
            io::copy(&mut hr, &mut f).map_err(|e| OciError::io(path.display(), e))?;
            let (got, len) = hr.drain().map_err(|e| OciError::io(path.display(), e))?;
            if &got != digest || size.is_some_and(|s| s != len) {
                return Err(OciError::DigestMismatch {
                    what: format!("blob {digest}"),
                    expected: digest.to_string(),
                    actual: format!("{got} ({len} bytes)"),
                });
            }
            f.sync_all().map_err(|e| OciError::io(tmp.display(), e))?;
            fs::rename(&tmp, &path).map_err(|e| OciError::io(path.display(), e))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Opens blob `digest` for streaming (the caller verifies the digest
    /// while reading, e.g. with [`HashReader`]).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, OciError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => OciError::MissingBlob(digest.clone(), self.root.clone()),
            _ => OciError::io(path.display(), e),
        })
    }

    /// Reads a whole (small) blob and verifies its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, OciError> {
        let mut data = Vec::new();
        self.open_blob(digest)?
            .take(64 << 20)
            .read_to_end(&mut data)
            .map_err(|e| OciError::io(self.blob_path(digest).display(), e))?;
        let got = Digest::of(&data);
        if &got != digest {
            return Err(OciError::DigestMismatch {
                what: format!("blob in {}", self.root.display()),
                expected: digest.to_string(),
                actual: got.to_string(),
            });
        }
        Ok(data)
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &Digest) -> Result<T, OciError> {
        let data = self.read_blob(digest)?;
        serde_json::from_slice(&data)
            .map_err(|e| OciError::BadJson(format!("blob {digest}"), e.to_string()))
    }

    /// The layout's `index.json` (an empty index when it has none yet).
    pub fn index(&self) -> Result<Index, OciError> {
        let path = self.root.join("index.json");
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| OciError::BadJson(path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(OciError::io(path.display(), e)),
        }
    }

    /// Replaces `index.json` atomically.
    pub fn write_index(&self, index: &Index) -> Result<(), OciError> {
        let path = self.root.join("index.json");
        write_atomic(&path, &to_json(index)).map_err(|e| OciError::io(path.display(), e))
    }

    /// Adds `desc` to the index, replacing any entry with the same ref name
    /// (or, without a ref name, the same digest).
    pub fn add_to_index(&self, desc: Descriptor) -> Result<(), OciError> {
        let mut index = self.index()?;
        let name = desc.ref_name().map(str::to_string);
        index.manifests.retain(|m| match &name {
            Some(n) => m.ref_name() != Some(n.as_str()),
            None => !(m.digest == desc.digest && m.ref_name().is_none()),
        });
        index.manifests.push(desc);
        self.write_index(&index)
    }

    /// Reads and verifies a manifest.
    pub fn manifest(&self, digest: &Digest) -> Result<Manifest, OciError> {
        self.read_json(digest)
    }

    /// Finds the image named `tag` (the `ref.name` annotation; with no tag,
    /// the only image in the index) and reads its manifest and config.
    pub fn resolve(&self, tag: Option<&str>) -> Result<ResolvedImage, OciError> {
        let index = self.index()?;
        let names = || {
            index
                .manifests
                .iter()
                .filter_map(|m| m.ref_name().map(str::to_string))
                .collect::<Vec<_>>()
        };
        let desc = match tag {
            Some(t) => index
                .manifests
                .iter()
                .find(|m| {
                    m.ref_name().is_some_and(|n| {
                        n == t || n.rsplit_once(':').is_some_and(|(_, short)| short == t)
                    })
                })
                .ok_or_else(|| OciError::NoSuchImage {
                    layout: self.root.clone(),
                    name: t.to_string(),
                    available: names(),
                })?,
            None => match index.manifests.as_slice() {
                [one] => one,
                _ => {
                    return Err(OciError::NoSuchImage {
                        layout: self.root.clone(),
                        name: String::new(),
                        available: names(),
                    })
                }
            },
        }
        .clone();
        self.resolve_descriptor(desc, 0)
    }

    /// Reads the manifest (or, for an index, the host platform's manifest)
    /// named by `desc`, and its config.
    pub fn resolve_descriptor(
        &self,
        desc: Descriptor,
        depth: u32,
    ) -> Result<ResolvedImage, OciError> {
        if desc.media_type == MEDIA_TYPE_INDEX || desc.media_type == MEDIA_TYPE_DOCKER_LIST {
            if depth > 2 {
                return Err(OciError::BadJson(
                    desc.digest.to_string(),
                    "nested indexes too deep".into(),
                ));
            }
            let nested: Index = self.read_json(&desc.digest)?;
            let arch = crate::plan::Platform::host().architecture;
            let pick = nested
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                })
                .or(nested.manifests.first())
                .cloned()
                .ok_or_else(|| OciError::BadJson(desc.digest.to_string(), "empty index".into()))?;
            let mut resolved = self.resolve_descriptor(pick, depth + 1)?;
            resolved.descriptor.annotations = desc.annotations;
            return Ok(resolved);
        }
        let manifest = self.manifest(&desc.digest)?;
        let config: ImageConfig = self.read_json(&manifest.config.digest)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(OciError::BadJson(
                manifest.config.digest.to_string(),
                format!(
                    "config lists {} diff_ids but the manifest has {} layers",
                    config.rootfs.diff_ids.len(),
                    manifest.layers.len()
                ),
            ));
        }
        Ok(ResolvedImage {
            descriptor: desc,
            manifest,
            config,
        })
    }

    /// The names (`ref.name` annotations) in the index, with their
    /// manifest digests.
    pub fn names(&self) -> Result<Vec<(String, Descriptor)>, OciError> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|m| m.ref_name().map(|n| (n.to_string(), m.clone())))
            .collect())
    }
}

/// The annotation map naming an image.
/// `org.opencontainers.image.ref.name` (as given: podman, skopeo and umoci
/// look it up) and `io.containerd.image.name` (the full name, as `ctr
/// images import` expects: `app:1` is `docker.io/library/app:1`).
pub fn ref_annotations(name: &str) -> std::collections::BTreeMap<String, String> {
    let mut a = std::collections::BTreeMap::new();
    a.insert(ANNOTATION_REF_NAME.to_string(), name.to_string());
    let full = super::reference::Reference::parse(name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string());
    a.insert(ANNOTATION_CONTAINERD_NAME.to_string(), full);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::types::MEDIA_TYPE_MANIFEST;

    #[test]
    fn blobs_and_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Layout::create(dir.path()).expect("create");
        let d = l.write_blob(b"hello").expect("blob");
        assert_eq!(l.read_blob(&d).expect("read"), b"hello");
        let wrong = Digest::of(b"other");
        let err = l
            .import_blob(&mut &b"hello"[..], &wrong, None)
            .expect_err("mismatch");
        assert!(matches!(err, OciError::DigestMismatch { .. }));
        assert!(!l.has_blob(&wrong));
        // No temporary files left behind.
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .expect("ls")
                .count(),
            1
        );
        // Tampered blob is detected.
        fs::write(l.blob_path(&d), b"jello").expect("tamper");
        assert!(matches!(
            l.read_blob(&d),
            Err(OciError::DigestMismatch { .. })
        ));

        let mut desc = Descriptor::new(MEDIA_TYPE_MANIFEST, d.clone(), 5);
        desc.annotations = Some(ref_annotations("app:1"));
        l.add_to_index(desc.clone()).expect("index");
        let mut desc2 = desc.clone();
        desc2.size = 6;
        l.add_to_index(desc2).expect("replace");
        let idx = l.index().expect("index");
        assert_eq!(idx.manifests.len(), 1);
        assert_eq!(idx.manifests[0].size, 6);
        assert!(matches!(
            l.resolve(Some("nope")),
            Err(OciError::NoSuchImage { .. })
        ));
        assert!(Layout::open(&dir.path().join("blobs")).is_err());
    }
}
