//! runc's command-line contract beyond the spec: global flags, exit codes, JSON log lines,
//! `spec`, `list`, `features` and error messages that callers (podman, containerd) rely on.

use super::{mentions, SLEEP, WAIT};
use crate::case;
use crate::case::{Case, Ctx};
use crate::error::{io, Result};
use crate::runtime::Invoke;
use serde_json::Value;

/// The CLI chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "cli";
    vec![
        case!(
            C,
            "version",
            "--version exits 0 and prints a version line",
            [],
            version
        ),
        case!(
            C,
            "help",
            "--help exits 0 and lists the lifecycle commands",
            [],
            help
        ),
        case!(
            C,
            "unknown-command",
            "an unknown command exits non-zero",
            [],
            unknown_command
        ),
        case!(
            C,
            "error-exit-status",
            "an operation error exits with status 1",
            [],
            error_exit_status
        ),
        case!(
            C,
            "log-json",
            "--log F --log-format json writes error lines with level, msg and time",
            [],
            log_json
        ),
        case!(
            C,
            "spec",
            "spec writes a default config.json to --bundle",
            [],
            spec
        ),
        case!(
            C,
            "spec-exists",
            "spec refuses to overwrite an existing config.json",
            [],
            spec_exists
        ),
        case!(
            C,
            "spec-rootless",
            "spec --rootless adds a user namespace with mappings",
            [],
            spec_rootless
        ),
        case!(
            C,
            "list",
            "list shows the container in the table, -q and --format json",
            [],
            list
        ),
        case!(
            C,
            "features",
            "features prints JSON with ociVersionMin/Max and hooks",
            [],
            features
        ),
        case!(
            C,
            "root-isolation",
            "containers are only visible under their own --root",
            [],
            root_isolation
        ),
        case!(
            C,
            "error-messages",
            "runc's error texts for wrong-state operations",
            [],
            error_messages
        ),
    ]
}

fn version(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.call(&["--version"])?;
    ctx.check_ok("--version exits 0", &out);
    let first = out.stdout.lines().next().unwrap_or("").to_string();
    ctx.check(
        "first line names a version",
        first.contains("version"),
        format!("{first:?}"),
    );
    ctx.check(
        "a spec line is printed",
        out.stdout.lines().any(|l| l.starts_with("spec")),
        format!("{:?}", out.stdout),
    );
    Ok(())
}

fn help(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.call(&["--help"])?;
    ctx.check_ok("--help exits 0", &out);
    let text = format!("{}{}", out.stdout, out.stderr);
    for cmd in ["create", "start", "state", "kill", "delete"] {
        ctx.check(
            format!("help lists {cmd}"),
            text.contains(cmd),
            "missing".to_string(),
        );
    }
    Ok(())
}

fn unknown_command(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.call(&["no-such-command"])?;
    ctx.check_fails("an unknown command fails", &out);
    Ok(())
}

fn error_exit_status(ctx: &mut Ctx) -> Result<()> {
    let id = ctx.new_id();
    let out = ctx.call(&["state", &id])?;
    ctx.check_eq("state of a missing container exits 1", out.code, Some(1));
    let out = ctx.call(&["kill", &id, "KILL"])?;
    ctx.check_eq("kill of a missing container exits 1", out.code, Some(1));
    Ok(())
}

fn log_json(ctx: &mut Ctx) -> Result<()> {
    let log = ctx.work.join("runtime.log");
    let opts = Invoke {
        global: vec![
            "--log".into(),
            log.to_string_lossy().into_owned(),
            "--log-format".into(),
            "json".into(),
        ],
        ..Invoke::default()
    };
    let id = ctx.new_id();
    let out = ctx.call_with(&["state", &id], &opts)?;
    ctx.check_fails("state of a missing container fails", &out);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let all_json = text.lines().filter(|l| !l.trim().is_empty()).count() == lines.len();
    ctx.check(
        "every log line is JSON",
        all_json && !lines.is_empty(),
        format!("log {text:?}"),
    );
    let err = lines.iter().find(|l| l["level"] == "error");
    ctx.check(
        "an error line is logged",
        err.is_some(),
        format!("log {text:?}"),
    );
    if let Some(e) = err {
        let msg = e["msg"].as_str().unwrap_or("");
        ctx.check("it has a non-empty msg", !msg.is_empty(), format!("{e}"));
        let time = e["time"].as_str().unwrap_or("");
        ctx.check(
            "it has an RFC 3339 time",
            time.len() >= 20 && time.contains('T'),
            format!("{e}"),
        );
    }
    Ok(())
}

fn spec(ctx: &mut Ctx) -> Result<()> {
    let dir = ctx.work.join("spec");
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let d = dir.to_string_lossy().into_owned();
    let out = ctx.call(&["spec", "--bundle", &d])?;
    ctx.check_ok("spec succeeds", &out);
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    ctx.check(
        "config.json is written as JSON",
        v.is_object(),
        format!("{text:.200}"),
    );
    ctx.check(
        "it has an ociVersion",
        v["ociVersion"]
            .as_str()
            .map(|s| s.starts_with("1."))
            .unwrap_or(false),
        format!("{}", v["ociVersion"]),
    );
    ctx.check_eq(
        "root.path is rootfs",
        v["root"]["path"].as_str(),
        Some("rootfs"),
    );
    ctx.check_eq(
        "process.args is [sh]",
        v["process"]["args"].clone(),
        serde_json::json!(["sh"]),
    );
    let has_ns = |t: &str| {
        v["linux"]["namespaces"]
            .as_array()
            .map(|a| a.iter().any(|n| n["type"] == t))
            .unwrap_or(false)
    };
    let all = ["pid", "network", "ipc", "uts", "mount"]
        .iter()
        .all(|t| has_ns(t));
    ctx.check(
        "it unshares pid, network, ipc, uts, mount",
        all,
        format!("{}", v["linux"]["namespaces"]),
    );
    Ok(())
}

fn spec_exists(ctx: &mut Ctx) -> Result<()> {
    let dir = ctx.work.join("spec");
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let p = dir.join("config.json");
    std::fs::write(&p, "{}").map_err(io("writing", &p))?;
    let d = dir.to_string_lossy().into_owned();
    let out = ctx.call(&["spec", "--bundle", &d])?;
    ctx.check_fails("spec with an existing config.json fails", &out);
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    ctx.check_eq("the file is unchanged", text.as_str(), "{}");
    Ok(())
}

fn spec_rootless(ctx: &mut Ctx) -> Result<()> {
    let dir = ctx.work.join("spec");
    std::fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
    let d = dir.to_string_lossy().into_owned();
    let out = ctx.call(&["spec", "--rootless", "--bundle", &d])?;
    ctx.check_ok("spec --rootless succeeds", &out);
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let user = v["linux"]["namespaces"]
        .as_array()
        .map(|a| a.iter().any(|n| n["type"] == "user"))
        .unwrap_or(false);
    ctx.check(
        "it has a user namespace",
        user,
        format!("{}", v["linux"]["namespaces"]),
    );
    let maps = v["linux"]["uidMappings"]
        .as_array()
        .map(|a| !a.is_empty())
        .unwrap_or(false);
    ctx.check(
        "it has uid mappings",
        maps,
        format!("{}", v["linux"]["uidMappings"]),
    );
    Ok(())
}

fn list(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["list"])?;
    ctx.check_ok("list succeeds", &out);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or("")
        .to_string();
    ctx.check(
        "the table has a row with the id and running",
        row.contains("running"),
        format!("{:?}", out.stdout),
    );
    ctx.check(
        "the table has an ID header",
        out.stdout
            .lines()
            .next()
            .map(|l| l.starts_with("ID"))
            .unwrap_or(false),
        format!("{:?}", out.stdout),
    );
    let out = ctx.call(&["list", "-q"])?;
    ctx.check_eq("list -q prints only ids", out.stdout.trim(), id.as_str());
    let out = ctx.call(&["list", "--format", "json"])?;
    let v = out.json()?;
    let item = v
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id.as_str()))
        .cloned();
    ctx.check(
        "list --format json has the container",
        item.is_some(),
        format!("{v}"),
    );
    if let Some(it) = item {
        ctx.check_eq(
            "its status is running",
            it["status"].as_str(),
            Some("running"),
        );
        ctx.check(
            "it has pid and bundle",
            it["pid"].as_i64().unwrap_or(0) > 0 && it["bundle"].is_string(),
            format!("{it}"),
        );
    }
    Ok(())
}

fn features(ctx: &mut Ctx) -> Result<()> {
    let out = ctx.call(&["features"])?;
    if !out.ok()
        && mentions(
            &out.stderr,
            &["no help topic", "unknown command", "no such command"],
        )
    {
        return Err(ctx.skip("this runtime version has no `features` command"));
    }
    ctx.check_ok("features succeeds", &out);
    let v = out.json()?;
    ctx.check(
        "ociVersionMin is set",
        v["ociVersionMin"].is_string(),
        format!("{v:.300}"),
    );
    ctx.check(
        "ociVersionMax is set",
        v["ociVersionMax"].is_string(),
        format!("{v:.300}"),
    );
    let hooks = v["hooks"]
        .as_array()
        .map(|a| a.iter().any(|h| h == "createRuntime"))
        .unwrap_or(false);
    ctx.check(
        "hooks lists createRuntime",
        hooks,
        format!("{}", v["hooks"]),
    );
    Ok(())
}

fn root_isolation(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.create_ok(&b)?;
    let other = ctx.work.join("other-root");
    std::fs::create_dir_all(&other).map_err(io("creating", &other))?;
    let saved = ctx.rt.root.clone();
    ctx.rt.root = other;
    let out = ctx.call(&["state", &id]);
    ctx.rt.root = saved;
    let out = out?;
    ctx.check_fails("state under another --root does not find it", &out);
    let st = ctx.status_of(&id)?;
    ctx.check_eq("state under its own --root does", st.as_str(), "created");
    Ok(())
}

fn error_messages(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.bundle(SLEEP)?;
    let id = ctx.start_ok(&b)?;
    let out = ctx.call(&["start", &id])?;
    ctx.check(
        "start of a running container: \"cannot start an already running container\"",
        out.stderr
            .contains("cannot start an already running container"),
        format!("stderr {:?}", out.stderr),
    );
    let out = ctx.call(&["delete", &id])?;
    ctx.check(
        "delete of a running one: \"cannot delete container ... that is not stopped\"",
        out.stderr.contains("that is not stopped"),
        format!("stderr {:?}", out.stderr),
    );
    ctx.call(&["kill", &id, "KILL"])?.require()?;
    ctx.wait_status(&id, "stopped", WAIT)?;
    let out = ctx.call(&["kill", &id, "KILL"])?;
    ctx.check(
        "kill of a stopped one: \"container not running\"",
        out.stderr.contains("container not running"),
        format!("stderr {:?}", out.stderr),
    );
    let out = ctx.call(&["start", &id])?;
    ctx.check(
        "start of a stopped one: \"cannot start a container that has stopped\"",
        out.stderr
            .contains("cannot start a container that has stopped"),
        format!("stderr {:?}", out.stderr),
    );
    let missing = ctx.new_id();
    let out = ctx.call(&["state", &missing])?;
    ctx.check(
        "state of an unknown id: \"container does not exist\"",
        out.stderr.contains("container does not exist"),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}
