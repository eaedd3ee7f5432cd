//! The seccomp compiler on arbitrary profiles: it returns a program or an error naming the
//! field, never panics, and every jump of a program it returns stays inside the program.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    if let Ok(filter) = berth::seccomp::compile(&profile) {
        let program = filter.program();
        let n = program.len();
        assert!(n > 0 && n <= 65535, "program length {n}");
        for (i, insn) in program.iter().enumerate() {
            // BPF_JMP class (0x05): conditional jumps and ja must land inside the program.
            if insn.code & 0x07 == 0x05 {
                let (jt, jf) = (insn.jt as usize, insn.jf as usize);
                if insn.code == 0x05 {
                    assert!(i + 1 + insn.k as usize <= n, "ja out of range at {i}");
                } else {
                    assert!(i + 1 + jt.max(jf) <= n, "jump out of range at {i}");
                }
            }
        }
    }
});
