//! Compiler tests: profiles are compiled and the program is run in the interpreter of
//! `bpf::interp` on synthetic `seccomp_data`, and compared with a direct model of the semantics.

use super::bpf::interp::{run, Data};
use super::*;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompOperator as Op};
use serde_json::{json, Value};

const X86_64: u32 = AUDIT_ARCH_X86_64;
const I386: u32 = AUDIT_ARCH_I386;
const AARCH64: u32 = 0xc000_00b7;
const EPERM: u32 = RET_ERRNO | 1;
const ENOSYS: u32 = RET_ERRNO | 38;

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn filter(v: Value) -> Filter {
    compile(&profile(v)).unwrap()
}

fn err(v: Value) -> String {
    compile(&profile(v)).unwrap_err().to_string()
}

fn nr(name: &str) -> u32 {
    syscall_number(name).unwrap_or_else(|| panic!("{name} not in the x86_64 table"))
}

fn call(f: &Filter, arch: u32, nr: u32, args: &[u64]) -> u32 {
    let mut d = Data {
        nr,
        arch,
        ip: 0x7fff_1234_5678,
        ..Default::default()
    };
    d.args[..args.len()].copy_from_slice(args);
    run(f.program(), &d)
}

fn sys(f: &Filter, name: &str, args: &[u64]) -> u32 {
    call(f, X86_64, nr(name), args)
}

#[test]
fn errno_rule_and_default_allow() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    }));
    assert_eq!(sys(&f, "mkdir", &[]), RET_ERRNO | 13);
    assert_eq!(sys(&f, "mkdirat", &[]), RET_ERRNO | 13);
    assert_eq!(sys(&f, "read", &[]), RET_ALLOW);
    assert_eq!(call(&f, X86_64, 100_000, &[]), RET_ALLOW);
    assert_eq!(f.flags(), 0);
}

#[test]
fn every_action_has_its_return_value() {
    let cases = [
        (json!({"action": "SCMP_ACT_KILL"}), RET_KILL_THREAD),
        (json!({"action": "SCMP_ACT_KILL_THREAD"}), RET_KILL_THREAD),
        (json!({"action": "SCMP_ACT_KILL_PROCESS"}), RET_KILL_PROCESS),
        (json!({"action": "SCMP_ACT_TRAP"}), RET_TRAP),
        (json!({"action": "SCMP_ACT_ERRNO"}), EPERM),
        (
            json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 0}),
            RET_ERRNO,
        ),
        (
            json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 4095}),
            RET_ERRNO | 4095,
        ),
        (json!({"action": "SCMP_ACT_TRACE"}), RET_TRACE | 1),
        (
            json!({"action": "SCMP_ACT_TRACE", "errnoRet": 7}),
            RET_TRACE | 7,
        ),
        (json!({"action": "SCMP_ACT_LOG"}), RET_LOG),
        (json!({"action": "SCMP_ACT_ALLOW"}), RET_ALLOW),
    ];
    for (mut rule, want) in cases {
        rule["names"] = json!(["uname"]);
        let f = filter(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "syscalls": [rule.clone()]}),
        );
        assert_eq!(sys(&f, "uname", &[]), want, "{rule}");
        assert_eq!(sys(&f, "read", &[]), RET_ERRNO | 99, "{rule}");
    }
    for (default, want) in [
        (
            json!({"defaultAction": "SCMP_ACT_KILL_PROCESS"}),
            RET_KILL_PROCESS,
        ),
        (json!({"defaultAction": "SCMP_ACT_ERRNO"}), EPERM),
        (
            json!({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 3}),
            RET_TRACE | 3,
        ),
        (json!({"defaultAction": "SCMP_ACT_LOG"}), RET_LOG),
    ] {
        assert_eq!(
            sys(&filter(default.clone()), "getpid", &[]),
            want,
            "{default}"
        );
    }
}

#[test]
fn flags_are_passed_to_seccomp() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    }));
    assert_eq!(f.flags(), FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW);
}

#[test]
fn architectures_other_than_the_listed_ones_are_killed() {
    // x86_64 only (the native arch is always present).
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(call(&f, X86_64, 83, &[]), EPERM);
    assert_eq!(call(&f, I386, 39, &[]), RET_KILL_THREAD);
    assert_eq!(call(&f, AARCH64, 34, &[]), RET_KILL_THREAD);
    assert_eq!(call(&f, X86_64, X32_SYSCALL_BIT | 83, &[]), RET_KILL_THREAD);
    // A syscall a tracer skipped (nr -1) is not mistaken for x32.
    assert_eq!(call(&f, X86_64, u32::MAX, &[]), RET_ALLOW);

    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "rt_sigaction"], "action": "SCMP_ACT_ERRNO"}]
    }));
    assert_eq!(call(&f, X86_64, 83, &[]), EPERM);
    assert_eq!(call(&f, I386, 39, &[]), EPERM, "i386 mkdir is 39");
    assert_eq!(call(&f, I386, 83, &[]), RET_ALLOW, "i386 83 is symlink");
    assert_eq!(call(&f, X86_64, X32_SYSCALL_BIT | 83, &[]), EPERM);
    // x32 has its own rt_sigaction (512); its 13 is unused and x86_64's 13 is rt_sigaction.
    assert_eq!(call(&f, X86_64, X32_SYSCALL_BIT | 512, &[]), EPERM);
    assert_eq!(call(&f, X86_64, X32_SYSCALL_BIT | 13, &[]), RET_ALLOW);
    assert_eq!(call(&f, X86_64, 13, &[]), EPERM);
    assert_eq!(call(&f, AARCH64, 34, &[]), RET_KILL_THREAD);
}

#[test]
fn arguments_compare_as_64_bit_values() {
    let v: u64 = 0x1_0000_0005;
    let args = [
        0,
        5,
        6,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0004,
        v,
        0x1_0000_0006,
        0x1_ffff_ffff,
        0x2_0000_0000,
        0x2_0000_0005,
        u64::MAX,
    ];
    type Holds = fn(u64, u64) -> bool;
    let ops: [(&str, Holds); 6] = [
        ("SCMP_CMP_EQ", |a, v| a == v),
        ("SCMP_CMP_NE", |a, v| a != v),
        ("SCMP_CMP_LT", |a, v| a < v),
        ("SCMP_CMP_LE", |a, v| a <= v),
        ("SCMP_CMP_GE", |a, v| a >= v),
        ("SCMP_CMP_GT", |a, v| a > v),
    ];
    for (op, holds) in ops {
        for index in [0usize, 3, 5] {
            let f = filter(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": index, "value": v, "op": op}]}]
            }));
            for a in args {
                let mut all = [0u64; 6];
                all[index] = a;
                let want = if holds(a, v) { EPERM } else { RET_ALLOW };
                assert_eq!(
                    sys(&f, "ioctl", &all),
                    want,
                    "{op} arg{index}={a:#x} v={v:#x}"
                );
            }
        }
    }
    // MASKED_EQ: (arg & value) == (valueTwo & value), on both halves (libseccomp masks the
    // compared value too).
    let (mask, want_v) = (0xff00_0000_00ff_u64, 0x1200_0100_0034_u64);
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 1, "value": mask, "valueTwo": want_v, "op": "SCMP_CMP_MASKED_EQ"}]}]
    }));
    for a in [
        0x1200_0000_0034u64,
        0x12ff_ffff_ff34,
        0x1300_0000_0034,
        0x1200_0000_0035,
        0x34,
        0,
    ] {
        let want = if a & mask == want_v & mask {
            EPERM
        } else {
            RET_ALLOW
        };
        assert_eq!(sys(&f, "ioctl", &[0, a]), want, "{a:#x}");
    }
}

#[test]
fn i386_compares_the_low_32_bits_only() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 0x1_0000_0008u64, "op": "SCMP_CMP_EQ"}]}]
    }));
    assert_eq!(call(&f, I386, 136, &[8]), EPERM);
    assert_eq!(call(&f, I386, 136, &[9]), RET_ALLOW);
    assert_eq!(call(&f, X86_64, 135, &[8]), RET_ALLOW);
    assert_eq!(call(&f, X86_64, 135, &[0x1_0000_0008]), EPERM);
}

#[test]
fn args_of_one_rule_are_anded_and_same_index_conditions_ored() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            // runc: two conditions on arg 0 are two rules.
            {"names": ["tkill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    assert_eq!(sys(&f, "kill", &[1, 9]), EPERM);
    assert_eq!(sys(&f, "kill", &[1, 15]), RET_ALLOW);
    assert_eq!(sys(&f, "kill", &[2, 9]), RET_ALLOW);
    assert_eq!(sys(&f, "tkill", &[1]), EPERM);
    assert_eq!(sys(&f, "tkill", &[2]), EPERM);
    assert_eq!(sys(&f, "tkill", &[3]), RET_ALLOW);
}

#[test]
fn several_rules_for_one_syscall() {
    // A rule without args wins over rules with args, before or after it (libseccomp).
    for order in [[0, 1], [1, 0]] {
        let rules = [
            json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                   "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}),
            json!({"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS"}),
        ];
        let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW",
                              "syscalls": [rules[order[0]].clone(), rules[order[1]].clone()]}));
        assert_eq!(sys(&f, "personality", &[0]), RET_KILL_PROCESS);
        assert_eq!(sys(&f, "personality", &[1]), RET_KILL_PROCESS);
    }
    // The first rule without args wins over later ones.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3},
        {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}
    ]}));
    assert_eq!(sys(&f, "getpid", &[]), RET_ERRNO | 3);
    // Rules with args are tried in libseccomp's order, whatever their profile order: higher
    // argument index first, then EQ/NE before LT/LE before GT/GE (checked against runc 1.1.5
    // with libseccomp 2.5.4).
    let lt = json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                    "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_LT"}]});
    let ge = json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 6,
                    "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_GE"}]});
    let arg1 = json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
                      "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]});
    for rules in [json!([lt, ge, arg1]), json!([arg1, ge, lt])] {
        let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        assert_eq!(sys(&f, "personality", &[1]), RET_ERRNO | 5);
        assert_eq!(sys(&f, "personality", &[7]), RET_ERRNO | 5);
        assert_eq!(sys(&f, "personality", &[70]), RET_ERRNO | 6);
        assert_eq!(sys(&f, "personality", &[7, 2]), RET_ERRNO | 7);
    }
    // A rule with the default's action is dropped (runc), so it does not shadow later rules.
    let f = filter(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_LT"}]}
    ]}));
    assert_eq!(sys(&f, "personality", &[0]), RET_ALLOW);
    assert_eq!(sys(&f, "personality", &[10]), EPERM);
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let f = filter(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall", "mkdir", "socketcall"], "action": "SCMP_ACT_ERRNO"}
    ]}));
    assert_eq!(sys(&f, "mkdir", &[]), EPERM);
    assert_eq!(sys(&f, "rmdir", &[]), RET_ALLOW);
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let p = |default: &str, archs: Value| {
        filter(
            json!({"defaultAction": default, "architectures": archs, "syscalls": [
                {"names": ["read", "write", "exit_group", "mkdir"], "action": "SCMP_ACT_ALLOW"}
            ]}),
        )
    };
    let max = nr("exit_group");
    let f = p(
        "SCMP_ACT_ERRNO",
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]),
    );
    assert_eq!(call(&f, X86_64, max + 1, &[]), ENOSYS);
    assert_eq!(call(&f, X86_64, 1000, &[]), ENOSYS);
    assert_eq!(call(&f, X86_64, max - 1, &[]), EPERM);
    assert_eq!(call(&f, X86_64, nr("read"), &[]), RET_ALLOW);
    // i386: exit_group is 252, the largest named there.
    assert_eq!(call(&f, I386, 253, &[]), ENOSYS);
    assert_eq!(call(&f, I386, 251, &[]), EPERM);
    // No stub with a permissive default, or when architectures is not given (runc).
    assert_eq!(
        call(
            &p("SCMP_ACT_LOG", json!(["SCMP_ARCH_X86_64"])),
            X86_64,
            1000,
            &[]
        ),
        RET_LOG
    );
    assert_eq!(call(&p("SCMP_ACT_KILL", json!([])), X86_64, 1000, &[]), 0);
}

#[test]
fn notify_rules_return_user_notif_and_ask_for_a_listener() {
    let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    let f = filter(p);
    assert!(f.notifies());
    assert_eq!(
        f.flags(),
        FLAG_TSYNC | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV
    );
    assert_eq!(call(&f, X86_64, 83, &[]), RET_USER_NOTIF);
    assert_eq!(call(&f, X86_64, 84, &[]), RET_ALLOW);
    // Without a notify rule: no listener, and WAIT_KILLABLE_RECV (meaningless then) dropped.
    let f = filter(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert!(!f.notifies());
    assert_eq!(f.flags(), 0);
}

#[test]
fn errors_name_the_field() {
    let base = |syscalls: Value| json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls});
    let cases = [
        (
            base(json!([{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}])),
            "linux.seccomp.listenerPath: must name",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
                   "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock",
                   "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for the sendmsg",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}),
            "linux.seccomp.listenerMetadata",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/a.sock"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default",
        ),
        (
            base(json!([{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                         "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                                  {"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}])),
            "linux.seccomp.syscalls[0].args[1].index",
        ),
        (
            base(json!([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000}])),
            "linux.seccomp.syscalls[0].errnoRet",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}),
            "linux.seccomp.defaultErrnoRet",
        ),
        (
            base(json!([{"names": ["read", ""], "action": "SCMP_ACT_ERRNO"}])),
            "linux.seccomp.syscalls[0].names[1]",
        ),
    ];
    for (p, want) in cases {
        let e = err(p);
        assert!(e.starts_with(want), "{e}");
    }
}

#[test]
fn unknown_actions_and_operators_fail_parsing_with_their_path() {
    let config = |seccomp: Value| {
        serde_json::to_vec(&json!({"ociVersion": "1.0.2", "linux": {"seccomp": seccomp}})).unwrap()
    };
    let parse = |text: Vec<u8>| {
        crate::spec::parse_json::<crate::spec::Spec>(std::path::Path::new("config.json"), &text)
            .unwrap_err()
            .to_string()
    };
    let e = parse(config(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_DENY"}
        ]}),
    ));
    assert!(
        e.contains("linux.seccomp.syscalls[3].action") && e.contains("SCMP_ACT_DENY"),
        "{e}"
    );
    let e = parse(config(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}
        ]}),
    ));
    assert!(e.contains("linux.seccomp.syscalls[0].args[0].op"), "{e}");
    let e = parse(config(json!({"defaultAction": "SCMP_ACT_NOPE"})));
    assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
}

/// Docker's default profile style: clone allowed only without namespace flags (MASKED_EQ),
/// personality allowed for a few values, socket allowed except AF_VSOCK, clone3 -> ENOSYS.
#[test]
fn docker_style_conditional_rules() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}
        ]
    }));
    const CLONE_NEWUSER: u64 = 0x1000_0000;
    const CLONE_NEWNS: u64 = 0x20000;
    const SIGCHLD: u64 = 17;
    let thread_flags = 0x003d_0f00; // what pthread_create passes
    assert_eq!(sys(&f, "clone", &[SIGCHLD]), RET_ALLOW);
    assert_eq!(sys(&f, "clone", &[thread_flags]), RET_ALLOW);
    assert_eq!(sys(&f, "clone", &[CLONE_NEWUSER | SIGCHLD]), EPERM);
    assert_eq!(sys(&f, "clone", &[CLONE_NEWNS | SIGCHLD]), EPERM);
    assert_eq!(sys(&f, "clone3", &[]), ENOSYS);
    for (p, want) in [
        (0u64, RET_ALLOW),
        (8, RET_ALLOW),
        (0x20000, RET_ALLOW),
        (0xffff_ffff, RET_ALLOW),
        (0x0040_0000, EPERM),
        (0x1_0000_0000, EPERM),
    ] {
        assert_eq!(sys(&f, "personality", &[p]), want, "personality({p:#x})");
    }
    assert_eq!(sys(&f, "socket", &[1, 1, 0]), RET_ALLOW);
    assert_eq!(sys(&f, "socket", &[40, 1, 0]), EPERM);
    assert_eq!(sys(&f, "mount", &[]), EPERM);
    // i386 clone (120) compares the low 32 bits of the flags.
    assert_eq!(call(&f, I386, 120, &[SIGCHLD]), RET_ALLOW);
    assert_eq!(call(&f, I386, 120, &[CLONE_NEWUSER]), EPERM);
}

fn podman_profile() -> Value {
    serde_json::from_str(include_str!("testdata/podman-4.3-default.json")).unwrap()
}

/// The profile podman 4.3 sends by default (374 allowed names, three ABIs).
#[test]
fn podman_default_profile() {
    let p = podman_profile();
    let f = filter(p.clone());
    assert!(
        f.program().len() < 2500,
        "{} instructions",
        f.program().len()
    );
    let allowed = p["syscalls"][1]["names"].as_array().unwrap();
    let mut checked = 0;
    for name in allowed.iter().map(|n| n.as_str().unwrap()) {
        if let Some(n) = syscall_number(name) {
            if name != "personality" {
                assert_eq!(call(&f, X86_64, n, &[]), RET_ALLOW, "{name}");
                checked += 1;
            }
        }
    }
    assert!(checked > 300);
    assert_eq!(sys(&f, "kexec_load", &[]), EPERM);
    assert_eq!(sys(&f, "open_by_handle_at", &[]), EPERM);
    assert_eq!(sys(&f, "mount", &[]), RET_ALLOW, "podman 4.3 allows mount");
    assert_eq!(sys(&f, "add_key", &[]), ENOSYS, "not listed: the default");
    assert_eq!(sys(&f, "personality", &[8]), RET_ALLOW);
    assert_eq!(sys(&f, "personality", &[9]), ENOSYS);
    assert_eq!(call(&f, X86_64, 1000, &[]), ENOSYS);
    assert_eq!(call(&f, I386, 3, &[]), RET_ALLOW, "i386 read");
    assert_eq!(
        call(&f, X86_64, X32_SYSCALL_BIT, &[]),
        RET_ALLOW,
        "x32 read"
    );
    assert_eq!(call(&f, AARCH64, 63, &[]), RET_KILL_THREAD);
}

// ---- A direct model of the semantics, compared with the program on many inputs. ----

struct Model {
    p: LinuxSeccomp,
    syscalls: Vec<oci_spec::runtime::LinuxSyscall>,
    /// Per ABI: the numbers each rule names, and the largest of all.
    nrs: [Vec<Vec<u32>>; 3],
    max: [u32; 3],
}

fn abi_number(abi: usize, name: &str) -> Option<u32> {
    let t = match abi {
        0 => super::table::X86_64,
        1 => super::table::X86,
        _ => super::table::X32,
    };
    let n = t.iter().find(|(n, _)| *n == name)?.1;
    Some(if abi == 2 { n | X32_SYSCALL_BIT } else { n })
}

fn ret_of(action: oci_spec::runtime::LinuxSeccompAction, errno: Option<u32>) -> u32 {
    use oci_spec::runtime::LinuxSeccompAction as A;
    match action {
        A::ScmpActKill | A::ScmpActKillThread => 0,
        A::ScmpActKillProcess => RET_KILL_PROCESS,
        A::ScmpActTrap => RET_TRAP,
        A::ScmpActErrno => RET_ERRNO | errno.unwrap_or(1),
        A::ScmpActTrace => RET_TRACE | errno.unwrap_or(1),
        A::ScmpActLog => RET_LOG,
        A::ScmpActAllow => RET_ALLOW,
        A::ScmpActNotify => RET_USER_NOTIF,
    }
}

impl Model {
    fn new(p: LinuxSeccomp) -> Model {
        let syscalls = p.syscalls().clone().unwrap_or_default();
        let nrs = [0, 1, 2].map(|abi| {
            syscalls
                .iter()
                .map(|s| {
                    s.names()
                        .iter()
                        .filter_map(|n| abi_number(abi, n))
                        .collect()
                })
                .collect::<Vec<Vec<u32>>>()
        });
        let max = [0, 1, 2].map(|abi| nrs[abi].iter().flatten().copied().max().unwrap_or(0));
        Model {
            p,
            syscalls,
            nrs,
            max,
        }
    }

    fn eval(&self, d: &Data) -> u32 {
        use oci_spec::runtime::Arch;
        let archs = self.p.architectures().clone().unwrap_or_default();
        let listed = |a: Arch| archs.contains(&a);
        let abi = match d.arch {
            X86_64 if d.nr >= X32_SYSCALL_BIT && d.nr != u32::MAX => {
                if !listed(Arch::ScmpArchX32) {
                    return 0;
                }
                2
            }
            X86_64 => 0,
            I386 if listed(Arch::ScmpArchX86) => 1,
            _ => return 0,
        };
        let abi_listed = match abi {
            0 => listed(Arch::ScmpArchX86_64) || listed(Arch::ScmpArchNative),
            _ => true,
        };
        let default = ret_of(self.p.default_action(), self.p.default_errno_ret());
        let max = self.max[abi];
        use oci_spec::runtime::LinuxSeccompAction as A;
        let permissive = matches!(
            self.p.default_action(),
            A::ScmpActAllow | A::ScmpActLog | A::ScmpActTrace
        );
        if abi_listed && !permissive && max > 0 && d.nr > max {
            return ENOSYS;
        }
        let mine: Vec<_> = self
            .syscalls
            .iter()
            .zip(&self.nrs[abi])
            .filter(|(_, nrs)| nrs.contains(&d.nr))
            .map(|(s, _)| s)
            .filter(|s| ret_of(s.action(), s.errno_ret()) != default)
            .collect();
        let unconditional = |s: &&&oci_spec::runtime::LinuxSyscall| {
            s.args()
                .iter()
                .flatten()
                .all(|a| a.op() == Op::ScmpCmpMaskedEq && a.value() == 0)
        };
        if let Some(s) = mine.iter().find(unconditional) {
            return ret_of(s.action(), s.errno_ret());
        }
        // Rules with args, split like runc, in libseccomp's order; the first match decides.
        let mut cands: Vec<(Vec<super::compile::Cond>, u32)> = Vec::new();
        for s in &mine {
            let conds: Vec<_> = s
                .args()
                .iter()
                .flatten()
                .filter(|a| !(a.op() == Op::ScmpCmpMaskedEq && a.value() == 0))
                .map(|a| super::compile::Cond {
                    index: a.index(),
                    op: a.op(),
                    value: a.value(),
                    value_two: a.value_two().unwrap_or(0),
                })
                .collect();
            let ret = ret_of(s.action(), s.errno_ret());
            let split = (0..6).any(|i| conds.iter().filter(|c| c.index == i).count() > 1);
            if split {
                cands.extend(conds.into_iter().map(|c| (vec![c], ret)));
            } else {
                cands.push((conds, ret));
            }
        }
        cands.sort_by(|a, b| super::compile::libseccomp_order(&a.0, &b.0, abi != 1));
        let holds = |c: &super::compile::Cond| {
            let mut x = d.args[c.index];
            let (mut v, mut v2) = (c.value, c.value_two);
            if abi == 1 {
                x &= 0xffff_ffff;
                v &= 0xffff_ffff;
                v2 &= 0xffff_ffff;
            }
            match c.op {
                Op::ScmpCmpEq => x == v,
                Op::ScmpCmpNe => x != v,
                Op::ScmpCmpLt => x < v,
                Op::ScmpCmpLe => x <= v,
                Op::ScmpCmpGe => x >= v,
                Op::ScmpCmpGt => x > v,
                Op::ScmpCmpMaskedEq => x & v == v2 & v,
            }
        };
        for (conds, ret) in cands {
            if conds.iter().all(holds) {
                return ret;
            }
        }
        default
    }
}

/// xorshift64*: deterministic pseudo-random inputs without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize].clone()
    }
}

fn compare_with_model(v: Value, rng: &mut Rng, n: usize, interesting: &[u64]) {
    let f = filter(v.clone());
    let m = Model::new(profile(v));
    let named: Vec<u32> =
        m.p.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().iter())
            .filter_map(|n| syscall_number(n))
            .collect();
    for _ in 0..n {
        let arch = rng.pick(&[X86_64, X86_64, X86_64, I386, AARCH64]);
        let mut nr = match rng.next() % 4 {
            0 => (rng.next() % 500) as u32,
            1 | 2 if !named.is_empty() => rng.pick(&named),
            _ => rng.next() as u32,
        };
        if rng.next() & 7 == 0 {
            nr |= X32_SYSCALL_BIT;
        }
        let mut d = Data {
            nr,
            arch,
            ..Default::default()
        };
        for a in d.args.iter_mut() {
            *a = match rng.next() % 3 {
                0 => rng.pick(interesting),
                1 => rng.pick(interesting) ^ (1 << (rng.next() % 64)),
                _ => rng.next(),
            };
        }
        assert_eq!(run(f.program(), &d), m.eval(&d), "{d:?}");
    }
}

#[test]
fn program_matches_the_model_on_random_inputs() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    compare_with_model(
        podman_profile(),
        &mut rng,
        20_000,
        &[0, 8, 0x20000, 0xffff_ffff],
    );

    // Random profiles: many syscalls with conditional rules of every op, three ABIs.
    let names = [
        "read",
        "write",
        "ioctl",
        "personality",
        "clone",
        "socket",
        "kill",
        "mmap",
        "mkdir",
        "openat",
        "fcntl",
        "prctl",
        "futex",
        "ptrace",
        "bpf",
        "setns",
    ];
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let actions = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRACE",
    ];
    let values = [
        0u64,
        1,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        u64::MAX,
    ];
    for _ in 0..40 {
        let mut syscalls = Vec::new();
        for _ in 0..(rng.next() % 24) {
            let mut args = Vec::new();
            for _ in 0..(rng.next() % 4) {
                args.push(json!({"index": rng.next() % 3, "value": rng.pick(&values),
                                 "valueTwo": rng.pick(&values), "op": rng.pick(&ops)}));
            }
            syscalls.push(json!({
                "names": [rng.pick(&names), rng.pick(&names)],
                "action": rng.pick(&actions),
                "errnoRet": rng.next() % 50,
                "args": args
            }));
        }
        let archs = rng.pick(&[
            json!([]),
            json!(["SCMP_ARCH_X86_64"]),
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
        ]);
        let p = json!({"defaultAction": rng.pick(&actions), "defaultErrnoRet": rng.next() % 50,
                       "architectures": archs, "syscalls": syscalls});
        compare_with_model(p, &mut rng, 2_000, &values);
    }
}

#[test]
fn long_programs_use_far_jumps_and_too_long_ones_are_refused() {
    // 300 conditional rules on one syscall: the table jumps over hundreds of instructions.
    let rules: Vec<Value> = (0..300u64)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": i % 100 + 1,
                        "args": [{"index": 1, "value": i * 3, "op": "SCMP_CMP_EQ"}]})
        })
        .chain([json!({"names": ["write", "read", "close", "getpid"], "action": "SCMP_ACT_TRAP"})])
        .collect();
    let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules});
    let f = filter(p.clone());
    assert!(f.program().len() > 1500);
    assert_eq!(sys(&f, "ioctl", &[0, 3 * 250]), RET_ERRNO | 51);
    assert_eq!(sys(&f, "ioctl", &[0, 1]), RET_ALLOW);
    assert_eq!(sys(&f, "getpid", &[]), RET_TRAP);
    compare_with_model(p, &mut Rng(7), 5_000, &[0, 3, 750, 899]);

    let rules: Vec<Value> = (0..1500u64)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 1, "value": i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert!(e.contains("limit of 4096"), "{e}");
}

#[test]
fn syscall_tables_are_sorted_and_match_the_kernel_headers() {
    for t in [super::table::X86_64, super::table::X86, super::table::X32] {
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique");
    }
    assert_eq!(syscall_number("read"), Some(0));
    assert_eq!(syscall_number("mkdir"), Some(83));
    assert_eq!(syscall_number("fchmodat2"), Some(452));
    let dir = std::path::Path::new("/usr/include/x86_64-linux-gnu/asm");
    for (file, t) in [
        ("unistd_64.h", super::table::X86_64),
        ("unistd_32.h", super::table::X86),
        ("unistd_x32.h", super::table::X32),
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            eprintln!("skipped: {file} not installed (linux-libc-dev)");
            continue;
        };
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("#define __NR_") else {
                continue;
            };
            let (name, num) = rest.split_once(' ').unwrap();
            let num: u32 = num
                .trim_start_matches("(__X32_SYSCALL_BIT + ")
                .trim_end_matches(')')
                .parse()
                .unwrap();
            assert_eq!(
                t.iter().find(|(n, _)| *n == name).map(|e| e.1),
                Some(num),
                "{file}: {name}"
            );
        }
    }
}
