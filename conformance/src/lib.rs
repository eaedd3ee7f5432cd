//! `berth-conformance`: OCI runtime-spec conformance checks that grade any runc-compatible
//! runtime binary (berth, runc, crun) through its command line.
//!
//! Each [`case::Case`] writes a busybox bundle ([`bundle`]), drives the runtime
//! ([`runtime::Runtime`]) and asserts the effect, mostly from inside the container with the
//! static checker (`src/bin/checker.rs`, embedded as [`bundle::CHECKER`]). [`suite::Suite`]
//! runs the registry ([`cases::all`]) and [`report`] prints TAP, summaries and the
//! side-by-side comparison.

#![deny(missing_docs)]

pub mod agent;
pub mod bundle;
pub mod case;
pub mod cases;
pub mod error;
pub mod host;
pub mod report;
pub mod runtime;
pub mod suite;

pub use case::{Case, CaseResult, Ctx, Need, Verdict};
pub use error::{Error, Result};
pub use report::RuntimeReport;
pub use runtime::Runtime;
pub use suite::Suite;
