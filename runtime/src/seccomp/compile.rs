//! OCI `linux.seccomp` profile -> classic BPF program, following runc + libseccomp semantics:
//!
//! - The program checks `seccomp_data.arch` first. x86_64 is always present (libseccomp's
//!   native arch); SCMP_ARCH_X86 and SCMP_ARCH_X32 add sections. Any other audit arch, and x32
//!   syscall numbers when x32 is not listed, get libseccomp's bad-arch action, KILL (thread).
//!   Other SCMP_ARCH_* names are accepted and ignored: no process on an x86_64 kernel can make
//!   syscalls with their audit arch, so their sections would never run.
//! - Names are resolved per ABI; a name the ABI does not have is skipped (debug log), as runc
//!   does for names its libseccomp does not know.
//! - A rule whose action equals the default action is dropped (runc). For one syscall, the
//!   first rule without args wins over everything else (libseccomp); otherwise the rules with
//!   args are tried in libseccomp's order (see [`libseccomp_order`]) and the first whose
//!   conditions all hold decides; when none does, the default action applies. Conditions of one
//!   rule are ANDed, except that several conditions on the same argument index become one rule
//!   each (runc's compatibility split). Overlapping rules that libseccomp refuses to combine
//!   (runc fails with "file exists") are accepted and tried in that same order.
//! - Arguments are compared as 64-bit values (high word, then low word) on x86_64/x32 and as
//!   their low 32 bits on i386 (libseccomp does the same for 32-bit ABIs).
//! - runc's -ENOSYS stub: when the default action is not ALLOW/LOG/TRACE, a syscall numbered
//!   above every syscall the profile names (for an ABI listed in `architectures`) fails with
//!   ENOSYS instead, so programs fall back from syscalls newer than the profile.

use super::bpf::{self, Builder, Insn, Label, JEQ, JGE, JGT};
use super::table;
use super::SeccompError;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};

/// SECCOMP_RET_KILL_PROCESS.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// SECCOMP_RET_KILL_THREAD (also SCMP_ACT_KILL).
pub const RET_KILL_THREAD: u32 = 0;
/// SECCOMP_RET_TRAP.
pub const RET_TRAP: u32 = 0x0003_0000;
/// SECCOMP_RET_ERRNO; the low 16 bits carry the errno.
pub const RET_ERRNO: u32 = 0x0005_0000;
/// SECCOMP_RET_TRACE; the low 16 bits are passed to the tracer.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// SECCOMP_RET_LOG.
pub const RET_LOG: u32 = 0x7ffc_0000;
/// SECCOMP_RET_ALLOW.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// SECCOMP_RET_USER_NOTIF (SCMP_ACT_NOTIFY): the syscall waits for the seccomp agent's answer.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// AUDIT_ARCH_X86_64 (also used by x32 syscalls).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_I386.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// __X32_SYSCALL_BIT: set in the syscall number of x32 syscalls.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// SECCOMP_FILTER_FLAG_TSYNC.
pub const FLAG_TSYNC: u32 = 1;
/// SECCOMP_FILTER_FLAG_LOG.
pub const FLAG_LOG: u32 = 2;
/// SECCOMP_FILTER_FLAG_SPEC_ALLOW.
pub const FLAG_SPEC_ALLOW: u32 = 4;
/// SECCOMP_FILTER_FLAG_NEW_LISTENER: seccomp(2) returns a listener fd for the agent.
pub const FLAG_NEW_LISTENER: u32 = 8;
/// SECCOMP_FILTER_FLAG_TSYNC_ESRCH: TSYNC failures as ESRCH (required with NEW_LISTENER).
pub const FLAG_TSYNC_ESRCH: u32 = 16;
/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Syscalls SCMP_ACT_NOTIFY may not apply to: the container's process hands the listener fd
/// to berth with sendmsg(2) after the filter is on, so a notified sendmsg would wait for an
/// agent that never gets the fd; `write` is refused as runc refuses it (its init writes the fd
/// number), so a profile accepted here also runs under runc.
const NOT_NOTIFIABLE: &[&str] = &["sendmsg", "write"];

/// The bad-arch action (libseccomp's default, SCMP_ACT_KILL).
const RET_BADARCH: u32 = RET_KILL_THREAD;
/// Largest errno the kernel passes through (MAX_ERRNO).
const MAX_ERRNO: u32 = 4095;
/// Syscalls per leaf of the number search tree.
const LEAF: usize = 4;

/// One syscall ABI of the host.
struct Abi {
    name: &'static str,
    table: &'static [(&'static str, u32)],
    /// Added to table numbers (the x32 bit).
    bias: u32,
    /// Arguments are 64 bits wide.
    wide: bool,
}

const X86_64: Abi = Abi {
    name: "SCMP_ARCH_X86_64",
    table: table::X86_64,
    bias: 0,
    wide: true,
};
const X86: Abi = Abi {
    name: "SCMP_ARCH_X86",
    table: table::X86,
    bias: 0,
    wide: false,
};
const X32: Abi = Abi {
    name: "SCMP_ARCH_X32",
    table: table::X32,
    bias: X32_SYSCALL_BIT,
    wide: true,
};

impl Abi {
    fn number(&self, name: &str) -> Option<u32> {
        self.table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| self.table[i].1 | self.bias)
    }
}

/// Looks a syscall name up in the x86_64 table.
pub fn syscall_number(name: &str) -> Option<u32> {
    X86_64.number(name)
}

/// A compiled filter: the program and the flags for seccomp(2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub(super) program: Vec<Insn>,
    pub(super) flags: u32,
}

impl Filter {
    /// The BPF program, in execution order.
    pub fn program(&self) -> &[Insn] {
        &self.program
    }

    /// SECCOMP_FILTER_FLAG_* bits to pass to seccomp(2).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether a rule uses SCMP_ACT_NOTIFY: installing the filter then yields a listener fd
    /// that goes to the seccomp agent at `linux.seccomp.listenerPath`.
    pub fn notifies(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }
}

/// One argument condition.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cond {
    pub(super) index: usize,
    pub(super) op: Op,
    pub(super) value: u64,
    pub(super) value_two: u64,
}

#[derive(Clone, Debug)]
struct Rule {
    conds: Vec<Cond>,
    ret: u32,
}

#[derive(Clone, Debug)]
enum Plan {
    /// A rule without args matched: this action, whatever the arguments.
    Always(u32),
    /// Rules with args, tried in order; the default when none matches.
    When(Vec<Rule>),
}

/// A checked rule before name resolution.
struct NamedRule<'a> {
    names: Vec<(&'a str, String)>,
    /// Same action as the default: dropped (runc), but its names still count for the stub.
    dropped: bool,
    /// Alternative condition sets (one unless runc's same-index split applies).
    alternatives: Vec<Vec<Cond>>,
    ret: u32,
}

fn invalid(path: impl Into<String>, msg: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        path: path.into(),
        msg: msg.into(),
    }
}

fn is_allow_like(a: Action) -> bool {
    matches!(
        a,
        Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace
    )
}

/// The seccomp return value of an action.
fn action_value(a: Action, errno_ret: Option<u32>, path: &str) -> Result<u32, SeccompError> {
    let data = |max: u32| -> Result<u32, SeccompError> {
        match errno_ret {
            None => Ok(libc::EPERM as u32),
            Some(e) if e <= max => Ok(e),
            Some(e) => Err(invalid(path, format!("{e} is out of range (0..={max})"))),
        }
    };
    Ok(match a {
        Action::ScmpActKill | Action::ScmpActKillThread => RET_KILL_THREAD,
        Action::ScmpActKillProcess => RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        Action::ScmpActErrno => RET_ERRNO | data(MAX_ERRNO)?,
        Action::ScmpActTrace => RET_TRACE | data(0xffff)?,
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActAllow => RET_ALLOW,
        Action::ScmpActNotify => RET_USER_NOTIF,
    })
}

/// Checks `profile` and compiles it for this host.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(invalid(
            "linux.seccomp",
            "seccomp filters are only implemented for x86_64 hosts",
        ));
    }
    let default_action = profile.default_action();
    let default = match default_action {
        Action::ScmpActErrno | Action::ScmpActTrace => action_value(
            default_action,
            profile.default_errno_ret(),
            "linux.seccomp.defaultErrnoRet",
        )?,
        // runc's rule: every syscall, the ones that hand the listener over included, would wait
        // for an agent that cannot have the listener yet.
        Action::ScmpActNotify => {
            return Err(invalid(
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY cannot be the default action; notify chosen syscalls in linux.seccomp.syscalls",
            ))
        }
        a => action_value(a, None, "linux.seccomp.defaultAction")?,
    };

    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }

    // ABIs: x86_64 always; `listed` ones also get runc's -ENOSYS stub.
    let (mut x86, mut x32, mut listed64) = (false, false, false);
    for (i, a) in profile.architectures().iter().flatten().enumerate() {
        match a {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => listed64 = true,
            Arch::ScmpArchX86 => x86 = true,
            Arch::ScmpArchX32 => x32 = true,
            other => tracing::debug!(
                "linux.seccomp.architectures[{i}]: {other} cannot occur on this x86_64 host; ignored"
            ),
        }
    }

    let rules = check_rules(profile, default)?;
    flags = notify_flags(profile, &rules, flags)?;
    let stub = !is_allow_like(default_action) && default != RET_ERRNO | libc::ENOSYS as u32;
    let section = |abi: &Abi, listed: bool| {
        let (entries, max) = resolve(abi, &rules);
        let stub_max = (stub && listed && max > 0).then_some(max);
        (entries, stub_max, abi.wide)
    };

    let mut b = Builder::new();
    let bad = |b: &mut Builder| b.ret(RET_BADARCH);
    // Emitted back to front: i386 section, x86_64 section (with x32 inside), arch dispatch.
    let s32 = x86.then(|| {
        let (e, m, w) = section(&X86, true);
        emit_checked_table(&mut b, &e, default, m, w);
        b.load(bpf::OFF_NR)
    });
    let s64 = {
        let x32_entry = if x32 {
            let (e, m, w) = section(&X32, true);
            emit_checked_table(&mut b, &e, default, m, w)
        } else {
            bad(&mut b)
        };
        let (e, m, w) = section(&X86_64, listed64);
        let main = emit_checked_table(&mut b, &e, default, m, w);
        // nr >= X32_SYSCALL_BIT is an x32 syscall, except -1 (a syscall skipped by a tracer).
        let not_minus_one = b.jump(JEQ, u32::MAX, main, x32_entry);
        b.jump(JGE, X32_SYSCALL_BIT, not_minus_one, main);
        b.load(bpf::OFF_NR)
    };
    let badarch = bad(&mut b);
    let after64 = match s32 {
        Some(s32) => b.jump(JEQ, AUDIT_ARCH_I386, s32, badarch),
        None => badarch,
    };
    b.jump(JEQ, AUDIT_ARCH_X86_64, s64, after64);
    b.load(bpf::OFF_ARCH);

    if b.len() > bpf::MAX_INSNS {
        return Err(invalid(
            "linux.seccomp",
            format!(
                "the profile compiles to {} BPF instructions, more than the kernel's limit of {}; merge rules or drop architectures",
                b.len(),
                bpf::MAX_INSNS
            ),
        ));
    }
    Ok(Filter {
        program: b.finish(),
        flags,
    })
}

/// The filter flags once SCMP_ACT_NOTIFY is taken into account, after checking the agent
/// fields: a notifying profile needs `listenerPath` and gets NEW_LISTENER (plus TSYNC_ESRCH
/// with TSYNC, which the kernel requires for the pair); WAIT_KILLABLE_RECV only means something
/// with a listener and is dropped otherwise.
fn notify_flags(
    profile: &LinuxSeccomp,
    rules: &[NamedRule<'_>],
    mut flags: u32,
) -> Result<u32, SeccompError> {
    let notify: Vec<&NamedRule> = rules
        .iter()
        .filter(|r| r.ret == RET_USER_NOTIF && !r.dropped)
        .collect();
    for r in &notify {
        if let Some((n, path)) = r.names.iter().find(|(n, _)| NOT_NOTIFIABLE.contains(n)) {
            return Err(invalid(
                path.as_str(),
                format!("SCMP_ACT_NOTIFY cannot be used for the {n} syscall (berth and runc hand the listener to the agent with it)"),
            ));
        }
    }
    let has_path = profile
        .listener_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty());
    if profile.listener_metadata().is_some() && !has_path {
        return Err(invalid(
            "linux.seccomp.listenerMetadata",
            "is only sent to a seccomp agent: set linux.seccomp.listenerPath too",
        ));
    }
    if notify.is_empty() {
        if flags & FLAG_WAIT_KILLABLE_RECV != 0 {
            tracing::debug!(
                "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without SCMP_ACT_NOTIFY; ignored"
            );
        }
        return Ok(flags & !FLAG_WAIT_KILLABLE_RECV);
    }
    if !has_path {
        return Err(invalid(
            "linux.seccomp.listenerPath",
            "must name the seccomp agent's unix socket when a rule uses SCMP_ACT_NOTIFY",
        ));
    }
    flags |= FLAG_NEW_LISTENER;
    if flags & FLAG_TSYNC != 0 {
        flags |= FLAG_TSYNC_ESRCH;
    }
    Ok(flags)
}

/// Checks actions, errno values and args of every rule and marks rules equal to the default.
fn check_rules(profile: &LinuxSeccomp, default: u32) -> Result<Vec<NamedRule<'_>>, SeccompError> {
    let mut out = Vec::new();
    for (i, s) in profile.syscalls().iter().flatten().enumerate() {
        let path = format!("linux.seccomp.syscalls[{i}]");
        let ret = match s.action() {
            a @ (Action::ScmpActErrno | Action::ScmpActTrace) => {
                action_value(a, s.errno_ret(), &format!("{path}.errnoRet"))?
            }
            a => action_value(a, None, &format!("{path}.action"))?,
        };
        let mut names = Vec::new();
        for (k, n) in s.names().iter().enumerate() {
            if n.is_empty() {
                return Err(invalid(format!("{path}.names[{k}]"), "empty syscall name"));
            }
            names.push((n.as_str(), format!("{path}.names[{k}]")));
        }
        let mut conds = Vec::new();
        for (j, a) in s.args().iter().flatten().enumerate() {
            if a.index() > 5 {
                return Err(invalid(
                    format!("{path}.args[{j}].index"),
                    format!("{} is not a syscall argument index (0..=5)", a.index()),
                ));
            }
            // A masked comparison with an empty mask always holds: libseccomp drops it.
            if a.op() == Op::ScmpCmpMaskedEq && a.value() == 0 {
                continue;
            }
            conds.push(Cond {
                index: a.index(),
                op: a.op(),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        let dropped = ret == default;
        if dropped {
            tracing::debug!("{path}: same action as the default; skipped");
        }
        // runc: several conditions on one argument become separate rules (ORed).
        let same_index = (0..6).any(|x| conds.iter().filter(|c| c.index == x).count() > 1);
        let alternatives = if same_index {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        out.push(NamedRule {
            names,
            dropped,
            alternatives,
            ret,
        });
    }
    Ok(out)
}

/// Per-syscall plans for one ABI, sorted by number, and the largest number the profile names.
fn resolve(abi: &Abi, rules: &[NamedRule]) -> (Vec<(u32, Plan)>, u32) {
    let mut plans: std::collections::BTreeMap<u32, Plan> = Default::default();
    let mut max = 0;
    for r in rules {
        for (name, path) in &r.names {
            let Some(nr) = abi.number(name) else {
                tracing::debug!("{path}: unknown syscall {name:?} on {}; ignored", abi.name);
                continue;
            };
            max = max.max(nr);
            if r.dropped {
                continue;
            }
            for conds in &r.alternatives {
                let plan = plans.entry(nr).or_insert_with(|| Plan::When(Vec::new()));
                match plan {
                    Plan::Always(_) => {}
                    Plan::When(_) if conds.is_empty() => *plan = Plan::Always(r.ret),
                    Plan::When(list) => list.push(Rule {
                        conds: conds.clone(),
                        ret: r.ret,
                    }),
                }
            }
        }
    }
    for plan in plans.values_mut() {
        if let Plan::When(list) = plan {
            list.sort_by(|a, b| libseccomp_order(&a.conds, &b.conds, abi.wide));
        }
    }
    (plans.into_iter().collect(), max)
}

/// One 32-bit comparison node of libseccomp's per-syscall decision tree.
struct Node {
    /// Argument priority: index * 2, + 1 for the high word.
    arg: usize,
    /// The rule's operator (orders the level).
    op: Op,
    /// The comparison the node performs (equal nodes of different rules are merged).
    test: Op,
    mask: u32,
    datum: u32,
}

fn op_priority(op: Op) -> u8 {
    match op {
        Op::ScmpCmpEq | Op::ScmpCmpNe | Op::ScmpCmpMaskedEq => 3,
        Op::ScmpCmpLt | Op::ScmpCmpLe => 2,
        Op::ScmpCmpGe | Op::ScmpCmpGt => 1,
    }
}

fn nodes(conds: &[Cond], wide: bool) -> Vec<Node> {
    let mut sorted: Vec<&Cond> = conds.iter().collect();
    sorted.sort_by_key(|c| c.index);
    let mut out = Vec::new();
    for c in sorted {
        let (mask, datum) = match c.op {
            Op::ScmpCmpMaskedEq => (c.value, c.value_two & c.value),
            _ => (u64::MAX, c.value),
        };
        // NE is an inverted EQ, LT/LE inverted GE/GT; a range's high word is tested with GT.
        let (hi_test, lo_test) = match c.op {
            Op::ScmpCmpEq | Op::ScmpCmpNe => (Op::ScmpCmpEq, Op::ScmpCmpEq),
            Op::ScmpCmpMaskedEq => (Op::ScmpCmpMaskedEq, Op::ScmpCmpMaskedEq),
            Op::ScmpCmpGt | Op::ScmpCmpLe => (Op::ScmpCmpGt, Op::ScmpCmpGt),
            Op::ScmpCmpGe | Op::ScmpCmpLt => (Op::ScmpCmpGt, Op::ScmpCmpGe),
        };
        if wide {
            out.push(Node {
                arg: c.index * 2 + 1,
                op: c.op,
                test: hi_test,
                mask: (mask >> 32) as u32,
                datum: (datum >> 32) as u32,
            });
        }
        out.push(Node {
            arg: c.index * 2,
            op: c.op,
            test: lo_test,
            mask: mask as u32,
            datum: datum as u32,
        });
    }
    out
}

/// The order in which libseccomp's generated code tries a syscall's rules with args. Its tree
/// keeps each level sorted by argument (highest index first, high word before low word), then
/// operator (EQ/NE/MASKED_EQ, then LT/LE, then GT/GE), then value (smallest first for LT/LE,
/// largest first otherwise); identical comparisons of different rules are merged and the next
/// level decides; different comparisons of equal rank keep the profile order, and a rule that
/// is a prefix of another comes first.
pub(super) fn libseccomp_order(a: &[Cond], b: &[Cond], wide: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (na, nb) = (nodes(a, wide), nodes(b, wide));
    for (x, y) in na.iter().zip(&nb) {
        let o = y
            .arg
            .cmp(&x.arg)
            .then(op_priority(y.op).cmp(&op_priority(x.op)))
            .then(match x.op {
                Op::ScmpCmpLt | Op::ScmpCmpLe => x.datum.cmp(&y.datum),
                _ => y.datum.cmp(&x.datum),
            });
        if o != Ordering::Equal {
            return o;
        }
        if (x.test, x.mask) != (y.test, y.mask) {
            return Ordering::Equal;
        }
    }
    na.len().cmp(&nb.len())
}

/// Emits `[jgt max -> ret ENOSYS]` + the syscall table; expects A = nr.
fn emit_checked_table(
    b: &mut Builder,
    entries: &[(u32, Plan)],
    default: u32,
    stub_max: Option<u32>,
    wide: bool,
) -> Label {
    let table = emit_table(b, entries, default, wide);
    match stub_max {
        Some(max) => {
            let enosys = b.ret(RET_ERRNO | libc::ENOSYS as u32);
            b.jump(JGT, max, enosys, table)
        }
        None => table,
    }
}

/// A binary search over syscall numbers with linear leaves; expects A = nr.
fn emit_table(b: &mut Builder, entries: &[(u32, Plan)], default: u32, wide: bool) -> Label {
    if entries.len() <= LEAF {
        return emit_leaf(b, entries, default, wide);
    }
    let mid = entries.len() / 2;
    let right = emit_table(b, &entries[mid..], default, wide);
    let left = emit_table(b, &entries[..mid], default, wide);
    b.jump(JGE, entries[mid].0, right, left)
}

fn emit_leaf(b: &mut Builder, entries: &[(u32, Plan)], default: u32, wide: bool) -> Label {
    let mut rets: Vec<(u32, Label)> = Vec::new();
    let mut targets = Vec::with_capacity(entries.len());
    for (_, plan) in entries.iter().rev() {
        let l = match plan {
            Plan::Always(r) => match rets.iter().find(|(v, _)| v == r) {
                Some((_, l)) => *l,
                None => {
                    let l = b.ret(*r);
                    rets.push((*r, l));
                    l
                }
            },
            Plan::When(rules) => emit_rules(b, rules, default, wide),
        };
        targets.push(l);
    }
    let mut next = b.ret(default);
    for ((nr, _), t) in entries.iter().rev().zip(targets) {
        next = b.jump(JEQ, *nr, t, next);
    }
    next
}

/// Rules with args: first full match returns its action, otherwise the default.
fn emit_rules(b: &mut Builder, rules: &[Rule], default: u32, wide: bool) -> Label {
    let mut fail = b.ret(default);
    for rule in rules.iter().rev() {
        let mut next = b.ret(rule.ret);
        for c in rule.conds.iter().rev() {
            next = emit_cond(b, c, next, fail, wide);
        }
        fail = next;
    }
    fail
}

/// One argument comparison jumping to `t` when it holds and `f` otherwise.
fn emit_cond(b: &mut Builder, c: &Cond, t: Label, f: Label, wide: bool) -> Label {
    let i = c.index;
    match c.op {
        Op::ScmpCmpEq => emit_eq(b, i, None, c.value, t, f, wide),
        Op::ScmpCmpNe => emit_eq(b, i, None, c.value, f, t, wide),
        // libseccomp masks the compared value too: (arg & mask) == (valueTwo & mask).
        Op::ScmpCmpMaskedEq => emit_eq(b, i, Some(c.value), c.value_two & c.value, t, f, wide),
        Op::ScmpCmpGt => emit_gt(b, i, c.value, true, t, f, wide),
        Op::ScmpCmpGe => emit_gt(b, i, c.value, false, t, f, wide),
        // LE = not GT, LT = not GE.
        Op::ScmpCmpLe => emit_gt(b, i, c.value, true, f, t, wide),
        Op::ScmpCmpLt => emit_gt(b, i, c.value, false, f, t, wide),
    }
}

/// `(arg & mask) == v` (no mask: `arg == v`).
fn emit_eq(
    b: &mut Builder,
    i: usize,
    mask: Option<u64>,
    v: u64,
    t: Label,
    f: Label,
    wide: bool,
) -> Label {
    b.jump(JEQ, v as u32, t, f);
    if let Some(m) = mask {
        b.and(m as u32);
    }
    let lo = b.load(bpf::off_arg_lo(i));
    if !wide {
        return lo;
    }
    b.jump(JEQ, (v >> 32) as u32, lo, f);
    if let Some(m) = mask {
        b.and((m >> 32) as u32);
    }
    b.load(bpf::off_arg_hi(i))
}

/// `arg > v` (strict) or `arg >= v`: high words decide unless equal, then the low words.
fn emit_gt(
    b: &mut Builder,
    i: usize,
    v: u64,
    strict: bool,
    t: Label,
    f: Label,
    wide: bool,
) -> Label {
    b.jump(if strict { JGT } else { JGE }, v as u32, t, f);
    let lo = b.load(bpf::off_arg_lo(i));
    if !wide {
        return lo;
    }
    let hi = (v >> 32) as u32;
    let eq = b.jump(JEQ, hi, lo, f);
    b.jump(JGT, hi, t, eq);
    b.load(bpf::off_arg_hi(i))
}
