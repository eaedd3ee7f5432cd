//! `linux.seccomp`: filters installed in the container's processes (init and exec), with and
//! without noNewPrivileges, and profiles refused with an error naming the field.

mod common;
use common::*;
use serde_json::{json, Value};

fn with_seccomp(w: &World, args: &[&str], seccomp: Value, no_new_privs: bool) {
    let mut c = w.base_config(args);
    c["linux"]["seccomp"] = seccomp;
    c["process"]["noNewPrivileges"] = json!(no_new_privs);
    w.write_config(&c);
}

fn deny_mkdir(errno: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"});
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

const MKDIR: &str = "grep Seccomp: /proc/self/status; mkdir /tmp/denied; echo rc=$?";

#[test]
fn errno_rule_fails_the_syscall_with_the_chosen_errno() {
    if !can_run() {
        return;
    }
    for (errno, msg, nnp) in [
        (Some(28), "No space left on device", true),
        (Some(13), "Permission denied", false),
        (None, "Operation not permitted", true),
    ] {
        let w = World::new(&["true"]);
        with_seccomp(&w, &["sh", "-c", MKDIR], deny_mkdir(errno), nnp);
        let (code, out, err) = w.run("errno");
        assert_eq!(code, 0, "{out} {err}");
        assert!(out.contains("Seccomp:\t2"), "{out}");
        assert!(out.contains("rc=1"), "{out}");
        assert!(err.contains(msg), "errno {errno:?}: {err}");
        assert!(!w.bundle.join("rootfs/tmp/denied").exists());
        w.assert_clean();
    }
}

#[test]
fn kill_process_rule_kills_with_sigsys() {
    if !can_run() {
        return;
    }
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL"] {
        let w = World::new(&["true"]);
        let seccomp = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["uname"], "action": action}]});
        with_seccomp(&w, &["uname"], seccomp, true);
        let (code, out, err) = w.run("kill");
        assert_eq!(code, 128 + libc::SIGSYS, "{action}: {out} {err}");
        assert!(out.is_empty(), "{out}");
        w.assert_clean();
    }
}

/// What busybox sh, echo and the final execve need; everything else fails with EPERM.
const ALLOWED: &[&str] = &[
    "execve",
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
    "chdir",
    "fchdir",
    "getdents64",
    "lseek",
    "statx",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "madvise",
    "kill",
    "tgkill",
    "gettid",
    "getpgid",
    "sysinfo",
];

#[test]
fn allowlist_profile_runs_busybox() {
    if !can_run() {
        return;
    }
    let w = World::new(&["true"]);
    let seccomp = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}]});
    with_seccomp(
        &w,
        &[
            "sh",
            "-c",
            "echo alive; mkdir /tmp/x 2>/dev/null || echo denied",
        ],
        seccomp,
        true,
    );
    let out = w.run_ok("allow");
    assert_eq!(out, "alive\ndenied\n");
    w.assert_clean();
}

#[test]
fn argument_conditions_select_the_calls() {
    if !can_run() {
        return;
    }
    // personality(PER_LINUX32) is denied, personality(PER_LINUX) is not.
    let w = World::new(&["true"]);
    let seccomp = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]});
    with_seccomp(
        &w,
        &[
            "sh",
            "-c",
            "linux64 echo plain; linux32 echo compat; echo rc=$?",
        ],
        seccomp,
        false,
    );
    let (code, out, err) = w.run("args");
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("plain\n"), "{out}");
    assert!(!out.contains("compat"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(err.contains("Invalid argument"), "{err}");
    w.assert_clean();
}

#[test]
fn exec_gets_the_containers_filter() {
    if !can_run() {
        return;
    }
    for nnp in [true, false] {
        let w = World::new(&["true"]);
        with_seccomp(&w, &["sleep", "100"], deny_mkdir(Some(28)), nnp);
        let id = w.id("exec");
        let bundle = w.bundle.to_string_lossy().into_owned();
        let (code, _, err) = w.detached(&["run", "-d", "--bundle", &bundle, &id]);
        assert_eq!(code, 0, "run -d: {err}");
        let (code, out, err) = decode(
            w.berth()
                .args(["exec", &id, "sh", "-c", MKDIR])
                .output()
                .unwrap(),
        );
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("Seccomp:\t2") && out.contains("rc=1"), "{out}");
        assert!(err.contains("No space left on device"), "{err}");
        let (code, _, err) = decode(w.berth().args(["delete", "--force", &id]).output().unwrap());
        assert_eq!(code, 0, "{err}");
        w.assert_clean();
    }
}

#[test]
fn bad_profiles_are_refused_naming_the_field() {
    if !can_run() {
        return;
    }
    let rule = |extra: Value| {
        let mut r = json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, r]})
    };
    let cases = [
        (
            rule(json!({"action": "SCMP_ACT_BOGUS"})),
            "linux.seccomp.syscalls[1].action",
        ),
        (
            rule(json!({"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]})),
            "linux.seccomp.syscalls[1].args[0].op",
        ),
        (
            rule(json!({"args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]})),
            "linux.seccomp.syscalls[1].args[0].index",
        ),
        (
            rule(json!({"errnoRet": 100000})),
            "linux.seccomp.syscalls[1].errnoRet",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}),
            "linux.seccomp.architectures[0]",
        ),
    ];
    for (seccomp, field) in cases {
        let w = World::new(&["true"]);
        with_seccomp(&w, &["true"], seccomp, true);
        let (code, out, err) = w.run("bad");
        assert_ne!(code, 0, "{out}");
        assert!(err.contains(field), "{err:?} does not name {field}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        w.assert_clean();
    }
}
