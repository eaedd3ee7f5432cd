//! Image commands on the store: `tag`, `inspect`, the `images` summary,
//! `save` (OCI or Docker archive), `load`, and bundles whose rootfs is an
//! overlay over the store's unpacked layers (`unpack --overlay`, removed
//! with [`remove_bundle`]).

use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::exec::Overlay;
use crate::layer::tarfmt::{EntryKind, TarHeader, TarWriter};
use crate::oci::layout::{ref_annotations, tmp_sibling, write_atomic};
use crate::oci::types::{to_json, Descriptor};
use crate::oci::{self, Layout, ResolvedImage};
use crate::store::{LayerRecord, Store, StoreError, StoredImage};

/// Names the stored image `src` also `dest` (`name[:tag]`); returns the
/// name as stored.
pub fn tag(store: &Store, src: &str, dest: &str) -> Result<String, StoreError> {
    let img = store.find(src)?;
    let name = oci::normalize_tag(dest).map_err(StoreError::Invalid)?;
    store.tag(&name, &img.manifest)?;
    Ok(name)
}

/// The manifest and configuration of a stored image.
pub fn resolve(store: &Store, img: &StoredImage) -> Result<ResolvedImage, StoreError> {
    Ok(store.layout().resolve_descriptor(img.manifest.clone(), 0)?)
}

/// What `images` shows for one image: size (config + layers) and the
/// creation time of its configuration.
pub fn summary(store: &Store, img: &StoredImage) -> (u64, Option<String>) {
    match resolve(store, img) {
        Ok(r) => (
            r.manifest.layers.iter().map(|l| l.size).sum::<u64>() + r.manifest.config.size,
            r.config.created.clone(),
        ),
        Err(_) => (0, None),
    }
}

/// `inspect NAME`: name, manifest digest, manifest and configuration.
pub fn inspect(store: &Store, name: &str) -> Result<serde_json::Value, StoreError> {
    let img = store.find(name)?;
    let r = resolve(store, &img)?;
    let config: serde_json::Value = serde_json::from_slice(&to_json(&r.config)).unwrap_or_default();
    let manifest: serde_json::Value =
        serde_json::from_slice(&to_json(&r.manifest)).unwrap_or_default();
    Ok(serde_json::json!({
        "Name": img.name,
        "Digest": img.manifest.digest.to_string(),
        "Id": r.manifest.config.digest.to_string(),
        "Manifest": manifest,
        "Config": config,
    }))
}

/// The archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI archive (tar of an image layout).
    Oci,
    /// A Docker archive (`docker save`'s `manifest.json` format).
    Docker,
}

impl ArchiveFormat {
    /// Parses `oci-archive` (or `oci`) and `docker-archive` (or `docker`).
    pub fn parse(s: &str) -> Result<ArchiveFormat, String> {
        match s {
            "oci-archive" | "oci" => Ok(ArchiveFormat::Oci),
            "docker-archive" | "docker" => Ok(ArchiveFormat::Docker),
            other => Err(format!(
                "unsupported --format {other:?}: use oci-archive or docker-archive"
            )),
        }
    }
}

/// Writes the stored images `names` into the archive `file`.
pub fn save(
    store: &Store,
    names: &[String],
    file: &Path,
    format: ArchiveFormat,
) -> Result<(), StoreError> {
    let mut images = Vec::new();
    for n in names {
        let img = store.find(n)?;
        let r = resolve(store, &img)?;
        images.push((img, r));
    }
    match format {
        ArchiveFormat::Oci => {
            let mut manifests = Vec::new();
            let mut blobs = Vec::new();
            for (img, r) in &images {
                let mut d = r.descriptor.clone();
                d.annotations = Some(ref_annotations(&img.name));
                manifests.push(d);
                blobs.push(r.descriptor.digest.clone());
                blobs.push(r.manifest.config.digest.clone());
                blobs.extend(r.manifest.layers.iter().map(|l| l.digest.clone()));
            }
            oci::write_archive_multi(store.layout(), &manifests, &blobs, file, 0)?;
            Ok(())
        }
        ArchiveFormat::Docker => write_docker_archive(store.layout(), &images, file),
    }
}

fn header(path: &str, size: u64) -> TarHeader {
    TarHeader {
        path: path.to_string(),
        kind: EntryKind::File { size },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: Vec::new(),
    }
}

/// A Docker archive: `<config hex>.json`, `<layer hex>/layer.tar` (the
/// blobs as stored; docker and podman detect the compression) and
/// `manifest.json` with each image's `RepoTags`.
/// Writes a Docker archive of `images` (an empty name: no RepoTags).
pub(crate) fn write_docker_archive(
    layout: &Layout,
    images: &[(StoredImage, ResolvedImage)],
    file: &Path,
) -> Result<(), StoreError> {
    let io_err = |e| StoreError::io(file.display(), e);
    let tmp = tmp_sibling(file);
    let result = (|| -> Result<(), StoreError> {
        let f = fs::File::create(&tmp).map_err(io_err)?;
        let mut tw = TarWriter::new(std::io::BufWriter::new(f));
        let mut written = std::collections::HashSet::new();
        let mut entries: Vec<serde_json::Value> = Vec::new();
        for (img, r) in images {
            let mut add = |path: String, digest: &Digest| -> Result<(), StoreError> {
                if !written.insert(path.clone()) {
                    return Ok(());
                }
                let mut src = layout.open_blob(digest)?;
                let size = src.metadata().map_err(io_err)?.len();
                tw.append(&header(&path, size), &mut src).map_err(io_err)?;
                Ok(())
            };
            let config = format!("{}.json", r.manifest.config.digest.hex());
            add(config.clone(), &r.manifest.config.digest)?;
            let mut layers = Vec::new();
            for l in &r.manifest.layers {
                let p = format!("{}/layer.tar", l.digest.hex());
                add(p.clone(), &l.digest)?;
                layers.push(p);
            }
            let short = img
                .name
                .strip_prefix("docker.io/library/")
                .unwrap_or(&img.name);
            // One entry per image, with all its names (as `docker save`).
            if let Some(e) = entries.iter_mut().find(|e| e["Config"] == config.as_str()) {
                if let Some(t) = e["RepoTags"].as_array_mut().filter(|_| !short.is_empty()) {
                    t.push(short.into());
                }
                continue;
            }
            let tags: Vec<&str> = if short.is_empty() {
                vec![]
            } else {
                vec![short]
            };
            entries.push(serde_json::json!({
                "Config": config,
                "RepoTags": tags,
                "Layers": layers,
            }));
        }
        let manifest = serde_json::to_vec(&entries).unwrap_or_default();
        tw.append(
            &header("manifest.json", manifest.len() as u64),
            &mut &manifest[..],
        )
        .map_err(io_err)?;
        let w = tw.finish().map_err(io_err)?;
        let f = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        f.sync_all().map_err(io_err)?;
        fs::rename(&tmp, file).map_err(io_err)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Loads an OCI or Docker archive into the store (blobs verified) and
/// tags each named image; returns the names (`sha256:...` for an unnamed
/// one).
pub fn load(store: &Store, file: &Path) -> Result<Vec<String>, StoreError> {
    let scratch = store.scratch("load")?;
    let src = oci::open_archive(file, scratch.path())?;
    let index = src.index()?;
    if index.manifests.is_empty() {
        return Err(StoreError::Invalid(format!(
            "{}: the archive holds no image",
            file.display()
        )));
    }
    let mut names = Vec::new();
    for desc in index.manifests {
        let name = desc.ref_name().map(str::to_string);
        let r = src.resolve_descriptor(desc, 0)?;
        let mut digests = vec![r.manifest.config.digest.clone()];
        digests.extend(r.manifest.layers.iter().map(|l| l.digest.clone()));
        digests.push(r.descriptor.digest.clone());
        for d in &digests {
            if !store.layout().has_blob(d) {
                let mut f = src.open_blob(d)?;
                store.layout().import_blob(&mut f, d, None)?;
            }
        }
        let mut stored = Descriptor::new(
            &r.descriptor.media_type,
            r.descriptor.digest.clone(),
            r.descriptor.size,
        );
        stored.platform = Some(crate::oci::types::PlatformDesc {
            architecture: r.config.architecture.clone(),
            os: r.config.os.clone(),
            variant: r.config.variant.clone(),
        });
        let name = match name {
            Some(n) => oci::normalize_tag(&n).unwrap_or(n),
            None => r.descriptor.digest.to_string(),
        };
        store.tag(&name, &stored)?;
        names.push(name);
    }
    Ok(names)
}

fn bundle_record(store: &Store, dest: &Path) -> PathBuf {
    store
        .root()
        .join("bundles")
        .join(Digest::of(dest.to_string_lossy().as_bytes()).hex())
}

/// Makes a bundle at `dest` whose `rootfs` is an overlay of the image's
/// layers as unpacked in the store (nothing copied; writes go to
/// `dest/upper`). The layers are kept by `prune` until [`remove_bundle`].
pub fn unpack_overlay(store: &Store, image: &ResolvedImage, dest: &Path) -> Result<(), StoreError> {
    let records: Vec<LayerRecord> = image
        .manifest
        .layers
        .iter()
        .zip(image.config.rootfs.diff_ids.iter())
        .map(|(l, diff_id)| LayerRecord {
            digest: l.digest.clone(),
            diff_id: diff_id.clone(),
            size: l.size,
            media_type: l.media_type.clone(),
        })
        .collect();
    store.ensure_unpacked_all(&records)?;
    let mut lowers: Vec<String> = records
        .iter()
        .map(|r| r.diff_id.hex().to_string())
        .collect();
    lowers.reverse();
    lowers.push("empty".into());
    let (upper, work, rootfs) = (dest.join("upper"), dest.join("work"), dest.join("rootfs"));
    for d in [&upper, &work, &rootfs] {
        fs::create_dir_all(d).map_err(|e| StoreError::io(d.display(), e))?;
    }
    let dest_abs = fs::canonicalize(dest).map_err(|e| StoreError::io(dest.display(), e))?;
    let record = bundle_record(store, &dest_abs);
    if let Some(dir) = record.parent() {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir.display(), e))?;
    }
    let mut text = format!("{}\n", dest_abs.display());
    for l in &lowers {
        text.push_str(l);
        text.push('\n');
    }
    write_atomic(&record, text.as_bytes()).map_err(|e| StoreError::io(record.display(), e))?;
    match Overlay::mount(&store.layers_dir(), &lowers, Some((&upper, &work)), &rootfs) {
        Ok(ov) => {
            ov.keep();
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&record);
            Err(StoreError::Invalid(e.to_string()))
        }
    }
}

/// Removes a bundle made by `unpack` (unmounting an overlay rootfs first)
/// and its record in the store.
pub fn remove_bundle(store: &Store, dest: &Path) -> Result<(), StoreError> {
    if !dest.exists() {
        // Removed by hand: drop the record so `prune` frees its layers.
        let abs = std::env::current_dir()
            .map(|c| c.join(dest))
            .map_err(|e| StoreError::io("current directory", e))?;
        let record = bundle_record(store, &abs);
        if record.exists() {
            fs::remove_file(&record).map_err(|e| StoreError::io(record.display(), e))?;
            return Ok(());
        }
        return Err(StoreError::Invalid(format!(
            "{} does not exist and is not a recorded bundle",
            dest.display()
        )));
    }
    if !dest.join("config.json").is_file() {
        return Err(StoreError::Invalid(format!(
            "{} is not a bundle (no config.json)",
            dest.display()
        )));
    }
    let dest_abs = fs::canonicalize(dest).map_err(|e| StoreError::io(dest.display(), e))?;
    let mounted = crate::store::mounts_under(&dest_abs);
    for m in &mounted {
        nix::mount::umount2(m, nix::mount::MntFlags::empty()).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot unmount {}: {e} (is a container still using the bundle?)",
                m.display()
            ))
        })?;
    }
    fs::remove_dir_all(&dest_abs).map_err(|e| StoreError::io(dest_abs.display(), e))?;
    let record = bundle_record(store, &dest_abs);
    if record.exists() {
        fs::remove_file(&record).map_err(|e| StoreError::io(record.display(), e))?;
    }
    Ok(())
}
