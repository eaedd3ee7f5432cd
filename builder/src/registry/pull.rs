//! Pull: manifest (resolving an image index or Docker manifest list for
//! the wanted platform; Docker schema 2 manifests rewritten as OCI), the
//! config, then the layers, several at a time. Every blob is hashed and
//! counted while it streams into `partial/` in the store and is renamed
//! into `blobs/` only when digest and size match; an interrupted transfer
//! resumes with a `Range` request (in the same run or the next one). Each
//! new layer is also decompressed and its entries checked while it
//! downloads ([`check_layer`]) before the image is tagged, so an unsafe
//! image leaves no tag and none of its new blobs behind. Layers are
//! extracted into the store (and their diff ids verified) at their first
//! use (a build, `unpack --overlay`), not here.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::client::{Body, Client, RegistryOptions};
use super::progress::Transfers;
use super::{pull_scope, RegistryError};
use crate::digest::{Digest, Hasher};
use crate::layer::{
    MEDIA_TYPE_DOCKER_GZIP, MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD,
};
use crate::oci::types::{
    to_json, Descriptor, ImageConfig, Index, Manifest, PlatformDesc, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
use crate::oci::Reference;
use crate::plan::Platform;
use crate::progress::ProgressMode;
use crate::store::{LayerRecord, Store};

/// Docker's image config media type.
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's uncompressed layer media type.
pub const MEDIA_TYPE_DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// The largest manifest or config accepted (bytes).
pub const MAX_DOCUMENT: u64 = 8 << 20;

/// Layers a pull downloads (and checks) at the same time by default:
/// skopeo's and podman's default; it keeps both cores busy on small
/// machines, where the check of one layer overlaps another's transfer.
pub const DEFAULT_JOBS: usize = 6;

/// When `FROM` (and `build`) pull a base image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when it is not in the store.
    #[default]
    Missing,
    /// Every time (the store's copy is refreshed).
    Always,
    /// Never: images must be in the store.
    Never,
}

impl PullPolicy {
    /// Parses `missing`, `always` or `never` (`true`/`false` as docker).
    pub fn parse(s: &str) -> Result<PullPolicy, String> {
        match s {
            "missing" | "" => Ok(PullPolicy::Missing),
            "always" | "true" => Ok(PullPolicy::Always),
            "never" | "false" => Ok(PullPolicy::Never),
            other => Err(format!(
                "invalid --pull={other:?}: use missing, always or never"
            )),
        }
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index.
    pub platform: Platform,
    /// Layers downloaded at the same time.
    pub jobs: usize,
    /// Progress display.
    pub progress: ProgressMode,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            jobs: DEFAULT_JOBS,
            progress: ProgressMode::Quiet,
        }
    }
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name the image is tagged with in the store.
    pub name: String,
    /// The manifest as stored (OCI).
    pub descriptor: Descriptor,
    /// The digest the registry serves the manifest (or index) under.
    pub remote_digest: Digest,
    /// The image configuration.
    pub config: ImageConfig,
    /// Blobs downloaded (not already in the store).
    pub fetched: usize,
    /// Bytes downloaded.
    pub bytes: u64,
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Layer media types the builder can unpack.
fn layer_type_supported(t: &str) -> bool {
    matches!(
        t,
        MEDIA_TYPE_TAR
            | MEDIA_TYPE_TAR_GZIP
            | MEDIA_TYPE_TAR_ZSTD
            | MEDIA_TYPE_DOCKER_GZIP
            | MEDIA_TYPE_DOCKER_TAR
    )
}

/// A manifest or index as served: bytes, media type, digest.
#[derive(Debug, Clone)]
pub struct Document {
    /// The bytes.
    pub data: Vec<u8>,
    /// The media type (Content-Type, else the document's `mediaType`).
    pub media_type: String,
    /// The digest of `data`.
    pub digest: Digest,
}

/// Reads `resp`'s body, at most `limit` bytes.
fn read_limited(resp: ureq::Response, limit: u64, what: &str) -> Result<Vec<u8>, RegistryError> {
    let mut data = Vec::new();
    resp.into_reader()
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| RegistryError::io(what, e))?;
    if data.len() as u64 > limit {
        return Err(RegistryError::BadManifest(format!(
            "{what} is larger than {limit} bytes"
        )));
    }
    Ok(data)
}

/// Fetches the manifest or index `object` (tag or digest) of `repo`,
/// checking it against the digest asked for and the registry's
/// `Docker-Content-Digest`.
pub fn fetch_manifest(
    client: &Client,
    repo: &str,
    object: &str,
) -> Result<Document, RegistryError> {
    let path = format!("/v2/{repo}/manifests/{object}");
    let resp = match client.request(
        "GET",
        &path,
        &pull_scope(repo),
        &[("Accept", ACCEPT)],
        Body::Empty,
    ) {
        Ok(r) => r,
        Err(RegistryError::Http {
            code: 404, message, ..
        }) => {
            let what = if object.starts_with("sha256:") {
                "manifest"
            } else {
                "tag"
            };
            return Err(RegistryError::NotFound(format!(
                "{what} {object:?} of repository {repo} ({message})"
            )));
        }
        Err(e) => return Err(e),
    };
    let header_type = resp
        .header("content-type")
        .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let served = resp.header("docker-content-digest").map(str::to_string);
    let data = read_limited(resp, MAX_DOCUMENT, &format!("manifest {object}"))?;
    let digest = Digest::of(&data);
    if let Ok(asked) = Digest::parse(object) {
        if asked != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {object}"),
                expected: asked.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    if let Some(s) = served.and_then(|s| Digest::parse(&s).ok()) {
        if s != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {object} (Docker-Content-Digest)"),
                expected: s.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    let media_type = if header_type.is_empty()
        || header_type == "application/json"
        || header_type == "text/plain"
    {
        serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_string())
    } else {
        header_type
    };
    Ok(Document {
        data,
        media_type,
        digest,
    })
}

fn platform_of(p: &PlatformDesc) -> Platform {
    Platform::new(&p.os, &p.architecture, p.variant.as_deref())
}

fn show(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// Picks the manifest for `want` from an index: same OS and architecture,
/// the same variant if one is wanted (else the first of that pair).
pub fn select_platform(index: &Index, want: &Platform) -> Result<Descriptor, RegistryError> {
    let candidates: Vec<(&Descriptor, Platform)> = index
        .manifests
        .iter()
        .filter_map(|m| m.platform.as_ref().map(|p| (m, platform_of(p))))
        .collect();
    let same_pair = |p: &Platform| p.os == want.os && p.architecture == want.architecture;
    let pick = candidates
        .iter()
        .find(|(_, p)| same_pair(p) && p.variant == want.variant)
        .or_else(|| {
            candidates
                .iter()
                .find(|(_, p)| same_pair(p) && want.variant.is_none())
        });
    match pick {
        Some((d, _)) => Ok((*d).clone()),
        None => {
            let mut available: Vec<String> = candidates
                .iter()
                .filter(|(_, p)| p.os != "unknown")
                .map(|(_, p)| show(p))
                .collect();
            available.dedup();
            Err(RegistryError::NoPlatform {
                wanted: show(want),
                available: if available.is_empty() {
                    "no platforms listed".into()
                } else {
                    available.join(", ")
                },
            })
        }
    }
}

/// Turns an image manifest document into the OCI manifest to store: an
/// OCI manifest stays byte for byte; a Docker schema 2 manifest gets OCI
/// media types (same config and layers, so a new manifest digest).
pub fn to_oci(doc: &Document) -> Result<(Manifest, Vec<u8>), RegistryError> {
    let bad = |why: String| RegistryError::BadManifest(why);
    let schema1 = doc
        .media_type
        .starts_with("application/vnd.docker.distribution.manifest.v1");
    if schema1 {
        return Err(bad(format!(
            "{} (Docker schema 1) is not supported: push the image again with a current client",
            doc.media_type
        )));
    }
    let mut m: Manifest =
        serde_json::from_slice(&doc.data).map_err(|e| bad(format!("{}: {e}", doc.digest)))?;
    if m.schema_version != 2 {
        return Err(bad(format!(
            "schemaVersion {} is not supported",
            m.schema_version
        )));
    }
    for l in &m.layers {
        if !layer_type_supported(&l.media_type) {
            return Err(bad(format!(
                "layer {} has media type {} (foreign or non-distributable layers are not supported)",
                l.digest, l.media_type
            )));
        }
    }
    match doc.media_type.as_str() {
        MEDIA_TYPE_MANIFEST => Ok((m, doc.data.clone())),
        MEDIA_TYPE_DOCKER_MANIFEST => {
            m.media_type = Some(MEDIA_TYPE_MANIFEST.into());
            if m.config.media_type == MEDIA_TYPE_DOCKER_CONFIG {
                m.config.media_type = MEDIA_TYPE_CONFIG.into();
            }
            for l in &mut m.layers {
                l.media_type = match l.media_type.as_str() {
                    MEDIA_TYPE_DOCKER_GZIP => MEDIA_TYPE_TAR_GZIP.into(),
                    MEDIA_TYPE_DOCKER_TAR => MEDIA_TYPE_TAR.into(),
                    other => other.into(),
                };
            }
            let data = to_json(&m);
            Ok((m, data))
        }
        other => Err(bad(format!("unsupported manifest media type {other}"))),
    }
}

/// The directory of partial downloads in `store`.
pub fn partial_dir(store: &Store) -> PathBuf {
    store.root().join("partial")
}

/// Remembers that `digest` is in `name` (`registry/repository`) so a push
/// to the same registry can mount it instead of uploading.
pub fn record_source(store: &Store, digest: &Digest, name: &str) {
    let dir = store.root().join("sources");
    let path = dir.join(digest.hex());
    let known = std::fs::read_to_string(&path).unwrap_or_default();
    if known.lines().any(|l| l == name) {
        return;
    }
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
        let _ = writeln!(f, "{name}");
    }
}

/// The repositories `digest` is known to be in.
pub fn sources(store: &Store, digest: &Digest) -> Vec<String> {
    std::fs::read_to_string(store.root().join("sources").join(digest.hex()))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Hashes the first bytes of an interrupted download (to resume it).
fn hash_prefix(path: &Path) -> std::io::Result<(Hasher, u64)> {
    let mut h = Hasher::new();
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((h, 0)),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((h, n))
}

/// The bytes a download gathers before writing them and passing them on.
const BATCH: usize = 1 << 20;

/// Where downloaded bytes also go: the thread checking the layer while it
/// downloads. Streaming stops (`aborted`) when the transfer does not run
/// from the first byte to the last in one go (a resume); the layer is then
/// checked from the finished blob instead. Batches travel as owned
/// buffers, which the checker hands back for reuse (no copy, no fresh
/// pages per batch).
pub struct Tee {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    aborted: bool,
}

impl Tee {
    /// Passes `buf[..len]` on; returns the buffer to read the next batch
    /// into (`buf` itself when nothing is listening).
    fn send(&mut self, mut buf: Vec<u8>, len: usize) -> Vec<u8> {
        let Some(tx) = &self.tx else {
            return buf;
        };
        let next = self.free.try_recv().unwrap_or_else(|_| vec![0u8; BATCH]);
        buf.truncate(len);
        if tx.send(buf).is_err() {
            // The checker stopped (an unsafe entry): its error decides.
            self.tx = None;
        }
        next
    }

    fn abort(&mut self) {
        self.tx = None;
        self.aborted = true;
    }
}

/// The receiving end of a [`Tee`] as a buffered reader (EOF when the
/// sender is gone); spent buffers go back to the sender.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl std::io::BufRead for ChannelReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    let mut spent = std::mem::replace(&mut self.buf, b);
                    self.pos = 0;
                    if spent.capacity() >= BATCH {
                        spent.resize(BATCH, 0);
                        let _ = self.back.try_send(spent);
                    }
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        let avail = self.fill_buf()?;
        let n = out.len().min(avail.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Decompresses the layer stream `blob` and checks its entries as a strict
/// overlay-mode extraction would (`layer::check`), without writing
/// anything; the decompressor's own integrity check (gzip's CRC, zstd's
/// frame) runs to the end of the stream. The diff id is not hashed here:
/// the extraction at first use hashes it anyway and refuses a mismatch
/// (docs/design.md, "Pull does not unpack").
pub fn check_layer<R: std::io::BufRead>(blob: R, rec: &LayerRecord) -> Result<(), RegistryError> {
    let bad = |reason: String| RegistryError::BadLayer {
        digest: rec.digest.to_string(),
        reason,
    };
    let mut inner: Box<dyn Read + '_> = match rec.media_type.as_str() {
        // Straight from the buffered stream: no second buffer and copy.
        MEDIA_TYPE_TAR_GZIP | MEDIA_TYPE_DOCKER_GZIP => {
            Box::new(flate2::bufread::GzDecoder::new(blob))
        }
        _ => crate::layer::decompress(&rec.media_type, blob).map_err(|e| bad(e.to_string()))?,
    };
    crate::layer::check::check(&mut inner, true).map_err(|e| bad(e.to_string()))?;
    std::io::copy(&mut inner, &mut std::io::sink())
        .map_err(|e| bad(format!("malformed layer: {e}")))?;
    Ok(())
}

/// Downloads layer `l` (unless in the store) while checking it on a second
/// thread ([`check_layer`]: safe entries); returns the bytes
/// transferred. The layer is extracted into the store at its first use,
/// not here (docs/design.md, "Pull does not unpack").
fn fetch_layer(
    client: &Client,
    store: &Store,
    repo: &str,
    l: &Descriptor,
    rec: &LayerRecord,
    progress: &Transfers,
) -> Result<u64, RegistryError> {
    if store.layout().has_blob(&l.digest) {
        // Already here (pulled, built or loaded): its content is checked
        // by the extraction that uses it, as for every stored layer.
        return fetch_blob(client, store, repo, l, progress, None);
    }
    if store.layer_dir(&rec.diff_id).is_dir() {
        // Its content is already unpacked (and was checked then): the
        // blob's digest is all that is left to verify.
        return fetch_blob(client, store, repo, l, progress, None);
    }
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (back, free) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let checker = s.spawn(move || {
            let reader = ChannelReader {
                rx,
                back,
                buf: Vec::new(),
                pos: 0,
            };
            check_layer(reader, rec)
        });
        let mut tee = Tee {
            tx: Some(tx),
            free,
            aborted: false,
        };
        let got = fetch_blob(client, store, repo, l, progress, Some(&mut tee));
        tee.tx = None;
        let checked = checker.join().map_err(|_| RegistryError::BadLayer {
            digest: l.digest.to_string(),
            reason: "the checking thread panicked".into(),
        })?;
        let n = got?;
        if tee.aborted {
            // Resumed: the stream seen was not the whole blob; check the
            // finished blob instead.
            let blob = store.layout().open_blob(&l.digest)?;
            check_layer(std::io::BufReader::with_capacity(256 << 10, blob), rec)?;
        } else {
            checked?;
        }
        Ok(n)
    })
}

/// Downloads blob `desc` of `repo` into the store unless it is there.
/// Returns the bytes transferred (0: it was already in the store).
pub fn fetch_blob(
    client: &Client,
    store: &Store,
    repo: &str,
    desc: &Descriptor,
    progress: &Transfers,
    tee: Option<&mut Tee>,
) -> Result<u64, RegistryError> {
    let label = desc.digest.to_string();
    let short = &label[..label.len().min(19)];
    if store.layout().has_blob(&desc.digest) {
        progress.skip(short, desc.size, "exists");
        tracing::debug!(digest = %desc.digest, "blob already in the store");
        return Ok(0);
    }
    let dir = partial_dir(store);
    std::fs::create_dir_all(&dir).map_err(|e| RegistryError::io(dir.display(), e))?;
    let partial = dir.join(desc.digest.hex());
    let slot = progress.start(short, desc.size);
    let what = format!("blob {}", desc.digest);
    let r = download(client, repo, desc, &partial, progress, slot, &what, tee);
    let r = r.and_then(|n| {
        let dest = store.layout().blob_path(&desc.digest);
        std::fs::rename(&partial, &dest).map_err(|e| RegistryError::io(dest.display(), e))?;
        record_source(
            store,
            &desc.digest,
            &format!("{}/{repo}", client.registry()),
        );
        Ok(n)
    });
    match &r {
        Ok(_) => progress.finish(slot, "done"),
        Err(e) => {
            progress.finish(slot, "failed");
            // Wrong content is never resumed from; a broken transfer is.
            if matches!(
                e,
                RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. }
            ) {
                let _ = std::fs::remove_file(&partial);
            }
        }
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn download(
    client: &Client,
    repo: &str,
    desc: &Descriptor,
    partial: &Path,
    progress: &Transfers,
    slot: usize,
    what: &str,
    mut tee: Option<&mut Tee>,
) -> Result<u64, RegistryError> {
    let io = |e: std::io::Error| RegistryError::io(partial.display(), e);
    let path = format!("/v2/{repo}/blobs/{}", desc.digest);
    let mut transferred = 0u64;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (mut hasher, mut have) = hash_prefix(partial).map_err(io)?;
        if have > desc.size {
            std::fs::remove_file(partial).map_err(io)?;
            (hasher, have) = (Hasher::new(), 0);
        }
        progress.set(slot, have);
        if have > 0 || attempts > 1 {
            if let Some(t) = tee.as_deref_mut() {
                t.abort();
            }
        }
        let mut broken: Option<String> = None;
        if have < desc.size {
            let range = format!("bytes={have}-");
            let headers: Vec<(&str, &str)> = if have > 0 {
                tracing::debug!(digest = %desc.digest, offset = have, "resuming download");
                vec![("Range", range.as_str())]
            } else {
                Vec::new()
            };
            let resp = match client.request("GET", &path, &pull_scope(repo), &headers, Body::Empty)
            {
                Ok(r) => r,
                Err(RegistryError::Http {
                    code: 404, message, ..
                }) => return Err(RegistryError::NotFound(format!("{what} ({message})"))),
                Err(RegistryError::Transport { message, .. }) if attempts < 4 => {
                    tracing::debug!(%message, "retrying blob request");
                    std::thread::sleep(std::time::Duration::from_millis(200 * attempts));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(partial)
                .map_err(io)?;
            if have > 0 && resp.status() == 206 {
                tracing::debug!(digest = %desc.digest, offset = have, "server resumed (206)");
            } else if have > 0 {
                // The server sent the whole blob: start over.
                file.set_len(0).map_err(io)?;
                (hasher, have) = (Hasher::new(), 0);
                progress.set(slot, 0);
            }
            if let Some(len) = resp
                .header("content-length")
                .and_then(|l| l.parse::<u64>().ok())
            {
                if have + len != desc.size {
                    return Err(RegistryError::SizeMismatch {
                        what: format!("{what} (Content-Length)"),
                        expected: desc.size,
                        actual: have + len,
                    });
                }
            }
            let mut reader = resp.into_reader();
            // Socket reads come in small pieces: they are gathered into
            // batches before being hashed, written and handed to the
            // checker (one wake-up of its thread per batch, not per read).
            let mut buf = vec![0u8; BATCH];
            let mut fill = 0;
            loop {
                let r = reader.read(&mut buf[fill..]);
                let done = match r {
                    Ok(0) => true,
                    Ok(n) => {
                        have += n as u64;
                        transferred += n as u64;
                        if have > desc.size {
                            return Err(RegistryError::SizeMismatch {
                                what: what.to_string(),
                                expected: desc.size,
                                actual: have,
                            });
                        }
                        fill += n;
                        progress.add(slot, n as u64);
                        false
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
                    Err(e) => {
                        broken = Some(e.to_string());
                        true
                    }
                };
                if fill > 0 && (done || fill == buf.len()) {
                    hasher.update(&buf[..fill]);
                    file.write_all(&buf[..fill]).map_err(io)?;
                    if let Some(t) = tee.as_deref_mut() {
                        buf = t.send(buf, fill);
                    }
                    fill = 0;
                }
                if done {
                    break;
                }
            }
            // No fsync, as for the builder's own blobs (docs/design.md):
            // unpack re-verifies digests and a registry checks pushed ones.
            file.flush().map_err(io)?;
        }
        if have < desc.size {
            let why = broken.unwrap_or_else(|| "the connection closed early".into());
            if attempts < 4 {
                tracing::debug!(digest = %desc.digest, have, %why, "transfer interrupted; resuming");
                continue;
            }
            return Err(RegistryError::SizeMismatch {
                what: format!(
                    "{what} (truncated: {why}; the {have} bytes received are kept to resume)"
                ),
                expected: desc.size,
                actual: have,
            });
        }
        let got = hasher.finish();
        if got != desc.digest {
            return Err(RegistryError::DigestMismatch {
                what: what.to_string(),
                expected: desc.digest.to_string(),
                actual: got.to_string(),
            });
        }
        return Ok(transferred);
    }
}

/// Pulls `reference` into `store` (the caller holds the store's lock) and
/// tags it there with its full name (`registry/repository:tag`).
pub fn pull(
    store: &Store,
    reference: &Reference,
    reg: &RegistryOptions,
    opts: &PullOptions,
) -> Result<Pulled, RegistryError> {
    let new_blobs = Mutex::new(Vec::new());
    let r = pull_inner(store, reference, reg, opts, &new_blobs);
    if r.is_err() {
        // Nothing of a rejected image stays: its new blobs go (older
        // content is untouched).
        for digest in new_blobs.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let _ = std::fs::remove_file(store.layout().blob_path(&digest));
            let _ = std::fs::remove_file(store.root().join("sources").join(digest.hex()));
        }
    }
    r.map_err(|e| e.in_image(reference))
}

type NewBlobs = Mutex<Vec<Digest>>;

fn pull_inner(
    store: &Store,
    reference: &Reference,
    reg: &RegistryOptions,
    opts: &PullOptions,
    new_blobs: &NewBlobs,
) -> Result<Pulled, RegistryError> {
    let client = Client::new(reference, reg)?;
    let repo = reference.repository.as_str();
    let top = fetch_manifest(&client, repo, &reference.object())?;
    let (doc, from_index) = match top.media_type.as_str() {
        MEDIA_TYPE_INDEX | MEDIA_TYPE_DOCKER_LIST => {
            let index: Index = serde_json::from_slice(&top.data)
                .map_err(|e| RegistryError::BadManifest(format!("index {}: {e}", top.digest)))?;
            let pick = select_platform(&index, &opts.platform)?;
            tracing::debug!(digest = %pick.digest, "manifest for the platform");
            let doc = fetch_manifest(&client, repo, &pick.digest.to_string())?;
            if matches!(
                doc.media_type.as_str(),
                MEDIA_TYPE_INDEX | MEDIA_TYPE_DOCKER_LIST
            ) {
                return Err(RegistryError::BadManifest(format!(
                    "index {} names another index for the platform",
                    top.digest
                )));
            }
            (doc, true)
        }
        _ => (top.clone(), false),
    };
    let (manifest, data) = to_oci(&doc)?;
    let progress = Transfers::new(opts.progress, "Copying");
    let mut fetched = 0;
    let mut bytes = 0;
    let n = fetch_blob(&client, store, repo, &manifest.config, &progress, None)?;
    if n > 0 {
        fetched += 1;
        bytes += n;
        new_blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(manifest.config.digest.clone());
    }
    let config_data = store.layout().read_blob(&manifest.config.digest)?;
    let config: ImageConfig = serde_json::from_slice(&config_data).map_err(|e| {
        RegistryError::BadManifest(format!("config {}: {e}", manifest.config.digest))
    })?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::BadManifest(format!(
            "config {} lists {} diff_ids but the manifest has {} layers",
            manifest.config.digest,
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let got = Platform::new(&config.os, &config.architecture, config.variant.as_deref());
    let want = &opts.platform;
    if !from_index && (got.os != want.os || got.architecture != want.architecture) {
        return Err(RegistryError::NoPlatform {
            wanted: show(want),
            available: show(&got),
        });
    }
    let next = Mutex::new(0usize);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let total_bytes = std::sync::atomic::AtomicU64::new(0);
    let total_fetched = std::sync::atomic::AtomicUsize::new(0);
    let jobs = opts.jobs.clamp(1, manifest.layers.len().max(1));
    let worker = || loop {
        if failed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let i = {
            let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
            let i = *n;
            *n += 1;
            i
        };
        let (Some(l), Some(diff_id)) = (manifest.layers.get(i), config.rootfs.diff_ids.get(i))
        else {
            return;
        };
        let rec = LayerRecord {
            digest: l.digest.clone(),
            diff_id: diff_id.clone(),
            size: l.size,
            media_type: l.media_type.clone(),
        };
        let had_blob = store.layout().has_blob(&l.digest);
        let r = fetch_layer(&client, store, repo, l, &rec, &progress).map(|n| {
            if n > 0 {
                total_bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                total_fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        // Whatever this pull added goes again if the pull fails.
        if !had_blob && store.layout().has_blob(&l.digest) {
            new_blobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(l.digest.clone());
        }
        if let Err(e) = r {
            failed.store(true, std::sync::atomic::Ordering::Relaxed);
            let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e);
            }
            return;
        }
    };
    let manifest_digest = Digest::of(&data);
    let had_manifest = store.layout().has_blob(&manifest_digest);
    let manifest_written: Mutex<Option<Result<Digest, RegistryError>>> = Mutex::new(None);
    progress.run(|| {
        std::thread::scope(|s| {
            // The manifest blob (and its fsync) while the layers download;
            // it is tagged only after them.
            s.spawn(|| {
                let r = store
                    .layout()
                    .write_blob(&data)
                    .map_err(RegistryError::from);
                *manifest_written.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
            for _ in 0..jobs {
                s.spawn(worker);
            }
        })
    });
    if !had_manifest && store.layout().has_blob(&manifest_digest) {
        new_blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(manifest_digest.clone());
    }
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let digest = match manifest_written
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        Some(r) => r?,
        None => store.layout().write_blob(&data)?,
    };
    fetched += total_fetched.into_inner();
    bytes += total_bytes.into_inner();
    let source = reference.name();
    let source = source
        .strip_prefix(&format!("{}/", reference.registry))
        .map(|r| format!("{}/{r}", client.registry()))
        .unwrap_or(source);
    record_source(store, &manifest.config.digest, &source);
    for l in &manifest.layers {
        record_source(store, &l.digest, &source);
    }
    let mut descriptor = Descriptor::new(MEDIA_TYPE_MANIFEST, digest, data.len() as u64);
    descriptor.platform = Some(PlatformDesc {
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        variant: config.variant.clone(),
    });
    let name = reference.to_string();
    store.tag(&name, &descriptor)?;
    Ok(Pulled {
        name,
        descriptor,
        remote_digest: top.digest,
        config,
        fetched,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        let mut d = Descriptor::new(MEDIA_TYPE_MANIFEST, Digest::of(&[n]), 1);
        d.platform = Some(PlatformDesc {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
        });
        d
    }

    #[test]
    fn platform_selection() {
        let index = Index {
            manifests: vec![
                desc("linux", "arm", Some("v6"), 1),
                desc("linux", "arm", Some("v7"), 2),
                desc("linux", "arm64", Some("v8"), 3),
                desc("linux", "amd64", None, 4),
                desc("unknown", "unknown", None, 5),
            ],
            ..Index::default()
        };
        let pick = |p: &str| {
            select_platform(&index, &Platform::parse(p).expect("platform")).map(|d| d.digest)
        };
        assert_eq!(pick("linux/amd64").ok(), Some(Digest::of(&[4])));
        assert_eq!(pick("linux/arm64").ok(), Some(Digest::of(&[3])));
        assert_eq!(pick("linux/arm/v7").ok(), Some(Digest::of(&[2])));
        assert_eq!(pick("linux/arm/v6").ok(), Some(Digest::of(&[1])));
        let e = pick("linux/s390x").expect_err("none");
        let text = e.to_string();
        assert!(
            text.contains("linux/s390x") && text.contains("linux/amd64"),
            "{text}"
        );
        assert!(!text.contains("unknown"), "{text}");
    }

    #[test]
    fn docker_manifest_becomes_oci() {
        let cfg = Digest::of(b"c");
        let layer = Digest::of(b"l");
        let docker = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_DOCKER_MANIFEST,
            "config": {"mediaType": MEDIA_TYPE_DOCKER_CONFIG, "digest": cfg.to_string(), "size": 1},
            "layers": [{"mediaType": MEDIA_TYPE_DOCKER_GZIP, "digest": layer.to_string(), "size": 1}]
        });
        let data = serde_json::to_vec(&docker).expect("json");
        let doc = Document {
            digest: Digest::of(&data),
            data,
            media_type: MEDIA_TYPE_DOCKER_MANIFEST.into(),
        };
        let (m, bytes) = to_oci(&doc).expect("convert");
        assert_eq!(m.media_type.as_deref(), Some(MEDIA_TYPE_MANIFEST));
        assert_eq!(m.config.media_type, MEDIA_TYPE_CONFIG);
        assert_eq!(m.config.digest, cfg);
        assert_eq!(m.layers[0].media_type, MEDIA_TYPE_TAR_GZIP);
        assert_eq!(m.layers[0].digest, layer);
        let back: Manifest = serde_json::from_slice(&bytes).expect("parse");
        assert_eq!(back, m);
        // An OCI manifest is kept byte for byte.
        let oci = Document {
            media_type: MEDIA_TYPE_MANIFEST.into(),
            ..doc.clone()
        };
        let oci_data = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#.to_vec();
        let oci = Document {
            digest: Digest::of(&oci_data),
            data: oci_data.clone(),
            ..oci
        };
        assert_eq!(to_oci(&oci).expect("oci").1, oci_data);
        let foreign = Document {
            data: serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "config": {"mediaType": MEDIA_TYPE_DOCKER_CONFIG, "digest": cfg.to_string(), "size": 1},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": layer.to_string(), "size": 1}]
            }))
            .expect("json"),
            ..doc.clone()
        };
        assert!(to_oci(&foreign)
            .expect_err("foreign")
            .to_string()
            .contains("foreign"));
        let v1 = Document {
            media_type: "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
            ..doc
        };
        assert!(to_oci(&v1)
            .expect_err("schema1")
            .to_string()
            .contains("schema 1"));
    }

    #[test]
    fn pull_policy() {
        assert_eq!(PullPolicy::parse("always"), Ok(PullPolicy::Always));
        assert_eq!(PullPolicy::parse("never"), Ok(PullPolicy::Never));
        assert_eq!(PullPolicy::parse("missing"), Ok(PullPolicy::Missing));
        assert!(PullPolicy::parse("sometimes").is_err());
    }
}
