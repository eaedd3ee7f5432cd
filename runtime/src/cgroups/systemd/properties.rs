//! Unit properties: `linux.resources` -> the properties systemd owns (runc's mapping), and
//! `org.systemd.property.*` annotations (values in GVariant text form) as runc parses them.
//! Pure: unit-tested without root or systemd.

use super::dbus::Value;
use crate::cgroups::resources::{device_rules, shares_to_weight};
use crate::cgroups::CgroupError;
use oci_spec::runtime::LinuxResources;
use std::collections::HashMap;

/// One unit property: name and value.
pub type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

/// A numeric setting of 0 means "not set" (runc and docker treat it so).
fn nz<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|x| *x != T::default())
}

/// `-1` is "no limit": systemd's infinity.
fn limit(v: i64) -> u64 {
    if v < 0 {
        u64::MAX
    } else {
        v as u64
    }
}

/// The properties systemd owns for `r`, for a v1/hybrid host (`v1`) or cgroup2.
pub fn from_resources(r: &LinuxResources, v1: bool) -> Result<Vec<Property>, CgroupError> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(l) = nz(m.limit()) {
            let name = if v1 { "MemoryLimit" } else { "MemoryMax" };
            out.push(prop(name, Value::U64(limit(l))));
        }
        if !v1 {
            if let Some(l) = nz(m.reservation()) {
                out.push(prop("MemoryLow", Value::U64(limit(l))));
            }
            if let Some(s) = nz(m.swap()) {
                // OCI's swap is memory+swap; systemd's MemorySwapMax is swap only.
                let v = match (s, m.limit().unwrap_or(0)) {
                    (s, _) if s < 0 => u64::MAX,
                    (s, l) if l > 0 => {
                        if s < l {
                            return Err(CgroupError::Invalid(format!(
                                "linux.resources.memory.swap ({s}) must not be below linux.resources.memory.limit ({l})"
                            )));
                        }
                        (s - l) as u64
                    }
                    (s, _) => s as u64,
                };
                out.push(prop("MemorySwapMax", Value::U64(v)));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = nz(c.shares()) {
            if v1 {
                out.push(prop("CPUShares", Value::U64(s)));
            } else {
                out.push(prop("CPUWeight", Value::U64(shares_to_weight(s))));
            }
        }
        let period = nz(c.period());
        let quota = c.quota();
        if let Some(p) = period {
            out.push(prop("CPUQuotaPeriodUSec", Value::U64(p)));
        }
        if quota.is_some_and(|q| q != 0) || period.is_some() {
            // systemd takes quota per second, in steps of 10ms (rounded up, as runc does).
            let per_sec = match quota {
                Some(q) if q > 0 => {
                    let p = period.unwrap_or(100_000);
                    let v = (q as u64).saturating_mul(1_000_000) / p;
                    v.div_ceil(10_000) * 10_000
                }
                _ => u64::MAX,
            };
            out.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            out.push(prop(
                "AllowedCPUs",
                bytes(&bitmask(cpus, "linux.resources.cpu.cpus")?),
            ));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            out.push(prop(
                "AllowedMemoryNodes",
                bytes(&bitmask(mems, "linux.resources.cpu.mems")?),
            ));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() != 0 {
            out.push(prop("TasksMax", Value::U64(limit(p.limit()))));
        }
    }
    out.extend(devices(r));
    Ok(out)
}

fn bytes(b: &[u8]) -> Value {
    Value::Array("y".into(), b.iter().map(|x| Value::Byte(*x)).collect())
}

/// A cpuset list (`0-3,7`) as systemd's byte array: byte 0 holds CPUs 0-7, bit n%8.
pub fn bitmask(list: &str, field: &str) -> Result<Vec<u8>, CgroupError> {
    let bad = || CgroupError::Invalid(format!("{field}: {list:?} is not a list like \"0-3,7\""));
    let mut out: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        if a > b || b >= 8192 {
            return Err(bad());
        }
        for n in a..=b {
            if out.len() <= n / 8 {
                out.resize(n / 8 + 1, 0);
            }
            out[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(out)
}

/// DevicePolicy + DeviceAllow for the device rules (the spec's, then the default allow-list,
/// as the cgroupfs driver writes them). systemd can only express an allow-list: a rule list
/// that ends up allowing everything becomes DevicePolicy=auto with no entries; otherwise
/// DevicePolicy=strict with one entry per allowed device (`/dev/char/MAJOR:MINOR`, or
/// `char-NAME` by /proc/devices for a wildcard minor), and a deny rule removes an earlier
/// allow of the same entry. The cgroup files still get the exact rule list.
fn devices(r: &LinuxResources) -> Vec<Property> {
    let rules = device_rules(r);
    if rules.is_empty() {
        return Vec::new();
    }
    // Replay the list: `a` rules reset the state.
    let mut allow_all = false;
    let mut allowed: Vec<(String, String)> = Vec::new();
    for (allow, rule) in &rules {
        let mut it = rule.split_whitespace();
        let (Some(typ), Some(num), Some(access)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if typ == "a" {
            allow_all = *allow;
            allowed.clear();
            continue;
        }
        let kind = if typ == "b" { "block" } else { "char" };
        let (maj, min) = num.split_once(':').unwrap_or((num, "*"));
        let entry = match (maj, min) {
            ("*", _) => format!("{kind}-*"),
            (maj, "*") => format!("{kind}-{maj}"),
            (maj, min) => format!("/dev/{kind}/{maj}:{min}"),
        };
        if *allow {
            if !allow_all {
                allowed.retain(|(e, _)| *e != entry);
                allowed.push((entry, access.to_string()));
            }
        } else if allow_all {
            // systemd cannot express "everything but X": the file-level rules still deny it.
        } else {
            allowed.retain(|(e, _)| *e != entry);
        }
    }
    // systemd knows majors only by the names in /proc/devices: resolve "char-136" style entries.
    let names = proc_devices();
    let allowed: Vec<Value> = allowed
        .into_iter()
        .filter_map(|(e, a)| {
            let e = resolve_major(&e, &names)?;
            Some(Value::Struct(vec![Value::Str(e), Value::Str(a)]))
        })
        .collect();
    if allow_all {
        return vec![
            prop("DevicePolicy", Value::Str("auto".into())),
            prop("DeviceAllow", Value::Array("(ss)".into(), Vec::new())),
        ];
    }
    vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        prop("DeviceAllow", Value::Array("(ss)".into(), allowed)),
    ]
}

/// (kind, major) -> name from /proc/devices.
fn proc_devices() -> HashMap<(String, String), String> {
    let text = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    parse_proc_devices(&text)
}

fn parse_proc_devices(text: &str) -> HashMap<(String, String), String> {
    let mut out = HashMap::new();
    let mut kind = "";
    for line in text.lines() {
        match line.trim() {
            "Character devices:" => kind = "char",
            "Block devices:" => kind = "block",
            l => {
                if let Some((maj, name)) = l.split_once(' ') {
                    out.insert((kind.to_string(), maj.to_string()), name.trim().to_string());
                }
            }
        }
    }
    out
}

/// `char-136` -> `char-pts`; `char-*` stays; unknown majors are dropped (systemd refuses them).
fn resolve_major(e: &str, names: &HashMap<(String, String), String>) -> Option<String> {
    let Some((kind, maj)) = e.split_once('-') else {
        return Some(e.to_string());
    };
    if e.starts_with('/') || maj == "*" {
        return Some(e.to_string());
    }
    names
        .get(&(kind.to_string(), maj.to_string()))
        .map(|n| format!("{kind}-{n}"))
}

const ANNOTATION_PREFIX: &str = "org.systemd.property.";

/// Unit properties from `org.systemd.property.NAME` annotations, sorted by name. As runc: the
/// name is ASCII letters starting upper-case, the value is GVariant text, and a `…Sec` name
/// (lower-case letter before `Sec`) takes seconds and is sent as `…USec` in microseconds.
pub fn from_annotations(a: &HashMap<String, String>) -> Result<Vec<Property>, CgroupError> {
    let mut keys: Vec<&String> = a
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let v = &a[k];
        let bad = |why: String| CgroupError::Invalid(format!("annotations[{k:?}]: {why}"));
        let mut name = k[ANNOTATION_PREFIX.len()..].to_string();
        if name.len() < 3
            || !name.bytes().all(|b| b.is_ascii_alphabetic())
            || !name.as_bytes()[0].is_ascii_uppercase()
        {
            return Err(bad(
                "the property name must be at least 3 ASCII letters, starting upper-case".into(),
            ));
        }
        let mut value = parse_gvariant(v).map_err(|e| bad(format!("value {v:?}: {e}")))?;
        if let Some(stem) = name.strip_suffix("Sec") {
            if stem.as_bytes().last().is_some_and(u8::is_ascii_lowercase) {
                value =
                    Value::U64(sec_to_usec(&value).ok_or_else(|| {
                        bad(format!("value {v:?}: a number of seconds is needed"))
                    })?);
                name = format!("{stem}USec");
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

fn sec_to_usec(v: &Value) -> Option<u64> {
    const M: u64 = 1_000_000;
    Some(match v {
        Value::Double(d) if *d >= 0.0 => (d * M as f64) as u64,
        Value::Double(_) => return None,
        v => {
            let n = match v {
                Value::I16(x) => i64::from(*x),
                Value::I32(x) => i64::from(*x),
                Value::I64(x) => *x,
                v => return v.as_u64().map(|x| x.saturating_mul(M)),
            };
            u64::try_from(n).ok()?.saturating_mul(M)
        }
    })
}

/// Parses a GVariant text value of the forms runc accepts for these annotations: booleans,
/// integers (`int32` by default, or typed: `uint64 100`, `@t 100`, `byte 1`, ...), doubles,
/// quoted strings, `objectpath '/x'`, and arrays of these (`['a', 'b']`, `@as []`).
pub fn parse_gvariant(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.value(None)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at offset {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

const TYPE_WORDS: &[(&str, &str)] = &[
    ("boolean", "b"),
    ("byte", "y"),
    ("int16", "n"),
    ("uint16", "q"),
    ("int32", "i"),
    ("uint32", "u"),
    ("int64", "x"),
    ("uint64", "t"),
    ("double", "d"),
    ("string", "s"),
    ("objectpath", "o"),
    ("signature", "g"),
];

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn word(&mut self) -> &str {
        let st = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"_.-+".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[st..self.i]).unwrap_or_default()
    }

    /// One value; `want` is the expected type signature, if known. Nesting (arrays, type
    /// annotations) is bounded so hostile text cannot exhaust the stack.
    fn value(&mut self, want: Option<&str>) -> Result<Value, String> {
        if self.depth >= 32 {
            return Err("value nested too deeply".into());
        }
        self.depth += 1;
        let v = self.value_inner(want);
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.ws();
        let c = *self.s.get(self.i).ok_or("value expected")?;
        if c == b'@' {
            self.i += 1;
            let st = self.i;
            while self.i < self.s.len() && !self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
            let sig = std::str::from_utf8(&self.s[st..self.i])
                .map_err(|_| "bad type")?
                .to_string();
            return self.value(Some(&sig));
        }
        if c == b'[' {
            return self.array(want);
        }
        self.scalar(c, want)
    }

    fn array(&mut self, want: Option<&str>) -> Result<Value, String> {
        self.i += 1;
        let elem = want.and_then(|w| w.strip_prefix('a')).map(str::to_string);
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&b']') {
                self.i += 1;
                break;
            }
            if !items.is_empty() {
                if self.s.get(self.i) != Some(&b',') {
                    return Err("',' or ']' expected in array".into());
                }
                self.i += 1;
            }
            let first_sig = items.first().map(Value::signature);
            let v = self.value(elem.as_deref().or(first_sig.as_deref()))?;
            if let Some(f) = &first_sig {
                if v.signature() != *f {
                    return Err("array elements of different types".into());
                }
            }
            items.push(v);
        }
        let sig = match (elem, items.first()) {
            (Some(e), _) => e,
            (None, Some(f)) => f.signature(),
            (None, None) => return Err("empty array needs a type (@as [])".into()),
        };
        Ok(Value::Array(sig, items))
    }

    fn scalar(&mut self, c: u8, want: Option<&str>) -> Result<Value, String> {
        if c == b'\'' || c == b'"' {
            let s = self.string(c)?;
            return Ok(match want {
                Some("o") => Value::Path(s),
                Some("g") => Value::Sig(s),
                None | Some("s") => Value::Str(s),
                Some(w) => return Err(format!("a string where {w} is expected")),
            });
        }
        let st = self.i;
        let w = self.word().to_string();
        if let Some((_, sig)) = TYPE_WORDS.iter().find(|(n, _)| *n == w) {
            return self.value(Some(sig));
        }
        if w.is_empty() {
            return Err(format!("unexpected character at offset {st}"));
        }
        match w.as_str() {
            "true" | "false" => {
                return match want {
                    None | Some("b") => Ok(Value::Bool(w == "true")),
                    Some(x) => Err(format!("a boolean where {x} is expected")),
                }
            }
            _ => {}
        }
        number(&w, want)
    }

    fn string(&mut self, q: u8) -> Result<String, String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            if c == q {
                return String::from_utf8(out).map_err(|_| "string not UTF-8".into());
            }
            if c == b'\\' {
                let e = *self.s.get(self.i).ok_or("unterminated string")?;
                self.i += 1;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    other => other,
                });
            } else {
                out.push(c);
            }
        }
        Err("unterminated string".into())
    }
}

fn number(w: &str, want: Option<&str>) -> Result<Value, String> {
    let bad = || format!("{w:?} is not a number");
    let is_float = w.contains('.') || w.contains('e') && !w.starts_with("0x");
    let int = || -> Result<i128, String> {
        if let Some(h) = w.strip_prefix("0x") {
            i128::from_str_radix(h, 16).map_err(|_| bad())
        } else {
            w.parse::<i128>().map_err(|_| bad())
        }
    };
    let range = |v: i128, lo: i128, hi: i128| {
        if v < lo || v > hi {
            Err(format!("{w} is out of range"))
        } else {
            Ok(v)
        }
    };
    Ok(match want {
        Some("d") => Value::Double(w.parse().map_err(|_| bad())?),
        None if is_float => Value::Double(w.parse().map_err(|_| bad())?),
        Some("y") => Value::Byte(range(int()?, 0, 255)? as u8),
        Some("n") => Value::I16(range(int()?, i16::MIN.into(), i16::MAX.into())? as i16),
        Some("q") => Value::U16(range(int()?, 0, u16::MAX.into())? as u16),
        None | Some("i") => Value::I32(range(int()?, i32::MIN.into(), i32::MAX.into())? as i32),
        Some("u") => Value::U32(range(int()?, 0, u32::MAX.into())? as u32),
        Some("x") => Value::I64(range(int()?, i64::MIN.into(), i64::MAX.into())? as i64),
        Some("t") => Value::U64(range(int()?, 0, u64::MAX.into())? as u64),
        Some(x) => return Err(format!("a number where {x} is expected")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn get<'a>(p: &'a [Property], n: &str) -> Option<&'a Value> {
        p.iter().find(|(k, _)| k == n).map(|(_, v)| v)
    }

    #[test]
    fn memory_cpu_pids_on_v2() {
        let p = from_resources(
            &res(json!({"memory": {"limit": 1 << 30, "reservation": 1 << 20, "swap": (1u64 << 30) + 4096},
                        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,9", "mems": "0"},
                        "pids": {"limit": 100}})),
            false,
        )
        .unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(1 << 30)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(1 << 20)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(4096)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(
            get(&p, "AllowedCPUs"),
            Some(&Value::Array(
                "y".into(),
                vec![Value::Byte(0b111), Value::Byte(0b10)]
            ))
        );
        assert_eq!(
            get(&p, "AllowedMemoryNodes"),
            Some(&Value::Array("y".into(), vec![Value::Byte(1)]))
        );
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(100)));
        assert!(get(&p, "DevicePolicy").is_none());
    }

    #[test]
    fn v1_names_and_unlimited_values() {
        let p = from_resources(
            &res(json!({"memory": {"limit": -1, "reservation": 5}, "cpu": {"shares": 512, "quota": -1}, "pids": {"limit": -1}})),
            true,
        )
        .unwrap();
        assert_eq!(get(&p, "MemoryLimit"), Some(&Value::U64(u64::MAX)));
        assert!(get(&p, "MemoryLow").is_none());
        assert_eq!(get(&p, "CPUShares"), Some(&Value::U64(512)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
    }

    #[test]
    fn quota_rounds_up_to_10ms_and_bad_values_are_errors() {
        let p = from_resources(
            &res(json!({"cpu": {"quota": 12345, "period": 100000}})),
            false,
        )
        .unwrap();
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(130_000)));
        let e = from_resources(&res(json!({"memory": {"limit": 100, "swap": 50}})), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.memory.swap"), "{e}");
        let e = from_resources(&res(json!({"cpu": {"cpus": "3-1"}})), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.resources.cpu.cpus"), "{e}");
    }

    #[test]
    fn device_rules_become_an_allow_list() {
        let p = from_resources(
            &res(json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]})),
            false,
        )
        .unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("strict".into())));
        let Some(Value::Array(_, list)) = get(&p, "DeviceAllow") else {
            panic!("no DeviceAllow")
        };
        let entries: Vec<String> = list
            .iter()
            .map(|v| match v {
                Value::Struct(f) => {
                    format!("{} {}", f[0].as_str().unwrap(), f[1].as_str().unwrap())
                }
                _ => String::new(),
            })
            .collect();
        assert!(
            entries.contains(&"/dev/char/10:229 rw".to_string()),
            "{entries:?}"
        );
        assert!(
            entries.contains(&"/dev/char/1:3 rwm".to_string()),
            "{entries:?}"
        );
        assert!(entries.contains(&"char-* m".to_string()), "{entries:?}");
        let p = from_resources(
            &res(json!({"devices": [{"allow": true, "access": "rwm"}]})),
            false,
        )
        .unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("auto".into())));
    }

    #[test]
    fn proc_devices_names_resolve_wildcard_minors() {
        let names =
            parse_proc_devices("Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n");
        assert_eq!(
            resolve_major("char-136", &names).as_deref(),
            Some("char-pts")
        );
        assert_eq!(
            resolve_major("block-8", &names).as_deref(),
            Some("block-sd")
        );
        assert_eq!(resolve_major("char-*", &names).as_deref(), Some("char-*"));
        assert_eq!(resolve_major("char-999", &names), None);
        assert_eq!(
            resolve_major("/dev/char/1:3", &names).as_deref(),
            Some("/dev/char/1:3")
        );
    }

    #[test]
    fn gvariant_text_forms() {
        assert_eq!(parse_gvariant("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_gvariant("42").unwrap(), Value::I32(42));
        assert_eq!(parse_gvariant("uint64 42").unwrap(), Value::U64(42));
        assert_eq!(parse_gvariant("@t 42").unwrap(), Value::U64(42));
        assert_eq!(parse_gvariant("byte 0x10").unwrap(), Value::Byte(16));
        assert_eq!(parse_gvariant("1.5").unwrap(), Value::Double(1.5));
        assert_eq!(parse_gvariant("'a b'").unwrap(), Value::Str("a b".into()));
        assert_eq!(
            parse_gvariant("\"x\\\"y\"").unwrap(),
            Value::Str("x\"y".into())
        );
        assert_eq!(
            parse_gvariant("objectpath '/a'").unwrap(),
            Value::Path("/a".into())
        );
        assert_eq!(
            parse_gvariant("['a', 'b']").unwrap(),
            Value::Array(
                "s".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            )
        );
        assert_eq!(
            parse_gvariant("@as []").unwrap(),
            Value::Array("s".into(), vec![])
        );
        assert!(parse_gvariant("uint64 -1").is_err());
        assert!(parse_gvariant("4294967296").is_err());
        assert!(parse_gvariant("'open").is_err());
        assert!(parse_gvariant("[1, 'a']").is_err());
        assert!(parse_gvariant("1 2").is_err());
        assert!(parse_gvariant(&"[".repeat(10_000)).is_err());
        assert!(parse_gvariant(&"uint64 ".repeat(10_000)).is_err());
    }

    #[test]
    fn annotations_as_runc_reads_them() {
        let a: HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopSec", "5"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.CPUAccounting", "true"),
            ("org.systemd.property.MemoryHigh", "uint64 1048576"),
            ("other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = from_annotations(&a).unwrap();
        assert_eq!(get(&p, "TimeoutStopUSec"), Some(&Value::U64(5_000_000)));
        assert_eq!(
            get(&p, "CollectMode"),
            Some(&Value::Str("inactive-or-failed".into()))
        );
        assert_eq!(get(&p, "CPUAccounting"), Some(&Value::Bool(true)));
        assert_eq!(get(&p, "MemoryHigh"), Some(&Value::U64(1 << 20)));
        assert_eq!(p.len(), 4);
        // "USec" names are passed as they are.
        let one = |k: &str, v: &str| {
            from_annotations(&[(k.to_string(), v.to_string())].into_iter().collect())
        };
        assert_eq!(
            one("org.systemd.property.TimeoutStopUSec", "uint64 7").unwrap()[0],
            ("TimeoutStopUSec".to_string(), Value::U64(7))
        );
        let e = one("org.systemd.property.TimeoutStopSec", "'x'")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("org.systemd.property.TimeoutStopSec") && e.contains("seconds"),
            "{e}"
        );
        let e = one("org.systemd.property.lower", "1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("upper-case"), "{e}");
        let e = one("org.systemd.property.Bad1", "1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ASCII letters"), "{e}");
        assert!(one("org.systemd.property.Xyz", "'open").is_err());
    }
}
