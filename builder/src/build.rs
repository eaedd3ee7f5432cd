//! The build driver: runs a [`Plan`]'s stages, independent ones at the
//! same time, with the cache, and writes the image to the store and the
//! requested outputs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::context::Dockerignore;
use crate::digest::Digest;
use crate::dockerfile::{Command, Dockerfile, Instruction, Location, ParseError};
use crate::exec::ExecError;
use crate::fsutil;
use crate::layer::{self, Compression};
use crate::oci::types::{to_json, Descriptor, History, ImageConfig};
use crate::oci::{self, OciError};
use crate::plan::{BaseRef, BuildOptions, Plan, PlanError, Platform, StageScope};
use crate::progress::{Progress, ProgressMode, StepState};
use crate::registry::{PullPolicy, RegistryOptions};
use crate::secret::{SecretError, SecretSource};
use crate::store::{LayerRecord, Store, StoreError};

pub use crate::output::Output;
use crate::output::{annotations_for, Annotation, AnnotationTarget, OutputError};

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
    /// `--label`: set on the final image's config (over the Dockerfile's).
    pub labels: BTreeMap<String, String>,
    /// `--annotation`: on the manifest or its descriptor.
    pub annotations: Vec<Annotation>,
    /// Layer compression.
    pub compression: Compression,
    /// SOURCE_DATE_EPOCH: clamps file times, sets every timestamp.
    pub source_date_epoch: Option<i64>,
    /// How to show step progress on stderr.
    pub progress: ProgressMode,
    /// `--secret` values by id, for `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--provenance`: attach an SLSA provenance attestation (in an image
    /// index) to the OCI outputs.
    pub provenance: Option<crate::attest::ProvenanceMode>,
    /// `--cache-from type=local,src=DIR`: cache layouts imported first.
    pub cache_from: Vec<PathBuf>,
    /// `--cache-to type=local,...`: where the used steps are exported.
    pub cache_to: Vec<crate::cache_io::CacheTo>,
    /// `--build-context NAME=...` by lower-cased name.
    pub named_contexts: BTreeMap<String, crate::plan::NamedContext>,
    /// `--allow security.insecure`: `RUN --security=insecure` may run.
    pub allow_insecure: bool,
    /// `--ssh` agents by id, for `RUN --mount=type=ssh`.
    pub ssh: crate::ssh::SshAgents,
    /// When FROM pulls from a registry.
    pub pull: PullPolicy,
    /// Registry settings (insecure registries, CA dirs, auth files).
    pub registry: RegistryOptions,
    /// Stages built at the same time: 0 for as many as are ready, 1 for
    /// one after the other.
    pub jobs: usize,
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
    /// Stopped because another stage failed.
    #[error("canceled: another stage failed")]
    Canceled,
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
    /// Writing an image failed.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// Writing an output failed.
    #[error(transparent)]
    Output(#[from] OutputError),
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

/// Builds `req` using `store`. Stages whose dependencies are built run at
/// the same time, each on a thread of its own (at most `req.jobs` at once,
/// 0 meaning no limit); RUN containers are started by helper processes
/// (see [`crate::exec::run`]), so nothing forks this multi-threaded
/// process except to exec.
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
    opts.named_contexts = req.named_contexts.clone();
    let plan = Plan::new(&df, &opts)?;
    for src in &req.cache_from {
        let n =
            crate::cache_io::import(store, src).map_err(|e| BuildError::Usage(e.to_string()))?;
        tracing::debug!(entries = n, src = %src.display(), "cache imported");
    }
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
    let schedule = Schedule::new(&plan);
    let shared = Shared {
        req,
        store,
        plan: &plan,
        df: &df,
        context,
        context_fd,
        ignore,
        results: Mutex::new(HashMap::new()),
        images: Mutex::new(HashMap::new()),
        unpack: Mutex::new(()),
        cache_locks: Mutex::new(HashMap::new()),
        total: schedule.total,
        cached: AtomicUsize::new(0),
        cancel: AtomicBool::new(false),
        progress: Progress::new(req.progress),
        used_steps: Mutex::new(Vec::new()),
        materials: Mutex::new(Vec::new()),
        started: now(req),
        dockerfile_text: (name.clone(), text.clone()),
    };
    for name in &plan.unused_build_args {
        shared.progress.line(&format!(
            "[warning] build arg {name} was given but not used by any stage"
        ));
    }
    if let Err(e) = shared.run_stages(&schedule, req.jobs) {
        shared.progress.abort();
        return Err(e);
    }
    let final_state = shared
        .lock_results()
        .remove(&plan.target)
        .ok_or_else(|| BuildError::Usage("target stage was not built".into()))?;
    let out = shared.finish(final_state)?;
    let used = std::mem::take(&mut *shared.used_steps.lock().unwrap_or_else(|p| p.into_inner()));
    for to in &req.cache_to {
        crate::cache_io::export(store, &used, plan.target, to)
            .map_err(|e| BuildError::Usage(e.to_string()))?;
    }
    Ok(out)
}

/// The stages to build, their step numbers and their dependencies.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// The needed stages in plan order.
    pub(crate) order: Vec<usize>,
    /// The step number of each needed stage's FROM (its instructions
    /// follow), numbered in plan order as a serial build shows them.
    pub(crate) first_step: HashMap<usize, usize>,
    /// All steps.
    pub(crate) total: usize,
    /// The needed stages each stage waits for.
    pub(crate) deps: HashMap<usize, Vec<usize>>,
}

impl Schedule {
    pub(crate) fn new(plan: &Plan) -> Schedule {
        let mut first_step = HashMap::new();
        let mut deps = HashMap::new();
        let mut n = 0;
        for &i in &plan.order {
            first_step.insert(i, n + 1);
            n += plan.stages[i].instructions.len() + 1;
            let d: Vec<usize> = plan.stages[i]
                .deps
                .iter()
                .copied()
                .filter(|d| plan.order.contains(d) && *d != i)
                .collect();
            deps.insert(i, d);
        }
        Schedule {
            order: plan.order.clone(),
            first_step,
            total: n,
            deps,
        }
    }

    /// The stages that can start now: not started, all dependencies
    /// built; in plan order (lowest first when several are ready).
    pub(crate) fn ready(&self, started: &HashSet<usize>, built: &HashSet<usize>) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|i| !started.contains(i))
            .filter(|i| self.deps[i].iter().all(|d| built.contains(d)))
            .collect()
    }
}

/// What the threads building stages share: the request and its inputs,
/// the stages built so far, the progress display and the cancel flag.
pub(crate) struct Shared<'a> {
    pub(crate) req: &'a BuildRequest,
    pub(crate) store: &'a Store,
    pub(crate) plan: &'a Plan,
    pub(crate) df: &'a Dockerfile,
    pub(crate) context: PathBuf,
    pub(crate) context_fd: OwnedFd,
    pub(crate) ignore: Dockerignore,
    /// Finished stages by index.
    pub(crate) results: Mutex<HashMap<usize, StageState>>,
    /// Images loaded for FROM or `--from`, by reference (the lock is held
    /// while one loads, so an image is imported or pulled once).
    pub(crate) images: Mutex<HashMap<String, StageState>>,
    /// Held while a layer is unpacked into the store.
    pub(crate) unpack: Mutex<()>,
    /// One lock per `RUN --mount=type=cache,sharing=locked` id.
    pub(crate) cache_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    pub(crate) total: usize,
    pub(crate) cached: AtomicUsize,
    /// Set when a stage failed: the others stop at their next step and
    /// running RUN containers are killed.
    pub(crate) cancel: AtomicBool,
    pub(crate) progress: Progress,
    /// Every filesystem step's key and result, for `--cache-to`.
    pub(crate) used_steps: Mutex<Vec<crate::cache_io::UsedStep>>,
    /// Images loaded (reference, manifest digest), for `--provenance`.
    pub(crate) materials: Mutex<Vec<(String, Digest)>>,
    /// When the build started (RFC 3339), for `--provenance`.
    pub(crate) started: String,
    /// The Dockerfile's name and text, for `--provenance=mode=max`.
    pub(crate) dockerfile_text: (String, String),
}

impl<'a> Shared<'a> {
    pub(crate) fn lock_results(&self) -> MutexGuard<'_, HashMap<usize, StageState>> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The locks of cache mounts `ids`, sorted (lock them in this order).
    pub(crate) fn cache_locks<'i>(
        &self,
        ids: impl Iterator<Item = &'i str>,
    ) -> Vec<Arc<Mutex<()>>> {
        let ids: std::collections::BTreeSet<&str> = ids.collect();
        let mut map = self.cache_locks.lock().unwrap_or_else(|p| p.into_inner());
        ids.into_iter()
            .map(|id| map.entry(id.to_string()).or_default().clone())
            .collect()
    }

    /// Builds the scheduled stages, up to `jobs` at once (0: all that are
    /// ready). On the first failure the others are canceled and waited
    /// for; that failure is returned.
    fn run_stages(&'a self, schedule: &Schedule, jobs: usize) -> Result<(), BuildError> {
        let jobs = if jobs == 0 { usize::MAX } else { jobs };
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            if self.progress.mode() == ProgressMode::Tty {
                let done = &done;
                s.spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                        self.progress.tick();
                    }
                });
            }
            let (tx, rx) = mpsc::channel::<(usize, Result<StageState, BuildError>)>();
            let mut started = HashSet::new();
            let mut built = HashSet::new();
            let mut running = 0usize;
            let mut failure: Option<BuildError> = None;
            loop {
                if failure.is_none() {
                    for i in schedule.ready(&started, &built) {
                        if running >= jobs {
                            break;
                        }
                        started.insert(i);
                        running += 1;
                        let tx = tx.clone();
                        let first = schedule.first_step[&i];
                        s.spawn(move || {
                            // A working directory of this thread's own:
                            // overlay mounts change it for a moment.
                            if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS) {
                                tracing::warn!(error = %e, "unshare(CLONE_FS)");
                            }
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                Builder::new(self, first).run_stage(i)
                            }))
                            .unwrap_or_else(|_| {
                                Err(BuildError::Usage(format!(
                                    "internal error: the thread building stage {i} panicked"
                                )))
                            });
                            // Always answer, or the scheduler would wait forever.
                            let _ = tx.send((i, r));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((i, r)) = rx.recv() else { break };
                running -= 1;
                match r {
                    Ok(st) => {
                        self.lock_results().insert(i, st);
                        built.insert(i);
                    }
                    Err(e) => {
                        self.cancel.store(true, Ordering::SeqCst);
                        let canceled = matches!(&e, BuildError::Step(s) if matches!(*s.kind, StepErrorKind::Canceled));
                        if failure.is_none() || (!canceled && failure_canceled(&failure)) {
                            failure = Some(e);
                        }
                    }
                }
            }
            done.store(true, Ordering::Relaxed);
            match failure {
                Some(e) => Err(e),
                None if built.len() == schedule.order.len() => Ok(()),
                None => Err(BuildError::Usage("not every stage was built".into())),
            }
        })
    }

    fn finish(&self, mut st: StageState) -> Result<BuildOutcome, BuildError> {
        let created = now(self.req);
        st.config.created = Some(created.clone());
        st.config.rootfs.diff_ids = st.layers.iter().map(|l| l.diff_id.clone()).collect();
        for (k, v) in &self.req.labels {
            st.config.config.labels.insert(k.clone(), v.clone());
        }
        let layout = self.store.layout();
        let (manifest, mut desc) = layout.write_manifest(
            &to_json(&st.config),
            st.layers.iter().map(LayerRecord::descriptor).collect(),
            annotations_for(&self.req.annotations, AnnotationTarget::Manifest),
        )?;
        let config_digest = manifest.config.digest.clone();
        let manifest_digest = desc.digest.clone();
        desc.platform = Some(crate::oci::types::PlatformDesc {
            architecture: st.config.architecture.clone(),
            os: st.config.os.clone(),
            variant: st.config.variant.clone(),
        });
        desc.annotations =
            annotations_for(&self.req.annotations, AnnotationTarget::ManifestDescriptor);
        for t in &self.req.tags {
            self.store.tag(t, &desc)?;
        }
        let mut blobs: Vec<Digest> = st.layers.iter().map(|l| l.digest.clone()).collect();
        blobs.push(config_digest.clone());
        blobs.push(manifest_digest.clone());
        let image = oci::ResolvedImage {
            descriptor: desc.clone(),
            manifest,
            config: st.config.clone(),
        };
        // With --provenance the OCI outputs name an index of the image and
        // its attestation (the store keeps the image manifest).
        let top = match self.req.provenance {
            Some(mode) => {
                let platform = match &st.config.variant {
                    Some(v) => format!("{}/{}/{v}", st.config.os, st.config.architecture),
                    None => format!("{}/{}", st.config.os, st.config.architecture),
                };
                let facts = crate::attest::BuildFacts {
                    names: self.req.tags.clone(),
                    platform,
                    materials: self
                        .materials
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                    started: self.started.clone(),
                    finished: created.clone(),
                    dockerfile: self.dockerfile_text.clone(),
                    build_args: self.req.build_args.clone(),
                    target: self.req.target.clone(),
                };
                let statement = crate::attest::statement(&manifest_digest, &facts, mode);
                let (index, extra) = crate::attest::attach(layout, &desc, &statement)?;
                blobs.extend(extra);
                index
            }
            None => desc.clone(),
        };
        for out in &self.req.outputs {
            crate::output::write(
                self.store,
                &image,
                &top,
                &blobs,
                &self.req.tags,
                self.req.source_date_epoch,
                out,
            )?;
        }
        let cached = self.cached.load(Ordering::SeqCst);
        self.progress.line(&format!(
            "#{} writing image {manifest_digest} done ({} steps, {} cached, {:.1}s)",
            self.total + 1,
            self.total,
            cached,
            self.progress.elapsed().as_secs_f64()
        ));
        Ok(BuildOutcome {
            manifest: desc,
            config: config_digest,
            steps: self.total,
            cached,
        })
    }
}

fn failure_canceled(f: &Option<BuildError>) -> bool {
    matches!(f, Some(BuildError::Step(s)) if matches!(*s.kind, StepErrorKind::Canceled))
}

/// The creation time for history and the config: SOURCE_DATE_EPOCH, or now.
fn now(req: &BuildRequest) -> String {
    match req.source_date_epoch {
        Some(e) => rfc3339(e),
        None => {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            rfc3339(i64::try_from(d.as_secs()).unwrap_or(0))
        }
    }
}

/// The builder of one stage, on its thread: the shared state, and the
/// step it is at. Its instruction steps live in [`crate::exec`] (one
/// module per instruction kind).
pub(crate) struct Builder<'a> {
    pub(crate) shared: &'a Shared<'a>,
    pub(crate) req: &'a BuildRequest,
    pub(crate) store: &'a Store,
    pub(crate) plan: &'a Plan,
    pub(crate) df: &'a Dockerfile,
    pub(crate) context: &'a Path,
    pub(crate) context_fd: BorrowedFd<'a>,
    pub(crate) ignore: &'a Dockerignore,
    pub(crate) progress: &'a Progress,
    /// The current step's number.
    pub(crate) step: usize,
    pub(crate) total: usize,
    /// The stage being built.
    pub(crate) stage: usize,
    /// The overlay upper directory of the filesystem step whose action is
    /// running ([`crate::exec::copy::direct`]).
    pub(crate) upper: Option<PathBuf>,
}

impl<'a> Builder<'a> {
    fn new(shared: &'a Shared<'a>, first_step: usize) -> Builder<'a> {
        Builder {
            shared,
            req: shared.req,
            store: shared.store,
            plan: shared.plan,
            df: shared.df,
            context: &shared.context,
            context_fd: shared.context_fd.as_fd(),
            ignore: &shared.ignore,
            progress: &shared.progress,
            step: first_step,
            total: shared.total,
            stage: 0,
            upper: None,
        }
    }

    pub(crate) fn err(&self, inst: &Instruction, kind: impl Into<StepErrorKind>) -> StepError {
        StepError {
            location: self.df.location_of(inst),
            kind: Box::new(kind.into()),
        }
    }

    /// A finished stage's state.
    pub(crate) fn result_of(&self, stage: usize) -> Option<StageState> {
        self.shared.lock_results().get(&stage).cloned()
    }

    /// Whether another stage failed (this one should stop).
    pub(crate) fn canceled(&self) -> bool {
        self.shared.cancel.load(Ordering::SeqCst)
    }

    pub(crate) fn now(&self) -> String {
        now(self.req)
    }

    fn announce(&mut self, stage: &str, inst: &Instruction) {
        self.progress
            .begin(self.step, self.total, stage, &inst.original);
    }

    /// Builds stage `index`; on an error its current step is shown as
    /// failed (or canceled).
    fn run_stage(&mut self, index: usize) -> Result<StageState, BuildError> {
        self.stage = index;
        let r = self.stage_steps(index);
        if let Err(e) = &r {
            let canceled =
                matches!(e, BuildError::Step(s) if matches!(*s.kind, StepErrorKind::Canceled));
            let state = if canceled {
                StepState::Canceled
            } else {
                StepState::Error
            };
            self.progress.end(self.step, state, None);
        }
        r
    }

    fn stage_steps(&mut self, index: usize) -> Result<StageState, BuildError> {
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
                .result_of(*j)
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
        // ONBUILD triggers of the base (an image, or a stage: BuildKit runs
        // those too) run first; the stage's own config starts without them.
        let triggers = std::mem::take(&mut st.config.config.on_build);
        if matches!(stage.base, BaseRef::Image(_) | BaseRef::Stage(_)) && !triggers.is_empty() {
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
            self.step += 1;
            if self.canceled() {
                return Err(self.err(inst, StepErrorKind::Canceled).into());
            }
            self.announce(&sname, inst);
            let t = Instant::now();
            let cached = self.instruction(index, &mut st, &mut scope, inst, &mut cmd_set)?;
            if cached {
                self.shared.cached.fetch_add(1, Ordering::SeqCst);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(text: &str, target: Option<&str>) -> (Plan, Schedule) {
        let df = Dockerfile::parse("Dockerfile", text).expect("parse");
        let mut opts = BuildOptions::new(Platform::host());
        opts.target = target.map(str::to_string);
        let plan = Plan::new(&df, &opts).expect("plan");
        let s = Schedule::new(&plan);
        (plan, s)
    }

    const DF: &str = "FROM scratch AS a\nENV A=1\n\
                      FROM scratch AS b\nENV B=1\nENV C=1\n\
                      FROM scratch AS unused\n\
                      FROM a\nCOPY --from=b /x /x\n";

    #[test]
    fn independent_stages_are_ready_together_and_steps_numbered_in_plan_order() {
        let (plan, s) = schedule(DF, None);
        assert_eq!(s.order, vec![0, 1, 3]);
        assert_eq!(plan.order, s.order);
        // a: FROM #1, ENV #2; b: FROM #3, ENV #4, #5; final: FROM #6, COPY #7.
        assert_eq!(s.first_step[&0], 1);
        assert_eq!(s.first_step[&1], 3);
        assert_eq!(s.first_step[&3], 6);
        assert_eq!(s.total, 7);
        assert!(!s.first_step.contains_key(&2), "unused stage scheduled");
        let none = HashSet::new();
        assert_eq!(s.ready(&none, &none), vec![0, 1]);
        let started: HashSet<usize> = [0, 1].into();
        let mut built: HashSet<usize> = [0].into();
        assert!(s.ready(&started, &built).is_empty());
        built.insert(1);
        assert_eq!(s.ready(&started, &built), vec![3]);
    }

    #[test]
    fn a_target_schedules_only_what_it_needs() {
        let (_, s) = schedule(DF, Some("b"));
        assert_eq!(s.order, vec![1]);
        assert_eq!(s.first_step[&1], 1);
        assert_eq!(s.total, 3);
    }
}
