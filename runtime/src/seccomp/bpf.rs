//! Classic BPF for seccomp: the instruction format, the few opcodes a filter needs, and a
//! builder that emits a program back to front so every jump target already exists when the
//! jump is written (jump offsets are forward-only; conditional ones are 8 bits wide, so a far
//! target gets a `ja` trampoline).

/// One BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u16,
    /// Offset to skip when the condition holds.
    pub jt: u8,
    /// Offset to skip when it does not.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_K: u16 = 0x00;

/// `BPF_LD | BPF_W | BPF_ABS`: A = 32-bit word of `seccomp_data` at offset k.
pub const LD_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
/// `BPF_ALU | BPF_AND | BPF_K`: A &= k.
pub const AND_K: u16 = BPF_ALU | 0x50 | BPF_K;
/// `BPF_JMP | BPF_JA`: skip k instructions.
pub const JA: u16 = BPF_JMP;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
pub const JEQ: u16 = BPF_JMP | 0x10 | BPF_K;
/// `BPF_JMP | BPF_JGT | BPF_K`.
pub const JGT: u16 = BPF_JMP | 0x20 | BPF_K;
/// `BPF_JMP | BPF_JGE | BPF_K`.
pub const JGE: u16 = BPF_JMP | 0x30 | BPF_K;
/// `BPF_JMP | BPF_JSET | BPF_K`.
pub const JSET: u16 = BPF_JMP | 0x40 | BPF_K;
/// `BPF_RET | BPF_K`: return k.
pub const RET: u16 = BPF_RET | BPF_K;

/// Offset of `seccomp_data.nr`.
pub const OFF_NR: u32 = 0;
/// Offset of `seccomp_data.arch`.
pub const OFF_ARCH: u32 = 4;

/// Offset of the low 32 bits of `seccomp_data.args[i]` (little-endian host).
pub fn off_arg_lo(i: usize) -> u32 {
    16 + 8 * i as u32
}

/// Offset of the high 32 bits of `seccomp_data.args[i]` (little-endian host).
pub fn off_arg_hi(i: usize) -> u32 {
    off_arg_lo(i) + 4
}

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// A position in the program under construction, counted from its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// Builds a program from its last instruction to its first.
#[derive(Default)]
pub struct Builder {
    /// Instructions in reverse order: index 0 is the program's last instruction.
    rev: Vec<Insn>,
}

impl Builder {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, i: Insn) -> Label {
        self.rev.push(i);
        Label(self.rev.len() - 1)
    }

    /// Instructions an instruction emitted next would skip to reach `to`.
    fn dist(&self, to: Label) -> usize {
        self.rev.len() - to.0 - 1
    }

    /// The first instruction emitted so far (the one a new instruction falls through to).
    pub fn next(&self) -> Label {
        Label(self.rev.len().saturating_sub(1))
    }

    /// `ret k`.
    pub fn ret(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: RET,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `ld [off]`.
    pub fn load(&mut self, off: u32) -> Label {
        self.push(Insn {
            code: LD_ABS,
            jt: 0,
            jf: 0,
            k: off,
        })
    }

    /// `and #k`.
    pub fn and(&mut self, k: u32) -> Label {
        self.push(Insn {
            code: AND_K,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// `ja to`.
    pub fn ja(&mut self, to: Label) -> Label {
        let k = self.dist(to) as u32;
        self.push(Insn {
            code: JA,
            jt: 0,
            jf: 0,
            k,
        })
    }

    /// Conditional jump `code k` to `t` when true and `f` when false, with trampolines for
    /// targets more than 255 instructions away.
    pub fn jump(&mut self, code: u16, k: u32, mut t: Label, mut f: Label) -> Label {
        loop {
            let (dt, df) = (self.dist(t), self.dist(f));
            if dt <= 255 && df <= 255 {
                return self.push(Insn {
                    code,
                    jt: dt as u8,
                    jf: df as u8,
                    k,
                });
            }
            if df > 255 {
                f = self.ja(f);
            } else {
                t = self.ja(t);
            }
        }
    }

    /// Number of instructions so far.
    pub fn len(&self) -> usize {
        self.rev.len()
    }

    /// True when nothing was emitted yet.
    pub fn is_empty(&self) -> bool {
        self.rev.is_empty()
    }

    /// The program in execution order.
    pub fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

/// A tiny classic-BPF interpreter for the opcodes above, used by the tests to run a compiled
/// filter on synthetic `seccomp_data`.
#[cfg(test)]
pub mod interp {
    use super::*;

    /// The kernel's `struct seccomp_data`.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Data {
        /// Syscall number.
        pub nr: u32,
        /// AUDIT_ARCH_* value.
        pub arch: u32,
        /// Instruction pointer.
        pub ip: u64,
        /// Arguments.
        pub args: [u64; 6],
    }

    impl Data {
        fn word(&self, off: u32) -> u32 {
            match off {
                0 => self.nr,
                4 => self.arch,
                8 => self.ip as u32,
                12 => (self.ip >> 32) as u32,
                o if (16..64).contains(&o) && o % 4 == 0 => {
                    let a = self.args[((o - 16) / 8) as usize];
                    if (o - 16) % 8 == 0 {
                        a as u32
                    } else {
                        (a >> 32) as u32
                    }
                }
                o => panic!("load from bad offset {o}"),
            }
        }
    }

    /// Runs `prog` on `d` and returns the filter's verdict; panics on anything the kernel's
    /// checker would reject (jumps out of the program, a path without a return, unknown ops).
    pub fn run(prog: &[Insn], d: &Data) -> u32 {
        assert!(!prog.is_empty() && prog.len() <= MAX_INSNS, "bad length");
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog.get(pc).expect("ran off the end of the program");
            pc += 1;
            match i.code {
                LD_ABS => a = d.word(i.k),
                AND_K => a &= i.k,
                RET => return i.k,
                JA => pc += i.k as usize,
                JEQ | JGT | JGE | JSET => {
                    let c = match i.code {
                        JEQ => a == i.k,
                        JGT => a > i.k,
                        JGE => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += if c { i.jt } else { i.jf } as usize;
                }
                op => panic!("unknown opcode {op:#x}"),
            }
        }
    }

    #[test]
    fn builder_places_trampolines_for_far_jumps() {
        let mut b = Builder::new();
        let far = b.ret(1);
        for _ in 0..300 {
            b.ret(2);
        }
        let near = b.ret(3);
        b.jump(JEQ, 7, far, near);
        b.load(OFF_NR);
        let prog = b.finish();
        assert_eq!(prog.len(), 305, "one trampoline");
        let d = |nr| Data {
            nr,
            ..Default::default()
        };
        assert_eq!(run(&prog, &d(7)), 1);
        assert_eq!(run(&prog, &d(8)), 3);
    }
}
