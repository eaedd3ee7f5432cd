//! runc's commands one by one (create, start, state, kill, delete, run, exec, list, ps, pause,
//! resume, update, events, spec, features): usage errors and their exit codes, flag values, and
//! the answers in unusual states that runc's man pages and integration tests describe.

use super::{mentions, SLEEP};
use crate::case;
use crate::case::{Case, Ctx, Need};
use crate::error::Result;

/// The commands chapter (filed under "cli").
pub fn cases() -> Vec<Case> {
    const C: &str = "cli";
    vec![
        case!(
            C,
            "usage-errors",
            "missing or extra arguments and bad flag values exit 1 without touching containers",
            [],
            usage_errors
        ),
        case!(
            C,
            "unknown-command-status",
            "an unknown command exits 3, as runc's CLI library does",
            [],
            unknown_command_status
        ),
        case!(
            C,
            "log-format-invalid",
            "--log-format other than text or json fails: \"invalid log-format: xml\"",
            [],
            log_format_invalid
        ),
        case!(
            C,
            "format-invalid",
            "list and ps with an unknown --format fail: \"invalid format option\"",
            [],
            format_invalid
        ),
        case!(
            C,
            "list-layout",
            "list's table is Go tabwriter-aligned (min width 12, padding 3) and names the owner (root)",
            [],
            list_layout
        ),
        case!(
            C,
            "ps-args",
            "ps ID ARGS... passes ARGS to ps(1) and keeps the container's processes only",
            [Need::CgroupManager],
            ps_args
        ),
        case!(
            C,
            "pause-created",
            "a created container can be paused; start is refused while paused; resume returns it to created",
            [Need::CgroupManager],
            pause_created
        ),
        case!(
            C,
            "pause-paused",
            "pause of a paused container: \"container not running\"; resume of a running one: \"container not paused\"; KILL kills a paused one",
            [Need::CgroupManager],
            pause_paused
        ),
        case!(
            C,
            "update-rdt",
            "update --l3-cache-schema / --mem-bw-schema fail naming Intel RDT on a host without it",
            [Need::CgroupManager],
            update_rdt
        ),
        case!(
            C,
            "events-interval",
            "events --interval 0s fails: \"duration interval must be greater than 0\"",
            [Need::CgroupManager],
            events_interval
        ),
        case!(
            C,
            "exec-env-invalid",
            "exec -e NAME without '=' fails with 255: \"invalid environment variable\"",
            [],
            exec_env_invalid
        ),
        case!(
            C,
            "exec-cap-unknown",
            "exec --cap with an unknown capability warns and runs the process",
            [],
            exec_cap_unknown
        ),
        case!(
            C,
            "exec-labels-unsupported",
            "exec --process-label without SELinux and --apparmor without AppArmor fail with 255",
            [],
            exec_labels_unsupported
        ),
        case!(
            C,
            "exec-args-after-id",
            "exec flags go before the id: after it every word, flag-like or not, is the command",
            [],
            exec_args_after_id
        ),
        case!(
            C,
            "exec-tty-flags",
            "exec -d -t needs --console-socket, and --console-socket needs -t (255)",
            [],
            exec_tty_flags
        ),
    ]
}

fn usage_errors(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let calls: Vec<Vec<&str>> = vec![
        vec!["state"],
        vec!["state", &id, "extra"],
        vec!["start"],
        vec!["delete"],
        vec!["delete", &id, "extra"],
        vec!["kill", &id, "KILL", "extra"],
        vec!["pause"],
        vec!["exec"],
        vec!["features", "extra"],
        vec!["exec", "--preserve-fds", "x", &id, "/bin/true"],
        vec!["update", "--pids-limit", "x", &id],
        vec!["create", "--no-such-flag", "x"],
    ];
    for c in calls {
        let out = ctx.call(&c)?;
        ctx.check_eq(format!("`{}` exits 1", c.join(" ")), out.code, Some(1));
    }
    let st = ctx.status_of(&id)?;
    ctx.check_eq("the container is still running", st.as_str(), "running");
    Ok(())
}

fn unknown_command_status(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.call(&["no-such-command"])?;
    ctx.check_eq("exit status 3", out.code, Some(3));
    Ok(())
}

fn log_format_invalid(ctx: &mut Ctx) -> Result<()> {
    let id = ctx.new_id();
    let out = ctx.call(&["--log-format", "xml", "state", &id])?;
    ctx.check_eq("exit 1", out.code, Some(1));
    ctx.check(
        "\"invalid log-format: xml\"",
        out.stderr.contains("invalid log-format: xml"),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn format_invalid(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.call(&["list", "--format", "xml"])?;
    ctx.check(
        "list: \"invalid format option\"",
        out.code == Some(1) && out.stderr.contains("invalid format option"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["ps", "--format", "xml", &id])?;
    ctx.check(
        "ps: \"invalid format option\"",
        out.code == Some(1) && out.stderr.contains("invalid format option"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    Ok(())
}

fn list_layout(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let out = ctx.call(&["list"])?;
    ctx.check_ok("list succeeds", &out);
    let l: Vec<&str> = out.stdout.lines().collect();
    let header = l.first().copied().unwrap_or("");
    let row = l.iter().find(|x| x.starts_with(&id)).copied().unwrap_or("");
    let col = (id.len() + 3).max(12);
    ctx.check_eq(
        "PID starts at max(12, len(id)+3)",
        header.find("PID"),
        Some(col),
    );
    ctx.check(
        "the row's pid starts there too",
        row.len() > col && row.as_bytes()[col - 1] == b' ' && row.as_bytes()[col] != b' ',
        format!("{:?}", out.stdout),
    );
    ctx.check(
        "STATUS is 12 columns after PID (pids are short)",
        header.find("STATUS") == Some(col + 12),
        format!("{header:?}"),
    );
    ctx.check(
        "the owner column says root",
        row.trim_end().ends_with(" root"),
        format!("{row:?}"),
    );
    let v = ctx.call(&["list", "--format", "json"])?.json()?;
    let owner = v
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id.as_str()))
        .map(|x| x["owner"].clone());
    ctx.check_eq("json owner is root", owner, Some(serde_json::json!("root")));
    Ok(())
}

fn ps_args(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(0);
    let out = ctx.call(&["ps", &id, "-o", "pid,comm"])?;
    ctx.check_ok("ps ID -o pid,comm succeeds", &out);
    let l: Vec<&str> = out.stdout.lines().collect();
    ctx.check(
        "the header is ps's own for -o pid,comm",
        l.first()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>() == ["PID", "COMMAND"]),
        format!("{:?}", out.stdout),
    );
    ctx.check(
        "one row: the container's init (sleep)",
        l.len() == 2
            && l[1].split_whitespace().collect::<Vec<_>>() == [pid.to_string().as_str(), "sleep"],
        format!("{:?}", out.stdout),
    );
    let out = ctx.call(&["ps", "--format", "json", &id])?;
    ctx.check_eq(
        "ps --format json is the array of pids",
        out.json().ok(),
        Some(serde_json::json!([pid])),
    );
    Ok(())
}

fn pause_created(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let out = ctx.call(&["pause", &id])?;
    ctx.check_ok("pause of a created container succeeds", &out);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("it is paused", st.as_str(), "paused");
    let out = ctx.call(&["start", &id])?;
    ctx.check(
        "start: \"cannot start a container in the paused state\"",
        !out.ok()
            && out
                .stderr
                .contains("cannot start a container in the paused state"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    ctx.call(&["resume", &id])?.require()?;
    let st = ctx.status_of(&id)?;
    ctx.check_eq("resume makes it created again", st.as_str(), "created");
    let out = ctx.call(&["start", &id])?;
    ctx.check_ok("then start works", &out);
    Ok(())
}

fn pause_paused(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["resume", &id])?;
    ctx.check(
        "resume of a running container: \"container not paused\"",
        !out.ok() && out.stderr.contains("container not paused"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    ctx.call(&["pause", &id])?.require()?;
    let out = ctx.call(&["pause", &id])?;
    ctx.check(
        "pause of a paused container: \"container not running\"",
        !out.ok() && out.stderr.contains("container not running"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    let out = ctx.call(&["exec", &id, "/bin/true"])?;
    ctx.check(
        "exec in it: 255, \"cannot exec in a paused container\"",
        out.code == Some(255) && out.stderr.contains("cannot exec in a paused container"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    let out = ctx.call(&["kill", &id, "KILL"])?;
    ctx.check_ok("kill KILL of the paused container succeeds", &out);
    let st = ctx.wait_status(&id, "stopped", super::WAIT)?;
    ctx.check_eq(
        "and it dies (runc thaws it for SIGKILL)",
        st.as_str(),
        "stopped",
    );
    Ok(())
}

fn update_rdt(ctx: &mut Ctx) -> Result<()> {
    if std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
        return Err(ctx.skip("this host has Intel RDT (resctrl mounted)"));
    }
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    for (flag, val) in [
        ("--l3-cache-schema", "L3:0=f"),
        ("--mem-bw-schema", "MB:0=70"),
    ] {
        let out = ctx.call(&["update", flag, val, &id])?;
        ctx.check(
            format!("update {flag} fails naming Intel RDT"),
            out.code == Some(1) && out.stderr.contains("Intel RDT"),
            format!("{}: {:?}", out.status(), out.stderr),
        );
    }
    Ok(())
}

fn events_interval(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["events", "--interval", "0s", &id])?;
    ctx.check(
        "\"duration interval must be greater than 0\"",
        out.code == Some(1)
            && out
                .stderr
                .contains("duration interval must be greater than 0"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    Ok(())
}

fn exec_env_invalid(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["exec", "-e", "NOEQUALS", &id, "/bin/true"])?;
    ctx.check(
        "255 with \"invalid environment variable\"",
        out.code == Some(255) && out.stderr.contains("invalid environment variable"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    Ok(())
}

fn exec_cap_unknown(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["exec", "--cap", "CAP_BOGUS", &id, "/bin/echo", "ran"])?;
    ctx.check_ok("exec succeeds", &out);
    ctx.check_eq("the process ran", out.stdout.trim(), "ran");
    ctx.check(
        "a warning names the capability",
        out.stderr.contains("level=warning")
            && mentions(&out.stderr, &["unknown or unavailable capabilities"])
            && out.stderr.contains("CAP_BOGUS"),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn exec_labels_unsupported(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        let out = ctx.call(&[
            "exec",
            "--process-label",
            "system_u:system_r:x:s0",
            &id,
            "/bin/true",
        ])?;
        ctx.check(
            "--process-label without SELinux: 255, \"selinux is disabled\"",
            out.code == Some(255) && out.stderr.contains("selinux is disabled or not supported"),
            format!("{}: {:?}", out.status(), out.stderr),
        );
    }
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    if !apparmor {
        let out = ctx.call(&["exec", "--apparmor", "no-such-profile", &id, "/bin/true"])?;
        ctx.check(
            "--apparmor without AppArmor: 255 naming apparmor",
            out.code == Some(255) && mentions(&out.stderr, &["apparmor"]),
            format!("{}: {:?}", out.status(), out.stderr),
        );
    }
    if ctx.assertions().is_empty() {
        return Err(ctx.skip("SELinux and AppArmor are both enabled here"));
    }
    Ok(())
}

fn exec_tty_flags(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["exec", "-d", "-t", &id, "/bin/true"])?;
    ctx.check(
        "-d -t without --console-socket: 255, \"cannot allocate tty\"",
        out.code == Some(255) && out.stderr.contains("cannot allocate tty"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    let sock = ctx.work.join("unused.sock");
    let s = sock.to_string_lossy().into_owned();
    let out = ctx.call(&["exec", "--console-socket", &s, &id, "/bin/true"])?;
    ctx.check(
        "--console-socket without -t: 255, \"cannot use console socket\"",
        out.code == Some(255) && out.stderr.contains("cannot use console socket"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    Ok(())
}

fn exec_args_after_id(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["exec", "--cwd", "/tmp", &id, "/bin/pwd"])?;
    ctx.check_eq("--cwd before the id applies", out.stdout.trim(), "/tmp");
    let out = ctx.call(&["exec", &id, "--cwd", "/tmp", "/bin/pwd"])?;
    ctx.check(
        "--cwd after the id is the command (not found, 255)",
        out.code == Some(255) && out.stderr.contains("--cwd"),
        format!("{}: {:?}", out.status(), out.stderr),
    );
    let out = ctx.call(&["exec", &id, "/bin/echo", "-u", "--env", "x"])?;
    ctx.check_eq(
        "flag-like arguments reach the process",
        out.stdout.trim(),
        "-u --env x",
    );
    Ok(())
}
