//! `RUN --mount=type=...,key=value` specifications.

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// Bind a directory of the context or another stage/image (read-only
    /// unless `rw`).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret file (or environment variable with `env=`).
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// How concurrent builds share one cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Several writers at once (the default).
    #[default]
    Shared,
    /// Each writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One parsed `--mount` flag. String values are kept unexpanded; the
/// executor expands them with the stage's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=` (default `bind`).
    pub kind: MountType,
    /// `target=`/`dst=`/`destination=`. Required except for secret and ssh
    /// (secret defaults to `/run/secrets/<id>` unless `env=` is given).
    pub target: Option<String>,
    /// `source=`/`src=`: path inside `from` (or the context).
    pub source: Option<String>,
    /// `from=`: stage name, stage index or image; empty means the context.
    pub from: Option<String>,
    /// `ro`/`readonly`, `rw`/`readwrite`, after type defaults.
    pub read_only: bool,
    /// `id=` (cache id, secret id, ssh id). For cache it defaults to the
    /// target, for secrets to the target's file name, for ssh to `default`.
    pub id: Option<String>,
    /// `sharing=` (cache only).
    pub sharing: CacheSharing,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `required` (secret, ssh): fail when not provided.
    pub required: bool,
    /// `size=` in bytes (tmpfs).
    pub size: Option<u64>,
    /// `env=` (secret): expose the secret as this environment variable.
    pub env: Option<String>,
}

/// Parses one `--mount` value (comma-separated, CSV-quoted fields).
pub fn parse_mount(spec: &str) -> Result<Mount, String> {
    let fields = csv_fields(spec)?;
    let mut m = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        read_only: true,
        id: None,
        sharing: CacheSharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
        env: None,
    };
    let mut read_only: Option<bool> = None;
    let mut sharing: Option<CacheSharing> = None;
    let mut required: Option<bool> = None;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = || {
            value
                .map(str::to_string)
                .ok_or_else(|| format!("field {key:?} must be key=value"))
        };
        match key.as_str() {
            "type" => {
                m.kind = match need()?.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    other => {
                        return Err(format!(
                        "unsupported mount type {other:?}: use bind, cache, tmpfs, secret or ssh"
                    ))
                    }
                }
            }
            "from" => m.from = Some(need()?),
            "source" | "src" => m.source = Some(need()?),
            "target" | "dst" | "destination" => m.target = Some(need()?),
            "readonly" | "ro" => read_only = Some(parse_bool(&key, value)?),
            "readwrite" | "rw" => read_only = Some(!parse_bool(&key, value)?),
            "required" => required = Some(parse_bool(&key, value)?),
            "id" => m.id = Some(need()?),
            "sharing" => {
                sharing = Some(match need()?.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    other => {
                        return Err(format!(
                            "unsupported sharing value {other:?}: use shared, private or locked"
                        ))
                    }
                })
            }
            "mode" => {
                let v = need()?;
                m.mode = Some(
                    u32::from_str_radix(&v, 8)
                        .map_err(|_| format!("invalid mode {v:?}: use octal, e.g. 0600"))?,
                );
            }
            "uid" | "gid" => {
                let v = need()?;
                let n = v
                    .parse::<u32>()
                    .map_err(|_| format!("invalid {key} {v:?}: use a number"))?;
                if key == "uid" {
                    m.uid = Some(n);
                } else {
                    m.gid = Some(n);
                }
            }
            "size" => {
                let v = need()?;
                m.size =
                    Some(parse_size(&v).ok_or_else(|| {
                        format!("invalid size {v:?}: use bytes or a unit, e.g. 64m")
                    })?);
            }
            "env" => m.env = Some(need()?),
            _ => return Err(format!("unexpected key {key:?} in {spec:?}")),
        }
    }
    let kind_name = match m.kind {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    };
    if let Some(s) = sharing {
        if m.kind != MountType::Cache {
            return Err(format!(
                "sharing= is only valid for cache mounts, not {kind_name}"
            ));
        }
        m.sharing = s;
    }
    if m.size.is_some() && m.kind != MountType::Tmpfs {
        return Err(format!(
            "size= is only valid for tmpfs mounts, not {kind_name}"
        ));
    }
    if m.env.is_some() && m.kind != MountType::Secret {
        return Err(format!(
            "env= is only valid for secret mounts, not {kind_name}"
        ));
    }
    if let Some(r) = required {
        if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
            return Err(format!(
                "required is only valid for secret and ssh mounts, not {kind_name}"
            ));
        }
        m.required = r;
    }
    if m.from.is_some()
        && matches!(
            m.kind,
            MountType::Secret | MountType::Ssh | MountType::Tmpfs
        )
    {
        return Err(format!("{kind_name} mounts do not take from="));
    }
    m.read_only = read_only.unwrap_or(matches!(
        m.kind,
        MountType::Bind | MountType::Secret | MountType::Ssh
    ));
    match m.kind {
        MountType::Bind | MountType::Cache | MountType::Tmpfs => {
            if matches!(m.target.as_deref(), None | Some("")) {
                return Err(format!("{kind_name} mount requires target=PATH"));
            }
        }
        MountType::Secret => {
            if m.id.is_none() {
                match m.target.as_deref() {
                    Some(t) if !t.is_empty() => {
                        let base = t.trim_end_matches('/').rsplit('/').next().unwrap_or(t);
                        m.id = Some(base.to_string());
                    }
                    _ if m.env.is_none() => {
                        return Err("secret mount requires id= or target=".to_string())
                    }
                    _ => {}
                }
            }
            if m.target.is_none() && m.env.is_none() {
                m.target = m.id.as_ref().map(|id| format!("/run/secrets/{id}"));
            }
        }
        MountType::Ssh => {
            if m.id.is_none() {
                m.id = Some("default".to_string());
            }
        }
    }
    Ok(m)
}

/// Go's `strconv.ParseBool`; a bare key means true.
fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None => Ok(true),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(v) => Err(format!("invalid value {v:?} for {key}: use true or false")),
    }
}

/// Sizes like `1024`, `64m`, `1.5GiB` (binary units, as docker's RAMInBytes).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    let value: f64 = num.parse().ok()?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

/// Splits a CSV record: fields separated by `,`, a field may be quoted with
/// `"` (and `""` inside it for a quote).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Err("empty mount specification".to_string());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated quote in {s:?}")),
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            if !matches!(chars.get(i), None | Some(',')) {
                return Err(format!("unexpected text after a quoted field in {s:?}"));
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(format!("bare \" in an unquoted field of {s:?}"));
                }
                field.push(c);
                i += 1;
            }
        }
        fields.push(field);
        if i >= chars.len() {
            return Ok(fields);
        }
        i += 1; // the comma
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_defaults() {
        let m = parse_mount("target=/src").expect("ok");
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.read_only);
        let m = parse_mount("type=bind,from=build,source=/out,target=/in,rw").expect("ok");
        assert_eq!(m.from.as_deref(), Some("build"));
        assert_eq!(m.source.as_deref(), Some("/out"));
        assert!(!m.read_only);
    }

    #[test]
    fn cache_mount_keys() {
        let m = parse_mount(
            "type=cache,target=/root/.cache,sharing=locked,id=pip,mode=0755,uid=1000,gid=1000",
        )
        .expect("ok");
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.sharing, CacheSharing::Locked);
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.mode, Some(0o755));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(1000)));
        assert!(!m.read_only);
        assert!(
            parse_mount("type=cache,target=/c,ro=true")
                .expect("ok")
                .read_only
        );
    }

    #[test]
    fn tmpfs_secret_ssh() {
        let m = parse_mount("type=tmpfs,target=/tmp,size=64m").expect("ok");
        assert_eq!(m.size, Some(64 * 1024 * 1024));
        let m = parse_mount("type=secret,id=aws,required").expect("ok");
        assert_eq!(m.target.as_deref(), Some("/run/secrets/aws"));
        assert!(m.required && m.read_only);
        let m = parse_mount("type=secret,target=/root/.npmrc").expect("ok");
        assert_eq!(m.id.as_deref(), Some(".npmrc"));
        let m = parse_mount("type=secret,id=tok,env=TOKEN").expect("ok");
        assert_eq!((m.target, m.env.as_deref()), (None, Some("TOKEN")));
        let m = parse_mount("type=ssh").expect("ok");
        assert_eq!(m.id.as_deref(), Some("default"));
        let m = parse_mount("\"type=bind\",\"target=/a,b\"").expect("ok");
        assert_eq!(m.target.as_deref(), Some("/a,b"));
    }

    #[test]
    fn invalid_mounts() {
        for spec in [
            "",
            "type=nfs,target=/x",
            "type=bind",
            "type=cache",
            "type=secret",
            "type=bind,target=/x,sharing=locked",
            "type=cache,target=/x,sharing=sometimes",
            "type=secret,id=a,from=stage",
            "type=cache,target=/x,mode=999",
            "type=cache,target=/x,uid=me",
            "type=bind,target=/x,size=1m",
            "type=tmpfs,target=/x,size=lots",
            "target=/x,colour=blue",
            "target",
            "target=/x,ro=maybe",
            "target=/x,\"unterminated",
            "ta\"rget=/x",
        ] {
            assert!(parse_mount(spec).is_err(), "{spec:?}");
        }
    }
}
