//! The container process: environment, executable lookup, user and group switch.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The value of `key` in a KEY=value environment list.
pub fn env_get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Looks up `arg0` like execvp, in the current root, using PATH from the container's
/// environment; the error strings match runc's (callers map them to exit codes 126/127).
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<(), String> {
        let md = std::fs::metadata(p)
            .map_err(|e| format!("exec: {arg0:?}: stat {}: {}", p.display(), errno_text(&e)))?;
        if md.is_dir() {
            return Err(format!("exec: {arg0:?}: is a directory"));
        }
        if md.permissions().mode() & 0o111 == 0 {
            return Err(format!("exec: {arg0:?}: permission denied"));
        }
        Ok(())
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        check(&p)?;
        return Ok(p);
    }
    let path = env_get(env, "PATH")
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        match check(&cand) {
            Ok(()) => return Ok(cand),
            Err(e) if e.ends_with("permission denied") => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| format!("exec: {arg0:?}: executable file not found in $PATH")))
}

/// Lower-case strerror text like Go prints ("no such file or directory").
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// The home directory of `uid` from the container's /etc/passwd, `/` when unknown (runc's rule).
pub fn home_of(uid: u32, passwd: &str) -> String {
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
        })
        .next()
        .unwrap_or_else(|| "/".into())
}

/// The environment the process gets: the spec's, plus HOME when it is missing.
pub fn final_env(env: &[String], uid: u32) -> Vec<String> {
    let mut out = env.to_vec();
    if env_get(env, "HOME").is_none() {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        out.push(format!("HOME={}", home_of(uid, &passwd)));
    }
    out
}

/// Checks `process.env` entries as runc does: each must be `NAME=value` with a non-empty name.
pub fn validate_env(env: &[String]) -> Result<(), String> {
    for e in env {
        match e.split_once('=') {
            Some((name, _)) if !name.is_empty() => {}
            Some(_) => return Err(format!("environment variable name can't be empty: {e:?}")),
            None => return Err(format!("invalid environment variable: {e:?}")),
        }
    }
    Ok(())
}

/// Converts strings to C strings for execve, rejecting interior NULs.
pub fn cstrings(items: &[String], what: &str) -> Result<Vec<CString>, String> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            CString::new(s.as_bytes()).map_err(|_| format!("{what}[{i}]: contains a NUL byte"))
        })
        .collect()
}

/// Sets supplementary groups, gid and uid, keeping capabilities across the uid change so the
/// configured sets can be applied afterwards.
pub fn switch_user(
    uid: u32,
    gid: u32,
    additional: &[u32],
    setgroups_allowed: bool,
) -> Result<(), String> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    if setgroups_allowed {
        let groups: Vec<Gid> = additional.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&groups).map_err(|e| format!("process.user.additionalGids: setgroups: {e}"))?;
    } else if !additional.is_empty() {
        return Err("process.user.additionalGids: cannot set supplementary groups: setgroups is denied in this user namespace".into());
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let g = Gid::from_raw(gid);
    setresgid(g, g, g).map_err(|e| format!("process.user.gid: setgid {gid}: {e}"))?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).map_err(|e| format!("process.user.uid: setuid {uid}: {e}"))?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_get_takes_last_value() {
        let env = vec![
            "A=1".to_string(),
            "PATH=/bin".to_string(),
            "A=2".to_string(),
        ];
        assert_eq!(env_get(&env, "A"), Some("2"));
        assert_eq!(env_get(&env, "PATH"), Some("/bin"));
        assert_eq!(env_get(&env, "PAT"), None);
    }

    #[test]
    fn env_entries_need_a_name_and_an_equals_sign() {
        assert!(validate_env(&["A=1".into(), "B=".into(), "C==x".into()]).is_ok());
        assert_eq!(
            validate_env(&["NOEQUALS".into()]).unwrap_err(),
            "invalid environment variable: \"NOEQUALS\""
        );
        assert!(validate_env(&["=x".into()])
            .unwrap_err()
            .contains("name can't be empty"));
    }

    #[test]
    fn home_from_passwd() {
        let p = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n";
        assert_eq!(home_of(1000, p), "/home/u");
        assert_eq!(home_of(5, p), "/");
    }

    #[test]
    fn lookup_errors_match_runc() {
        let env = vec!["PATH=/nonexistent-dir".to_string()];
        assert_eq!(
            find_executable("nope", &env).unwrap_err(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert!(find_executable("/nonexistent/x", &env)
            .unwrap_err()
            .contains("no such file or directory"));
        assert_eq!(
            find_executable("/bin/sh", &env).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
