//! What the builder's integration tests share (each test file has `mod support;`): the
//! workspace, tool checks, a command's output, the busybox seed image, a context + store per
//! test ([`Env`]) and a private podman store (hack/with-podman.sh).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Whether the test runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The workspace's top directory.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `cmd` is on PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Bytes as text, lossily.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The stdout of a command that must have succeeded (the failure names `what` and both
/// streams).
pub fn check(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Whether this machine can run builds (root, busybox-static, jq, and `extra` tools); under
/// CI=true it must, otherwise the test is skipped with the reason.
pub fn can_build(extra: &[&str]) -> bool {
    let mut missing: Vec<&str> = ["jq"]
        .into_iter()
        .chain(extra.iter().copied())
        .filter(|c| !have(c))
        .collect();
    if !Path::new("/bin/busybox").exists() {
        missing.push("busybox-static");
    }
    if is_root() && missing.is_empty() {
        return true;
    }
    let why = format!("needs root and {missing:?}");
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI must run the builder tests: {why}"
    );
    eprintln!("skipping: {why}");
    false
}

/// Writes the busybox seed image layout to `dest` (hack/make-busybox-image.sh).
pub fn make_seed(dest: &Path) {
    let _ = std::fs::remove_dir_all(dest);
    let out = Command::new(workspace().join("hack/make-busybox-image.sh"))
        .arg(dest)
        .output()
        .expect("hack/make-busybox-image.sh");
    check("hack/make-busybox-image.sh", &out);
}

/// The busybox seed layout, made once per test binary (under its own name in
/// CARGO_TARGET_TMPDIR, which the test binaries share); None when builds cannot run here.
pub fn seed() -> Option<&'static Path> {
    static SEED: OnceLock<Option<PathBuf>> = OnceLock::new();
    SEED.get_or_init(|| {
        if !can_build(&[]) {
            return None;
        }
        let name = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("busybox-seed-{name}"));
        make_seed(&dir);
        Some(dir)
    })
    .as_deref()
}

/// target/<profile>/berth next to this test's target/<profile>/deps/.
pub fn berth_binary() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("berth")))
        .filter(|p| p.exists())
}

/// A private podman store (hack/with-podman.sh) in `dir` with `berth` as its runtime; its
/// containers and images are removed on drop, failure or not.
pub struct Podman {
    /// The store's directory.
    pub dir: PathBuf,
    /// The runtime binary podman runs.
    pub berth: PathBuf,
}

impl Podman {
    /// `podman ARGS` in the store.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(workspace().join("hack/with-podman.sh"))
            .arg(&self.dir)
            .arg(&self.berth)
            .arg("--")
            .arg("podman")
            .args(args)
            .output()
            .expect("hack/with-podman.sh")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-af"]);
        let _ = self.run(&["system", "reset", "-f"]);
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.join("graph"))
            .output();
    }
}

/// Writes the seed image to `dest` when builds can run here (see [`can_build`]).
pub fn seed_into(dest: &Path) -> bool {
    if !can_build(&[]) {
        return false;
    }
    make_seed(dest);
    true
}

/// A test's build context and store in one temporary directory.
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
