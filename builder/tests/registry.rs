//! berth-build against real registries: Debian's docker-registry started by
//! hack/with-registry.sh (plain HTTP, TLS with a private CA, htpasswd
//! basic auth on TLS), with skopeo and podman on the other side.
//!
//! Root only; skipped (with the reason) when docker-registry, skopeo,
//! openssl, htpasswd or busybox-static is missing, except under CI=true.
//! Each test has its own registries (stopped by PID on drop, failure or
//! not), its own store and temporary directory.

mod support;
use support::*;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_build::digest::Digest;

/// Whether the test can run here (root, busybox-static, jq, the registry's tools and
/// `extra`); under CI it must.
fn runnable(extra: &[&str]) -> bool {
    let tools: Vec<&str> = ["docker-registry", "skopeo", "openssl", "htpasswd"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    can_build(&tools)
}

/// Three registries in `dir`, stopped on drop.
struct Registries {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Registries {
    fn start(dir: &Path) -> Registries {
        check(
            "with-registry.sh start",
            &Command::new(workspace().join("hack/with-registry.sh"))
                .arg("start")
                .arg(dir)
                .output()
                .expect("with-registry.sh"),
        );
        let env = std::fs::read_to_string(dir.join("env"))
            .expect("env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Registries {
            dir: dir.to_path_buf(),
            env,
        }
    }

    fn get(&self, k: &str) -> &str {
        self.env.get(k).map(String::as_str).expect("env key")
    }
}

impl Drop for Registries {
    fn drop(&mut self) {
        let _ = Command::new(workspace().join("hack/with-registry.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// A berth-build store with the registries' CA dir and a private auth
/// file. HOME is the store's parent directory, and its `bin/` (where a
/// test puts credential helpers) is first on PATH.
struct Builder {
    root: PathBuf,
    certs: String,
    auth: PathBuf,
}

impl Builder {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth-build"));
        c.arg("--root")
            .arg(&self.root)
            .arg("--certs-dir")
            .arg(&self.certs)
            .args(args)
            .env("REGISTRY_AUTH_FILE", &self.auth)
            .env_remove("XDG_RUNTIME_DIR")
            .env(
                "HOME",
                self.root.parent().unwrap_or(Path::new("/nonexistent")),
            );
        if let Some(bin) = self.root.parent().map(|p| p.join("bin")) {
            let path = std::env::var("PATH").unwrap_or_default();
            c.env("PATH", format!("{}:{path}", bin.display()));
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("berth-build")
    }

    fn ok(&self, args: &[&str]) -> String {
        check(&format!("berth-build {}", args.join(" ")), &self.run(args))
    }

    /// Fails, naming `reference` and `what`; leaves no tag, no new blob
    /// and nothing in tmp/ or partial/.
    fn fails(&self, args: &[&str], reference: &str, what: &str) -> String {
        let before = self.blobs();
        let out = self.run(args);
        let err = text(&out.stderr);
        assert!(
            !out.status.success(),
            "berth-build {} succeeded:\n{err}",
            args.join(" ")
        );
        assert!(
            err.contains(reference),
            "error does not name {reference}: {err}"
        );
        assert!(err.contains(what), "error does not say {what:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(self.blobs(), before, "blobs changed after: {err}");
        let images = self.ok(&["images"]);
        assert!(!images.contains(reference), "{reference} tagged: {images}");
        for sub in ["tmp", "partial"] {
            let n = std::fs::read_dir(self.root.join(sub))
                .map(|r| r.count())
                .unwrap_or(0);
            assert_eq!(n, 0, "{sub}/ not empty after: {err}");
        }
        err
    }

    fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("blobs/sha256"))
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn skopeo(args: &[&str]) -> String {
    check(
        &format!("skopeo {}", args.join(" ")),
        &Command::new("skopeo").args(args).output().expect("skopeo"),
    )
}

/// The sha256 of the manifest the registry serves for `image`.
fn remote_digest(image: &str, tls: &[&str]) -> String {
    let mut args = vec!["inspect", "--raw"];
    args.extend_from_slice(tls);
    let d = format!("docker://{image}");
    args.push(&d);
    let out = Command::new("skopeo").args(&args).output().expect("skopeo");
    format!("{}", Digest::of(&out.stdout))
}

/// An OCI layout of busybox-static named `localhost/busybox:latest`.
fn seed(dir: &Path) -> PathBuf {
    let p = dir.join("seed");
    make_seed(&p);
    p
}

fn sha(data: &[u8]) -> Digest {
    Digest::of(data)
}

/// Writes a one-manifest OCI layout at `dir` (tag `t`) with gzip layers
/// made of the raw tar streams `tars`, for `arch`.
fn layout(dir: &Path, tars: &[Vec<u8>], arch: &str) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    let put = |data: &[u8]| -> Digest {
        let d = sha(data);
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), data).expect("blob");
        d
    };
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for t in tars {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(t).expect("gzip");
        let blob = gz.finish().expect("gzip");
        diff_ids.push(sha(t).to_string());
        let d = put(&blob);
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d.to_string(), "size": blob.len()
        }));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .expect("json");
    let c = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": layers
    }))
    .expect("json");
    let m = put(&manifest);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("marker");
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": m.to_string(), "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "t"}}]
        }))
        .expect("json"),
    )
    .expect("index");
}

/// One raw tar entry (the name written as is, so `..` and `/` pass).
fn entry(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    if matches!(kind, tar::EntryType::Char) {
        let _ = h.set_device_major(1);
        let _ = h.set_device_minor(3);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn finish_tar(mut v: Vec<u8>) -> Vec<u8> {
    v.extend(std::iter::repeat_n(0u8, 1024));
    v
}

#[test]
fn pull_build_push_round_trip_with_skopeo_and_podman() {
    if !runnable(&["podman"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let regs = Registries::start(&tmp.path().join("reg"));
    let (plain, tls) = (regs.get("REG_PLAIN"), regs.get("REG_TLS"));
    let certs = regs.get("REG_CERTS_D");
    let b = Builder {
        root: tmp.path().join("store"),
        certs: certs.to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let seed = seed(tmp.path());
    let src = format!("oci:{}:localhost/busybox:latest", seed.display());
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{plain}/busybox:1.0"),
    ]);
    let seed_digest = remote_digest(&format!("{plain}/busybox:1.0"), &["--tls-verify=false"]);

    // Pull by tag: the stored manifest is the registry's, byte for byte.
    let base = format!("{plain}/busybox:1.0");
    let got = b.ok(&["pull", "--progress", "plain", &base]);
    assert_eq!(got.trim(), seed_digest);
    // Again: nothing is fetched twice.
    let again = b.run(&["pull", "--progress", "plain", &base]);
    let err = text(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("0 blobs") && !err.contains(" done"), "{err}");
    // By digest.
    let by_digest = format!("{plain}/busybox@{seed_digest}");
    assert_eq!(b.ok(&["pull", "-q", &by_digest]).trim(), seed_digest);

    // Build FROM the registry image (pulled on demand into a fresh store
    // too) and push with --push.
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN echo from-berth > /msg\nCMD [\"cat\", \"/msg\"]\n"),
    )
    .expect("Dockerfile");
    let app = format!("{plain}/team/app:v1");
    let fresh = Builder {
        root: tmp.path().join("store2"),
        certs: certs.to_string(),
        auth: b.auth.clone(),
    };
    let built = fresh.ok(&[
        "build",
        "-q",
        "--push",
        "-t",
        &app,
        ctx.to_str().expect("utf8"),
    ]);
    let built = built.trim().to_string();
    assert_eq!(remote_digest(&app, &["--tls-verify=false"]), built);
    // --pull=never with an image not in the store fails and names it.
    let never = Builder {
        root: tmp.path().join("store3"),
        certs: certs.to_string(),
        auth: b.auth.clone(),
    };
    let out = never.run(&["build", "-q", "--pull=never", ctx.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&base), "{}", text(&out.stderr));

    // skopeo copies it back; digests agree.
    let back = tmp.path().join("back");
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{app}"),
        &format!("oci:{}:app", back.display()),
    ]);
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(idx["manifests"][0]["digest"].as_str(), Some(built.as_str()));

    // Push to the TLS registry in small chunks; to another repository of
    // the same registry by cross-repository mount.
    let chunked = format!("{tls}/app:chunked");
    let out = fresh.run(&[
        "push",
        "--progress",
        "plain",
        "--chunk-size",
        "65536",
        &app,
        &chunked,
    ]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("uploaded"), "{err}");
    let tls_flags = format!("--cert-dir={certs}/{tls}");
    assert_eq!(remote_digest(&chunked, &[&tls_flags]), built);
    let mounted = format!("{plain}/other/app:v1");
    let out = fresh.run(&["push", "--progress", "plain", &app, &mounted]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("3 mounted"), "{err}");
    assert_eq!(remote_digest(&mounted, &["--tls-verify=false"]), built);
    // Pushing again uploads nothing.
    let out = fresh.run(&["push", "--progress", "plain", &app]);
    assert!(
        text(&out.stderr).contains("3 already there"),
        "{}",
        text(&out.stderr)
    );

    // tag, inspect, save (OCI and Docker archives), load.
    fresh.ok(&["tag", &app, "local/app:copy"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&fresh.ok(&["inspect", "local/app:copy"])).expect("inspect json");
    assert_eq!(inspect["Digest"].as_str(), Some(built.as_str()));
    assert_eq!(inspect["Config"]["config"]["Cmd"][0].as_str(), Some("cat"));
    let images = fresh.ok(&["images"]);
    assert!(
        images.contains("local/app:copy") && images.contains("CREATED"),
        "{images}"
    );
    for (format, file) in [("oci-archive", "a.tar"), ("docker-archive", "d.tar")] {
        let f = tmp.path().join(file);
        fresh.ok(&[
            "save",
            "--format",
            format,
            "-o",
            f.to_str().expect("utf8"),
            "local/app:copy",
        ]);
        let other = Builder {
            root: tmp.path().join(format!("store-{file}")),
            certs: certs.to_string(),
            auth: b.auth.clone(),
        };
        let loaded = other.ok(&["load", "-i", f.to_str().expect("utf8")]);
        assert!(loaded.contains("local/app:copy"), "{loaded}");
        let v: serde_json::Value =
            serde_json::from_str(&other.ok(&["inspect", "local/app:copy"])).expect("json");
        assert_eq!(v["Id"], inspect["Id"], "{format}");
    }
    let f = tmp.path().join("a.tar");
    let list = Command::new("tar")
        .arg("-xOf")
        .arg(&f)
        .arg("index.json")
        .output()
        .expect("tar");
    let idx: serde_json::Value = serde_json::from_slice(&list.stdout).expect("index");
    let ann = &idx["manifests"][0]["annotations"];
    assert_eq!(
        ann["org.opencontainers.image.ref.name"].as_str(),
        Some("local/app:copy")
    );
    assert_eq!(
        ann["io.containerd.image.name"].as_str(),
        Some("docker.io/local/app:copy")
    );

    // podman pulls what berth pushed and runs it with berth.
    let Some(berth) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("berth")))
        .filter(|p| p.exists())
    else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the berth binary is not built");
        }
        eprintln!("skipping the podman part: berth is not built (cargo build -p berth)");
        return;
    };
    let podman = Podman {
        dir: tmp.path().join("podman"),
        berth,
    };
    check(
        "podman pull",
        &podman.run(&["pull", "-q", "--tls-verify=false", &app]),
    );
    let r = check(
        "podman run",
        &podman.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            "seccomp=unconfined",
            "--pull=never",
            &app,
        ]),
    );
    assert_eq!(r, "from-berth\n");
}

#[test]
fn tls_auth_platforms_and_docker_manifests() {
    if !runnable(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let regs = Registries::start(&tmp.path().join("reg"));
    let (plain, tls, auth) = (
        regs.get("REG_PLAIN"),
        regs.get("REG_TLS"),
        regs.get("REG_AUTH"),
    );
    let certs = regs.get("REG_CERTS_D");
    let b = Builder {
        root: tmp.path().join("store"),
        certs: certs.to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let seed = seed(tmp.path());
    let src = format!("oci:{}:localhost/busybox:latest", seed.display());
    let ca = |host: &str| format!("--dest-cert-dir={certs}/{host}");
    skopeo(&[
        "copy",
        "-q",
        &ca(tls),
        &src,
        &format!("docker://{tls}/busybox:1"),
    ]);
    let creds = format!("--dest-creds=berth:{}", regs.get("REG_PASSWORD"));
    skopeo(&[
        "copy",
        "-q",
        &ca(auth),
        &creds,
        &src,
        &format!("docker://{auth}/busybox:1"),
    ]);

    // TLS: with the CA from the certs dir; without it a clear error.
    let tls_img = format!("{tls}/busybox:1");
    b.ok(&["pull", "-q", &tls_img]);
    let no_ca = Builder {
        root: tmp.path().join("store-noca"),
        certs: tmp.path().join("none").display().to_string(),
        auth: b.auth.clone(),
    };
    no_ca.fails(&["pull", &tls_img], &tls_img, "ca.crt");
    // --insecure-registry: the certificate is not checked.
    no_ca.ok(&["pull", "-q", "--insecure-registry", tls, &tls_img]);

    // Basic auth: 401 without credentials, refused password, login/logout.
    let auth_img = format!("{auth}/busybox:1");
    let e = b.fails(&["pull", &auth_img], &auth_img, "unauthorized");
    assert!(e.contains("login"), "{e}");
    let mut bad = b.cmd(&["login", "-u", "berth", "--password-stdin", auth]);
    let out = bad
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            if let Some(mut s) = c.stdin.take() {
                s.write_all(b"wrong\n")?;
            }
            c.wait_with_output()
        })
        .expect("login");
    assert!(
        !out.status.success(),
        "login with a wrong password succeeded"
    );
    assert!(!b.auth.exists(), "wrong credentials were stored");
    b.ok(&["login", "-u", "berth", "-p", regs.get("REG_PASSWORD"), auth]);
    b.ok(&["pull", "-q", &auth_img]);
    b.ok(&["push", "-q", &auth_img, &format!("{auth}/pushed:1")]);
    b.ok(&["logout", auth]);
    b.ok(&["rm", &auth_img]);
    b.fails(&["pull", &auth_img], &auth_img, "unauthorized");

    // Docker schema 2: stored as OCI, same config.
    skopeo(&[
        "copy",
        "-q",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{plain}/docker:v2"),
    ]);
    let docker_img = format!("{plain}/docker:v2");
    b.ok(&["pull", "-q", &docker_img]);
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["inspect", &docker_img])).expect("json");
    assert_eq!(
        v["Manifest"]["mediaType"].as_str(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        v["Manifest"]["layers"][0]["mediaType"].as_str(),
        Some("application/vnd.oci.image.layer.v1.tar+gzip")
    );

    // A multi-arch index: the host's manifest, --platform, or an error
    // listing what there is.
    let multi = tmp.path().join("multi");
    let bb_layer = {
        let tar = Command::new("tar")
            .args(["-C", "/", "-cf", "-", "bin/busybox"])
            .output()
            .expect("tar");
        tar.stdout
    };
    let arm = tmp.path().join("arm");
    layout(&arm, &[bb_layer], "arm64");
    // Index = the seed's amd64 manifest + the arm64 one, both in `multi`.
    check(
        "cp",
        &Command::new("cp")
            .arg("-a")
            .arg(&seed)
            .arg(&multi)
            .output()
            .expect("cp"),
    );
    check(
        "cp",
        &Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cp {}/blobs/sha256/* {}/blobs/sha256/",
                arm.display(),
                multi.display()
            ))
            .output()
            .expect("cp"),
    );
    let read_index = |d: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("index.json")).expect("index")).expect("json")
    };
    let mut amd = read_index(&multi)["manifests"][0].clone();
    let mut arm_d = read_index(&arm)["manifests"][0].clone();
    amd["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    arm_d["platform"] = serde_json::json!({"os": "linux", "architecture": "arm64"});
    for d in [&mut amd, &mut arm_d] {
        if let Some(o) = d.as_object_mut() {
            o.remove("annotations");
        }
    }
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd.clone(), arm_d.clone()]
    }))
    .expect("json");
    let inner_d = sha(&inner);
    std::fs::write(multi.join("blobs/sha256").join(inner_d.hex()), &inner).expect("index blob");
    std::fs::write(
        multi.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": inner_d.to_string(), "size": inner.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
        }))
        .expect("json"),
    )
    .expect("index");
    let multi_img = format!("{plain}/multi:1");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", multi.display()),
        &format!("docker://{multi_img}"),
    ]);
    let host = b.ok(&["pull", "-q", &multi_img]);
    assert_eq!(host.trim(), amd["digest"].as_str().expect("digest"));
    let armd = b.ok(&["pull", "-q", "--platform", "linux/arm64", &multi_img]);
    assert_eq!(armd.trim(), arm_d["digest"].as_str().expect("digest"));
    let other = Builder {
        root: tmp.path().join("store-s390x"),
        certs: certs.to_string(),
        auth: b.auth.clone(),
    };
    let e = other.fails(
        &[
            "pull",
            "--platform",
            "linux/s390x",
            &format!("{plain}/multi:1"),
        ],
        &multi_img,
        "linux/s390x",
    );
    assert!(e.contains("linux/amd64, linux/arm64"), "{e}");
}

/// Where docker-registry keeps blob `digest`'s data.
fn registry_blob(storage: &str, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    Path::new(storage).join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

#[test]
fn bad_registry_content_is_rejected_and_leaves_nothing() {
    if !runnable(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let regs = Registries::start(&tmp.path().join("reg"));
    let plain = regs.get("REG_PLAIN");
    let storage = regs.get("REG_STORAGE_PLAIN");
    let b = Builder {
        root: tmp.path().join("store"),
        certs: regs.get("REG_CERTS_D").to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let seed = seed(tmp.path());
    let src = format!("oci:{}:localhost/busybox:latest", seed.display());
    let push = |name: &str| {
        skopeo(&[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &src,
            &format!("docker://{plain}/{name}"),
        ])
    };
    let seed_manifest: serde_json::Value = {
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(seed.join("index.json")).expect("i")).expect("j");
        let d = idx["manifests"][0]["digest"]
            .as_str()
            .expect("d")
            .trim_start_matches("sha256:")
            .to_string();
        serde_json::from_slice(&std::fs::read(seed.join("blobs/sha256").join(d)).expect("m"))
            .expect("j")
    };
    let layer = seed_manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .to_string();
    let layer_size = seed_manifest["layers"][0]["size"].as_u64().expect("size");

    // Missing tag.
    push("busybox:1");
    let missing = format!("{plain}/busybox:nope");
    b.fails(&["pull", &missing], &missing, "not found");
    let missing_repo = format!("{plain}/nothing/here:1");
    b.fails(&["pull", &missing_repo], &missing_repo, "not found");

    // Resume: the first half of the layer is already in partial/; the
    // registry is asked for the rest (206) and the blob verifies.
    let partial = b.root.join("partial");
    std::fs::create_dir_all(&partial).expect("partial");
    let full = std::fs::read(registry_blob(storage, &layer)).expect("registry blob");
    let half = full.len() / 2;
    std::fs::write(
        partial.join(layer.trim_start_matches("sha256:")),
        &full[..half],
    )
    .expect("half");
    let img = format!("{plain}/busybox:1");
    let out = b.run(&["--debug", "pull", "-q", &img]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("server resumed (206)") && err.contains(&format!("offset={half}")),
        "{err}"
    );
    b.ok(&["rm", &img]);
    b.ok(&["prune"]);
    assert!(b.blobs().is_empty(), "{:?}", b.blobs());

    // A blob whose content is not its digest (same size).
    push("corrupt:1");
    let data_path = registry_blob(storage, &layer);
    let mut bytes = std::fs::read(&data_path).expect("blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data_path, &bytes).expect("corrupt");
    let corrupt = format!("{plain}/corrupt:1");
    b.fails(&["pull", &corrupt], &corrupt, "digest mismatch");
    // Truncated.
    std::fs::write(&data_path, &full[..full.len() - 100]).expect("truncate");
    let e = b.fails(
        &["pull", &corrupt],
        &corrupt,
        &format!("expected {layer_size} bytes"),
    );
    assert!(e.contains(&layer), "{e}");
    std::fs::write(&data_path, &full).expect("restore");

    // A manifest for another platform only.
    let arm = tmp.path().join("arm");
    let mut t = Vec::new();
    entry(&mut t, "hello", tar::EntryType::Regular, "", b"hi\n");
    layout(&arm, &[finish_tar(t)], "arm64");
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:t", arm.display()),
        &format!("docker://{plain}/armonly:1"),
    ]);
    let armonly = format!("{plain}/armonly:1");
    let e = b.fails(
        &["pull", &armonly],
        &armonly,
        "no manifest for platform linux/",
    );
    assert!(e.contains("linux/arm64"), "{e}");

    // Malicious layers.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "absolute",
            {
                let mut t = Vec::new();
                entry(&mut t, "/etc/evil", tar::EntryType::Regular, "", b"x");
                t
            },
            "absolute",
        ),
        (
            "dotdot",
            {
                let mut t = Vec::new();
                entry(&mut t, "a/../../evil", tar::EntryType::Regular, "", b"x");
                t
            },
            "`..`",
        ),
        (
            "symlink-out",
            {
                let mut t = Vec::new();
                entry(&mut t, "out", tar::EntryType::Symlink, "/tmp", b"");
                entry(&mut t, "out/evil", tar::EntryType::Regular, "", b"x");
                t
            },
            "out/evil",
        ),
        (
            "hardlink-out",
            {
                let mut t = Vec::new();
                entry(
                    &mut t,
                    "passwd",
                    tar::EntryType::Link,
                    "../../../etc/passwd",
                    b"",
                );
                t
            },
            "passwd",
        ),
        (
            "device",
            {
                let mut t = Vec::new();
                entry(&mut t, "dev/", tar::EntryType::Directory, "", b"");
                entry(&mut t, "dev/evil", tar::EntryType::Char, "", b"");
                t
            },
            "device nodes are not allowed",
        ),
        (
            "whiteout-out",
            {
                let mut t = Vec::new();
                entry(&mut t, "etc", tar::EntryType::Symlink, "/etc", b"");
                entry(&mut t, "etc/.wh.passwd", tar::EntryType::Regular, "", b"");
                t
            },
            "etc/.wh.passwd",
        ),
    ];
    for (name, tar_bytes, what) in cases {
        let dir = tmp.path().join(format!("evil-{name}"));
        layout(&dir, &[finish_tar(tar_bytes)], "amd64");
        let reference = format!("{plain}/evil/{name}:1");
        skopeo(&[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}:t", dir.display()),
            &format!("docker://{reference}"),
        ]);
        let e = b.fails(&["pull", &reference], &reference, what);
        assert!(e.contains("rejected"), "{name}: {e}");
        assert!(!Path::new("/tmp/evil").exists() && !Path::new("/evil").exists());
        // FROM the same image fails the build the same way.
        let ctx = tmp.path().join(format!("ctx-{name}"));
        std::fs::create_dir_all(&ctx).expect("ctx");
        std::fs::write(ctx.join("Dockerfile"), format!("FROM {reference}\n")).expect("df");
        b.fails(
            &["build", "-q", ctx.to_str().expect("utf8")],
            &reference,
            what,
        );
    }
    assert!(Path::new("/etc/passwd").exists());

    // A layer whose content is not the config's diff id: the pull stores
    // what the registry served (blob digests hold; the diff id is checked
    // where the content is read), and the first use refuses it, leaving no
    // unpacked layer behind.
    let lying = tmp.path().join("lying");
    let mut t = Vec::new();
    entry(&mut t, "file", tar::EntryType::Regular, "", b"content");
    layout(&lying, &[finish_tar(t)], "amd64");
    rewrite_diff_id(&lying, &sha(b"something else").to_string());
    let reference = format!("{plain}/lying:1");
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:t", lying.display()),
        &format!("docker://{reference}"),
    ]);
    b.ok(&["pull", "-q", &reference]);
    let bundle = tmp.path().join("lying-bundle");
    let out = b.run(&[
        "unpack",
        "--overlay",
        &reference,
        bundle.to_str().expect("utf8"),
    ]);
    let e = text(&out.stderr);
    assert!(!out.status.success(), "{e}");
    assert!(e.contains("the image config says"), "{e}");
    let layers = std::fs::read_dir(b.root.join("layers"))
        .expect("layers")
        .count();
    assert_eq!(layers, 1, "only layers/empty: {e}");
    let out = b.run(&["unpack", &reference, bundle.to_str().expect("utf8")]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("diff_id"),
        "{}",
        text(&out.stderr)
    );
}

/// Replaces the first diff id in the config of the one-image layout `dir`
/// (rewriting config, manifest and index).
fn rewrite_diff_id(dir: &Path, diff_id: &str) {
    let blobs = dir.join("blobs/sha256");
    let read = |d: &str| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(blobs.join(d.trim_start_matches("sha256:"))).expect("blob"),
        )
        .expect("json")
    };
    let put = |v: &serde_json::Value| -> (String, usize) {
        let data = serde_json::to_vec(v).expect("json");
        let d = sha(&data);
        std::fs::write(blobs.join(d.hex()), &data).expect("blob");
        (d.to_string(), data.len())
    };
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("json");
    let mut manifest = read(index["manifests"][0]["digest"].as_str().expect("digest"));
    let mut config = read(manifest["config"]["digest"].as_str().expect("digest"));
    config["rootfs"]["diff_ids"][0] = diff_id.into();
    let (cd, cs) = put(&config);
    manifest["config"]["digest"] = cd.into();
    manifest["config"]["size"] = cs.into();
    let (md, ms) = put(&manifest);
    index["manifests"][0]["digest"] = md.into();
    index["manifests"][0]["size"] = ms.into();
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index");
}

#[test]
fn unpack_overlay_shares_the_store_layers() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/bin/busybox").exists() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "needs root and busybox-static"
        );
        eprintln!("skipping: needs root and busybox-static");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = Builder {
        root: tmp.path().join("store"),
        certs: tmp.path().display().to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let seed = seed(tmp.path());
    let archive = tmp.path().join("seed.tar");
    check(
        "tar",
        &Command::new("tar")
            .arg("-C")
            .arg(&seed)
            .arg("-cf")
            .arg(&archive)
            .arg(".")
            .output()
            .expect("tar"),
    );
    b.ok(&["load", "-i", archive.to_str().expect("utf8")]);
    let bundle = tmp.path().join("bundle");
    b.ok(&[
        "unpack",
        "--overlay",
        "localhost/busybox:latest",
        bundle.to_str().expect("utf8"),
    ]);
    assert!(bundle.join("rootfs/bin/busybox").exists());
    assert!(bundle.join("config.json").exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        mounts.contains(bundle.join("rootfs").to_str().expect("utf8")),
        "not mounted"
    );
    // Writes go to the bundle's upper dir, never into the store.
    std::fs::write(bundle.join("rootfs/new-file"), b"x").expect("write");
    assert!(bundle.join("upper/new-file").exists());
    // prune keeps the layers the bundle uses.
    b.ok(&["rm", "localhost/busybox:latest"]);
    b.ok(&["prune"]);
    assert!(bundle.join("rootfs/bin/busybox").exists());
    // unmount removes the bundle; then prune frees the layers.
    b.ok(&["unmount", bundle.to_str().expect("utf8")]);
    assert!(!bundle.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(bundle.to_str().expect("utf8")));
    let out = b.ok(&["prune"]);
    assert!(out.contains("1 unpacked layers"), "{out}");
}

#[test]
fn outputs_are_found_by_name_by_skopeo_umoci_and_ctr() {
    if !runnable(&["umoci", "containerd", "ctr"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = Builder {
        root: tmp.path().join("store"),
        certs: tmp.path().display().to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let seed = seed(tmp.path());
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM oci:{}\nCMD [\"true\"]\n", seed.display()),
    )
    .expect("Dockerfile");
    let (dir, archive) = (tmp.path().join("out"), tmp.path().join("out.tar"));
    let digest = b.ok(&[
        "build",
        "-q",
        "-t",
        "names-test:1",
        "-o",
        &format!("type=oci,dest={}", dir.display()),
        "-o",
        &format!("type=oci-archive,dest={}", archive.display()),
        ctx.to_str().expect("utf8"),
    ]);
    let digest = digest.trim();
    let v: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("oci:{}:names-test:1", dir.display()),
    ]))
    .expect("json");
    assert_eq!(v["Digest"].as_str(), Some(digest));
    check(
        "umoci unpack",
        &Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:names-test:1", dir.display()))
            .arg(tmp.path().join("umoci-bundle"))
            .output()
            .expect("umoci"),
    );
    assert!(tmp.path().join("umoci-bundle/rootfs/bin/busybox").exists());
    let listed = check(
        "ctr images import",
        &Command::new(workspace().join("hack/with-containerd.sh"))
            .arg(tmp.path().join("containerd"))
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg(format!(
                "$CTR images import {} >/dev/null && $CTR images ls -q",
                archive.display()
            ))
            .output()
            .expect("with-containerd.sh"),
    );
    assert!(
        listed
            .lines()
            .any(|l| l == "docker.io/library/names-test:1"),
        "{listed}"
    );
}

/// Serves the seed image as registry `fake:1`, but the first transfer of
/// the layer stops half-way (what a dropped connection looks like; the
/// real registry cannot be made to do it). Records each request line and
/// its Range header.
fn fake_registry(seed: &Path, log: std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> u16 {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let blob = |d: &str| {
        std::fs::read(
            seed.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .expect("blob")
    };
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(seed.join("index.json")).expect("index"))
            .expect("json");
    let mdigest = idx["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let manifest = blob(&mdigest);
    let m: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
    let config_d = m["config"]["digest"].as_str().expect("c").to_string();
    let layer_d = m["layers"][0]["digest"].as_str().expect("l").to_string();
    let (config, layer) = (blob(&config_d), blob(&layer_d));
    std::thread::spawn(move || {
        let mut cut_once = true;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
                if req.first() == Some(&0x16) {
                    break; // a TLS hello: this server speaks plain HTTP only
                }
            }
            let text = String::from_utf8_lossy(&req).into_owned();
            let line = text.lines().next().unwrap_or("").to_string();
            let range = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Range: bytes=")
                        .or_else(|| l.strip_prefix("range: bytes="))
                })
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            log.lock()
                .expect("log")
                .push(format!("{line} range={range:?}"));
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let send = |s: &mut std::net::TcpStream,
                        status: &str,
                        ctype: &str,
                        extra: &str,
                        body: &[u8],
                        len: usize| {
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body);
            };
            if path == "/v2/" {
                send(&mut s, "200 OK", "application/json", "", b"{}", 2);
            } else if path == "/v2/fake/manifests/1" {
                send(
                    &mut s,
                    "200 OK",
                    "application/vnd.oci.image.manifest.v1+json",
                    "",
                    &manifest,
                    manifest.len(),
                );
            } else if path == format!("/v2/fake/blobs/{config_d}") {
                send(
                    &mut s,
                    "200 OK",
                    "application/octet-stream",
                    "",
                    &config,
                    config.len(),
                );
            } else if path == format!("/v2/fake/blobs/{layer_d}") {
                match range {
                    Some(off) if off < layer.len() => {
                        let extra = format!(
                            "Content-Range: bytes {off}-{}/{}\r\n",
                            layer.len() - 1,
                            layer.len()
                        );
                        send(
                            &mut s,
                            "206 Partial Content",
                            "application/octet-stream",
                            &extra,
                            &layer[off..],
                            layer.len() - off,
                        );
                    }
                    _ if cut_once => {
                        cut_once = false;
                        send(
                            &mut s,
                            "200 OK",
                            "application/octet-stream",
                            "",
                            &layer[..layer.len() / 2],
                            layer.len(),
                        );
                    }
                    _ => send(
                        &mut s,
                        "200 OK",
                        "application/octet-stream",
                        "",
                        &layer,
                        layer.len(),
                    ),
                }
            } else {
                send(&mut s, "404 Not Found", "application/json", "", b"{}", 2);
            }
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    });
    port
}

#[test]
fn interrupted_download_resumes_with_range() {
    if !can_build(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let seed = seed(tmp.path());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = fake_registry(&seed, log.clone());
    let b = Builder {
        root: tmp.path().join("store"),
        certs: tmp.path().display().to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let out = b.ok(&["pull", "-q", &format!("127.0.0.1:{port}/fake:1")]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let log = log.lock().expect("log").clone();
    let resumed = log
        .iter()
        .filter(|l| l.contains("/blobs/") && l.contains("range=Some("))
        .count();
    assert_eq!(resumed, 1, "{log:#?}");
    assert!(
        !log.iter().any(|l| l.contains("range=Some(0)")),
        "resumed from 0: {log:#?}"
    );
}

/// base64url without padding (JWS).
fn b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A DER ECDSA signature (SEQUENCE of two INTEGERs) as JWS's raw r || s.
fn der_to_raw(sig: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 2; // SEQUENCE tag + length (short form for P-256)
    for _ in 0..2 {
        assert_eq!(sig[i], 0x02, "INTEGER expected");
        let len = sig[i + 1] as usize;
        let int = &sig[i + 2..i + 2 + len];
        let int = if int.len() > 32 {
            &int[int.len() - 32..]
        } else {
            int
        };
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        i += 2 + len;
    }
    out
}

/// A registry token (JWT, ES256, the issuer's certificate in x5c) granting
/// pull and push on `repos`.
fn make_token(key: &str, cert: &str, repos: &[&str]) -> String {
    use base64::Engine;
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in", cert])
        .output()
        .expect("openssl");
    let header = serde_json::json!({
        "alg": "ES256", "typ": "JWT",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&der.stdout)]
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let access: Vec<serde_json::Value> = repos
        .iter()
        .map(|r| serde_json::json!({"type": "repository", "name": r, "actions": ["pull", "push"]}))
        .collect();
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": "berth", "aud": "berth-test",
        "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": format!("t{now}"),
        "access": access
    });
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(&header).expect("json")),
        b64url(&serde_json::to_vec(&claims).expect("json"))
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let sig = child.wait_with_output().expect("openssl").stdout;
    format!("{input}.{}", b64url(&der_to_raw(&sig)))
}

/// The token endpoint: `token` for requests with `basic` credentials,
/// 401 otherwise. Records the query strings.
/// The identity token the test token server accepts in a refresh grant.
const IDENTITY_TOKEN: &str = "berth-identity-token-1";

fn token_server(
    port: u16,
    basic: String,
    token: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind token port");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let head_len = req
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4)
                .unwrap_or(req.len());
            let head = String::from_utf8_lossy(&req[..head_len]).into_owned();
            let body_len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while req.len() < head_len + body_len {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let form = String::from_utf8_lossy(&req[head_len..]).into_owned();
            let first = head.lines().next().unwrap_or("").to_string();
            log.lock().expect("log").push(if first.starts_with("POST") {
                format!("{first} {form}")
            } else {
                first.clone()
            });
            // An identity token is exchanged with the refresh-token grant.
            let refresh = first.starts_with("POST")
                && form.contains("grant_type=refresh_token")
                && form.contains(&format!("refresh_token={IDENTITY_TOKEN}"));
            let authorized = head.lines().any(|l| {
                l.to_ascii_lowercase().starts_with("authorization:") && l.ends_with(&basic)
            });
            let (status, body) = if refresh {
                (
                    "200 OK",
                    serde_json::json!({"access_token": token}).to_string(),
                )
            } else if authorized {
                ("200 OK", serde_json::json!({"token": token}).to_string())
            } else {
                (
                    "401 Unauthorized",
                    r#"{"details":"bad or missing credentials"}"#.to_string(),
                )
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
}

#[test]
fn bearer_token_flow() {
    if !runnable(&[]) {
        return;
    }
    use base64::Engine;
    let tmp = tempfile::tempdir().expect("tempdir");
    let regs = Registries::start(&tmp.path().join("reg"));
    let reg = regs.get("REG_TOKEN");
    let port: u16 = regs.get("REG_TOKEN_REALM_PORT").parse().expect("port");
    let password = "token-pw";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("berth:{password}"));
    let token = make_token(
        regs.get("REG_TOKEN_KEY"),
        regs.get("REG_TOKEN_CERT"),
        &["busybox", "pushed"],
    );
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    token_server(port, basic, token, log.clone());
    let b = Builder {
        root: tmp.path().join("store"),
        certs: regs.get("REG_CERTS_D").to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let seed = seed(tmp.path());
    let image = format!("{reg}/busybox:1");
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("--dest-creds=berth:{password}"),
        &format!("oci:{}:localhost/busybox:latest", seed.display()),
        &format!("docker://{image}"),
    ]);
    // Without credentials the token endpoint refuses: a clear error.
    let e = b.fails(&["pull", &image], &image, "unauthorized");
    assert!(e.contains("token endpoint"), "{e}");
    b.ok(&["login", "-u", "berth", "-p", password, reg]);
    b.ok(&["pull", "-q", &image]);
    b.ok(&["push", "-q", &image, &format!("{reg}/pushed:1")]);
    let log = log.lock().expect("log").clone();
    assert!(
        log.iter()
            .any(|l| l.contains("scope=repository%3Abusybox%3Apull")
                || l.contains("scope=repository:busybox:pull")),
        "no pull scope asked for: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("service=berth-test")),
        "{log:#?}"
    );
}

/// A docker credential helper of the test's own (a shell script keeping
/// one file per server URL in `dir/store`, logging each call to
/// `dir/log`), installed as `docker-credential-NAME` in `bin`.
fn install_helper(bin: &Path, dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).expect("bin");
    std::fs::create_dir_all(dir.join("store")).expect("store");
    let script = format!(
        r#"#!/bin/sh
store={store}
input=$(cat)
echo "$1 $input" >>{log}
key() {{ printf %s "$1" | tr -c 'A-Za-z0-9.' _; }}
case $1 in
  get|erase)
    f=$store/$(key "$input")
    if [ ! -f "$f" ]; then echo "credentials not found in native keychain"; exit 1; fi
    if [ "$1" = get ]; then cat "$f"; else rm "$f"; fi ;;
  store)
    url=$(printf %s "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    [ -n "$url" ] || {{ echo "no ServerURL" >&2; exit 1; }}
    printf %s "$input" >"$store/$(key "$url")" ;;
  *) echo "unknown action $1" >&2; exit 1 ;;
esac
"#,
        store = dir.join("store").display(),
        log = dir.join("log").display(),
    );
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).expect("helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir.join("log")
}

#[test]
fn credential_helpers_get_store_erase_and_identity_tokens() {
    if !runnable(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let regs = Registries::start(&tmp.path().join("reg"));
    let (auth, token_reg) = (regs.get("REG_AUTH"), regs.get("REG_TOKEN"));
    let certs = regs.get("REG_CERTS_D");
    let password = regs.get("REG_PASSWORD");
    let b = Builder {
        root: tmp.path().join("store"),
        certs: certs.to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let seed = seed(tmp.path());
    let src = format!("oci:{}:localhost/busybox:latest", seed.display());
    skopeo(&[
        "copy",
        "-q",
        &format!("--dest-cert-dir={certs}/{auth}"),
        &format!("--dest-creds=berth:{password}"),
        &src,
        &format!("docker://{auth}/busybox:1"),
    ]);
    let log = install_helper(
        &tmp.path().join("bin"),
        &tmp.path().join("helper"),
        "berthtest",
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // credHelpers names the helper for this registry only.
    std::fs::write(
        &b.auth,
        serde_json::json!({"credHelpers": {auth: "berthtest"}}).to_string(),
    )
    .expect("auth.json");
    let img = format!("{auth}/busybox:1");
    let e = b.fails(&["pull", &img], &img, "unauthorized");
    assert!(e.contains("no credentials"), "{e}");
    assert!(
        read_log().contains(&format!("get {auth}")),
        "{}",
        read_log()
    );
    // login stores through the helper, and the auth file keeps no secret.
    let out = b.ok(&["login", "-u", "berth", "-p", password, auth]);
    assert!(out.contains("docker-credential-berthtest"), "{out}");
    assert!(
        read_log().contains(&format!(r#""ServerURL":"{auth}""#))
            && read_log().lines().any(|l| l.starts_with("store ")),
        "{}",
        read_log()
    );
    let file = std::fs::read_to_string(&b.auth).expect("auth.json");
    assert!(
        !file.contains(password) && !file.contains("\"auth\""),
        "{file}"
    );
    b.ok(&["pull", "-q", &img]);
    // logout erases it there.
    b.ok(&["logout", auth]);
    assert!(
        read_log().contains(&format!("erase {auth}")),
        "{}",
        read_log()
    );
    b.ok(&["rm", &img]);
    b.ok(&["prune"]);
    b.fails(&["pull", &img], &img, "unauthorized");
    // A helper that fails otherwise is an error naming it and the file.
    std::fs::write(
        &b.auth,
        serde_json::json!({"credHelpers": {auth: "missing-helper"}}).to_string(),
    )
    .expect("auth.json");
    let e = b.fails(&["pull", &img], &img, "docker-credential-missing-helper");
    assert!(e.contains("auth.json") && e.contains("not on PATH"), "{e}");

    // credsStore for every registry; an identity token (user `<token>`)
    // goes through the refresh-token grant of the token endpoint.
    let port: u16 = regs.get("REG_TOKEN_REALM_PORT").parse().expect("port");
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("berth:unused-password")
    };
    let token = make_token(
        regs.get("REG_TOKEN_KEY"),
        regs.get("REG_TOKEN_CERT"),
        &["busybox"],
    );
    let tlog = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    token_server(port, basic.clone(), token, tlog.clone());
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--dest-creds=berth:unused-password",
        &src,
        &format!("docker://{token_reg}/busybox:1"),
    ]);
    std::fs::write(
        &b.auth,
        serde_json::json!({"credsStore": "berthtest"}).to_string(),
    )
    .expect("auth.json");
    let key: String = token_reg
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::write(
        tmp.path().join("helper/store").join(key),
        serde_json::json!({"ServerURL": token_reg, "Username": "<token>", "Secret": IDENTITY_TOKEN})
            .to_string(),
    )
    .expect("stored token");
    let timg = format!("{token_reg}/busybox:1");
    // (skopeo's seeding push asked with a password: only what follows.)
    let seen = tlog.lock().expect("log").len();
    b.ok(&["pull", "-q", &timg]);
    assert!(
        read_log().contains(&format!("get {token_reg}")),
        "{}",
        read_log()
    );
    let tlog = tlog.lock().expect("log")[seen..].to_vec();
    assert!(
        tlog.iter().any(|l| l.starts_with("POST")
            && l.contains("grant_type=refresh_token")
            && l.contains("service=berth-test")),
        "no refresh grant: {tlog:#?}"
    );
    assert!(
        !tlog.iter().any(|l| l.starts_with("GET")),
        "the identity token was not used: {tlog:#?}"
    );
}

#[test]
fn client_certificates_from_certs_d() {
    if !runnable(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let regs = Registries::start(&tmp.path().join("reg"));
    let mtls = regs.get("REG_MTLS");
    let ca = Path::new(regs.get("REG_CERTS_D")).join(mtls).join("ca.crt");
    // certs.d with the CA and the client pair, as docker and podman read it.
    let certs = tmp.path().join("certs.d");
    let host = certs.join(mtls);
    std::fs::create_dir_all(&host).expect("certs.d");
    std::fs::copy(&ca, host.join("ca.crt")).expect("ca");
    std::fs::copy(regs.get("REG_CLIENT_CERT"), host.join("client.cert")).expect("cert");
    std::fs::copy(regs.get("REG_CLIENT_KEY"), host.join("client.key")).expect("key");
    let seed = seed(tmp.path());
    let cert_dir = format!("--dest-cert-dir={}", host.display());
    skopeo(&[
        "copy",
        "-q",
        &cert_dir,
        &format!("oci:{}:localhost/busybox:latest", seed.display()),
        &format!("docker://{mtls}/busybox:1"),
    ]);
    let img = format!("{mtls}/busybox:1");
    // Only the CA: the registry refuses the handshake; the error says
    // where a client certificate goes.
    let ca_only = Builder {
        root: tmp.path().join("store-ca"),
        certs: regs.get("REG_CERTS_D").to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let e = ca_only.fails(&["pull", &img], &img, "client.cert + client.key");
    assert!(
        e.contains("BadCertificate") || e.contains("Certificate"),
        "{e}"
    );
    // A certificate without its key is a clear error naming the file.
    let half = tmp.path().join("half.d");
    std::fs::create_dir_all(half.join(mtls)).expect("half");
    std::fs::copy(&ca, half.join(mtls).join("ca.crt")).expect("ca");
    std::fs::copy(
        regs.get("REG_CLIENT_CERT"),
        half.join(mtls).join("client.cert"),
    )
    .expect("c");
    let b_half = Builder {
        root: tmp.path().join("store-half"),
        certs: half.display().to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let e = b_half.fails(&["pull", &img], &img, "has no key");
    assert!(e.contains("client.cert"), "{e}");
    // With the pair: pull, then push, and skopeo reads back what was pushed.
    let b = Builder {
        root: tmp.path().join("store"),
        certs: certs.display().to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let pulled = b.ok(&["pull", "-q", &img]);
    let pushed = format!("{mtls}/pushed:1");
    b.ok(&["push", "-q", &img, &pushed]);
    let cert_dir = format!("--cert-dir={}", host.display());
    assert_eq!(remote_digest(&pushed, &[&cert_dir]), pulled.trim());
}

/// An OCI layout at `dir` holding one image index (ref name `multi`) over
/// the single-image layouts `images` (each with its architecture).
fn index_layout(dir: &Path, images: &[(&Path, &str)]) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    let mut manifests = Vec::new();
    for (src, arch) in images {
        for e in std::fs::read_dir(src.join("blobs/sha256")).expect("blobs") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), dir.join("blobs/sha256").join(e.file_name())).expect("copy");
        }
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(src.join("index.json")).expect("index"))
                .expect("json");
        let m = &idx["manifests"][0];
        manifests.push(serde_json::json!({
            "mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
            "platform": {"os": "linux", "architecture": arch}
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests
    }))
    .expect("json");
    let d = sha(&index);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), &index).expect("blob");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("marker");
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": d.to_string(), "size": index.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
        }))
        .expect("json"),
    )
    .expect("index");
}

#[test]
fn from_platform_and_build_platform_pick_index_entries() {
    if !runnable(&[]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let regs = Registries::start(&tmp.path().join("reg"));
    let plain = regs.get("REG_PLAIN");
    let b = Builder {
        root: tmp.path().join("store"),
        certs: regs.get("REG_CERTS_D").to_string(),
        auth: tmp.path().join("auth.json"),
    };
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    // The index: busybox for this machine, a one-file image for the other
    // platform (never run).
    let seed = seed(tmp.path());
    let foreign = tmp.path().join("foreign");
    let mut t = Vec::new();
    entry(
        &mut t,
        "foreign-marker",
        tar::EntryType::Regular,
        "",
        other.as_bytes(),
    );
    layout(&foreign, &[finish_tar(t)], other);
    let multi = tmp.path().join("multi");
    index_layout(&multi, &[(&seed, host), (&foreign, other)]);
    let image = format!("{plain}/multi:1");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", multi.display()),
        &format!("docker://{image}"),
    ]);
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM --platform=$BUILDPLATFORM {image} AS tools\n\
             ARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG BUILDPLATFORM\n\
             RUN echo \"$BUILDPLATFORM $TARGETPLATFORM $TARGETOS $TARGETARCH\" > /built-on\n\
             FROM {image}\n\
             COPY --from=tools /built-on /built-on\n"
        ),
    )
    .expect("Dockerfile");
    let ctx_s = ctx.to_str().expect("utf8");
    let platform = format!("linux/{other}");
    b.ok(&[
        "build",
        "-q",
        "--platform",
        &platform,
        "-t",
        "cross:1",
        ctx_s,
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["inspect", "cross:1"])).expect("inspect json");
    let flat = inspect.to_string();
    assert!(
        flat.contains(&format!(r#""architecture":"{other}""#)),
        "{inspect:#}"
    );
    let bundle = tmp.path().join("bundle");
    b.ok(&["unpack", "cross:1", bundle.to_str().expect("utf8")]);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("foreign-marker")).expect("marker"),
        other
    );
    assert!(!rootfs.join("bin/busybox").exists(), "host base used");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("built-on")).expect("built-on"),
        format!("linux/{host} linux/{other} linux {other}\n")
    );
    // Without --platform: this machine's entry.
    b.ok(&["build", "-q", "-t", "native:1", ctx_s]);
    let native = tmp.path().join("native");
    b.ok(&["unpack", "native:1", native.to_str().expect("utf8")]);
    assert!(native.join("rootfs/bin/busybox").exists());
    assert_eq!(
        std::fs::read_to_string(native.join("rootfs/built-on")).expect("built-on"),
        format!("linux/{host} linux/{host} linux {host}\n")
    );
    // A platform the index lacks: a clear error naming the image and both
    // (the first stage, for this machine, is built and cached).
    let out = b.run(&["build", "-q", "--platform", "linux/s390x", ctx_s]);
    let e = text(&out.stderr);
    assert!(!out.status.success(), "{e}");
    assert!(
        e.contains(&image)
            && e.contains("no manifest for platform linux/s390x")
            && e.contains(&format!("linux/{other}")),
        "{e}"
    );
}
