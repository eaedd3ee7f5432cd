//! Whether berth runs rootless, decided as runc's `--rootless auto` does: rootless when not
//! root, and also when root of a user namespace other than the initial one (podman's and
//! buildah's rootless modes run the runtime that way, inside their own user namespace).
//! Rootless berth makes cgroups only where it may, and bind-mounts devices instead of mknod.

use std::sync::OnceLock;

/// Whether the process runs in a user namespace other than the initial one (its uid_map is
/// not the identity map of every id). Read once per process.
pub fn in_user_namespace() -> bool {
    static IN: OnceLock<bool> = OnceLock::new();
    *IN.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map")
            .map(|m| !is_initial_map(&m))
            .unwrap_or(false)
    })
}

/// The initial user namespace maps every id to itself in one line: `0 0 4294967295`.
fn is_initial_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

/// Rootless mode: not root, or root only inside a user namespace.
pub fn active() -> bool {
    !nix::unistd::geteuid().is_root() || in_user_namespace()
}

/// Whether `$XDG_RUNTIME_DIR/berth` is the default state root (runc's rule): when it is set and
/// berth is not root, or is root only inside a user namespace and `$USER` is not `root`.
pub fn honor_xdg_runtime_dir() -> bool {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|d| d.is_empty()) {
        return false;
    }
    if !nix::unistd::geteuid().is_root() {
        return true;
    }
    in_user_namespace() && std::env::var_os("USER").is_none_or(|u| u != "root")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_map_is_recognised() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("0 1000 1\n1 100000 65536\n"));
        assert!(!is_initial_map(""));
    }
}
