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

/// The new namespaces the container's first process can be born in, as clone3 flags, or empty
/// when they have to be made one step at a time in stage 1: with a user namespace (the others
/// must be created inside it once its maps are written from outside), with namespaces joined by
/// path (joined first, in order), or with a time namespace (its offsets are written before any
/// process enters it). A cgroup namespace is included only when `cgroupns_at_clone` (the child
/// is cloned straight into its only cgroup; otherwise it joins its cgroups first and unshares
/// the cgroup namespace after). Being born in them saves stage 1's unshare and its fork.
pub fn born_with(namespaces: &[NsConfig], cgroupns_at_clone: bool) -> CloneFlags {
    let blocked = namespaces
        .iter()
        .any(|n| n.path.is_some() || matches!(n.kind, NsKind::User | NsKind::Time));
    if blocked {
        return CloneFlags::empty();
    }
    namespaces
        .iter()
        .filter(|n| cgroupns_at_clone || n.kind != NsKind::Cgroup)
        .fold(CloneFlags::empty(), |f, n| f | n.kind.flag())
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

/// This process's namespaces for its children (`/proc/self/ns/pid_for_children` and
/// `time_for_children`) pointed at another process's PID and time namespaces for one fork,
/// so that the child is born in them: `exec`'s process then needs no second fork to enter the
/// container's PID namespace. Only the calling process's children are affected, and only
/// until [`ForChildren::restore`]; the caller must be single-threaded (setns of a time
/// namespace requires it).
pub struct ForChildren {
    /// This process's own namespaces for children, to point back at.
    saved: Vec<(NsKind, std::fs::File)>,
}

impl ForChildren {
    /// The kinds that take effect for children only.
    const KINDS: [NsKind; 2] = [NsKind::Pid, NsKind::Time];

    /// Points this process's PID and time namespaces for children at `pid`'s where they
    /// differ. `None` when that is not possible (`pid` is gone, or berth is rootless);
    /// nothing is left changed then, and the child has to enter them itself.
    ///
    /// Rootless means either no CAP_SYS_ADMIN at all, or (rootless podman) root of a user
    /// namespace: there the container's namespaces can be entered, since that user namespace
    /// owns them, but this process's own PID namespace belongs to the initial user namespace
    /// and pointing back at it would fail with EPERM.
    pub fn enter(pid: i32) -> Option<ForChildren> {
        if crate::rootless::active() {
            return None;
        }
        let mut me = ForChildren { saved: Vec::new() };
        for kind in Self::KINDS {
            let theirs = format!("/proc/{pid}/ns/{}", kind.proc_name());
            let mine = format!("/proc/self/ns/{}_for_children", kind.proc_name());
            let (Ok(a), Ok(b)) = (std::fs::read_link(&theirs), std::fs::read_link(&mine)) else {
                // No time namespaces in this kernel: nothing to point. A missing PID
                // namespace link means the process is gone.
                if kind == NsKind::Time {
                    continue;
                }
                me.undo();
                return None;
            };
            if a == b {
                continue;
            }
            let (Ok(target), Ok(own)) = (std::fs::File::open(&theirs), std::fs::File::open(&mine))
            else {
                me.undo();
                return None;
            };
            if nix::sched::setns(target.as_fd(), kind.flag()).is_err() {
                me.undo();
                return None;
            }
            me.saved.push((kind, own));
        }
        Some(me)
    }

    /// Points this process's namespaces for children back at its own.
    pub fn restore(mut self) -> std::io::Result<()> {
        let saved = std::mem::take(&mut self.saved);
        for (kind, own) in saved.iter().rev() {
            nix::sched::setns(own.as_fd(), kind.flag()).map_err(std::io::Error::from)?;
        }
        Ok(())
    }

    /// In the child born in the namespaces: closes the saved descriptors of the parent's
    /// namespaces (they must not reach the container) without pointing anything back.
    pub fn close_in_child(mut self) {
        self.saved.clear();
    }

    fn undo(&mut self) {
        for (kind, own) in std::mem::take(&mut self.saved).iter().rev() {
            let _ = nix::sched::setns(own.as_fd(), kind.flag());
        }
    }
}

impl Drop for ForChildren {
    /// A path that returns early without [`ForChildren::restore`] still points back.
    fn drop(&mut self) {
        self.undo();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_children_of_own_namespaces_changes_nothing() {
        let before = std::fs::read_link("/proc/self/ns/pid_for_children").ok();
        let f = ForChildren::enter(std::process::id() as i32).expect("own namespaces");
        assert!(f.saved.is_empty(), "nothing to point at: same namespaces");
        f.restore().expect("restore");
        assert_eq!(
            std::fs::read_link("/proc/self/ns/pid_for_children").ok(),
            before
        );
    }

    #[test]
    fn for_children_of_a_gone_process_is_none() {
        // PIDs above pid_max never exist.
        assert!(ForChildren::enter(i32::MAX).is_none());
    }

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

    #[test]
    fn born_with_only_plain_new_namespaces() {
        let ns = |kind, path: Option<&str>| NsConfig {
            kind,
            path: path.map(PathBuf::from),
        };
        let plain = [
            ns(NsKind::Pid, None),
            ns(NsKind::Mount, None),
            ns(NsKind::Net, None),
            ns(NsKind::Cgroup, None),
        ];
        let all = CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET;
        assert_eq!(born_with(&plain, false), all);
        assert_eq!(born_with(&plain, true), all | CloneFlags::CLONE_NEWCGROUP);
        let mut joined = plain.to_vec();
        joined.push(ns(NsKind::Ipc, Some("/proc/1/ns/ipc")));
        assert!(born_with(&joined, true).is_empty());
        let mut user = plain.to_vec();
        user.push(ns(NsKind::User, None));
        assert!(born_with(&user, true).is_empty());
        let mut time = plain.to_vec();
        time.push(ns(NsKind::Time, None));
        assert!(born_with(&time, true).is_empty());
    }
}
