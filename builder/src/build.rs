//! The build driver: runs a [`Plan`] stage by stage, with the cache, and
//! writes the image to the store and the requested outputs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Instant;

use thiserror::Error;

use crate::context::Dockerignore;
use crate::digest::Digest;
use crate::dockerfile::{Command, Dockerfile, Instruction, Location, ParseError};
use crate::exec::ExecError;
use crate::fsutil;
use crate::layer::{self, Compression};
use crate::oci::layout::ref_annotations;
use crate::oci::registry::{PullPolicy, RegistryOptions};
use crate::oci::types::{
    to_json, Descriptor, History, ImageConfig, Manifest, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST,
};
use crate::oci::{self, Layout, OciError};
use crate::plan::{BaseRef, BuildOptions, Plan, PlanError, Platform, StageScope};
use crate::progress::{Progress, ProgressMode, StepState};
use crate::secret::{SecretError, SecretSource};
use crate::store::{LayerRecord, Store, StoreError};

/// Where to write the image besides the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI layout directory (created or updated).
    Oci(PathBuf),
    /// An OCI archive file.
    OciArchive(PathBuf),
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile's path.
    pub dockerfile: PathBuf,
    /// Image names (`name:tag`) for the store and the outputs' ref names.
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`: run every step (results are still recorded).
    pub no_cache: bool,
    /// Extra outputs.
    pub outputs: Vec<Output>,
    /// Layer compression.
    pub compression: Compression,
    /// SOURCE_DATE_EPOCH: clamps file times, sets every timestamp.
    pub source_date_epoch: Option<i64>,
    /// How to show step progress on stderr.
    pub progress: ProgressMode,
    /// `--secret` values by id, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, SecretSource>,
    /// When FROM pulls from a registry.
    pub pull: PullPolicy,
    /// Registry settings (insecure registries, CA dirs, auth files).
    pub registry: RegistryOptions,
    /// `--platform`: the target platform (TARGETPLATFORM, the index entry
    /// FROM pulls); the host by default.
    pub platform: Platform,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The image manifest.
    pub manifest: Descriptor,
    /// The config digest (the image id).
    pub config: Digest,
    /// Steps executed or taken from the cache.
    pub steps: usize,
    /// Of those, taken from the cache.
    pub cached: usize,
}

/// What went wrong in one instruction.
#[derive(Debug, Error)]
pub enum StepErrorKind {
    /// A RUN exited non-zero.
    #[error("RUN {command} failed: exit status {code}")]
    RunFailed {
        /// The command.
        command: String,
        /// Its exit status.
        code: i32,
    },
    /// Execution error.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// Store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Layer error.
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    /// Image error.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// Variable expansion.
    #[error(transparent)]
    Expand(#[from] crate::dockerfile::ExpandError),
    /// A secret that is missing or unreadable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A feature this builder does not have.
    #[error("{0} is not supported by berth-build yet")]
    Unsupported(String),
    /// An invalid value.
    #[error("{0}")]
    Invalid(String),
}

/// A failed instruction and where it is.
#[derive(Debug)]
pub struct StepError {
    /// The instruction's location.
    pub location: Location,
    /// What failed (boxed to keep `Result`s small).
    pub kind: Box<StepErrorKind>,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location.render(f, &self.kind)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.kind.as_ref())
    }
}

/// Why a build failed.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The Dockerfile cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An instruction failed.
    #[error(transparent)]
    Step(#[from] StepError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing an output failed.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// Bad request (context, Dockerfile path...).
    #[error("{0}")]
    Usage(String),
}

/// The state of a stage after some instructions.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    /// The stage's layers, base first.
    pub(crate) layers: Vec<LayerRecord>,
    /// Its image configuration so far.
    pub(crate) config: ImageConfig,
    /// The cache key of its last step.
    pub(crate) key: Digest,
}

/// Formats seconds since the epoch as RFC 3339.
pub fn rfc3339(secs: i64) -> String {
    berth::timefmt::rfc3339_nano(secs, 0)
}

/// The cache key of a step: its parent's key and its material.
pub(crate) fn chain(parent: &Digest, material: &str) -> Digest {
    Digest::of(format!("{parent}\n{material}").as_bytes())
}

/// `v` as a JSON array (for cache keys and history).
pub(crate) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Builds `req` using `store`. Must run in a single-threaded process (RUN
/// forks).
pub fn build(store: &Store, req: &BuildRequest) -> Result<BuildOutcome, BuildError> {
    let _lock = store.lock()?;
    let text = std::fs::read_to_string(&req.dockerfile).map_err(|e| {
        BuildError::Usage(format!(
            "cannot read Dockerfile {}: {e}",
            req.dockerfile.display()
        ))
    })?;
    let name = req
        .dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let df = Dockerfile::parse(&name, &text)?;
    let mut opts = BuildOptions::new(Platform::host());
    opts.target_platform = req.platform.clone();
    opts.target = req.target.clone();
    opts.build_args = req.build_args.clone();
    let plan = Plan::new(&df, &opts)?;
    let context = std::fs::canonicalize(&req.context)
        .map_err(|e| BuildError::Usage(format!("build context {}: {e}", req.context.display())))?;
    if !context.is_dir() {
        return Err(BuildError::Usage(format!(
            "build context {} is not a directory",
            context.display()
        )));
    }
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(t) => Dockerignore::parse(&t).map_err(|e| BuildError::Usage(e.to_string()))?,
        Err(_) => Dockerignore::default(),
    };
    let context_fd = fsutil::open_dir(&context)
        .map_err(|e| BuildError::Usage(format!("build context {}: {e}", context.display())))?;
    let total = plan
        .order
        .iter()
        .map(|&i| plan.stages[i].instructions.len() + 1)
        .sum();
    let mut b = Builder {
        req,
        store,
        plan: &plan,
        df: &df,
        context,
        context_fd,
        ignore,
        results: HashMap::new(),
        images: HashMap::new(),
        step: 0,
        total,
        cached: 0,
        progress: Progress::new(req.progress),
    };
    for name in &plan.unused_build_args {
        b.progress.line(&format!(
            "[warning] build arg {name} was given but not used by any stage"
        ));
    }
    for &i in &plan.order {
        let st = match b.run_stage(i) {
            Ok(st) => st,
            Err(e) => {
                b.progress.abort();
                return Err(e);
            }
        };
        b.results.insert(i, st);
    }
    let final_state = b
        .results
        .remove(&plan.target)
        .ok_or_else(|| BuildError::Usage("target stage was not built".into()))?;
    let outcome = b.finish(final_state)?;
    Ok(outcome)
}

/// The state of one build: the request, the store, the plan and the
/// results of the stages built so far. Its instruction steps live in
/// [`crate::exec`] (one module per instruction kind).
pub(crate) struct Builder<'a> {
    pub(crate) req: &'a BuildRequest,
    pub(crate) store: &'a Store,
    pub(crate) plan: &'a Plan,
    pub(crate) df: &'a Dockerfile,
    pub(crate) context: PathBuf,
    pub(crate) context_fd: OwnedFd,
    pub(crate) ignore: Dockerignore,
    pub(crate) results: HashMap<usize, StageState>,
    pub(crate) images: HashMap<String, StageState>,
    pub(crate) step: usize,
    pub(crate) total: usize,
    pub(crate) cached: usize,
    pub(crate) progress: Progress,
}

impl<'a> Builder<'a> {
    pub(crate) fn err(&self, inst: &Instruction, kind: impl Into<StepErrorKind>) -> StepError {
        StepError {
            location: self.df.location_of(inst),
            kind: Box::new(kind.into()),
        }
    }

    pub(crate) fn now(&self) -> String {
        match self.req.source_date_epoch {
            Some(e) => rfc3339(e),
            None => {
                let d = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                rfc3339(i64::try_from(d.as_secs()).unwrap_or(0))
            }
        }
    }

    fn announce(&mut self, stage: &str, inst: &Instruction) {
        self.step += 1;
        self.progress
            .begin(self.step, self.total, stage, &inst.original);
    }

    fn run_stage(&mut self, index: usize) -> Result<StageState, BuildError> {
        let stage = &self.plan.stages[index];
        let sname = stage.display_name();
        self.announce(&sname, &stage.from);
        let mut st = match &stage.base {
            BaseRef::Scratch => StageState {
                layers: Vec::new(),
                config: ImageConfig {
                    architecture: stage.platform.architecture.clone(),
                    os: stage.platform.os.clone(),
                    variant: stage.platform.variant.clone(),
                    ..ImageConfig::default()
                },
                key: Digest::of(b"scratch"),
            },
            BaseRef::Stage(j) => self
                .results
                .get(j)
                .cloned()
                .ok_or_else(|| BuildError::Usage(format!("stage {j} was not built")))?,
            BaseRef::Image(r) => self
                .load_image_for(r, &stage.platform)
                .map_err(|k| self.err(&stage.from, k))?,
        };
        let base_env: Vec<(String, String)> = st
            .config
            .config
            .env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect();
        let mut scope = self.plan.scope(base_env);
        let mut cmd_set = false;
        // ONBUILD triggers of a base image run first.
        let triggers = std::mem::take(&mut st.config.config.on_build);
        if matches!(stage.base, BaseRef::Image(_)) && !triggers.is_empty() {
            let text = triggers.join("\n");
            let parsed = Dockerfile::parse("ONBUILD", &text).map_err(|e| {
                self.err(
                    &stage.from,
                    StepErrorKind::Invalid(format!("ONBUILD trigger of the base image: {e}")),
                )
            })?;
            for inst in &parsed.instructions {
                let mut inst = inst.clone();
                inst.span = stage.from.span;
                inst.line_text = stage.from.line_text.clone();
                self.instruction(index, &mut st, &mut scope, &inst, &mut cmd_set)?;
            }
        }
        self.progress.end(self.step, StepState::Done, None);
        for inst in &stage.instructions {
            self.announce(&sname, inst);
            let t = Instant::now();
            let cached = self.instruction(index, &mut st, &mut scope, inst, &mut cmd_set)?;
            if cached {
                self.cached += 1;
                self.progress.end(self.step, StepState::Cached, None);
            } else {
                self.progress
                    .end(self.step, StepState::Done, Some(t.elapsed()));
            }
        }
        st.config.config.env = scope
            .env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        Ok(st)
    }

    pub(crate) fn shell(&self, st: &StageState) -> Vec<String> {
        if st.config.config.shell.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            st.config.config.shell.clone()
        }
    }

    pub(crate) fn history(
        &self,
        st: &mut StageState,
        created_by: String,
        empty: bool,
        created: Option<String>,
    ) {
        st.config.history.push(History {
            created: Some(created.unwrap_or_else(|| self.now())),
            created_by: Some(created_by),
            author: None,
            comment: Some("berth-build".into()),
            empty_layer: empty,
        });
    }

    pub(crate) fn config_step(&self, st: &mut StageState, inst: &Instruction, material: &str) {
        st.key = chain(&st.key, material);
        self.history(st, material.to_string(), true, None);
        let _ = inst;
    }

    /// Executes one instruction; returns whether it came from the cache.
    fn instruction(
        &mut self,
        stage: usize,
        st: &mut StageState,
        scope: &mut StageScope<'a>,
        inst: &Instruction,
        cmd_set: &mut bool,
    ) -> Result<bool, StepError> {
        match &inst.command {
            Command::From(_) => {
                Err(self.err(inst, StepErrorKind::Invalid("unexpected FROM".into())))
            }
            Command::Workdir(w) => self.workdir_step(st, scope, inst, w),
            Command::Run(r) => self.run_step(stage, st, scope, inst, r),
            Command::Copy(c) => self.copy_step(stage, st, scope, inst, c, false),
            Command::Add(c) => self.copy_step(stage, st, scope, inst, c, true),
            _ => self.config_instruction(st, scope, inst, cmd_set),
        }
    }

    fn finish(&mut self, mut st: StageState) -> Result<BuildOutcome, BuildError> {
        let created = self.now();
        st.config.created = Some(created.clone());
        st.config.rootfs.diff_ids = st.layers.iter().map(|l| l.diff_id.clone()).collect();
        let config_json = to_json(&st.config);
        let layout = self.store.layout();
        let config_digest = layout.write_blob(&config_json)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_TYPE_MANIFEST.into()),
            config: Descriptor::new(
                MEDIA_TYPE_CONFIG,
                config_digest.clone(),
                config_json.len() as u64,
            ),
            layers: st.layers.iter().map(LayerRecord::descriptor).collect(),
            annotations: None,
        };
        let manifest_json = to_json(&manifest);
        let manifest_digest = layout.write_blob(&manifest_json)?;
        let mut desc = Descriptor::new(
            MEDIA_TYPE_MANIFEST,
            manifest_digest.clone(),
            manifest_json.len() as u64,
        );
        desc.platform = Some(crate::oci::types::PlatformDesc {
            architecture: st.config.architecture.clone(),
            os: st.config.os.clone(),
            variant: st.config.variant.clone(),
        });
        for t in &self.req.tags {
            self.store.tag(t, &desc)?;
        }
        let mut blobs: Vec<Digest> = st.layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(config_digest.clone());
        blobs.push(manifest_digest.clone());
        for out in &self.req.outputs {
            match out {
                Output::Oci(dir) => {
                    let dest = Layout::create(dir)?;
                    for d in &blobs {
                        if !dest.has_blob(d) {
                            let mut f = layout.open_blob(d)?;
                            dest.import_blob(&mut f, d, None)?;
                        }
                    }
                    if self.req.tags.is_empty() {
                        dest.add_to_index(desc.clone())?;
                    }
                    for t in &self.req.tags {
                        let mut d = desc.clone();
                        d.annotations = Some(ref_annotations(t));
                        dest.add_to_index(d)?;
                    }
                }
                Output::OciArchive(file) => {
                    let mut d = desc.clone();
                    if let Some(t) = self.req.tags.first() {
                        d.annotations = Some(ref_annotations(t));
                    }
                    oci::write_archive(
                        layout,
                        &d,
                        &blobs,
                        file,
                        self.req.source_date_epoch.unwrap_or(0),
                    )?;
                }
            }
        }
        self.progress.line(&format!(
            "#{} writing image {manifest_digest} done ({} steps, {} cached, {:.1}s)",
            self.step + 1,
            self.step,
            self.cached,
            self.progress.elapsed().as_secs_f64()
        ));
        Ok(BuildOutcome {
            manifest: desc,
            config: config_digest,
            steps: self.step,
            cached: self.cached,
        })
    }
}
