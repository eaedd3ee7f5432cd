//! Push: every blob the registry lacks (asked with HEAD first), mounted
//! from another repository of the same registry when the store knows one
//! that has it, else uploaded in one PUT or, above the chunk size, in
//! PATCH chunks; the manifest last, so the tag never names missing blobs.

use std::sync::Mutex;

use super::client::{Body, Client, RegistryOptions};
use super::progress::Transfers;
use super::pull::{record_source, sources};
use super::RegistryError;
use crate::digest::Digest;
use crate::oci::types::{Descriptor, MEDIA_TYPE_MANIFEST};
use crate::oci::Reference;
use crate::progress::ProgressMode;
use crate::store::Store;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs larger than this are uploaded in chunks of this size (0:
    /// always in one request).
    pub chunk_size: u64,
    /// Blobs uploaded at the same time.
    pub jobs: usize,
    /// Progress display.
    pub progress: ProgressMode,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            chunk_size: 32 << 20,
            jobs: 3,
            progress: ProgressMode::Quiet,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// The manifest digest in the registry.
    pub digest: Option<Digest>,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub existing: usize,
}

fn push_scope(repo: &str, from: &[String]) -> Vec<String> {
    let mut v = vec![format!("repository:{repo}:pull,push")];
    for f in from {
        v.push(format!("repository:{f}:pull"));
    }
    v
}

/// Resolves a `Location` header against the registry's base URL.
fn location(client: &Client, resp: &ureq::Response, what: &str) -> Result<String, RegistryError> {
    let loc = resp.header("location").ok_or_else(|| RegistryError::Http {
        url: what.to_string(),
        code: resp.status(),
        message: "the registry gave no upload Location".into(),
    })?;
    Ok(
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else {
            format!(
                "{}{}{loc}",
                client.base(),
                if loc.starts_with('/') { "" } else { "/" }
            )
        },
    )
}

fn with_query(url: &str, kv: &str) -> String {
    if url.contains('?') {
        format!("{url}&{kv}")
    } else {
        format!("{url}?{kv}")
    }
}

enum Outcome {
    Exists,
    Mounted,
    Uploaded,
}

fn push_blob(
    client: &Client,
    store: &Store,
    repo: &str,
    desc: &Descriptor,
    opts: &PushOptions,
    progress: &Transfers,
) -> Result<Outcome, RegistryError> {
    let short: String = desc.digest.to_string().chars().take(19).collect();
    let scope = push_scope(repo, &[]);
    let blob_path = format!("/v2/{repo}/blobs/{}", desc.digest);
    match client.request("HEAD", &blob_path, &scope, &[], Body::Empty) {
        Ok(_) => {
            progress.skip(&short, desc.size, "exists");
            return Ok(Outcome::Exists);
        }
        Err(RegistryError::Http { code: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    let file = store.layout().blob_path(&desc.digest);
    if !file.is_file() {
        return Err(RegistryError::Oci(crate::oci::OciError::MissingBlob(
            desc.digest.clone(),
            store.root().to_path_buf(),
        )));
    }
    // Cross-repository mount: a repository of this registry known to
    // hold the blob.
    let prefix = format!("{}/", client.registry());
    let from: Vec<String> = sources(store, &desc.digest)
        .into_iter()
        .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
        .filter(|r| r != repo)
        .collect();
    let uploads = format!("/v2/{repo}/blobs/uploads/");
    let mut start = None;
    if let Some(f) = from.first() {
        let url = format!("{uploads}?mount={}&from={f}", desc.digest);
        let resp = client.request(
            "POST",
            &url,
            &push_scope(repo, std::slice::from_ref(f)),
            &[],
            Body::Empty,
        )?;
        if resp.status() == 201 {
            tracing::debug!(digest = %desc.digest, from = %f, "mounted");
            progress.skip(&short, desc.size, "mounted");
            return Ok(Outcome::Mounted);
        }
        // 202: the registry opened an upload instead.
        start = Some(location(client, &resp, &url)?);
    }
    let mut loc = match start {
        Some(l) => l,
        None => {
            let resp = client.request("POST", &uploads, &scope, &[], Body::Empty)?;
            location(client, &resp, &uploads)?
        }
    };
    let slot = progress.start(&short, desc.size);
    let octet = [("Content-Type", "application/octet-stream")];
    let result = (|| -> Result<(), RegistryError> {
        if opts.chunk_size == 0 || desc.size <= opts.chunk_size {
            let url = with_query(&loc, &format!("digest={}", desc.digest));
            client.request(
                "PUT",
                &url,
                &scope,
                &octet,
                Body::File {
                    path: &file,
                    offset: 0,
                    len: desc.size,
                },
            )?;
            progress.add(slot, desc.size);
            return Ok(());
        }
        let mut offset = 0;
        while offset < desc.size {
            let len = opts.chunk_size.min(desc.size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let resp = client.request(
                "PATCH",
                &loc,
                &scope,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", range.as_str()),
                ],
                Body::File {
                    path: &file,
                    offset,
                    len,
                },
            )?;
            loc = location(client, &resp, &loc)?;
            offset += len;
            progress.add(slot, len);
        }
        let url = with_query(&loc, &format!("digest={}", desc.digest));
        client.request("PUT", &url, &scope, &octet, Body::Empty)?;
        Ok(())
    })();
    match &result {
        Ok(()) => progress.finish(slot, "done"),
        Err(_) => progress.finish(slot, "failed"),
    }
    result?;
    Ok(Outcome::Uploaded)
}

/// Pushes the stored image `manifest` (an OCI manifest descriptor in the
/// store) to `dest`.
pub fn push(
    store: &Store,
    manifest: &Descriptor,
    dest: &Reference,
    reg: &RegistryOptions,
    opts: &PushOptions,
) -> Result<Pushed, RegistryError> {
    push_inner(store, manifest, dest, reg, opts).map_err(|e| e.in_image(dest))
}

fn push_inner(
    store: &Store,
    manifest: &Descriptor,
    dest: &Reference,
    reg: &RegistryOptions,
    opts: &PushOptions,
) -> Result<Pushed, RegistryError> {
    let client = Client::new(dest, reg)?;
    let repo = dest.repository.as_str();
    let data = store.layout().read_blob(&manifest.digest)?;
    let m = store.layout().manifest(&manifest.digest)?;
    let mut blobs: Vec<Descriptor> = m.layers.clone();
    blobs.push(m.config.clone());
    let progress = Transfers::new(opts.progress, "Pushing");
    let next = Mutex::new(0usize);
    let outcome = Mutex::new(Pushed::default());
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    let worker = || loop {
        if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
            return;
        }
        let i = {
            let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
            let i = *n;
            *n += 1;
            i
        };
        let Some(d) = blobs.get(i) else { return };
        match push_blob(&client, store, repo, d, opts, &progress) {
            Ok(o) => {
                record_source(store, &d.digest, &format!("{}/{repo}", client.registry()));
                let mut p = outcome.lock().unwrap_or_else(|p| p.into_inner());
                match o {
                    Outcome::Exists => p.existing += 1,
                    Outcome::Mounted => p.mounted += 1,
                    Outcome::Uploaded => p.uploaded += 1,
                }
            }
            Err(e) => {
                let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() {
                    *slot = Some(e.in_image(&format!("blob {}", d.digest)));
                }
                return;
            }
        }
    };
    let jobs = opts.jobs.clamp(1, blobs.len().max(1));
    progress.run(|| {
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(worker);
            }
        })
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let media_type = m
        .media_type
        .clone()
        .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_string());
    let path = format!("/v2/{repo}/manifests/{}", dest.object());
    let resp = client.request(
        "PUT",
        &path,
        &push_scope(repo, &[]),
        &[("Content-Type", media_type.as_str())],
        Body::Bytes(&data),
    )?;
    let digest = Digest::of(&data);
    if let Some(s) = resp
        .header("docker-content-digest")
        .and_then(|s| Digest::parse(s).ok())
    {
        if s != digest {
            return Err(RegistryError::DigestMismatch {
                what: "pushed manifest (Docker-Content-Digest)".into(),
                expected: digest.to_string(),
                actual: s.to_string(),
            });
        }
    }
    let mut out = outcome.into_inner().unwrap_or_else(|p| p.into_inner());
    out.digest = Some(digest);
    Ok(out)
}
