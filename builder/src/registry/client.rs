//! The HTTP side of the distribution API: one [`Client`] per registry,
//! on ureq (the HTTP stack the builder already has). It picks the scheme
//! (HTTPS; plain HTTP only for this machine and `--insecure-registry`
//! names, which also skip certificate checks), trusts the CA files in
//! `certs.d/HOST/*.crt`, presents the client certificate
//! `certs.d/HOST/NAME.cert` + `NAME.key` when there is one, and answers basic and
//! bearer-token challenges with the credentials from the auth files. Safe
//! to share between the threads downloading layers.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::auth::{self, Challenge, Credentials};
use super::RegistryError;
use crate::oci::Reference;

/// Where registry settings come from.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) reached without certificate checks, or
    /// over plain HTTP when HTTPS fails (Docker's insecure registries).
    pub insecure: Vec<String>,
    /// `certs.d` roots holding `HOST[:PORT]/*.crt` CA files and
    /// `HOST[:PORT]/NAME.cert` + `NAME.key` client certificates.
    pub certs_dirs: Vec<PathBuf>,
    /// Auth files, in lookup order.
    pub auth_files: Vec<PathBuf>,
}

impl Default for RegistryOptions {
    /// `BERTH_CERTS_D` (colon-separated roots) or `/etc/containers/certs.d`
    /// and `/etc/docker/certs.d`; the auth files of [`auth::auth_files`].
    fn default() -> Self {
        let certs_dirs = match std::env::var("BERTH_CERTS_D") {
            Ok(v) if !v.is_empty() => v.split(':').map(PathBuf::from).collect(),
            _ => vec![
                PathBuf::from("/etc/containers/certs.d"),
                PathBuf::from("/etc/docker/certs.d"),
            ],
        };
        RegistryOptions {
            insecure: Vec::new(),
            certs_dirs,
            auth_files: auth::auth_files(),
        }
    }
}

/// A request body.
pub enum Body<'a> {
    /// None.
    Empty,
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        /// The file.
        path: &'a Path,
        /// Where to start.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

/// A client for one registry.
pub struct Client {
    registry: String,
    base: String,
    agent: ureq::Agent,
    creds: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
}

/// The CA certificates in `DIR/HOST/*.crt` for each certs.d root.
pub fn ca_files(certs_dirs: &[PathBuf], registry: &str) -> Vec<PathBuf> {
    with_extension(certs_dirs, registry, "crt")
}

/// The files `DIR/HOST/*.EXT` of every certs.d root, sorted per root.
fn with_extension(certs_dirs: &[PathBuf], registry: &str, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in certs_dirs {
        let dir = root.join(registry);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// A client certificate and its key: `DIR/HOST/NAME.cert` with
/// `DIR/HOST/NAME.key`, as docker and podman find them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// The client certificate for `registry`: the first `*.cert` (roots in
/// order, names sorted) with its `*.key`. A `.cert` without its `.key`,
/// or the reverse, is an error naming the file.
pub fn client_cert(
    certs_dirs: &[PathBuf],
    registry: &str,
) -> Result<Option<ClientCert>, RegistryError> {
    let certs = with_extension(certs_dirs, registry, "cert");
    for key in with_extension(certs_dirs, registry, "key") {
        if !key.with_extension("cert").is_file() {
            return Err(RegistryError::Config(format!(
                "client key {} has no certificate {} beside it",
                key.display(),
                key.with_extension("cert").display()
            )));
        }
    }
    for cert in &certs {
        let key = cert.with_extension("key");
        if !key.is_file() {
            return Err(RegistryError::Config(format!(
                "client certificate {} has no key {} beside it",
                cert.display(),
                key.display()
            )));
        }
    }
    Ok(certs.into_iter().next().map(|cert| ClientCert {
        key: cert.with_extension("key"),
        cert,
    }))
}

/// Reads a client certificate chain and key.
fn load_client_cert(
    c: &ClientCert,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    ),
    RegistryError,
> {
    let bad = |f: &Path, e: String| {
        RegistryError::Config(format!("client certificate {}: {e}", f.display()))
    };
    let chain = CertificateDer::pem_file_iter(&c.cert)
        .map_err(|e| bad(&c.cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&c.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(&c.cert, "no PEM certificate in it".into()));
    }
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&c.key)
        .map_err(|e| bad(&c.key, format!("no usable PEM private key: {e}")))?;
    Ok((chain, key))
}

/// For `--insecure-registry` names: any server certificate is accepted
/// (the handshake signatures are still checked), as Docker treats
/// insecure registries.
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(
    cas: &[PathBuf],
    client: Option<&ClientCert>,
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>, RegistryError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for f in cas {
        let bad = |e: String| RegistryError::Config(format!("CA file {}: {e}", f.display()));
        let certs = CertificateDer::pem_file_iter(f).map_err(|e| bad(e.to_string()))?;
        let mut n = 0;
        for c in certs {
            let c = c.map_err(|e| bad(e.to_string()))?;
            roots.add(c).map_err(|e| bad(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("no PEM certificate in it".into()));
        }
        tracing::debug!(file = %f.display(), "trusting CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Config(format!("TLS: {e}")))?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
    } else {
        builder.with_root_certificates(roots)
    };
    let cfg = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let (chain, key) = load_client_cert(c)?;
            tracing::debug!(cert = %c.cert.display(), "presenting client certificate");
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                RegistryError::Config(format!(
                    "client certificate {} with key {}: {e}",
                    c.cert.display(),
                    c.key.display()
                ))
            })?
        }
    };
    Ok(Arc::new(cfg))
}

fn ca_hint(registry: &str) -> String {
    format!("a private CA goes in CERTS.D/{registry}/ca.crt, a client certificate in CERTS.D/{registry}/client.cert + client.key (--certs-dir, $BERTH_CERTS_D, /etc/containers/certs.d, /etc/docker/certs.d)")
}

/// The registry's error message from a JSON error body, or the text.
fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        errors: Vec<E>,
    }
    match serde_json::from_str::<Es>(body) {
        Ok(es) if !es.errors.is_empty() => es
            .errors
            .iter()
            .map(|e| format!("{} ({})", e.message, e.code))
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.trim().chars().take(300).collect(),
    }
}

fn read_error_body(resp: ureq::Response) -> String {
    let mut s = String::new();
    let _ = resp.into_reader().take(64 << 10).read_to_string(&mut s);
    error_message(&s)
}

impl Client {
    /// Connects to the registry of `reference` (one `/v2/` request to pick
    /// the scheme and learn the authentication challenge).
    pub fn new(reference: &Reference, opts: &RegistryOptions) -> Result<Client, RegistryError> {
        let registry = reference.registry.clone();
        let cas = ca_files(&opts.certs_dirs, &registry);
        let client_cert = client_cert(&opts.certs_dirs, &registry)?;
        let insecure = opts.insecure.iter().any(|i| i == &registry);
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls_config(&cas, client_cert.as_ref(), insecure)?)
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(120))
            .user_agent(concat!("berth-build/", env!("CARGO_PKG_VERSION")))
            .build();
        let creds = auth::lookup_in(&opts.auth_files, &registry)?;
        let host = reference.api_host().to_string();
        let plain_ok = reference.is_local() || insecure;
        let mut client = Client {
            registry,
            base: format!("https://{host}"),
            agent,
            creds,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        };
        match client.ping() {
            Ok(()) => Ok(client),
            Err(RegistryError::Transport { url, message }) if plain_ok => {
                tracing::debug!(%url, %message, "HTTPS failed; trying plain HTTP");
                client.base = format!("http://{host}");
                match client.ping() {
                    Ok(()) => Ok(client),
                    Err(e) => Err(RegistryError::Transport {
                        url,
                        message: format!(
                            "{message} (and over plain HTTP: {e}); {}",
                            ca_hint(&reference.registry)
                        ),
                    }),
                }
            }
            Err(RegistryError::Transport { url, message }) => Err(RegistryError::Transport {
                url,
                message: format!(
                    "{message}; plain HTTP is used only for localhost and --insecure-registry; {}",
                    ca_hint(&reference.registry)
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// The registry's name (`host[:port]`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The base URL in use (`https://host` or `http://host`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether credentials were found for the registry.
    pub fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// Replaces the credentials (for `login`, before they are stored).
    pub fn set_credentials(&mut self, creds: Credentials) {
        self.creds = Some(creds);
        if let Ok(mut t) = self.tokens.lock() {
            t.clear();
        }
    }

    fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        match self.agent.get(&url).call() {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(401, resp)) => {
                let c = resp
                    .header("www-authenticate")
                    .and_then(auth::parse_challenge);
                if let Ok(mut slot) = self.challenge.lock() {
                    *slot = c;
                }
                Ok(())
            }
            Err(ureq::Error::Status(code, resp)) => Err(RegistryError::Http {
                url,
                code,
                message: read_error_body(resp),
            }),
            Err(ureq::Error::Transport(t)) => Err(RegistryError::Transport {
                url,
                message: t.to_string(),
            }),
        }
    }

    /// Checks that the credentials are accepted (`login`).
    pub fn check_login(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let header = self.authorization(&[])?;
        let mut req = self.agent.get(&url);
        if let Some(h) = &header {
            req = req.set("Authorization", h);
        }
        match req.call() {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(401, resp)) => Err(RegistryError::Unauthorized {
                registry: self.registry.clone(),
                detail: format!(
                    "{} ({})",
                    read_error_body(resp),
                    if header.is_some() {
                        "the credentials were refused"
                    } else {
                        "no credentials"
                    }
                ),
            }),
            Err(e) => Err(self.convert(&url, e)),
        }
    }

    fn convert(&self, url: &str, e: ureq::Error) -> RegistryError {
        match e {
            ureq::Error::Status(401, resp) => RegistryError::Unauthorized {
                registry: self.registry.clone(),
                detail: format!(
                    "{} ({})",
                    read_error_body(resp),
                    if self.creds.is_some() {
                        "the stored credentials were refused"
                    } else {
                        "no credentials: run `berth-build login`"
                    }
                ),
            },
            ureq::Error::Status(code, resp) => RegistryError::Http {
                url: url.to_string(),
                code,
                message: read_error_body(resp),
            },
            ureq::Error::Transport(t) => RegistryError::Transport {
                url: url.to_string(),
                message: t.to_string(),
            },
        }
    }

    /// The `Authorization` header for `scopes` (`repository:NAME:pull`),
    /// fetching a bearer token when the registry asks for one.
    fn authorization(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let challenge = self.challenge.lock().ok().and_then(|c| c.clone());
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, params }) => {
                let key = scopes.join(" ");
                if let Some(t) = self.tokens.lock().ok().and_then(|t| t.get(&key).cloned()) {
                    return Ok(Some(t));
                }
                let identity = self.creds.as_ref().and_then(Credentials::identity_token);
                let sent = if let Some(refresh) = identity {
                    // An identity token: the OAuth2 refresh-token grant.
                    let service = params.get("service").map(String::as_str).unwrap_or("");
                    let scope = scopes.join(" ");
                    self.agent.post(&realm).send_form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh),
                        ("service", service),
                        ("scope", scope.as_str()),
                        ("client_id", "berth-build"),
                    ])
                } else {
                    let mut req = self.agent.get(&realm);
                    if let Some(s) = params.get("service") {
                        req = req.query("service", s);
                    }
                    for s in scopes {
                        req = req.query("scope", s);
                    }
                    if let Some(c) = &self.creds {
                        req = req.set("Authorization", &c.basic_header());
                    }
                    req.call()
                };
                let resp = sent.map_err(|e| match self.convert(&realm, e) {
                    RegistryError::Http { code, message, .. } => RegistryError::Unauthorized {
                        registry: self.registry.clone(),
                        detail: format!("token endpoint {realm} answered {code}: {message}"),
                    },
                    RegistryError::Unauthorized { registry, detail } => {
                        RegistryError::Unauthorized {
                            registry,
                            detail: format!("token endpoint {realm}: {detail}"),
                        }
                    }
                    other => other,
                })?;
                #[derive(serde::Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: String,
                    #[serde(default)]
                    access_token: String,
                }
                let mut text = String::new();
                resp.into_reader()
                    .take(1 << 20)
                    .read_to_string(&mut text)
                    .map_err(|e| RegistryError::Transport {
                        url: realm.clone(),
                        message: e.to_string(),
                    })?;
                let t: Token =
                    serde_json::from_str(&text).map_err(|e| RegistryError::Unauthorized {
                        registry: self.registry.clone(),
                        detail: format!("token endpoint {realm}: invalid answer: {e}"),
                    })?;
                let tok = if t.token.is_empty() {
                    t.access_token
                } else {
                    t.token
                };
                if tok.is_empty() {
                    return Err(RegistryError::Unauthorized {
                        registry: self.registry.clone(),
                        detail: format!("token endpoint {realm} gave no token"),
                    });
                }
                let h = format!("Bearer {tok}");
                if let Ok(mut t) = self.tokens.lock() {
                    t.insert(key, h.clone());
                }
                Ok(Some(h))
            }
        }
    }

    /// Sends one request (`path` relative to the base, or an absolute URL
    /// from a `Location` header) with authorization for `scopes`, retrying
    /// once after a fresh challenge. Error statuses become errors.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        scopes: &[String],
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<ureq::Response, RegistryError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        };
        let mut retried = false;
        loop {
            let auth = self.authorization(scopes)?;
            let mut req = self.agent.request(method, &url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = &auth {
                req = req.set("Authorization", a);
            }
            let result = match &body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File { path, offset, len } => {
                    use std::io::{Seek, SeekFrom};
                    let mut f = std::fs::File::open(path)
                        .map_err(|e| RegistryError::io(path.display(), e))?;
                    f.seek(SeekFrom::Start(*offset))
                        .map_err(|e| RegistryError::io(path.display(), e))?;
                    req.set("Content-Length", &len.to_string())
                        .send(std::io::BufReader::with_capacity(256 << 10, f.take(*len)))
                }
            };
            match result {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, resp)) if !retried => {
                    retried = true;
                    let c = resp
                        .header("www-authenticate")
                        .and_then(auth::parse_challenge);
                    let unchanged = self.challenge.lock().ok().and_then(|g| g.clone()) == c;
                    if c.is_none() || (unchanged && auth.is_some()) {
                        return Err(self.convert(&url, ureq::Error::Status(401, resp)));
                    }
                    if let Ok(mut slot) = self.challenge.lock() {
                        *slot = c;
                    }
                    if let Ok(mut t) = self.tokens.lock() {
                        t.clear();
                    }
                }
                Err(e) => return Err(self.convert(&url, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_pairs() {
        let root = tempfile::tempdir().expect("tempdir");
        let host = root.path().join("reg:5000");
        std::fs::create_dir_all(&host).expect("mkdir");
        let roots = vec![root.path().join("missing"), root.path().to_path_buf()];
        assert_eq!(client_cert(&roots, "reg:5000").expect("none"), None);
        std::fs::write(host.join("ca.crt"), "x").expect("ca");
        std::fs::write(host.join("b.cert"), "x").expect("cert");
        let e = client_cert(&roots, "reg:5000").expect_err("no key");
        assert!(e.to_string().contains("b.key"), "{e}");
        std::fs::write(host.join("b.key"), "x").expect("key");
        std::fs::write(host.join("a.key"), "x").expect("key");
        let e = client_cert(&roots, "reg:5000").expect_err("no cert");
        assert!(e.to_string().contains("a.cert"), "{e}");
        std::fs::write(host.join("a.cert"), "x").expect("cert");
        let c = client_cert(&roots, "reg:5000")
            .expect("pair")
            .expect("some");
        assert_eq!((c.cert, c.key), (host.join("a.cert"), host.join("a.key")));
        assert_eq!(ca_files(&roots, "reg:5000"), vec![host.join("ca.crt")]);
        // Not PEM: a clear error naming the file.
        let e = load_client_cert(&ClientCert {
            cert: host.join("a.cert"),
            key: host.join("a.key"),
        })
        .expect_err("not pem");
        assert!(e.to_string().contains("a.cert"), "{e}");
    }
}
