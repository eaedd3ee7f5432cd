//! Registry credentials: the auth files podman and docker use (read in
//! their order, written by `login`), the credential helpers they name
//! (`credHelpers`, `credsStore`: [`super::helper`]), and the
//! `WWW-Authenticate` challenges of the basic and bearer-token flows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;

pub use super::credentials::{Credentials, IDENTITY_TOKEN_USER};
use super::RegistryError;

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
    if registry == crate::oci::reference::DEFAULT_REGISTRY {
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

/// The credential helper an auth file names for `registry`:
/// `credHelpers` (for that registry) first, then `credsStore`.
fn helper_of(v: &serde_json::Value, registry: &str) -> Option<(String, &'static str)> {
    if let Some(h) = v.get("credHelpers").and_then(|h| h.as_object()) {
        for k in keys_for(registry) {
            if let Some(name) = h.get(&k).and_then(|n| n.as_str()) {
                return Some((name.to_string(), "credHelpers"));
            }
        }
    }
    v.get("credsStore")
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .map(|n| (n.to_string(), "credsStore"))
}

/// The credential helper configured for `registry` in `file`, if any.
pub fn helper_in(file: &Path, registry: &str) -> Result<Option<String>, RegistryError> {
    Ok(read_json(file)?.and_then(|v| helper_of(&v, registry).map(|(h, _)| h)))
}

fn in_file(path: &Path, key: &str, e: RegistryError) -> RegistryError {
    RegistryError::Config(format!("auth file {} ({key}): {e}", path.display()))
}

/// Credentials from an `auths` entry: `auth` (base64 `user:password`),
/// `username` + `password`, or an `identitytoken`.
fn entry_credentials(entry: &serde_json::Value) -> Option<Credentials> {
    let s = |k: &str| {
        entry
            .get(k)
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
    };
    if let Some(t) = s("identitytoken") {
        return Some(Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            password: t.into(),
        });
    }
    if let Some(c) = s("auth").and_then(decode_auth) {
        return Some(c);
    }
    match (s("username"), s("password")) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.into(),
            password: p.into(),
        }),
        _ => None,
    }
}

/// Finds credentials for `registry` in `files` (the first file that has
/// some wins). In each file: the `credHelpers` helper for the registry,
/// then its `auths` entry, then the `credsStore` helper; a helper is run
/// (`docker-credential-NAME get`) and may answer that it has none.
pub fn lookup_in(files: &[PathBuf], registry: &str) -> Result<Option<Credentials>, RegistryError> {
    for f in files {
        let Some(v) = read_json(f)? else { continue };
        let helper = helper_of(&v, registry);
        if let Some((h, key @ "credHelpers")) = &helper {
            if let Some(c) = super::helper::get(h, registry).map_err(|e| in_file(f, key, e))? {
                return Ok(Some(c));
            }
        }
        if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
            for k in keys_for(registry) {
                if let Some(c) = auths.get(&k).and_then(entry_credentials) {
                    return Ok(Some(c));
                }
            }
        }
        if let Some((h, key @ "credsStore")) = &helper {
            if let Some(c) = super::helper::get(h, registry).map_err(|e| in_file(f, key, e))? {
                return Ok(Some(c));
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

/// Stores `creds` for `registry` in `file`, keeping everything else in
/// it, or through the credential helper `file` names for the registry
/// (then the file keeps no secret for it). Returns where they went.
pub fn store(file: &Path, registry: &str, creds: &Credentials) -> Result<String, RegistryError> {
    let mut v = read_json(file)?.unwrap_or_else(|| serde_json::json!({}));
    if !v.is_object() {
        v = serde_json::json!({});
    }
    if let Some((h, key)) = helper_of(&v, registry) {
        super::helper::store(&h, registry, creds).map_err(|e| in_file(file, key, e))?;
        // A secret of an earlier plain login must not outlive this one.
        let had = v
            .get_mut("auths")
            .and_then(|a| a.as_object_mut())
            .map(|a| keys_for(registry).iter().any(|k| a.remove(k).is_some()))
            .unwrap_or(false);
        if had {
            write_json(file, &v)?;
        }
        return Ok(format!(
            "credential helper docker-credential-{h} ({key} in {})",
            file.display()
        ));
    }
    let raw = format!("{}:{}", creds.username, creds.password);
    let auth = base64::engine::general_purpose::STANDARD.encode(raw);
    let auths = v
        .as_object_mut()
        .map(|o| o.entry("auths").or_insert_with(|| serde_json::json!({})));
    if let Some(a) = auths.and_then(|a| a.as_object_mut()) {
        a.insert(registry.to_string(), serde_json::json!({ "auth": auth }));
    }
    write_json(file, &v)?;
    Ok(file.display().to_string())
}

/// Removes `registry`'s entries from every file in `files`, and erases
/// them from the credential helpers those files name for it; returns the
/// files whose entries or helpers had some.
pub fn remove_in(files: &[PathBuf], registry: &str) -> Result<Vec<PathBuf>, RegistryError> {
    let mut changed = Vec::new();
    for f in files {
        let Some(mut v) = read_json(f)? else { continue };
        let mut erased = false;
        if let Some((h, key)) = helper_of(&v, registry) {
            erased = super::helper::erase(&h, registry).map_err(|e| in_file(f, key, e))?;
        }
        let mut removed = false;
        if let Some(auths) = v.get_mut("auths").and_then(|a| a.as_object_mut()) {
            let before = auths.len();
            for k in keys_for(registry) {
                auths.remove(&k);
            }
            removed = auths.len() != before;
        }
        if removed {
            write_json(f, &v)?;
        }
        if removed || erased {
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
