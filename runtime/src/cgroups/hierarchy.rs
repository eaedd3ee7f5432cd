//! Discovering the mounted cgroup hierarchies from /proc/self/mountinfo (never guessed).

use super::CgroupError;
use std::path::PathBuf;

/// How cgroups are mounted on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 controllers.
    Legacy,
    /// v1 controllers plus a (usually empty) cgroup2 mount.
    Hybrid,
    /// A single cgroup2 hierarchy.
    Unified,
}

/// One mounted cgroup hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. /sys/fs/cgroup/memory.
    pub mount_point: PathBuf,
    /// The cgroup that is the root of this mount (usually `/`).
    pub root: String,
    /// v1 controllers (`cpu`, `cpuacct`, `name=systemd`); empty for cgroup2.
    pub controllers: Vec<String>,
    /// Whether this is the cgroup2 hierarchy.
    pub v2: bool,
}

impl Hierarchy {
    /// Whether this v1 hierarchy carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// Parses mountinfo text into the cgroup hierarchies it mounts (first mount of each wins).
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let v2 = fstype == "cgroup2";
        let controllers: Vec<String> = if v2 {
            Vec::new()
        } else {
            post[2]
                .split(',')
                .filter(|o| {
                    !matches!(
                        *o,
                        "rw" | "ro"
                            | "nosuid"
                            | "nodev"
                            | "noexec"
                            | "relatime"
                            | "noatime"
                            | "clone_children"
                            | "nsdelegate"
                            | "xattr"
                    ) && !o.starts_with("release_agent=")
                })
                .map(str::to_string)
                .collect()
        };
        let h = Hierarchy {
            mount_point: PathBuf::from(unescape(pre[4])),
            root: unescape(pre[3]),
            controllers,
            v2,
        };
        if !out
            .iter()
            .any(|o| o.v2 == h.v2 && o.controllers == h.controllers)
        {
            out.push(h);
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal.
/// Undoes mountinfo's octal escapes (`\040` for a space).
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the current mount table and returns the hierarchies and the mode.
pub fn detect() -> Result<(Mode, Vec<Hierarchy>), CgroupError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| CgroupError::Detect(format!("/proc/self/mountinfo: {e}")))?;
    let hs = parse_mountinfo(&text);
    let v1 = hs.iter().any(|h| !h.v2);
    let v2 = hs.iter().any(|h| h.v2);
    let mode = match (v1, v2) {
        (true, true) => Mode::Hybrid,
        (true, false) => Mode::Legacy,
        (false, true) => Mode::Unified,
        (false, false) => {
            return Err(CgroupError::Detect(
                "no cgroup filesystem is mounted".into(),
            ))
        }
    };
    Ok((mode, hs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn parses_hybrid_mounts() {
        let hs = parse_mountinfo(HYBRID);
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[0].controllers, vec!["cpu"]);
        assert_eq!(hs[2].controllers, vec!["name=systemd"]);
        assert!(hs[3].v2);
        assert_eq!(hs[3].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn parses_unified_mount_and_escapes() {
        let hs = parse_mountinfo(
            "29 23 0:26 /a\\040b /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].root, "/a b");
        assert!(hs[0].controllers.is_empty());
    }
}
