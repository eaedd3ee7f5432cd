//! A rootless build: an unprivileged uid (no passwd entry needed) runs `berth-build build`;
//! it builds in a user namespace of its own (overlay with userxattr, RUN through the rootless
//! runtime), keeps its store under $HOME/.local/share/berth-build, hits the cache on the
//! second build and unpacks the image. Root only (the test makes the uid's files).

mod support;
use support::*;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

const UID: u32 = 47012;

fn chown_tree(p: &Path, uid: u32) {
    let _ = std::os::unix::fs::lchown(p, Some(uid), Some(uid));
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

/// Runs the copied berth-build as the uid with only HOME and PATH set.
fn as_user(dir: &Path, args: &[&str]) -> (bool, String, String) {
    as_uid(dir, UID, args)
}

fn as_uid(dir: &Path, uid: u32, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(dir.join("berth-build"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .uid(uid)
        .gid(uid)
        .output()
        .expect("berth-build");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
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
    chown_tree(d, UID);
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

const SUB_UID: u32 = 47013;
const SUB_NAME: &str = "berthbuild";
const SUB: &str = "berthbuild:500000:65536";

/// A user with /etc/subuid and /etc/subgid ranges, removed again on drop (useradd may add
/// ranges of its own: every line of the user goes).
struct SubUser {
    made: bool,
}

impl SubUser {
    fn new() -> Option<SubUser> {
        if !Path::new("/usr/bin/newuidmap").exists() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "newuidmap missing in CI: hack/test.sh installs uidmap"
            );
            eprintln!("skipped: newuidmap is not installed");
            return None;
        }
        let known = Command::new("getent")
            .args(["passwd", SUB_NAME])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        let made = !known
            && Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--uid",
                    &SUB_UID.to_string(),
                    "--user-group",
                    SUB_NAME,
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        for f in ["/etc/subuid", "/etc/subgid"] {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            if !text.lines().any(|l| l.starts_with(&format!("{SUB_NAME}:"))) {
                std::fs::write(f, format!("{text}{SUB}\n")).expect("subid");
            }
        }
        Some(SubUser { made })
    }
}

impl Drop for SubUser {
    fn drop(&mut self) {
        if self.made {
            let _ = Command::new("userdel").arg(SUB_NAME).status();
            for f in ["/etc/subuid", "/etc/subgid"] {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                let kept: String = text
                    .lines()
                    .filter(|l| !l.starts_with(&format!("{SUB_NAME}:")))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(f, kept);
            }
        }
    }
}

/// With subordinate ranges the builder's namespace maps them (newuidmap/newgidmap), so a RUN
/// step may chown to another id and the layer keeps that owner.
#[test]
fn with_subordinate_ids_run_steps_may_chown() {
    let dir = tempfile::Builder::new()
        .prefix("berth-build-rootless-")
        .tempdir()
        .expect("tempdir");
    let d = dir.path();
    if !seed_into(&d.join("seed")) {
        return;
    }
    let Some(_user) = SubUser::new() else { return };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir_all(d.join("ctx")).expect("ctx");
    std::fs::create_dir_all(d.join("home")).expect("home");
    std::fs::copy(env!("CARGO_BIN_EXE_berth-build"), d.join("berth-build")).expect("copy");
    std::fs::write(
        d.join("ctx/Dockerfile"),
        format!(
            "FROM oci:{}\n\
             RUN touch /owned && chown 1000:1000 /owned && cat /proc/self/uid_map > /map\n\
             RUN stat -c %u:%g /owned > /owner\n",
            d.join("seed").display()
        ),
    )
    .expect("df");
    chown_tree(d, SUB_UID);
    let ctx = d.join("ctx").display().to_string();
    let (ok, _, err) = as_uid(d, SUB_UID, &["build", "-t", "sub", &ctx]);
    assert!(ok, "rootless build with subordinate ids failed: {err}");
    let bundle = d.join("bundle").display().to_string();
    let (ok, _, err) = as_uid(d, SUB_UID, &["unpack", "sub", &bundle]);
    assert!(ok, "unpack: {err}");
    let root = d.join("bundle/rootfs");
    let owner = std::fs::read_to_string(root.join("owner")).expect("owner");
    assert_eq!(owner, "1000:1000\n", "the layer lost the owner");
    let map = std::fs::read_to_string(root.join("map")).expect("map");
    assert_eq!(
        map.lines().count(),
        2,
        "RUN maps both extents of the builder: {map}"
    );
}
