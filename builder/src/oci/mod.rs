//! OCI images: layout directories and archives (read and write), the
//! image-spec JSON types, and image references (the builder's and Docker's
//! registry references, [`reference`]). Nothing here talks to a registry or
//! the store: [`crate::store`] sits on these types and [`crate::registry`]
//! above both.

pub mod archive;
pub mod docker;
pub mod layout;
pub mod reference;
pub mod types;

use std::fmt::Display;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::digest::Digest;

pub use archive::{open_archive, write_archive, write_archive_multi};
pub use layout::{Layout, ResolvedImage};
pub use reference::Reference;

/// Errors reading or writing OCI layouts.
#[derive(Debug, Error)]
pub enum OciError {
    /// A directory that is not an OCI image layout.
    #[error("{0} is not an OCI image layout: {1}")]
    NotALayout(PathBuf, String),
    /// A blob the index or a manifest names is missing.
    #[error("blob {0} is missing from {1}")]
    MissingBlob(Digest, PathBuf),
    /// Content does not match its digest.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The expected digest.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// A JSON document that does not parse.
    #[error("{0}: invalid JSON: {1}")]
    BadJson(String, String),
    /// No image with that name in the layout.
    #[error("no image {name:?} in {}{}", .layout.display(), available_list(.available))]
    NoSuchImage {
        /// The layout.
        layout: PathBuf,
        /// The name asked for (empty: none given and more than one image).
        name: String,
        /// Names that exist.
        available: Vec<String>,
    },
    /// An archive that cannot be unpacked.
    #[error("{0}: not a valid OCI archive: {1}")]
    BadArchive(PathBuf, String),
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// The path involved.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn available_list(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (it has: {})", names.join(", "))
    }
}

impl OciError {
    pub(crate) fn io(what: impl Display, source: std::io::Error) -> Self {
        OciError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// Where a base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI layout directory and an optional tag (`ref.name`).
    Layout(PathBuf, Option<String>),
    /// An OCI or Docker archive file and an optional tag.
    Archive(PathBuf, Option<String>),
    /// A name to look up among the images in the builder's store.
    Stored(String),
}

fn split_tag(rest: &str) -> (PathBuf, Option<String>) {
    match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') && !path.is_empty() => {
            (PathBuf::from(path), Some(tag.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    }
}

impl ImageSource {
    /// Interprets a FROM / `--from` image reference: `oci:DIR[:tag]`,
    /// `oci-archive:FILE[:tag]`, `docker-archive:FILE[:name]`, a path to a layout directory or archive
    /// (absolute or starting with `.`), or else a stored image name.
    /// Relative paths are taken relative to `base` (the build context).
    pub fn parse(reference: &str, base: &Path) -> ImageSource {
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        if let Some(rest) = reference.strip_prefix("oci:") {
            let (p, t) = split_tag(rest);
            return ImageSource::Layout(abs(p), t);
        }
        if let Some(rest) = reference.strip_prefix("oci-archive:") {
            let (p, t) = split_tag(rest);
            return ImageSource::Archive(abs(p), t);
        }
        if let Some(rest) = reference.strip_prefix("docker-archive:") {
            // The name may itself contain ':' (`localhost:5000/app:1`): the
            // path is the shortest prefix that is an existing file.
            for (i, _) in rest.match_indices(':') {
                let p = abs(PathBuf::from(&rest[..i]));
                if i > 0 && p.is_file() {
                    let name = &rest[i + 1..];
                    return ImageSource::Archive(p, (!name.is_empty()).then(|| name.to_string()));
                }
            }
            return ImageSource::Archive(abs(PathBuf::from(rest)), None);
        }
        if reference.starts_with('/') || reference.starts_with('.') {
            let p = abs(PathBuf::from(reference));
            if p.is_dir() {
                return ImageSource::Layout(p, None);
            }
            if p.is_file() {
                return ImageSource::Archive(p, None);
            }
            let (path, tag) = split_tag(reference);
            let path = abs(path);
            if path.is_file() {
                return ImageSource::Archive(path, tag);
            }
            return ImageSource::Layout(path, tag);
        }
        ImageSource::Stored(reference.to_string())
    }
}

/// Normalises an image name for tagging: adds `:latest` when no tag is
/// given. Returns an error message for names that cannot be references.
pub fn normalize_tag(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
        && !name.starts_with(['.', '-', '/', ':'])
        && name.chars().any(|c| c.is_ascii_alphanumeric());
    if !valid || name.chars().any(|c| c.is_ascii_uppercase()) && !name.contains(':') {
        return Err(format!(
            "invalid image name {name:?}: use lower-case letters, digits and . _ - / with an optional :tag"
        ));
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        Ok(name.to_string())
    } else {
        Ok(format!("{name}:latest"))
    }
}

/// Unpacks `image` (blobs in `layout`) into the root filesystem directory
/// `rootfs` (created if missing), verifying every layer's digest and diff
/// id, applying whiteouts, with the same containment rules as the builder.
pub fn unpack(layout: &Layout, image: &ResolvedImage, rootfs: &Path) -> Result<(), OciError> {
    use crate::digest::HashReader;
    std::fs::create_dir_all(rootfs).map_err(|e| OciError::io(rootfs.display(), e))?;
    for (desc, diff_id) in image
        .manifest
        .layers
        .iter()
        .zip(image.config.rootfs.diff_ids.iter())
    {
        let blob = layout.open_blob(&desc.digest)?;
        let mut outer = HashReader::new(std::io::BufReader::new(blob));
        let bad = |e: crate::layer::LayerError| {
            OciError::BadArchive(layout.root().join(desc.digest.hex()), e.to_string())
        };
        let got_diff = {
            let inner = crate::layer::decompress(&desc.media_type, &mut outer).map_err(bad)?;
            let mut hashed = HashReader::new(inner);
            crate::layer::extract(&mut hashed, rootfs, crate::layer::ExtractMode::Flat)
                .map_err(bad)?;
            hashed
                .drain()
                .map_err(|e| OciError::io(desc.digest.to_string(), e))?
                .0
        };
        let got = outer
            .drain()
            .map_err(|e| OciError::io(desc.digest.to_string(), e))?
            .0;
        if got != desc.digest || &got_diff != diff_id {
            return Err(OciError::DigestMismatch {
                what: format!("layer {}", desc.digest),
                expected: format!("{} / diff_id {diff_id}", desc.digest),
                actual: format!("{got} / diff_id {got_diff}"),
            });
        }
    }
    Ok(())
}

/// A runtime config.json (the runtime's default spec) running the image's
/// entrypoint and command with its environment, working directory and
/// (numeric) user.
pub fn bundle_config(config: &types::ImageConfig) -> serde_json::Value {
    let mut spec = berth::spec::default_spec(false);
    let c = &config.config;
    let mut args: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        args.push("sh".into());
    }
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["process"]["args"] = serde_json::json!(args);
    if !c.env.is_empty() {
        spec["process"]["env"] = serde_json::json!(c.env);
    }
    if !c.working_dir.is_empty() {
        spec["process"]["cwd"] = serde_json::json!(c.working_dir);
    }
    let (u, g) = c.user.split_once(':').unwrap_or((c.user.as_str(), ""));
    if let Ok(uid) = u.parse::<u32>() {
        spec["process"]["user"]["uid"] = serde_json::json!(uid);
        spec["process"]["user"]["gid"] = serde_json::json!(g.parse::<u32>().unwrap_or(0));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sources() {
        let base = Path::new("/ctx");
        assert_eq!(
            ImageSource::parse("oci:/img/busybox:1.36", base),
            ImageSource::Layout("/img/busybox".into(), Some("1.36".into()))
        );
        assert_eq!(
            ImageSource::parse("oci:layout", base),
            ImageSource::Layout("/ctx/layout".into(), None)
        );
        assert_eq!(
            ImageSource::parse("oci-archive:img.tar", base),
            ImageSource::Archive("/ctx/img.tar".into(), None)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("img.tar");
        std::fs::write(&file, b"").expect("write");
        assert_eq!(
            ImageSource::parse(
                &format!("docker-archive:{}:localhost:5000/app:1", file.display()),
                base
            ),
            ImageSource::Archive(file.clone(), Some("localhost:5000/app:1".into()))
        );
        assert_eq!(
            ImageSource::parse(&format!("docker-archive:{}", file.display()), base),
            ImageSource::Archive(file, None)
        );
        assert_eq!(
            ImageSource::parse("busybox", base),
            ImageSource::Stored("busybox".into())
        );
        assert_eq!(
            ImageSource::parse("/nonexistent/x:tag", base),
            ImageSource::Layout("/nonexistent/x".into(), Some("tag".into()))
        );
    }

    #[test]
    fn tags() {
        assert_eq!(normalize_tag("app").as_deref(), Ok("app:latest"));
        assert_eq!(
            normalize_tag("localhost:5000/app").as_deref(),
            Ok("localhost:5000/app:latest")
        );
        assert_eq!(normalize_tag("app:v1").as_deref(), Ok("app:v1"));
        assert!(normalize_tag("").is_err());
        assert!(normalize_tag("Bad Name").is_err());
    }
}
