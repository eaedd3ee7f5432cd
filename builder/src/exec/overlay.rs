//! overlayfs snapshots of a stage: the stage's unpacked layers as lower
//! dirs, and (for a step that writes) an upper dir that becomes the layer.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::ExecError;

/// Most of a page: the limit of mount(2)'s option string.
const MAX_OPTIONS: usize = 4000;

/// The mount option string for `lowers` (names relative to the layers
/// directory, topmost first) and an optional `(upper, work)` pair.
pub fn overlay_options(
    lowers: &[String],
    upper: Option<(&Path, &Path)>,
) -> Result<String, ExecError> {
    let mut opts = format!("lowerdir={}", lowers.join(":"));
    if let Some((u, w)) = upper {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            u.display(),
            w.display()
        ));
    }
    // Plain copy-up semantics: the upper dir must hold whole files and
    // directories so that it can be archived as a layer on its own.
    opts.push_str(",index=off,redirect_dir=off,metacopy=off");
    if opts.len() > MAX_OPTIONS || lowers.iter().any(|l| l.contains([',', ':'])) {
        return Err(ExecError::TooManyLayers(lowers.len()));
    }
    Ok(opts)
}

/// A mounted overlay, unmounted on drop (lazily if still busy).
#[derive(Debug)]
pub struct Overlay {
    target: PathBuf,
    mounted: bool,
}

impl Overlay {
    /// Mounts an overlay at `target`. `lowers` are directory names inside
    /// `layers_dir`, topmost first (at least one).
    pub fn mount(
        layers_dir: &Path,
        lowers: &[String],
        upper: Option<(&Path, &Path)>,
        target: &Path,
    ) -> Result<Overlay, ExecError> {
        let mut opts = overlay_options(lowers, upper)?;
        // Rootless: markers in user.overlay.* xattrs (trusted.* needs real root).
        // (userxattr refuses redirect_dir=off, which means "follow"; nofollow makes no
        // redirects either.)
        if crate::rootless::active() {
            opts = opts.replace("redirect_dir=off", "redirect_dir=nofollow");
            opts.push_str(",userxattr");
        }
        // Lower dirs are given relative to the layers directory to keep the
        // option string short; the kernel resolves them against our cwd.
        // The working directory belongs to the process unless the thread
        // unshared it (the stage threads do): one mount at a time.
        static CWD: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _cwd = CWD.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::env::current_dir().map_err(|e| ExecError::io("current directory", e))?;
        std::env::set_current_dir(layers_dir)
            .map_err(|e| ExecError::io(layers_dir.display(), e))?;
        let r = mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        );
        let _ = std::env::set_current_dir(&old);
        r.map_err(|e| ExecError::Mount(target.to_path_buf(), e.to_string()))?;
        tracing::debug!(target = %target.display(), options = %opts, "mounted overlay");
        Ok(Overlay {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    /// The merged directory.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Leaves the overlay mounted after this value is gone (for bundles
    /// that outlive the process; `berth-build unmount` removes them).
    pub fn keep(mut self) {
        self.mounted = false;
    }

    /// Unmounts now, reporting errors.
    pub fn unmount(mut self) -> Result<(), ExecError> {
        self.mounted = false;
        // With stages running concurrently, another stage's RUN container may hold a copy of
        // this mount for a moment (a new mount namespace copies the builder's, and the copy is
        // a propagation peer until that container makes its mounts private): the unmount then
        // fails with EBUSY until it has. Retry briefly, then detach (the upper directory's
        // content is complete either way: the container has exited).
        let mut wait = std::time::Duration::from_millis(1);
        for _ in 0..8 {
            match umount2(&self.target, MntFlags::empty()) {
                Ok(()) => return Ok(()),
                Err(nix::errno::Errno::EBUSY) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(ExecError::Mount(
                        self.target.clone(),
                        format!("unmount: {e}"),
                    ))
                }
            }
        }
        umount2(&self.target, MntFlags::MNT_DETACH)
            .map_err(|e| ExecError::Mount(self.target.clone(), format!("unmount: {e}")))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if self.mounted && umount2(&self.target, MntFlags::empty()).is_err() {
            let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o = overlay_options(
            &["b".into(), "a".into()],
            Some((Path::new("/s/u"), Path::new("/s/w"))),
        )
        .expect("opts");
        assert_eq!(
            o,
            "lowerdir=b:a,upperdir=/s/u,workdir=/s/w,index=off,redirect_dir=off,metacopy=off"
        );
        let many: Vec<String> = (0..100).map(|i| format!("{i:064}")).collect();
        assert!(matches!(
            overlay_options(&many, None),
            Err(ExecError::TooManyLayers(100))
        ));
    }
}
