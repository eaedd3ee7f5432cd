//! `COPY/ADD --chmod`: an octal mode, or a symbolic one (`u+x`,
//! `u=rwx,go=rx`, `a-w`, `+X`) applied to each copied file's own mode as
//! chmod(1) does. A clause without `ugoa` acts on all three classes and
//! ignores the umask (a build has none).

/// Clauses a symbolic mode may have (more is refused).
const MAX_CLAUSES: usize = 12;

/// One `WHO OP PERMS` clause (an octal mode is `a=MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Clause {
    /// Bits of the classes it acts on (`0o4700` for `u`: set-id and
    /// sticky bits belong to the class that owns them).
    who: u16,
    /// `+`, `-` or `=`.
    op: u8,
    /// rwx/s/t bits in all classes (masked by `who` when applied).
    perms: u16,
    /// `X`: execute only for directories or files with an execute bit.
    cond_x: bool,
    /// `u`, `g` or `o` as the permission source (`g=u`), as a shift.
    copy_from: Option<u8>,
}

/// A parsed `--chmod` value: an octal mode, or symbolic clauses applied
/// to each file's source mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chmod {
    clauses: [Clause; MAX_CLAUSES],
    len: u8,
}

impl Chmod {
    /// Parses `--chmod` as BuildKit accepts it: octal up to `7777`, or a
    /// comma-separated list of chmod(1) symbolic clauses.
    pub fn parse(s: &str) -> Result<Chmod, String> {
        let mut clauses = [Clause::default(); MAX_CLAUSES];
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let mode = u16::from_str_radix(s, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| format!("invalid --chmod={s}: an octal mode is 0 to 7777"))?;
            clauses[0] = Clause {
                who: 0o7777,
                op: b'=',
                perms: mode,
                ..Clause::default()
            };
            return Ok(Chmod { clauses, len: 1 });
        }
        let bad = |why: &str| {
            format!("invalid --chmod={s}: {why} (use an octal mode or u+x, g=rx,o-w, ...)")
        };
        let mut len = 0;
        for part in s.split(',') {
            let b = part.as_bytes();
            let mut i = 0;
            let mut who = 0u16;
            while i < b.len() && matches!(b[i], b'u' | b'g' | b'o' | b'a') {
                who |= match b[i] {
                    b'u' => 0o4700,
                    b'g' => 0o2070,
                    b'o' => 0o1007,
                    _ => 0o7777,
                };
                i += 1;
            }
            if who == 0 {
                who = 0o7777;
            }
            if i == b.len() {
                return Err(bad(&format!("{part:?} has no +, - or =")));
            }
            // Several ops in one clause (`u+x-w`) share the who.
            while i < b.len() {
                let op = b[i];
                if !matches!(op, b'+' | b'-' | b'=') {
                    return Err(bad(&format!("unexpected {:?} in {part:?}", op as char)));
                }
                i += 1;
                let mut c = Clause {
                    who,
                    op,
                    ..Clause::default()
                };
                if i < b.len() && matches!(b[i], b'u' | b'g' | b'o') {
                    c.copy_from = Some(match b[i] {
                        b'u' => 6,
                        b'g' => 3,
                        _ => 0,
                    });
                    i += 1;
                } else {
                    while i < b.len() && matches!(b[i], b'r' | b'w' | b'x' | b'X' | b's' | b't') {
                        match b[i] {
                            b'r' => c.perms |= 0o444,
                            b'w' => c.perms |= 0o222,
                            b'x' => c.perms |= 0o111,
                            b'X' => c.cond_x = true,
                            b's' => c.perms |= 0o6000,
                            _ => c.perms |= 0o1000,
                        }
                        i += 1;
                    }
                }
                if len == MAX_CLAUSES {
                    return Err(bad("too many clauses"));
                }
                clauses[len] = c;
                len += 1;
            }
        }
        Ok(Chmod {
            clauses,
            len: len as u8,
        })
    }

    /// An octal mode (what ADD of a URL gets without `--chmod`).
    pub fn octal(mode: u32) -> Chmod {
        let mut clauses = [Clause::default(); MAX_CLAUSES];
        clauses[0] = Clause {
            who: 0o7777,
            op: b'=',
            perms: (mode & 0o7777) as u16,
            ..Clause::default()
        };
        Chmod { clauses, len: 1 }
    }

    /// The mode a file whose source mode is `mode` (permission bits) gets.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let mut m = (mode & 0o7777) as u16;
        for c in &self.clauses[..usize::from(self.len)] {
            let mut perms = c.perms;
            if let Some(shift) = c.copy_from {
                perms = ((m >> shift) & 0o7) * 0o111;
            }
            if c.cond_x && (is_dir || m & 0o111 != 0) {
                perms |= 0o111;
            }
            let p = perms & c.who;
            m = match c.op {
                b'+' => m | p,
                b'-' => m & !p,
                // `=` clears the class's rwx (and its set-id/sticky bit).
                _ => (m & !c.who) | p,
            };
        }
        u32::from(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(s: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(s).expect(s).apply(mode, dir)
    }

    #[test]
    fn octal_modes() {
        assert_eq!(ap("755", 0o600, false), 0o755);
        assert_eq!(ap("0644", 0o777, true), 0o644);
        assert_eq!(ap("4755", 0, false), 0o4755);
        assert!(Chmod::parse("8").is_err());
        assert!(Chmod::parse("17777").is_err());
    }

    #[test]
    fn symbolic_modes_follow_chmod() {
        assert_eq!(ap("u+x", 0o644, false), 0o744);
        assert_eq!(ap("+x", 0o644, false), 0o755);
        assert_eq!(ap("a-w", 0o664, false), 0o444);
        assert_eq!(ap("u=rwx,g=rx,o=", 0o600, false), 0o750);
        assert_eq!(ap("go-rwx", 0o755, false), 0o700);
        assert_eq!(ap("g=u", 0o640, false), 0o660);
        assert_eq!(ap("o=g", 0o650, false), 0o655);
        assert_eq!(ap("u+s", 0o755, false), 0o4755);
        assert_eq!(ap("g+s", 0o755, true), 0o2755);
        assert_eq!(ap("+t", 0o777, true), 0o1777);
        assert_eq!(ap("u=rw", 0o4755, false), 0o655);
        assert_eq!(ap("u+x-w", 0o644, false), 0o544);
        // X: execute for directories and already-executable files only.
        assert_eq!(ap("a+X", 0o644, false), 0o644);
        assert_eq!(ap("a+X", 0o644, true), 0o755);
        assert_eq!(ap("a+X", 0o744, false), 0o755);
        assert_eq!(ap("ug+rw", 0o400, false), 0o660);
    }

    #[test]
    fn bad_symbolic_modes_are_named() {
        for s in ["", "u", "x+u", "u+q", "u+x,", "rwx", "u+x,,g+x", "0x755"] {
            let e = Chmod::parse(s).expect_err(s);
            assert!(e.contains("--chmod"), "{s}: {e}");
        }
    }
}
