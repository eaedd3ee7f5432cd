//! The local content store (`--root`, default /var/lib/berth-build):
//!
//! ```text
//! oci-layout, index.json, blobs/sha256/   an OCI layout: every blob, and the images tagged with -t
//! layers/<diff-id hex>/                   layers unpacked in overlay format (lower dirs for RUN/COPY)
//! layers/empty/                           an empty lower dir (FROM scratch)
//! cache/<key hex>.json                    build cache: step key -> resulting layer
//! tmp/                                    per-build scratch space (overlay upper/work dirs, bundles)
//! run/                                    state root of the berth containers running RUN steps
//! lock                                    held (flock) by a build for its whole duration
//! ```
//!
//! Everything becomes visible by a rename once complete, so an interrupted
//! build leaves nothing half-written; the next build clears `tmp/`.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::digest::{Digest, HashReader};
use crate::layer::{self, ExtractMode, LayerError};
use crate::oci::layout::{ref_annotations, write_atomic};
use crate::oci::types::Descriptor;
use crate::oci::{Layout, OciError};

/// Errors from the content store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Layout-level error (blobs, index).
    #[error(transparent)]
    Oci(#[from] OciError),
    /// Layer extraction failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A layer whose content does not match its digests.
    #[error("layer {digest}: uncompressed content has digest {actual}, but the image config says {expected}")]
    DiffIdMismatch {
        /// Blob digest.
        digest: Digest,
        /// Expected diff id.
        expected: Digest,
        /// Actual digest.
        actual: Digest,
    },
    /// No image by that name.
    #[error("no image named {0:?} in the store (see `berth-build images`)")]
    NoSuchImage(String),
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    fn io(what: impl std::fmt::Display, source: io::Error) -> Self {
        StoreError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// A layer of an image: its blob and its uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Blob digest.
    pub digest: Digest,
    /// Uncompressed tar digest.
    pub diff_id: Digest,
    /// Blob size.
    pub size: u64,
    /// Blob media type.
    pub media_type: String,
}

impl LayerRecord {
    /// The manifest descriptor of this layer.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, self.digest.clone(), self.size)
    }
}

/// What a cached build step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The layer, or none when the step changed no files.
    pub layer: Option<LayerRecord>,
    /// The history time recorded when the step ran.
    pub created: String,
}

/// An image tagged in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The name (`name:tag`).
    pub name: String,
    /// Its manifest descriptor.
    pub manifest: Descriptor,
}

/// The content store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    layout: Layout,
}

/// An exclusive lock on the store, released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// A scratch directory under `tmp/`, unmounted and removed on drop.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree_unmounting(&self.path);
    }
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir`, deepest first.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Unmounts anything below `path`, then removes it.
pub(crate) fn remove_tree_unmounting(path: &Path) {
    for m in mounts_under(path) {
        if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %m.display(), error = %e, "cannot unmount");
        }
    }
    if !mounts_under(path).is_empty() {
        tracing::warn!(path = %path.display(), "still mounted; not removing");
        return;
    }
    if let Err(e) = fs::remove_dir_all(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove scratch directory");
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for sub in ["layers/empty", "cache", "tmp", "run"] {
            fs::create_dir_all(root.join(sub))
                .map_err(|e| StoreError::io(root.join(sub).display(), e))?;
        }
        let root = fs::canonicalize(root).map_err(|e| StoreError::io(root.display(), e))?;
        let layout = Layout::create(&root)?;
        Ok(Store { root, layout })
    }

    /// Takes the store's exclusive lock (waiting for another build), then
    /// clears leftovers of interrupted builds from `tmp/`.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        let path = self.root.join("lock");
        let file = File::create(&path).map_err(|e| StoreError::io(path.display(), e))?;
        // SAFETY: flock on a valid open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            eprintln!(
                "waiting for another build to release {}",
                self.root.display()
            );
            // SAFETY: as above.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(StoreError::io(path.display(), io::Error::last_os_error()));
            }
        }
        let tmp = self.root.join("tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                tracing::debug!(path = %e.path().display(), "removing leftover scratch");
                remove_tree_unmounting(&e.path());
            }
        }
        Ok(StoreLock { _file: file })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's OCI layout (all blobs).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The directory holding unpacked layers.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// The state root for RUN containers.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// A fresh scratch directory named after `what`.
    pub fn scratch(&self, what: &str) -> Result<Scratch, StoreError> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self
            .root
            .join("tmp")
            .join(format!("{what}-{}-{n}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| StoreError::io(path.display(), e))?;
        Ok(Scratch { path })
    }

    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.root.join("cache").join(format!("{}.json", key.hex()))
    }

    /// The cached result of step `key`, if it and its layer blob exist.
    pub fn cache_get(&self, key: &Digest) -> Option<CacheEntry> {
        let data = fs::read(self.cache_path(key)).ok()?;
        let entry: CacheEntry = serde_json::from_slice(&data).ok()?;
        match &entry.layer {
            Some(l) if !self.layout.has_blob(&l.digest) => None,
            _ => Some(entry),
        }
    }

    /// Records the result of step `key`.
    pub fn cache_put(&self, key: &Digest, entry: &CacheEntry) -> Result<(), StoreError> {
        let path = self.cache_path(key);
        let data = serde_json::to_vec(entry).unwrap_or_default();
        write_atomic(&path, &data).map_err(|e| StoreError::io(path.display(), e))
    }

    /// A new temporary file for a blob being written.
    pub fn blob_tmp(&self) -> Result<(PathBuf, File), StoreError> {
        let path = crate::oci::layout::tmp_sibling(&self.root.join("blobs/sha256/new"));
        let f = File::create(&path).map_err(|e| StoreError::io(path.display(), e))?;
        Ok((path, f))
    }

    /// Moves a finished temporary blob into place under its digest.
    pub fn commit_blob(&self, tmp: &Path, digest: &Digest) -> Result<(), StoreError> {
        let dest = self.layout.blob_path(digest);
        fs::rename(tmp, &dest).map_err(|e| StoreError::io(dest.display(), e))
    }

    /// The unpacked directory of layer `diff_id` (it may not exist yet).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// Keeps `upper` (an overlay upper dir just archived as layer
    /// `diff_id`) as that layer's unpacked directory.
    pub fn adopt_layer_dir(&self, upper: &Path, diff_id: &Digest) -> Result<(), StoreError> {
        let dest = self.layer_dir(diff_id);
        if dest.exists() {
            return Ok(());
        }
        fs::rename(upper, &dest).map_err(|e| StoreError::io(dest.display(), e))
    }

    /// Makes sure `layer` is unpacked (in overlay format), verifying the
    /// blob digest and the diff id while extracting. Returns its directory.
    pub fn ensure_unpacked(&self, layer: &LayerRecord) -> Result<PathBuf, StoreError> {
        let dest = self.layer_dir(&layer.diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let scratch = self.scratch("unpack")?;
        let tmp = scratch.path().join("layer");
        fs::create_dir(&tmp).map_err(|e| StoreError::io(tmp.display(), e))?;
        let blob = self.layout.open_blob(&layer.digest)?;
        let mut outer = HashReader::new(io::BufReader::new(blob));
        let (diff_id, _) = {
            let inner = layer::decompress(&layer.media_type, &mut outer)?;
            let mut hashed = HashReader::new(inner);
            layer::extract(&mut hashed, &tmp, ExtractMode::Overlay)?;
            hashed
                .drain()
                .map_err(|e| StoreError::io(format!("layer {}", layer.digest), e))?
        };
        let (digest, _) = outer
            .drain()
            .map_err(|e| StoreError::io(format!("layer {}", layer.digest), e))?;
        if digest != layer.digest {
            return Err(OciError::DigestMismatch {
                what: "layer blob".into(),
                expected: layer.digest.to_string(),
                actual: digest.to_string(),
            }
            .into());
        }
        if diff_id != layer.diff_id {
            return Err(StoreError::DiffIdMismatch {
                digest: layer.digest.clone(),
                expected: layer.diff_id.clone(),
                actual: diff_id,
            });
        }
        if !dest.exists() {
            fs::rename(&tmp, &dest).map_err(|e| StoreError::io(dest.display(), e))?;
        }
        Ok(dest)
    }

    /// Names `manifest` as `name` in the store (replacing an older image of
    /// that name).
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        let mut d = manifest.clone();
        d.annotations = Some(ref_annotations(name));
        self.layout.add_to_index(d)?;
        Ok(())
    }

    /// The tagged images.
    pub fn images(&self) -> Result<Vec<StoredImage>, StoreError> {
        Ok(self
            .layout
            .names()?
            .into_iter()
            .map(|(name, manifest)| StoredImage { name, manifest })
            .collect())
    }

    /// Finds a tagged image by name (`name` or `name:tag`).
    pub fn find(&self, name: &str) -> Result<StoredImage, StoreError> {
        let full = crate::oci::normalize_tag(name).unwrap_or_else(|_| name.to_string());
        self.images()?
            .into_iter()
            .find(|i| i.name == full || i.name == name)
            .ok_or_else(|| StoreError::NoSuchImage(name.to_string()))
    }

    /// Removes the tag `name`, and the manifest and config blobs that no
    /// other tagged image uses (layers stay for the build cache).
    pub fn remove(&self, name: &str) -> Result<Descriptor, StoreError> {
        let img = self.find(name)?;
        let mut index = self.layout.index()?;
        index
            .manifests
            .retain(|m| m.ref_name() != Some(img.name.as_str()));
        self.layout.write_index(&index)?;
        let mut used = std::collections::HashSet::new();
        for m in &index.manifests {
            used.insert(m.digest.clone());
            if let Ok(man) = self.layout.manifest(&m.digest) {
                used.insert(man.config.digest.clone());
            }
        }
        if !used.contains(&img.manifest.digest) {
            if let Ok(man) = self.layout.manifest(&img.manifest.digest) {
                if !used.contains(&man.config.digest) {
                    let _ = fs::remove_file(self.layout.blob_path(&man.config.digest));
                }
            }
            let _ = fs::remove_file(self.layout.blob_path(&img.manifest.digest));
        }
        Ok(img.manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
    }

    #[test]
    fn cache_roundtrip_and_missing_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let key = Digest::of(b"key");
        assert_eq!(store.cache_get(&key), None);
        let entry = CacheEntry {
            layer: None,
            created: "1970-01-01T00:00:00Z".into(),
        };
        store.cache_put(&key, &entry).expect("put");
        assert_eq!(store.cache_get(&key), Some(entry));
        let missing = CacheEntry {
            layer: Some(LayerRecord {
                digest: Digest::of(b"gone"),
                diff_id: Digest::of(b"gone"),
                size: 4,
                media_type: layer::MEDIA_TYPE_TAR.into(),
            }),
            created: String::new(),
        };
        store.cache_put(&key, &missing).expect("put");
        assert_eq!(store.cache_get(&key), None);
        let s = store.scratch("t").expect("scratch");
        let p = s.path().to_path_buf();
        fs::write(p.join("f"), b"x").expect("write");
        drop(s);
        assert!(!p.exists());
    }
}
