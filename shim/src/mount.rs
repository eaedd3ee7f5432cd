//! The rootfs mounts containerd passes in CreateTaskRequest (an overlay or a bind of a snapshot)
//! mounted on `<bundle>/rootfs`, and unmounted again at delete. Option parsing is pure.

use crate::proto::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

/// Flags and the data string for one mount's options (mount(8) names), parsed by the
/// runtime's own option parser so the shim and config.json mounts agree on every name.
pub fn parse_options(options: &[String]) -> (MsFlags, String) {
    let o = berth::rootfs::plan::parse_options(options);
    (o.flags, o.data.join(","))
}

/// Mounts containerd's rootfs mounts on `target`, in order; on failure, unmounts what was
/// mounted and names the failing mount.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), String> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(target).map_err(|e| format!("create {}: {e}", target.display()))?;
    for (i, m) in mounts.iter().enumerate() {
        let (flags, data) = parse_options(&m.options);
        let dest = if m.target.is_empty() || m.target == "/" {
            target.to_path_buf()
        } else {
            // containerd 1.7+ may name a sub-target; it comes from containerd, not the image.
            target.join(m.target.trim_start_matches('/'))
        };
        let fstype = if flags.contains(MsFlags::MS_BIND) {
            None
        } else {
            Some(m.r#type.as_str())
        };
        let data_opt = if data.is_empty() {
            None
        } else {
            Some(data.as_str())
        };
        let r = mount(
            Some(m.source.as_str()),
            &dest,
            fstype,
            flags & !MsFlags::MS_RDONLY,
            data_opt,
        )
        .and_then(|()| {
            if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
                mount(
                    None::<&str>,
                    &dest,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    None::<&str>,
                )
            } else if flags.contains(MsFlags::MS_RDONLY) {
                mount(
                    None::<&str>,
                    &dest,
                    None::<&str>,
                    MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                    data_opt,
                )
            } else {
                Ok(())
            }
        });
        if let Err(e) = r {
            unmount_all(target);
            return Err(format!(
                "mount rootfs[{i}] (type {:?}, source {:?}) on {}: {e}",
                m.r#type,
                m.source,
                dest.display()
            ));
        }
    }
    Ok(())
}

/// Unmounts everything mounted on or below `target` (deepest first); errors are ignored
/// beyond what is still mounted afterwards.
pub fn unmount_all(target: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let t = target.to_string_lossy().to_string();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == t || p.starts_with(&format!("{t}/")))
        .map(str::to_string)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        if umount2(p.as_str(), MntFlags::empty()).is_err() {
            let _ = umount2(p.as_str(), MntFlags::MNT_DETACH);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_go_to_data_and_flags_to_flags() {
        let (f, d) = parse_options(&[
            "index=off".into(),
            "workdir=/w".into(),
            "upperdir=/u".into(),
            "lowerdir=/l".into(),
            "ro".into(),
        ]);
        assert_eq!(f, MsFlags::MS_RDONLY);
        assert_eq!(d, "index=off,workdir=/w,upperdir=/u,lowerdir=/l");
        let (f, d) = parse_options(&["rbind".into(), "rw".into()]);
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(d.is_empty());
    }
}
