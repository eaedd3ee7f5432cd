//! Errors of the suite's library.

use std::path::PathBuf;

/// Everything that can go wrong while preparing or driving a case, apart from a failed
/// assertion (which is recorded, not raised).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation on the suite's own files failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the suite was doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The runtime (or the wrapper around it) could not be started at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A runtime command that had to succeed for the case to go on failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Runtime {
        /// The runtime command line (without the binary and global flags).
        command: String,
        /// Exit status description.
        status: String,
        /// The last lines of its standard error.
        stderr: String,
    },
    /// Output that should have been JSON was not.
    #[error("{what} is not the expected JSON: {source}; text: {text:?}")]
    Json {
        /// Whose output it was.
        what: String,
        /// The text that failed to parse (shortened).
        text: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The case cannot run on this machine or runtime; the reason is reported as a skip.
    #[error("skipped: {0}")]
    Skip(String),
    /// A runtime name given to `--compare` or `--runtime` was not found.
    #[error("runtime {name:?} not found at {path} (give an explicit path)")]
    NoRuntime {
        /// The name asked for.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Anything else a case needed and did not get, with its explanation.
    #[error("{0}")]
    Other(String),
}

/// Results of the suite's library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with what was being done and where.
pub(crate) fn io(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}
