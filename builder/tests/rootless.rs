//! A rootless build: an unprivileged uid (no passwd entry needed) runs `berth-build build`;
//! it builds in a user namespace of its own (overlay with userxattr, RUN through the rootless
//! runtime), keeps its store under $HOME/.local/share/berth-build, hits the cache on the
//! second build and unpacks the image. Root only (the test makes the uid's files).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const UID: u32 = 47012;

fn chown_tree(p: &Path) {
    let _ = std::os::unix::fs::lchown(p, Some(UID), Some(UID));
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            chown_tree(&e.path());
        }
    }
}

/// Runs the copied berth-build as the uid with only HOME and PATH set.
fn as_user(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(dir.join("berth-build"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .uid(UID)
        .gid(UID)
        .output()
        .expect("berth-build");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn seed_into(dest: &Path) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let jq = Command::new("sh")
        .args(["-c", "command -v jq"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !root || !Path::new("/bin/busybox").exists() || !jq {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run the rootless build test (root, busybox-static, jq)"
        );
        eprintln!("skipping: needs root, busybox-static and jq");
        return false;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack/make-busybox-image.sh");
    let o = Command::new(script).arg(dest).output().expect("seed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    true
}

#[test]
fn an_unprivileged_user_builds_caches_and_unpacks() {
    let dir = tempfile::Builder::new()
        .prefix("berth-build-rootless-")
        .tempdir()
        .expect("tempdir");
    let d = dir.path();
    if !seed_into(&d.join("seed")) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir_all(d.join("ctx")).expect("ctx");
    std::fs::create_dir_all(d.join("home")).expect("home");
    // The uid must reach the binary: a copy in its own directory.
    std::fs::copy(env!("CARGO_BIN_EXE_berth-build"), d.join("berth-build")).expect("copy");
    std::fs::write(d.join("ctx/f.txt"), "data\n").expect("f");
    std::fs::write(
        d.join("ctx/Dockerfile"),
        format!(
            "FROM oci:{}\n\
             RUN echo hello > /hello && rm /etc/group && id -u > /uid && cat /proc/self/uid_map > /map && touch /tmp/old\n\
             WORKDIR /w\n\
             COPY f.txt .\n\
             RUN cat /w/f.txt > /copied && rm -rf /tmp && mkdir /tmp && touch /tmp/new\n",
            d.join("seed").display()
        ),
    )
    .expect("df");
    chown_tree(d);
    let ctx = d.join("ctx").display().to_string();
    let (ok, out, err) = as_user(d, &["build", "-t", "rl", &ctx]);
    assert!(ok, "rootless build failed: {err}");
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let store = d.join("home/.local/share/berth-build");
    assert!(
        store.join("blobs/sha256").is_dir(),
        "store not under XDG_DATA_HOME's default"
    );
    let (ok, out2, err) = as_user(d, &["build", "-t", "rl", &ctx]);
    assert!(ok, "second build: {err}");
    assert_eq!(out.trim(), out2.trim(), "the cached build differs");
    assert_eq!(err.matches("CACHED").count(), 4, "{err}");
    let bundle = d.join("bundle").display().to_string();
    let (ok, _, err) = as_user(d, &["unpack", "rl", &bundle]);
    assert!(ok, "unpack: {err}");
    let root = d.join("bundle/rootfs");
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("hello"), "hello\n");
    assert_eq!(read("uid"), "0\n", "RUN runs as the namespace's root");
    assert_eq!(read("copied"), "data\n");
    assert!(
        read("map").split_whitespace().next() == Some("0"),
        "{}",
        read("map")
    );
    // The whiteout and the opaque directory made it into the layers.
    assert!(!root.join("etc/group").exists(), "rm /etc/group was lost");
    let tmp: Vec<_> = std::fs::read_dir(root.join("tmp"))
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(tmp, vec![std::ffi::OsString::from("new")], "opaque /tmp");
    // No scratch directory is left in the store.
    let left: Vec<_> = std::fs::read_dir(store.join("tmp"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in tmp: {left:?}");
}
