//! `.dockerignore` parsing and matching with Docker's rules.
//!
//! - A line starting with `#` (in the first column) is a comment; other
//!   lines are trimmed and empty ones skipped.
//! - `!pattern` is an exception: it re-includes what earlier patterns
//!   excluded. The last pattern that matches decides.
//! - Patterns are cleaned like Go's `filepath.Clean` and a leading `/` is
//!   dropped: the context root is both the working and the root directory.
//! - `*` matches any run of characters other than `/`, `?` one such
//!   character, `[...]` a class (`[^...]` negated), `\` escapes the next
//!   character, and `**` matches any number of directories (including none).
//! - A pattern that matches a directory also matches everything below it.

use thiserror::Error;

use super::clean_path;
use crate::glob::{Glob, GlobError};

/// A `.dockerignore` line that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DockerignoreError {
    /// A pattern that does not compile.
    #[error(".dockerignore:{line}: invalid pattern {pattern:?}: {source}")]
    BadPattern {
        /// 1-based line (0 when the pattern did not come from a file).
        line: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        source: GlobError,
    },
    /// A lone `!`.
    #[error(".dockerignore:{line}: illegal exclusion pattern \"!\": write !PATTERN")]
    LoneExclamation {
        /// 1-based line (0 when the pattern did not come from a file).
        line: usize,
    },
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern {
    /// The cleaned pattern text, without the leading `!`.
    pub pattern: String,
    /// True for `!pattern` (re-include).
    pub exception: bool,
    /// 1-based line in the file (0 when not from a file).
    pub line: usize,
    glob: Glob,
}

impl IgnorePattern {
    fn matches_path_or_parent(&self, path: &str, parents: &[&str]) -> bool {
        self.glob.matches(path) || parents.iter().any(|p| self.glob.matches(p))
    }
}

/// A compiled `.dockerignore` (or a list of `--exclude` patterns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerignore {
    patterns: Vec<IgnorePattern>,
}

/// Normalises one pattern line: trimmed, `!` split off, cleaned, leading
/// `/` removed. Returns `None` for lines that hold no pattern.
fn normalise(raw: &str) -> Option<(bool, String)> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    let (exception, body) = match t.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    if body.is_empty() {
        return Some((exception, String::new()));
    }
    let mut cleaned = clean_path(body);
    if cleaned.len() > 1 {
        if let Some(rest) = cleaned.strip_prefix('/') {
            cleaned = rest.to_string();
        }
    }
    Some((exception, cleaned))
}

impl Dockerignore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Dockerignore, DockerignoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            if let Some((exception, pattern)) = normalise(raw) {
                patterns.push(compile(exception, pattern, i + 1)?);
            }
        }
        Ok(Dockerignore { patterns })
    }

    /// Builds a matcher from individual patterns (e.g. `COPY --exclude`),
    /// with the same syntax as `.dockerignore` lines (no comments).
    pub fn from_patterns<I, S>(patterns: I) -> Result<Dockerignore, DockerignoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for p in patterns {
            if let Some((exception, pattern)) = normalise(p.as_ref()) {
                out.push(compile(exception, pattern, 0)?);
            }
        }
        Ok(Dockerignore { patterns: out })
    }

    /// The compiled patterns, in file order.
    pub fn patterns(&self) -> &[IgnorePattern] {
        &self.patterns
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern is an exception (`!pattern`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is
    /// excluded: the last pattern that matches it or one of its parent
    /// directories decides. The root itself is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = clean_path(rel_path.trim_start_matches('/'));
        if path == "." || path.starts_with("../") || path == ".." {
            return false;
        }
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // A pattern can only change the answer in one direction.
            if p.exception != excluded {
                continue;
            }
            if p.matches_path_or_parent(&path, &parents) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether the walk of the context can skip directory `rel_dir` and all
    /// of its contents: it is excluded and no exception pattern could match
    /// anything below it.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        if !self.is_excluded(rel_dir) {
            return false;
        }
        let prefix = format!("{}/", clean_path(rel_dir.trim_start_matches('/')));
        !self
            .patterns
            .iter()
            .any(|p| p.exception && p.glob.may_match_with_prefix(&prefix))
    }
}

fn compile(
    exception: bool,
    pattern: String,
    line: usize,
) -> Result<IgnorePattern, DockerignoreError> {
    if exception && pattern.is_empty() {
        return Err(DockerignoreError::LoneExclamation { line });
    }
    let glob = Glob::path_pattern(&pattern).map_err(|source| DockerignoreError::BadPattern {
        line,
        pattern: pattern.clone(),
        source,
    })?;
    Ok(IgnorePattern {
        pattern,
        exception,
        line,
        glob,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> Dockerignore {
        match Dockerignore::parse(text) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    fn check(text: &str, cases: &[(&str, bool)]) {
        let d = ignore(text);
        for &(path, want) in cases {
            assert_eq!(d.is_excluded(path), want, "{path:?} with\n{text}");
        }
    }

    #[test]
    fn reference_example() {
        check(
            "# comment\n*/temp*\n*/*/temp*\ntemp?\n",
            &[
                ("somedir/temporary.txt", true),
                ("somedir/temp", true),
                ("somedir/temp/inner/file", true),
                ("somedir/subdir/temporary.txt", true),
                ("tempa", true),
                ("tempb", true),
                ("temp", false),
                ("tempab", false),
                ("temporary.txt", false),
                ("a/b/c/temp", false),
                ("# comment", false),
            ],
        );
    }

    #[test]
    fn double_star_any_depth() {
        check(
            "**/*.go\n",
            &[
                ("main.go", true),
                ("cmd/x/main.go", true),
                ("main.rs", false),
            ],
        );
    }

    #[test]
    fn exceptions_reference_examples() {
        check(
            "*.md\n!README.md\n",
            &[
                ("CHANGES.md", true),
                ("README.md", false),
                ("docs/a.md", false),
            ],
        );
        check(
            "*.md\n!README*.md\nREADME-secret.md\n",
            &[
                ("CHANGES.md", true),
                ("README.md", false),
                ("README-dev.md", false),
                ("README-secret.md", true),
            ],
        );
        check(
            "*.md\nREADME-secret.md\n!README*.md\n",
            &[
                ("README-secret.md", false),
                ("README.md", false),
                ("x.md", true),
            ],
        );
    }

    #[test]
    fn directory_excludes_children_unless_reincluded() {
        let d = ignore("node_modules\nbuild\n!build/keep.txt\n");
        assert!(d.is_excluded("node_modules"));
        assert!(d.is_excluded("node_modules/a/b.js"));
        assert!(d.is_excluded("build/out.o"));
        assert!(!d.is_excluded("build/keep.txt"));
        assert!(!d.is_excluded("src/build.rs"));
        assert!(d.can_skip_dir("node_modules"));
        assert!(!d.can_skip_dir("build"));
        assert!(!d.can_skip_dir("src"));
    }

    #[test]
    fn reinclusion_of_a_whole_directory() {
        let d = ignore("*\n!src\n");
        assert!(d.is_excluded("Makefile"));
        assert!(!d.is_excluded("src"));
        assert!(!d.is_excluded("src/deep/file.rs"));
        assert!(d.can_skip_dir("target"));
        assert!(!d.can_skip_dir("src"));
    }

    #[test]
    fn wildcard_exception_blocks_skipping() {
        let d = ignore("vendor\n!**/*.proto\n");
        assert!(d.is_excluded("vendor/a/b.go"));
        assert!(!d.is_excluded("vendor/a/b.proto"));
        assert!(!d.can_skip_dir("vendor"));
        let d = ignore("vendor\n!docs/*.md\n");
        assert!(d.can_skip_dir("vendor"));
        assert!(d.can_skip_dir("vendor/deeper"));
    }

    #[test]
    fn patterns_are_cleaned() {
        let d = ignore("/foo/bar\n./baz/\nqux//quux/.\na/../b\n  spaced  \n");
        let texts: Vec<&str> = d.patterns().iter().map(|p| p.pattern.as_str()).collect();
        assert_eq!(texts, vec!["foo/bar", "baz", "qux/quux", "b", "spaced"]);
        assert!(d.is_excluded("foo/bar"));
        assert!(d.is_excluded("/foo/bar/x"));
        assert!(d.is_excluded("./baz/y"));
        assert!(d.is_excluded("spaced"));
    }

    #[test]
    fn comments_only_in_first_column() {
        let d = ignore(" # not a comment\n#comment\n");
        assert_eq!(d.patterns().len(), 1);
        assert!(d.is_excluded("# not a comment"));
        assert!(!d.is_excluded("#comment"));
    }

    #[test]
    fn classes_escapes_and_question_mark() {
        check(
            "file[0-9].txt\n\\!important\nlog?\n",
            &[
                ("file3.txt", true),
                ("filex.txt", false),
                ("!important", true),
                ("important", false),
                ("log1", true),
                ("log", false),
            ],
        );
    }

    #[test]
    fn exception_then_exclude_order() {
        check("!keep\n*\n", &[("keep", true), ("other", true)]);
        check("*\n!keep\n", &[("keep", false), ("other", true)]);
        check("! keep\n", &[("keep", false)]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Dockerignore::parse("ok\n!\n").expect_err("lone !");
        assert_eq!(e, DockerignoreError::LoneExclamation { line: 2 });
        let e = Dockerignore::parse("a\n\nb[\n").expect_err("bad class");
        assert!(matches!(e, DockerignoreError::BadPattern { line: 3, .. }));
        assert!(e.to_string().starts_with(".dockerignore:3:"));
    }

    #[test]
    fn root_and_outside_paths_are_never_excluded() {
        let d = ignore("*\n**\n");
        assert!(!d.is_excluded(""));
        assert!(!d.is_excluded("."));
        assert!(!d.is_excluded("../x"));
        assert!(d.is_excluded("x"));
    }

    #[test]
    fn from_patterns_for_copy_exclude() {
        let d = Dockerignore::from_patterns(["*.txt", "!keep.txt"]).expect("ok");
        assert!(d.is_excluded("a.txt"));
        assert!(!d.is_excluded("keep.txt"));
        assert!(d.has_exceptions());
        assert!(Dockerignore::from_patterns(Vec::<String>::new())
            .expect("ok")
            .is_empty());
    }

    #[test]
    fn bom_and_crlf() {
        let d = ignore("\u{feff}*.log\r\n!keep.log\r\n");
        assert!(d.is_excluded("a.log"));
        assert!(!d.is_excluded("keep.log"));
    }
}
