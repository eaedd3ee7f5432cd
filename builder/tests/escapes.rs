//! Escape-class attacks on the builder: a base image whose symlinks point a WORKDIR or a COPY
//! destination outside the rootfs, and the descriptors and processes a RUN step can see.
//! Root only (RUN needs overlay mounts and containers); seed image:
//! hack/make-busybox-image.sh.

mod support;
use support::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs berth-build with `args` from a shell that first opens fd 7 (a host file) and fd 8
/// (the host's /) without close-on-exec, so a leak into RUN would show.
fn berth_build(store: &Path, args: &[&str]) -> (bool, String) {
    let bin = env!("CARGO_BIN_EXE_berth-build");
    let mut script = format!(
        "exec 7</etc/hostname 8</; exec {bin} --root {}",
        store.display()
    );
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("berth-build");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The descriptors a listing of /proc/self/fd shows, minus the listing's own directory fd.
fn fds_of(listing: &str) -> Vec<u32> {
    let mut v: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort();
    v.pop();
    v
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(files_under(&e.path()));
        }
    }
    out
}

/// A base image holding an absolute symlink (`/evil`, through `..` past the root) and a
/// relative one (`/rel`) to a directory that exists on the host: WORKDIR, COPY and RUN
/// writes through them land inside the image, never in the host directory. RUN sees only
/// stdio (not the builder's descriptors) and only its own processes (pid 1 is the step's
/// shell, not the builder).
#[test]
fn symlinked_workdir_and_copy_destination_stay_in_the_rootfs() {
    let Some(seed) = seed() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).expect("ctx");
    std::fs::write(ctx.join("f.txt"), "payload\n").expect("f");
    let out = outside.display().to_string();
    let dockerfile = format!(
        "FROM oci:{seed}\n\
         RUN ln -s /../../../../../../..{out} /evil && ln -s ../../../../../../..{out} /rel\n\
         WORKDIR /evil/sub\n\
         COPY f.txt /evil/\n\
         COPY f.txt /rel/g.txt\n\
         COPY f.txt ./h.txt\n\
         RUN echo run > /evil/r.txt; ls /proc/self/fd > /fds; readlink /proc/1/exe > /exe1; ls /proc > /procs\n",
        seed = seed.display()
    );
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("df");
    let store = dir.path().join("store");
    let (ok, err) = berth_build(&store, &["build", "-t", "evil", &ctx.display().to_string()]);
    assert!(
        files_under(&outside).is_empty(),
        "the build wrote outside the rootfs: {:?}",
        files_under(&outside)
    );
    assert!(ok, "build failed: {err}");
    let bundle = dir.path().join("bundle");
    let (ok, err) = berth_build(&store, &["unpack", "evil", &bundle.display().to_string()]);
    assert!(ok, "unpack failed: {err}");
    assert!(files_under(&outside).is_empty());
    let root = bundle.join("rootfs");
    let inside = root.join(out.trim_start_matches('/'));
    for f in ["f.txt", "g.txt", "sub/h.txt", "r.txt"] {
        assert!(inside.join(f).is_file(), "{f} missing inside the image");
    }
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect(p);
    assert_eq!(
        fds_of(&read("fds")),
        vec![0, 1, 2],
        "RUN saw {:?}",
        read("fds")
    );
    let exe1 = read("exe1");
    assert!(
        exe1.trim().starts_with("/bin/") && !exe1.contains("berth"),
        "pid 1 of RUN is {exe1:?}"
    );
    let pids: Vec<u32> = read("procs")
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    assert!(
        pids.iter().all(|p| *p < 10),
        "RUN sees processes outside its pid namespace: {pids:?}"
    );
}

/// One raw tar entry of a malicious layer (names the tar crate's writer would refuse).
struct Raw {
    name: String,
    kind: tar::EntryType,
    link: String,
    data: &'static [u8],
}

fn raw(name: &str, kind: tar::EntryType, link: &str, data: &'static [u8]) -> Raw {
    Raw {
        name: name.to_string(),
        kind,
        link: link.to_string(),
        data,
    }
}

fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(if e.kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        if e.kind == tar::EntryType::Char {
            h.set_device_major(1).expect("major");
            h.set_device_minor(3).expect("minor");
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend([0u8; 1024]);
    out
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

/// A copy of the seed layout whose image gets one more (uncompressed) layer made of `entries`.
fn evil_layout(seed: &Path, dest: &Path, entries: &[Raw]) {
    use serde_json::{json, Value};
    let o = Command::new("cp")
        .arg("-a")
        .arg(seed)
        .arg(dest)
        .output()
        .expect("cp");
    assert!(o.status.success());
    let blobs = dest.join("blobs/sha256");
    let blob = |d: &str| -> Value {
        let h = d.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(blobs.join(h)).expect("blob")).expect("json")
    };
    let put = |b: &[u8]| -> (String, usize) {
        let d = sha(b);
        std::fs::write(blobs.join(&d), b).expect("write blob");
        (format!("sha256:{d}"), b.len())
    };
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(dest.join("index.json")).expect("index")).expect("j");
    let mut manifest = blob(index["manifests"][0]["digest"].as_str().expect("m"));
    let mut config = blob(manifest["config"]["digest"].as_str().expect("c"));
    let layer = raw_tar(entries);
    let (ld, ls) = put(&layer);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("diff_ids")
        .push(json!(ld));
    config["history"]
        .as_array_mut()
        .expect("history")
        .push(json!({"created_by": "evil"}));
    let (cd, cs) = put(&serde_json::to_vec(&config).expect("c"));
    manifest["config"]["digest"] = json!(cd);
    manifest["config"]["size"] = json!(cs);
    manifest["layers"]
        .as_array_mut()
        .expect("layers")
        .push(json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}));
    let (md, ms) = put(&serde_json::to_vec(&manifest).expect("m"));
    index["manifests"][0]["digest"] = json!(md);
    index["manifests"][0]["size"] = json!(ms);
    std::fs::write(
        dest.join("index.json"),
        serde_json::to_vec(&index).expect("i"),
    )
    .expect("w");
}

/// Malicious image layers (`..` and absolute names, a symlink then a file through it, a
/// hardlink to a host file, a device node, whiteouts aimed outside the layer) used as a
/// build's base and then unpacked: nothing outside the rootfs and the store is written or
/// removed, nothing half-written stays in the store, no device node is made.
#[test]
fn malicious_base_image_cannot_write_outside_in_build_or_unpack() {
    use tar::EntryType as T;
    let Some(seed) = seed() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    let victim = outside.join("victim");
    std::fs::write(&victim, "host\n").expect("victim");
    let out = outside.display().to_string();
    let up = format!("../../../../../../../..{out}");
    let cases: Vec<(&str, Vec<Raw>)> = vec![
        (
            "dotdot",
            vec![raw(&format!("{up}/dotdot"), T::Regular, "", b"x\n")],
        ),
        (
            "absolute",
            vec![raw(&format!("{out}/abs"), T::Regular, "", b"x\n")],
        ),
        (
            "symlink",
            vec![
                raw("esc", T::Symlink, &out, b""),
                raw("esc/through", T::Regular, "", b"x\n"),
            ],
        ),
        (
            "hardlink",
            vec![raw("hl", T::Link, &format!("{out}/victim"), b"")],
        ),
        (
            "hardlink-up",
            vec![raw("hl", T::Link, &format!("{up}/victim"), b"")],
        ),
        ("device", vec![raw("evil-null", T::Char, "", b"")]),
        (
            "whiteout-up",
            vec![raw(&format!("{up}/.wh.victim"), T::Regular, "", b"")],
        ),
        (
            "whiteout-through-symlink",
            vec![
                raw("esc2", T::Symlink, &out, b""),
                raw("esc2/.wh.victim", T::Regular, "", b""),
            ],
        ),
        (
            "opaque-through-symlink",
            vec![
                raw("esc3", T::Symlink, &out, b""),
                raw("esc3/.wh..wh..opq", T::Regular, "", b""),
            ],
        ),
    ];
    for (name, entries) in cases {
        let layout = dir.path().join(format!("layout-{name}"));
        evil_layout(seed, &layout, &entries);
        let store = dir.path().join(format!("store-{name}"));
        // 1: an image stored without extracting its layers (FROM + LABEL), then unpacked.
        // 2: a build whose RUN extracts them into its snapshots.
        let mut unpacked = None;
        let mut why = Vec::new();
        for (k, step) in ["LABEL case=x", "RUN true"].iter().enumerate() {
            let ctx = dir.path().join(format!("ctx-{name}-{k}"));
            std::fs::create_dir(&ctx).expect("ctx");
            let df = format!("FROM oci:{}\n{step}\n", layout.display());
            std::fs::write(ctx.join("Dockerfile"), df).expect("df");
            let tag = format!("{name}-{k}");
            let (built, err) =
                berth_build(&store, &["build", "-t", &tag, &ctx.display().to_string()]);
            if !built {
                assert!(err.contains("unsafe layer entry"), "{name}: {err}");
                why.push(format!("build: {}", err.lines().last().unwrap_or("")));
                continue;
            }
            let bundle = dir.path().join(format!("bundle-{name}-{k}"));
            let (ok, uerr) = berth_build(&store, &["unpack", &tag, &bundle.display().to_string()]);
            if ok {
                unpacked = Some(bundle.join("rootfs"));
                why.push("unpacked".into());
            } else {
                assert!(uerr.contains("unsafe layer entry"), "{name}: {uerr}");
                assert!(
                    !bundle.join("rootfs").exists(),
                    "{name}: half-unpacked rootfs"
                );
                why.push(format!("unpack: {}", uerr.lines().last().unwrap_or("")));
            }
        }
        let left: Vec<_> = files_under(&outside);
        assert_eq!(
            left,
            vec![victim.clone()],
            "{name}: outside now holds {left:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "host\n",
            "{name}"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&victim).expect("victim").nlink(),
            1,
            "{name}: linked"
        );
        if let Some(root) = &unpacked {
            use std::os::unix::fs::FileTypeExt;
            for f in files_under(root) {
                let ft = std::fs::symlink_metadata(&f).expect("stat").file_type();
                assert!(
                    !ft.is_char_device() && !ft.is_block_device(),
                    "{name}: device node {} in the rootfs",
                    f.display()
                );
            }
        }
        let tmp = files_under(&store.join("tmp"));
        assert!(tmp.is_empty(), "{name}: left in the store's tmp: {tmp:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(
            !mounts.contains(&store.display().to_string()),
            "{name}: mount left"
        );
        if name == "symlink" {
            if let Some(root) = &unpacked {
                let inside = root.join(out.trim_start_matches('/')).join("through");
                assert!(inside.is_file(), "{name}: the file went nowhere");
            }
        }
        eprintln!("{name}: {why:?}");
    }
}
