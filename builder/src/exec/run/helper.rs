//! The helper process that runs one RUN container.
//!
//! Stages build on threads, and a multi-threaded process must not fork
//! and then run Rust code in the child (another thread may hold the
//! allocator's lock at the fork). So the builder does not create RUN
//! containers itself: it spawns `berth-build __run-step BUNDLE ID ROOT`
//! (fork + exec, which is safe), a single-threaded process that creates,
//! starts, waits for and deletes the container through the berth library
//! exactly as the builder did in-process, and writes its outcome to
//! `BUNDLE/result.json`. The container's stdin is /dev/null; its stdout
//! and stderr are a pipe the builder reads, line by line, into the
//! progress display.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::ExecError;

/// The first argument that makes `berth-build` the RUN helper.
pub const HELPER_ARG: &str = "__run-step";

/// What the helper reports: the container's exit status, or why it could
/// not run, and the runtime's warnings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HelperResult {
    /// The exit status (128 + signal for a signal death).
    pub code: Option<i32>,
    /// The runtime's error, when the container could not run.
    pub error: Option<String>,
    /// Warnings (failed hooks).
    pub warnings: Vec<String>,
}

fn result_path(bundle: &Path) -> PathBuf {
    bundle.join("result.json")
}

/// The helper's `main`: `berth-build __run-step BUNDLE ID STATE_ROOT`.
pub fn helper_main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(2).collect();
    let [bundle, id, root] = args.as_slice() else {
        eprintln!("usage: berth-build {HELPER_ARG} BUNDLE ID STATE_ROOT");
        return ExitCode::from(2);
    };
    let bundle = PathBuf::from(bundle);
    let result = match super::run_container(&bundle, &id.to_string_lossy(), Path::new(root)) {
        Ok((code, warnings)) => HelperResult {
            code: Some(code),
            error: None,
            warnings,
        },
        Err(e) => HelperResult {
            code: None,
            error: Some(e.to_string()),
            warnings: Vec::new(),
        },
    };
    let data = serde_json::to_vec(&result).unwrap_or_default();
    match std::fs::write(result_path(&bundle), data) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-build {HELPER_ARG}: writing the result: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the container of `bundle` as `id` (state under `state_root`) in a
/// helper process and returns its exit status. Its output goes to
/// `output` as it comes. When `cancel` is set meanwhile, every process of
/// the container is killed (the helper then deletes it as usual).
pub fn run_in_helper(
    bundle: &Path,
    id: &str,
    state_root: &Path,
    cancel: &AtomicBool,
    mut output: impl FnMut(&[u8]),
) -> Result<i32, ExecError> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ExecError::io("pipe", std::io::Error::from(e)))?;
    let write2 = write.try_clone().map_err(|e| ExecError::io("pipe", e))?;
    let mut child = {
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg(HELPER_ARG)
            .arg(bundle)
            .arg(id)
            .arg(state_root)
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::from(write2));
        // The command (and our copies of the pipe's write end) is dropped
        // here, so the pipe ends when the helper and the container do.
        cmd.spawn()
            .map_err(|e| ExecError::Runtime(format!("starting the RUN helper: {e}")))?
    };
    let mut killed = false;
    let read_result = pump(&read, cancel, &mut output, &mut || {
        if !killed {
            killed = kill_container(state_root, id);
        }
    });
    let status = child
        .wait()
        .map_err(|e| ExecError::Runtime(format!("waiting for the RUN helper: {e}")))?;
    read_result?;
    let result: Option<HelperResult> = std::fs::read(result_path(bundle))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok());
    // A helper that died before deleting its container leaves it behind.
    remove_leftover(state_root, id);
    let Some(result) = result else {
        return Err(ExecError::Runtime(format!(
            "the RUN helper ended without a result ({status})"
        )));
    };
    for w in result.warnings {
        tracing::warn!(warning = %w, "runtime");
    }
    match (result.code, result.error) {
        (_, Some(e)) => Err(ExecError::Runtime(e)),
        (Some(code), None) => Ok(code),
        (None, None) => Err(ExecError::Runtime("the RUN helper gave no status".into())),
    }
}

/// Copies the pipe to `output` until its end, checking `cancel` at least
/// every 100 ms (calling `on_cancel` each time it is set).
fn pump(
    read: &OwnedFd,
    cancel: &AtomicBool,
    output: &mut impl FnMut(&[u8]),
    on_cancel: &mut impl FnMut(),
) -> Result<(), ExecError> {
    let mut file = std::fs::File::from(
        read.try_clone()
            .map_err(|e| ExecError::io("RUN output", e))?,
    );
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if cancel.load(Ordering::SeqCst) {
            on_cancel();
        }
        let mut fds = [nix::poll::PollFd::new(
            read.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ExecError::io("RUN output", std::io::Error::from(e))),
        }
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => output(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ExecError::io("RUN output", e)),
        }
    }
}

/// Kills every process of container `id`; false while it does not exist
/// yet (the caller tries again).
fn kill_container(state_root: &Path, id: &str) -> bool {
    match berth::container::peek(state_root, id) {
        Ok((dir, state)) => {
            berth::container::kill(&dir, &state, libc::SIGKILL, true).is_ok() && state.pid > 0
        }
        Err(_) => false,
    }
}

/// Deletes container `id` if it is still there (its helper died).
fn remove_leftover(state_root: &Path, id: &str) {
    if !state_root.join(id).exists() {
        return;
    }
    tracing::warn!(id, "removing a RUN container its helper left behind");
    match berth::container::load(state_root, id) {
        Ok((dir, state)) => {
            let _ = berth::container::delete(dir, &state, true);
        }
        Err(_) => {
            let _ = berth::container::delete_incomplete(state_root, id);
        }
    }
}
