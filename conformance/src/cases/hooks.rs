//! Hooks: every kind runs, in the spec's order, with the state on stdin, args and env as
//! given; failures and timeouts of hooks fail the operation.

use super::{mentions, SLEEP};
use crate::bundle::Bundle;
use crate::case;
use crate::case::{Case, Ctx, Need};
use crate::error::Result;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// The hooks chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "hooks";
    vec![
        case!(C, "order", "prestart, createRuntime, createContainer, startContainer, poststart, poststop run in order", [], order),
        case!(C, "state-stdin", "each hook gets the container state JSON on stdin", [], state_stdin),
        case!(C, "args-env", "a hook gets its args (args[0] is argv[0]) and exactly its env", [], args_env),
        case!(C, "create-runtime-fails", "a failing createRuntime hook fails create and leaves no container", [], create_runtime_fails),
        case!(C, "prestart-fails", "a failing prestart hook fails create", [], prestart_fails),
        case!(C, "timeout", "a hook exceeding its timeout fails the operation", [], timeout),
        case!(C, "poststop-fails", "a failing poststop hook does not stop delete", [], poststop_fails),
        case!(C, "cwd", "runtime hooks run in the bundle, createContainer in the rootfs, startContainer in process.cwd", [], hook_cwd),
        case!(C, "start-container-seccomp", "startContainer hooks run under the container's seccomp filter (noNewPrivileges)", [Need::Seccomp], start_container_seccomp),
    ]
}

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook recording its name and stdin under the bundle's shared dir. Hooks that run inside
/// the container (startContainer; createContainer after pivot_root) use /shared instead.
fn recorder(host_dir: &Path, kind: &str) -> Value {
    let h = host_dir.display();
    let script = format!(
        "if [ -d {h} ]; then d={h}; else d=/shared; fi; cat > $d/state-{kind}.json; echo {kind} >> $d/hooks.log"
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

fn with_all_hooks(b: &mut Bundle) -> Result<std::path::PathBuf> {
    let shared = b.shared()?;
    let mut hooks = serde_json::Map::new();
    for k in KINDS {
        hooks.insert(k.to_string(), json!([recorder(&shared, k)]));
    }
    b.config["hooks"] = Value::Object(hooks);
    Ok(shared)
}

fn log_of(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_for_line(dir: &Path, line: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if log_of(dir).iter().any(|l| l == line) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn order(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    let dir = with_all_hooks(&mut b)?;
    b.sh("echo process >> /shared/hooks.log; exec sleep 600");
    let id = ctx.create_ok(&b)?;
    let after_create = log_of(&dir);
    ctx.check(
        "startContainer has not run before start",
        !after_create.iter().any(|l| l == "startContainer"),
        format!("{after_create:?}"),
    );
    ctx.call(&["start", &id])?.require()?;
    wait_for_line(&dir, "process", Duration::from_secs(5));
    wait_for_line(&dir, "poststart", Duration::from_secs(5));
    let before_delete = log_of(&dir);
    ctx.check(
        "poststop has not run before delete",
        !before_delete.iter().any(|l| l == "poststop"),
        format!("{before_delete:?}"),
    );
    ctx.call(&["delete", "--force", &id])?.require()?;
    wait_for_line(&dir, "poststop", Duration::from_secs(5));
    let log = log_of(&dir);
    let pos = |k: &str| log.iter().position(|l| l == k);
    for k in KINDS {
        ctx.check(
            format!("{k} ran once"),
            log.iter().filter(|l| *l == k).count() == 1,
            format!("{log:?}"),
        );
    }
    for (a, z) in [
        ("prestart", "createContainer"),
        ("createRuntime", "createContainer"),
        ("createContainer", "startContainer"),
        ("startContainer", "process"),
        ("poststart", "poststop"),
    ] {
        let ok = matches!((pos(a), pos(z)), (Some(x), Some(y)) if x < y);
        ctx.check(format!("{a} runs before {z}"), ok, format!("{log:?}"));
    }
    Ok(())
}

fn state_stdin(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    let dir = with_all_hooks(&mut b)?;
    let id = ctx.start_ok(&b)?;
    let pid = ctx.state(&id)?["pid"].as_i64().unwrap_or(-1);
    wait_for_line(&dir, "poststart", Duration::from_secs(5));
    ctx.call(&["delete", "--force", &id])?.require()?;
    wait_for_line(&dir, "poststop", Duration::from_secs(5));
    for k in KINDS {
        let text = std::fs::read_to_string(dir.join(format!("state-{k}.json"))).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        ctx.check_eq(
            format!("{k}: state id"),
            v["id"].as_str(),
            Some(id.as_str()),
        );
        match k {
            "prestart" | "createRuntime" | "poststart" => {
                ctx.check_eq(
                    format!("{k}: state pid is the container's"),
                    v["pid"].as_i64(),
                    Some(pid),
                );
            }
            // Hooks run in the container's pid namespace may see the pid translated.
            "createContainer" | "startContainer" => {
                let p = v["pid"].as_i64().unwrap_or(0);
                ctx.check(format!("{k}: state pid is set"), p > 0, format!("{v}"));
            }
            _ => {}
        }
        let bundle_ok = v["bundle"]
            .as_str()
            .map(|p| Path::new(p).canonicalize().ok() == b.dir.canonicalize().ok())
            .unwrap_or(false);
        ctx.check(format!("{k}: state bundle"), bundle_ok, format!("{v}"));
    }
    Ok(())
}

fn args_env(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&["/bin/true"])?;
    let dir = b.shared()?;
    let out = dir.join("out");
    let script = format!(
        "printf '%s|%s|%s|%s' \"$(head -c 8 /proc/$$/cmdline)\" \"$0\" \"$FOO\" \"${{HOME:-nohome}}\" > {}",
        out.display()
    );
    b.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh", "args": ["my-argv0", "-c", script, "zero"], "env": ["FOO=bar"]
    }]});
    let id = ctx.create_ok(&b)?;
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    ctx.check_eq(
        "argv0, args and env are as configured",
        text.trim(),
        "my-argv0|zero|bar|nohome",
    );
    let _ = id;
    Ok(())
}

fn failing(ctx: &mut Ctx, kind: &str) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    b.config["hooks"] =
        json!({kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-broke >&2; exit 7"]}]});
    let (id, out) = ctx.create(&b, &[])?;
    ctx.check_fails("create fails", &out);
    let st = ctx.call(&["state", &id])?;
    let left = st.ok() && st.json()?["status"] != "stopped";
    ctx.check("no live container is left", !left, st.stdout.clone());
    Ok(())
}

fn create_runtime_fails(ctx: &mut Ctx) -> Result<()> {
    failing(ctx, "createRuntime")
}

fn prestart_fails(ctx: &mut Ctx) -> Result<()> {
    failing(ctx, "prestart")
}

fn timeout(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    b.config["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]});
    let start = Instant::now();
    let (_, out) = ctx.create(&b, &[])?;
    let took = start.elapsed();
    ctx.check_fails("create fails", &out);
    ctx.check(
        "it fails soon after the timeout",
        took < Duration::from_secs(10),
        format!("took {took:?}"),
    );
    ctx.check(
        "the error mentions the timeout",
        mentions(&out.stderr, &["timed out", "timeout"]),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn poststop_fails(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(SLEEP)?;
    b.config["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 1"]}]});
    let id = ctx.start_ok(&b)?;
    ctx.call(&["kill", &id, "KILL"])?.require()?;
    ctx.wait_status(&id, "stopped", super::WAIT)?;
    let out = ctx.call(&["delete", &id])?;
    ctx.check_ok("delete succeeds", &out);
    let st = ctx.call(&["state", &id])?;
    ctx.check_fails("the container is gone", &st);
    Ok(())
}

fn hook_cwd(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&["/bin/true"])?;
    let dir = b.shared()?;
    let work = b.rootfs().join("work");
    std::fs::create_dir_all(&work).map_err(crate::error::io("creating", &work))?;
    b.config["process"]["cwd"] = json!("/work");
    let mut hooks = serde_json::Map::new();
    for k in KINDS {
        let out = if k == "startContainer" {
            format!("/shared/cwd-{k}")
        } else {
            dir.join(format!("cwd-{k}")).to_string_lossy().into_owned()
        };
        hooks.insert(
            k.to_string(),
            json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("pwd > {out}")]}]),
        );
    }
    b.config["hooks"] = Value::Object(hooks);
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let bundle = canon(&b.dir);
    let rootfs = canon(&b.rootfs());
    for k in KINDS {
        let got = std::fs::read_to_string(dir.join(format!("cwd-{k}"))).unwrap_or_default();
        let got = got.trim();
        let want = match k {
            "createContainer" => rootfs.to_string_lossy().into_owned(),
            "startContainer" => "/work".to_string(),
            _ => bundle.to_string_lossy().into_owned(),
        };
        ctx.check_eq(format!("{k} runs in {want}"), got, want.as_str());
    }
    Ok(())
}

fn start_container_seccomp(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&["/bin/true"])?;
    let dir = b.shared()?;
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    b.config["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c",
        "mkdir /tmp/from-hook 2>/dev/null && echo made > /shared/seccomp || echo denied > /shared/seccomp"]}]});
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    let got = std::fs::read_to_string(dir.join("seccomp")).unwrap_or_default();
    ctx.check_eq(
        "the hook's mkdir is denied by the filter",
        got.trim(),
        "denied",
    );
    Ok(())
}
