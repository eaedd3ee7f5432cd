//! Shared set-up of the builder's end-to-end tests: the busybox seed
//! image, a context + store per test, and running `berth-build`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The busybox seed layout, made once per test binary; None when the
/// tools to make it are missing.
pub fn seed() -> Option<&'static Path> {
    static SEED: OnceLock<Option<PathBuf>> = OnceLock::new();
    SEED.get_or_init(|| {
        if !is_root() || !Path::new("/bin/busybox").exists() || !have("jq") {
            eprintln!("skipping: needs root, busybox-static and jq");
            return None;
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-seed");
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(workspace().join("hack/make-busybox-image.sh"))
            .arg(&dir)
            .output()
            .expect("seed script");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(dir)
    })
    .as_deref()
}

pub struct Env {
    /// The test's temporary directory (ctx/, store/, outputs).
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new(dockerfile: &str, files: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).expect("ctx");
        let seed = seed().expect("seed").display().to_string();
        std::fs::write(ctx.join("Dockerfile"), dockerfile.replace("@SEED@", &seed)).expect("df");
        for (p, c) in files {
            let path = ctx.join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, c).expect("write");
        }
        Env { dir }
    }

    pub fn ctx(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn build(&self, extra: &[&str], epoch: Option<&str>) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth-build"));
        c.arg("--root")
            .arg(self.root())
            .arg("build")
            .args(extra)
            .arg(self.ctx());
        match epoch {
            Some(e) => c.env("SOURCE_DATE_EPOCH", e),
            None => c.env_remove("SOURCE_DATE_EPOCH"),
        };
        c.output().expect("run berth-build")
    }

    pub fn ok(&self, extra: &[&str], epoch: Option<&str>) -> (String, String) {
        let out = self.build(extra, epoch);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "build failed:\n{stderr}");
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr,
        )
    }

    /// Nothing half-written: no scratch dirs, no mounts, no temp blobs.
    pub fn assert_clean(&self) {
        let tmp = self.root().join("tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in tmp: {left:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(
            !mounts.contains(&self.root().display().to_string()),
            "mount left behind"
        );
        let blobs = std::fs::read_dir(self.root().join("blobs/sha256")).expect("blobs");
        for b in blobs.flatten() {
            let name = b.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".tmp"), "temporary blob left: {name}");
        }
    }
}

/// Runs `berth-build --root STORE ARGS`, which must succeed; its stdout.
pub fn berth_build(env: &Env, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_berth-build"))
        .arg("--root")
        .arg(env.root())
        .args(args)
        .output()
        .expect("berth-build");
    assert!(
        o.status.success(),
        "berth-build {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Unpacks image `name` of the env's store and returns its rootfs.
pub fn unpacked(env: &Env, name: &str, dir: &str) -> PathBuf {
    let bundle = env.dir.path().join(dir);
    berth_build(env, &["unpack", name, &bundle.display().to_string()]);
    bundle.join("rootfs")
}

/// The text of `p` under `root`.
pub fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}
