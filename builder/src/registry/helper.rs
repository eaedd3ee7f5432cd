//! Docker credential helpers: `docker-credential-NAME get|store|erase`
//! programs found on `PATH`, named by an auth file's `credHelpers` (per
//! registry) or `credsStore` (for all). The protocol is docker's: `get`
//! and `erase` read the server URL on stdin, `store` reads
//! `{"ServerURL","Username","Secret"}`; `get` answers with the same JSON,
//! or fails saying the credentials are not found. A `Username` of
//! `<token>` means `Secret` is an identity (refresh) token.

use std::io::Write;
use std::process::{Command, Stdio};

use super::credentials::Credentials;
use super::RegistryError;

/// What a helper says when it has nothing for the server.
const NOT_FOUND: &str = "credentials not found";

/// The server URL a helper is asked about for `registry` (docker's: the
/// host as written, Docker Hub's legacy index URL).
pub fn server_url(registry: &str) -> String {
    if registry == crate::oci::reference::DEFAULT_REGISTRY {
        "https://index.docker.io/v1/".into()
    } else {
        registry.to_string()
    }
}

fn program(helper: &str) -> Result<String, RegistryError> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(RegistryError::Config(format!(
            "invalid credential helper name {helper:?}"
        )));
    }
    Ok(format!("docker-credential-{helper}"))
}

/// Runs `docker-credential-HELPER ACTION` with `input` on stdin; returns
/// its exit success and stdout (stderr is folded into failures).
fn run(helper: &str, action: &str, input: &[u8]) -> Result<(bool, String), RegistryError> {
    let prog = program(helper)?;
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RegistryError::Config(if e.kind() == std::io::ErrorKind::NotFound {
                format!("credential helper {prog} is not on PATH")
            } else {
                format!("credential helper {prog}: {e}")
            })
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading: a broken pipe is its answer.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RegistryError::Config(format!("credential helper {prog}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        return Ok((true, stdout));
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let msg = [stdout, stderr]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Ok((false, msg))
}

fn failed(helper: &str, action: &str, msg: &str, status: &str) -> RegistryError {
    RegistryError::Config(format!(
        "credential helper docker-credential-{helper} {action} {status}: {msg}"
    ))
}

/// Asks `helper` for the credentials of `registry` (`None`: it has none).
pub fn get(helper: &str, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let url = server_url(registry);
    let (ok, out) = run(helper, "get", url.as_bytes())?;
    if !ok {
        if out.to_ascii_lowercase().contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(failed(helper, "get", &out, "failed"));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let a: Answer = serde_json::from_str(&out)
        .map_err(|e| failed(helper, "get", &format!("invalid JSON: {e}"), "answered"))?;
    if a.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: a.username,
        password: a.secret,
    }))
}

/// Stores `creds` for `registry` through `helper`.
pub fn store(helper: &str, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
    let input = serde_json::json!({
        "ServerURL": server_url(registry),
        "Username": creds.username,
        "Secret": creds.password,
    })
    .to_string();
    match run(helper, "store", input.as_bytes())? {
        (true, _) => Ok(()),
        (false, msg) => Err(failed(helper, "store", &msg, "failed")),
    }
}

/// Erases `registry`'s credentials from `helper`; `false` when it had none.
pub fn erase(helper: &str, registry: &str) -> Result<bool, RegistryError> {
    match run(helper, "erase", server_url(registry).as_bytes())? {
        (true, _) => Ok(true),
        (false, msg) if msg.to_ascii_lowercase().contains(NOT_FOUND) => Ok(false),
        (false, msg) => Err(failed(helper, "erase", &msg, "failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        assert_eq!(server_url("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(server_url("127.0.0.1:5000"), "127.0.0.1:5000");
        assert!(program("pass").is_ok());
        assert!(program("../evil").is_err());
        assert!(program("").is_err());
        let e = get("berth-no-such-helper", "x").expect_err("missing");
        assert!(e.to_string().contains("not on PATH"), "{e}");
    }
}
