//! Running a container to completion from inside a program (the `run` command, the builder's
//! RUN steps): create, start, wait for the init, delete.

use super::{create, delete, load, start_created, CreateOptions, Error};

/// Waits for `pid` (a child, or a process reparented to this subreaper) and maps its wait
/// status to a shell-style exit code (128 + signal for a signal death).
pub fn wait_for(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // Not our child (no subreaper): all we can know is that it ended.
            super::wait_exit(pid, -1);
            return 0;
        }
        if libc::WIFEXITED(status) {
            return libc::WEXITSTATUS(status);
        }
        if libc::WIFSIGNALED(status) {
            return 128 + libc::WTERMSIG(status);
        }
    }
}

/// Makes the calling process a child subreaper, so a container init born in a PID namespace
/// (a grandchild) is reparented to it and can be waited for.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Creates, starts and waits for a container, deletes it, and returns the exit code of its
/// process. The caller must be single-threaded (the container's first process is forked).
/// Warnings (failed poststart/poststop hooks) are returned beside the code.
pub fn run_to_completion(opts: &CreateOptions) -> Result<(i32, Vec<String>), Error> {
    become_subreaper();
    let opts = CreateOptions {
        start_here: true,
        ..opts.clone()
    };
    let mut created = create(&opts)?;
    let pid = created.state.pid;
    let mut warnings = match start_created(&mut created) {
        Ok(w) => w,
        Err(e) => {
            let _ = delete(created.dir, &created.state, true);
            return Err(e);
        }
    };
    drop(created.dir);
    tracing::debug!(pid, "started; waiting");
    let code = wait_for(pid);
    tracing::debug!(code, "container exited");
    let (dir, state) = load(&opts.root, &opts.id)?;
    warnings.extend(delete(dir, &state, true)?);
    tracing::debug!("deleted");
    Ok((code, warnings))
}
