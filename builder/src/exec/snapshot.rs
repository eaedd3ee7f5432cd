//! The filesystem step shared by RUN, COPY/ADD and WORKDIR: a cache lookup
//! by key, else an overlay snapshot of the stage, the action on its merged
//! root, and the upper directory archived as a layer.
use std::os::fd::AsFd;

use crate::build::{chain, Builder, StageState, StepError, StepErrorKind};
use crate::cache_io::UsedStep;
use crate::dockerfile::Instruction;
use crate::exec::{self, ExecError, Overlay};
use crate::fsutil;
use crate::layer::{self, Compression};
use crate::store::{CacheEntry, LayerRecord};

impl<'a> Builder<'a> {
    /// A step that changes files: cache lookup by key, else mount the
    /// stage's snapshot, run `action` on the merged root, and archive the
    /// upper dir as a layer. `action` returns mount points to clean up.
    pub(crate) fn fs_step<F>(
        &mut self,
        st: &mut StageState,
        inst: &Instruction,
        material: String,
        created_by: String,
        action: F,
    ) -> Result<bool, StepError>
    where
        F: FnOnce(&mut Self, std::os::fd::BorrowedFd<'_>) -> Result<Vec<String>, StepErrorKind>,
    {
        // Layers differ by compression: non-default compressions have keys
        // of their own (gzip keys stay as they were).
        let material = match self.req.compression {
            Compression::Gzip => material,
            c => format!("{material}\ncompression={}", c.media_type()),
        };
        let key = chain(&st.key, &material);
        tracing::debug!(key = %key, material = %material, "step");
        let parent = st.key.clone();
        let record = |b: &Self, entry: &CacheEntry| {
            b.shared
                .used_steps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(UsedStep {
                    key: key.clone(),
                    parent: Some(parent.clone()),
                    entry: entry.clone(),
                    stage: b.stage,
                });
        };
        if !self.req.no_cache {
            if let Some(entry) = self.store.cache_get(&key) {
                record(self, &entry);
                let empty = entry.layer.is_none();
                if let Some(l) = entry.layer {
                    st.layers.push(l);
                }
                st.key = key;
                self.history(st, created_by, empty, Some(entry.created));
                return Ok(true);
            }
        }
        let created = self.now();
        let layer = self.execute_fs(st, action).map_err(|k| self.err(inst, k))?;
        let entry = CacheEntry {
            layer: layer.clone(),
            created: created.clone(),
        };
        self.store
            .cache_put(&key, &entry)
            .map_err(|k| self.err(inst, k))?;
        record(self, &entry);
        let empty = layer.is_none();
        if let Some(l) = layer {
            st.layers.push(l);
        }
        st.key = key;
        self.history(st, created_by, empty, Some(created));
        Ok(false)
    }

    pub(crate) fn lowers(&self, layers: &[LayerRecord]) -> Result<Vec<String>, StepErrorKind> {
        let mut lowers = Vec::new();
        // One layer unpacks at a time: stages on the same base would
        // otherwise extract it twice.
        let _unpacking = self.shared.unpack.lock().unwrap_or_else(|p| p.into_inner());
        self.store.ensure_unpacked_all(layers)?;
        for l in layers.iter().rev() {
            lowers.push(l.diff_id.hex().to_string());
        }
        lowers.push("empty".into());
        Ok(lowers)
    }

    pub(crate) fn execute_fs<F>(
        &mut self,
        st: &StageState,
        action: F,
    ) -> Result<Option<LayerRecord>, StepErrorKind>
    where
        F: FnOnce(&mut Self, std::os::fd::BorrowedFd<'_>) -> Result<Vec<String>, StepErrorKind>,
    {
        let scratch = self.store.scratch("step")?;
        let upper = scratch.path().join("upper");
        let work = scratch.path().join("work");
        let merged = scratch.path().join("bundle/rootfs");
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).map_err(|e| ExecError::io(d.display(), e))?;
        }
        let t0 = std::time::Instant::now();
        let lowers = self.lowers(&st.layers)?;
        let ov = Overlay::mount(
            &self.store.layers_dir(),
            &lowers,
            Some((&upper, &work)),
            &merged,
        )?;
        let created_mounts = {
            let root = fsutil::open_dir(&merged).map_err(|e| ExecError::io(merged.display(), e))?;
            self.upper = Some(upper.clone());
            let r = action(self, root.as_fd());
            self.upper = None;
            r?
        };
        ov.unmount()?;
        let t_action = t0.elapsed();
        if !created_mounts.is_empty() {
            let up = fsutil::open_dir(&upper).map_err(|e| ExecError::io(upper.display(), e))?;
            exec::remove_created_mountpoints(up.as_fd(), &created_mounts);
        }
        let (tmp, f) = self.store.blob_tmp()?;
        let written =
            layer::write_layer(&upper, self.req.source_date_epoch, self.req.compression, f);
        let blob = match written {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        if blob.entries == 0 {
            let _ = std::fs::remove_file(&tmp);
            return Ok(None);
        }
        let t_layer = t0.elapsed();
        self.store.commit_blob(&tmp, &blob.digest)?;
        self.store.adopt_layer_dir(&upper, &blob.diff_id)?;
        // Phase timings for profiling (`--debug`); the scratch tree is
        // removed when `scratch` drops, after this.
        tracing::debug!(
            step = self.step,
            action_ms = t_action.as_millis() as u64,
            layer_ms = (t_layer - t_action).as_millis() as u64,
            adopt_ms = (t0.elapsed() - t_layer).as_millis() as u64,
            entries = blob.entries,
            size = blob.size,
            "filesystem step"
        );
        Ok(Some(LayerRecord {
            digest: blob.digest,
            diff_id: blob.diff_id,
            size: blob.size,
            media_type: blob.media_type.to_string(),
        }))
    }
}
