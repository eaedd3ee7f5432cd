//! `berth exec`: run a process in a created or running container (runc's flags). Errors of
//! the runtime itself exit with 255 (see `cli::main`), the process's own status otherwise.

use super::log::Logger;
use super::Ctx;
use berth::container::{self, ExecOptions};
use oci_spec::runtime::{Capability, Process};
use std::path::PathBuf;
use std::str::FromStr;

/// Flags of exec.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Unix socket that receives the pty master when --tty is given.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=value), repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// User as uid[:gid].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A process.json describing the process (overrides the other process flags).
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's PID to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label (an error unless SELinux is enabled, as in runc).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile (an error: berth does not apply AppArmor profiles yet).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability, repeatable.
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Pass N extra descriptors (3..3+N).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec in a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run the process in an existing sub-cgroup: [CONTROLLER[,CONTROLLER]:]PATH, repeatable.
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// The container id, then the command and its arguments. As in runc, flags go before the
    /// id: everything after it is the command, even words that look like exec's flags.
    #[arg(
        value_name = "ID [COMMAND]...",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

impl Args {
    /// The container id.
    fn id(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or_default()
    }

    /// The command and its arguments.
    fn command(&self) -> &[String] {
        self.args.get(1..).unwrap_or_default()
    }
}

/// Reads `--process FILE` as runc does: an absent `user` is uid 0, gid 0; `cwd` must be given
/// and absolute and `args` non-empty (runc's messages); capabilities, rlimits, AppArmor and
/// SELinux labels that the file leaves out are the container's, and oomScoreAdj is always the
/// container's (runc applies the container's value to every process it starts).
fn process_from_file(path: &std::path::Path, container: &Process) -> anyhow::Result<Process> {
    let text =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("--process {}: {e}", path.display()))?;
    let mut v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| anyhow::anyhow!("--process {}: {e}", path.display()))?;
    let Some(obj) = v.as_object_mut() else {
        anyhow::bail!("process property must not be empty");
    };
    obj.entry("user")
        .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    match obj.get("cwd").and_then(|c| c.as_str()) {
        None | Some("") => anyhow::bail!("Cwd property must not be empty"),
        Some(c) if !c.starts_with('/') => anyhow::bail!("Cwd must be an absolute path"),
        Some(_) => {}
    }
    let text = serde_json::to_vec(&v)?;
    let mut p = berth::spec::parse_allowing_unknown_caps::<Process>(path, &text, "")?;
    if p.args().as_ref().map(|a| a.is_empty()).unwrap_or(true) {
        anyhow::bail!("args must not be empty");
    }
    if p.capabilities().is_none() {
        p.set_capabilities(container.capabilities().clone());
    }
    if p.rlimits().as_ref().map(|r| r.is_empty()).unwrap_or(true) {
        p.set_rlimits(container.rlimits().clone());
    }
    if p.apparmor_profile().as_deref().unwrap_or("").is_empty() {
        p.set_apparmor_profile(container.apparmor_profile().clone());
    }
    if p.selinux_label().as_deref().unwrap_or("").is_empty() {
        p.set_selinux_label(container.selinux_label().clone());
    }
    p.set_oom_score_adj(container.oom_score_adj());
    Ok(p)
}

/// Whether the kernel has SELinux enabled (selinuxfs mounted).
fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// Whether AppArmor is enabled in the kernel.
fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

/// Labels berth cannot apply are errors rather than silently dropped: an SELinux label
/// without SELinux (runc's check and message), an AppArmor profile asked for with --apparmor.
fn check_labels(p: &Process, a: &Args) -> anyhow::Result<()> {
    if p.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) && !selinux_enabled() {
        anyhow::bail!(
            "selinux label is specified in config, but selinux is disabled or not supported"
        );
    }
    if let Some(prof) = a.apparmor.as_deref().filter(|s| !s.is_empty()) {
        if apparmor_enabled() {
            anyhow::bail!(
                "--apparmor {prof:?}: applying AppArmor profiles is not supported by berth yet"
            );
        }
        anyhow::bail!("--apparmor {prof:?}: apparmor failed to apply profile: AppArmor is not enabled on this host");
    }
    Ok(())
}

fn build_process(ctx: &Ctx, a: &Args, log: &Logger) -> anyhow::Result<Process> {
    let p = build_process_inner(ctx, a, log)?;
    check_labels(&p, a)?;
    Ok(p)
}

fn build_process_inner(ctx: &Ctx, a: &Args, log: &Logger) -> anyhow::Result<Process> {
    let (dir, state) = container::peek(&ctx.root, a.id())?;
    // The state is checked before the arguments, as runc orders its errors.
    container::check_exec_status(state.status(&dir.path), a.ignore_paused)?;
    let container_process = state.spec.process().clone().unwrap_or_default();
    if let Some(path) = &a.process {
        return process_from_file(path, &container_process);
    }
    if a.command().is_empty() {
        anyhow::bail!("process args cannot be empty");
    }
    let mut p = container_process;
    p.set_args(Some(a.command().to_vec()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = a.user.as_deref().filter(|u| !u.is_empty()) {
        let num = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|e| anyhow::anyhow!("parsing {s} as int for {what} failed: {e}"))
        };
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (num(u, "uid")?, Some(num(g, "gid")?)),
            None => (num(u, "uid")?, None),
        };
        let mut user = p.user().clone();
        user.set_uid(uid);
        if let Some(g) = gid {
            user.set_gid(g);
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        // Added to the container's, as runc appends them.
        let mut user = p.user().clone();
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&a.additional_gids);
        user.set_additional_gids(Some(gids));
        p.set_user(user);
    }
    if let Some(l) = a.process_label.as_ref().filter(|l| !l.is_empty()) {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(ap) = a.apparmor.as_ref().filter(|s| !s.is_empty()) {
        p.set_apparmor_profile(Some(ap.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let mut unknown = Vec::new();
        for name in &a.cap {
            // runc warns about unknown capabilities and goes on without them.
            let Ok(c) = Capability::from_str(name.trim_start_matches("CAP_")) else {
                unknown.push(name.as_str());
                continue;
            };
            let mut b = caps.bounding().clone().unwrap_or_default();
            b.insert(c);
            caps.set_bounding(Some(b));
            let mut e = caps.effective().clone().unwrap_or_default();
            e.insert(c);
            caps.set_effective(Some(e));
            let mut pm = caps.permitted().clone().unwrap_or_default();
            pm.insert(c);
            caps.set_permitted(Some(pm));
            // runc adds --cap to the ambient set too, so it survives a non-root exec.
            let mut am = caps.ambient().clone().unwrap_or_default();
            am.insert(c);
            caps.set_ambient(Some(am));
        }
        p.set_capabilities(Some(caps));
        if !unknown.is_empty() {
            log.warn(&format!(
                "ignoring unknown or unavailable capabilities: [{}]",
                unknown.join(" ")
            ));
        }
    }
    Ok(p)
}

/// Runs exec; returns the process's exit status (or 0 when detached).
pub fn run(ctx: &Ctx, a: Args, log: &Logger) -> anyhow::Result<i32> {
    let process = build_process(ctx, &a, log)?;
    let sub_cgroups = container::parse_sub_cgroups(&a.cgroup)?;
    // A terminal in the foreground without a console socket: berth holds the pty and copies
    // between it and its own stdio, as `run` does (runc does the same).
    let own_console =
        if process.terminal().unwrap_or(false) && a.console_socket.is_none() && !a.detach {
            Some(super::tty::OwnConsole::bind()?)
        } else {
            None
        };
    if !a.detach {
        container::become_subreaper();
    }
    let console_socket = match &own_console {
        Some(c) => Some(c.path.clone()),
        None => a.console_socket.clone(),
    };
    let pid = container::exec(&ExecOptions {
        root: ctx.root.clone(),
        id: a.id().to_string(),
        process,
        console_socket,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups,
    })?;
    tracing::debug!(pid, "exec'd process started");
    if let Some(p) = &a.pid_file {
        if let Err(e) = super::write_pid_file(p, pid) {
            // runc does not leave a process behind that its caller cannot know the pid of.
            // SAFETY: kill(2) of the process this call just started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            if !a.detach {
                container::wait_for(pid);
            }
            return Err(e);
        }
    }
    if a.detach {
        return Ok(0);
    }
    super::signals::forward_to(pid);
    if let Some(console) = &own_console {
        match console.receive() {
            Ok(master) => super::tty::proxy(&master),
            Err(e) => log.warn(&format!("terminal: {e}")),
        }
    }
    let code = container::wait_for(pid);
    tracing::debug!(pid, status = code, "process exited");
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Process {
        let mut p = Process::default();
        p.set_oom_score_adj(Some(100));
        p.set_env(Some(vec!["FROM_CONFIG=1".into()]));
        p
    }

    fn from(json: &str) -> anyhow::Result<Process> {
        let dir = tempfile::tempdir()?;
        let f = dir.path().join("process.json");
        std::fs::write(&f, json)?;
        process_from_file(&f, &container())
    }

    #[test]
    fn process_file_defaults_are_runcs() {
        let p = from(r#"{"args": ["/bin/true"], "cwd": "/"}"#).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert_eq!(p.env().clone().unwrap_or_default(), Vec::<String>::new());
        assert_eq!(p.capabilities(), container().capabilities());
        assert_eq!(p.oom_score_adj(), Some(100));
        let p =
            from(r#"{"args": ["/bin/true"], "cwd": "/", "user": {"uid": 7, "gid": 8}}"#).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
    }

    #[test]
    fn process_file_errors_are_runcs() {
        let err = |j: &str| from(j).unwrap_err().to_string();
        assert_eq!(err(r#"{"args": ["x"]}"#), "Cwd property must not be empty");
        assert_eq!(
            err(r#"{"args": ["x"], "cwd": "rel"}"#),
            "Cwd must be an absolute path"
        );
        assert_eq!(err(r#"{"cwd": "/"}"#), "args must not be empty");
        assert_eq!(err(r#"{"cwd": "/", "args": []}"#), "args must not be empty");
        assert!(err("[1]").contains("process property must not be empty"));
        assert!(err("{").contains("process.json"));
    }
}
