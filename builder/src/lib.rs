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
//! - [`exec`]: RUN (through the berth runtime library on an overlay
//!   snapshot), COPY/ADD (with `--parents` and http(s) URLs) and WORKDIR;
//! - [`progress`]: plain and tty step progress on stderr;
//! - [`secret`]: build secrets (`--secret`, `RUN --mount=type=secret`);
//! - [`images`]: tag, inspect, save, load and overlay bundles;
//! - [`build`]: the build driver tying it together.

pub mod build;
pub mod context;
pub mod digest;
pub mod dockerfile;
pub mod exec;
mod fsutil;
mod glob;
pub mod images;
pub mod layer;
pub mod oci;
pub mod plan;
pub mod progress;
pub mod registry;
#[cfg(test)]
mod robustness_tests;
pub mod rootless;
pub mod secret;
pub mod store;
pub mod user;
