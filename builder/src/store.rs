//! The local content store (`--root`, default /var/lib/berth-build):
//!
//! ```text
//! oci-layout, index.json, blobs/sha256/   an OCI layout: every blob, and the images tagged with -t
//! layers/<diff-id hex>/                   layers unpacked in overlay format (lower dirs for RUN/COPY)
//! layers/empty/                           an empty lower dir (FROM scratch)
//! cache/<key hex>.json                    build cache: step key -> resulting layer
//! mounts/cache/<sha256 of id>/             RUN --mount=type=cache directories, kept across builds
//! tmp/                                    per-build scratch space (overlay upper/work dirs, bundles)
//! run/                                    state root of the berth containers running RUN steps
//! lock                                    held (flock) by a build for its whole duration
//! ```
//!
//! Everything becomes visible by a rename once complete, so an interrupted
//! build leaves nothing half-written; the next build clears `tmp/`.
//! [`Store::prune`] removes what nothing refers to any more.

use std::collections::HashSet;
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
    /// A bad argument (image name, archive format...).
    #[error("{0}")]
    Invalid(String),
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
    pub(crate) fn io(what: impl std::fmt::Display, source: io::Error) -> Self {
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

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Blobs (and interrupted temporary blobs) removed.
    pub blobs: usize,
    /// Build cache entries removed.
    pub cache_entries: usize,
    /// Unpacked layer directories removed.
    pub layer_dirs: usize,
    /// `RUN --mount=type=cache` directories removed.
    pub cache_mounts: usize,
    /// Bytes freed (apparent sizes of the files removed).
    pub freed_bytes: u64,
}

/// The apparent size of the files under `path` (not following symlinks).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Removes a file or a directory tree; returns the bytes freed.
fn remove_counting(path: &Path) -> Result<u64, StoreError> {
    let size = tree_size(path);
    let is_dir = fs::symlink_metadata(path)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let r = if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Ok(()) => Ok(size),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StoreError::io(format!("removing {}", path.display()), e)),
    }
}

/// The content store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    layout: Layout,
    /// Build-context file digests by metadata, loaded on first use and
    /// written back when the store is dropped.
    context_digests: std::sync::OnceLock<crate::context::digests::FileDigests>,
}

/// An exclusive lock on the store, released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// A layer extracted and checked (diff id) in a scratch directory, not yet
/// in `layers/` ([`Store::commit_layer`]); removed if dropped.
#[derive(Debug)]
pub struct PreparedLayer {
    _scratch: Scratch,
    dir: PathBuf,
    diff_id: Digest,
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

impl Drop for Store {
    fn drop(&mut self) {
        // A cache: losing it costs a re-read of the context, nothing more.
        if let Some(d) = self.context_digests.get() {
            if let Err(e) = d.save() {
                tracing::debug!(error = %e, "cannot save context digests");
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let t0 = std::time::Instant::now();
        remove_tree_unmounting(&self.path);
        tracing::debug!(path = %self.path.display(), ms = t0.elapsed().as_millis() as u64, "scratch removed");
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
        // Scratch trees are unrelated to each other (and to the last
        // build's, just deleted): let the file system spread them.
        if let Err(e) = crate::fsutil::set_topdir(&root.join("tmp")) {
            tracing::debug!(error = %e, "no FS_TOPDIR_FL on the store's tmp/");
        }
        let layout = Layout::create(&root)?;
        Ok(Store {
            root,
            layout,
            context_digests: std::sync::OnceLock::new(),
        })
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

    /// The persistent directory of the `RUN --mount=type=cache` mount `id`
    /// (it may not exist yet).
    pub fn cache_mount_dir(&self, id: &str) -> PathBuf {
        self.root
            .join("mounts/cache")
            .join(Digest::of(id.as_bytes()).hex())
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

    /// The remembered digests of build-context files
    /// ([`crate::context::digests`]).
    pub fn context_digests(&self) -> &crate::context::digests::FileDigests {
        self.context_digests.get_or_init(|| {
            crate::context::digests::FileDigests::load(self.root.join("context-digests"))
        })
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
        match fs::rename(upper, &dest) {
            // A stage building at the same time made the same layer.
            Err(_) if dest.is_dir() => Ok(()),
            r => r.map_err(|e| StoreError::io(dest.display(), e)),
        }
    }

    /// Makes sure `layer` is unpacked (in overlay format), verifying the
    /// blob digest and the diff id while extracting. Returns its directory.
    pub fn ensure_unpacked(&self, layer: &LayerRecord) -> Result<PathBuf, StoreError> {
        self.unpack_layer(layer, false)
    }

    /// [`Store::ensure_unpacked`] for every layer, the missing ones extracted at the same time
    /// (one thread per layer, as many as there are CPUs): each extraction decompresses and
    /// hashes twice (the blob and the diff id) on one core, so an image's first use is about
    /// as many times faster as there are cores and layers.
    pub fn ensure_unpacked_all(&self, layers: &[LayerRecord]) -> Result<(), StoreError> {
        let missing: Vec<&LayerRecord> = layers
            .iter()
            .filter(|l| !self.layer_dir(&l.diff_id).is_dir())
            .collect();
        if missing.len() < 2 {
            return missing
                .iter()
                .try_for_each(|l| self.ensure_unpacked(l).map(|_| ()));
        }
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(missing.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(l) = missing.get(i) else {
                            return Ok(());
                        };
                        self.ensure_unpacked(l)?;
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(StoreError::Invalid(
                            "layer extraction thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        results.into_iter().collect()
    }

    /// Like [`Store::ensure_unpacked`], for layers from a registry: a
    /// device node is an error (naming it) instead of being skipped.
    pub fn ensure_unpacked_strict(&self, layer: &LayerRecord) -> Result<PathBuf, StoreError> {
        self.unpack_layer(layer, true)
    }

    fn unpack_layer(&self, layer: &LayerRecord, strict: bool) -> Result<PathBuf, StoreError> {
        let dest = self.layer_dir(&layer.diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let blob = self.layout.open_blob(&layer.digest)?;
        let mut outer = HashReader::new(io::BufReader::new(blob));
        let prepared = self.extract_layer(&mut outer, layer, strict)?;
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
        self.commit_layer(prepared)
    }

    /// Extracts the compressed layer stream `blob` (the caller checks its
    /// digest) into a scratch directory and checks the diff id; nothing
    /// is visible until [`Store::commit_layer`]. `strict`: a device node
    /// is an error.
    pub fn extract_layer<R: io::Read>(
        &self,
        blob: R,
        layer: &LayerRecord,
        strict: bool,
    ) -> Result<PreparedLayer, StoreError> {
        let scratch = self.scratch("unpack")?;
        let tmp = scratch.path().join("layer");
        fs::create_dir(&tmp).map_err(|e| StoreError::io(tmp.display(), e))?;
        let (diff_id, _) = {
            let inner = layer::decompress(&layer.media_type, blob)?;
            let mut hashed = HashReader::new(inner);
            let stats = layer::extract(&mut hashed, &tmp, ExtractMode::Overlay)?;
            if let (true, Some(path)) = (strict, stats.first_device) {
                return Err(LayerError::Unsafe {
                    path,
                    reason: "device nodes are not allowed in a layer".into(),
                }
                .into());
            }
            hashed
                .drain()
                .map_err(|e| StoreError::io(format!("layer {}", layer.digest), e))?
        };
        if diff_id != layer.diff_id {
            return Err(StoreError::DiffIdMismatch {
                digest: layer.digest.clone(),
                expected: layer.diff_id.clone(),
                actual: diff_id,
            });
        }
        Ok(PreparedLayer {
            _scratch: scratch,
            dir: tmp,
            diff_id,
        })
    }

    /// Makes an extracted layer the store's unpacked copy of its diff id.
    pub fn commit_layer(&self, p: PreparedLayer) -> Result<PathBuf, StoreError> {
        let dest = self.layer_dir(&p.diff_id);
        if !dest.exists() {
            match fs::rename(&p.dir, &dest) {
                // Unpacked meanwhile by another thread.
                Err(_) if dest.is_dir() => {}
                r => r.map_err(|e| StoreError::io(dest.display(), e))?,
            }
        }
        Ok(dest)
    }

    /// The layers (diff id hex) that overlay bundles made by `unpack
    /// --overlay` still use (`bundles/<id>` lists them, one per line).
    pub fn overlay_layers(&self) -> HashSet<String> {
        let mut out = HashSet::new();
        if let Ok(rd) = fs::read_dir(self.root.join("bundles")) {
            for e in rd.flatten() {
                if let Ok(text) = fs::read_to_string(e.path()) {
                    out.extend(text.lines().skip(1).map(str::to_string));
                }
            }
        }
        out
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
        let remote = crate::oci::Reference::parse(name)
            .map(|r| r.to_string())
            .unwrap_or_default();
        let images = self.images()?;
        images
            .iter()
            .find(|i| i.name == full || i.name == name)
            .or_else(|| images.iter().find(|i| i.name == remote))
            .cloned()
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

impl Store {
    /// Marks the blobs reachable from manifest or index `digest` (and the
    /// diff ids of the images' layers) as in use.
    fn mark(
        &self,
        digest: &Digest,
        depth: u32,
        blobs: &mut HashSet<String>,
        diff_ids: &mut HashSet<String>,
    ) -> Result<(), StoreError> {
        blobs.insert(digest.hex().to_string());
        let bad = |why: String| {
            StoreError::Oci(OciError::BadJson(
                format!(
                    "blob {digest} (listed in {}/index.json)",
                    self.root.display()
                ),
                format!("{why}; remove the image with `berth-build rm` before pruning"),
            ))
        };
        if depth > 3 {
            return Err(bad("indexes nested too deep".into()));
        }
        let data = self.layout.read_blob(digest)?;
        let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
        let digest_of = |d: &serde_json::Value| -> Result<Digest, StoreError> {
            d["digest"]
                .as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| bad("a descriptor without a valid digest".into()))
        };
        if let Some(list) = v["manifests"].as_array() {
            for m in list {
                self.mark(&digest_of(m)?, depth + 1, blobs, diff_ids)?;
            }
        }
        if v["config"].is_object() {
            let config = digest_of(&v["config"])?;
            blobs.insert(config.hex().to_string());
            if let Ok(data) = self.layout.read_blob(&config) {
                let c: serde_json::Value = serde_json::from_slice(&data).unwrap_or_default();
                for d in c["rootfs"]["diff_ids"].as_array().into_iter().flatten() {
                    if let Some(d) = d.as_str().and_then(|s| Digest::parse(s).ok()) {
                        diff_ids.insert(d.hex().to_string());
                    }
                }
            }
        }
        for l in v["layers"].as_array().into_iter().flatten() {
            blobs.insert(digest_of(l)?.hex().to_string());
        }
        Ok(())
    }

    /// Removes what nothing refers to: blobs reachable neither from the
    /// images in `index.json` nor from a build cache entry, cache entries
    /// whose layer blob is gone, unpacked layers of removed blobs, and
    /// leftovers of interrupted writes. With `all`, the whole build cache
    /// (entries and `RUN --mount=type=cache` directories) goes too, so only
    /// the tagged images' blobs stay. The caller holds [`Store::lock`].
    pub fn prune(&self, all: bool) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let mut blobs = HashSet::new();
        let mut diff_ids = HashSet::new();
        for m in &self.layout.index()?.manifests {
            self.mark(&m.digest, 0, &mut blobs, &mut diff_ids)?;
        }
        // Layers under overlay bundles (`unpack --overlay`) stay.
        diff_ids.extend(self.overlay_layers());
        let list = |dir: &Path| -> Result<Vec<fs::DirEntry>, StoreError> {
            match fs::read_dir(dir) {
                Ok(rd) => Ok(rd.flatten().collect()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(StoreError::io(dir.display(), e)),
            }
        };
        for e in list(&self.root.join("cache"))? {
            let path = e.path();
            let entry = fs::read(&path)
                .ok()
                .and_then(|d| serde_json::from_slice::<CacheEntry>(&d).ok());
            let keep = match &entry {
                _ if all => None,
                Some(CacheEntry { layer: None, .. }) => Some(None),
                Some(CacheEntry { layer: Some(l), .. }) if self.layout.has_blob(&l.digest) => {
                    Some(Some(l))
                }
                _ => None,
            };
            match keep {
                Some(layer) => {
                    if let Some(l) = layer {
                        blobs.insert(l.digest.hex().to_string());
                        diff_ids.insert(l.diff_id.hex().to_string());
                    }
                }
                None => {
                    report.freed_bytes += remove_counting(&path)?;
                    report.cache_entries += 1;
                }
            }
        }
        for e in list(&self.root.join("blobs/sha256"))? {
            let name = e.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                report.freed_bytes += remove_counting(&e.path())?;
                report.blobs += 1;
            }
        }
        for e in list(&self.layers_dir())? {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "empty" && !diff_ids.contains(&name) {
                report.freed_bytes += remove_counting(&e.path())?;
                report.layer_dirs += 1;
            }
        }
        // Interrupted downloads, and where-it-came-from notes of blobs gone.
        for e in list(&self.root.join("partial"))? {
            report.freed_bytes += remove_counting(&e.path())?;
            report.blobs += 1;
        }
        for e in list(&self.root.join("sources"))? {
            let name = e.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                remove_counting(&e.path())?;
            }
        }
        if all {
            for e in list(&self.root.join("mounts/cache"))? {
                report.freed_bytes += remove_counting(&e.path())?;
                report.cache_mounts += 1;
            }
        }
        Ok(report)
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

    #[test]
    fn prune_removes_what_nothing_refers_to() {
        use crate::oci::types::MEDIA_TYPE_MANIFEST;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let l = store.layout();
        let record = |data: &[u8], diff: &[u8]| LayerRecord {
            digest: Digest::of(data),
            diff_id: Digest::of(diff),
            size: data.len() as u64,
            media_type: layer::MEDIA_TYPE_TAR_GZIP.into(),
        };
        let unpacked = |r: &LayerRecord, content: &[u8]| {
            let d = store.layer_dir(&r.diff_id);
            fs::create_dir_all(d.join("sub")).expect("layer dir");
            fs::write(d.join("sub/f"), content).expect("layer file");
        };
        // A layer only the build cache uses.
        let cached = record(b"layer-a", b"diff-a");
        l.write_blob(b"layer-a").expect("blob");
        unpacked(&cached, b"aa");
        let entry = |layer| CacheEntry {
            layer,
            created: String::new(),
        };
        store
            .cache_put(&Digest::of(b"k1"), &entry(Some(cached.clone())))
            .expect("put");
        store
            .cache_put(&Digest::of(b"k3"), &entry(None))
            .expect("put");
        // A tagged image.
        let img_layer = record(b"layer-b", b"diff-b");
        l.write_blob(b"layer-b").expect("blob");
        unpacked(&img_layer, b"bbb");
        let config = serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [img_layer.diff_id.to_string()]}});
        let config = serde_json::to_vec(&config).expect("json");
        let config_digest = l.write_blob(&config).expect("config");
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest.to_string(), "size": config.len()},
            "layers": [img_layer.descriptor()]});
        let manifest = serde_json::to_vec(&manifest).expect("json");
        let manifest_digest = l.write_blob(&manifest).expect("manifest");
        store
            .tag(
                "img:1",
                &Descriptor::new(MEDIA_TYPE_MANIFEST, manifest_digest, manifest.len() as u64),
            )
            .expect("tag");
        // Garbage: an orphan blob, its unpacked dir, a temporary blob, a
        // cache entry whose layer blob is gone.
        let orphan = record(b"orphan", b"diff-c");
        l.write_blob(b"orphan").expect("blob");
        unpacked(&orphan, b"ccccc");
        fs::write(dir.path().join("blobs/sha256/.tmp-1-2-new"), b"tmp").expect("tmp blob");
        let gone = record(b"never-written", b"diff-d");
        store
            .cache_put(&Digest::of(b"k2"), &entry(Some(gone)))
            .expect("put");
        let k2_size = fs::metadata(store.cache_path(&Digest::of(b"k2")))
            .expect("k2")
            .len();
        let mount = store.cache_mount_dir("go-build");
        fs::create_dir_all(&mount).expect("mount dir");
        fs::write(mount.join("obj"), b"1234").expect("mount file");

        let r = store.prune(false).expect("prune");
        assert_eq!(
            r,
            PruneReport {
                blobs: 2,
                cache_entries: 1,
                layer_dirs: 1,
                cache_mounts: 0,
                freed_bytes: 6 + 3 + k2_size + 5,
            }
        );
        assert!(!l.has_blob(&orphan.digest));
        assert!(!store.layer_dir(&orphan.diff_id).exists());
        assert!(store.cache_get(&Digest::of(b"k1")).is_some());
        assert!(store.layer_dir(&cached.diff_id).exists());
        assert!(mount.join("obj").exists());
        assert_eq!(store.prune(false).expect("again"), PruneReport::default());

        let entries_size: u64 = [b"k1", b"k3"]
            .iter()
            .map(|k| {
                fs::metadata(store.cache_path(&Digest::of(*k)))
                    .expect("entry")
                    .len()
            })
            .sum();
        let r = store.prune(true).expect("prune --all");
        assert_eq!(
            (r.blobs, r.cache_entries, r.layer_dirs, r.cache_mounts),
            (1, 2, 1, 1)
        );
        assert_eq!(r.freed_bytes, 7 + 2 + 4 + entries_size);
        assert!(!l.has_blob(&cached.digest));
        assert!(store.cache_get(&Digest::of(b"k3")).is_none());
        // The image is intact.
        let img = store.find("img:1").expect("image");
        let resolved = l.resolve_descriptor(img.manifest, 0).expect("resolve");
        assert!(l.has_blob(&resolved.manifest.layers[0].digest));
        assert!(store.layer_dir(&img_layer.diff_id).exists());
        assert!(store.layers_dir().join("empty").is_dir());
    }
}
