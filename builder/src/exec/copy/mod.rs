//! COPY and ADD: the step (sources, destination, --from, --chown, --chmod,
//! --parents, heredocs, URLs) on top of [`files`] (matching and copying).

mod chmod;
pub mod direct;
mod files;

pub use chmod::Chmod;
pub use files::*;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use crate::build::{json_list, Builder, StageState, StepError, StepErrorKind};
use crate::context::{clean_path, Dockerignore};
use crate::digest::Digest;
use crate::dockerfile::{CopySpec, Instruction, Source};
use crate::exec::copy;
use crate::exec::{self, fetch, git, ExecError, Overlay};
use crate::fsutil;
use crate::plan::{SourceRef, StageScope};

impl<'a> Builder<'a> {
    pub(crate) fn copy_step(
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
                Some(Chmod::parse(&v).map_err(|x| e(StepErrorKind::Invalid(x)))?)
            }
            None => None,
        };
        let exclude = Dockerignore::from_patterns(&c.excludes)
            .map_err(|x| e(StepErrorKind::Invalid(x.to_string())))?;
        let mut patterns = Vec::new();
        let mut pivots = Vec::new();
        let mut urls = Vec::new();
        let mut inline = Vec::new();
        let mut gits = Vec::new();
        for s in &c.sources {
            match s {
                Source::Path(p) => {
                    let p = scope.expand(p).map_err(|x| e(x.into()))?;
                    if add && git::is_git_source(&p) {
                        gits.push(
                            git::parse_git_source(&p).map_err(|x| e(StepErrorKind::Invalid(x)))?,
                        );
                        continue;
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
        if c.keep_git_dir && gits.is_empty() {
            return Err(e(StepErrorKind::Invalid(
                "ADD --keep-git-dir needs a git repository source".into(),
            )));
        }
        if checksum.is_some()
            && (urls.is_empty() || !patterns.is_empty() || !inline.is_empty() || !gits.is_empty())
        {
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
        // Git repositories are cloned first too: the key holds the commit.
        let git_dir = if gits.is_empty() {
            None
        } else {
            Some(self.store.scratch("git").map_err(|x| e(x.into()))?)
        };
        let mut checkouts = Vec::new();
        if let Some(dir) = &git_dir {
            let ssh = self.req.ssh.get("default").map(PathBuf::as_path);
            for (i, g) in gits.iter().enumerate() {
                let sub = dir.path().join(i.to_string());
                std::fs::create_dir(&sub).map_err(|x| e(ExecError::io(sub.display(), x).into()))?;
                let co = git::checkout(g, &sub, c.keep_git_dir, ssh).map_err(|x| e(x.into()))?;
                checkouts.push((g.clone(), co));
            }
        }
        let git_ids: Vec<String> = checkouts
            .iter()
            .map(|(g, co)| {
                format!(
                    "{} {} {:?} keep={}",
                    g.url, co.commit, g.subdir, c.keep_git_dir
                )
            })
            .collect();
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
        // A --build-context directory: like the context, without its
        // .dockerignore.
        let dir_fd: Option<OwnedFd> = match &from {
            SourceRef::Dir(d) => Some(fsutil::open_dir(d).map_err(|x| {
                e(StepErrorKind::Invalid(format!(
                    "--build-context directory {}: {x}",
                    d.display()
                )))
            })?),
            _ => None,
        };
        let local_fd = dir_fd
            .as_ref()
            .map(|f| f.as_fd())
            .unwrap_or(self.context_fd);
        let (src_state, filter) = match &from {
            SourceRef::Dir(_) => (
                None,
                SourceFilter {
                    exclude: exclude.clone(),
                    ..SourceFilter::default()
                },
            ),
            SourceRef::Context => (
                None,
                SourceFilter {
                    ignore: self.ignore.clone(),
                    exclude: exclude.clone(),
                },
            ),
            SourceRef::Stage(j) => (
                Some(self.result_of(*j).ok_or_else(|| {
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
                    matches
                        .push(copy::match_sources(local_fd, p, &filter).map_err(|x| e(x.into()))?);
                }
                let flat: Vec<Matched> = matches.iter().flatten().cloned().collect();
                let t0 = std::time::Instant::now();
                let d = copy::hash_sources_with(
                    local_fd,
                    &flat,
                    &filter,
                    Some(self.store.context_digests()),
                )
                .map_err(|x| e(x.into()))?;
                tracing::debug!(
                    hash_ms = t0.elapsed().as_millis() as u64,
                    "context sources hashed"
                );
                d.to_string()
            }
            Some(s) => s
                .layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        let material = format!(
            "{word} {}\ndest={dest}\ndir={dest_dir_hint}\nchown={chown:?}\nchmod={chmod:?}\nexclude={:?}\nsources={identity}\ninline={inline:?}\nparents={parents}\nurls={download_ids:?}\ngit={git_ids:?}",
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
                    Some(
                        crate::user::resolve_chown(spec, &passwd, &group)
                            .map_err(ExecError::User)?,
                    )
                }
                None => None,
            };
            let attrs = CopyAttrs {
                chown: owner,
                chmod,
                unpack_archives: add,
                // Files of a stage or image keep their owners (BuildKit);
                // the context's belong to root.
                keep_owner: src_state.is_some(),
            };
            // Mount the source stage/image read-only when needed.
            let src_scratch;
            let src_overlay;
            let src_fd: OwnedFd = match &src_state {
                None => match &dir_fd {
                    Some(fd) => fd.try_clone(),
                    None => b.context_fd.try_clone_to_owned(),
                }
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
            let total: usize = matches.iter().map(Vec::len).sum::<usize>()
                + inline.len()
                + downloads.len()
                + checkouts.len();
            let dest_dir = dest_dir_hint || total > 1;
            // Straight into the upper directory when that is the same.
            let upper_root = match (
                &b.upper,
                parents || !downloads.is_empty() || !inline.is_empty(),
            ) {
                (Some(upper), false) => {
                    let all: Vec<&Matched> = matches.iter().flatten().collect();
                    direct::upper_root(root, upper, &all, &dest)
                }
                _ => None,
            };
            let root = upper_root.as_ref().map_or(root, |fd| fd.as_fd());
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
                    chmod: Some(chmod.unwrap_or(Chmod::octal(0o600))),
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
            for (g, co) in &checkouts {
                // The repository (or its subdirectory) is copied like a
                // directory source; nothing in it is unpacked.
                let tree = fsutil::open_dir(&co.dir).map_err(|x| ExecError::io(&g.url, x))?;
                let m = [Matched {
                    rel: g.subdir.clone(),
                    is_dir: true,
                }];
                let git_attrs = CopyAttrs {
                    unpack_archives: false,
                    keep_owner: false,
                    ..attrs
                };
                copy::copy_sources(
                    tree.as_fd(),
                    &m,
                    &SourceFilter::default(),
                    root,
                    &dest,
                    true,
                    git_attrs,
                )?;
            }
            drop(git_dir);
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
}
