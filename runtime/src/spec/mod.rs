//! Loading and validating a bundle's `config.json`.
//!
//! Errors name the file and the JSON path of the offending field
//! (`linux.namespaces[2].type`), so a user knows what to fix.

mod default;
mod json_path;
mod validate;

pub use default::default_spec;
pub use oci_spec::runtime::Spec;
pub use validate::validate;

use std::path::{Path, PathBuf};

/// What can go wrong with a bundle's configuration.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// config.json could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// config.json is not valid JSON or has a field of the wrong type.
    #[error("{file}: {path}: {msg}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// JSON path of the field, `.` for the document.
        path: String,
        /// The parser's message.
        msg: String,
    },
    /// A field is well-formed but its value cannot be honoured.
    #[error("{file}: {path}: {msg}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// JSON path of the field.
        path: String,
        /// What is wrong and how to fix it.
        msg: String,
    },
}

/// Parses JSON text into `T`, reporting the JSON path of the first error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &[u8],
) -> Result<T, SpecError> {
    serde_json::from_slice(text).map_err(|e| {
        let offset = json_path::offset_of(text, e.line(), e.column());
        SpecError::Parse {
            file: file.to_path_buf(),
            path: json_path::path_at(text, offset),
            msg: e.to_string(),
        }
    })
}

/// Reads and parses `<bundle>/config.json` without validating it.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let file = bundle.join("config.json");
    let text = std::fs::read(&file).map_err(|source| SpecError::Read {
        file: file.clone(),
        source,
    })?;
    parse_json(&file, &text)
}

/// The absolute rootfs path of a spec whose `root.path` may be relative to the bundle.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Option<PathBuf> {
    let root = spec.root().as_ref()?;
    let p = root.path();
    Some(if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_json_path() {
        let text =
            br#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let err = parse_json::<Spec>(Path::new("config.json"), text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("linux.namespaces[1].type"), "{msg}");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn bad_json_is_reported_with_position() {
        let err = parse_json::<Spec>(Path::new("config.json"), b"{\"ociVersion\": ").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("config.json: ") && msg.contains("EOF while parsing"),
            "{msg}"
        );
        assert!(msg.contains("line 1 column 15"), "{msg}");
    }
}
