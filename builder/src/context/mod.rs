//! The build context: which files COPY and ADD may see, and the remembered
//! digests of its files ([`digests`]).

pub mod digests;
pub mod dockerignore;

pub use crate::glob::GlobError;
pub use dockerignore::{Dockerignore, DockerignoreError, IgnorePattern};

/// Cleans a `/`-separated path lexically like Go's `filepath.Clean`:
/// repeated separators and `.` elements are removed, `..` elements are
/// resolved against the preceding element (kept at the start of a relative
/// path, dropped at the root), and a trailing `/` is removed. An empty
/// result is `.`.
pub fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("a/b/", "a/b"),
            ("./a//b/./c", "a/b/c"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/a/b/..", "/a"),
            ("//a", "/a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "{input:?}");
        }
    }
}
