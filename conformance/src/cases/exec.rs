//! `exec` (a new process in a running container) and `kill` with its signal forms.

use super::{SLEEP, WAIT};
use crate::case;
use crate::case::{Case, Ctx};
use crate::error::{io, Result};
use crate::runtime::Invoke;
use serde_json::{json, Value};
use std::time::Duration;

/// The exec and kill chapters.
pub fn cases() -> Vec<Case> {
    const E: &str = "exec";
    const K: &str = "kill";
    vec![
        case!(
            E,
            "output-status",
            "exec runs a process, passes its output and exit status",
            [],
            output_status
        ),
        case!(
            E,
            "namespaces",
            "an exec'd process joins the container's namespaces",
            [],
            namespaces
        ),
        case!(
            E,
            "flags",
            "exec --env, --cwd and --user apply to the new process",
            [],
            flags
        ),
        case!(
            E,
            "process-file",
            "exec --process reads a process.json",
            [],
            process_file
        ),
        case!(
            E,
            "inherits-config",
            "an exec'd process gets the container's caps and NoNewPrivs",
            [],
            inherits_config
        ),
        case!(
            E,
            "detach-pid-file",
            "exec --detach --pid-file returns at once and writes the pid",
            [],
            detach_pid_file
        ),
        case!(
            E,
            "stopped",
            "exec in a stopped container fails",
            [],
            stopped
        ),
        case!(
            E,
            "missing-binary",
            "exec of a missing binary fails",
            [],
            missing_binary
        ),
        case!(
            K,
            "term-trapped",
            "kill TERM delivers SIGTERM to the process",
            [],
            term_trapped
        ),
        case!(
            K,
            "signal-forms",
            "signals by name, SIG-name and number are delivered",
            [],
            signal_forms
        ),
        case!(
            K,
            "default-term",
            "kill without a signal sends SIGTERM",
            [],
            default_term
        ),
        case!(
            K,
            "invalid-signal",
            "kill with an unknown signal fails",
            [],
            invalid_signal
        ),
    ]
}

fn running(ctx: &mut Ctx) -> Result<String> {
    let b = ctx.bundle(SLEEP)?;
    ctx.start_ok(&b)
}

fn output_status(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let out = ctx.call(&["exec", &id, "/bin/echo", "from", "exec"])?;
    ctx.check_ok("exec succeeds", &out);
    ctx.check_eq(
        "its output is passed through",
        out.stdout.trim(),
        "from exec",
    );
    let out = ctx.call(&["exec", &id, "/bin/sh", "-c", "exit 7"])?;
    ctx.check_eq("its exit status is returned", out.code, Some(7));
    let st = ctx.status_of(&id)?;
    ctx.check_eq("the container keeps running", st.as_str(), "running");
    Ok(())
}

fn namespaces(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(0);
    let out = ctx.call(&["exec", &id, "/bin/checker", "ns"])?.require()?;
    let v = out.json()?;
    for k in ["pid", "net", "ipc", "uts", "mnt"] {
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{k}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        ctx.check_eq(
            format!("same {k} namespace as init"),
            v[k].as_str().unwrap_or("").to_string(),
            init,
        );
    }
    Ok(())
}

fn flags(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let out = ctx
        .call(&[
            "exec",
            "--env",
            "EXTRA=1",
            "--cwd",
            "/tmp",
            "--user",
            "1000:2000",
            &id,
            "/bin/checker",
            "facts",
        ])?
        .require()?;
    let v = out.json()?;
    ctx.check_eq("--env sets EXTRA", v["env"]["EXTRA"].as_str(), Some("1"));
    ctx.check_eq(
        "the container's env is kept",
        v["env"]["TERM"].as_str(),
        Some("xterm"),
    );
    ctx.check_eq("--cwd", v["cwd"].as_str(), Some("/tmp"));
    ctx.check_eq("--user uid", v["ids"]["uid"].as_i64(), Some(1000));
    ctx.check_eq("--user gid", v["ids"]["gid"].as_i64(), Some(2000));
    Ok(())
}

fn process_file(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let p = ctx.work.join("process.json");
    let proc_json = json!({
        "terminal": false, "user": {"uid": 0, "gid": 0},
        "args": ["/bin/checker", "facts"], "env": ["PATH=/bin", "FROM_FILE=yes"], "cwd": "/root"
    });
    std::fs::write(&p, proc_json.to_string()).map_err(io("writing", &p))?;
    let ps = p.to_string_lossy().into_owned();
    let out = ctx.call(&["exec", "--process", &ps, &id])?;
    ctx.check_ok("exec --process succeeds", &out);
    let v: Value = out.json().unwrap_or(Value::Null);
    ctx.check_eq(
        "env from the file",
        v["env"]["FROM_FILE"].as_str(),
        Some("yes"),
    );
    ctx.check_eq("cwd from the file", v["cwd"].as_str(), Some("/root"));
    Ok(())
}

fn inherits_config(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    let set = json!(["CAP_KILL", "CAP_CHOWN"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": set, "effective": set, "permitted": set});
    b.config["process"]["noNewPrivileges"] = json!(true);
    let id = ctx.start_ok(&b)?;
    let out = ctx
        .call(&["exec", &id, "/bin/checker", "facts"])?
        .require()?;
    let v = out.json()?;
    ctx.check_eq(
        "bounding set is the container's",
        v["caps"]["bounding"].as_u64(),
        Some((1 << 5) | 1),
    );
    ctx.check_eq("NoNewPrivs is set", v["no_new_privs"].as_str(), Some("1"));
    Ok(())
}

fn detach_pid_file(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let pf = ctx.work.join("exec.pid");
    let pfs = pf.to_string_lossy().into_owned();
    let opts = Invoke {
        timeout: Some(Duration::from_secs(10)),
        ..Invoke::default()
    };
    let out = ctx.call_with(
        &[
            "exec",
            "--detach",
            "--pid-file",
            &pfs,
            &id,
            "/bin/sleep",
            "300",
        ],
        &opts,
    )?;
    ctx.check_ok("exec --detach returns 0 while the process runs", &out);
    let pid: i64 = std::fs::read_to_string(&pf)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    ctx.check(
        "the pid file names a live process",
        pid > 0 && super::alive(pid),
        format!("pid {pid}"),
    );
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    ctx.check(
        "it runs the exec'd command",
        String::from_utf8_lossy(&cmd).contains("300"),
        String::from_utf8_lossy(&cmd).into_owned(),
    );
    Ok(())
}

fn stopped(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(&["/bin/true"])?;
    let id = ctx.start_ok(&b)?;
    ctx.wait_status(&id, "stopped", WAIT)?;
    let out = ctx.call(&["exec", &id, "/bin/true"])?;
    ctx.check_fails("exec fails", &out);
    Ok(())
}

fn missing_binary(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let out = ctx.call(&["exec", &id, "/no/such/binary"])?;
    ctx.check_fails("exec fails", &out);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("the container keeps running", st.as_str(), "running");
    Ok(())
}

/// A running container whose shell traps `sigs` and appends their names to /shared/sig.
fn trapper(ctx: &mut Ctx, sigs: &[&str]) -> Result<(String, std::path::PathBuf)> {
    let mut b = ctx.bundle(&[])?;
    let shared = b.shared()?;
    let mut script = String::new();
    for s in sigs {
        script.push_str(&format!("trap 'echo {s} >> /shared/sig' {s}; "));
    }
    script.push_str("echo ready > /shared/ready; while true; do sleep 0.05; done");
    b.sh(&script);
    let id = ctx.start_ok(&b)?;
    ctx.wait_file(&shared.join("ready"), WAIT);
    Ok((id, shared))
}

fn received(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("sig"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_signals(dir: &std::path::Path, n: usize) -> Vec<String> {
    let start = std::time::Instant::now();
    while start.elapsed() < WAIT && received(dir).len() < n {
        std::thread::sleep(Duration::from_millis(20));
    }
    received(dir)
}

fn term_trapped(ctx: &mut Ctx) -> Result<()> {
    let (id, dir) = trapper(ctx, &["TERM"])?;
    let out = ctx.call(&["kill", &id, "TERM"])?;
    ctx.check_ok("kill TERM succeeds", &out);
    let got = wait_signals(&dir, 1);
    ctx.check_eq("the process got SIGTERM", got, vec!["TERM".to_string()]);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("a trapped TERM leaves it running", st.as_str(), "running");
    Ok(())
}

fn signal_forms(ctx: &mut Ctx) -> Result<()> {
    let (id, dir) = trapper(ctx, &["USR1", "USR2", "HUP"])?;
    for (arg, want) in [("USR1", 1), ("SIGUSR2", 2), ("1", 3)] {
        let out = ctx.call(&["kill", &id, arg])?;
        ctx.check_ok(format!("kill {arg} succeeds"), &out);
        let got = wait_signals(&dir, want);
        ctx.check_eq(format!("signal {arg} delivered"), got.len(), want);
    }
    ctx.check_eq(
        "in order: USR1, USR2, HUP",
        received(&dir),
        vec!["USR1".to_string(), "USR2".to_string(), "HUP".to_string()],
    );
    Ok(())
}

fn default_term(ctx: &mut Ctx) -> Result<()> {
    let (id, dir) = trapper(ctx, &["TERM"])?;
    let out = ctx.call(&["kill", &id])?;
    ctx.check_ok("kill without a signal succeeds", &out);
    ctx.check_eq(
        "SIGTERM is delivered",
        wait_signals(&dir, 1),
        vec!["TERM".to_string()],
    );
    Ok(())
}

fn invalid_signal(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let out = ctx.call(&["kill", &id, "SIGNOPE"])?;
    ctx.check_fails("kill SIGNOPE fails", &out);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("the container keeps running", st.as_str(), "running");
    Ok(())
}
