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

/// Reads and parses `<bundle>/config.json` without validating it. Capability names berth
/// cannot map are left out with a warning (see [`parse_allowing_unknown_caps`]).
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    load_with(bundle, true)
}

/// [`load`] without the warnings, for a caller that only peeks at the config before the
/// container is created (and warned about) from it.
pub fn load_quietly(bundle: &Path) -> Result<Spec, SpecError> {
    load_with(bundle, false)
}

fn load_with(bundle: &Path, warn: bool) -> Result<Spec, SpecError> {
    let file = bundle.join("config.json");
    let text = std::fs::read(&file).map_err(|source| SpecError::Read {
        file: file.clone(),
        source,
    })?;
    parse_caps_leniently(&file, &text, "/process", warn)
}

/// Parses JSON text into `T` as [`parse_json`] does, except that a capability name this
/// runtime cannot map, in the process object at JSON pointer `process` (`/process` in
/// config.json, `` for an exec's process.json), is dropped and logged as a warning instead
/// of failing the parse: the runtime-spec says such a value MUST be logged as a warning and
/// runtimes SHOULD NOT fail (config.md, `capabilities`). The text is parsed twice only then.
pub fn parse_allowing_unknown_caps<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &[u8],
    process: &str,
) -> Result<T, SpecError> {
    parse_caps_leniently(file, text, process, true)
}

fn parse_caps_leniently<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &[u8],
    process: &str,
    warn: bool,
) -> Result<T, SpecError> {
    let caps_path = if process.is_empty() {
        "capabilities".to_string()
    } else {
        format!("{}.capabilities", process.trim_start_matches('/'))
    };
    let err = match parse_json(file, text) {
        Err(SpecError::Parse { path, .. }) if path.starts_with(&caps_path) => path,
        other => return other,
    };
    let mut v: serde_json::Value = parse_json(file, text)?;
    let warning = v
        .pointer_mut(process)
        .and_then(crate::capabilities::drop_unknown);
    let Some(warning) = warning else {
        // Not an unknown name (a number, an object, ...): the first error stands.
        return parse_json(file, text).map_err(|e| match e {
            SpecError::Parse { file, msg, .. } => SpecError::Parse {
                file,
                path: err,
                msg,
            },
            e => e,
        });
    };
    if warn {
        tracing::warn!("{warning}");
    }
    let text = serde_json::to_vec(&v).map_err(|e| SpecError::Parse {
        file: file.to_path_buf(),
        path: ".".into(),
        msg: e.to_string(),
    })?;
    parse_json(file, &text)
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
    fn unknown_capabilities_are_dropped_not_fatal() {
        let text = br#"{"ociVersion":"1.0.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{
            "bounding":["CAP_CHOWN","CAP_TEST"],"effective":["CAP_KILL","CAP_TEST","CAP_NOPE"]}}}"#;
        let spec: Spec =
            parse_allowing_unknown_caps(Path::new("config.json"), text, "/process").unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert_eq!(caps.effective().as_ref().unwrap().len(), 1);
        let mut v: serde_json::Value = serde_json::from_slice(text).unwrap();
        let w = crate::capabilities::drop_unknown(&mut v["process"]).unwrap();
        assert_eq!(
            w,
            "ignoring unknown or unavailable capabilities: [CAP_TEST CAP_NOPE]"
        );
        // An exec's process.json has the capabilities at its top.
        let text = br#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"],"capabilities":{"ambient":["CAP_X"]}}"#;
        let p: oci_spec::runtime::Process =
            parse_allowing_unknown_caps(Path::new("p.json"), text, "").unwrap();
        assert!(p
            .capabilities()
            .as_ref()
            .unwrap()
            .ambient()
            .as_ref()
            .unwrap()
            .is_empty());
        // A value of the wrong type is still an error naming its path.
        let text = br#"{"ociVersion":"1.0.0","process":{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":[7]}}}"#;
        let e = parse_allowing_unknown_caps::<Spec>(Path::new("config.json"), text, "/process")
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.capabilities.bounding"), "{e}");
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
