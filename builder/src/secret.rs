//! Build secrets (`--secret` and `RUN --mount=type=secret`): where a
//! secret comes from, and the temporary file a RUN mounts.
//!
//! A secret's content is read only while its RUN step executes; it never
//! goes into the store, a layer, the image config or a cache key.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors about secrets.
#[derive(Debug, Error)]
pub enum SecretError {
    /// A `--secret` value that does not parse.
    #[error("invalid --secret {spec:?}: {reason}")]
    Flag {
        /// The flag's value.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A secret whose source cannot be read.
    #[error("secret {id:?}: {reason}")]
    Unreadable {
        /// The secret id.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// A `required` secret mount whose secret was not given.
    #[error("secret {0:?} is required but was not provided: pass --secret id={0},src=PATH or --secret id={0},env=VAR")]
    Missing(String),
}

/// Where a secret's content comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the host.
    File(PathBuf),
    /// An environment variable of the builder.
    Env(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only, never content.
        match self {
            SecretSource::File(p) => write!(f, "File({})", p.display()),
            SecretSource::Env(v) => write!(f, "Env({v})"),
        }
    }
}

impl SecretSource {
    /// Reads the secret's content (at use time, as BuildKit does).
    pub fn read(&self, id: &str) -> Result<Vec<u8>, SecretError> {
        let bad = |reason: String| SecretError::Unreadable {
            id: id.to_string(),
            reason,
        };
        match self {
            SecretSource::File(p) => {
                std::fs::read(p).map_err(|e| bad(format!("cannot read {}: {e}", p.display())))
            }
            SecretSource::Env(v) => std::env::var_os(v)
                .map(std::os::unix::ffi::OsStringExt::into_vec)
                .ok_or_else(|| bad(format!("environment variable {v} is not set"))),
        }
    }
}

/// Parses one `--secret` value: `id=ID,src=PATH` (also `source=`),
/// `id=ID,env=VAR`, an optional `type=file|env`, or a bare `id=ID`, which
/// takes environment variable ID (`env_is_set` says whether it exists).
pub fn parse_secret_flag(
    spec: &str,
    env_is_set: impl Fn(&str) -> bool,
) -> Result<(String, SecretSource), SecretError> {
    let bad = |reason: &str| SecretError::Flag {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for field in spec.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            return Err(bad(&format!("field {field:?} must be key=value")));
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" => kind = Some(v.to_ascii_lowercase()),
            other => {
                return Err(bad(&format!(
                    "unknown key {other:?}: use id=, src=, env= or type="
                )))
            }
        }
    }
    let id = match id {
        Some(i) if !i.is_empty() => i,
        _ => return Err(bad("id= is required")),
    };
    if src.is_some() && env.is_some() {
        return Err(bad("give either src= or env=, not both"));
    }
    let source = match (kind.as_deref(), src, env) {
        (Some("file") | None, Some(s), None) if !s.is_empty() => SecretSource::File(s.into()),
        (Some("env") | None, None, Some(e)) if !e.is_empty() => SecretSource::Env(e),
        (Some("env"), None, None) => SecretSource::Env(id.clone()),
        (Some("file"), None, None) => return Err(bad("type=file needs src=PATH")),
        (None, None, None) => {
            if env_is_set(&id) {
                SecretSource::Env(id.clone())
            } else {
                return Err(bad(&format!(
                    "no src= or env= given and environment variable {id} is not set"
                )));
            }
        }
        (Some(t), _, _) if t != "file" && t != "env" => {
            return Err(bad(&format!("unsupported type {t:?}: use file or env")))
        }
        _ => return Err(bad("src=, env= and type= do not agree")),
    };
    Ok((id, source))
}

/// A secret written to a private temporary directory (on /dev/shm when
/// there is one, never in the store) for a bind mount; removed on drop.
#[derive(Debug)]
pub struct SecretFile {
    dir: PathBuf,
    file: PathBuf,
}

impl SecretFile {
    /// Writes `content` with `mode` and owner `uid:gid`.
    pub fn create(content: &[u8], mode: u32, uid: u32, gid: u32) -> std::io::Result<SecretFile> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = nix::unistd::mkdtemp(&base.join("berth-build-secret-XXXXXX"))
            .map_err(crate::fsutil::errno_io)?;
        let sf = SecretFile {
            file: dir.join("secret"),
            dir,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&sf.file)?;
        f.write_all(content)?;
        drop(f);
        std::os::unix::fs::chown(&sf.file, Some(uid), Some(gid))?;
        std::fs::set_permissions(&sf.file, std::fs::Permissions::from_mode(mode & 0o7777))?;
        Ok(sf)
    }

    /// The file to bind-mount.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flags() {
        let none = |_: &str| false;
        let (id, s) = parse_secret_flag("id=a,src=/tmp/f", none).expect("ok");
        assert_eq!((id.as_str(), s), ("a", SecretSource::File("/tmp/f".into())));
        let (_, s) = parse_secret_flag("id=a,source=f,type=file", none).expect("ok");
        assert_eq!(s, SecretSource::File("f".into()));
        let (_, s) = parse_secret_flag("id=a,env=TOKEN", none).expect("ok");
        assert_eq!(s, SecretSource::Env("TOKEN".into()));
        let (_, s) = parse_secret_flag("id=a,type=env", none).expect("ok");
        assert_eq!(s, SecretSource::Env("a".into()));
        let (_, s) = parse_secret_flag("id=HOME", |v| v == "HOME").expect("ok");
        assert_eq!(s, SecretSource::Env("HOME".into()));
        for bad in [
            "id=X",
            "src=/f",
            "id=,src=/f",
            "id=a,src=/f,env=V",
            "id=a,type=file",
            "id=a,type=ssh,src=f",
            "id=a,type=env,src=f",
            "id=a,colour=red",
            "id=a,src",
        ] {
            assert!(parse_secret_flag(bad, none).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_file_is_private_and_removed() {
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let sf = SecretFile::create(b"s3cr3t", 0o440, uid, gid).expect("create");
        let p = sf.path().to_path_buf();
        assert_eq!(std::fs::read(&p).expect("read"), b"s3cr3t");
        let md = std::fs::metadata(&p).expect("meta");
        assert_eq!(md.permissions().mode() & 0o7777, 0o440);
        let dir = p.parent().expect("dir").to_path_buf();
        assert_eq!(
            std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
            0o700
        );
        drop(sf);
        assert!(!dir.exists());
    }

    #[test]
    fn debug_shows_no_content() {
        let s = SecretSource::Env("TOKEN".into());
        assert_eq!(format!("{s:?}"), "Env(TOKEN)");
    }
}
