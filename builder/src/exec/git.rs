//! ADD of a git repository (`ADD https://host/repo.git#ref:subdir /dst`,
//! `git@host:repo.git`, `git://`, `ssh://`): the repository is cloned with
//! the host's `git` into a scratch directory before the step's cache key is
//! computed (the key holds the commit), then copied like a directory.
//!
//! The URL comes from the Dockerfile, so git runs with only the network
//! transports allowed (`ext::`, `file://` and local paths are refused, for
//! submodules too), no prompts, no system or global config.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ExecError;

/// A git source of ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository URL (fragment removed).
    pub url: String,
    /// Branch, tag or commit (`#ref`); None: the remote's HEAD.
    pub reference: Option<String>,
    /// Directory inside the repository (`#ref:dir`); empty: all of it.
    pub subdir: String,
}

/// Whether an ADD source names a git repository, as BuildKit decides:
/// `git@`, `git://` and `ssh://` URLs, and http(s) URLs whose path ends in
/// `.git` (before any `#fragment`).
pub fn is_git_source(src: &str) -> bool {
    let base = src.split('#').next().unwrap_or(src);
    src.starts_with("git@")
        || src.starts_with("git://")
        || src.starts_with("ssh://")
        || ((src.starts_with("http://") || src.starts_with("https://")) && base.ends_with(".git"))
}

/// Parses a git source: `URL[#REF[:SUBDIR]]`.
pub fn parse_git_source(src: &str) -> Result<GitSource, String> {
    let (url, fragment) = match src.split_once('#') {
        Some((u, f)) => (u, Some(f)),
        None => (src, None),
    };
    if url.is_empty() || url.starts_with('-') {
        return Err(format!("ADD {src}: not a git repository URL"));
    }
    let (reference, subdir) = match fragment {
        None => (None, String::new()),
        Some(f) => match f.split_once(':') {
            Some((r, d)) => (Some(r.to_string()).filter(|r| !r.is_empty()), d.to_string()),
            None => (Some(f.to_string()).filter(|r| !r.is_empty()), String::new()),
        },
    };
    if let Some(r) = &reference {
        if r.starts_with('-') || r.contains("..") || r.chars().any(char::is_whitespace) {
            return Err(format!("ADD {src}: invalid git reference {r:?}"));
        }
    }
    let subdir = subdir.trim_matches('/').to_string();
    if subdir.split('/').any(|c| c == "..") {
        return Err(format!(
            "ADD {src}: the subdirectory {subdir:?} may not leave the repository"
        ));
    }
    Ok(GitSource {
        url: url.to_string(),
        reference,
        subdir,
    })
}

/// A checked-out repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The work tree (its `.git` removed unless kept).
    pub dir: PathBuf,
    /// The commit checked out.
    pub commit: String,
}

fn git(dir: Option<&Path>, ssh_sock: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.args([
        "-c",
        "protocol.allow=never",
        "-c",
        "protocol.https.allow=always",
        "-c",
        "protocol.http.allow=always",
        "-c",
        "protocol.git.allow=always",
        "-c",
        "protocol.ssh.allow=always",
        "-c",
        "advice.detachedHead=false",
    ]);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    if let Some(s) = ssh_sock {
        c.env("SSH_AUTH_SOCK", s);
    }
    c.stdin(std::process::Stdio::null());
    c
}

fn run(mut c: Command, what: &str, url: &str) -> Result<String, ExecError> {
    let fail = |reason: String| ExecError::Download {
        url: url.to_string(),
        reason: format!("{what}: {reason}"),
    };
    let out = c
        .output()
        .map_err(|e| fail(format!("cannot run git (is it installed?): {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(fail(err.trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Clones `src` into `dir/repo` and checks out its reference (with
/// submodules); `keep_git_dir`: keep `.git` (ADD --keep-git-dir).
pub fn checkout(
    src: &GitSource,
    dir: &Path,
    keep_git_dir: bool,
    ssh_sock: Option<&Path>,
) -> Result<Checkout, ExecError> {
    let tree = dir.join("repo");
    let mut c = git(None, ssh_sock);
    c.args(["clone", "--quiet", "--no-checkout", "--"])
        .arg(&src.url)
        .arg(&tree);
    run(c, "git clone", &src.url)?;
    // A commit, tag or local branch as given, else the remote's branch.
    let wanted = src.reference.as_deref().unwrap_or("HEAD");
    let mut commit = None;
    for candidate in [wanted.to_string(), format!("origin/{wanted}")] {
        let mut c = git(Some(&tree), ssh_sock);
        c.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{candidate}^{{commit}}"));
        if let Ok(id) = run(c, "git rev-parse", &src.url) {
            commit = Some(id);
            break;
        }
    }
    let commit = commit.ok_or_else(|| ExecError::Download {
        url: src.url.clone(),
        reason: format!("no branch, tag or commit {wanted:?} in the repository"),
    })?;
    let mut c = git(Some(&tree), ssh_sock);
    c.args(["checkout", "--quiet", "--detach"]).arg(&commit);
    run(c, "git checkout", &src.url)?;
    let mut c = git(Some(&tree), ssh_sock);
    c.args(["submodule", "update", "--quiet", "--init", "--recursive"]);
    run(c, "git submodule update", &src.url)?;
    if !keep_git_dir {
        let g = tree.join(".git");
        std::fs::remove_dir_all(&g).map_err(|e| ExecError::io(g.display(), e))?;
    }
    Ok(Checkout { dir: tree, commit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_sources_are_recognised_as_buildkit_does() {
        for s in [
            "git@github.com:moby/buildkit.git",
            "git://127.0.0.1:9418/repo.git",
            "ssh://git@host/repo",
            "https://github.com/moby/buildkit.git",
            "https://github.com/moby/buildkit.git#v0.10.1:docs",
        ] {
            assert!(is_git_source(s), "{s}");
        }
        for s in [
            "https://example.com/file.tar.gz",
            "http://x/y.git/file",
            "src.git",
            "dir/",
        ] {
            assert!(!is_git_source(s), "{s}");
        }
    }

    #[test]
    fn fragments() {
        let g = parse_git_source("https://h/r.git#v1.2:docs/sub/").expect("g");
        assert_eq!(g.url, "https://h/r.git");
        assert_eq!(g.reference.as_deref(), Some("v1.2"));
        assert_eq!(g.subdir, "docs/sub");
        let g = parse_git_source("git://h/r.git").expect("plain");
        assert_eq!((g.reference, g.subdir.as_str()), (None, ""));
        let g = parse_git_source("git://h/r.git#:only-dir").expect("dir");
        assert_eq!((g.reference, g.subdir.as_str()), (None, "only-dir"));
        assert!(parse_git_source("git://h/r.git#main:../x").is_err());
        assert!(parse_git_source("git://h/r.git#--upload-pack=x").is_err());
        assert!(parse_git_source("-u/x.git").is_err());
    }
}
