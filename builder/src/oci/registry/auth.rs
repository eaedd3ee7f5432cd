//! Registry credentials: the auth files podman and docker use (read in
//! their order, written by `login`), and the `WWW-Authenticate`
//! challenges of the basic and bearer-token flows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::RegistryError;

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// The `Authorization: Basic ...` value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The auth files to read, in order: `$REGISTRY_AUTH_FILE`,
/// `${XDG_RUNTIME_DIR}/containers/auth.json`, `~/.docker/config.json`
/// (`$DOCKER_CONFIG/config.json` when set).
pub fn auth_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        v.push(Path::new(&d).join("containers/auth.json"));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        v.push(Path::new(&d).join("config.json"));
    } else if let Some(h) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        v.push(Path::new(&h).join(".docker/config.json"));
    }
    v
}

/// The file `login` writes to: the first of [`auth_files`].
pub fn login_file() -> Option<PathBuf> {
    auth_files().into_iter().next()
}

/// The keys an auth file may use for `registry`.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == super::reference::DEFAULT_REGISTRY {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
    }
    keys
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, RegistryError> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map(Some).map_err(|e| {
            RegistryError::Config(format!("auth file {}: invalid JSON: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::Config(format!(
            "auth file {}: {e}",
            path.display()
        ))),
    }
}

/// Decodes an `auths` entry's `auth` field (`base64(user:password)`).
pub fn decode_auth(value: &str) -> Option<Credentials> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// Finds credentials for `registry` in `files` (the first file that has
/// an entry wins).
pub fn lookup_in(files: &[PathBuf], registry: &str) -> Result<Option<Credentials>, RegistryError> {
    for f in files {
        let Some(v) = read_json(f)? else { continue };
        let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        for k in keys_for(registry) {
            let Some(entry) = auths.get(&k) else { continue };
            if let Some(c) = entry
                .get("auth")
                .and_then(|a| a.as_str())
                .and_then(decode_auth)
            {
                return Ok(Some(c));
            }
            if let (Some(u), Some(p)) = (
                entry.get("username").and_then(|a| a.as_str()),
                entry.get("password").and_then(|a| a.as_str()),
            ) {
                return Ok(Some(Credentials {
                    username: u.into(),
                    password: p.into(),
                }));
            }
        }
    }
    Ok(None)
}

/// Finds credentials for `registry` in the default auth files.
pub fn lookup(registry: &str) -> Result<Option<Credentials>, RegistryError> {
    lookup_in(&auth_files(), registry)
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), RegistryError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err =
        |e: std::io::Error| RegistryError::Config(format!("auth file {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = crate::oci::layout::tmp_sibling(path);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(v).unwrap_or_default())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Stores `creds` for `registry` in `file`, keeping everything else in it.
pub fn store(file: &Path, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
    let mut v = read_json(file)?.unwrap_or_else(|| serde_json::json!({}));
    if !v.is_object() {
        v = serde_json::json!({});
    }
    let raw = format!("{}:{}", creds.username, creds.password);
    let auth = base64::engine::general_purpose::STANDARD.encode(raw);
    let auths = v
        .as_object_mut()
        .map(|o| o.entry("auths").or_insert_with(|| serde_json::json!({})));
    if let Some(a) = auths.and_then(|a| a.as_object_mut()) {
        a.insert(registry.to_string(), serde_json::json!({ "auth": auth }));
    }
    write_json(file, &v)
}

/// Removes `registry`'s entries from every file in `files`; returns the
/// files changed.
pub fn remove_in(files: &[PathBuf], registry: &str) -> Result<Vec<PathBuf>, RegistryError> {
    let mut changed = Vec::new();
    for f in files {
        let Some(mut v) = read_json(f)? else { continue };
        let Some(auths) = v.get_mut("auths").and_then(|a| a.as_object_mut()) else {
            continue;
        };
        let before = auths.len();
        for k in keys_for(registry) {
            auths.remove(&k);
        }
        if auths.len() != before {
            write_json(f, &v)?;
            changed.push(f.clone());
        }
    }
    Ok(changed)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=...`.
    Basic,
    /// `Bearer realm=...,service=...,scope=...`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The other parameters (service, scope).
        params: BTreeMap<String, String>,
    },
}

/// Parses a `WWW-Authenticate` header value (`None`: unknown scheme).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let Some((k, after)) = s.split_once('=') else {
            break;
        };
        let key = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end..])
        } else {
            match after.find(',') {
                Some(i) => (after[..i].trim().to_string(), &after[i..]),
                None => (after.trim().to_string(), ""),
            }
        };
        params.insert(key, value);
        s = tail.trim_start().trim_start_matches(',').trim_start();
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let realm = params.remove("realm")?;
            Some(Challenge::Bearer { realm, params })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .expect("bearer");
        let Challenge::Bearer { realm, params } = c else {
            panic!("not bearer")
        };
        assert_eq!(realm, "https://auth.docker.io/token");
        assert_eq!(params["service"], "registry.docker.io");
        assert_eq!(params["scope"], "repository:library/busybox:pull");
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn auth_files_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("auth.json");
        std::fs::write(
            &f,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"credHelpers":{}}"#,
        )
        .expect("write");
        let c = Credentials {
            username: "alice".into(),
            password: "s3cr:et".into(),
        };
        store(&f, "127.0.0.1:5000", &c).expect("store");
        let files = vec![dir.path().join("missing.json"), f.clone()];
        assert_eq!(
            lookup_in(&files, "127.0.0.1:5000").expect("lookup"),
            Some(c)
        );
        let other = lookup_in(&files, "other:1")
            .expect("lookup")
            .expect("other");
        assert_eq!(
            (other.username.as_str(), other.password.as_str()),
            ("x", "y")
        );
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("json");
        assert!(v.get("credHelpers").is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            remove_in(&files, "127.0.0.1:5000").expect("rm"),
            vec![f.clone()]
        );
        assert_eq!(lookup_in(&files, "127.0.0.1:5000").expect("lookup"), None);
        assert!(lookup_in(&files, "other:1").expect("lookup").is_some());
    }
}
