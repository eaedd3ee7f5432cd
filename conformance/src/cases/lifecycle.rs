//! Lifecycle (runtime spec "Lifecycle", "Operations" and "State"): create, start, state, kill,
//! delete, their transitions, and the errors for operations in the wrong state.

use super::{alive, mentions, wait_gone, SLEEP, WAIT};
use crate::case;
use crate::case::{Case, Ctx};
use crate::error::Result;
use serde_json::json;
use std::path::Path;

/// The lifecycle chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "lifecycle";
    vec![
        case!(
            C,
            "create-state",
            "after create: state is `created` with id, pid, bundle, ociVersion",
            [],
            create_state
        ),
        case!(
            C,
            "start-running",
            "start moves created to running and execs the process",
            [],
            start_running
        ),
        case!(
            C,
            "exit-stopped",
            "a container whose process exits is `stopped`; delete removes it",
            [],
            exit_stopped
        ),
        case!(
            C,
            "kill-stops",
            "kill KILL stops a running container",
            [],
            kill_stops
        ),
        case!(
            C,
            "kill-created",
            "kill of a created (not started) container stops it",
            [],
            kill_created
        ),
        case!(
            C,
            "duplicate-id",
            "create with an id in use fails and leaves the first container",
            [],
            duplicate_id
        ),
        case!(
            C,
            "start-twice",
            "start of a running container fails",
            [],
            start_twice
        ),
        case!(
            C,
            "start-stopped",
            "start of a stopped container fails",
            [],
            start_stopped
        ),
        case!(
            C,
            "delete-running",
            "delete without --force refuses a running container",
            [],
            delete_running
        ),
        case!(
            C,
            "delete-force",
            "delete --force kills and removes a running container",
            [],
            delete_force
        ),
        case!(
            C,
            "delete-created",
            "delete of a created container removes it and its process",
            [],
            delete_created
        ),
        case!(
            C,
            "state-missing",
            "state, start, kill and delete of an unknown id fail",
            [],
            state_missing
        ),
        case!(
            C,
            "run-exit-code",
            "run returns the container process's exit status",
            [],
            run_exit_code
        ),
        case!(
            C,
            "run-output",
            "run passes the process's stdout and stderr through",
            [],
            run_output
        ),
        case!(
            C,
            "run-detach",
            "run --detach returns with the container running",
            [],
            run_detach
        ),
        case!(
            C,
            "annotations",
            "annotations from config.json appear in state",
            [],
            annotations
        ),
        case!(
            C,
            "pid-file",
            "create --pid-file writes the container's pid",
            [],
            pid_file
        ),
        case!(
            C,
            "bad-id",
            "ids with a slash or `..` are rejected",
            [],
            bad_id
        ),
        case!(
            C,
            "missing-config",
            "create fails on a bundle without config.json",
            [],
            missing_config
        ),
        case!(
            C,
            "missing-rootfs",
            "create fails when root.path does not exist",
            [],
            missing_rootfs
        ),
        case!(
            C,
            "bad-executable",
            "a process that cannot be executed makes create/start or run fail",
            [],
            bad_executable
        ),
        case!(
            C,
            "invalid-json",
            "create fails on a config.json that is not JSON",
            [],
            invalid_json
        ),
    ]
}

fn create_state(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let (id, out) = ctx.create(&b, &[])?;
    ctx.check_ok("create succeeds", &out);
    let st = ctx.state(&id)?;
    ctx.check_eq("status is created", st["status"].as_str(), Some("created"));
    ctx.check_eq("id matches", st["id"].as_str(), Some(id.as_str()));
    let pid = st["pid"].as_i64().unwrap_or(0);
    ctx.check(
        "pid is positive and alive",
        pid > 0 && alive(pid),
        format!("pid {pid}"),
    );
    let bundle = st["bundle"].as_str().unwrap_or("");
    let same = Path::new(bundle).canonicalize().ok() == b.dir.canonicalize().ok();
    ctx.check(
        "bundle is the bundle's absolute path",
        same && bundle.starts_with('/'),
        format!("bundle {bundle:?}"),
    );
    ctx.check(
        "ociVersion is set",
        st["ociVersion"]
            .as_str()
            .map(|s| !s.is_empty())
            .unwrap_or(false),
        format!("state {st}"),
    );
    Ok(())
}

fn start_running(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let out = ctx.call(&["start", &id])?;
    ctx.check_ok("start succeeds", &out);
    let st = ctx.state(&id)?;
    ctx.check_eq("status is running", st["status"].as_str(), Some("running"));
    let pid = st["pid"].as_i64().unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    ctx.check(
        "the pid runs the configured process",
        cmd.contains("sleep 600"),
        format!("cmdline {cmd:?}"),
    );
    Ok(())
}

fn exit_stopped(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(&["/bin/true"])?;
    let id = ctx.start_ok(&b)?;
    let st = ctx.wait_status(&id, "stopped", WAIT)?;
    ctx.check_eq("status becomes stopped", st.as_str(), "stopped");
    let out = ctx.call(&["delete", &id])?;
    ctx.check_ok("delete of a stopped container succeeds", &out);
    let out = ctx.call(&["state", &id])?;
    ctx.check_fails("state after delete fails", &out);
    Ok(())
}

fn kill_stops(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(0);
    let out = ctx.call(&["kill", &id, "KILL"])?;
    ctx.check_ok("kill KILL succeeds", &out);
    let st = ctx.wait_status(&id, "stopped", WAIT)?;
    ctx.check_eq("status becomes stopped", st.as_str(), "stopped");
    ctx.check(
        "the process is gone",
        wait_gone(pid, WAIT),
        format!("pid {pid} still alive"),
    );
    Ok(())
}

fn kill_created(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let out = ctx.call(&["kill", &id, "KILL"])?;
    ctx.check_ok("kill of a created container succeeds", &out);
    let st = ctx.wait_status(&id, "stopped", WAIT)?;
    ctx.check_eq("status becomes stopped", st.as_str(), "stopped");
    Ok(())
}

fn duplicate_id(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let b2 = ctx.bundle(SLEEP)?;
    b2.write()?;
    let dir = b2.dir.to_string_lossy().into_owned();
    let out = ctx.call(&["create", "--bundle", &dir, &id])?;
    ctx.check_fails("second create with the same id fails", &out);
    ctx.check(
        "the error says the id exists",
        mentions(&out.stderr, &["exist"]),
        format!("stderr {:?}", out.stderr),
    );
    let st = ctx.state(&id)?;
    ctx.check_eq(
        "the first container is still created",
        st["status"].as_str(),
        Some("created"),
    );
    Ok(())
}

fn start_twice(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["start", &id])?;
    ctx.check_fails("start of a running container fails", &out);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("it keeps running", st.as_str(), "running");
    Ok(())
}

fn start_stopped(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(&["/bin/true"])?;
    let id = ctx.start_ok(&b)?;
    ctx.wait_status(&id, "stopped", WAIT)?;
    let out = ctx.call(&["start", &id])?;
    ctx.check_fails("start of a stopped container fails", &out);
    Ok(())
}

fn delete_running(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["delete", &id])?;
    ctx.check_fails("delete of a running container fails", &out);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("it keeps running", st.as_str(), "running");
    Ok(())
}

fn delete_force(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(0);
    let out = ctx.call(&["delete", "--force", &id])?;
    ctx.check_ok("delete --force succeeds", &out);
    let out = ctx.call(&["state", &id])?;
    ctx.check_fails("state after delete --force fails", &out);
    ctx.check(
        "the process is gone",
        wait_gone(pid, WAIT),
        format!("pid {pid} alive"),
    );
    let out = ctx.call(&["delete", "--force", &id])?;
    ctx.check_ok("delete --force of a missing container succeeds", &out);
    Ok(())
}

fn delete_created(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(0);
    let out = ctx.call(&["delete", &id])?;
    ctx.check_ok("delete of a created container succeeds", &out);
    ctx.check(
        "its process is gone",
        wait_gone(pid, WAIT),
        format!("pid {pid} alive"),
    );
    let out = ctx.call(&["state", &id])?;
    ctx.check_fails("state after delete fails", &out);
    Ok(())
}

fn state_missing(ctx: &mut Ctx) -> Result<()> {
    let id = ctx.new_id();
    let out = ctx.call(&["state", &id])?;
    ctx.check_fails("state of an unknown id fails", &out);
    ctx.check(
        "the error says it does not exist",
        mentions(&out.stderr, &["does not exist", "not found", "no such"]),
        format!("stderr {:?}", out.stderr),
    );
    for op in [
        vec!["start", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
    ] {
        let out = ctx.call(&op)?;
        ctx.check_fails(format!("{} of an unknown id fails", op[0]), &out);
    }
    Ok(())
}

fn run_exit_code(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    b.sh("exit 3");
    let out = ctx.run(&b)?;
    ctx.check_eq("run exits with the process's status 3", out.code, Some(3));
    let mut b = ctx.bundle(&[])?;
    b.sh("exit 255");
    let out = ctx.run(&b)?;
    ctx.check_eq("run exits with status 255", out.code, Some(255));
    Ok(())
}

fn run_output(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    b.sh("echo out-line; echo err-line >&2");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check_eq("stdout is passed through", out.stdout.trim(), "out-line");
    ctx.check(
        "stderr is passed through",
        out.stderr.contains("err-line"),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn run_detach(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let out = ctx.run_with(&b, &["--detach"], &Default::default())?;
    ctx.check_ok("run --detach returns 0", &out);
    let id = out.command.rsplit(' ').next().unwrap_or("").to_string();
    let st = ctx.status_of(&id)?;
    ctx.check_eq("the container is running", st.as_str(), "running");
    Ok(())
}

fn annotations(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    b.config["annotations"] = json!({"org.example.key": "value-1", "other": "x"});
    let id = ctx.create_ok(&b)?;
    let st = ctx.state(&id)?;
    ctx.check_eq(
        "annotation org.example.key is in state",
        st["annotations"]["org.example.key"].as_str(),
        Some("value-1"),
    );
    ctx.check_eq(
        "annotation other is in state",
        st["annotations"]["other"].as_str(),
        Some("x"),
    );
    Ok(())
}

fn pid_file(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let pf = ctx.work.join("container.pid");
    let pfs = pf.to_string_lossy().into_owned();
    let (id, out) = ctx.create(&b, &["--pid-file", &pfs])?;
    out.require()?;
    let text = std::fs::read_to_string(&pf).unwrap_or_default();
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(-1);
    ctx.check_eq(
        "pid file holds the state's pid",
        text.trim().parse::<i64>().ok(),
        Some(pid),
    );
    ctx.check(
        "pid file has no trailing newline (runc)",
        !text.ends_with('\n'),
        format!("{text:?}"),
    );
    Ok(())
}

fn bad_id(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    b.write()?;
    let dir = b.dir.to_string_lossy().into_owned();
    for bad in ["a/b", ".."] {
        let out = ctx.call(&["create", "--bundle", &dir, bad])?;
        if out.ok() {
            let _ = ctx.call(&["delete", "--force", bad]);
        }
        ctx.check_fails(format!("create with id {bad:?} fails"), &out);
    }
    Ok(())
}

fn missing_config(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.new_id();
    let dir = b.dir.to_string_lossy().into_owned();
    let out = ctx.call(&["create", "--bundle", &dir, &id])?;
    ctx.check_fails("create without config.json fails", &out);
    ctx.check(
        "the error names config.json",
        mentions(&out.stderr, &["config.json", "no such file"]),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn missing_rootfs(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    b.config["root"]["path"] = json!("no-such-rootfs");
    let (id, out) = ctx.create(&b, &[])?;
    ctx.check_fails("create with a missing rootfs fails", &out);
    let out = ctx.call(&["state", &id])?;
    ctx.check_fails("no container is left behind", &out);
    Ok(())
}

fn bad_executable(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(&["/no/such/binary"])?;
    let (id, out) = ctx.create(&b, &[])?;
    let failed = if out.ok() {
        !ctx.call(&["start", &id])?.ok()
    } else {
        true
    };
    ctx.check(
        "create or start fails",
        failed,
        "both create and start succeeded",
    );
    let b = ctx.bundle(&["/no/such/binary"])?;
    let out = ctx.run(&b)?;
    ctx.check_fails("run fails", &out);
    Ok(())
}

fn invalid_json(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let p = b.dir.join("config.json");
    std::fs::write(&p, "{ not json").map_err(crate::error::io("writing", &p))?;
    let id = ctx.new_id();
    let dir = b.dir.to_string_lossy().into_owned();
    let out = ctx.call(&["create", "--bundle", &dir, &id])?;
    ctx.check_fails("create with invalid JSON fails", &out);
    let out = ctx.call(&["state", &id])?;
    ctx.check_fails("no container is left behind", &out);
    Ok(())
}
