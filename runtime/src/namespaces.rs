//! Namespace kinds, the order they are joined or created in, and the syscalls that do it.

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::AsFd;
use std::path::PathBuf;

/// One Linux namespace kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NsKind {
    /// User namespace: always joined or created first.
    User,
    /// Mount namespace.
    Mount,
    /// PID namespace: affects children only.
    Pid,
    /// Network namespace.
    Net,
    /// IPC namespace.
    Ipc,
    /// UTS (hostname) namespace.
    Uts,
    /// Cgroup namespace: created after the process is in its cgroup.
    Cgroup,
    /// Time namespace: affects children only.
    Time,
}

impl NsKind {
    /// The kind's name in config.json.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mount",
            NsKind::Pid => "pid",
            NsKind::Net => "network",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The file under /proc/PID/ns/.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mount => "mnt",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The clone/unshare flag.
    pub fn flag(self) -> CloneFlags {
        match self {
            NsKind::User => CloneFlags::CLONE_NEWUSER,
            NsKind::Mount => CloneFlags::CLONE_NEWNS,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // nix has no constant for CLONE_NEWTIME (0x80).
            NsKind::Time => CloneFlags::from_bits_retain(0x80),
        }
    }

    /// All kinds in the order they are entered: user first (it grants the rights for the rest),
    /// mount last among the joined ones so /proc paths of the others still resolve.
    pub const ORDER: [NsKind; 8] = [
        NsKind::User,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Net,
        NsKind::Pid,
        NsKind::Time,
        NsKind::Cgroup,
        NsKind::Mount,
    ];
}

impl From<LinuxNamespaceType> for NsKind {
    fn from(t: LinuxNamespaceType) -> Self {
        match t {
            LinuxNamespaceType::User => NsKind::User,
            LinuxNamespaceType::Mount => NsKind::Mount,
            LinuxNamespaceType::Pid => NsKind::Pid,
            LinuxNamespaceType::Network => NsKind::Net,
            LinuxNamespaceType::Ipc => NsKind::Ipc,
            LinuxNamespaceType::Uts => NsKind::Uts,
            LinuxNamespaceType::Cgroup => NsKind::Cgroup,
            LinuxNamespaceType::Time => NsKind::Time,
        }
    }
}

/// A namespace the container gets: a new one (`path` None) or an existing one to join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsConfig {
    /// Which namespace.
    pub kind: NsKind,
    /// Existing namespace to join, e.g. /proc/123/ns/net.
    pub path: Option<PathBuf>,
}

/// The namespaces listed in `linux.namespaces`, in config order.
pub fn from_spec(spec: &Spec) -> Vec<NsConfig> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|list| {
            list.iter()
                .map(|n| NsConfig {
                    kind: n.typ().into(),
                    path: n.path().clone().filter(|p| !p.as_os_str().is_empty()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Joins the namespace at `path` (setns).
pub fn join(kind: NsKind, path: &std::path::Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    nix::sched::setns(f.as_fd(), kind.flag()).map_err(std::io::Error::from)
}

/// Creates new namespaces of the given kinds for the calling process (unshare).
pub fn unshare(flags: CloneFlags) -> std::io::Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_starts_with_user_and_covers_every_kind() {
        assert_eq!(NsKind::ORDER[0], NsKind::User);
        let set: std::collections::HashSet<_> = NsKind::ORDER.iter().collect();
        assert_eq!(set.len(), 8);
    }

    #[test]
    fn parses_paths_from_spec() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.0",
            "linux": {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}, {"type": "pid", "path": ""}]}
        }))
        .unwrap();
        let ns = from_spec(&spec);
        assert_eq!(ns[0].kind, NsKind::Net);
        assert_eq!(
            ns[0].path.as_deref(),
            Some(std::path::Path::new("/proc/1/ns/net"))
        );
        assert_eq!(ns[1].path, None);
    }
}
