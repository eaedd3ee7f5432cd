//! Parsing a command line without building every command's definition.
//!
//! clap builds the whole command tree (15 commands, about 100 flags) before it parses; that
//! was a third of a millisecond of every `berth run` (hack/bench/breakdown.sh). Callers run
//! exactly one command per process, so this builds the global options and that one command
//! only. Help, version requests and any error go to the full parser instead, so every message
//! and exit status stays the full definition's (a test checks both parsers agree).

use super::{create, delete, events, exec, features, kill, list, pause, ps, run, spec, start};
use super::{state, update, Cli, Cmd, Globals};
use clap::{Args, Command, FromArgMatches};
use std::ffi::OsString;

/// Global options that take a value as the next argument (`--root DIR`).
const VALUE_GLOBALS: &[&str] = &[
    "--root",
    "--log",
    "--log-format",
    "--criu",
    "--rootless",
    "--cgroup-manager",
];

/// The parsed command line, or None when the full parser must handle it (help, version, no
/// command, an unknown command, or an error to report).
pub(super) fn one_command(argv: &[OsString]) -> Option<Cli> {
    let name = command_name(argv)?;
    let root = Globals::augment_args(root_command()).subcommand(command(name)?);
    let m = root.try_get_matches_from(argv).ok()?;
    let g = Globals::from_arg_matches(&m).ok()?;
    let cmd = Cmd::from_arg_matches(&m).ok()?;
    Some(Cli { g, cmd: Some(cmd) })
}

/// The root command with the same settings as [`Cli`]'s derive.
fn root_command() -> Command {
    Command::new("berth")
        .disable_version_flag(true)
        .args_override_self(true)
}

/// The first argument that is not a global option: the command's name. None when help is
/// asked for anywhere (the full parser prints it).
fn command_name(argv: &[OsString]) -> Option<&str> {
    let mut it = argv.iter().skip(1);
    let mut name = None;
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        if a == "-h" || a == "--help" || a == "help" {
            return None;
        }
        if name.is_some() {
            continue;
        }
        if a.starts_with('-') {
            if VALUE_GLOBALS.contains(&a) {
                it.next();
            }
            continue;
        }
        name = Some(a);
    }
    name
}

/// The definition of one command, as the derive on [`Cmd`] names and builds it.
fn command(name: &str) -> Option<Command> {
    Some(match name {
        "create" => create::Args::augment_args(Command::new("create")),
        "start" => start::Args::augment_args(Command::new("start")),
        "state" => state::Args::augment_args(Command::new("state")),
        "kill" => kill::Args::augment_args(Command::new("kill")),
        "exec" => exec::Args::augment_args(Command::new("exec")),
        "delete" => delete::Args::augment_args(Command::new("delete")),
        "run" => run::Args::augment_args(Command::new("run")),
        "list" => list::Args::augment_args(Command::new("list")),
        "pause" => pause::Args::augment_args(Command::new("pause")),
        "resume" => pause::Args::augment_args(Command::new("resume")),
        "ps" => ps::Args::augment_args(Command::new("ps")),
        "update" => update::Args::augment_args(Command::new("update")),
        "events" => events::Args::augment_args(Command::new("events")),
        "spec" => spec::Args::augment_args(Command::new("spec")),
        "features" => features::Args::augment_args(Command::new("features")),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// Both parsers give the same result (or the short one defers to the full one).
    fn agree(args: &[&str]) {
        let v = argv(args);
        let full = Cli::try_parse_from(&v).map(|c| format!("{c:?}"));
        match one_command(&v) {
            Some(c) => assert_eq!(
                Ok(format!("{c:?}")),
                full.map_err(|e| e.to_string()),
                "{args:?}"
            ),
            None => assert!(
                full.is_err()
                    || command_name(&v).is_none()
                    || args.iter().any(|a| a.contains("help") || *a == "-h"),
                "{args:?}: the short parser declined a valid command line"
            ),
        }
    }

    #[test]
    fn agrees_with_the_full_definition() {
        let cases: &[&[&str]] = &[
            &["berth", "run", "-b", "/b", "id"],
            &[
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
            ],
            &[
                "berth",
                "--root=/r",
                "--debug",
                "run",
                "-d",
                "--preserve-fds",
                "2",
                "id",
            ],
            &[
                "berth",
                "exec",
                "--process",
                "/p.json",
                "--detach",
                "--pid-file",
                "/p",
                "id",
            ],
            &["berth", "exec", "-t", "id", "sh", "-c", "echo -n x"],
            &["berth", "exec", "--cwd", "/tmp", "id", "ls", "-l"],
            &["berth", "exec", "id", "--cwd", "/tmp", "pwd"],
            &["berth", "kill", "--all", "id", "9"],
            &["berth", "delete", "--force", "id"],
            &["berth", "--root", "/a", "--root", "/b", "list"],
            &["berth", "list", "--root", "/b", "-q"],
            &["berth", "update", "--resources=/dev/stdin", "id"],
            &["berth", "ps", "--format", "json", "id"],
            &["berth", "resume", "id"],
            &["berth", "pause", "id"],
            &["berth", "state", "id"],
            &["berth", "start", "id"],
            &["berth", "events", "--stats", "id"],
            &["berth", "spec", "--rootless"],
            &["berth", "features"],
            &["berth", "--cgroup-manager", "disabled", "run", "id"],
            &["berth", "--cgroup-manager=bogus", "run", "id"],
            &[
                "berth",
                "--systemd-cgroup",
                "--rootless",
                "true",
                "run",
                "id",
            ],
            &["berth", "create"],
            &["berth", "run", "--bogus", "id"],
            &["berth", "frobnicate"],
            &["berth", "run", "--help"],
            &["berth", "-v"],
            &["berth"],
        ];
        for c in cases {
            agree(c);
        }
    }

    #[test]
    fn valid_command_lines_take_the_short_way() {
        for c in [
            &["berth", "--root", "/r", "run", "-b", "/b", "id"][..],
            &["berth", "exec", "-t", "id", "sh", "-c", "echo -n x"],
            &["berth", "--log-format", "json", "delete", "--force", "id"],
            &["berth", "state", "id", "--root", "/r"],
        ] {
            assert!(one_command(&argv(c)).is_some(), "{c:?}");
        }
    }

    #[test]
    fn help_and_errors_go_to_the_full_parser() {
        assert!(one_command(&argv(&["berth", "run", "-h"])).is_none());
        assert!(one_command(&argv(&["berth", "help", "run"])).is_none());
        assert!(one_command(&argv(&["berth", "nope"])).is_none());
        assert!(one_command(&argv(&["berth", "create"])).is_none());
        assert!(one_command(&argv(&["berth", "--root", "/r"])).is_none());
    }

    #[test]
    fn the_command_name_skips_global_values() {
        assert_eq!(
            command_name(&argv(&["berth", "--root", "run", "list"])),
            Some("list")
        );
        assert_eq!(
            command_name(&argv(&["berth", "--root=/x", "state", "id"])),
            Some("state")
        );
        assert_eq!(
            command_name(&argv(&["berth", "--debug", "run"])),
            Some("run")
        );
    }
}
