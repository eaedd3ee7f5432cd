//! FROM and `--from` images: an OCI layout or archive, a Docker archive,
//! an image in the store, or (when missing) a pull from a registry.

use crate::build::{Builder, StageState, StepErrorKind};
use crate::digest::Digest;
use crate::oci::{self, ImageSource, Layout, ResolvedImage};
use crate::plan::Platform;
use crate::progress::ProgressMode;
use crate::registry::{pull, PullOptions, PullPolicy, Reference};
use crate::store::{LayerRecord, StoredImage};

impl<'a> Builder<'a> {
    /// Image `reference` for the build's target platform (`COPY --from`,
    /// `RUN --mount=from=`).
    pub(crate) fn load_image(&mut self, reference: &str) -> Result<StageState, StepErrorKind> {
        let platform = self.req.platform.clone();
        self.load_image_for(reference, &platform)
    }

    /// The state of image `reference` for `platform` (a stage's `FROM
    /// --platform`, else the target platform): the entry of a registry's
    /// index that a pull picks, and a stored image only when it is for that
    /// platform. Loaded (imported or pulled) once per build: stages building
    /// at the same time wait for each other here.
    pub(crate) fn load_image_for(
        &mut self,
        reference: &str,
        platform: &Platform,
    ) -> Result<StageState, StepErrorKind> {
        let key = format!("{reference}\n{platform}");
        let shared = self.shared;
        let mut images = shared.images.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = images.get(&key) {
            return Ok(s.clone());
        }
        let resolved: ResolvedImage;
        let source = ImageSource::parse(reference, self.context);
        let _scratch;
        let layout: Layout = match &source {
            ImageSource::Layout(dir, tag) => {
                let l = Layout::open(dir)?;
                resolved = l.resolve(tag.as_deref())?;
                l
            }
            ImageSource::Archive(file, tag) => {
                let s = self.store.scratch("archive")?;
                let l = oci::open_archive(file, s.path())?;
                resolved = l.resolve(tag.as_deref())?;
                _scratch = s;
                l
            }
            ImageSource::Stored(name) => {
                let img = self.stored_or_pulled(name, platform)?;
                let l = self.store.layout().clone();
                resolved = l.resolve_descriptor(img.manifest, 0)?;
                l
            }
        };
        let mut layers = Vec::new();
        for (desc, diff_id) in resolved
            .manifest
            .layers
            .iter()
            .zip(resolved.config.rootfs.diff_ids.iter())
        {
            if !self.store.layout().has_blob(&desc.digest) {
                let mut f = layout.open_blob(&desc.digest)?;
                self.store
                    .layout()
                    .import_blob(&mut f, &desc.digest, Some(desc.size))?;
            }
            layers.push(LayerRecord {
                digest: desc.digest.clone(),
                diff_id: diff_id.clone(),
                size: desc.size,
                media_type: desc.media_type.clone(),
            });
        }
        shared
            .materials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((reference.to_string(), resolved.descriptor.digest.clone()));
        let state = StageState {
            layers,
            config: resolved.config,
            key: Digest::of(format!("image\n{}", resolved.descriptor.digest).as_bytes()),
        };
        images.insert(key, state.clone());
        Ok(state)
    }

    /// An image in the store by name, pulled first as `--pull` says
    /// (missing: only when absent or stored for another platform; always;
    /// never).
    fn stored_or_pulled(
        &mut self,
        name: &str,
        platform: &Platform,
    ) -> Result<StoredImage, StepErrorKind> {
        let policy = self.req.pull;
        let stored = self.store.find(name).ok();
        let other = stored
            .as_ref()
            .and_then(|img| img.manifest.platform.as_ref())
            .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()))
            .filter(|p| !same_platform(p, platform));
        if policy != PullPolicy::Always && other.is_none() {
            if let Some(img) = stored {
                return Ok(img);
            }
        }
        let for_other = other
            .as_ref()
            .map(|p| format!(" (the store has it for {p}, not {platform})"))
            .unwrap_or_default();
        if policy == PullPolicy::Never {
            return Err(StepErrorKind::Invalid(format!(
                "image {name:?} is not in the store{for_other} and --pull=never (use oci:DIR[:tag], an archive path, an image built with -t, or pull it first)"
            )));
        }
        let reference = Reference::parse(name).map_err(StepErrorKind::Invalid)?;
        let opts = PullOptions {
            platform: platform.clone(),
            jobs: crate::registry::pull::DEFAULT_JOBS,
            progress: match self.req.progress {
                ProgressMode::Quiet => ProgressMode::Quiet,
                _ => ProgressMode::Plain,
            },
        };
        self.progress.before_output();
        let pulled = pull(self.store, &reference, &self.req.registry, &opts);
        self.progress.after_output();
        let pulled = pulled.map_err(|e| StepErrorKind::Invalid(format!("{e}{for_other}")))?;
        Ok(StoredImage {
            name: pulled.name,
            manifest: pulled.descriptor,
        })
    }
}

/// Whether a stored image's platform serves a stage for `want` (the
/// variant counts only when both name one).
fn same_platform(have: &Platform, want: &Platform) -> bool {
    have.os == want.os
        && have.architecture == want.architecture
        && (have.variant.is_none() || want.variant.is_none() || have.variant == want.variant)
}
