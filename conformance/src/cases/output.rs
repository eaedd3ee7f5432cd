//! Output contracts callers parse: `events` lines, logrus-format log and debug lines (to stderr
//! or to `--log`, never both), and the error strings containerd, podman, cri-o and docker match
//! in a runtime's output (see docs/compatibility.md for who matches which).

use super::{SLEEP, WAIT};
use crate::case;
use crate::case::{Case, Ctx, Need};
use crate::error::Result;
use crate::runtime::{Invoke, Outcome};
use serde_json::Value;

/// The output chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "output";
    vec![
        case!(
            C,
            "events-key-order",
            "events --stats prints {\"type\":\"stats\",\"id\":ID,\"data\":{...}} in that key order",
            [Need::CgroupManager],
            events_key_order
        ),
        case!(
            C,
            "error-line-stderr",
            "without --log an error is one logrus line on stderr: time=\"...\" level=error msg=\"...\"",
            [],
            error_line_stderr
        ),
        case!(
            C,
            "error-log-file",
            "with --log the error line goes to the file (text or json) and the bare message to stderr",
            [],
            error_log_file
        ),
        case!(
            C,
            "debug-stderr",
            "--debug without --log writes logrus debug lines to stderr, stdout stays the process's",
            [],
            debug_stderr
        ),
        case!(
            C,
            "debug-log-file",
            "--debug --log F writes debug lines only to F (text or json), none to stderr",
            [],
            debug_log_file
        ),
        case!(
            C,
            "str-does-not-exist",
            "\"container does not exist\" for every command on an unknown id (containerd, podman)",
            [],
            str_does_not_exist
        ),
        case!(
            C,
            "str-not-running",
            "\"container not running\" for kill, pause and update of a stopped container (containerd, cri-o)",
            [],
            str_not_running
        ),
        case!(
            C,
            "str-already-exists",
            "\"container with given ID already exists\" for a duplicate create",
            [],
            str_already_exists
        ),
        case!(
            C,
            "str-executable-not-found",
            "\"executable file not found in $PATH\" for a missing command (podman and docker exit 127)",
            [],
            str_executable_not_found
        ),
        case!(
            C,
            "str-no-such-file",
            "\"no such file or directory\" for a missing absolute path (podman and docker exit 127)",
            [],
            str_no_such_file
        ),
        case!(
            C,
            "str-permission-denied",
            "\"permission denied\" for a file that is not executable (podman and docker exit 126)",
            [],
            str_permission_denied
        ),
    ]
}

/// Whether `line` has logrus's text shape: `time="<RFC 3339>" level=<L> msg=...`.
fn logrus_text(line: &str, level: &str) -> bool {
    let Some(rest) = line.strip_prefix("time=\"") else {
        return false;
    };
    let Some((time, rest)) = rest.split_once('"') else {
        return false;
    };
    time.len() >= 20
        && time.as_bytes().get(10) == Some(&b'T')
        && rest.starts_with(&format!(" level={level} msg="))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

fn events_key_order(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["events", "--stats", &id])?;
    ctx.check_ok("events --stats succeeds", &out);
    let first = out.stdout.lines().next().unwrap_or("").to_string();
    let prefix = format!("{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":{{");
    ctx.check(
        "the line starts with type, then id, then data",
        first.starts_with(&prefix),
        format!("{first:.120}"),
    );
    let v: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
    ctx.check(
        "it is one JSON object",
        v.is_object(),
        format!("{first:.120}"),
    );
    Ok(())
}

fn error_line_stderr(ctx: &mut Ctx) -> Result<()> {
    let id = ctx.new_id();
    let out = ctx.call(&["state", &id])?;
    ctx.check_fails("state of an unknown id fails", &out);
    let l = lines(&out.stderr);
    ctx.check_eq("stderr has one line", l.len(), 1);
    let first = l.first().copied().unwrap_or("");
    ctx.check(
        "in logrus text format with level=error",
        logrus_text(first, "error"),
        format!("{first:?}"),
    );
    ctx.check(
        "msg=\"container does not exist\"",
        first.ends_with("msg=\"container does not exist\""),
        format!("{first:?}"),
    );
    Ok(())
}

fn with_log(ctx: &mut Ctx, name: &str, json: bool, debug: bool) -> (std::path::PathBuf, Invoke) {
    let log = ctx.work.join(name);
    let mut global = vec!["--log".to_string(), log.to_string_lossy().into_owned()];
    if json {
        global.extend(["--log-format".to_string(), "json".to_string()]);
    }
    if debug {
        global.push("--debug".to_string());
    }
    (
        log,
        Invoke {
            global,
            ..Invoke::default()
        },
    )
}

fn error_log_file(ctx: &mut Ctx) -> Result<()> {
    let id = ctx.new_id();
    for json in [false, true] {
        let kind = if json { "json" } else { "text" };
        let (log, opts) = with_log(ctx, &format!("{kind}.log"), json, false);
        let out = ctx.call_with(&["kill", &id, "KILL"], &opts)?;
        ctx.check_fails(format!("{kind}: kill of an unknown id fails"), &out);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let l = lines(&text);
        ctx.check_eq(format!("{kind}: the log has one line"), l.len(), 1);
        let first = l.first().copied().unwrap_or("");
        let shaped = if json {
            let v: Value = serde_json::from_str(first).unwrap_or(Value::Null);
            v["level"] == "error" && v["msg"] == "container does not exist"
        } else {
            logrus_text(first, "error") && first.ends_with("msg=\"container does not exist\"")
        };
        ctx.check(
            format!("{kind}: it is the error line"),
            shaped,
            format!("{first:?}"),
        );
        ctx.check_eq(
            format!("{kind}: stderr has the bare message"),
            out.stderr.trim(),
            "container does not exist",
        );
    }
    Ok(())
}

fn running(ctx: &mut Ctx) -> Result<String> {
    let b = ctx.bundle(SLEEP)?;
    ctx.start_ok(&b)
}

fn debug_stderr(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let opts = Invoke {
        global: vec!["--debug".into()],
        ..Invoke::default()
    };
    let out = ctx.call_with(&["exec", &id, "/bin/echo", "out"], &opts)?;
    ctx.check_ok("--debug exec succeeds", &out);
    ctx.check_eq("stdout is the process's", out.stdout.as_str(), "out\n");
    let l = lines(&out.stderr);
    ctx.check(
        "stderr has debug lines",
        l.iter().any(|x| logrus_text(x, "debug")),
        format!("stderr {:?}", out.stderr),
    );
    let bad: Vec<&&str> = l
        .iter()
        .filter(|x| !x.starts_with("time=\"") || !x.contains(" level="))
        .collect();
    ctx.check(
        "every stderr line is a logrus line",
        bad.is_empty(),
        format!("{bad:?}"),
    );
    Ok(())
}

fn debug_log_file(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    for json in [false, true] {
        let kind = if json { "json" } else { "text" };
        let (log, opts) = with_log(ctx, &format!("debug-{kind}.log"), json, true);
        let out: Outcome = ctx.call_with(&["exec", &id, "/bin/echo", "out"], &opts)?;
        ctx.check_ok(format!("{kind}: --debug --log exec succeeds"), &out);
        ctx.check_eq(
            format!("{kind}: stdout is the process's"),
            out.stdout.as_str(),
            "out\n",
        );
        ctx.check(
            format!("{kind}: nothing on stderr"),
            out.stderr.trim().is_empty(),
            format!("stderr {:?}", out.stderr),
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let l = lines(&text);
        let debug_lines = if json {
            l.iter()
                .filter_map(|x| serde_json::from_str::<Value>(x).ok())
                .filter(|v| v["level"] == "debug" && v["msg"].is_string() && v["time"].is_string())
                .count()
        } else {
            l.iter().filter(|x| logrus_text(x, "debug")).count()
        };
        ctx.check(
            format!("{kind}: the log has debug lines"),
            debug_lines > 0,
            format!("log {text:.300}"),
        );
        let all_shaped = if json {
            l.iter()
                .all(|x| serde_json::from_str::<Value>(x).is_ok_and(|v| v["level"].is_string()))
        } else {
            l.iter()
                .all(|x| x.starts_with("time=\"") && x.contains(" level="))
        };
        ctx.check(
            format!("{kind}: every log line has the format"),
            all_shaped,
            format!("log {text:.300}"),
        );
    }
    Ok(())
}

fn str_does_not_exist(ctx: &mut Ctx) -> Result<()> {
    let id = ctx.new_id();
    let want = "container does not exist";
    for cmd in [
        vec!["state"],
        vec!["start"],
        vec!["kill"],
        vec!["delete"],
        vec!["pause"],
        vec!["resume"],
        vec!["ps"],
        vec!["events", "--stats"],
        vec!["update", "--pids-limit", "10"],
        vec!["exec"],
    ] {
        let mut args = cmd.clone();
        args.push(&id);
        if cmd[0] == "exec" {
            args.push("/bin/true");
        }
        let out = ctx.call(&args)?;
        ctx.check(
            format!("{}: fails with {want:?}", cmd.join(" ")),
            !out.ok() && out.stderr.contains(want),
            format!("{}: stderr {:?}", out.status(), out.stderr),
        );
    }
    let out = ctx.call(&["delete", "--force", &id])?;
    ctx.check_ok("delete --force of an unknown id succeeds", &out);
    Ok(())
}

fn str_not_running(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(&["/bin/true"])?;
    let id = ctx.start_ok(&b)?;
    ctx.wait_status(&id, "stopped", WAIT)?;
    let want = "container not running";
    for cmd in [
        vec!["kill"],
        vec!["pause"],
        vec!["update", "--pids-limit", "10"],
    ] {
        let mut args = cmd.clone();
        args.push(&id);
        let out = ctx.call(&args)?;
        ctx.check(
            format!("{}: fails with {want:?}", cmd.join(" ")),
            !out.ok() && out.stderr.contains(want),
            format!("{}: stderr {:?}", out.status(), out.stderr),
        );
    }
    let out = ctx.call(&["resume", &id])?;
    ctx.check(
        "resume of it: \"container not paused\"",
        !out.ok() && out.stderr.contains("container not paused"),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn str_already_exists(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let dir = b.dir.to_string_lossy().into_owned();
    let out = ctx.call(&["create", "--bundle", &dir, &id])?;
    ctx.check(
        "a second create fails with \"container with given ID already exists\"",
        !out.ok()
            && out
                .stderr
                .contains("container with given ID already exists"),
        format!("{}: stderr {:?}", out.status(), out.stderr),
    );
    Ok(())
}

/// `run` of a bundle whose process is `args`, and `exec` of `args` into a running container:
/// both must fail and name `want`.
fn exec_failure(
    ctx: &mut Ctx,
    args: &[&str],
    want: &str,
    setup: fn(&crate::bundle::Bundle),
) -> Result<()> {
    let b = ctx.bundle(args)?;
    b.write()?;
    setup(&b);
    let out = ctx.run(&b)?;
    ctx.check(
        format!("run fails naming {want:?}"),
        !out.ok() && out.stderr.contains(want),
        format!("{}: stderr {:?}", out.status(), out.stderr),
    );
    let r = ctx.bundle(SLEEP)?;
    setup(&r);
    let id = ctx.start_ok(&r)?;
    let mut e = vec!["exec", id.as_str()];
    e.extend_from_slice(args);
    let out = ctx.call(&e)?;
    ctx.check(
        format!("exec fails with 255 naming {want:?}"),
        out.code == Some(255) && out.stderr.contains(want),
        format!("{}: stderr {:?}", out.status(), out.stderr),
    );
    Ok(())
}

fn str_executable_not_found(ctx: &mut Ctx) -> Result<()> {
    exec_failure(
        ctx,
        &["no-such-command"],
        "executable file not found in $PATH",
        |_| {},
    )
}

fn str_no_such_file(ctx: &mut Ctx) -> Result<()> {
    exec_failure(ctx, &["/no/such/file"], "no such file or directory", |_| {})
}

fn str_permission_denied(ctx: &mut Ctx) -> Result<()> {
    exec_failure(ctx, &["/etc/not-executable"], "permission denied", |b| {
        let _ = std::fs::create_dir_all(b.rootfs().join("etc"));
        let _ = std::fs::write(b.rootfs().join("etc/not-executable"), "#!/bin/sh\n");
    })
}
