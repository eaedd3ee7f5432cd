//! `exec` (a new process in a running container) and `kill` with its signal forms.

use super::{mentions, SLEEP, WAIT};
use crate::case;
use crate::case::Need;
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
            E,
            "created",
            "exec into a created, not yet started container works and leaves it created",
            [],
            created
        ),
        case!(
            E,
            "process-file-defaults",
            "exec -p with only args and cwd: uid/gid 0, only the file's env, the container's caps",
            [],
            process_file_defaults
        ),
        case!(
            E,
            "process-file-invalid",
            "exec -p without cwd, with a relative cwd or without args fails with runc's messages",
            [],
            process_file_invalid
        ),
        case!(
            E,
            "runtime-error-255",
            "exec exits 255 when the runtime fails, with the process's status otherwise",
            [],
            runtime_error_255
        ),
        case!(
            E,
            "pid-file-error",
            "exec --pid-file in a missing directory fails with 255 and leaves no process behind",
            [Need::CgroupManager],
            pid_file_error
        ),
        case!(
            E,
            "dev-null-owner",
            "exec --user 1000 with stdin on /dev/null leaves the host's /dev/null owned by root",
            [],
            dev_null_owner
        ),
        case!(
            E,
            "preserve-fds",
            "exec --preserve-fds 1 passes fd 3 to the new process, and nothing more without it",
            [],
            exec_preserve_fds
        ),
        case!(
            E,
            "console-size",
            "exec -d -t --console-socket -p: the file's consoleSize sizes the new pty",
            [],
            exec_console_size
        ),
        case!(
            E,
            "tty-foreground",
            "exec -t without --console-socket gives the process a pty and relays it",
            [],
            tty_foreground
        ),
        case!(
            E,
            "cap",
            "exec --cap adds a capability to the bounding, effective and permitted sets",
            [],
            cap_added
        ),
        case!(
            E,
            "sub-cgroup",
            "exec --cgroup [controller:]path runs the process in an existing sub-cgroup",
            [Need::CgroupV1("memory")],
            sub_cgroup
        ),
        case!(
            E,
            "sub-cgroup-v2",
            "exec --cgroup path runs the process in an existing cgroup2 sub-cgroup",
            [Need::CgroupV2(None)],
            sub_cgroup_v2
        ),
        case!(
            K,
            "signal-zero",
            "kill ID 0 probes: success on a created or running container, error once stopped",
            [],
            signal_zero
        ),
        case!(
            K,
            "all-stopped",
            "kill --all on a stopped container succeeds (nothing left to signal)",
            [Need::CgroupManager],
            all_stopped
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

fn created(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let out = ctx.call(&["exec", &id, "/bin/echo", "before", "start"])?;
    ctx.check_ok("exec into a created container succeeds", &out);
    ctx.check_eq("its output", out.stdout.trim(), "before start");
    let st = ctx.status_of(&id)?;
    ctx.check_eq("the container is still created", st.as_str(), "created");
    let out = ctx.call(&["start", &id])?;
    ctx.check_ok("it can be started afterwards", &out);
    Ok(())
}

fn write_process(ctx: &Ctx, name: &str, v: &Value) -> Result<String> {
    let p = ctx.work.join(name);
    std::fs::write(&p, v.to_string()).map_err(io("writing", &p))?;
    Ok(p.to_string_lossy().into_owned())
}

fn process_file_defaults(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    let set = json!(["CAP_KILL", "CAP_CHOWN"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": set, "effective": set, "permitted": set});
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=1"]);
    b.config["process"]["cwd"] = json!("/tmp");
    let id = ctx.start_ok(&b)?;
    let ps = write_process(
        ctx,
        "process.json",
        &json!({"args": ["/bin/checker", "facts"], "cwd": "/"}),
    )?;
    let out = ctx.call(&["exec", "-p", &ps, &id])?;
    ctx.check_ok("exec -p with only args and cwd succeeds", &out);
    let v: Value = out.json().unwrap_or(Value::Null);
    ctx.check_eq("uid defaults to 0", v["ids"]["uid"].as_i64(), Some(0));
    ctx.check_eq("gid defaults to 0", v["ids"]["gid"].as_i64(), Some(0));
    ctx.check_eq("cwd is the file's", v["cwd"].as_str(), Some("/"));
    ctx.check_eq(
        "the container's env is not used",
        v["env"]["FROM_CONFIG"].as_str(),
        None,
    );
    ctx.check_eq(
        "capabilities default to the container's",
        v["caps"]["bounding"].as_u64(),
        Some((1 << 5) | 1),
    );
    Ok(())
}

fn process_file_invalid(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    for (name, v, want) in [
        (
            "no-cwd.json",
            json!({"args": ["/bin/true"]}),
            "Cwd property must not be empty",
        ),
        (
            "relative-cwd.json",
            json!({"args": ["/bin/true"], "cwd": "tmp"}),
            "Cwd must be an absolute path",
        ),
        (
            "no-args.json",
            json!({"cwd": "/"}),
            "args must not be empty",
        ),
    ] {
        let ps = write_process(ctx, name, &v)?;
        let out = ctx.call(&["exec", "-p", &ps, &id])?;
        ctx.check_eq(format!("{name}: exit 255"), out.code, Some(255));
        ctx.check(
            format!("{name}: {want:?}"),
            out.stderr.contains(want),
            format!("stderr {:?}", out.stderr),
        );
    }
    Ok(())
}

fn runtime_error_255(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let missing = ctx.new_id();
    let out = ctx.call(&["exec", &missing, "/bin/true"])?;
    ctx.check_eq("unknown container: exit 255", out.code, Some(255));
    ctx.check(
        "unknown container: \"exec failed: container does not exist\"",
        out.stderr.contains("exec failed: container does not exist"),
        format!("stderr {:?}", out.stderr),
    );
    let out = ctx.call(&["exec", &id, "/no/such/binary"])?;
    ctx.check_eq("missing binary: exit 255", out.code, Some(255));
    let out = ctx.call(&["exec", &id, "/bin/sh", "-c", "exit 255"])?;
    ctx.check_eq("a process exiting 255 gives 255", out.code, Some(255));
    let out = ctx.call(&["exec", &id, "/bin/sh", "-c", "exit 3"])?;
    ctx.check_eq("a process exiting 3 gives 3", out.code, Some(3));
    let out = ctx.call(&["exec", &id, "/bin/sh", "-c", "kill -9 $$"])?;
    ctx.check_eq("a process killed by SIGKILL gives 137", out.code, Some(137));
    let b = ctx.bundle(&["/bin/true"])?;
    let done = ctx.start_ok(&b)?;
    ctx.wait_status(&done, "stopped", WAIT)?;
    let out = ctx.call(&["exec", &done, "/bin/true"])?;
    ctx.check_eq("stopped container: exit 255", out.code, Some(255));
    ctx.check(
        "stopped container: \"cannot exec in a stopped container\"",
        out.stderr.contains("cannot exec in a stopped container"),
        format!("stderr {:?}", out.stderr),
    );
    let out = ctx.call(&["exec", &done])?;
    ctx.check(
        "the state is checked before the arguments",
        out.code == Some(255) && out.stderr.contains("cannot exec in a stopped container"),
        format!("{}: stderr {:?}", out.status(), out.stderr),
    );
    Ok(())
}

fn pid_file_error(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let pf = ctx.work.join("no-such-dir/exec.pid");
    let pfs = pf.to_string_lossy().into_owned();
    let out = ctx.call(&[
        "exec",
        "--pid-file",
        &pfs,
        &id,
        "/bin/sh",
        "-c",
        "exec sleep 567",
    ])?;
    ctx.check_eq("exit 255", out.code, Some(255));
    ctx.check_eq("no pid file", pf.exists(), false);
    std::thread::sleep(Duration::from_millis(200));
    let out = ctx.call(&["ps", "--format", "json", &id])?;
    let pids: Vec<i64> = out
        .json()
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let left = pids.iter().any(|p| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("567"))
            .unwrap_or(false)
    });
    ctx.check(
        "the exec'd process is gone",
        !left,
        format!("pids {pids:?}"),
    );
    Ok(())
}

fn dev_null_owner(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let out = ctx.call(&["exec", "--user", "1000:1000", &id, "/bin/true"])?;
    ctx.check_ok("exec --user 1000:1000 succeeds", &out);
    let md = std::fs::metadata("/dev/null").map_err(io("stat", "/dev/null"))?;
    use std::os::unix::fs::MetadataExt;
    ctx.check_eq("/dev/null is still 0:0", (md.uid(), md.gid()), (0, 0));
    Ok(())
}

fn exec_preserve_fds(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let p = ctx.work.join("extra.txt");
    std::fs::write(&p, "through-fd-3").map_err(io("writing", &p))?;
    let opts = Invoke {
        extra_fds: vec![p],
        ..Invoke::default()
    };
    let out = ctx.call_with(
        &[
            "exec",
            "--preserve-fds",
            "1",
            &id,
            "/bin/cat",
            "/proc/self/fd/3",
        ],
        &opts,
    )?;
    ctx.check_ok("exec --preserve-fds 1 succeeds", &out);
    ctx.check_eq("fd 3 reads the file", out.stdout.trim(), "through-fd-3");
    let out = ctx.call_with(&["exec", &id, "/bin/checker", "fds"], &opts)?;
    let v: Value = out.json().unwrap_or(Value::Null);
    let mut fds: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    fds.sort();
    ctx.check_eq(
        "without it only 0, 1 and 2 are open",
        fds,
        vec!["0".to_string(), "1".to_string(), "2".to_string()],
    );
    Ok(())
}

fn exec_console_size(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let ps = write_process(
        ctx,
        "tty.json",
        &json!({
            "terminal": true, "consoleSize": {"height": 10, "width": 110}, "cwd": "/",
            "args": ["/bin/sh", "-c", "echo size=$(stty size) END"]
        }),
    )?;
    let sock = ctx.work.join("exec-console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).map_err(io("binding", &sock))?;
    let receiver =
        std::thread::spawn(move || super::io::receive_fd(&listener, Duration::from_secs(20)));
    let s = sock.to_string_lossy().into_owned();
    let out = ctx.call(&["exec", "-t", "-d", "--console-socket", &s, "-p", &ps, &id])?;
    ctx.check_ok("exec -d -t --console-socket -p succeeds", &out);
    let fd = receiver
        .join()
        .map_err(|_| crate::error::Error::Other("console receiver panicked".into()))??;
    let text = super::io::read_pty(fd, Duration::from_secs(10), |t| t.contains("END"));
    ctx.check(
        "stty size is 10 110",
        text.contains("size=10 110"),
        format!("terminal output {text:?}"),
    );
    Ok(())
}

fn tty_foreground(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let opts = Invoke {
        tty: true,
        timeout: Some(Duration::from_secs(20)),
        ..Invoke::default()
    };
    let out = ctx.call_with(
        &[
            "exec",
            "-t",
            &id,
            "/bin/sh",
            "-c",
            // runc sizes its foreground pty while the process already runs (an early
            // `stty size` fails or reads 0 0): ask until it answers, a second at most.
            "for i in 1 2 3 4 5 6 7 8 9 10; do s=$(stty size 2>/dev/null) && [ \"$s\" != \"0 0\" ] && break; sleep 0.1; done; \
             echo tty=$(readlink /proc/self/fd/0) size=$s; exit 4",
        ],
        &opts,
    )?;
    ctx.check_eq("the process's exit status is returned", out.code, Some(4));
    ctx.check(
        "the process's stdin is a /dev/pts terminal and its output is relayed",
        out.stdout.contains("tty=/dev/pts/"),
        format!("terminal output {:?}", out.stdout),
    );
    // runc 1.1 sometimes hands the process a pty whose size cannot be read at all for a
    // while (stty fails with ECHILD for the whole second): that is tolerated; a size that
    // is read must be the caller's.
    let unreadable = out.stdout.contains("size=\r") || out.stdout.contains("size=\n");
    ctx.check(
        "the pty has the caller's terminal size (24 80) once it can be read",
        unreadable || out.stdout.contains("size=24 80"),
        format!("terminal output {:?}", out.stdout),
    );
    Ok(())
}

fn cap_added(ctx: &mut Ctx) -> Result<()> {
    let id = running(ctx)?;
    let out = ctx
        .call(&["exec", "--cap", "CAP_NET_RAW", &id, "/bin/checker", "caps"])?
        .require()?;
    let v = out.json()?;
    let net_raw = 1u64 << 13;
    for set in ["permitted", "effective", "bounding"] {
        ctx.check(
            format!("CAP_NET_RAW is in the {set} set"),
            v[set].as_u64().unwrap_or(0) & net_raw != 0,
            format!("{v}"),
        );
    }
    Ok(())
}

fn sub_cgroup(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    // A sub-cgroup "sub" in every hierarchy the container has a directory in.
    let mut made = Vec::new();
    for h in ctx.host.all_hierarchies() {
        let d = h.join(b.cgroups_path.trim_start_matches('/'));
        if d.is_dir() {
            let s = d.join("sub");
            std::fs::create_dir(&s).map_err(io("creating", &s))?;
            // A v1 cpuset cgroup takes tasks only once it has cpus and mems.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(d.join(f)) {
                    let _ = std::fs::write(s.join(f), v.trim());
                }
            }
            made.push(s);
        }
    }
    let memory_line = |text: &str| {
        text.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == "memory"))
            })
            .unwrap_or("")
            .to_string()
    };
    let base = b.cgroups_path.clone();
    let out = ctx.call(&[
        "exec",
        "--cgroup",
        "sub",
        &id,
        "/bin/cat",
        "/proc/self/cgroup",
    ])?;
    ctx.check_ok("exec --cgroup sub succeeds", &out);
    let line = memory_line(&out.stdout);
    ctx.check(
        "the process is in <container>/sub (memory)",
        line.ends_with(&format!("{base}/sub")),
        format!("{:?}", out.stdout),
    );
    let out = ctx.call(&[
        "exec",
        "--cgroup",
        "memory:sub",
        &id,
        "/bin/cat",
        "/proc/self/cgroup",
    ])?;
    ctx.check_ok("exec --cgroup memory:sub succeeds", &out);
    ctx.check(
        "memory:sub puts it in <container>/sub for memory",
        memory_line(&out.stdout).ends_with(&format!("{base}/sub")),
        format!("{:?}", out.stdout),
    );
    let out = ctx.call(&[
        "exec",
        "--cgroup",
        "/",
        &id,
        "/bin/cat",
        "/proc/self/cgroup",
    ])?;
    ctx.check(
        "--cgroup / is the container's own cgroup",
        out.ok() && memory_line(&out.stdout).ends_with(&base),
        format!("{:?}", out.stdout),
    );
    let out = ctx.call(&["exec", "--cgroup", "..", &id, "/bin/true"])?;
    ctx.check_fails("--cgroup .. fails", &out);
    ctx.check(
        "with \"is not a sub cgroup path\"",
        out.stderr.contains("is not a sub cgroup path"),
        format!("stderr {:?}", out.stderr),
    );
    let out = ctx.call(&["exec", "--cgroup", "nonexistent", &id, "/bin/true"])?;
    ctx.check_fails("a missing sub-cgroup fails", &out);
    let out = ctx.call(&["exec", "--cgroup", "whaaat:/", &id, "/bin/true"])?;
    ctx.check_fails("an unknown controller fails", &out);
    // Leave nothing behind: the sub-cgroups are empty again once the processes exited.
    for s in made.iter().rev() {
        let _ = std::fs::remove_dir(s);
    }
    Ok(())
}

fn sub_cgroup_v2(ctx: &mut Ctx) -> Result<()> {
    ctx.use_cgroup2_view();
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let sub = ctx.v2_dir(&b)?.join("sub");
    std::fs::create_dir(&sub).map_err(io("creating", &sub))?;
    let out = ctx.call(&[
        "exec",
        "--cgroup",
        "sub",
        &id,
        "/bin/cat",
        "/proc/self/cgroup",
    ])?;
    ctx.check_ok("exec --cgroup sub succeeds", &out);
    let want = format!("0::{}/sub", b.cgroups_path);
    ctx.check(
        "the process is in <container>/sub",
        out.stdout.lines().any(|l| l == want),
        format!("want {want:?}: {:?}", out.stdout),
    );
    let out = ctx.call(&["exec", "--cgroup", "..", &id, "/bin/true"])?;
    ctx.check(
        "--cgroup .. fails: \"is not a sub cgroup path\"",
        !out.ok() && out.stderr.contains("is not a sub cgroup path"),
        format!("{}: stderr {:?}", out.status(), out.stderr),
    );
    let _ = std::fs::remove_dir(&sub);
    Ok(())
}

fn signal_zero(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let out = ctx.call(&["kill", &id, "0"])?;
    ctx.check_ok("kill 0 on a created container succeeds", &out);
    ctx.call(&["start", &id])?.require()?;
    let out = ctx.call(&["kill", &id, "0"])?;
    ctx.check_ok("kill 0 on a running container succeeds", &out);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("and leaves it running", st.as_str(), "running");
    ctx.call(&["kill", &id, "KILL"])?.require()?;
    ctx.wait_status(&id, "stopped", WAIT)?;
    let out = ctx.call(&["kill", &id, "0"])?;
    ctx.check_fails("kill 0 on a stopped container fails", &out);
    ctx.check(
        "with \"container not running\"",
        mentions(&out.stderr, &["container not running"]),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn all_stopped(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(&["/bin/true"])?;
    let id = ctx.start_ok(&b)?;
    ctx.wait_status(&id, "stopped", WAIT)?;
    let out = ctx.call(&["kill", "--all", &id, "KILL"])?;
    ctx.check_ok("kill --all KILL on a stopped container succeeds", &out);
    let out = ctx.call(&["kill", &id, "KILL"])?;
    ctx.check_fails("kill without --all on it fails", &out);
    Ok(())
}
