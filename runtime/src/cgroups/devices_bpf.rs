//! cgroup2 device access control: the rule list compiled to a BPF_PROG_TYPE_CGROUP_DEVICE
//! program and attached to the container's cgroup. Rules are checked last-first; the first
//! matching rule decides, and no match denies (rule lists start with a default).

use super::CgroupError;
use std::os::fd::AsRawFd;
use std::path::Path;

/// One BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95;

/// A parsed rule: (allow, type 'a'|'b'|'c', major, minor, access bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    allow: bool,
    typ: char,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

/// Parses `c 1:3 rwm` style rules.
pub fn parse_rule(allow: bool, rule: &str) -> Result<Rule, CgroupError> {
    let bad = || CgroupError::Invalid(format!("linux.resources.devices: bad rule {rule:?}"));
    let mut it = rule.split_whitespace();
    let typ = it.next().and_then(|t| t.chars().next()).ok_or_else(bad)?;
    let (maj, min) = it.next().and_then(|n| n.split_once(':')).ok_or_else(bad)?;
    let num = |s: &str| -> Result<Option<u32>, CgroupError> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| bad())
        }
    };
    let mut access = 0;
    for ch in it.next().unwrap_or("rwm").chars() {
        access |= match ch {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => return Err(bad()),
        };
    }
    if !matches!(typ, 'a' | 'b' | 'c') {
        return Err(bad());
    }
    Ok(Rule {
        allow,
        typ,
        major: num(maj)?,
        minor: num(min)?,
        access,
    })
}

/// Compiles rules into a program. r2 = type, r3 = access, r4 = major, r5 = minor.
pub fn compile(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV_X, 3, 2, 0, 0),
        insn(AND_K, 2, 0, 0, 0xffff),
        insn(RSH_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut block = Vec::new();
        if r.typ != 'a' {
            // BPF_DEVCG_DEV_BLOCK = 1, BPF_DEVCG_DEV_CHAR = 2
            block.push((JNE_K, 2, if r.typ == 'b' { 1 } else { 2 }));
        }
        // Requested access must be a subset of the rule's: (access & !rule) == 0.
        let access_check = r.access != 7;
        if let Some(m) = r.major {
            block.push((JNE_K, 4, m as i32));
        }
        if let Some(m) = r.minor {
            block.push((JNE_K, 5, m as i32));
        }
        let extra = if access_check { 3 } else { 0 };
        let len = block.len() + extra + 2;
        for (i, (code, reg, imm)) in block.iter().enumerate() {
            // Jump past the rest of this block (to the next rule).
            let skip = (len - i - 1) as i16;
            p.push(insn(*code, *reg, 0, skip, *imm));
        }
        if access_check {
            p.push(insn(MOV_X, 0, 3, 0, 0));
            p.push(insn(AND_K, 0, 0, 0, !(r.access as i32) & 7));
            p.push(insn(JNE_K, 0, 0, 2, 0));
        }
        p.push(insn(MOV_K, 0, 0, 0, i32::from(r.allow)));
        p.push(insn(EXIT, 0, 0, 0, 0));
        if block.is_empty() && !access_check {
            // A rule that matches everything ends the program: the verifier rejects
            // unreachable instructions.
            return p;
        }
    }
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    pad: [u8; 64],
}

#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    pad: [u8; 108],
}

const BPF_PROG_LOAD: i64 = 5;
const BPF_PROG_ATTACH: i64 = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// BPF_PROG_LOAD of a device program; `with_log` asks the verifier for its log (for errors).
fn load(prog: &[Insn], with_log: bool) -> Result<std::os::fd::OwnedFd, CgroupError> {
    let license = c"Apache-2.0";
    let mut log = if with_log {
        vec![0u8; 65536]
    } else {
        Vec::new()
    };
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_devcgr");
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(with_log),
        log_size: log.len() as u32,
        log_buf: if with_log { log.as_mut_ptr() as u64 } else { 0 },
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
        pad: [0; 64],
    };
    // SAFETY: attr points at live buffers (program, license, log) for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        let text = String::from_utf8_lossy(&log)
            .trim_end_matches('\0')
            .trim()
            .to_string();
        return Err(CgroupError::Invalid(format!(
            "linux.resources.devices: load device filter: {e} {text}"
        )));
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// Whether the rules' outcome is "allow every access to every device": an allowed `a *:* rwm`
/// (as privileged containers have it) followed by allow rules only (later rules win).
pub fn allows_everything(rules: &[Rule]) -> bool {
    let all = |r: &Rule| {
        r.allow && r.typ == 'a' && r.major.is_none() && r.minor.is_none() && r.access == 7
    };
    rules
        .iter()
        .rposition(all)
        .is_some_and(|i| rules[i + 1..].iter().all(|r| r.allow))
}

/// Loads the program for `rules` and attaches it to the cgroup2 directory `dir`.
pub fn attach(dir: &Path, rules: &[(bool, String)]) -> Result<(), CgroupError> {
    let parsed = rules
        .iter()
        .map(|(a, r)| parse_rule(*a, r))
        .collect::<Result<Vec<_>, _>>()?;
    if allows_everything(&parsed) {
        // cgroup2 restricts no device without a program (and programs of the parents apply
        // either way): loading one that allows all would only cost a verifier run.
        return Ok(());
    }
    let prog = compile(&parsed);
    // Without a log the verifier is much cheaper; only a failed load is repeated with one,
    // to report why.
    let fd = match load(&prog, false) {
        Ok(fd) => fd,
        Err(_) => load(&prog, true)?,
    };
    let prog_fd = fd;
    let cg = std::fs::File::open(dir).map_err(|source| CgroupError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let at = ProgAttach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
        pad: [0; 108],
    };
    // SAFETY: attr with valid descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &at as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if r < 0 {
        return Err(CgroupError::Invalid(format!(
            "linux.resources.devices: attach device filter to {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        )));
    }
    // The attachment keeps the program alive; our descriptor can go.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interprets a compiled program for one access, to check the compiler without the kernel.
    fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            match i.code {
                LDX_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                MOV_X => r[dst] = r[src],
                MOV_K => r[dst] = i.imm as i64 as u64,
                AND_K => r[dst] &= i.imm as i64 as u64,
                RSH_K => r[dst] >>= i.imm,
                JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc = (pc as i64 + 1 + i64::from(i.off)) as usize;
                        continue;
                    }
                }
                EXIT => return r[0],
                _ => panic!("unknown opcode"),
            }
            pc += 1;
        }
    }

    #[test]
    fn default_deny_with_allows() {
        let rules: Vec<Rule> = [
            (false, "a *:* rwm"),
            (true, "c 1:3 rwm"),
            (true, "c 136:* rw"),
            (true, "b *:* m"),
        ]
        .iter()
        .map(|(a, r)| parse_rule(*a, r).unwrap())
        .collect();
        let p = compile(&rules);
        assert_eq!(run(&p, 2, 2 | 4, 1, 3), 1, "null rw allowed");
        assert_eq!(run(&p, 2, 2, 1, 5), 0, "zero denied");
        assert_eq!(run(&p, 2, 2, 136, 7), 1, "pts read allowed");
        assert_eq!(run(&p, 2, 1, 136, 7), 0, "pts mknod denied");
        assert_eq!(run(&p, 1, 1, 8, 0), 1, "block mknod allowed");
        assert_eq!(run(&p, 1, 2, 8, 0), 0, "block read denied");
    }

    #[test]
    fn later_deny_overrides_earlier_allow() {
        let rules: Vec<Rule> = [(true, "a *:* rwm"), (false, "c 1:3 w")]
            .iter()
            .map(|(a, r)| parse_rule(*a, r).unwrap())
            .collect();
        let p = compile(&rules);
        assert_eq!(run(&p, 2, 4, 1, 3), 0);
        assert_eq!(run(&p, 2, 2, 1, 3), 1);
        assert_eq!(run(&p, 2, 4, 1, 5), 1);
    }

    #[test]
    fn catch_all_rule_ends_the_program() {
        let rules: Vec<Rule> = [(true, "c 1:3 rwm"), (false, "a *:* rwm")]
            .iter()
            .map(|(a, r)| parse_rule(*a, r).unwrap())
            .collect();
        let p = compile(&rules);
        assert_eq!(p.last().unwrap().code, EXIT);
        assert_eq!(p.iter().filter(|i| i.code == EXIT).count(), 1);
        assert_eq!(run(&p, 2, 2, 1, 3), 0);
    }

    #[test]
    fn only_a_final_allow_all_needs_no_program() {
        let r = |allow, s| parse_rule(allow, s).unwrap();
        assert!(allows_everything(&[
            r(false, "a *:* rwm"),
            r(true, "a *:* rwm")
        ]));
        assert!(allows_everything(&[
            r(true, "a *:* rwm"),
            r(true, "c 1:3 rwm")
        ]));
        assert!(!allows_everything(&[
            r(true, "a *:* rwm"),
            r(false, "c 1:3 rwm")
        ]));
        assert!(!allows_everything(&[r(true, "a *:* rw")]));
        assert!(!allows_everything(&[r(true, "c *:* rwm")]));
        assert!(!allows_everything(&[]));
    }

    #[test]
    fn bad_rules_are_rejected() {
        assert!(parse_rule(true, "x 1:3 rwm").is_err());
        assert!(parse_rule(true, "c 1 rwm").is_err());
        assert!(parse_rule(true, "c 1:3 rwx").is_err());
    }
}
