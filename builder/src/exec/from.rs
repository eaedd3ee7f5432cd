//! FROM and `--from` images: an OCI layout or archive, a Docker archive,
//! an image in the store, or (when missing) a pull from a registry.

use crate::build::{Builder, StageState, StepErrorKind};
use crate::digest::Digest;
use crate::oci::registry::{pull, PullOptions, PullPolicy, Reference};
use crate::oci::{self, ImageSource, Layout, ResolvedImage};
use crate::progress::ProgressMode;
use crate::store::{LayerRecord, StoredImage};

impl<'a> Builder<'a> {
    /// The state of image `reference`, loaded (imported or pulled) once
    /// per build: stages building at the same time wait for each other
    /// here.
    pub(crate) fn load_image(&mut self, reference: &str) -> Result<StageState, StepErrorKind> {
        let shared = self.shared;
        let mut images = shared.images.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = images.get(reference) {
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
                let img = self.stored_or_pulled(name)?;
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
        let state = StageState {
            layers,
            config: resolved.config,
            key: Digest::of(format!("image\n{}", resolved.descriptor.digest).as_bytes()),
        };
        images.insert(reference.to_string(), state.clone());
        Ok(state)
    }

    /// An image in the store by name, pulled first as `--pull` says
    /// (missing: only when absent; always; never).
    fn stored_or_pulled(&mut self, name: &str) -> Result<StoredImage, StepErrorKind> {
        let policy = self.req.pull;
        if policy != PullPolicy::Always {
            if let Ok(img) = self.store.find(name) {
                return Ok(img);
            }
        }
        if policy == PullPolicy::Never {
            return Err(StepErrorKind::Invalid(format!(
                "image {name:?} is not in the store and --pull=never (use oci:DIR[:tag], an archive path, an image built with -t, or pull it first)"
            )));
        }
        let reference = Reference::parse(name).map_err(StepErrorKind::Invalid)?;
        let opts = PullOptions {
            platform: crate::plan::Platform::host(),
            jobs: 3,
            progress: match self.req.progress {
                ProgressMode::Quiet => ProgressMode::Quiet,
                _ => ProgressMode::Plain,
            },
        };
        self.progress.before_output();
        let pulled = pull(self.store, &reference, &self.req.registry, &opts);
        self.progress.after_output();
        let pulled = pulled.map_err(|e| StepErrorKind::Invalid(e.to_string()))?;
        Ok(StoredImage {
            name: pulled.name,
            manifest: pulled.descriptor,
        })
    }
}
