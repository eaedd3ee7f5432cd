//! Linux capability sets: names -> numbers, and applying all five sets of `process.capabilities`.
//! Sets not listed are left empty, so nothing is inherited by accident (CVE-2022-29162 class:
//! the inheritable set is only what the config asks for).

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};
use std::io;

/// Capability names in kernel order; the index is the capability number.
pub const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

/// The number of a capability from oci-spec's enum (`CAP_` + its SCREAMING_SNAKE name).
pub fn number(cap: &Capability) -> Option<u32> {
    let name = format!("CAP_{cap}");
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// A set as a 64-bit mask, ignoring capabilities this kernel does not have (as runc warns and skips).
pub fn mask(set: Option<&Capabilities>) -> u64 {
    let last = last_cap();
    set.into_iter()
        .flatten()
        .filter_map(number)
        .filter(|n| *n <= last)
        .fold(0u64, |m, n| m | (1u64 << n))
}

/// The five sets of `process.capabilities`, by their JSON names.
pub const SETS: &[&str] = &[
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

/// Removes from the five capability sets of a process object (`process` of config.json, or an
/// exec's process.json) every name this runtime cannot map to a capability, and returns the
/// warning to log for them, in runc's words. The runtime-spec (config.md, `capabilities`):
/// "Any value which cannot be mapped to a relevant kernel interface, or cannot be granted
/// otherwise MUST be logged as a warning by the runtime. Runtimes SHOULD NOT fail if the
/// container configuration requests capabilities that cannot be granted."
pub fn drop_unknown(process: &mut serde_json::Value) -> Option<String> {
    let caps = process.get_mut("capabilities")?.as_object_mut()?;
    let mut dropped: Vec<String> = Vec::new();
    for set in SETS {
        if let Some(list) = caps.get_mut(*set).and_then(|v| v.as_array_mut()) {
            list.retain(|v| {
                // What oci-spec's parser accepts (it also takes `SYS_ADMIN`, any case); a
                // value that is not a string stays, for the parser to report as invalid.
                let Some(name) = v.as_str() else {
                    return true;
                };
                let known = serde_json::from_value::<Capability>(v.clone()).is_ok();
                if !known && !dropped.iter().any(|d| d == name) {
                    dropped.push(name.to_string());
                }
                known
            });
        }
    }
    (!dropped.is_empty()).then(|| unknown_warning(&dropped))
}

/// runc's warning for capabilities it ignores.
fn unknown_warning(names: &[String]) -> String {
    format!(
        "ignoring unknown or unavailable capabilities: [{}]",
        names.join(" ")
    )
}

/// The warning for capabilities of `caps` that this kernel does not have (a newer name than the
/// running kernel knows): they are left out of the sets, as the spec and runc say.
pub fn unavailable(caps: Option<&LinuxCapabilities>) -> Option<String> {
    let caps = caps?;
    let sets = [
        caps.bounding(),
        caps.effective(),
        caps.inheritable(),
        caps.permitted(),
        caps.ambient(),
    ];
    let all = || sets.iter().flat_map(|s| s.iter().flatten());
    // Every kernel berth runs on (5.x and later) has the capabilities up to CAP_AUDIT_READ:
    // the kernel is asked only when the config names a newer one.
    if all().all(|c| number(c).is_some_and(|n| n <= CAP_AUDIT_READ)) {
        return None;
    }
    let last = last_cap();
    let mut names: Vec<String> = Vec::new();
    {
        for c in all() {
            let n = format!("CAP_{c}");
            if number(c).is_none_or(|i| i > last) && !names.contains(&n) {
                names.push(n);
            }
        }
    }
    (!names.is_empty()).then(|| unknown_warning(&names))
}

/// The number of CAP_AUDIT_READ (Linux 3.16), the last one every supported kernel has.
const CAP_AUDIT_READ: u32 = 37;

/// The five masks to apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Ambient set.
    pub ambient: u64,
}

impl CapSets {
    /// Masks from the spec's `process.capabilities` (absent: every set empty).
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> CapSets {
        let Some(c) = caps else {
            return CapSets::default();
        };
        CapSets {
            bounding: mask(c.bounding().as_ref()),
            effective: mask(c.effective().as_ref()),
            inheritable: mask(c.inheritable().as_ref()),
            permitted: mask(c.permitted().as_ref()),
            ambient: mask(c.ambient().as_ref()),
        }
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// Drops every capability not in `bounding` from the bounding set (needs CAP_SETPCAP).
pub fn drop_bounding(bounding: u64) -> io::Result<()> {
    for n in 0..=last_cap() {
        if bounding & (1u64 << n) == 0 {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets with capset(2).
pub fn set_eip(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and a two-element data array as capset(2) v3 requires.
    if unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clears the ambient set, then raises the capabilities in `ambient` (each must be permitted and inheritable).
pub fn set_ambient(ambient: u64) -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    for n in 0..=last_cap() {
        if ambient & (1u64 << n) != 0 {
            // SAFETY: prctl with integer arguments.
            if unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    n as libc::c_ulong,
                    0,
                    0,
                )
            } < 0
            {
                let e = io::Error::last_os_error();
                // Raising an ambient cap that is not both permitted and inheritable fails: skip it as runc does.
                if e.raw_os_error() != Some(libc::EPERM) && e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_kernel_order() {
        assert_eq!(number(&Capability::Chown), Some(0));
        assert_eq!(number(&Capability::NetBindService), Some(10));
        assert_eq!(number(&Capability::SysAdmin), Some(21));
        assert_eq!(number(&Capability::AuditWrite), Some(29));
        assert_eq!(number(&Capability::CheckpointRestore), Some(40));
    }

    #[test]
    fn mask_of_default_set() {
        let set: Capabilities = [Capability::Kill, Capability::AuditWrite]
            .into_iter()
            .collect();
        assert_eq!(mask(Some(&set)), (1 << 5) | (1 << 29));
        assert_eq!(mask(None), 0);
    }
}
