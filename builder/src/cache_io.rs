//! `--cache-to type=local,dest=DIR` and `--cache-from type=local,src=DIR`:
//! the build cache's entries moved between stores (CI runners) as an OCI
//! layout in BuildKit's local-cache shape.
//!
//! The layout's `index.json` names (`latest`) an image index whose
//! manifests are the layer blobs (with `containerd.io/uncompressed`, the
//! diff id) and one `application/vnd.buildkit.cacheconfig.v0` config:
//! `layers` (blob + parent) and `records` (the step's cache key as
//! `digest`, its layer, and the previous step as its input), as BuildKit
//! writes them. BuildKit can read the file; its own keys differ from
//! berth's, so it finds no hits in it (nor berth in BuildKit's). Records
//! keep berth's extra fields (`berth.created`, `berth.empty`) that other
//! readers ignore.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::oci::layout::ref_annotations;
use crate::oci::types::{to_json, Descriptor, Index};
use crate::oci::{Layout, OciError};
use crate::store::{CacheEntry, LayerRecord, Store, StoreError};

/// Media type of BuildKit's cache configuration blob.
pub const MEDIA_TYPE_CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
/// Media type of the cache manifest (an image index).
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const UNCOMPRESSED: &str = "containerd.io/uncompressed";

/// Why exporting or importing the cache failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheIoError {
    /// A `--cache-to`/`--cache-from` value that cannot be used.
    #[error("invalid {flag} {spec:?}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Its value.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// The layout.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cache layout whose content does not make sense.
    #[error("cache {0}: {1}")]
    Bad(PathBuf, String),
}

/// Which steps `--cache-to` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// The target stage's steps (BuildKit's default).
    Min,
    /// Every stage's steps.
    Max,
}

/// A parsed `--cache-to type=local,dest=DIR[,mode=min|max]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    /// The layout directory.
    pub dest: PathBuf,
    /// What to export.
    pub mode: CacheMode,
}

fn fields<'s>(
    flag: &'static str,
    spec: &'s str,
) -> Result<BTreeMap<&'s str, &'s str>, CacheIoError> {
    let bad = |reason: String| CacheIoError::Flag {
        flag,
        spec: spec.to_string(),
        reason,
    };
    let mut m = BTreeMap::new();
    for part in spec.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?;
        m.insert(k, v);
    }
    match m.get("type").copied() {
        Some("local") => Ok(m),
        Some(t @ ("registry" | "inline" | "gha" | "s3" | "azblob")) => Err(bad(format!(
            "type={t} is not supported by berth-build yet (type=local is)"
        ))),
        Some(t) => Err(bad(format!("unknown type {t:?}: use type=local"))),
        None => Err(bad("needs type=local".into())),
    }
}

/// Parses `--cache-to`.
pub fn parse_cache_to(spec: &str) -> Result<CacheTo, CacheIoError> {
    let m = fields("--cache-to", spec)?;
    let bad = |reason: &str| CacheIoError::Flag {
        flag: "--cache-to",
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let mode = match m.get("mode").copied() {
        None | Some("min") => CacheMode::Min,
        Some("max") => CacheMode::Max,
        Some(_) => return Err(bad("mode= is min or max")),
    };
    for k in m.keys() {
        if !matches!(*k, "type" | "dest" | "mode") {
            return Err(bad(&format!(
                "option {k:?} is not supported (dest, mode are)"
            )));
        }
    }
    let dest = m.get("dest").ok_or_else(|| bad("needs dest=DIR"))?;
    Ok(CacheTo {
        dest: PathBuf::from(dest),
        mode,
    })
}

/// Parses `--cache-from type=local,src=DIR` into the directory.
pub fn parse_cache_from(spec: &str) -> Result<PathBuf, CacheIoError> {
    let m = fields("--cache-from", spec)?;
    for k in m.keys() {
        if !matches!(*k, "type" | "src") {
            return Err(CacheIoError::Flag {
                flag: "--cache-from",
                spec: spec.to_string(),
                reason: format!("option {k:?} is not supported (src is)"),
            });
        }
    }
    m.get("src")
        .map(PathBuf::from)
        .ok_or_else(|| CacheIoError::Flag {
            flag: "--cache-from",
            spec: spec.to_string(),
            reason: "needs src=DIR".into(),
        })
}

/// One step of the build as the cache saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedStep {
    /// Its cache key.
    pub key: Digest,
    /// The key of the step before it (its input); None for the first one
    /// after FROM.
    pub parent: Option<Digest>,
    /// What it produced.
    pub entry: CacheEntry,
    /// The stage it belongs to.
    pub stage: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct CfgLayer {
    blob: Digest,
    parent: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CfgRecordLayer {
    #[serde(rename = "layerIndex")]
    layer_index: usize,
    #[serde(rename = "createdAt")]
    created_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CfgLink {
    selector: String,
    link: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct CfgRecord {
    digest: Digest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    layers: Vec<CfgRecordLayer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<Vec<CfgLink>>,
    #[serde(rename = "berth.created", default)]
    created: String,
    #[serde(rename = "berth.empty", default)]
    empty: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheConfig {
    layers: Vec<CfgLayer>,
    records: Vec<CfgRecord>,
}

/// Writes the `steps` chosen by `to.mode` (`target`: the target stage)
/// into the layout `to.dest` (created or replaced under the name `latest`).
pub fn export(
    store: &Store,
    steps: &[UsedStep],
    target: usize,
    to: &CacheTo,
) -> Result<usize, CacheIoError> {
    let chosen: Vec<&UsedStep> = steps
        .iter()
        .filter(|s| to.mode == CacheMode::Max || s.stage == target)
        .collect();
    let dest = Layout::create(&to.dest)?;
    let mut layers: Vec<CfgLayer> = Vec::new();
    let mut layer_descs: Vec<Descriptor> = Vec::new();
    let mut layer_index: BTreeMap<Digest, usize> = BTreeMap::new();
    let mut records: Vec<CfgRecord> = Vec::new();
    let mut record_index: BTreeMap<Digest, usize> = BTreeMap::new();
    for s in &chosen {
        if record_index.contains_key(&s.key) {
            continue;
        }
        let mut rec_layers = Vec::new();
        if let Some(l) = &s.entry.layer {
            let idx = match layer_index.get(&l.digest) {
                Some(i) => *i,
                None => {
                    let mut f = store.layout().open_blob(&l.digest)?;
                    dest.import_blob(&mut f, &l.digest, Some(l.size))?;
                    let mut d = l.descriptor();
                    d.annotations = Some(BTreeMap::from([(
                        UNCOMPRESSED.to_string(),
                        l.diff_id.to_string(),
                    )]));
                    layer_descs.push(d);
                    layers.push(CfgLayer {
                        blob: l.digest.clone(),
                        parent: -1,
                    });
                    layer_index.insert(l.digest.clone(), layers.len() - 1);
                    layers.len() - 1
                }
            };
            rec_layers.push(CfgRecordLayer {
                layer_index: idx,
                created_at: s.entry.created.clone(),
            });
        }
        let inputs = match s.parent.as_ref().and_then(|p| record_index.get(p)) {
            Some(i) => vec![vec![CfgLink {
                selector: String::new(),
                link: *i,
            }]],
            None => Vec::new(),
        };
        records.push(CfgRecord {
            digest: s.key.clone(),
            layers: rec_layers,
            inputs,
            created: s.entry.created.clone(),
            empty: s.entry.layer.is_none(),
        });
        record_index.insert(s.key.clone(), records.len() - 1);
    }
    let config = to_json(&CacheConfig { layers, records });
    let config_digest = dest.write_blob(&config)?;
    let mut manifests = layer_descs;
    manifests.push(Descriptor::new(
        MEDIA_TYPE_CACHE_CONFIG,
        config_digest,
        config.len() as u64,
    ));
    let index = Index {
        media_type: Some(MEDIA_TYPE_INDEX.into()),
        manifests,
        ..Index::default()
    };
    let index_json = to_json(&index);
    let index_digest = dest.write_blob(&index_json)?;
    let mut desc = Descriptor::new(MEDIA_TYPE_INDEX, index_digest, index_json.len() as u64);
    desc.annotations = Some(ref_annotations("latest"));
    let mut top = dest.index()?;
    top.manifests.retain(|d| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name"))
            .map(String::as_str)
            != Some("latest")
    });
    top.manifests.push(desc);
    dest.write_index(&top)?;
    Ok(chosen.len())
}

/// Reads the cache layout `src` into the store: every record becomes a
/// cache entry (its layer blob verified and copied). Returns how many.
pub fn import(store: &Store, src: &Path) -> Result<usize, CacheIoError> {
    let bad = |why: String| CacheIoError::Bad(src.to_path_buf(), why);
    let layout = Layout::open(src)?;
    let top = layout.index()?;
    let desc = top
        .manifests
        .iter()
        .find(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .map(String::as_str)
                == Some("latest")
        })
        .or(top.manifests.first())
        .ok_or_else(|| bad("index.json lists no cache".into()))?;
    let index: Index = serde_json::from_slice(&layout.read_blob(&desc.digest)?)
        .map_err(|e| bad(format!("cache index: {e}")))?;
    let cfg_desc = index
        .manifests
        .iter()
        .find(|d| d.media_type == MEDIA_TYPE_CACHE_CONFIG)
        .ok_or_else(|| bad(format!("no {MEDIA_TYPE_CACHE_CONFIG} in the cache index")))?;
    let cfg: CacheConfig = serde_json::from_slice(&layout.read_blob(&cfg_desc.digest)?)
        .map_err(|e| bad(format!("cache config: {e}")))?;
    let mut n = 0;
    for r in &cfg.records {
        let layer = match r.layers.first() {
            None if r.empty => None,
            None => continue,
            Some(rl) => {
                let blob = &cfg
                    .layers
                    .get(rl.layer_index)
                    .ok_or_else(|| {
                        bad(format!(
                            "record {} names layer {}",
                            r.digest, rl.layer_index
                        ))
                    })?
                    .blob;
                let d = index
                    .manifests
                    .iter()
                    .find(|d| &d.digest == blob)
                    .ok_or_else(|| bad(format!("layer {blob} is not in the cache index")))?;
                let diff_id = d
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(UNCOMPRESSED))
                    .ok_or_else(|| bad(format!("layer {blob} has no {UNCOMPRESSED} annotation")))?;
                let diff_id =
                    Digest::parse(diff_id).map_err(|e| bad(format!("layer {blob}: {e}")))?;
                if !store.layout().has_blob(blob) {
                    let mut f = layout.open_blob(blob)?;
                    store.layout().import_blob(&mut f, blob, Some(d.size))?;
                }
                Some(LayerRecord {
                    digest: blob.clone(),
                    diff_id,
                    size: d.size,
                    media_type: d.media_type.clone(),
                })
            }
        };
        if store.cache_get(&r.digest).is_none() {
            store.cache_put(
                &r.digest,
                &CacheEntry {
                    layer,
                    created: r.created.clone(),
                },
            )?;
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(
            parse_cache_to("type=local,dest=/c,mode=max").expect("to"),
            CacheTo {
                dest: "/c".into(),
                mode: CacheMode::Max
            }
        );
        assert_eq!(
            parse_cache_to("type=local,dest=/c").expect("min").mode,
            CacheMode::Min
        );
        assert_eq!(
            parse_cache_from("type=local,src=/c").expect("from"),
            PathBuf::from("/c")
        );
        for (s, want) in [
            ("type=registry,ref=x", "not supported"),
            ("type=local", "dest="),
            ("dest=/c", "type=local"),
            ("type=local,dest=/c,mode=all", "mode="),
            ("type=local,dest=/c,compression=zstd", "compression"),
            ("type=nope,dest=/c", "unknown type"),
        ] {
            let e = parse_cache_to(s).expect_err(s).to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
        assert!(parse_cache_from("type=local,dest=/c").is_err());
    }
}
