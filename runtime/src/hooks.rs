//! OCI hooks: run a hook program with the container state JSON on stdin, its args and env,
//! killed when its timeout passes.

use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Which lifecycle point a hook belongs to (its name in config.json).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    /// Deprecated; runs with createRuntime.
    Prestart,
    /// After namespaces are made, in the runtime's namespaces.
    CreateRuntime,
    /// After mounts, before pivot_root, in the container's namespaces.
    CreateContainer,
    /// Before the user program, in the container.
    StartContainer,
    /// After the user program started, in the runtime's namespaces.
    Poststart,
    /// After the container is deleted.
    Poststop,
}

impl HookKind {
    /// The name used in config.json.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in a spec.
    pub fn of(self, spec: &oci_spec::runtime::Spec) -> Vec<Hook> {
        let Some(h) = spec.hooks() else {
            return Vec::new();
        };
        let list = match self {
            HookKind::Prestart => h.prestart(),
            HookKind::CreateRuntime => h.create_runtime(),
            HookKind::CreateContainer => h.create_container(),
            HookKind::StartContainer => h.start_container(),
            HookKind::Poststart => h.poststart(),
            HookKind::Poststop => h.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// Runs every hook of `kind` in order; stops at the first failure and says which one failed.
/// `cwd` is the hook's working directory, as runc gives it: the bundle for the hooks run in the
/// runtime's namespaces, the rootfs for createContainer, the process's cwd for startContainer
/// (None: inherited).
pub fn run_all(
    kind: HookKind,
    hooks: &[Hook],
    state_json: &str,
    cwd: Option<&std::path::Path>,
) -> Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json, cwd)
            .map_err(|e| format!("hooks.{}[{i}] ({}): {e}", kind.name(), h.path().display()))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state_json: &str, cwd: Option<&std::path::Path>) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    // A bundle removed before delete leaves the caller's directory.
    if let Some(d) = cwd.filter(|d| d.is_dir()) {
        cmd.current_dir(d);
    }
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let mut sleep = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("failed with {status}"))
                };
            }
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    }
}
