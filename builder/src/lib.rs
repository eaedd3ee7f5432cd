//! berth-build: turns a Dockerfile into an OCI image layout.
//!
//! This crate holds the pure front end so far:
//! - [`dockerfile`]: Dockerfile text to typed instructions, and variable
//!   expansion with BuildKit's rules;
//! - [`plan`]: build stages, ARG scoping, the stage dependency graph and the
//!   order to build them in;
//! - [`context`]: `.dockerignore` parsing and matching.

pub mod context;
pub mod dockerfile;
mod glob;
pub mod plan;
#[cfg(test)]
mod robustness_tests;
