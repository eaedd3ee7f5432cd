//! The build driver: runs a [`Plan`] stage by stage, with the cache, and
//! writes the image to the store and the requested outputs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use thiserror::Error;

use crate::context::{clean_path, Dockerignore};
use crate::digest::Digest;
use crate::dockerfile::{
    parse_port, Command, CommandLine, CopySpec, Dockerfile, Healthcheck, Instruction, Location,
    Mount, MountType, NetworkMode, ParseError, RunScript, Source,
};
use crate::exec::copy::{self, CopyAttrs, Matched, SourceFilter};
use crate::exec::run::{self, RunMount, RunSettings};
use crate::exec::{self, fetch, ExecError, Overlay};
use crate::fsutil;
use crate::layer::{self, Compression};
use crate::oci::layout::ref_annotations;
use crate::oci::types::{
    to_json, Descriptor, Empty, HealthConfig, History, ImageConfig, Manifest, MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_MANIFEST,
};
use crate::oci::{self, ImageSource, Layout, OciError, ResolvedImage};
use crate::plan::{BaseRef, BuildOptions, Plan, PlanError, Platform, SourceRef, StageScope};
use crate::progress::{Progress, ProgressMode, StepState};
use crate::secret::{SecretError, SecretFile, SecretSource};
use crate::store::{CacheEntry, LayerRecord, Store, StoreError};

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

/// A `RUN --mount`, expanded and checked.
#[derive(Debug, Clone)]
struct MountPlan {
    /// Absolute path in the container.
    target: String,
    /// Its part of the step's cache key.
    material: String,
    kind: MountPlanKind,
}

#[derive(Debug, Clone)]
enum MountPlanKind {
    Tmpfs {
        size: Option<u64>,
    },
    Cache {
        id: String,
        read_only: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A secret given with `--secret` (None: not given, and not required).
    Secret {
        id: String,
        source: Option<SecretSource>,
        /// Expose it as this environment variable.
        env: Option<String>,
        /// Mount it as a file at `MountPlan::target`.
        file: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Bind {
        /// The layers of the stage or image to mount from; None: the context.
        from: Option<Vec<LayerRecord>>,
        /// Path inside it (relative).
        source: String,
        read_only: bool,
    },
}

/// The state of a stage after some instructions.
#[derive(Debug, Clone)]
struct StageState {
    layers: Vec<LayerRecord>,
    config: ImageConfig,
    key: Digest,
}

/// Formats seconds since the epoch as RFC 3339.
pub fn rfc3339(secs: i64) -> String {
    berth::timefmt::rfc3339_nano(secs, 0)
}

fn chain(parent: &Digest, material: &str) -> Digest {
    Digest::of(format!("{parent}\n{material}").as_bytes())
}

fn json_list(v: &[String]) -> String {
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

struct Builder<'a> {
    req: &'a BuildRequest,
    store: &'a Store,
    plan: &'a Plan,
    df: &'a Dockerfile,
    context: PathBuf,
    context_fd: OwnedFd,
    ignore: Dockerignore,
    results: HashMap<usize, StageState>,
    images: HashMap<String, StageState>,
    step: usize,
    total: usize,
    cached: usize,
    progress: Progress,
}

impl<'a> Builder<'a> {
    fn err(&self, inst: &Instruction, kind: impl Into<StepErrorKind>) -> StepError {
        StepError {
            location: self.df.location_of(inst),
            kind: Box::new(kind.into()),
        }
    }

    fn now(&self) -> String {
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
            BaseRef::Image(r) => self.load_image(r).map_err(|k| self.err(&stage.from, k))?,
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

    fn load_image(&mut self, reference: &str) -> Result<StageState, StepErrorKind> {
        if let Some(s) = self.images.get(reference) {
            return Ok(s.clone());
        }
        let resolved: ResolvedImage;
        let source = ImageSource::parse(reference, &self.context);
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
                let img = self.store.find(name).map_err(|_| {
                    StepErrorKind::Invalid(format!(
                        "image {name:?} not found: berth-build has no registry client; use oci:DIR[:tag], an OCI archive path, or an image built with -t (see `berth-build images`)"
                    ))
                })?;
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
        self.images.insert(reference.to_string(), state.clone());
        Ok(state)
    }

    fn shell(&self, st: &StageState) -> Vec<String> {
        if st.config.config.shell.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            st.config.config.shell.clone()
        }
    }

    fn history(
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

    fn config_step(&self, st: &mut StageState, inst: &Instruction, material: &str) {
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
        let e = |k: StepErrorKind| self.err(inst, k);
        match &inst.command {
            Command::From(_) => Err(e(StepErrorKind::Invalid("unexpected FROM".into()))),
            Command::Arg(decls) => {
                scope.declare_args(decls).map_err(|x| e(x.into()))?;
                Ok(false)
            }
            Command::Env(pairs) => {
                let expanded = scope.apply_env(pairs).map_err(|x| e(x.into()))?;
                let text = expanded
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                st.config.config.env = scope
                    .env()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                self.config_step(st, inst, &format!("ENV {text}"));
                Ok(false)
            }
            Command::Label(pairs) => {
                let expanded = scope.expand_pairs(pairs).map_err(|x| e(x.into()))?;
                let mut text = Vec::new();
                for (k, v) in expanded {
                    text.push(format!("{k}={v}"));
                    st.config.config.labels.insert(k, v);
                }
                self.config_step(st, inst, &format!("LABEL {}", text.join(" ")));
                Ok(false)
            }
            Command::User(u) => {
                let u = scope.expand(u).map_err(|x| e(x.into()))?;
                st.config.config.user = u.clone();
                self.config_step(st, inst, &format!("USER {u}"));
                Ok(false)
            }
            Command::Expose(words) => {
                let mut ports = Vec::new();
                for w in words {
                    for word in scope.expand_words(w).map_err(|x| e(x.into()))? {
                        let p = parse_port(&word).map_err(|m| e(StepErrorKind::Invalid(m)))?;
                        for port in p.start..=p.end {
                            let key = format!("{port}/{}", p.protocol.as_str());
                            st.config.config.exposed_ports.insert(key.clone(), Empty {});
                            ports.push(key);
                        }
                    }
                }
                self.config_step(st, inst, &format!("EXPOSE {}", ports.join(" ")));
                Ok(false)
            }
            Command::Volume(paths) => {
                let mut vols = Vec::new();
                for p in paths {
                    let v = scope.expand(p).map_err(|x| e(x.into()))?;
                    if v.is_empty() {
                        return Err(e(StepErrorKind::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        )));
                    }
                    st.config.config.volumes.insert(v.clone(), Empty {});
                    vols.push(v);
                }
                self.config_step(st, inst, &format!("VOLUME {}", json_list(&vols)));
                Ok(false)
            }
            Command::StopSignal(s) => {
                let s = scope.expand(s).map_err(|x| e(x.into()))?;
                st.config.config.stop_signal = s.clone();
                self.config_step(st, inst, &format!("STOPSIGNAL {s}"));
                Ok(false)
            }
            Command::Healthcheck(h) => {
                st.config.config.healthcheck = Some(match h {
                    Healthcheck::None => HealthConfig {
                        test: vec!["NONE".into()],
                        ..HealthConfig::default()
                    },
                    Healthcheck::Check(c) => {
                        let ns = |d: Option<std::time::Duration>| {
                            d.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                                .unwrap_or(0)
                        };
                        HealthConfig {
                            test: c.test.clone(),
                            interval: ns(c.interval),
                            timeout: ns(c.timeout),
                            start_period: ns(c.start_period),
                            start_interval: ns(c.start_interval),
                            retries: c.retries.unwrap_or(0),
                        }
                    }
                });
                self.config_step(st, inst, &inst.original);
                Ok(false)
            }
            Command::Onbuild(o) => {
                st.config.config.on_build.push(o.text.clone());
                self.config_step(st, inst, &inst.original);
                Ok(false)
            }
            Command::Shell(sh) => {
                st.config.config.shell = sh.clone();
                self.config_step(st, inst, &format!("SHELL {}", json_list(sh)));
                Ok(false)
            }
            Command::Maintainer(m) => {
                st.config.author = Some(m.clone());
                self.config_step(st, inst, &format!("MAINTAINER {m}"));
                Ok(false)
            }
            Command::Cmd(c) | Command::Entrypoint(c) => {
                let argv = match c {
                    CommandLine::Exec(v) => v.clone(),
                    CommandLine::Shell(s) => {
                        let mut v = self.shell(st);
                        v.push(s.clone());
                        v
                    }
                };
                let is_cmd = matches!(inst.command, Command::Cmd(_));
                if is_cmd {
                    st.config.config.cmd = Some(argv.clone());
                    *cmd_set = true;
                } else {
                    st.config.config.entrypoint = Some(argv.clone());
                    if !*cmd_set {
                        st.config.config.cmd = None;
                    }
                }
                let word = if is_cmd { "CMD" } else { "ENTRYPOINT" };
                self.config_step(st, inst, &format!("{word} {}", json_list(&argv)));
                Ok(false)
            }
            Command::Workdir(w) => {
                let w = scope.expand(w).map_err(|x| e(x.into()))?;
                let base = if st.config.config.working_dir.is_empty() {
                    "/".to_string()
                } else {
                    st.config.config.working_dir.clone()
                };
                let path = if w.starts_with('/') {
                    clean_path(&w)
                } else {
                    clean_path(&format!("{base}/{w}"))
                };
                st.config.config.working_dir = path.clone();
                let material = format!("WORKDIR {path}");
                self.fs_step(st, inst, material.clone(), material, |_, merged| {
                    exec::make_workdir(merged, &path).map_err(StepErrorKind::from)?;
                    Ok(Vec::new())
                })
            }
            Command::Run(r) => self.run_step(stage, st, scope, inst, r),
            Command::Copy(c) => self.copy_step(stage, st, scope, inst, c, false),
            Command::Add(c) => self.copy_step(stage, st, scope, inst, c, true),
        }
    }

    /// A step that changes files: cache lookup by key, else mount the
    /// stage's snapshot, run `action` on the merged root, and archive the
    /// upper dir as a layer. `action` returns mount points to clean up.
    fn fs_step<F>(
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
        if !self.req.no_cache {
            if let Some(entry) = self.store.cache_get(&key) {
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
        let empty = layer.is_none();
        if let Some(l) = layer {
            st.layers.push(l);
        }
        st.key = key;
        self.history(st, created_by, empty, Some(created));
        Ok(false)
    }

    fn lowers(&self, layers: &[LayerRecord]) -> Result<Vec<String>, StepErrorKind> {
        let mut lowers = Vec::new();
        for l in layers.iter().rev() {
            self.store.ensure_unpacked(l)?;
            lowers.push(l.diff_id.hex().to_string());
        }
        lowers.push("empty".into());
        Ok(lowers)
    }

    fn execute_fs<F>(
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
        let lowers = self.lowers(&st.layers)?;
        let ov = Overlay::mount(
            &self.store.layers_dir(),
            &lowers,
            Some((&upper, &work)),
            &merged,
        )?;
        self.progress.tick();
        let created_mounts = {
            let root = fsutil::open_dir(&merged).map_err(|e| ExecError::io(merged.display(), e))?;
            action(self, root.as_fd())?
        };
        self.progress.tick();
        ov.unmount()?;
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
        self.store.commit_blob(&tmp, &blob.digest)?;
        self.store.adopt_layer_dir(&upper, &blob.diff_id)?;
        Ok(Some(LayerRecord {
            digest: blob.digest,
            diff_id: blob.diff_id,
            size: blob.size,
            media_type: blob.media_type.to_string(),
        }))
    }

    fn run_step(
        &mut self,
        stage: usize,
        st: &mut StageState,
        scope: &StageScope<'a>,
        inst: &Instruction,
        r: &crate::dockerfile::Run,
    ) -> Result<bool, StepError> {
        let e = |k: StepErrorKind| self.err(inst, k);
        if matches!(r.security, Some(crate::dockerfile::SecurityMode::Insecure)) {
            return Err(e(StepErrorKind::Unsupported(
                "RUN --security=insecure".into(),
            )));
        }
        let host_network = matches!(r.network, Some(NetworkMode::Host));
        let shell = self.shell(st);
        let mut script_file: Option<(String, String)> = None;
        let args: Vec<String> = match r.script() {
            RunScript::Command(CommandLine::Exec(v)) => v,
            RunScript::Command(CommandLine::Shell(s)) | RunScript::Shell(s) => {
                let mut v = shell.clone();
                v.push(s);
                v
            }
            RunScript::File { name, content } => {
                let safe: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let dest = format!("/dev/pipes/{safe}");
                script_file = Some((safe, content));
                vec![dest]
            }
        };
        let mut env: Vec<String> = scope
            .run_env()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !env.iter().any(|kv| kv.starts_with("PATH=")) {
            env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        let cwd = if st.config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            st.config.config.working_dir.clone()
        };
        let user = st.config.config.user.clone();
        let mut mounts = Vec::new();
        for m in &r.mounts {
            match self.plan_mount(stage, scope, &cwd, m) {
                Ok(p) => mounts.push(p),
                Err(k) => return Err(self.err(inst, k)),
            }
        }
        let mut material = format!(
            "RUN {}\nenv={}\nuser={user}\ncwd={cwd}\nnetwork={host_network}\nscript={}",
            json_list(&args),
            json_list(&env),
            script_file.as_ref().map(|(_, c)| c.as_str()).unwrap_or("")
        );
        for m in &mounts {
            material.push_str(&format!("\nmount={}", m.material));
        }
        let created_by = match &r.command {
            CommandLine::Exec(v) => format!("RUN {}", json_list(v)),
            CommandLine::Shell(s) => format!("RUN {} {s}", shell.join(" ")),
        };
        let shown = args.join(" ");
        let step = self.step;
        self.fs_step(st, inst, material, created_by, move |b, root| {
            let passwd = exec::read_root_file(root, "/etc/passwd");
            let group = exec::read_root_file(root, "/etc/group");
            let resolved =
                exec::user::resolve_user(&user, &passwd, &group).map_err(ExecError::User)?;
            let merged = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&root)
            ));
            let merged = std::fs::read_link(&merged).map_err(|e| ExecError::io("rootfs", e))?;
            let bundle = merged
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| StepErrorKind::Invalid("bundle".into()))?;
            let mut binds = Vec::new();
            if let Some((name, content)) = &script_file {
                let p = bundle.join(format!("script-{name}"));
                std::fs::write(&p, content).map_err(|e| ExecError::io(p.display(), e))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| ExecError::io(p.display(), e))?;
                binds.push((p.display().to_string(), format!("/dev/pipes/{name}")));
            }
            if host_network {
                for f in ["/etc/resolv.conf", "/etc/hosts"] {
                    if Path::new(f).exists() {
                        binds.push((f.to_string(), f.to_string()));
                    }
                }
            }
            // Host sides of the mounts; they stay mounted until the
            // container is done (overlays drop before their scratch dirs).
            let mut scratches = Vec::new();
            let mut overlays = Vec::new();
            let mut run_mounts = Vec::new();
            // Secret files live until the container is done; their
            // environment variables are for this RUN only (not in the key).
            let mut secret_files = Vec::new();
            let mut env = env.clone();
            for m in &mounts {
                if let MountPlanKind::Secret {
                    id,
                    source,
                    env: var,
                    file,
                    mode,
                    uid,
                    gid,
                } = &m.kind
                {
                    let Some(source) = source else { continue };
                    let content = source.read(id)?;
                    if let Some(var) = var {
                        let text = String::from_utf8(content.clone()).map_err(|_| {
                            SecretError::Unreadable {
                                id: id.clone(),
                                reason: format!("not valid UTF-8, cannot be put in ${var}"),
                            }
                        })?;
                        env.retain(|kv| kv.split_once('=').map(|(k, _)| k) != Some(var));
                        env.push(format!("{var}={text}"));
                    }
                    if *file {
                        let f = SecretFile::create(&content, *mode, *uid, *gid).map_err(|e| {
                            SecretError::Unreadable {
                                id: id.clone(),
                                reason: format!("cannot write its temporary file: {e}"),
                            }
                        })?;
                        run_mounts.push(RunMount::Bind {
                            source: f.path().display().to_string(),
                            destination: m.target.clone(),
                            read_only: true,
                        });
                        secret_files.push(f);
                    }
                    continue;
                }
                run_mounts.push(b.mount_source(m, &mut scratches, &mut overlays)?);
            }
            let pid = std::process::id();
            let settings = RunSettings {
                args: args.clone(),
                env,
                cwd: cwd.clone(),
                user: resolved,
                host_network,
                cgroups_path: format!("/berth-build-{pid}/step-{step}"),
                nofile: run::nofile_limit(),
                binds,
                mounts: run_mounts,
            };
            let spec = run::run_spec(&settings);
            let missing = exec::missing_paths(root, &run::mount_destinations(&spec));
            let cfg = bundle.join("config.json");
            std::fs::write(&cfg, to_json(&spec)).map_err(|e| ExecError::io(cfg.display(), e))?;
            let id = format!("berth-build-{pid}-{step}");
            b.progress.before_output();
            let code = run::run_container(&bundle, &id, &b.store.run_dir());
            b.progress.after_output();
            let code = code?;
            if code != 0 {
                return Err(StepErrorKind::RunFailed {
                    command: shown.clone(),
                    code,
                });
            }
            Ok(missing)
        })
    }

    /// Expands and checks one `RUN --mount`, and computes what it adds to
    /// the step's cache key (bind sources by content, caches by id).
    fn plan_mount(
        &mut self,
        stage: usize,
        scope: &StageScope<'a>,
        cwd: &str,
        m: &Mount,
    ) -> Result<MountPlan, StepErrorKind> {
        let expand = |v: &Option<String>| -> Result<Option<String>, StepErrorKind> {
            match v {
                Some(v) => Ok(Some(scope.expand(v)?)),
                None => Ok(None),
            }
        };
        if m.kind == MountType::Secret {
            return self.plan_secret(scope, cwd, m);
        }
        let raw_target = expand(&m.target)?.unwrap_or_default();
        let target = if raw_target.starts_with('/') {
            clean_path(&raw_target)
        } else {
            clean_path(&format!("{cwd}/{raw_target}"))
        };
        if target == "/" {
            return Err(StepErrorKind::Invalid(
                "RUN --mount target=/ would hide the whole root filesystem: use a directory".into(),
            ));
        }
        let ro = m.read_only;
        match m.kind {
            MountType::Secret | MountType::Ssh => {
                Err(StepErrorKind::Unsupported("RUN --mount=type=ssh".into()))
            }
            MountType::Tmpfs => Ok(MountPlan {
                material: format!("tmpfs target={target} size={:?}", m.size),
                kind: MountPlanKind::Tmpfs { size: m.size },
                target,
            }),
            MountType::Cache => {
                if m.from.is_some() {
                    return Err(StepErrorKind::Unsupported(
                        "RUN --mount=type=cache,from= (seeding a cache from a stage)".into(),
                    ));
                }
                let id = expand(&m.id)?.unwrap_or_else(|| target.clone());
                let mode = m.mode.unwrap_or(0o755);
                let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
                Ok(MountPlan {
                    material: format!(
                        "cache id={id:?} target={target} ro={ro} mode={mode:o} uid={uid} gid={gid}"
                    ),
                    kind: MountPlanKind::Cache {
                        id,
                        read_only: ro,
                        mode,
                        uid,
                        gid,
                    },
                    target,
                })
            }
            MountType::Bind => {
                let source = expand(&m.source)?.unwrap_or_default();
                let source = copy::clean_source(&source);
                let from = match expand(&m.from)? {
                    Some(raw) if !raw.is_empty() => self
                        .plan
                        .resolve_source(stage, &raw)
                        .map_err(|k| StepErrorKind::Invalid(k.to_string()))?,
                    _ => SourceRef::Context,
                };
                let (state, identity) = match &from {
                    SourceRef::Context => {
                        let filter = SourceFilter {
                            ignore: self.ignore.clone(),
                            exclude: Dockerignore::default(),
                        };
                        let shown = if source.is_empty() { "." } else { &source };
                        let found = copy::match_sources(self.context_fd.as_fd(), shown, &filter)
                            .map_err(|_| {
                                StepErrorKind::Invalid(format!(
                                    "RUN --mount source {shown:?} not found in the build context (or excluded by .dockerignore)"
                                ))
                            })?;
                        let hash = copy::hash_sources(self.context_fd.as_fd(), &found, &filter)?;
                        (None, format!("context:{hash}"))
                    }
                    SourceRef::Stage(j) => {
                        let s = self.results.get(j).cloned().ok_or_else(|| {
                            StepErrorKind::Invalid(format!("stage {j} was not built"))
                        })?;
                        let id = format!("stage:{}", s.key);
                        (Some(s), id)
                    }
                    SourceRef::Image(r) => {
                        let s = self.load_image(r)?;
                        let id = format!("image:{}", s.key);
                        (Some(s), id)
                    }
                };
                Ok(MountPlan {
                    material: format!(
                        "bind source={source:?} from={identity} target={target} ro={ro}"
                    ),
                    kind: MountPlanKind::Bind {
                        from: state.map(|s| s.layers),
                        source,
                        read_only: ro,
                    },
                    target,
                })
            }
        }
    }

    /// Plans a secret mount: checks that a required secret was given. Its
    /// cache key part names the id and the targets, never the content.
    fn plan_secret(
        &self,
        scope: &StageScope<'a>,
        cwd: &str,
        m: &Mount,
    ) -> Result<MountPlan, StepErrorKind> {
        let expand = |v: &Option<String>| -> Result<Option<String>, StepErrorKind> {
            match v {
                Some(v) => Ok(Some(scope.expand(v)?)),
                None => Ok(None),
            }
        };
        let id = expand(&m.id)?.unwrap_or_default();
        let env = expand(&m.env)?.filter(|e| !e.is_empty());
        let target = match expand(&m.target)?.filter(|t| !t.is_empty()) {
            Some(t) if t.starts_with('/') => Some(clean_path(&t)),
            Some(t) => Some(clean_path(&format!("{cwd}/{t}"))),
            None if env.is_none() => Some(format!("/run/secrets/{id}")),
            None => None,
        };
        if target.as_deref() == Some("/") {
            return Err(StepErrorKind::Invalid(
                "RUN --mount=type=secret target=/ would hide the whole root filesystem".into(),
            ));
        }
        let source = self.req.secrets.get(&id).cloned();
        if source.is_none() && m.required {
            return Err(SecretError::Missing(id).into());
        }
        Ok(MountPlan {
            material: format!("secret id={id:?} target={target:?} env={env:?}"),
            kind: MountPlanKind::Secret {
                id,
                source,
                env,
                file: target.is_some(),
                mode: m.mode.unwrap_or(0o400),
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
            },
            target: target.unwrap_or_default(),
        })
    }

    /// Makes the host side of a planned mount: the cache directory, or the
    /// bind source (read-write binds get a throw-away overlay or copy, so
    /// the context and the stages never change).
    fn mount_source(
        &self,
        m: &MountPlan,
        scratches: &mut Vec<crate::store::Scratch>,
        overlays: &mut Vec<Overlay>,
    ) -> Result<RunMount, StepErrorKind> {
        let destination = m.target.clone();
        match &m.kind {
            MountPlanKind::Tmpfs { size } => Ok(RunMount::Tmpfs {
                destination,
                size: *size,
            }),
            MountPlanKind::Secret { .. } => Err(StepErrorKind::Invalid(
                "a secret mount has no host directory".into(),
            )),
            MountPlanKind::Cache {
                id,
                read_only,
                mode,
                uid,
                gid,
            } => {
                let dir = self.store.cache_mount_dir(id);
                if !dir.is_dir() {
                    let parent = dir.parent().unwrap_or(&dir).to_path_buf();
                    std::fs::create_dir_all(&parent)
                        .map_err(|e| ExecError::io(parent.display(), e))?;
                    let tmp = parent.join(format!(".tmp-{}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&tmp);
                    std::fs::create_dir(&tmp).map_err(|e| ExecError::io(tmp.display(), e))?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(*mode))
                        .map_err(|e| ExecError::io(tmp.display(), e))?;
                    std::os::unix::fs::chown(&tmp, Some(*uid), Some(*gid))
                        .map_err(|e| ExecError::io(tmp.display(), e))?;
                    std::fs::rename(&tmp, &dir).map_err(|e| ExecError::io(dir.display(), e))?;
                }
                Ok(RunMount::Bind {
                    source: dir.display().to_string(),
                    destination,
                    read_only: *read_only,
                })
            }
            MountPlanKind::Bind {
                from,
                source,
                read_only,
            } => {
                let not_found = |e: std::io::Error| {
                    StepErrorKind::Invalid(format!(
                        "RUN --mount source {:?}: {e}",
                        if source.is_empty() { "." } else { source }
                    ))
                };
                let real = match from {
                    None => {
                        let real = exec::resolve_in_root(self.context_fd.as_fd(), source)
                            .map_err(not_found)?;
                        if *read_only {
                            real
                        } else {
                            // Writes are discarded: give the container a copy-on-write view.
                            let s = self.store.scratch("mount")?;
                            let view = if real.is_dir() {
                                let text = real.display().to_string();
                                if text.contains([',', ':']) {
                                    return Err(StepErrorKind::Unsupported(format!(
                                        "a read-write bind mount of {text} (a path with ',' or ':')"
                                    )));
                                }
                                let (upper, work, merged) = (
                                    s.path().join("upper"),
                                    s.path().join("work"),
                                    s.path().join("merged"),
                                );
                                for d in [&upper, &work, &merged] {
                                    std::fs::create_dir(d)
                                        .map_err(|e| ExecError::io(d.display(), e))?;
                                }
                                overlays.push(Overlay::mount(
                                    &self.store.layers_dir(),
                                    &[text],
                                    Some((&upper, &work)),
                                    &merged,
                                )?);
                                merged
                            } else {
                                let copy = s.path().join("file");
                                std::fs::copy(&real, &copy)
                                    .map_err(|e| ExecError::io(real.display(), e))?;
                                copy
                            };
                            scratches.push(s);
                            view
                        }
                    }
                    Some(layers) => {
                        let s = self.store.scratch("mount")?;
                        let merged = s.path().join("merged");
                        std::fs::create_dir(&merged)
                            .map_err(|e| ExecError::io(merged.display(), e))?;
                        let mut lowers = self.lowers(layers)?;
                        let upper = s.path().join("upper");
                        let work = s.path().join("work");
                        let ov = if *read_only {
                            if lowers.len() == 1 {
                                lowers.push("empty".into());
                            }
                            Overlay::mount(&self.store.layers_dir(), &lowers, None, &merged)?
                        } else {
                            for d in [&upper, &work] {
                                std::fs::create_dir(d)
                                    .map_err(|e| ExecError::io(d.display(), e))?;
                            }
                            Overlay::mount(
                                &self.store.layers_dir(),
                                &lowers,
                                Some((&upper, &work)),
                                &merged,
                            )?
                        };
                        let root = fsutil::open_dir(&merged)
                            .map_err(|e| ExecError::io(merged.display(), e))?;
                        let real =
                            exec::resolve_in_root(root.as_fd(), source).map_err(not_found)?;
                        overlays.push(ov);
                        scratches.push(s);
                        real
                    }
                };
                Ok(RunMount::Bind {
                    source: real.display().to_string(),
                    destination,
                    read_only: *read_only,
                })
            }
        }
    }

    fn copy_step(
        &mut self,
        stage: usize,
        st: &mut StageState,
        scope: &StageScope<'a>,
        inst: &Instruction,
        c: &CopySpec,
        add: bool,
    ) -> Result<bool, StepError> {
        let location = self.df.location_of(inst);
        let e = |k: StepErrorKind| StepError {
            location: location.clone(),
            kind: Box::new(k),
        };
        let word = if add { "ADD" } else { "COPY" };
        if c.parents && add {
            return Err(e(StepErrorKind::Unsupported("ADD --parents".into())));
        }
        let parents = c.parents;
        let checksum = match &c.checksum {
            Some(raw) => {
                let v = scope.expand(raw).map_err(|x| e(x.into()))?;
                Some(Digest::parse(&v).map_err(|x| {
                    e(StepErrorKind::Invalid(format!(
                        "ADD --checksum={v}: {x} (use sha256:HEX)"
                    )))
                })?)
            }
            None => None,
        };
        let dest_raw = scope.expand(&c.dest).map_err(|x| e(x.into()))?;
        let workdir = if st.config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            st.config.config.working_dir.clone()
        };
        let dest_dir_hint = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let dest = if dest_raw.starts_with('/') {
            clean_path(&dest_raw)
        } else {
            clean_path(&format!("{workdir}/{dest_raw}"))
        };
        let chown = match &c.chown {
            Some(s) => Some(scope.expand(s).map_err(|x| e(x.into()))?),
            None => None,
        };
        let chmod = match &c.chmod {
            Some(s) => {
                let v = scope.expand(s).map_err(|x| e(x.into()))?;
                Some(
                    u32::from_str_radix(&v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            e(StepErrorKind::Unsupported(format!(
                                "--chmod={v} (only octal modes are)"
                            )))
                        })?,
                )
            }
            None => None,
        };
        let exclude = Dockerignore::from_patterns(&c.excludes)
            .map_err(|x| e(StepErrorKind::Invalid(x.to_string())))?;
        let mut patterns = Vec::new();
        let mut pivots = Vec::new();
        let mut urls = Vec::new();
        let mut inline = Vec::new();
        for s in &c.sources {
            match s {
                Source::Path(p) => {
                    let p = scope.expand(p).map_err(|x| e(x.into()))?;
                    let git = p.starts_with("git@")
                        || p.starts_with("git://")
                        || p.ends_with(".git")
                        || p.contains(".git#");
                    if add && git {
                        return Err(e(StepErrorKind::Unsupported(
                            "ADD from a git repository".into(),
                        )));
                    }
                    if add && fetch::is_http_url(&p) {
                        urls.push(p);
                        continue;
                    }
                    pivots.push(copy::parents_pivot(&p));
                    patterns.push(p);
                }
                Source::Heredoc(h) => {
                    let content = if h.expand {
                        scope.expand_heredoc(&h.content).map_err(|x| e(x.into()))?
                    } else {
                        h.content.clone()
                    };
                    inline.push((h.name.clone(), content));
                }
            }
        }
        if checksum.is_some() && (urls.is_empty() || !patterns.is_empty() || !inline.is_empty()) {
            return Err(e(StepErrorKind::Invalid(
                "ADD --checksum needs http(s) URL sources only".into(),
            )));
        }
        // URLs are fetched first: the key holds their content's digest.
        let mut downloads = Vec::new();
        let download_dir = if urls.is_empty() {
            None
        } else {
            Some(self.store.scratch("download").map_err(|x| e(x.into()))?)
        };
        if let Some(dir) = &download_dir {
            for (i, u) in urls.iter().enumerate() {
                let sub = dir.path().join(i.to_string());
                std::fs::create_dir(&sub).map_err(|x| e(ExecError::io(sub.display(), x).into()))?;
                downloads
                    .push(fetch::download(u, &sub, checksum.as_ref()).map_err(|x| e(x.into()))?);
            }
        }
        let download_ids: Vec<String> = downloads
            .iter()
            .map(|d| format!("{} {} {} {}", d.url, d.name, d.digest, d.mtime))
            .collect();
        // Where the sources come from, and their identity for the key.
        let from = match &c.from {
            Some(raw) => self
                .plan
                .resolve_source(stage, raw)
                .map_err(|k| e(StepErrorKind::Invalid(k.to_string())))?,
            None => SourceRef::Context,
        };
        let (src_state, filter) = match &from {
            SourceRef::Context => (
                None,
                SourceFilter {
                    ignore: self.ignore.clone(),
                    exclude: exclude.clone(),
                },
            ),
            SourceRef::Stage(j) => (
                Some(self.results.get(j).cloned().ok_or_else(|| {
                    e(StepErrorKind::Invalid(format!("stage {j} was not built")))
                })?),
                SourceFilter {
                    exclude: exclude.clone(),
                    ..SourceFilter::default()
                },
            ),
            SourceRef::Image(r) => (
                Some(self.load_image(r).map_err(&e)?),
                SourceFilter {
                    exclude: exclude.clone(),
                    ..SourceFilter::default()
                },
            ),
        };
        let mut matches: Vec<Vec<Matched>> = Vec::new();
        let identity = match &src_state {
            None => {
                for p in &patterns {
                    matches.push(
                        copy::match_sources(self.context_fd.as_fd(), p, &filter)
                            .map_err(|x| e(x.into()))?,
                    );
                }
                let flat: Vec<Matched> = matches.iter().flatten().cloned().collect();
                copy::hash_sources(self.context_fd.as_fd(), &flat, &filter)
                    .map_err(|x| e(x.into()))?
                    .to_string()
            }
            Some(s) => s
                .layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        let material = format!(
            "{word} {}\ndest={dest}\ndir={dest_dir_hint}\nchown={chown:?}\nchmod={chmod:?}\nexclude={:?}\nsources={identity}\ninline={inline:?}\nparents={parents}\nurls={download_ids:?}",
            json_list(&patterns),
            c.excludes,
        );
        let created_by = inst.original.clone();
        let epoch = self.req.source_date_epoch;
        self.fs_step(st, inst, material, created_by, move |b, root| {
            let owner = match &chown {
                Some(spec) => {
                    let passwd = exec::read_root_file(root, "/etc/passwd");
                    let group = exec::read_root_file(root, "/etc/group");
                    let u =
                        exec::user::resolve_user(spec, &passwd, &group).map_err(ExecError::User)?;
                    Some((u.uid, u.gid))
                }
                None => None,
            };
            let attrs = CopyAttrs {
                chown: owner,
                chmod,
                unpack_archives: add,
            };
            // Mount the source stage/image read-only when needed.
            let src_scratch;
            let src_overlay;
            let src_fd: OwnedFd = match &src_state {
                None => b
                    .context_fd
                    .try_clone()
                    .map_err(|x| ExecError::io("build context", x))?,
                Some(s) => {
                    src_scratch = b.store.scratch("from")?;
                    let lowers = b.lowers(&s.layers)?;
                    let mut lowers = lowers;
                    if lowers.len() == 1 {
                        lowers.push("empty".into());
                    }
                    src_overlay =
                        Overlay::mount(&b.store.layers_dir(), &lowers, None, src_scratch.path())?;
                    fsutil::open_dir(src_overlay.path())
                        .map_err(|x| ExecError::io("source stage", x))?
                }
            };
            if src_state.is_some() {
                for p in &patterns {
                    matches.push(copy::match_sources(src_fd.as_fd(), p, &filter)?);
                }
            }
            let total: usize =
                matches.iter().map(Vec::len).sum::<usize>() + inline.len() + downloads.len();
            let dest_dir = dest_dir_hint || total > 1;
            for (m, pivot) in matches.iter().zip(&pivots) {
                if !parents {
                    copy::copy_sources(src_fd.as_fd(), m, &filter, root, &dest, dest_dir, attrs)?;
                    continue;
                }
                // --parents: each match keeps its path (below the pivot)
                // under the destination directory.
                for one in m {
                    let kept = copy::parents_rel(&one.rel, pivot);
                    let under = if one.is_dir {
                        kept
                    } else {
                        kept.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
                    };
                    let d = clean_path(&format!("{dest}/{under}"));
                    copy::copy_sources(
                        src_fd.as_fd(),
                        std::slice::from_ref(one),
                        &filter,
                        root,
                        &d,
                        true,
                        attrs,
                    )?;
                }
            }
            for d in &downloads {
                let into_dir = dest_dir || dest.ends_with('/');
                if d.name.is_empty() && into_dir {
                    return Err(StepErrorKind::Invalid(format!(
                        "ADD {}: the URL names no file; give a destination file path",
                        d.url
                    )));
                }
                let dir_path = d.path.parent().unwrap_or(&d.path);
                let dir_fd =
                    fsutil::open_dir(dir_path).map_err(|x| ExecError::io(dir_path.display(), x))?;
                let file = d
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Remote files: mode 0600 unless --chmod, never unpacked.
                let url_attrs = CopyAttrs {
                    chmod: Some(chmod.unwrap_or(0o600)),
                    unpack_archives: false,
                    ..attrs
                };
                let m = [Matched {
                    rel: file,
                    is_dir: false,
                }];
                copy::copy_sources(
                    dir_fd.as_fd(),
                    &m,
                    &SourceFilter::default(),
                    root,
                    &dest,
                    dest_dir,
                    url_attrs,
                )?;
            }
            drop(download_dir);
            for (name, content) in &inline {
                copy::write_inline(
                    root,
                    &dest,
                    dest_dir,
                    name,
                    content.as_bytes(),
                    attrs,
                    epoch.unwrap_or(0),
                )?;
            }
            Ok(Vec::new())
        })
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
