//! What the builder's integration tests share (each test file has `mod support;`): the
//! workspace, tool checks, a command's output, the busybox seed image and a private podman
//! store (hack/with-podman.sh).
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
