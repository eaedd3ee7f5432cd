//! berth-build: turns a Dockerfile into an OCI image layout.
//!
//! - [`dockerfile`]: Dockerfile text to typed instructions, and variable
//!   expansion with BuildKit's rules;
//! - [`plan`]: build stages, ARG scoping, the stage dependency graph and the
//!   order to build them in;
//! - [`context`]: `.dockerignore` parsing and matching;
//! - [`layer`]: deterministic layer tars (gzip, zstd or uncompressed) from
//!   overlay upper directories and safe extraction;
//! - [`oci`]: image layouts, OCI and Docker archives, the image-spec
//!   JSON types and image references;
//! - [`store`]: the local content store and build cache, on [`oci`];
//! - [`registry`]: the registry client (pull into and push from the
//!   store), above [`store`];
//! - [`user`]: `USER` names to ids from an image's passwd and group files;
//! - [`cache_io`]: `--cache-to` / `--cache-from` type=local (BuildKit's layout);
//! - [`exec`]: RUN (through the berth runtime library on an overlay
//!   snapshot), COPY/ADD (with `--parents` and http(s) URLs) and WORKDIR;
//! - [`progress`]: plain and tty step progress on stderr;
//! - [`secret`]: build secrets (`--secret`, `RUN --mount=type=secret`);
//! - [`ssh`]: ssh agent forwarding (`--ssh`, `RUN --mount=type=ssh`);
//! - [`images`]: tag, inspect, save, load and overlay bundles;
//! - [`output`]: `--output` exporters, `--annotation`, `--label`, metadata;
//! - [`attest`]: `--provenance` (SLSA provenance attestations in an index);
//! - [`build`]: the build driver tying it together.

pub mod attest;
pub mod build;
pub mod cache_io;
pub mod context;
pub mod digest;
pub mod dockerfile;
pub mod exec;
mod fsutil;
mod glob;
pub mod images;
pub mod layer;
pub mod oci;
pub mod output;
pub mod plan;
pub mod progress;
pub mod registry;
#[cfg(test)]
mod robustness_tests;
pub mod rootless;
pub mod secret;
pub mod ssh;
pub mod store;
pub mod user;
