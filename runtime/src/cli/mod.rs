//! Command-line definitions (runc's flags and commands) and dispatch; each command in its own file.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod log;
mod parse;
mod pause;
mod ps;
mod run;
mod signals;
mod spec;
mod start;
mod state;
mod tty;
mod update;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Global options, as runc has them.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    disable_version_flag = true,
    // A flag given twice takes the last value, as with runc's CLI library.
    args_override_self = true,
    about = "berth: a fast, runc-compatible OCI container runtime"
)]
pub struct Cli {
    #[command(flatten)]
    g: Globals,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

/// The options before (or after) the command, global to every command.
#[derive(clap::Args, Debug)]
pub struct Globals {
    /// Print the version (runc's format: "berth version X", "commit: C", then "spec: Y").
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// Root directory for container state (default /run/berth, or $XDG_RUNTIME_DIR/berth).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Enable debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// crun's spelling of the cgroup driver: cgroupfs (the default), systemd (as
    /// --systemd-cgroup) or disabled (the container gets no cgroup and no resource limits).
    #[arg(long = "cgroup-manager", global = true, value_parser = ["cgroupfs", "systemd", "disabled"])]
    cgroup_manager: Option<String>,
    /// Rootless mode hint (accepted for compatibility: true, false or auto).
    #[arg(long)]
    rootless: Option<String>,
    /// Path to criu (accepted for compatibility; checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (the process waits for `start`).
    Create(create::Args),
    /// Start the user program of a created container.
    Start(start::Args),
    /// Print the state of a container as JSON.
    State(state::Args),
    /// Send a signal to the container's init process.
    Kill(kill::Args),
    /// Run a new process in a created or running container.
    Exec(exec::Args),
    /// Delete a container and everything create made.
    Delete(delete::Args),
    /// Create and start a container, wait for it and return its exit status.
    Run(run::Args),
    /// List containers.
    List(list::Args),
    /// Freeze every process in the container.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(pause::Args),
    /// List the processes in the container.
    Ps(ps::Args),
    /// Change the container's resource limits.
    Update(update::Args),
    /// Print resource statistics and OOM events.
    Events(events::Args),
    /// Write a default config.json.
    Spec(spec::Args),
    /// Print the OCI runtime features document.
    Features(features::Args),
}

/// Shared context for commands.
pub struct Ctx {
    /// State root.
    pub root: PathBuf,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// `--cgroup-manager=disabled`.
    pub no_cgroups: bool,
}

/// Parses the command line, runs the command, returns the exit status.
pub fn main() -> i32 {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match parse::one_command(&argv) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(&argv),
    };
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            // runc (urfave/cli) exits 3 for an unknown command, 1 for other usage errors.
            let code = match e.kind() {
                clap::error::ErrorKind::InvalidSubcommand => 3,
                _ if e.use_stderr() => 1,
                _ => 0,
            };
            let _ = e.print();
            return code;
        }
    };
    berth::trace::mark("cli-parsed");
    let g = cli.g;
    if g.version {
        println!(
            "berth version {}\ncommit: {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            env!("BERTH_COMMIT"),
            berth::OCI_VERSION
        );
        return 0;
    }
    let Some(cmd) = cli.cmd else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return 0;
    };
    if !matches!(g.log_format.as_str(), "text" | "json") {
        let logger = log::Logger::new(None, "text", false);
        logger.error(&format!("invalid log-format: {}", g.log_format));
        return 1;
    }
    let logger = log::Logger::new(g.log.as_deref(), &g.log_format, g.debug);
    berth::trace::mark("logger");
    let ctx = Ctx {
        root: g
            .root
            .clone()
            .unwrap_or_else(berth::container::default_root),
        systemd_cgroup: g.systemd_cgroup || g.cgroup_manager.as_deref() == Some("systemd"),
        no_cgroups: g.cgroup_manager.as_deref() == Some("disabled"),
    };
    // runc's exec exits with 255 when the runtime fails, so callers can tell that from the
    // process's own exit status; its messages are prefixed with "exec failed: ".
    let is_exec = matches!(cmd, Cmd::Exec(_));
    let result = match cmd {
        Cmd::Create(a) => create::run(&ctx, a),
        Cmd::Start(a) => start::run(&ctx, a, &logger),
        Cmd::State(a) => state::run(&ctx, a),
        Cmd::Kill(a) => kill::run(&ctx, a),
        Cmd::Delete(a) => delete::run(&ctx, a, &logger),
        Cmd::Exec(a) => exec::run(&ctx, a, &logger),
        Cmd::Run(a) => run::run(&ctx, a, &logger),
        Cmd::List(a) => list::run(&ctx, a),
        Cmd::Pause(a) => pause::pause(&ctx, a),
        Cmd::Resume(a) => pause::resume(&ctx, a),
        Cmd::Ps(a) => ps::run(&ctx, a),
        Cmd::Update(a) => update::run(&ctx, a),
        Cmd::Events(a) => events::run(&ctx, a),
        Cmd::Spec(a) => spec::run(a),
        Cmd::Features(a) => features::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_exec => {
            logger.error(&format!("exec failed: {e}"));
            255
        }
        Err(e) => {
            logger.error(&format!("{e}"));
            1
        }
    }
}

/// Writes a pid file atomically, as runc does (callers poll for it).
pub fn write_pid_file(path: &std::path::Path, pid: i32) -> anyhow::Result<()> {
    berth::sys::write_atomic(path, pid.to_string().as_bytes())
        .map_err(|e| anyhow::anyhow!("--pid-file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn runc_style_invocations_parse() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        parse(&[
            "berth",
            "--root",
            "/r",
            "--log-format=json",
            "--log",
            "/l",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--console-socket",
            "/s",
            "id",
        ])
        .unwrap();
        parse(&[
            "berth",
            "run",
            "-d",
            "-b",
            "/b",
            "--preserve-fds",
            "2",
            "id",
        ])
        .unwrap();
        parse(&[
            "berth",
            "exec",
            "--process",
            "/p.json",
            "--detach",
            "--pid-file",
            "/p",
            "id",
        ])
        .unwrap();
        parse(&["berth", "exec", "-t", "id", "sh", "-c", "echo -n x"]).unwrap();
        // Everything after the id is the command, as in runc (flags go before the id).
        let exec_args = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.cmd) {
            Ok(Some(Cmd::Exec(a))) => (a.cwd.clone(), a.args.clone()),
            other => panic!("{args:?}: {other:?}"),
        };
        let (cwd, rest) = exec_args(&["berth", "exec", "--cwd", "/tmp", "id", "ls", "-l"]);
        assert_eq!(cwd, Some(PathBuf::from("/tmp")));
        assert_eq!(rest, ["id", "ls", "-l"]);
        let (cwd, rest) = exec_args(&["berth", "exec", "id", "--cwd", "/tmp", "pwd"]);
        assert_eq!(cwd, None);
        assert_eq!(rest, ["id", "--cwd", "/tmp", "pwd"]);
        assert!(parse(&["berth", "exec"]).is_err());
        parse(&["berth", "kill", "--all", "id", "9"]).unwrap();
        parse(&["berth", "delete", "--force", "id"]).unwrap();
        parse(&["berth", "update", "--resources=/dev/stdin", "id"]).unwrap();
        parse(&["berth", "ps", "--format", "json", "id"]).unwrap();
        assert!(parse(&["berth", "create"]).is_err());
        // Repeated flags: the last one wins (runc's CLI library), not an error.
        let cli = Cli::try_parse_from(["berth", "--root", "/a", "--root", "/b", "list"]).unwrap();
        assert_eq!(cli.g.root, Some(PathBuf::from("/b")));
    }
}
