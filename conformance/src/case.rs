//! Cases, their requirements, and the context a case runs in (bundles, runtime calls,
//! assertions and cleanup).

use crate::bundle::{default_config, Bundle, Template, CHECKER_PATH};
use crate::error::{io, Error, Result};
use crate::host::Host;
use crate::runtime::{tail, Invoke, Outcome, Runtime, RuntimeKind};
use serde_json::Value;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Something a case needs from the machine or the runtime; unmet needs make it a skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A cgroup v1 controller managed by the runtime.
    CgroupV1(&'static str),
    /// The cgroup2 hierarchy (optionally with a controller) managed by the runtime, tested in
    /// a private pure-v2 view of the host.
    CgroupV2(Option<&'static str>),
    /// The runtime manages cgroups at all (pause, resume, ps, update, events).
    CgroupManager,
    /// AppArmor enabled in the kernel.
    AppArmor,
    /// seccomp filters in the kernel.
    Seccomp,
    /// A mount option the runtime lists in `features` (mountOptions), e.g. "idmap".
    MountOption(&'static str),
}

impl Need {
    /// Why the case must be skipped on `rt` here, or `None` when the need is met.
    pub fn unmet(&self, rt: &Runtime, host: &Host) -> Option<String> {
        let crun_reason = "crun refuses hybrid cgroups: it runs here with --cgroup-manager=disabled in a private cgroup2 view";
        match self {
            Need::CgroupV1(ctrl) => {
                if rt.kind == RuntimeKind::Crun {
                    Some(format!("needs cgroup v1 {ctrl}: {crun_reason}"))
                } else if !host.v1.contains_key(*ctrl) {
                    Some(format!(
                        "cgroup v1 controller {ctrl} is not mounted on this host"
                    ))
                } else {
                    None
                }
            }
            Need::CgroupV2(ctrl) => {
                if !rt.manages_cgroups() {
                    Some(format!("needs a cgroup manager: {crun_reason}"))
                } else if host.v2.is_none() {
                    Some("no cgroup2 hierarchy on this host".to_string())
                } else if let Some(c) = ctrl {
                    if host.v2_controllers.iter().any(|x| x == c) {
                        None
                    } else {
                        Some(format!(
                            "controller {c} is not available in cgroup2 on this host (bound to v1)"
                        ))
                    }
                } else {
                    None
                }
            }
            Need::CgroupManager => {
                if rt.manages_cgroups() {
                    None
                } else {
                    Some(format!("needs a cgroup manager: {crun_reason}"))
                }
            }
            Need::AppArmor => {
                (!host.apparmor).then(|| "AppArmor is not enabled in this kernel".to_string())
            }
            Need::Seccomp => (!host.seccomp).then(|| "the kernel has no seccomp".to_string()),
            Need::MountOption(opt) => {
                let listed = std::process::Command::new(&rt.path)
                    .arg("features")
                    .output()
                    .ok()
                    .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
                    .and_then(|v| {
                        v["mountOptions"]
                            .as_array()
                            .map(|a| a.iter().any(|x| x == opt))
                    })
                    .unwrap_or(false);
                (!listed).then(|| format!("the runtime's features do not list mount option {opt}"))
            }
        }
    }
}

/// One conformance case: a scenario with one or more assertions.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Spec chapter (file under src/cases/), e.g. "lifecycle".
    pub chapter: &'static str,
    /// Short name, unique within the chapter.
    pub name: &'static str,
    /// What the case proves, one line.
    pub doc: &'static str,
    /// What it needs; unmet needs make it a skip with the reason.
    pub needs: &'static [Need],
    /// The scenario.
    pub run: fn(&mut Ctx) -> Result<()>,
}

impl Case {
    /// "chapter/name".
    pub fn id(&self) -> String {
        format!("{}/{}", self.chapter, self.name)
    }
}

/// One assertion's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// What was asserted.
    pub what: String,
    /// Whether it held.
    pub ok: bool,
    /// Evidence when it did not (expected vs got, stderr...).
    pub detail: String,
}

/// The verdict of a case on one runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every assertion held.
    Pass,
    /// At least one assertion failed or the scenario broke; the first reason.
    Fail(String),
    /// Not run here, with the reason.
    Skip(String),
}

/// A case's outcome on one runtime.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// "chapter/name".
    pub id: String,
    /// The chapter.
    pub chapter: String,
    /// The one-line description.
    pub doc: String,
    /// Pass, fail or skip.
    pub verdict: Verdict,
    /// The assertions made (an error that stopped the case is recorded as a failed one).
    pub assertions: Vec<Assertion>,
    /// Wall time.
    pub duration: Duration,
}

/// What a case works with: its runtime, a scratch directory, bundles, ids, and assertions.
pub struct Ctx<'a> {
    /// The runtime under test (cases may switch it to the cgroup2 view).
    pub rt: Runtime,
    /// Facts about the host.
    pub host: &'a Host,
    /// The case's scratch directory (removed afterwards).
    pub work: PathBuf,
    template: &'a Template,
    slug: String,
    cgroup_parent: String,
    n: usize,
    ids: Vec<(String, Runtime)>,
    cgroups: Vec<String>,
    host_mounts: Vec<PathBuf>,
    assertions: Vec<Assertion>,
}

impl<'a> Ctx<'a> {
    /// A context for `case` on `rt`, with scratch space under `work` and cgroups under
    /// `cgroup_parent`.
    pub fn new(
        rt: &Runtime,
        host: &'a Host,
        template: &'a Template,
        case: &Case,
        work: &Path,
        cgroup_parent: &str,
    ) -> Result<Ctx<'a>> {
        std::fs::create_dir_all(work).map_err(io("creating", work))?;
        let slug = format!("{}-{}", case.chapter, case.name).replace(['/', '_'], "-");
        Ok(Ctx {
            rt: rt.clone(),
            host,
            work: work.to_path_buf(),
            template,
            slug,
            cgroup_parent: cgroup_parent.to_string(),
            n: 0,
            ids: Vec::new(),
            cgroups: Vec::new(),
            host_mounts: Vec::new(),
            assertions: Vec::new(),
        })
    }

    /// Runs the runtime in the private pure-cgroup2 view from now on.
    pub fn use_cgroup2_view(&mut self) {
        self.rt.cgroup2_view = true;
    }

    /// The assertions recorded so far.
    pub fn assertions(&self) -> &[Assertion] {
        &self.assertions
    }

    /// Records an assertion; returns `ok`.
    pub fn check(&mut self, what: impl Into<String>, ok: bool, detail: impl Into<String>) -> bool {
        self.assertions.push(Assertion {
            what: what.into(),
            ok,
            detail: if ok { String::new() } else { detail.into() },
        });
        ok
    }

    /// Records that `got == want`.
    pub fn check_eq<T: PartialEq + Debug>(
        &mut self,
        what: impl Into<String>,
        got: T,
        want: T,
    ) -> bool {
        let ok = got == want;
        let detail = format!("expected {want:?}, got {got:?}");
        self.check(what, ok, detail)
    }

    /// Records that a runtime call succeeded.
    pub fn check_ok(&mut self, what: impl Into<String>, out: &Outcome) -> bool {
        let detail = format!(
            "`{}`: {}: {}",
            out.command,
            out.status(),
            tail(&out.stderr, 300)
        );
        self.check(what, out.ok(), detail)
    }

    /// Records that a runtime call failed (non-zero exit, no time-out).
    pub fn check_fails(&mut self, what: impl Into<String>, out: &Outcome) -> bool {
        let failed = !out.ok() && !out.timed_out && out.code.is_some();
        let detail = format!(
            "`{}` should fail but: {}; stdout {}",
            out.command,
            out.status(),
            tail(&out.stdout, 200)
        );
        self.check(what, failed, detail)
    }

    /// A skip with `reason` (return it from the case).
    pub fn skip(&self, reason: impl Into<String>) -> Error {
        Error::Skip(reason.into())
    }

    /// A new unique container id (registered for cleanup).
    pub fn new_id(&mut self) -> String {
        self.n += 1;
        let id = format!("bc{}-{}-{}", std::process::id(), self.slug, self.n);
        self.ids.push((id.clone(), self.rt.clone()));
        id
    }

    /// A new bundle with a fresh rootfs and the default config running `args`.
    pub fn bundle(&mut self, args: &[&str]) -> Result<Bundle> {
        self.n += 1;
        let dir = self.work.join(format!("bundle{}", self.n));
        self.template.make_rootfs(&dir.join("rootfs"))?;
        let cg = format!("{}/{}-{}", self.cgroup_parent, self.slug, self.n);
        self.cgroups.push(cg.clone());
        Ok(Bundle {
            dir,
            config: default_config(args, &cg),
            cgroups_path: cg,
        })
    }

    /// A bundle whose process runs the checker with `args`.
    pub fn checker_bundle(&mut self, args: &[&str]) -> Result<Bundle> {
        let mut full = vec![CHECKER_PATH];
        full.extend_from_slice(args);
        self.bundle(&full)
    }

    /// Runs the runtime with `args`.
    pub fn call(&mut self, args: &[&str]) -> Result<Outcome> {
        self.call_with(args, &Invoke::default())
    }

    /// Runs the runtime with `args` and extra options.
    pub fn call_with(&mut self, args: &[&str], opts: &Invoke) -> Result<Outcome> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.rt.invoke(&self.work, &args, opts)
    }

    /// `create --bundle B ID` (config written first); returns the id and the outcome.
    pub fn create(&mut self, b: &Bundle, extra: &[&str]) -> Result<(String, Outcome)> {
        self.create_with(b, extra, &Invoke::default())
    }

    /// `create` with extra invocation options.
    pub fn create_with(
        &mut self,
        b: &Bundle,
        extra: &[&str],
        opts: &Invoke,
    ) -> Result<(String, Outcome)> {
        b.write()?;
        let id = self.new_id();
        let dir = b.dir.to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(&id);
        let out = self.call_with(&args, opts)?;
        Ok((id, out))
    }

    /// `create` that must succeed.
    pub fn create_ok(&mut self, b: &Bundle) -> Result<String> {
        let (id, out) = self.create(b, &[])?;
        out.require()?;
        Ok(id)
    }

    /// `create` then `start`, both must succeed; the container runs the bundle's process.
    pub fn start_ok(&mut self, b: &Bundle) -> Result<String> {
        let id = self.create_ok(b)?;
        self.call(&["start", &id])?.require()?;
        Ok(id)
    }

    /// A running container whose process is `sleep 600` (unless `b` sets other args).
    pub fn running(&mut self, b: &Bundle) -> Result<String> {
        let id = self.start_ok(b)?;
        Ok(id)
    }

    /// `run --bundle B ID` to completion (the container's exit code is the outcome's).
    pub fn run(&mut self, b: &Bundle) -> Result<Outcome> {
        self.run_with(b, &[], &Invoke::default())
    }

    /// `run` with extra flags and options.
    pub fn run_with(&mut self, b: &Bundle, extra: &[&str], opts: &Invoke) -> Result<Outcome> {
        b.write()?;
        let id = self.new_id();
        let dir = b.dir.to_string_lossy().into_owned();
        let mut args = vec!["run", "--bundle", &dir];
        args.extend_from_slice(extra);
        args.push(&id);
        self.call_with(&args, opts)
    }

    /// Runs the bundle to completion; it must exit 0 and print JSON, which is returned.
    pub fn run_json(&mut self, b: &Bundle) -> Result<Value> {
        self.run(b)?.require()?.json()
    }

    /// Runs the checker with `args` in a bundle from `setup` and returns its JSON.
    pub fn checker(&mut self, args: &[&str], setup: impl FnOnce(&mut Bundle)) -> Result<Value> {
        let mut b = self.checker_bundle(args)?;
        setup(&mut b);
        self.run_json(&b)
    }

    /// `state ID` as JSON (must succeed).
    pub fn state(&mut self, id: &str) -> Result<Value> {
        self.call(&["state", id])?.require()?.json()
    }

    /// The `status` field of `state ID`, or "" when state fails.
    pub fn status_of(&mut self, id: &str) -> Result<String> {
        let out = self.call(&["state", id])?;
        if !out.ok() {
            return Ok(String::new());
        }
        Ok(out.json()?["status"].as_str().unwrap_or("").to_string())
    }

    /// Polls `state` until the status is `want` or `timeout` passes; returns the last status.
    pub fn wait_status(&mut self, id: &str, want: &str, timeout: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            let st = self.status_of(id)?;
            if st == want || start.elapsed() > timeout {
                return Ok(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until `path` exists (a file the container writes) or `timeout` passes.
    pub fn wait_file(&self, path: &Path, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if path.exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        path.exists()
    }

    /// The host directory of this bundle's cgroup under v1 controller `ctrl`.
    pub fn v1_dir(&self, ctrl: &str, b: &Bundle) -> Result<PathBuf> {
        self.host
            .v1_dir(ctrl, &b.cgroups_path)
            .ok_or_else(|| Error::Skip(format!("cgroup v1 {ctrl} not mounted")))
    }

    /// The host directory of this bundle's cgroup in the cgroup2 hierarchy.
    pub fn v2_dir(&self, b: &Bundle) -> Result<PathBuf> {
        self.host
            .v2_dir(&b.cgroups_path)
            .ok_or_else(|| Error::Skip("no cgroup2 hierarchy".into()))
    }

    /// Mounts a small tmpfs at `dir` (created) on the host, for cases that need a nested
    /// mount in a bind source; it is unmounted when the case finishes.
    pub fn host_tmpfs(&mut self, dir: &Path) -> Result<()> {
        self.host_mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], dir)
    }

    /// Runs `mount ARGS DIR` on the host (DIR created); unmounted when the case finishes.
    pub fn host_mount(&mut self, args: &[&str], dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let out = std::process::Command::new("mount")
            .args(args)
            .arg(dir)
            .output()
            .map_err(io("running mount for", dir))?;
        if !out.status.success() {
            return Err(Error::Other(format!(
                "mount tmpfs on {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        self.host_mounts.push(dir.to_path_buf());
        Ok(())
    }

    /// Removes every container, cgroup and file this case made, and returns its assertions.
    pub fn finish(mut self) -> Vec<Assertion> {
        let ids = std::mem::take(&mut self.ids);
        for (id, rt) in ids.iter().rev() {
            let quiet = Invoke {
                timeout: Some(Duration::from_secs(15)),
                ..Invoke::default()
            };
            let exists = rt
                .invoke(&self.work, &["state".into(), id.clone()], &quiet)
                .map(|o| o.ok())
                .unwrap_or(false);
            if exists {
                // A paused container cannot be killed by every runtime: resume it first.
                let _ = rt.invoke(&self.work, &["resume".into(), id.clone()], &quiet);
                let _ = rt.invoke(
                    &self.work,
                    &["delete".into(), "--force".into(), id.clone()],
                    &quiet,
                );
            }
        }
        for cg in &self.cgroups {
            for h in self.host.all_hierarchies() {
                let d = h.join(cg.trim_start_matches('/'));
                if d.is_dir() {
                    // Only ever this case's own cgroup (named by the suite), and empty.
                    let _ = std::fs::remove_dir(&d);
                }
            }
        }
        for m in self.host_mounts.iter().rev() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(m)
                .status();
        }
        // Whatever a runtime left mounted below the case's directory (runc without a mount
        // namespace leaves its rootfs bind), deepest first, so the directory can be removed.
        // Stacked mounts at one path need one pass each.
        let work = self.work.to_string_lossy().into_owned();
        for _ in 0..8 {
            let mut left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
                .filter(|m| m.starts_with(&work))
                .collect();
            if left.is_empty() {
                break;
            }
            left.sort();
            for m in left.iter().rev() {
                let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
        std::mem::take(&mut self.assertions)
    }
}
