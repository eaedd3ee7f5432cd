//! Build outputs (`--output`, BuildKit's exporters), `--annotation`,
//! `--label`, and the files `--iidfile` / `--metadata-file` write.
//!
//! Parsing is pure (unit-tested here); [`write`] does the file work.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::layer::{self, Compression};
use crate::oci::layout::{ref_annotations, tmp_sibling};
use crate::oci::types::Descriptor;
use crate::oci::{self, Layout, OciError, ResolvedImage};
use crate::store::{Store, StoreError, StoredImage};

/// Why writing an output failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Image layout or archive.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The store (scratch space, Docker archive).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file tree's tar.
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
}

/// Where to write the image (or its file tree) besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI layout directory (created or updated): `type=oci` (or
    /// `type=oci,tar=false`).
    Oci(PathBuf),
    /// An OCI archive file: `type=oci-archive`, `type=oci,tar=true`.
    OciArchive(PathBuf),
    /// A Docker archive (`docker load`): `type=docker,dest=FILE`.
    Docker(PathBuf),
    /// The final stage's file tree in a directory: `type=local`, `-o DIR`.
    Local(PathBuf),
    /// The final stage's file tree as one tar file: `type=tar`.
    Tar(PathBuf),
}

/// One parsed `--output` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutputSpec {
    /// The file or directory to write, if this output writes one.
    pub output: Option<Output>,
    /// `name=` of `type=image|registry` (and `docker`): more image names.
    pub names: Vec<String>,
    /// `push=true`, or `type=registry`: push the names after the build.
    pub push: bool,
}

/// Splits a BuildKit-style CSV value (`a=1,"b=x,y"`) into its fields.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quote in {s:?}"));
    }
    out.push(cur);
    Ok(out)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{key}={v:?}: use true or false")),
    }
}

/// Parses one `--output` value as buildx does: `type=T,dest=D,...`, or a
/// bare path meaning `type=local,dest=PATH`.
pub fn parse_output(s: &str) -> Result<OutputSpec, String> {
    if !s.contains('=') {
        if s.is_empty() {
            return Err("--output \"\": give DIR, - (a tar on stdout) or type=...".into());
        }
        if s == "-" {
            return Ok(OutputSpec {
                output: Some(Output::Tar(PathBuf::from("-"))),
                ..OutputSpec::default()
            });
        }
        return Ok(OutputSpec {
            output: Some(Output::Local(PathBuf::from(s))),
            ..OutputSpec::default()
        });
    }
    let mut kind = None;
    let mut dest = None;
    let mut tar = None;
    let mut spec = OutputSpec::default();
    for field in csv_fields(s)? {
        let Some((k, v)) = field.split_once('=') else {
            return Err(format!("--output {s:?}: {field:?} is not KEY=VALUE"));
        };
        match k {
            "type" => kind = Some(v.to_string()),
            "dest" => dest = Some(PathBuf::from(v)),
            "name" => spec
                .names
                .extend(v.split(',').filter(|n| !n.is_empty()).map(str::to_string)),
            "push" => spec.push = parse_bool(k, v)?,
            "tar" => tar = Some(parse_bool(k, v)?),
            other => {
                return Err(format!(
                    "--output {s:?}: option {other:?} is not supported by berth-build \
                     (type, dest, name, push, tar are)"
                ))
            }
        }
    }
    if dest.as_deref() == Some(Path::new("-"))
        && !matches!(
            kind.as_deref(),
            Some("tar" | "oci" | "oci-archive" | "docker")
        )
    {
        return Err(format!(
            "--output {s:?}: only tar, oci and docker outputs can go to stdout (dest=-)"
        ));
    }
    let need_dest = |what: &str| {
        dest.clone()
            .ok_or_else(|| format!("--output {s:?}: type={what} needs dest=PATH"))
    };
    let kind = kind.ok_or_else(|| format!("--output {s:?} needs type=..."))?;
    if spec.push && !matches!(kind.as_str(), "image" | "registry") {
        return Err(format!(
            "--output {s:?}: push= is for type=image (type=registry always pushes)"
        ));
    }
    let to_stdout = dest.as_deref() == Some(Path::new("-"));
    spec.output = match kind.as_str() {
        "oci" if tar == Some(true) || to_stdout => Some(Output::OciArchive(need_dest("oci")?)),
        "oci" => Some(Output::Oci(need_dest("oci")?)),
        "oci-archive" => Some(Output::OciArchive(need_dest("oci-archive")?)),
        "docker" => Some(Output::Docker(need_dest("docker")?)),
        "local" => Some(Output::Local(need_dest("local")?)),
        "tar" => Some(Output::Tar(need_dest("tar")?)),
        "image" | "registry" => {
            if dest.is_some() {
                return Err(format!(
                    "--output {s:?}: type={kind} takes name=, not dest="
                ));
            }
            if spec.names.is_empty() {
                return Err(format!("--output {s:?}: type={kind} needs name=NAME"));
            }
            spec.push |= kind == "registry";
            None
        }
        other => {
            return Err(format!(
                "--output {s:?}: unsupported type {other:?}: use oci, oci-archive, docker, \
                 local, tar, image or registry"
            ))
        }
    };
    if tar.is_some() && kind != "oci" {
        return Err(format!("--output {s:?}: tar= is for type=oci"));
    }
    Ok(spec)
}

/// Where a `--annotation` goes (buildx's `TYPE:key=value` prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationTarget {
    /// The image manifest (the default).
    Manifest,
    /// The manifest's descriptor in index.json / the archive's index.
    ManifestDescriptor,
}

/// One `--annotation` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Where it goes.
    pub target: AnnotationTarget,
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// Parses `[TYPE[,TYPE...]:]key=value` (TYPE `manifest` or
/// `manifest-descriptor`; a single build has no index to annotate).
pub fn parse_annotation(s: &str) -> Result<Vec<Annotation>, String> {
    let (kv_at, types) = match s.split_once('=') {
        Some((left, _)) => match left.split_once(':') {
            Some((t, _)) => (t.len() + 1, Some(t)),
            _ => (0, None),
        },
        None => return Err(format!("--annotation {s:?}: use [TYPE:]KEY=VALUE")),
    };
    let (key, value) = s[kv_at..]
        .split_once('=')
        .ok_or_else(|| format!("--annotation {s:?}: use [TYPE:]KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("--annotation {s:?}: the key is empty"));
    }
    let mut out = Vec::new();
    for t in types.unwrap_or("manifest").split(',') {
        let target = match t {
            "manifest" => AnnotationTarget::Manifest,
            "manifest-descriptor" => AnnotationTarget::ManifestDescriptor,
            "index" | "index-descriptor" => {
                return Err(format!(
                    "--annotation {s:?}: {t} annotations need a multi-platform index, which \
                     berth-build does not write yet"
                ))
            }
            other if other.contains('[') => {
                return Err(format!(
                    "--annotation {s:?}: per-platform annotations ({other}) are not supported"
                ))
            }
            other => {
                return Err(format!(
                    "--annotation {s:?}: unknown type {other:?}: use manifest or \
                     manifest-descriptor"
                ))
            }
        };
        out.push(Annotation {
            target,
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(out)
}

/// The annotations of `anns` for `target`, or None when there are none.
pub fn annotations_for(
    anns: &[Annotation],
    target: AnnotationTarget,
) -> Option<BTreeMap<String, String>> {
    let m: BTreeMap<String, String> = anns
        .iter()
        .filter(|a| a.target == target)
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    (!m.is_empty()).then_some(m)
}

/// Parses a `--label KEY=VALUE`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("--label {s:?}: use KEY=VALUE")),
    }
}

/// The `--metadata-file` JSON, with buildx's keys for an image build.
pub fn metadata_json(
    manifest: &Descriptor,
    config: &Digest,
    names: &[String],
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "containerimage.config.digest": config.to_string(),
        "containerimage.digest": manifest.digest.to_string(),
        "containerimage.descriptor": manifest,
    });
    if !names.is_empty() {
        v["image.name"] = serde_json::Value::String(names.join(","));
    }
    v
}

/// Writes one output of the built `image` (its blobs in `store`), named
/// `names`; `blobs` are every blob of the image. The OCI outputs list
/// `top`: the image manifest, or an index of it and its attestations. A file output appears
/// only when complete; a directory output that fails is removed if this
/// call created it.
pub fn write(
    store: &Store,
    image: &ResolvedImage,
    top: &Descriptor,
    blobs: &[Digest],
    names: &[String],
    epoch: Option<i64>,
    out: &Output,
) -> Result<(), OutputError> {
    if let Some(redirected) = via_scratch(out, Path::new("")) {
        // dest=-: the archive is made in scratch space, then streamed.
        let scratch = store.scratch("stdout")?;
        let tmp = scratch.path().join("out.tar");
        let redirected = via_scratch(out, &tmp).unwrap_or(redirected);
        write(store, image, top, blobs, names, epoch, &redirected)?;
        let io_err = |e| OciError::io("stdout", e);
        let mut f = fs::File::open(&tmp).map_err(io_err)?;
        let mut stdout = std::io::stdout().lock();
        std::io::copy(&mut f, &mut stdout).map_err(io_err)?;
        std::io::Write::flush(&mut stdout).map_err(io_err)?;
        return Ok(());
    }
    let layout = store.layout();
    match out {
        Output::Oci(dir) => {
            let dest = Layout::create(dir)?;
            for d in blobs {
                if !dest.has_blob(d) {
                    let mut f = layout.open_blob(d)?;
                    dest.import_blob(&mut f, d, None)?;
                }
            }
            if names.is_empty() {
                dest.add_to_index(top.clone())?;
            }
            for t in names {
                dest.add_to_index(named(top, t))?;
            }
            Ok(())
        }
        Output::OciArchive(file) => {
            let d = match names.first() {
                Some(t) => named(top, t),
                None => top.clone(),
            };
            Ok(oci::write_archive(
                layout,
                &d,
                blobs,
                file,
                epoch.unwrap_or(0),
            )?)
        }
        Output::Docker(file) => {
            let images: Vec<(StoredImage, ResolvedImage)> = if names.is_empty() {
                vec![(
                    StoredImage {
                        name: String::new(),
                        manifest: image.descriptor.clone(),
                    },
                    image.clone(),
                )]
            } else {
                names
                    .iter()
                    .map(|n| {
                        (
                            StoredImage {
                                name: n.clone(),
                                manifest: image.descriptor.clone(),
                            },
                            image.clone(),
                        )
                    })
                    .collect()
            };
            Ok(crate::images::write_docker_archive(layout, &images, file)?)
        }
        Output::Local(dir) => {
            let created = !dir.exists();
            let r = oci::unpack(layout, image, dir);
            if r.is_err() && created {
                let _ = fs::remove_dir_all(dir);
            }
            Ok(r?)
        }
        Output::Tar(file) => {
            let scratch = store.scratch("export")?;
            let tree = scratch.path().join("rootfs");
            oci::unpack(layout, image, &tree)?;
            let tmp = tmp_sibling(file);
            let io_err = |e| OciError::io(file.display(), e);
            let r = (|| -> Result<(), OutputError> {
                let f = fs::File::create(&tmp).map_err(io_err)?;
                layer::write_layer(&tree, epoch, Compression::None, f)?;
                Ok(fs::rename(&tmp, file).map_err(io_err)?)
            })();
            if r.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            r
        }
    }
}

/// True when one of `outputs` goes to stdout (then nothing else may).
pub fn writes_stdout(outputs: &[Output]) -> bool {
    outputs
        .iter()
        .any(|o| via_scratch(o, Path::new("")).is_some())
}

/// For an archive output to stdout (`dest=-`): the same output into `tmp`.
fn via_scratch(out: &Output, tmp: &Path) -> Option<Output> {
    let stdout = |p: &Path| p == Path::new("-");
    match out {
        Output::OciArchive(p) if stdout(p) => Some(Output::OciArchive(tmp.to_path_buf())),
        Output::Docker(p) if stdout(p) => Some(Output::Docker(tmp.to_path_buf())),
        Output::Tar(p) if stdout(p) => Some(Output::Tar(tmp.to_path_buf())),
        _ => None,
    }
}

fn named(desc: &Descriptor, name: &str) -> Descriptor {
    let mut d = desc.clone();
    let mut a = d.annotations.take().unwrap_or_default();
    a.extend(ref_annotations(name));
    d.annotations = Some(a);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(s: &str) -> Option<Output> {
        parse_output(s).expect(s).output
    }

    #[test]
    fn outputs_parse_as_buildx_does() {
        assert_eq!(out("type=oci,dest=d"), Some(Output::Oci("d".into())));
        assert_eq!(
            out("type=oci,dest=d.tar,tar=true"),
            Some(Output::OciArchive("d.tar".into()))
        );
        assert_eq!(
            out("type=oci-archive,dest=f"),
            Some(Output::OciArchive("f".into()))
        );
        assert_eq!(out("type=docker,dest=f"), Some(Output::Docker("f".into())));
        assert_eq!(out("type=local,dest=x"), Some(Output::Local("x".into())));
        assert_eq!(out("outdir"), Some(Output::Local("outdir".into())));
        assert_eq!(
            out("type=tar,dest=t.tar"),
            Some(Output::Tar("t.tar".into()))
        );
        let r = parse_output("type=registry,\"name=a:1,b:2\"").expect("registry");
        assert_eq!((r.output, r.names.len(), r.push), (None, 2, true));
        let i = parse_output("type=image,name=x").expect("image");
        assert!(!i.push);
        assert!(parse_output("type=image,name=x,push=true").expect("p").push);
    }

    #[test]
    fn bad_outputs_name_what_to_fix() {
        for (s, want) in [
            ("type=local", "needs dest"),
            ("type=image", "needs name"),
            ("type=nope,dest=x", "unsupported type"),
            ("type=oci,dest=x,compression=zstd", "compression"),
            ("type=local,dest=-", "stdout"),
            ("", "give DIR"),
            ("type=local,dest=x,push=true", "push="),
            ("type=tar,dest=x,tar=true", "tar="),
            ("type=oci,dest=\"x", "quote"),
            ("dest=x", "type="),
        ] {
            let e = parse_output(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn annotations_and_labels() {
        let a = parse_annotation("org.opencontainers.image.title=x=y").expect("a");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].target, AnnotationTarget::Manifest);
        assert_eq!(
            (a[0].key.as_str(), a[0].value.as_str()),
            ("org.opencontainers.image.title", "x=y")
        );
        let b = parse_annotation("manifest,manifest-descriptor:k=v").expect("b");
        assert_eq!(b.len(), 2);
        assert_eq!(
            annotations_for(&b, AnnotationTarget::ManifestDescriptor)
                .expect("d")
                .get("k")
                .map(String::as_str),
            Some("v")
        );
        assert!(parse_annotation("index:k=v").is_err());
        assert!(parse_annotation("manifest[linux/amd64]:k=v").is_err());
        assert!(parse_annotation("novalue").is_err());
        assert!(parse_annotation("=v").is_err());
        // A colon inside the value or an URL-ish key is not a type.
        let c = parse_annotation("k=http://x").expect("c");
        assert_eq!(c[0].value, "http://x");
        assert_eq!(parse_label("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_label("x").is_err());
    }
}
