//! What the shim's integration tests share (each test file has `mod support;`): where the
//! built shim is, the tools a test needs, and removing the cgroup parents containerd made.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The directory of the built shim (and of the berth binary next to it).
pub fn shim_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_containerd-shim-berth-v2"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Whether the test can run here: root, and every one of `tools` (a command on PATH, or an
/// absolute path that exists). Under CI=true it must; otherwise it is skipped with the reason.
pub fn can_run(what: &str, tools: &[&str]) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: {what} need root");
        return false;
    }
    for tool in tools {
        let found = if tool.starts_with('/') {
            Path::new(tool).exists()
        } else {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !found {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{tool} is missing (hack/test.sh installs it)"
            );
            eprintln!("skipped: {tool} is missing (hack/test.sh installs it)");
            return false;
        }
    }
    true
}

/// `name` under every cgroup hierarchy: /sys/fs/cgroup/NAME, /sys/fs/cgroup/unified/NAME and
/// /sys/fs/cgroup/CONTROLLER/NAME.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        dirs.push(Path::new(base).join(name));
        if let Ok(entries) = std::fs::read_dir(base) {
            dirs.extend(entries.flatten().map(|e| e.path().join(name)));
        }
    }
    dirs
}

/// Removes the cgroup `dir` made for the test's containers; returns the child cgroups (the
/// containers' own, which should be gone already) that were still there, removing them too.
pub fn remove_cgroup_parent(dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(children) = std::fs::read_dir(dir) {
        for c in children.flatten().filter(|c| c.path().is_dir()) {
            left.push(c.path().display().to_string());
            let _ = std::fs::remove_dir(c.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
    left
}
