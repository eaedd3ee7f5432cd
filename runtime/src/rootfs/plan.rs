//! Spec -> ordered mount steps. Pure: no syscalls, unit-tested without root.

use super::RootfsError;
use nix::mount::MsFlags;
use oci_spec::runtime::Spec;
use std::path::{Component, Path, PathBuf};

/// What kind of filesystem a mount step makes; some need special handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// A bind mount of a host path (`bind`/`rbind` option or type `bind`).
    Bind,
    /// procfs: must land on a real directory, never a symlink.
    Proc,
    /// sysfs: same rule as proc.
    Sysfs,
    /// The cgroup hierarchy of the container (`type: cgroup`).
    Cgroup,
    /// Any other filesystem type (tmpfs, devpts, mqueue, ...).
    Other,
}

/// One mount to make, with options already split into flags and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountStep {
    /// Index in `mounts`, for error messages.
    pub index: usize,
    /// Destination relative to the rootfs, lexically cleaned (no `..`, no leading `/`).
    pub dest: PathBuf,
    /// Source as given (for binds: absolute, relative ones already joined to the bundle).
    pub source: Option<PathBuf>,
    /// Filesystem type passed to mount(2).
    pub fstype: String,
    /// Kind of mount.
    pub kind: MountKind,
    /// Flags for the initial mount(2).
    pub flags: MsFlags,
    /// Flags that need a second, remount pass (binds only: ro, nosuid, ...).
    pub remount_flags: MsFlags,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Comma-separated data string (mode=755, size=..., ...).
    pub data: String,
    /// Recursive attributes (`rro`, `rnosuid`, ...) applied with mount_setattr(AT_RECURSIVE).
    pub recursive: RecursiveAttrs,
    /// `tmpcopyup`: copy what the image has at the destination into the new tmpfs.
    pub tmpcopyup: bool,
    /// Read-only is applied only after /dev is populated (a read-only `/dev` mount, as runc).
    pub readonly_after_setup: bool,
    /// An idmapped bind mount (`idmap`/`ridmap`, or mount uid/gid mappings).
    pub idmap: Option<IdMap>,
}

/// The id mappings of an idmapped mount, as (containerID, hostID, size) triples written to the
/// uid_map/gid_map of the user namespace the mount is attached with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// `ridmap`: the mounts below the bind are idmapped too.
    pub recursive: bool,
    /// uid mappings.
    pub uid: Vec<(u32, u32, u32)>,
    /// gid mappings.
    pub gid: Vec<(u32, u32, u32)>,
}

/// mount_setattr(2) attribute changes: bits to set and bits to clear (`MOUNT_ATTR_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecursiveAttrs {
    /// Attributes to set.
    pub set: u64,
    /// Attributes to clear.
    pub clear: u64,
}

impl RecursiveAttrs {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

/// `MOUNT_ATTR_*` values from linux/mount.h.
pub mod mount_attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// Ignore suid and sgid bits.
    pub const NOSUID: u64 = 0x2;
    /// No device access.
    pub const NODEV: u64 = 0x4;
    /// No program execution.
    pub const NOEXEC: u64 = 0x8;
    /// The atime mode field (to clear before setting one of the modes below).
    pub const ATIME_MASK: u64 = 0x70;
    /// relatime (the atime mode value 0).
    pub const RELATIME: u64 = 0x0;
    /// noatime.
    pub const NOATIME: u64 = 0x10;
    /// strictatime.
    pub const STRICTATIME: u64 = 0x20;
    /// No directory atime updates.
    pub const NODIRATIME: u64 = 0x80;
    /// Idmapped mount.
    pub const IDMAP: u64 = 0x100000;
    /// Do not follow symlinks.
    pub const NOSYMFOLLOW: u64 = 0x200000;
}

/// The recursive attribute options (runc's extension, mount_setattr with AT_RECURSIVE):
/// name -> (bits to set, bits to clear). The atime modes clear the whole atime field first,
/// as the kernel requires; `ratime`, `rnostrictatime` go back to relatime (the kernel default)
/// and `rnorelatime` to strictatime.
pub fn recursive_option(name: &str) -> Option<(u64, u64)> {
    use mount_attr::*;
    Some(match name {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        "rnoatime" => (NOATIME, ATIME_MASK),
        "rrelatime" | "ratime" | "rnostrictatime" => (RELATIME, ATIME_MASK),
        "rstrictatime" | "rnorelatime" => (STRICTATIME, ATIME_MASK),
        _ => return None,
    })
}

/// Parsed mount options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Flags explicitly cleared (rw, suid, dev, exec, ...).
    pub cleared: MsFlags,
    /// Propagation flags, in order.
    pub propagation: Vec<MsFlags>,
    /// Unknown options, passed as data.
    pub data: Vec<String>,
    /// Recursive attributes.
    pub recursive: RecursiveAttrs,
    /// `tmpcopyup` was given.
    pub tmpcopyup: bool,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)) was given.
    pub idmap: Option<bool>,
}

/// Maps a propagation name (as in `linux.rootfsPropagation` or a mount option) to its flag.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// The mount options this runtime understands (reported by `berth features`).
pub const KNOWN_OPTIONS: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            recursive: RecursiveAttrs::default(),
            tmpcopyup: false,
            idmap: None,
        }
    }
}

/// Splits mount options into flags, cleared flags, propagation and data.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "silent" | "loud" => (MsFlags::empty(), MsFlags::empty()),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            // MS_NOSYMFOLLOW (0x100) is not in nix's MsFlags.
            "nosymfollow" => (MsFlags::from_bits_retain(0x100), MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MsFlags::from_bits_retain(0x100)),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "acl" => (MsFlags::MS_POSIXACL, MsFlags::empty()),
            "noacl" => (MsFlags::empty(), MsFlags::MS_POSIXACL),
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            "idmap" => {
                o.idmap = Some(o.idmap.unwrap_or(false));
                continue;
            }
            "ridmap" => {
                o.idmap = Some(true);
                continue;
            }
            other => {
                if let Some((set, clear)) = recursive_option(other) {
                    // A later option wins over an earlier one for the same bits.
                    o.recursive.set = (o.recursive.set & !(set | clear)) | set;
                    o.recursive.clear = (o.recursive.clear & !(set | clear)) | clear;
                } else if let Some(p) = propagation_flag(other) {
                    o.propagation.push(p);
                } else {
                    o.data.push(other.to_string());
                }
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.cleared.insert(clear);
    }
    o
}

/// Lexically cleans an absolute destination into a path relative to the rootfs
/// (`/a/./b/../c` -> `a/c`); `..` never climbs above the root.
pub fn clean_dest(dest: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Files under /proc that may be covered by a bind mount (lxcfs-style), as runc allows;
/// anything else mounted over /proc could hide masked paths (CVE-2019-16884 class).
const PROC_OVERRIDES: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Builds the mount steps for `spec`; relative bind sources are taken relative to `bundle`.
/// What the plan ignores (see [`plan_with_warnings`]) is logged as a warning.
pub fn plan(spec: &Spec, bundle: &Path) -> Result<Vec<MountStep>, RootfsError> {
    let (steps, warnings) = plan_with_warnings(spec, bundle)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(steps)
}

/// The mount steps for `spec` and the warnings about what the runtime-spec allows but berth
/// ignores: options a bind mount cannot use (filesystem data such as `mode=755`, which the
/// kernel ignores on a bind, as runc does), each naming the mount and the option and, for a
/// misspelt option, the nearest known one; a procfs bound onto /proc in a new pid namespace.
pub fn plan_with_warnings(
    spec: &Spec,
    bundle: &Path,
) -> Result<(Vec<MountStep>, Vec<String>), RootfsError> {
    let mut warnings = Vec::new();
    let new_pid_ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
            })
        });
    let mut steps = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{index}]");
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
        let fstype = m.typ().clone().unwrap_or_default();
        let is_bind = opts.flags.contains(MsFlags::MS_BIND) || fstype == "bind";
        let kind = if is_bind {
            MountKind::Bind
        } else {
            match fstype.as_str() {
                "proc" => MountKind::Proc,
                "sysfs" => MountKind::Sysfs,
                "cgroup" | "cgroup2" => MountKind::Cgroup,
                "" => {
                    return Err(RootfsError::Plan {
                        field: format!("{field}.type"),
                        msg: "a mount without a type must have the bind or rbind option".into(),
                    })
                }
                _ => MountKind::Other,
            }
        };
        let dest = clean_dest(m.destination());
        if dest.as_os_str().is_empty() {
            return Err(RootfsError::Plan {
                field: format!("{field}.destination"),
                msg: "cannot mount over the container's root".into(),
            });
        }
        if dest.starts_with("proc") {
            // A bind onto /proc itself is allowed only from a procfs (checked when mounting)
            // and only in the caller's PID namespace, as runc allows it for rootless
            // containers; with a new one it would show the container the host's processes
            // (and their /proc/PID/root), which runc allows and berth refuses.
            let ok = (dest == Path::new("proc")
                && matches!(kind, MountKind::Proc | MountKind::Bind))
                || (kind == MountKind::Bind && PROC_OVERRIDES.iter().any(|p| dest == Path::new(p)));
            if !ok {
                return Err(RootfsError::Plan {
                    field: format!("{field}.destination"),
                    msg: format!("{} may only be mounted with type proc (or a bind over an allowed /proc file)", m.destination().display()),
                });
            }
            if dest == Path::new("proc") && kind == MountKind::Bind && new_pid_ns {
                // The spec allows it and runc does it: a warning, not an error.
                warnings.push(format!(
                    "{field}: the bind onto /proc shows the container the processes of the pid \
                     namespace its source belongs to, not of its own new pid namespace: mount \
                     type proc instead to see only the container's"
                ));
            }
        }
        let source = m.source().clone().map(|s| {
            if is_bind && s.is_relative() {
                bundle.join(s)
            } else {
                s
            }
        });
        if is_bind && source.is_none() {
            return Err(RootfsError::Plan {
                field: format!("{field}.source"),
                msg: "a bind mount needs a source".into(),
            });
        }
        if is_bind {
            // The kernel ignores data on a bind mount (runc passes it and the kernel drops it):
            // the option is ignored, with a warning naming it, and the nearest known option
            // when it looks misspelt (a misspelt rro would otherwise leave the mount writable).
            for bad in &opts.data {
                warnings.push(ignored_bind_option(&field, m.destination(), bad));
            }
        }
        if opts.tmpcopyup && (is_bind || fstype != "tmpfs") {
            return Err(RootfsError::Plan {
                field: format!("{field}.options"),
                msg: format!(
                    "tmpcopyup is only valid on a tmpfs mount, not on {} ({})",
                    m.destination().display(),
                    if is_bind { "bind" } else { fstype.as_str() }
                ),
            });
        }
        let idmap = plan_idmap(spec, m, &opts, is_bind, &field)?;
        let (mut flags, remount_flags) = if is_bind {
            let base = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
            let rest = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            (base, rest)
        } else {
            (opts.flags, MsFlags::empty())
        };
        // A read-only /dev still gets its device nodes and symlinks: mount it writable and
        // make it read-only once populated (runc does the same).
        // The same for a read-only tmpfs that is filled by tmpcopyup.
        let readonly_after_setup = !is_bind
            && (dest == Path::new("dev") || opts.tmpcopyup)
            && flags.contains(MsFlags::MS_RDONLY);
        if readonly_after_setup {
            flags.remove(MsFlags::MS_RDONLY);
        }
        steps.push(MountStep {
            index,
            dest,
            source,
            fstype: if is_bind { "bind".into() } else { fstype },
            kind,
            flags,
            remount_flags,
            propagation: opts.propagation,
            data: if is_bind {
                String::new()
            } else {
                opts.data.join(",")
            },
            recursive: opts.recursive,
            tmpcopyup: opts.tmpcopyup,
            readonly_after_setup,
            idmap,
        });
    }
    Ok((steps, warnings))
}

/// The warning for an option a bind mount cannot use: it names the mount and the option,
/// and the nearest known option when the option looks like a misspelling of one.
fn ignored_bind_option(field: &str, dest: &Path, opt: &str) -> String {
    let head = format!(
        "{field}: ignoring mount option {opt:?} on the bind mount on {}",
        dest.display()
    );
    match nearest_option(opt) {
        Some(known) => format!("{head}: unknown option, did you mean {known:?}?"),
        None if opt.contains('=') => {
            format!("{head}: a bind mount cannot use filesystem data options")
        }
        None => format!("{head}: unknown option"),
    }
}

/// The known option `opt` is most likely a misspelling of: within two edits, or a known
/// option of three letters or more followed by extra characters (`rro-typo`). `None` for
/// `key=value` data options.
pub fn nearest_option(opt: &str) -> Option<&'static str> {
    if opt.contains('=') {
        return None;
    }
    let lower = opt.to_ascii_lowercase();
    let by_distance = KNOWN_OPTIONS
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .min()
        .filter(|(d, _)| *d <= 2)
        .map(|(_, k)| k);
    by_distance.or_else(|| {
        KNOWN_OPTIONS
            .iter()
            .filter(|k| k.len() >= 3 && lower.starts_with(**k))
            .max_by_key(|k| k.len())
            .copied()
    })
}

/// Levenshtein distance between two short ASCII strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The idmap of one mount: its own uid/gid mappings, or the container's user namespace
/// mappings when only `idmap`/`ridmap` is given (the runtime-spec's rule). Only bind mounts can
/// be idmapped here.
fn plan_idmap(
    spec: &Spec,
    m: &oci_spec::runtime::Mount,
    opts: &MountOptions,
    is_bind: bool,
    field: &str,
) -> Result<Option<IdMap>, RootfsError> {
    let triples = |v: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<(u32, u32, u32)> {
        v.into_iter()
            .flatten()
            .map(|x| (x.container_id(), x.host_id(), x.size()))
            .collect()
    };
    let own_uid = triples(m.uid_mappings().as_ref());
    let own_gid = triples(m.gid_mappings().as_ref());
    if opts.idmap.is_none() && own_uid.is_empty() && own_gid.is_empty() {
        return Ok(None);
    }
    let err = |msg: String| RootfsError::Plan {
        field: field.to_string(),
        msg,
    };
    if !is_bind {
        return Err(err(format!(
            "idmapped mounts are only supported for bind mounts, not {}",
            m.typ().as_deref().unwrap_or("this type")
        )));
    }
    if own_uid.is_empty() != own_gid.is_empty() {
        return Err(err(
            "uidMappings and gidMappings must be given together".into()
        ));
    }
    let (uid, gid) = if own_uid.is_empty() {
        let linux = spec.linux().as_ref();
        (
            triples(linux.and_then(|l| l.uid_mappings().as_ref())),
            triples(linux.and_then(|l| l.gid_mappings().as_ref())),
        )
    } else {
        (own_uid, own_gid)
    };
    if uid.is_empty() || gid.is_empty() {
        return Err(err(
            "idmap needs mappings: give the mount uidMappings/gidMappings or the container a user namespace with linux.uidMappings/gidMappings".into(),
        ));
    }
    Ok(Some(IdMap {
        recursive: opts.idmap.unwrap_or(false),
        uid,
        gid,
    }))
}

/// Whether the runtime must populate /dev itself: true unless the spec bind-mounts /dev.
pub fn needs_dev_setup(steps: &[MountStep]) -> bool {
    !steps
        .iter()
        .any(|s| s.dest == Path::new("dev") && s.kind == MountKind::Bind)
}

/// A device node to create in the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// Path relative to the rootfs.
    pub path: PathBuf,
    /// 'c', 'b' or 'p'.
    pub kind: char,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The devices every container gets (null, zero, full, random, urandom, tty) followed by
/// `linux.devices`; a listed device replaces a default one at the same path.
pub fn devices(spec: &Spec) -> Vec<DeviceNode> {
    let mut out: Vec<DeviceNode> = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(name, major, minor)| DeviceNode {
        path: PathBuf::from("dev").join(name),
        kind: 'c',
        major: *major,
        minor: *minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect();
    for d in spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        use oci_spec::runtime::LinuxDeviceType as T;
        let node = DeviceNode {
            path: clean_dest(d.path()),
            kind: match d.typ() {
                T::B => 'b',
                T::P => 'p',
                _ => 'c',
            },
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        out.retain(|n| n.path != node.path);
        out.push(node);
    }
    out
}

/// Symlinks every container's /dev gets: (link path relative to rootfs, target).
pub const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("dev/fd", "/proc/self/fd"),
    ("dev/stdin", "/proc/self/fd/0"),
    ("dev/stdout", "/proc/self/fd/1"),
    ("dev/stderr", "/proc/self/fd/2"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec_with_mounts(mounts: serde_json::Value) -> Spec {
        serde_json::from_value(json!({"ociVersion": "1.0.0", "mounts": mounts})).unwrap()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "rw".into(),
            "mode=755".into(),
            "rslave".into(),
            "size=64k".into(),
            "ro".into(),
        ]);
        assert!(o.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data, vec!["mode=755", "size=64k"]);
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn recursive_options_later_ones_win() {
        use mount_attr::*;
        let o = parse_options(&["rro".into(), "rnosuid".into(), "rrw".into()]);
        assert_eq!(o.recursive.set, NOSUID);
        assert_eq!(o.recursive.clear, RDONLY);
        let o = parse_options(&["rnoatime".into()]);
        assert_eq!((o.recursive.set, o.recursive.clear), (NOATIME, ATIME_MASK));
        let o = parse_options(&["rnoatime".into(), "rrelatime".into()]);
        assert_eq!((o.recursive.set, o.recursive.clear), (RELATIME, ATIME_MASK));
        assert!(o.data.is_empty());
        let o = parse_options(&["acl".into(), "tmpcopyup".into()]);
        assert!(o.flags.contains(MsFlags::MS_POSIXACL) && o.tmpcopyup);
    }

    #[test]
    fn every_known_option_is_parsed_not_passed_as_data() {
        for opt in KNOWN_OPTIONS {
            let o = parse_options(&[opt.to_string()]);
            assert!(o.data.is_empty(), "{opt} ended up as data");
        }
    }

    #[test]
    fn bind_data_options_are_ignored_with_a_warning() {
        let spec = spec_with_mounts(json!([
            {"destination": "/a", "source": "/tmp", "options": ["rbind", "mode=755", "bogus"]},
            {"destination": "/b", "type": "bind", "source": "/tmp", "options": ["rbind", "rr0"]},
            {"destination": "/c", "source": "/tmp", "options": ["bind", "rro-typo", "nosiud"]}
        ]));
        let (steps, w) = plan_with_warnings(&spec, Path::new("/b")).unwrap();
        assert!(steps.iter().all(|s| s.data.is_empty()));
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(
            w[0].starts_with("mounts[0]:") && w[0].contains("\"mode=755\"") && w[0].contains("/a"),
            "{w:?}"
        );
        assert!(w[0].contains("data options"), "{w:?}");
        assert!(
            w[1].contains("\"bogus\"") && !w[1].contains("did you mean"),
            "{w:?}"
        );
        assert!(
            w[2].starts_with("mounts[1]:") && w[2].contains("did you mean \"rro\""),
            "{w:?}"
        );
        assert!(
            w[3].contains("\"rro-typo\"") && w[3].contains("did you mean \"rro\""),
            "{w:?}"
        );
        assert!(w[4].contains("did you mean \"nosuid\""), "{w:?}");
        // Data options of other filesystems go to the kernel, without a warning.
        let spec = spec_with_mounts(
            json!([{"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]}]),
        );
        let (steps, w) = plan_with_warnings(&spec, Path::new("/b")).unwrap();
        assert_eq!(steps[0].data, "mode=755");
        assert!(w.is_empty());
    }

    #[test]
    fn nearest_option_suggests_only_close_names() {
        assert_eq!(nearest_option("rro"), Some("rro"));
        assert_eq!(nearest_option("rrro"), Some("rro"));
        assert_eq!(nearest_option("ronosuid"), Some("rnosuid"));
        assert_eq!(nearest_option("size=1m"), None);
        assert_eq!(nearest_option("completely-different"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn misplaced_tmpcopyup_is_an_error() {
        let spec = spec_with_mounts(
            json!([{"destination": "/data", "source": "/tmp", "options": ["rbind", "tmpcopyup"]}]),
        );
        let e = plan(&spec, Path::new("/b")).unwrap_err().to_string();
        assert!(e.contains("tmpcopyup"), "{e}");
        let spec = spec_with_mounts(
            json!([{"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "tmpcopyup", "mode=755"]}]),
        );
        let s = &plan(&spec, Path::new("/b")).unwrap()[0];
        assert!(s.tmpcopyup);
        assert_eq!(s.data, "mode=755");
    }

    #[test]
    fn readonly_dev_is_made_readonly_after_setup() {
        let spec = spec_with_mounts(
            json!([{"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]}]),
        );
        let s = &plan(&spec, Path::new("/b")).unwrap()[0];
        assert!(s.readonly_after_setup);
        assert!(!s.flags.contains(MsFlags::MS_RDONLY));
        assert!(s.flags.contains(MsFlags::MS_NOSUID));
    }

    #[test]
    fn clean_dest_never_climbs_out() {
        assert_eq!(clean_dest(Path::new("/a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(clean_dest(Path::new("/../../etc")), PathBuf::from("etc"));
        assert_eq!(clean_dest(Path::new("/")), PathBuf::new());
    }

    #[test]
    fn bind_flags_are_split_into_mount_and_remount() {
        let spec = spec_with_mounts(
            json!([{"destination": "/data", "source": "data", "options": ["rbind", "ro", "nosuid", "rprivate"]}]),
        );
        let steps = plan(&spec, Path::new("/bundle")).unwrap();
        let s = &steps[0];
        assert_eq!(s.kind, MountKind::Bind);
        assert_eq!(s.source.as_deref(), Some(Path::new("/bundle/data")));
        assert_eq!(s.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(s.remount_flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(s.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn type_bind_without_option_is_a_bind() {
        let spec =
            spec_with_mounts(json!([{"destination": "/x", "type": "bind", "source": "/tmp"}]));
        assert_eq!(
            plan(&spec, Path::new("/b")).unwrap()[0].kind,
            MountKind::Bind
        );
    }

    #[test]
    fn mounts_over_proc_are_restricted() {
        let spec = spec_with_mounts(
            json!([{"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}]),
        );
        assert!(plan(&spec, Path::new("/b"))
            .unwrap_err()
            .to_string()
            .contains("mounts[0].destination"));
        let spec = spec_with_mounts(
            json!([{"destination": "/proc/self", "type": "none", "source": "/tmp", "options": ["bind"]}]),
        );
        assert!(plan(&spec, Path::new("/b")).is_err());
        // A bind onto /proc itself is planned; its source must be a procfs (checked when mounting).
        let spec = spec_with_mounts(
            json!([{"destination": "/proc", "type": "none", "source": "/proc", "options": ["rbind"]}]),
        );
        assert!(plan(&spec, Path::new("/b")).is_ok());
        // ... and in a new pid namespace too, with a warning (the spec allows it, runc does it).
        let spec: Spec = serde_json::from_value(json!({"ociVersion": "1.0.0",
            "mounts": [{"destination": "/proc", "type": "none", "source": "/proc", "options": ["rbind"]}],
            "linux": {"namespaces": [{"type": "pid"}]}}))
        .unwrap();
        let (_, w) = plan_with_warnings(&spec, Path::new("/b")).unwrap();
        assert!(
            w.len() == 1 && w[0].contains("mounts[0]") && w[0].contains("pid namespace"),
            "{w:?}"
        );
        let spec = spec_with_mounts(
            json!([{"destination": "/proc/cpuinfo", "source": "/tmp/c", "options": ["bind"]}]),
        );
        assert!(plan(&spec, Path::new("/b")).is_ok());
    }

    #[test]
    fn untyped_non_bind_mount_is_an_error() {
        let spec = spec_with_mounts(json!([{"destination": "/x", "source": "/tmp"}]));
        assert!(plan(&spec, Path::new("/b"))
            .unwrap_err()
            .to_string()
            .contains("mounts[0].type"));
    }

    #[test]
    fn listed_device_replaces_default() {
        let spec: Spec = serde_json::from_value(json!({"ociVersion": "1.0.0", "linux": {"devices": [
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 5},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
        ]}})).unwrap();
        let devs = devices(&spec);
        assert_eq!(
            devs.iter()
                .filter(|d| d.path == Path::new("dev/null"))
                .count(),
            1
        );
        assert_eq!(
            devs.iter()
                .find(|d| d.path == Path::new("dev/null"))
                .unwrap()
                .uid,
            5
        );
        assert!(devs
            .iter()
            .any(|d| d.path == Path::new("dev/fuse") && d.major == 10));
    }

    #[test]
    fn dev_setup_skipped_when_dev_is_bound() {
        let spec = spec_with_mounts(
            json!([{"destination": "/dev", "source": "/dev", "options": ["rbind"]}]),
        );
        assert!(!needs_dev_setup(&plan(&spec, Path::new("/b")).unwrap()));
        let spec =
            spec_with_mounts(json!([{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}]));
        assert!(needs_dev_setup(&plan(&spec, Path::new("/b")).unwrap()));
    }
}
