//! The `process` object of config.json: args, env, cwd, user, umask, rlimits, hostname,
//! oomScoreAdj; checked from inside with `checker facts`.

use crate::case;
use crate::case::{Case, Ctx};
use crate::error::Result;
use serde_json::{json, Value};

/// The process chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "process";
    vec![
        case!(
            C,
            "args",
            "process.args are passed verbatim, spaces included",
            [],
            args
        ),
        case!(
            C,
            "env",
            "process.env is the environment, and nothing from the runtime's leaks",
            [],
            env
        ),
        case!(C, "cwd", "process.cwd is the working directory", [], cwd),
        case!(
            C,
            "cwd-created",
            "a missing process.cwd is created",
            [],
            cwd_created
        ),
        case!(
            C,
            "user-uid-gid",
            "process.user uid and gid are applied",
            [],
            user_uid_gid
        ),
        case!(
            C,
            "additional-gids",
            "process.user.additionalGids become the supplementary groups",
            [],
            additional_gids
        ),
        case!(
            C,
            "root-groups",
            "without additionalGids a root process has no supplementary groups",
            [],
            root_groups
        ),
        case!(
            C,
            "home",
            "HOME is set from /etc/passwd when env has none (runc)",
            [],
            home
        ),
        case!(C, "umask", "process.user.umask is applied", [], umask),
        case!(
            C,
            "rlimits",
            "process.rlimits soft and hard values are set",
            [],
            rlimits
        ),
        case!(
            C,
            "rlimit-above-hard",
            "an rlimit above the caller's hard limit fails with an error naming rlimit",
            [],
            rlimit_above_hard
        ),
        case!(
            C,
            "hostname",
            "hostname is set in the new UTS namespace",
            [],
            hostname
        ),
        case!(
            C,
            "oom-score-adj",
            "process.oomScoreAdj is written for the process",
            [],
            oom_score_adj
        ),
        case!(
            C,
            "stdio-no-terminal",
            "with terminal false the process's stdio are not a tty",
            [],
            stdio_no_terminal
        ),
    ]
}

fn facts(ctx: &mut Ctx, setup: impl FnOnce(&mut Value)) -> Result<Value> {
    ctx.checker(&["facts"], |b| setup(&mut b.config))
}

fn args(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[
        "/bin/sh",
        "-c",
        "printf '%s|' \"$@\"",
        "argv0",
        "a b",
        "",
        "c",
    ])?;
    b.config["process"]["terminal"] = json!(false);
    let out = ctx.run(&b)?.require()?;
    ctx.check_eq("arguments arrive verbatim", out.stdout.as_str(), "a b||c|");
    Ok(())
}

fn env(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| {
        c["process"]["env"] = json!(["PATH=/bin", "ONE=1", "SPACED=two words", "EMPTY="]);
    })?;
    let env = &f["env"];
    ctx.check_eq("ONE=1", env["ONE"].as_str(), Some("1"));
    ctx.check_eq(
        "SPACED keeps its space",
        env["SPACED"].as_str(),
        Some("two words"),
    );
    ctx.check_eq("EMPTY is set and empty", env["EMPTY"].as_str(), Some(""));
    ctx.check_eq("PATH", env["PATH"].as_str(), Some("/bin"));
    let allowed = [
        "PATH",
        "ONE",
        "SPACED",
        "EMPTY",
        "HOME",
        "HOSTNAME",
        "container",
    ];
    let extra: Vec<String> = env
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !allowed.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    ctx.check(
        "no variable of the runtime's environment leaks in",
        extra.is_empty(),
        format!("extra {extra:?}"),
    );
    Ok(())
}

fn cwd(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| c["process"]["cwd"] = json!("/tmp"))?;
    ctx.check_eq("cwd is /tmp", f["cwd"].as_str(), Some("/tmp"));
    Ok(())
}

fn cwd_created(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| c["process"]["cwd"] = json!("/new/work/dir"))?;
    ctx.check_eq(
        "cwd /new/work/dir was created and entered",
        f["cwd"].as_str(),
        Some("/new/work/dir"),
    );
    Ok(())
}

fn user_uid_gid(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000})
    })?;
    let ids = &f["ids"];
    ctx.check_eq("uid 1000", ids["uid"].as_i64(), Some(1000));
    ctx.check_eq("euid 1000", ids["euid"].as_i64(), Some(1000));
    ctx.check_eq("gid 1000", ids["gid"].as_i64(), Some(1000));
    ctx.check_eq("egid 1000", ids["egid"].as_i64(), Some(1000));
    Ok(())
}

fn groups_of(f: &Value) -> Vec<i64> {
    let mut g: Vec<i64> = f["ids"]["groups"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    g.sort();
    g
}

fn additional_gids(ctx: &mut Ctx) -> Result<()> {
    let f =
        facts(
            ctx,
            |c| {
                c["process"]["user"] =
                    json!({"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]})
            },
        )?;
    let g = groups_of(&f);
    ctx.check(
        "groups include 2000 and 3000",
        g.contains(&2000) && g.contains(&3000),
        format!("groups {g:?}"),
    );
    Ok(())
}

fn root_groups(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |_| {})?;
    let g = groups_of(&f);
    ctx.check(
        "no supplementary groups beyond 0",
        g.iter().all(|x| *x == 0),
        format!("groups {g:?}"),
    );
    Ok(())
}

fn home(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["env"] = json!(["PATH=/bin"]);
    })?;
    ctx.check_eq(
        "HOME is /home/user",
        f["env"]["HOME"].as_str(),
        Some("/home/user"),
    );
    Ok(())
}

fn umask(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| c["process"]["user"]["umask"] = json!(0o027))?;
    ctx.check_eq("umask is 0027", f["umask"].as_str(), Some("0027"));
    let f = facts(ctx, |_| {})?;
    ctx.check_eq("default umask is 0022", f["umask"].as_str(), Some("0022"));
    Ok(())
}

fn rlimits(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512},
            {"type": "RLIMIT_NPROC", "soft": 100, "hard": 200},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}
        ])
    })?;
    let r = &f["rlimits"];
    for (name, soft, hard) in [
        ("RLIMIT_NOFILE", 256, 512),
        ("RLIMIT_NPROC", 100, 200),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_MSGQUEUE", 4096, 8192),
    ] {
        ctx.check_eq(
            format!("{name} is {soft}/{hard}"),
            (r[name]["soft"].as_i64(), r[name]["hard"].as_i64()),
            (Some(soft), Some(hard)),
        );
    }
    Ok(())
}

fn rlimit_above_hard(ctx: &mut Ctx) -> Result<()> {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, h)| h)
        .unwrap_or(u64::MAX);
    if hard == u64::MAX || hard >= (1 << 30) {
        return Err(ctx.skip("the caller's RLIMIT_NOFILE hard limit is unlimited or huge"));
    }
    let mut b = ctx.checker_bundle(&["rlimits"])?;
    b.config["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]);
    if caps_has_sys_resource() {
        return Err(
            ctx.skip("the suite has CAP_SYS_RESOURCE, so raising the hard limit is allowed")
        );
    }
    let out = ctx.run(&b)?;
    ctx.check_fails("run fails", &out);
    ctx.check(
        "the error mentions rlimit",
        super::mentions(&out.stderr, &["rlimit"]),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn caps_has_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .map(|mask| mask & (1 << 24) != 0)
        .unwrap_or(false)
}

fn hostname(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| c["hostname"] = json!("conformance-host"))?;
    ctx.check_eq("hostname", f["hostname"].as_str(), Some("conformance-host"));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    ctx.check(
        "the host's hostname is unchanged",
        host.trim() != "conformance-host",
        host,
    );
    Ok(())
}

fn oom_score_adj(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |c| c["process"]["oomScoreAdj"] = json!(500))?;
    ctx.check_eq(
        "oom_score_adj is 500",
        f["oom_score_adj"].as_str(),
        Some("500"),
    );
    let f = facts(ctx, |c| c["process"]["oomScoreAdj"] = json!(1000))?;
    ctx.check_eq(
        "oom_score_adj is 1000",
        f["oom_score_adj"].as_str(),
        Some("1000"),
    );
    Ok(())
}

fn stdio_no_terminal(ctx: &mut Ctx) -> Result<()> {
    let f = facts(ctx, |_| {})?;
    for fd in ["0", "1", "2"] {
        let link = f["stdio"][fd].as_str().unwrap_or("").to_string();
        ctx.check(
            format!("fd {fd} is not a pty"),
            !link.starts_with("/dev/pts"),
            link,
        );
    }
    Ok(())
}
