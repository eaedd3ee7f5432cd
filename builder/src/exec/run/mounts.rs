//! `RUN --mount`: planning (expansion, checks, cache key material) and the
//! host side of each mount (cache dirs, bind sources, throw-away overlays).
use std::os::fd::AsFd;

use crate::build::{Builder, StepErrorKind};
use crate::context::{clean_path, Dockerignore};
use crate::dockerfile::{Mount, MountType};
use crate::exec::copy::{self, SourceFilter};
use crate::exec::run::RunMount;
use crate::exec::{self, ExecError, Overlay};
use crate::fsutil;
use crate::plan::{SourceRef, StageScope};
use crate::secret::{SecretError, SecretSource};
use crate::store::LayerRecord;

/// A `RUN --mount`, expanded and checked.
#[derive(Debug, Clone)]
pub(crate) struct MountPlan {
    /// Absolute path in the container.
    pub(crate) target: String,
    /// Its part of the step's cache key.
    pub(crate) material: String,
    pub(crate) kind: MountPlanKind,
}

#[derive(Debug, Clone)]
pub(crate) enum MountPlanKind {
    Tmpfs {
        size: Option<u64>,
    },
    Cache {
        id: String,
        read_only: bool,
        mode: u32,
        uid: u32,
        gid: u32,
        /// `sharing=locked` or `private`: RUNs of the build using this
        /// cache wait for each other (private does not get a copy of its
        /// own here).
        exclusive: bool,
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
    /// An ssh agent given with `--ssh` (None: not given, and not required);
    /// the RUN gets a relay socket at `MountPlan::target`.
    Ssh {
        id: String,
        agent: Option<std::path::PathBuf>,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Bind {
        /// A `--build-context` directory to mount from instead of the
        /// context (when `from` is None).
        dir: Option<std::path::PathBuf>,
        /// The layers of the stage or image to mount from; None: the context.
        from: Option<Vec<LayerRecord>>,
        /// Path inside it (relative).
        source: String,
        read_only: bool,
    },
}

impl<'a> Builder<'a> {
    /// Expands and checks one `RUN --mount`, and computes what it adds to
    /// the step's cache key (bind sources by content, caches by id).
    pub(crate) fn plan_mount(
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
            MountType::Secret | MountType::Ssh => Err(StepErrorKind::Invalid(
                "internal: secret and ssh mounts are planned on their own".into(),
            )),
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
                        exclusive: m.sharing != crate::dockerfile::CacheSharing::Shared,
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
                    SourceRef::Context | SourceRef::Dir(_) => {
                        // The context (with its .dockerignore) or a
                        // --build-context directory (without).
                        let (dir_fd, filter, what) = match &from {
                            SourceRef::Dir(d) => (
                                Some(fsutil::open_dir(d).map_err(|e| {
                                    StepErrorKind::Invalid(format!(
                                        "--build-context directory {}: {e}",
                                        d.display()
                                    ))
                                })?),
                                SourceFilter::default(),
                                "the --build-context directory",
                            ),
                            _ => (
                                None,
                                SourceFilter {
                                    ignore: self.ignore.clone(),
                                    exclude: Dockerignore::default(),
                                },
                                "the build context (or excluded by .dockerignore)",
                            ),
                        };
                        let fd = dir_fd
                            .as_ref()
                            .map(|f| f.as_fd())
                            .unwrap_or(self.context_fd);
                        let shown = if source.is_empty() { "." } else { &source };
                        let found = copy::match_sources(fd, shown, &filter).map_err(|_| {
                            StepErrorKind::Invalid(format!(
                                "RUN --mount source {shown:?} not found in {what}"
                            ))
                        })?;
                        let hash = copy::hash_sources(fd, &found, &filter)?;
                        (None, format!("context:{hash}"))
                    }
                    SourceRef::Stage(j) => {
                        let s = self.result_of(*j).ok_or_else(|| {
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
                        dir: match &from {
                            SourceRef::Dir(d) => Some(d.clone()),
                            _ => None,
                        },
                        from: state.map(|s| s.layers),
                        source,
                        read_only: ro,
                    },
                    target,
                })
            }
        }
    }

    /// Plans the `n`th ssh mount of a RUN: checks that a required agent was
    /// given; the target defaults to `/run/buildkit/ssh_agent.N` as in
    /// BuildKit. Its cache key part names the id and target only.
    pub(crate) fn plan_ssh(
        &self,
        scope: &StageScope<'a>,
        cwd: &str,
        m: &Mount,
        n: usize,
    ) -> Result<MountPlan, StepErrorKind> {
        let id = match &m.id {
            Some(v) => scope.expand(v)?,
            None => String::new(),
        };
        let id = if id.is_empty() {
            "default".to_string()
        } else {
            id
        };
        let target = match &m.target {
            Some(t) => scope.expand(t)?,
            None => String::new(),
        };
        let target = match target {
            t if t.is_empty() => format!("/run/buildkit/ssh_agent.{n}"),
            t if t.starts_with('/') => clean_path(&t),
            t => clean_path(&format!("{cwd}/{t}")),
        };
        if target == "/" {
            return Err(StepErrorKind::Invalid(
                "RUN --mount=type=ssh target=/ would hide the whole root filesystem".into(),
            ));
        }
        let agent = self.req.ssh.get(&id).cloned();
        if agent.is_none() && m.required {
            return Err(StepErrorKind::Invalid(
                crate::ssh::SshError::Missing(id).to_string(),
            ));
        }
        Ok(MountPlan {
            material: format!("ssh id={id:?} target={target}"),
            kind: MountPlanKind::Ssh {
                id,
                agent,
                mode: m.mode.unwrap_or(0o600),
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
            },
            target,
        })
    }

    /// Plans a secret mount: checks that a required secret was given. Its
    /// cache key part names the id and the targets, never the content.
    pub(crate) fn plan_secret(
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
    pub(crate) fn mount_source(
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
            MountPlanKind::Secret { .. } | MountPlanKind::Ssh { .. } => Err(
                StepErrorKind::Invalid("a secret or ssh mount has no host directory".into()),
            ),
            MountPlanKind::Cache {
                id,
                read_only,
                mode,
                uid,
                gid,
                ..
            } => {
                let dir = self.store.cache_mount_dir(id);
                if !dir.is_dir() {
                    let parent = dir.parent().unwrap_or(&dir).to_path_buf();
                    std::fs::create_dir_all(&parent)
                        .map_err(|e| ExecError::io(parent.display(), e))?;
                    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let tmp = parent.join(format!(".tmp-{}-{n}", std::process::id()));
                    let _ = std::fs::remove_dir_all(&tmp);
                    std::fs::create_dir(&tmp).map_err(|e| ExecError::io(tmp.display(), e))?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(*mode))
                        .map_err(|e| ExecError::io(tmp.display(), e))?;
                    std::os::unix::fs::chown(&tmp, Some(*uid), Some(*gid))
                        .map_err(|e| ExecError::io(tmp.display(), e))?;
                    if let Err(e) = std::fs::rename(&tmp, &dir) {
                        let _ = std::fs::remove_dir_all(&tmp);
                        // Another stage made it meanwhile.
                        if !dir.is_dir() {
                            return Err(ExecError::io(dir.display(), e).into());
                        }
                    }
                }
                Ok(RunMount::Bind {
                    source: dir.display().to_string(),
                    destination,
                    read_only: *read_only,
                })
            }
            MountPlanKind::Bind {
                dir,
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
                        let dir_fd = match dir {
                            Some(d) => Some(fsutil::open_dir(d).map_err(not_found)?),
                            None => None,
                        };
                        let fd = dir_fd
                            .as_ref()
                            .map(|f| f.as_fd())
                            .unwrap_or(self.context_fd);
                        let real = exec::resolve_in_root(fd, source).map_err(not_found)?;
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
}
