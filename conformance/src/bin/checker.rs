//! `berth-conformance-checker`: runs inside a container and prints facts about its own process
//! and view of the system as one JSON object on stdout, so the suite can compare them with the
//! bundle's config.json.
//!
//! It depends on nothing but std (plus one libc call declared here), because `build.rs` compiles
//! this file alone with `rustc -C target-feature=+crt-static` into a static executable that runs
//! in a busybox rootfs.
//!
//! Usage: `checker SUBCOMMAND [ARGS...]`, subcommands: `facts`, `ids`, `caps`, `rlimits`,
//! `mount PATH...`, `access PATH...`, `stat PATH...`, `sysctl NAME...`, `ns`, `fds`,
//! `read PATH`, `write PATH TEXT`.
//! Exit status: 0 with JSON on stdout, 2 with a message on stderr for bad usage.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// A JSON value, just enough to print facts.
enum J {
    Null,
    Bool(bool),
    Num(i128),
    Str(String),
    Arr(Vec<J>),
    Obj(BTreeMap<String, J>),
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => {
                let _ = write!(out, "{n}");
            }
            J::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    J::Str(k.clone()).write(out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn s(v: impl Into<String>) -> J {
    J::Str(v.into())
}

fn obj(pairs: Vec<(&str, J)>) -> J {
    J::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The fields of /proc/self/status as a map.
fn status() -> BTreeMap<String, String> {
    let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn num_list(v: Option<&String>) -> Vec<J> {
    v.map(|v| {
        v.split_whitespace()
            .filter_map(|x| x.parse::<i128>().ok())
            .map(J::Num)
            .collect()
    })
    .unwrap_or_default()
}

fn ids(st: &BTreeMap<String, String>) -> J {
    let uids = num_list(st.get("Uid"));
    let gids = num_list(st.get("Gid"));
    let pick = |v: &Vec<J>, i: usize| match v.get(i) {
        Some(J::Num(n)) => J::Num(*n),
        _ => J::Null,
    };
    obj(vec![
        ("uid", pick(&uids, 0)),
        ("euid", pick(&uids, 1)),
        ("gid", pick(&gids, 0)),
        ("egid", pick(&gids, 1)),
        ("groups", J::Arr(num_list(st.get("Groups")))),
    ])
}

fn caps(st: &BTreeMap<String, String>) -> J {
    let mut m = BTreeMap::new();
    for (key, name) in [
        ("CapInh", "inheritable"),
        ("CapPrm", "permitted"),
        ("CapEff", "effective"),
        ("CapBnd", "bounding"),
        ("CapAmb", "ambient"),
    ] {
        let v = st
            .get(key)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .map(|n| J::Num(n as i128))
            .unwrap_or(J::Null);
        m.insert(name.to_string(), v);
    }
    J::Obj(m)
}

#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
}

const RLIMITS: [(&str, i32); 16] = [
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

fn rlimits() -> J {
    let mut m = BTreeMap::new();
    for (name, res) in RLIMITS {
        let mut r = Rlimit { cur: 0, max: 0 };
        // SAFETY: `r` is a valid, writable struct with the layout of `struct rlimit` on 64-bit
        // Linux; getrlimit only writes into it.
        let rc = unsafe { getrlimit(res, &mut r) };
        if rc == 0 {
            let n = |v: u64| {
                if v == u64::MAX {
                    J::Num(-1)
                } else {
                    J::Num(v as i128)
                }
            };
            m.insert(
                name.to_string(),
                obj(vec![("soft", n(r.cur)), ("hard", n(r.max))]),
            );
        }
    }
    J::Obj(m)
}

fn namespaces() -> J {
    let mut m = BTreeMap::new();
    if let Ok(dir) = fs::read_dir("/proc/self/ns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(t) = fs::read_link(e.path()) {
                m.insert(name, s(t.to_string_lossy()));
            }
        }
    }
    J::Obj(m)
}

fn fds() -> J {
    // Collect the names first: the directory stream itself holds one fd, which is left out by
    // re-checking every entry after the stream is closed.
    let names: Vec<String> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut m = BTreeMap::new();
    for n in names {
        if let Ok(t) = fs::read_link(format!("/proc/self/fd/{n}")) {
            m.insert(n, s(t.to_string_lossy()));
        }
    }
    J::Obj(m)
}

fn link_of(fd: u32) -> J {
    fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|t| s(t.to_string_lossy()))
        .unwrap_or(J::Null)
}

fn facts() -> J {
    let st = status();
    let env: BTreeMap<String, J> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                s(v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    let read = |p: &str| {
        fs::read_to_string(p)
            .map(|v| s(v.trim_end()))
            .unwrap_or(J::Null)
    };
    let field = |k: &str| st.get(k).map(|v| s(v.clone())).unwrap_or(J::Null);
    obj(vec![
        ("ids", ids(&st)),
        ("caps", caps(&st)),
        ("no_new_privs", field("NoNewPrivs")),
        ("seccomp", field("Seccomp")),
        ("umask", field("Umask")),
        ("rlimits", rlimits()),
        (
            "cwd",
            std::env::current_dir()
                .map(|p| s(p.to_string_lossy()))
                .unwrap_or(J::Null),
        ),
        ("env", J::Obj(env)),
        ("hostname", read("/proc/sys/kernel/hostname")),
        ("domainname", read("/proc/sys/kernel/domainname")),
        ("oom_score_adj", read("/proc/self/oom_score_adj")),
        ("namespaces", namespaces()),
        ("cgroup", read("/proc/self/cgroup")),
        (
            "stdio",
            obj(vec![
                ("0", link_of(0)),
                ("1", link_of(1)),
                ("2", link_of(2)),
            ]),
        ),
        ("pid", J::Num(std::process::id() as i128)),
    ])
}

/// The mountinfo lines whose mount point is `path`, oldest first (the last one is visible).
fn mount(path: &str) -> J {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if f.len() < 6 || f[4] != path {
            continue;
        }
        out.push(obj(vec![
            ("root", s(f[3])),
            ("mount_point", s(f[4])),
            ("options", s(f[5])),
            (
                "optional",
                J::Arr(f[6..].iter().map(|x| s(*x)).collect::<Vec<_>>()),
            ),
            ("fstype", s(*r.first().unwrap_or(&""))),
            ("source", s(*r.get(1).unwrap_or(&""))),
            ("super_options", s(*r.get(2).unwrap_or(&""))),
        ]));
    }
    J::Arr(out)
}

fn access(path: &str) -> J {
    let meta = fs::metadata(path);
    let exists = meta.is_ok();
    let is_dir = meta.as_ref().map(|m| m.is_dir()).unwrap_or(false);
    let (readable, read_error) = if is_dir {
        match fs::read_dir(path) {
            Ok(_) => (true, J::Null),
            Err(e) => (false, s(e.to_string())),
        }
    } else {
        match fs::File::open(path) {
            Ok(mut f) => {
                let mut buf = [0u8; 64];
                match std::io::Read::read(&mut f, &mut buf) {
                    Ok(_) => (true, J::Null),
                    Err(e) => (false, s(e.to_string())),
                }
            }
            Err(e) => (false, s(e.to_string())),
        }
    };
    let (writable, write_error) = if is_dir {
        let probe = format!("{}/.berth-conformance-probe", path.trim_end_matches('/'));
        match fs::File::create(&probe) {
            Ok(_) => {
                let _ = fs::remove_file(&probe);
                (true, J::Null)
            }
            Err(e) => (false, s(e.to_string())),
        }
    } else {
        match fs::OpenOptions::new().write(true).open(path) {
            Ok(_) => (true, J::Null),
            Err(e) => (false, s(e.to_string())),
        }
    };
    obj(vec![
        ("exists", J::Bool(exists)),
        ("dir", J::Bool(is_dir)),
        ("readable", J::Bool(readable)),
        ("read_error", read_error),
        ("writable", J::Bool(writable)),
        ("write_error", write_error),
    ])
}

fn stat(path: &str) -> J {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return obj(vec![("error", s(e.to_string()))]),
    };
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        "l"
    } else if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else if ft.is_fifo() {
        "p"
    } else if ft.is_dir() {
        "d"
    } else if ft.is_socket() {
        "s"
    } else {
        "f"
    };
    let rdev = meta.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    let target = fs::read_link(path)
        .map(|t| s(t.to_string_lossy()))
        .unwrap_or(J::Null);
    obj(vec![
        ("type", s(kind)),
        ("major", J::Num(major as i128)),
        ("minor", J::Num(minor as i128)),
        ("mode", J::Num((meta.mode() & 0o7777) as i128)),
        ("uid", J::Num(meta.uid() as i128)),
        ("gid", J::Num(meta.gid() as i128)),
        ("target", target),
    ])
}

fn per_arg(args: &[String], f: impl Fn(&str) -> J) -> J {
    J::Obj(args.iter().map(|a| (a.clone(), f(a))).collect())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!(
            "usage: checker facts|ids|caps|rlimits|mount|access|stat|sysctl|ns|fds|read|write ..."
        );
        std::process::exit(2);
    };
    let rest = &args[1..];
    let out = match cmd.as_str() {
        "facts" => facts(),
        "ids" => ids(&status()),
        "caps" => caps(&status()),
        "rlimits" => rlimits(),
        "ns" => namespaces(),
        "fds" => fds(),
        "mount" => per_arg(rest, mount),
        "access" => per_arg(rest, access),
        "stat" => per_arg(rest, stat),
        "sysctl" => per_arg(rest, |name| {
            let p = format!("/proc/sys/{}", name.replace('.', "/"));
            fs::read_to_string(p)
                .map(|v| s(v.trim_end()))
                .unwrap_or(J::Null)
        }),
        "read" => per_arg(rest, |p| match fs::read(p) {
            Ok(b) => obj(vec![("content", s(String::from_utf8_lossy(&b)))]),
            Err(e) => obj(vec![("error", s(e.to_string()))]),
        }),
        "write" if rest.len() == 2 => {
            let r = fs::write(&rest[0], rest[1].as_bytes());
            obj(vec![(
                "error",
                r.err().map(|e| s(e.to_string())).unwrap_or(J::Null),
            )])
        }
        other => {
            eprintln!("checker: unknown subcommand {other:?}");
            std::process::exit(2);
        }
    };
    let mut text = String::new();
    out.write(&mut text);
    text.push('\n');
    let _ = std::io::stdout().write_all(text.as_bytes());
}
