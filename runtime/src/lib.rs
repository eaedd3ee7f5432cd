//! berth: a fast, runc-compatible OCI container runtime.
//!
//! The library is the product: the `berth` CLI, the containerd shim and the
//! image builder all drive containers through [`container`].

pub mod capabilities;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod fault;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod sys;
pub mod timefmt;
pub mod trace;

/// The OCI runtime-spec version this runtime implements (reported in state and features).
pub const OCI_VERSION: &str = "1.2.0";
