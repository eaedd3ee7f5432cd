//! A client of the OCI distribution API (pull and push) of our own, on
//! ureq (docs/design.md, "Registry client", says why not `oci-client`):
//!
//! - [`auth`]: auth files, `login`/`logout`, basic and bearer challenges;
//! - [`credentials`]: a user name and password (or identity token);
//! - [`helper`]: docker credential helpers (`credHelpers`, `credsStore`);
//! - [`client`]: one registry: scheme, TLS with certs.d CAs, requests;
//! - [`pull`]: manifests (index and Docker list resolution, Docker schema 2
//!   stored as OCI) and blobs (verified while streaming, resumable,
//!   concurrent, never fetched twice);
//! - [`push`]: only missing blobs, cross-repository mounts, monolithic and
//!   chunked uploads, the manifest last;
//! - [`progress`]: the per-blob progress display.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod helper;
pub mod progress;
pub mod pull;
pub mod push;

use std::fmt::Display;

use thiserror::Error;

/// References are OCI types ([`crate::oci::reference`]); re-exported for the
/// client's callers.
pub use crate::oci::Reference;
pub use client::{Client, RegistryOptions};
pub use pull::{pull, PullOptions, PullPolicy, Pulled};
pub use push::{push, PushOptions, Pushed};

/// Errors talking to a registry.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The error, with the image reference it happened for.
    #[error("{reference}: {cause}")]
    InImage {
        /// The image reference.
        reference: String,
        /// What went wrong.
        cause: Box<RegistryError>,
    },
    /// A bad reference, auth file, CA file or option.
    #[error("{0}")]
    Config(String),
    /// The registry could not be reached or the connection broke.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// The error.
        message: String,
    },
    /// The registry answered with an error status.
    #[error("{url}: HTTP {code}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// The status.
        code: u16,
        /// The registry's message.
        message: String,
    },
    /// Authentication failed or is missing.
    #[error("unauthorized at {registry}: {detail}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// Why.
        detail: String,
    },
    /// No such tag, digest or repository.
    #[error("{0} not found in the registry")]
    NotFound(String),
    /// Content that does not match its digest.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest asked for.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// A blob of the wrong size (truncated or too long).
    #[error("{what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was checked.
        what: String,
        /// The size in the descriptor.
        expected: u64,
        /// What arrived.
        actual: u64,
    },
    /// An index or list without a manifest for the wanted platform.
    #[error("no manifest for platform {wanted} (the image has: {available})")]
    NoPlatform {
        /// The platform asked for.
        wanted: String,
        /// The platforms available.
        available: String,
    },
    /// A manifest that does not parse or is not supported.
    #[error("bad manifest: {0}")]
    BadManifest(String),
    /// A layer rejected while unpacking (unsafe entries, wrong diff id).
    #[error("layer {digest} rejected: {reason}")]
    BadLayer {
        /// The layer's digest.
        digest: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A layout operation failed.
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    /// Local I/O.
    #[error("{what}: {source}")]
    Io {
        /// The path or action.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    pub(crate) fn io(what: impl Display, source: std::io::Error) -> Self {
        RegistryError::Io {
            what: what.to_string(),
            source,
        }
    }

    /// Wraps the error with the image reference it concerns (once).
    pub fn in_image(self, reference: &impl Display) -> Self {
        match self {
            e @ RegistryError::InImage { .. } => e,
            e => RegistryError::InImage {
                reference: reference.to_string(),
                cause: Box::new(e),
            },
        }
    }
}

/// The repository scopes for a pull of `repo`.
pub(crate) fn pull_scope(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull")]
}
