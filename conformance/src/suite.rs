//! Running the registered cases against one runtime.

use crate::bundle::Template;
use crate::case::{Assertion, Case, CaseResult, Ctx, Verdict};
use crate::error::{io, Error, Result};
use crate::host::Host;
use crate::report::RuntimeReport;
use crate::runtime::Runtime;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A run of the suite: host facts, the rootfs template and a scratch directory.
pub struct Suite {
    /// Facts about this machine.
    pub host: Host,
    template: Template,
    base: tempfile::TempDir,
}

impl Suite {
    /// Prepares a run with scratch space under `parent` (e.g. /var/tmp).
    pub fn new(parent: &Path) -> Result<Suite> {
        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        let base = tempfile::Builder::new()
            .prefix("berth-conformance-")
            .tempdir_in(parent)
            .map_err(io("creating a temp dir in", parent))?;
        let template = Template::new(&base.path().join("template"))?;
        Ok(Suite {
            host: Host::detect(),
            template,
            base,
        })
    }

    /// The scratch directory of this run.
    pub fn dir(&self) -> &Path {
        self.base.path()
    }

    /// A runtime named `name` at `path`, with its own state root in this run.
    pub fn runtime(&self, name: &str, path: &Path) -> Result<Runtime> {
        let root = self.base.path().join(format!("{name}-state"));
        std::fs::create_dir_all(&root).map_err(io("creating", &root))?;
        Ok(Runtime::new(name, path, &root))
    }

    /// Runs `cases` on `rt`, calling `each` after every case.
    pub fn run(
        &self,
        rt: &Runtime,
        cases: &[Case],
        mut each: impl FnMut(&CaseResult),
    ) -> RuntimeReport {
        let parent = format!(
            "/berth-conformance-{}-{}",
            std::process::id(),
            sanitize(&rt.name)
        );
        let mut results = Vec::new();
        for case in cases {
            let r = self.run_case(rt, case, &parent);
            each(&r);
            results.push(r);
        }
        for h in self.host.all_hierarchies() {
            let d = h.join(parent.trim_start_matches('/'));
            if d.is_dir() {
                let _ = std::fs::remove_dir(&d);
            }
        }
        RuntimeReport {
            name: rt.name.clone(),
            path: rt.path.display().to_string(),
            version: rt.version(self.base.path()),
            results,
        }
    }

    /// Runs one case on `rt` with cgroups under `parent`, cleaning up whatever happens.
    pub fn run_case(&self, rt: &Runtime, case: &Case, parent: &str) -> CaseResult {
        let start = Instant::now();
        let mut result = CaseResult {
            id: case.id(),
            chapter: case.chapter.to_string(),
            doc: case.doc.to_string(),
            verdict: Verdict::Pass,
            assertions: Vec::new(),
            duration: Default::default(),
        };
        if let Some(reason) = case.needs.iter().find_map(|n| n.unmet(rt, &self.host)) {
            result.verdict = Verdict::Skip(reason);
            return result;
        }
        if !self.host.root {
            result.verdict = Verdict::Skip("the suite must run as root".into());
            return result;
        }
        let work: PathBuf = self
            .base
            .path()
            .join(sanitize(&rt.name))
            .join(case.id().replace('/', "-"));
        let outcome = match Ctx::new(rt, &self.host, &self.template, case, &work, parent) {
            Ok(mut ctx) => {
                let r = (case.run)(&mut ctx);
                (r, ctx.finish())
            }
            Err(e) => (Err(e), Vec::new()),
        };
        let (r, mut assertions) = outcome;
        match r {
            Ok(()) => {}
            Err(Error::Skip(reason)) => {
                if assertions.iter().all(|a| a.ok) {
                    result.verdict = Verdict::Skip(reason);
                }
            }
            Err(e) => assertions.push(Assertion {
                what: "scenario ran to completion".into(),
                ok: false,
                detail: e.to_string(),
            }),
        }
        if let Some(a) = assertions.iter().find(|a| !a.ok) {
            let d = a.detail.lines().next().unwrap_or("").to_string();
            result.verdict = Verdict::Fail(format!("{}: {}", a.what, d));
        } else if assertions.is_empty() && result.verdict == Verdict::Pass {
            result.verdict = Verdict::Fail("the case made no assertion".into());
        }
        // Reports should not depend on this run's scratch path or process id.
        let base = self.base.path().to_string_lossy().into_owned();
        let pid = format!("bc{}-", std::process::id());
        let tidy = |t: &str| t.replace(&base, "$WORK").replace(&pid, "bc-");
        for a in &mut assertions {
            a.detail = tidy(&a.detail);
        }
        result.verdict = match result.verdict {
            Verdict::Fail(w) => Verdict::Fail(tidy(&w)),
            v => v,
        };
        result.assertions = assertions;
        result.duration = start.elapsed();
        result
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Cases whose id contains any of the comma-separated `filter` words (all when `None`).
pub fn select(cases: Vec<Case>, filter: Option<&str>) -> Vec<Case> {
    match filter {
        None => cases,
        Some(f) => {
            let words: Vec<&str> = f.split(',').filter(|w| !w.is_empty()).collect();
            cases
                .into_iter()
                .filter(|c| {
                    let id = c.id();
                    words.iter().any(|w| id.contains(w))
                })
                .collect()
        }
    }
}
