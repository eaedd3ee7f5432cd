//! `--provenance`: an SLSA provenance (v0.2) in-toto statement attached to
//! the image the way BuildKit attaches it: an image index listing the
//! image manifest and an attestation manifest (platform `unknown/unknown`,
//! annotated `vnd.docker.reference.type: attestation-manifest` and
//! `vnd.docker.reference.digest: <image manifest>`), whose one layer is the
//! statement (`application/vnd.in-toto+json`, annotated with its
//! predicate type).

use std::collections::BTreeMap;

use serde_json::json;

use crate::digest::Digest;
use crate::oci::types::{to_json, Descriptor, Index, PlatformDesc};
use crate::oci::{Layout, OciError};

/// In-toto statement media type.
pub const MEDIA_TYPE_IN_TOTO: &str = "application/vnd.in-toto+json";
/// The SLSA provenance predicate type BuildKit writes by default.
pub const SLSA_V02: &str = "https://slsa.dev/provenance/v0.2";
const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `--provenance` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvenanceMode {
    /// Materials, platform, timestamps (BuildKit's default).
    Min,
    /// Also the build arguments and the Dockerfile.
    Max,
}

/// Parses `--provenance`: `true`/`1`/`mode=min`, `mode=max`; `false`/`0`: None.
pub fn parse_provenance(s: &str) -> Result<Option<ProvenanceMode>, String> {
    let mut mode = None;
    for part in s.split(',') {
        match part {
            "true" | "1" | "mode=min" => mode = Some(ProvenanceMode::Min),
            "mode=max" => mode = Some(ProvenanceMode::Max),
            "false" | "0" => return Ok(None),
            other => {
                return Err(format!(
                "--provenance {s:?}: {other:?} is not supported (true, false, mode=min, mode=max)"
            ))
            }
        }
    }
    Ok(mode)
}

/// What the statement says about the build.
#[derive(Debug, Clone)]
pub struct BuildFacts {
    /// The image's names (`name:tag`), for the subjects.
    pub names: Vec<String>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Base and `--from` images: reference and manifest digest.
    pub materials: Vec<(String, Digest)>,
    /// RFC 3339 start and end.
    pub started: String,
    /// RFC 3339 end.
    pub finished: String,
    /// The Dockerfile's name and text (mode=max).
    pub dockerfile: (String, String),
    /// `--build-arg` values (mode=max).
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
}

fn purl(name: &str, platform: &str) -> String {
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, "latest"),
    };
    format!(
        "pkg:docker/{repo}@{tag}?platform={}",
        platform.replace('/', "%2F")
    )
}

/// The in-toto statement for the image manifest `subject`.
pub fn statement(subject: &Digest, facts: &BuildFacts, mode: ProvenanceMode) -> serde_json::Value {
    let names: Vec<&str> = if facts.names.is_empty() {
        vec!["_"]
    } else {
        facts.names.iter().map(String::as_str).collect()
    };
    let subjects: Vec<serde_json::Value> = names
        .iter()
        .map(|n| json!({"name": purl(n, &facts.platform), "digest": {"sha256": subject.hex()}}))
        .collect();
    let materials: Vec<serde_json::Value> = facts
        .materials
        .iter()
        .map(|(r, d)| json!({"uri": purl(r, &facts.platform), "digest": {"sha256": d.hex()}}))
        .collect();
    let mut parameters = json!({"frontend": "dockerfile.v0"});
    if mode == ProvenanceMode::Max {
        let mut args = serde_json::Map::new();
        for (k, v) in &facts.build_args {
            args.insert(format!("build-arg:{k}"), json!(v));
        }
        if let Some(t) = &facts.target {
            args.insert("target".into(), json!(t));
        }
        parameters["args"] = serde_json::Value::Object(args);
        parameters["locals"] = json!([{"name": "context"}, {"name": "dockerfile"}]);
    }
    let mut predicate = json!({
        "builder": {"id": ""},
        "buildType": "https://mobyproject.org/buildkit@v1",
        "materials": materials,
        "invocation": {
            "configSource": {"entryPoint": facts.dockerfile.0},
            "parameters": parameters,
            "environment": {"platform": facts.platform},
        },
        "metadata": {
            "buildStartedOn": facts.started,
            "buildFinishedOn": facts.finished,
            "completeness": {
                "parameters": mode == ProvenanceMode::Max,
                "environment": true,
                "materials": false,
            },
            "reproducible": false,
        },
    });
    if mode == ProvenanceMode::Max {
        predicate["metadata"]["https://mobyproject.org/buildkit@v1#metadata"] = json!({
            "source": {"infos": [{"filename": facts.dockerfile.0, "language": "Dockerfile",
                                  "data": base64(facts.dockerfile.1.as_bytes())}]},
        });
    }
    json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": SLSA_V02,
        "subject": subjects,
        "predicate": predicate,
    })
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes the statement, the attestation manifest and the index into
/// `layout`; returns the index's descriptor and the new blobs.
pub fn attach(
    layout: &Layout,
    image: &Descriptor,
    statement: &serde_json::Value,
) -> Result<(Descriptor, Vec<Digest>), OciError> {
    let body = serde_json::to_vec(statement).unwrap_or_default();
    let layer_digest = layout.write_blob(&body)?;
    let mut layer = Descriptor::new(MEDIA_TYPE_IN_TOTO, layer_digest.clone(), body.len() as u64);
    layer.annotations = Some(BTreeMap::from([(
        "in-toto.io/predicate-type".to_string(),
        SLSA_V02.to_string(),
    )]));
    let config = to_json(&json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
    }));
    let (manifest, mut att) = layout.write_manifest(&config, vec![layer], None)?;
    let (config_digest, manifest_digest) = (manifest.config.digest, att.digest.clone());
    att.platform = Some(PlatformDesc {
        architecture: "unknown".into(),
        os: "unknown".into(),
        variant: None,
    });
    att.annotations = Some(BTreeMap::from([
        (
            "vnd.docker.reference.type".to_string(),
            "attestation-manifest".to_string(),
        ),
        (
            "vnd.docker.reference.digest".to_string(),
            image.digest.to_string(),
        ),
    ]));
    let mut img = image.clone();
    img.annotations = None;
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.into()),
        manifests: vec![img, att],
        annotations: None,
    };
    let index_json = to_json(&index);
    let index_digest = layout.write_blob(&index_json)?;
    Ok((
        Descriptor::new(
            MEDIA_TYPE_INDEX,
            index_digest.clone(),
            index_json.len() as u64,
        ),
        vec![layer_digest, config_digest, manifest_digest, index_digest],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_encoding() {
        assert_eq!(parse_provenance("true"), Ok(Some(ProvenanceMode::Min)));
        assert_eq!(parse_provenance("mode=max"), Ok(Some(ProvenanceMode::Max)));
        assert_eq!(parse_provenance("false"), Ok(None));
        assert!(parse_provenance("mode=all").is_err());
        assert_eq!(base64(b"Dockerfile"), "RG9ja2VyZmlsZQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(
            purl("localhost:5000/app:1", "linux/amd64"),
            "pkg:docker/localhost:5000/app@1?platform=linux%2Famd64"
        );
        assert_eq!(
            purl("busybox", "linux/amd64"),
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
    }

    #[test]
    fn statement_shape() {
        let d = Digest::of(b"x");
        let facts = BuildFacts {
            names: vec!["app:1".into()],
            platform: "linux/amd64".into(),
            materials: vec![("busybox:latest".into(), d.clone())],
            started: "1970-01-01T00:00:00Z".into(),
            finished: "1970-01-01T00:00:01Z".into(),
            dockerfile: ("Dockerfile".into(), "FROM busybox\n".into()),
            build_args: BTreeMap::from([("A".into(), "1".into())]),
            target: None,
        };
        let min = statement(&d, &facts, ProvenanceMode::Min);
        assert_eq!(min["predicateType"], SLSA_V02);
        assert_eq!(min["subject"][0]["digest"]["sha256"], d.hex());
        assert_eq!(
            min["predicate"]["materials"][0]["uri"],
            "pkg:docker/busybox@latest?platform=linux%2Famd64"
        );
        assert!(min["predicate"]["invocation"]["parameters"]
            .get("args")
            .is_none());
        let max = statement(&d, &facts, ProvenanceMode::Max);
        assert_eq!(
            max["predicate"]["invocation"]["parameters"]["args"]["build-arg:A"],
            "1"
        );
    }
}
