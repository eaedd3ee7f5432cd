//! Security settings of the process: capabilities, noNewPrivileges, seccomp, AppArmor and
//! SELinux labels.

use crate::case;
use crate::case::{Case, Ctx, Need};
use crate::error::Result;
use serde_json::{json, Value};

/// The security chapter.
pub fn cases() -> Vec<Case> {
    const C: &str = "security";
    vec![
        case!(
            C,
            "caps-root",
            "a root process gets exactly the bounding set, no inheritable caps",
            [],
            caps_root
        ),
        case!(
            C,
            "caps-ambient",
            "a non-root process keeps only its ambient caps across exec",
            [],
            caps_ambient
        ),
        case!(
            C,
            "caps-enforced",
            "a capability missing from the sets is really denied (chown)",
            [],
            caps_enforced
        ),
        case!(
            C,
            "unknown-capability-warned",
            "an unknown capability name is logged as a warning naming it and the container runs without it",
            [],
            unknown_capability_warned
        ),
        case!(
            C,
            "no-new-privileges",
            "noNewPrivileges true/false sets NoNewPrivs",
            [],
            no_new_privileges
        ),
        case!(
            C,
            "seccomp-errno",
            "seccomp SCMP_ACT_ERRNO with errnoRet fails the syscall with that errno",
            [Need::Seccomp],
            seccomp_errno
        ),
        case!(
            C,
            "seccomp-kill",
            "seccomp SCMP_ACT_KILL kills the process with SIGSYS",
            [Need::Seccomp],
            seccomp_kill
        ),
        case!(
            C,
            "seccomp-allowlist",
            "defaultAction SCMP_ACT_ERRNO with an allow list denies the rest",
            [Need::Seccomp],
            seccomp_allowlist
        ),
        case!(
            C,
            "seccomp-notify",
            "SCMP_ACT_NOTIFY hands the listener and the containerProcessState to the agent at listenerPath, which answers the syscall",
            [Need::Seccomp],
            seccomp_notify
        ),
        case!(
            C,
            "apparmor",
            "process.apparmorProfile is applied",
            [Need::AppArmor],
            apparmor
        ),
        case!(C, "selinux", "process.selinuxLabel is applied", [], selinux),
    ]
}

const CHOWN: u64 = 1 << 0;
const KILL: u64 = 1 << 5;
const NET_BIND: u64 = 1 << 10;

fn caps(f: &Value, set: &str) -> Option<u64> {
    f["caps"][set].as_u64()
}

fn caps_root(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["facts"], |b| {
        b.config["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"]
        });
    })?;
    ctx.check_eq(
        "bounding is CHOWN|KILL",
        caps(&f, "bounding"),
        Some(CHOWN | KILL),
    );
    ctx.check_eq(
        "effective is CHOWN|KILL",
        caps(&f, "effective"),
        Some(CHOWN | KILL),
    );
    ctx.check_eq(
        "permitted is CHOWN|KILL",
        caps(&f, "permitted"),
        Some(CHOWN | KILL),
    );
    ctx.check_eq("inheritable is empty", caps(&f, "inheritable"), Some(0));
    ctx.check_eq("ambient is empty", caps(&f, "ambient"), Some(0));
    Ok(())
}

fn caps_ambient(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["facts"], |b| {
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
    })?;
    ctx.check_eq(
        "ambient is NET_BIND_SERVICE",
        caps(&f, "ambient"),
        Some(NET_BIND),
    );
    ctx.check_eq(
        "effective is NET_BIND_SERVICE only",
        caps(&f, "effective"),
        Some(NET_BIND),
    );
    ctx.check_eq(
        "permitted is NET_BIND_SERVICE only",
        caps(&f, "permitted"),
        Some(NET_BIND),
    );
    ctx.check_eq(
        "inheritable is NET_BIND_SERVICE",
        caps(&f, "inheritable"),
        Some(NET_BIND),
    );
    ctx.check_eq(
        "bounding is KILL|NET_BIND_SERVICE",
        caps(&f, "bounding"),
        Some(KILL | NET_BIND),
    );
    Ok(())
}

fn caps_enforced(ctx: &mut Ctx) -> Result<()> {
    let script = "touch /tmp/f && chown 1000 /tmp/f && echo chowned";
    let mut b = ctx.bundle(&[])?;
    b.sh(script);
    let out = ctx.run(&b)?;
    ctx.check(
        "without CAP_CHOWN chown fails",
        !out.stdout.contains("chowned") && !out.ok(),
        format!("{out:?}"),
    );
    let mut b = ctx.bundle(&[])?;
    b.sh(script);
    let all = json!(["CAP_CHOWN", "CAP_KILL"]);
    b.config["process"]["capabilities"] =
        json!({"bounding": all, "effective": all, "permitted": all});
    let out = ctx.run(&b)?;
    ctx.check(
        "with CAP_CHOWN chown works",
        out.stdout.contains("chowned"),
        format!("{out:?}"),
    );
    Ok(())
}

fn no_new_privileges(ctx: &mut Ctx) -> Result<()> {
    let f = ctx.checker(&["facts"], |b| {
        b.config["process"]["noNewPrivileges"] = json!(true)
    })?;
    ctx.check_eq("NoNewPrivs is 1", f["no_new_privs"].as_str(), Some("1"));
    let f = ctx.checker(&["facts"], |b| {
        b.config["process"]["noNewPrivileges"] = json!(false)
    })?;
    ctx.check_eq("NoNewPrivs is 0", f["no_new_privs"].as_str(), Some("0"));
    Ok(())
}

fn seccomp_errno(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    b.sh("grep Seccomp: /proc/self/status; mkdir /tmp/denied; echo rc=$?");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    let out = ctx.run(&b)?;
    ctx.check(
        "the filter is installed (Seccomp: 2)",
        out.stdout.contains("Seccomp:\t2"),
        format!("{out:?}"),
    );
    ctx.check(
        "mkdir fails",
        out.stdout.contains("rc=1"),
        format!("{out:?}"),
    );
    ctx.check(
        "with errno 13 (Permission denied)",
        out.stderr.contains("Permission denied"),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}

fn seccomp_notify(ctx: &mut Ctx) -> Result<()> {
    let agent = crate::agent::Agent::start(&ctx.work)
        .map_err(|e| ctx.skip(format!("cannot host a seccomp agent: {e}")))?;
    let mut b = ctx.bundle(&[])?;
    b.sh("mkdir /tmp/made; echo rc=$?; if [ -d /tmp/made ]; then echo made; else echo absent; fi");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path,
        "listenerMetadata": "conformance",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let out = ctx.run(&b)?;
    ctx.check_ok("run", &out);
    ctx.check(
        "the agent's answer reaches the container (mkdir succeeds, nothing is made)",
        out.stdout.contains("rc=0") && out.stdout.contains("absent"),
        format!("{out:?}"),
    );
    let states = agent.states();
    let st = states.first().cloned().unwrap_or(Value::Null);
    ctx.check(
        "one containerProcessState per listener",
        states.len() == 1,
        format!("{states:?}"),
    );
    ctx.check(
        "fds names the listener seccompFd",
        st["fds"] == json!(["seccompFd"]),
        format!("{st}"),
    );
    ctx.check(
        "metadata is listenerMetadata",
        st["metadata"] == json!("conformance"),
        format!("{st}"),
    );
    ctx.check(
        "pid and the state (status creating) are given",
        st["pid"].as_i64().unwrap_or(0) > 0
            && st["state"]["status"] == json!("creating")
            && st["state"]["id"].as_str().is_some_and(|s| !s.is_empty()),
        format!("{st}"),
    );
    ctx.check(
        "the agent answered the notified mkdir",
        !agent.answered().is_empty(),
        format!("{:?}", agent.answered()),
    );
    Ok(())
}

fn seccomp_kill(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&["/bin/uname"])?;
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL"}]
    });
    let out = ctx.run(&b)?;
    ctx.check_eq(
        "the process dies of SIGSYS (status 159)",
        out.code,
        Some(159),
    );
    ctx.check(
        "it printed nothing",
        out.stdout.trim().is_empty(),
        format!("{out:?}"),
    );
    Ok(())
}

fn seccomp_allowlist(ctx: &mut Ctx) -> Result<()> {
    // Allow everything busybox's sh, echo and the runtime's final exec need, except mkdir*.
    let mut b = ctx.bundle(&[])?;
    b.sh("echo alive; mkdir /tmp/x 2>/dev/null || echo denied");
    let allowed = [
        "execve",
        "execveat",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "mmap",
        "munmap",
        "mprotect",
        "read",
        "write",
        "writev",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getpid",
        "getppid",
        "getpgrp",
        "setpgid",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "fcntl",
        "dup2",
        "dup3",
        "exit",
        "exit_group",
        "wait4",
        "clone",
        "clone3",
        "fork",
        "vfork",
        "uname",
        "getcwd",
        "readlink",
        "access",
        "faccessat",
        "faccessat2",
        "futex",
        "getrandom",
        "sigaltstack",
        "capget",
        "capset",
        "prctl",
        "setgroups",
        "setuid",
        "setgid",
        "setresuid",
        "setresgid",
        "chdir",
        "fchdir",
        "getdents64",
        "lseek",
        "pread64",
        "statx",
        "sched_getaffinity",
        "getrlimit",
        "setrlimit",
        "pipe",
        "pipe2",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "madvise",
        "mremap",
        "close_range",
        "umask",
        "kill",
        "tgkill",
        "gettid",
        "getpgid",
        "setsid",
        "epoll_pwait",
        "nanosleep",
        "clock_nanosleep",
        "epoll_create1",
        "epoll_ctl",
        "epoll_wait",
        "socket",
        "connect",
        "fchown",
        "fchmod",
        "fchownat",
        "fchmodat",
        "sysinfo",
        "times",
        "getgroups",
        "membarrier",
        "fstatfs",
        "statfs",
        "seccomp",
        "keyctl",
        "setns",
        "unshare",
        "getxattr",
        "lgetxattr",
        "fsetxattr",
    ];
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"}]
    });
    let out = ctx.run(&b)?;
    ctx.check(
        "allowed syscalls work",
        out.stdout.contains("alive"),
        format!("{out:?}"),
    );
    ctx.check(
        "an unlisted syscall (mkdir) is denied",
        out.stdout.contains("denied"),
        format!("{out:?}"),
    );
    Ok(())
}

fn apparmor(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&["/bin/cat", "/proc/self/attr/current"])?;
    b.config["process"]["apparmorProfile"] = json!("unconfined");
    let out = ctx.run(&b)?;
    ctx.check_ok("run with apparmorProfile unconfined succeeds", &out);
    ctx.check(
        "the label is unconfined",
        out.stdout.contains("unconfined"),
        format!("{out:?}"),
    );
    Ok(())
}

fn selinux(ctx: &mut Ctx) -> Result<()> {
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        return Err(ctx.skip("SELinux is not enabled in this kernel"));
    }
    let mut b = ctx.bundle(&["/bin/cat", "/proc/self/attr/current"])?;
    b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    let out = ctx.run(&b)?;
    ctx.check(
        "the label is applied",
        out.stdout.contains("container_t"),
        format!("{out:?}"),
    );
    Ok(())
}

fn unknown_capability_warned(ctx: &mut Ctx) -> Result<()> {
    let mut b = ctx.bundle(&[])?;
    for set in ["bounding", "effective", "permitted"] {
        if let Some(list) = b.config["process"]["capabilities"][set].as_array_mut() {
            list.push(json!("CAP_BERTH_TEST"));
        }
    }
    b.sh("grep CapBnd /proc/self/status");
    let out = ctx.run(&b)?;
    ctx.check_ok("run succeeds", &out);
    ctx.check(
        "the process has a bounding set",
        out.stdout.contains("CapBnd"),
        format!("{out:?}"),
    );
    ctx.check(
        "a warning names the capability",
        out.stderr.contains("level=warning") && out.stderr.contains("CAP_BERTH_TEST"),
        format!("stderr {:?}", out.stderr),
    );
    Ok(())
}
