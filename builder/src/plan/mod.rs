//! Pure build planning: stages from FROM lines, global and per-stage ARGs,
//! the dependency graph between stages, `--target` selection and the order
//! to build the needed stages in.

mod graph;
mod platform;
mod scope;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use thiserror::Error;

use crate::dockerfile::expand::{expand_word, ExpandError};
use crate::dockerfile::{Command, Dockerfile, Instruction, Location};

pub use platform::{Platform, PlatformError};
pub use scope::StageScope;

/// Build args that RUN receives without an ARG line (and that are not
/// reported as unused).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--target`: the stage to build (default: the last one).
    pub target: Option<String>,
    /// `--build-arg NAME=VALUE` values.
    pub build_args: BTreeMap<String, String>,
    /// The platform the image is built for (TARGETPLATFORM...).
    pub target_platform: Platform,
    /// The platform the build runs on (BUILDPLATFORM...).
    pub build_platform: Platform,
    /// `--build-context NAME=...`, by lower-cased name: they replace the
    /// stage or image NAME names in FROM, COPY --from and RUN --mount from=.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// A `--build-context` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory (COPY --from / RUN --mount from= only).
    Dir(std::path::PathBuf),
    /// An image reference (`docker-image://REF`, `oci-layout://DIR[:tag]`
    /// becomes `oci:DIR[:tag]`).
    Image(String),
}

impl NamedContext {
    /// Parses `NAME=VALUE` as buildx does: `docker-image://REF`,
    /// `oci-layout://DIR[:TAG]`, or a local directory path.
    pub fn parse(spec: &str) -> Result<(String, NamedContext), String> {
        let Some((name, value)) = spec.split_once('=') else {
            return Err(format!(
                "--build-context {spec:?}: use NAME=PATH or NAME=docker-image://REF"
            ));
        };
        if name.is_empty() || value.is_empty() {
            return Err(format!(
                "--build-context {spec:?}: the name and the value must not be empty"
            ));
        }
        let ctx = if let Some(r) = value.strip_prefix("docker-image://") {
            NamedContext::Image(r.to_string())
        } else if let Some(d) = value.strip_prefix("oci-layout://") {
            NamedContext::Image(format!("oci:{d}"))
        } else if value.contains("://") {
            return Err(format!(
                "--build-context {spec:?}: only local directories, docker-image:// and \
                 oci-layout:// are supported"
            ));
        } else {
            NamedContext::Dir(std::path::PathBuf::from(value))
        };
        Ok((name.to_ascii_lowercase(), ctx))
    }
}

impl BuildOptions {
    /// Options for a native build on `platform` with no target or args.
    pub fn new(platform: Platform) -> Self {
        BuildOptions {
            target: None,
            build_args: BTreeMap::new(),
            target_platform: platform.clone(),
            build_platform: platform,
            named_contexts: BTreeMap::new(),
        }
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    /// `FROM scratch`: an empty filesystem.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (expanded).
    Image(String),
}

/// What a `COPY --from` or `RUN --mount from=` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// The build context (empty `from`).
    Context,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
    /// A `--build-context` directory.
    Dir(std::path::PathBuf),
}

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the FROM lines (0-based).
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// What it starts from.
    pub base: BaseRef,
    /// The platform it runs as: `FROM --platform`, else the target platform.
    pub platform: Platform,
    /// Whether `--platform` was given on its FROM line.
    pub platform_explicit: bool,
    /// The FROM instruction.
    pub from: Instruction,
    /// The instructions after FROM, up to the next FROM.
    pub instructions: Vec<Instruction>,
    /// Stages this one needs (base, `COPY --from`, `RUN --mount from=`),
    /// ascending.
    pub deps: Vec<usize>,
    /// Images (other than the base) that `COPY --from` or mounts use.
    pub images: Vec<String>,
}

impl Stage {
    /// The name for messages: `AS` name or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// A Dockerfile resolved against [`BuildOptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The Dockerfile's name, for messages.
    pub file: String,
    /// Escape character of the Dockerfile (for expansion).
    pub escape: char,
    /// All stages, in file order.
    pub stages: Vec<Stage>,
    /// Index of the stage to produce.
    pub target: usize,
    /// The stages to build, dependencies first, `target` last.
    pub order: Vec<usize>,
    /// Global-scope ARGs: the platform ARGs, then those declared before the
    /// first FROM (after `--build-arg` overrides). `None` = declared
    /// without a value.
    pub meta_args: Vec<(String, Option<String>)>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--build-arg` names no needed stage (or global ARG) declares.
    pub unused_build_args: Vec<String>,
    /// `--build-context` values by lower-cased name.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// Why a build cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The instruction at fault, when there is one.
    pub location: Option<Location>,
    /// What is wrong.
    pub kind: PlanErrorKind,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => loc.render(f, &self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for PlanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

/// The reasons planning fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanErrorKind {
    /// No FROM line at all.
    #[error("{0}: no build stage: add a FROM instruction (e.g. FROM scratch)")]
    NoStages(String),
    /// An instruction other than ARG before the first FROM.
    #[error("{0} before the first FROM: only ARG may come before FROM")]
    BeforeFrom(String),
    /// `--target` names no stage.
    #[error("target stage {target:?} could not be found; stages are: {}", .available.join(", "))]
    UnknownTarget {
        /// The name asked for.
        target: String,
        /// The named stages.
        available: Vec<String>,
    },
    /// Two stages with one name.
    #[error("duplicate stage name {name:?}: it is already used on line {first_line}")]
    DuplicateStageName {
        /// The name.
        name: String,
        /// Line of the first stage with it.
        first_line: usize,
    },
    /// FROM a `--build-context` directory.
    #[error("FROM {0}: a --build-context directory can be used by COPY --from and RUN --mount from= only (not as a base image) in berth-build")]
    NamedDirBase(String),
    /// A FROM whose image expands to nothing.
    #[error("base name ({0}) should not be blank: set the ARG it uses before the first FROM")]
    BlankBaseName(String),
    /// A bad `--platform`.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// An expansion error in FROM or `--from`.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// `--from` naming a stage defined later (or the current one).
    #[error("{reference:?} refers to stage {stage} which is not defined before this instruction: move that stage above it")]
    LaterStage {
        /// The value given.
        reference: String,
        /// The stage it names.
        stage: String,
    },
    /// A numeric `--from` that is out of range.
    #[error("invalid stage index {index}: there are {count} stages, numbered from 0")]
    InvalidStageIndex {
        /// The index.
        index: usize,
        /// Number of stages.
        count: usize,
    },
    /// Stages that depend on each other.
    #[error("circular dependency between stages: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

impl Plan {
    /// Plans `dockerfile` for `opts`.
    pub fn new(dockerfile: &Dockerfile, opts: &BuildOptions) -> Result<Plan, PlanError> {
        Planner {
            df: dockerfile,
            opts,
        }
        .run()
    }

    /// The stage to produce.
    pub fn target_stage(&self) -> Option<&Stage> {
        self.stages.get(self.target)
    }

    /// A stage by (case-insensitive) name.
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    /// Whether stage `index` is part of the build.
    pub fn is_needed(&self, index: usize) -> bool {
        self.order.contains(&index)
    }

    /// The global value of `name` (for `ARG name` without default).
    pub fn meta_value(&self, name: &str) -> Option<String> {
        self.meta_args
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
    }

    /// Expands `word` with the global-scope ARGs (as FROM lines do).
    pub fn expand_global(&self, word: &str) -> Result<String, ExpandError> {
        expand_word(word, self.escape, &|n| self.meta_value(n))
    }

    /// Resolves a `COPY --from` / `--mount from=` value used in stage
    /// `current`: expanded with the global ARGs, then a stage index, a stage
    /// name (both must be earlier stages), or else an image reference.
    pub fn resolve_source(&self, current: usize, raw: &str) -> Result<SourceRef, PlanErrorKind> {
        let value = self.expand_global(raw)?;
        resolve_source(&self.stages, &self.named_contexts, current, raw, &value)
    }
}

fn resolve_source(
    stages: &[Stage],
    named: &BTreeMap<String, NamedContext>,
    current: usize,
    raw: &str,
    value: &str,
) -> Result<SourceRef, PlanErrorKind> {
    if value.is_empty() {
        return Ok(SourceRef::Context);
    }
    match named.get(&value.to_ascii_lowercase()) {
        Some(NamedContext::Image(r)) => return Ok(SourceRef::Image(r.clone())),
        Some(NamedContext::Dir(d)) => return Ok(SourceRef::Dir(d.clone())),
        None => {}
    }
    let index = if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        let index = value.parse::<usize>().unwrap_or(usize::MAX);
        if index >= stages.len() {
            return Err(PlanErrorKind::InvalidStageIndex {
                index,
                count: stages.len(),
            });
        }
        Some(index)
    } else {
        let lower = value.to_ascii_lowercase();
        stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
    };
    match index {
        Some(i) if i >= current => Err(PlanErrorKind::LaterStage {
            reference: raw.to_string(),
            stage: stages[i].display_name(),
        }),
        Some(i) => Ok(SourceRef::Stage(i)),
        None => Ok(SourceRef::Image(value.to_string())),
    }
}

struct Planner<'a> {
    df: &'a Dockerfile,
    opts: &'a BuildOptions,
}

impl Planner<'_> {
    fn at(&self, inst: &Instruction, kind: impl Into<PlanErrorKind>) -> PlanError {
        PlanError {
            location: Some(self.df.location_of(inst)),
            kind: kind.into(),
        }
    }

    fn run(&self) -> Result<Plan, PlanError> {
        let escape = self.df.escape();
        // Global scope: platform ARGs, then ARGs before the first FROM.
        let mut meta: Vec<(String, Option<String>)> = Vec::new();
        for (k, v) in self
            .opts
            .target_platform
            .args("TARGET")
            .into_iter()
            .chain(self.opts.build_platform.args("BUILD"))
        {
            meta.push((k, Some(v)));
        }
        let mut declared: BTreeSet<String> = BTreeSet::new();
        let mut stages: Vec<Stage> = Vec::new();
        for inst in &self.df.instructions {
            match (&inst.command, stages.last_mut()) {
                (Command::From(from), _) => {
                    let lookup = |n: &str| lookup_meta(&meta, n);
                    let image =
                        expand_word(&from.image, escape, &lookup).map_err(|e| self.at(inst, e))?;
                    if image.is_empty() {
                        return Err(self.at(inst, PlanErrorKind::BlankBaseName(from.image.clone())));
                    }
                    let named = self.opts.named_contexts.get(&image.to_ascii_lowercase());
                    let base = if let Some(NamedContext::Image(r)) = named {
                        BaseRef::Image(r.clone())
                    } else if let Some(NamedContext::Dir(_)) = named {
                        return Err(self.at(inst, PlanErrorKind::NamedDirBase(image.clone())));
                    } else if image == "scratch" {
                        BaseRef::Scratch
                    } else {
                        let lower = image.to_ascii_lowercase();
                        match stages
                            .iter()
                            .position(|s| s.name.as_deref() == Some(lower.as_str()))
                        {
                            Some(i) => BaseRef::Stage(i),
                            None => BaseRef::Image(image),
                        }
                    };
                    let platform = match &from.platform {
                        Some(p) => {
                            let v =
                                expand_word(p, escape, &lookup).map_err(|e| self.at(inst, e))?;
                            Platform::parse(&v).map_err(|e| self.at(inst, e))?
                        }
                        None => self.opts.target_platform.clone(),
                    };
                    if let Some(name) = &from.stage_name {
                        if let Some(prev) = stages.iter().find(|s| s.name.as_ref() == Some(name)) {
                            return Err(self.at(
                                inst,
                                PlanErrorKind::DuplicateStageName {
                                    name: name.clone(),
                                    first_line: prev.from.span.start_line,
                                },
                            ));
                        }
                    }
                    stages.push(Stage {
                        index: stages.len(),
                        name: from.stage_name.clone(),
                        base,
                        platform,
                        platform_explicit: from.platform.is_some(),
                        from: inst.clone(),
                        instructions: Vec::new(),
                        deps: Vec::new(),
                        images: Vec::new(),
                    });
                }
                (Command::Arg(decls), None) => {
                    for d in decls {
                        let value = match self.opts.build_args.get(&d.name) {
                            Some(v) => Some(v.clone()),
                            None => match &d.default {
                                Some(def) => Some(
                                    expand_word(def, escape, &|n| lookup_meta(&meta, n))
                                        .map_err(|e| self.at(inst, e))?,
                                ),
                                None => None,
                            },
                        };
                        declared.insert(d.name.clone());
                        match meta.iter_mut().find(|(k, _)| *k == d.name) {
                            Some(slot) => slot.1 = value,
                            None => meta.push((d.name.clone(), value)),
                        }
                    }
                }
                (other, None) => {
                    return Err(self.at(inst, PlanErrorKind::BeforeFrom(other.name().to_string())))
                }
                (_, Some(stage)) => stage.instructions.push(inst.clone()),
            }
        }
        if stages.is_empty() {
            return Err(PlanError {
                location: None,
                kind: PlanErrorKind::NoStages(self.df.file.clone()),
            });
        }
        self.link(&mut stages, &meta, escape)?;

        let target = match &self.opts.target {
            None => stages.len() - 1,
            Some(t) => {
                let lower = t.to_ascii_lowercase();
                stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .ok_or_else(|| PlanError {
                        location: None,
                        kind: PlanErrorKind::UnknownTarget {
                            target: t.clone(),
                            available: stages.iter().filter_map(|s| s.name.clone()).collect(),
                        },
                    })?
            }
        };
        let deps: Vec<Vec<usize>> = stages.iter().map(|s| s.deps.clone()).collect();
        let order = graph::topo_order(&deps, target).map_err(|cycle| PlanError {
            location: cycle.first().map(|&i| self.df.location_of(&stages[i].from)),
            kind: PlanErrorKind::Cycle(cycle.iter().map(|&i| stages[i].display_name()).collect()),
        })?;

        for &i in &order {
            for inst in &stages[i].instructions {
                if let Command::Arg(decls) = &inst.command {
                    declared.extend(decls.iter().map(|d| d.name.clone()));
                }
            }
        }
        let unused_build_args = self
            .opts
            .build_args
            .keys()
            .filter(|k| !declared.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();

        Ok(Plan {
            file: self.df.file.clone(),
            escape,
            stages,
            target,
            order,
            meta_args: meta,
            build_args: self.opts.build_args.clone(),
            unused_build_args,
            named_contexts: self.opts.named_contexts.clone(),
        })
    }

    /// Fills in each stage's dependencies and external images.
    fn link(
        &self,
        stages: &mut [Stage],
        meta: &[(String, Option<String>)],
        escape: char,
    ) -> Result<(), PlanError> {
        for i in 0..stages.len() {
            let mut deps = BTreeSet::new();
            let mut images = Vec::new();
            if let BaseRef::Stage(j) = stages[i].base {
                deps.insert(j);
            }
            for inst in &stages[i].instructions {
                let mut refs: Vec<&str> = Vec::new();
                match &inst.command {
                    Command::Copy(c) => refs.extend(c.from.as_deref()),
                    Command::Run(r) => {
                        refs.extend(r.mounts.iter().filter_map(|m| m.from.as_deref()))
                    }
                    _ => {}
                }
                for raw in refs {
                    let value = expand_word(raw, escape, &|n| lookup_meta(meta, n))
                        .map_err(|e| self.at(inst, e))?;
                    match resolve_source(stages, &self.opts.named_contexts, i, raw, &value)
                        .map_err(|e| self.at(inst, e))?
                    {
                        SourceRef::Stage(j) => {
                            deps.insert(j);
                        }
                        SourceRef::Image(img) => {
                            if !images.contains(&img) {
                                images.push(img);
                            }
                        }
                        SourceRef::Context | SourceRef::Dir(_) => {}
                    }
                }
            }
            stages[i].deps = deps.into_iter().collect();
            stages[i].images = images;
        }
        Ok(())
    }
}

fn lookup_meta(meta: &[(String, Option<String>)], name: &str) -> Option<String> {
    meta.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.clone())
}
