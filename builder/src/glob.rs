//! Glob patterns shared by `.dockerignore` matching and the `${var#pattern}`
//! family of expansions.
//!
//! Patterns are compiled to a small token list and matched with an NFA
//! simulation, so matching is linear in the input for any pattern (no
//! backtracking blow-up on inputs like `*a*a*a*b`).

use thiserror::Error;

/// Why a glob pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GlobError {
    /// A `[` without its closing `]`.
    #[error("unterminated character class in pattern {0:?}")]
    UnterminatedClass(String),
    /// A class such as `[]`, `[a-]` or `[z-a]`.
    #[error("malformed character class in pattern {0:?}")]
    BadClass(String),
    /// A pattern ending in a lone escape character.
    #[error("pattern {0:?} ends with an escape character")]
    TrailingEscape(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`: one character.
    AnyChar,
    /// `*`: any run of characters.
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` (or `**` inside a pattern): nothing, or any run ending in `/`.
    AnyDirs,
    /// `**` at the end: anything at all, separators included.
    AnyTail,
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
    /// When true `*` and `?` do not match `/` (path patterns).
    separator_special: bool,
}

impl Glob {
    /// Compiles a path pattern with the `.dockerignore` rules: `*` and `?`
    /// stop at `/`, `**` spans directories, `\` escapes the next character,
    /// classes use Go's `filepath.Match` syntax (`[^...]` negates).
    pub(crate) fn path_pattern(pattern: &str) -> Result<Glob, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() {
                        tokens.push(Token::AnyTail);
                    } else {
                        tokens.push(Token::AnyDirs);
                    }
                }
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::AnyChar),
                '\\' => match chars.get(i) {
                    Some(&n) => {
                        i += 1;
                        tokens.push(Token::Literal(n));
                    }
                    None => return Err(GlobError::TrailingEscape(pattern.to_string())),
                },
                '[' => {
                    let (tok, next) = parse_class(&chars, i, false, pattern)?;
                    tokens.push(tok);
                    i = next;
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        // Docker matches a leading `**` followed only by literal text as a
        // plain suffix test (`**.go` is every name ending in `.go`).
        if pattern.starts_with("**")
            && !pattern.starts_with("**/")
            && tokens.len() > 1
            && tokens[0] == Token::AnyDirs
            && tokens[1..].iter().all(|t| matches!(t, Token::Literal(_)))
        {
            tokens[0] = Token::AnyTail;
        }
        Ok(Glob {
            tokens,
            separator_special: true,
        })
    }

    /// Compiles a shell pattern (as in `${var%pattern}`): `*` and `?` match
    /// any character, classes accept `!` or `^` for negation.
    pub(crate) fn shell_pattern(pattern: &str) -> Result<Glob, GlobError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::AnyChar),
                '\\' => match chars.get(i) {
                    Some(&n) => {
                        i += 1;
                        tokens.push(Token::Literal(n));
                    }
                    None => tokens.push(Token::Literal('\\')),
                },
                '[' => match parse_class(&chars, i, true, pattern) {
                    Ok((tok, next)) => {
                        tokens.push(tok);
                        i = next;
                    }
                    // A shell treats a malformed class as a literal `[`.
                    Err(_) => tokens.push(Token::Literal('[')),
                },
                other => tokens.push(Token::Literal(other)),
            }
        }
        Ok(Glob {
            tokens,
            separator_special: false,
        })
    }

    /// True when the whole of `s` matches.
    pub(crate) fn matches(&self, s: &str) -> bool {
        let mut set = self.start();
        for c in s.chars() {
            set = self.step(&set, c);
            if !set.iter().any(|&b| b) {
                return false;
            }
        }
        self.accepts(&set)
    }

    /// True when some string starting with `prefix` could match.
    pub(crate) fn may_match_with_prefix(&self, prefix: &str) -> bool {
        let mut set = self.start();
        for c in prefix.chars() {
            set = self.step(&set, c);
        }
        set.iter().any(|&b| b)
    }

    /// For `chars[from..]`, the end positions `e` (absolute indices) such that
    /// `chars[from..e]` matches the whole pattern, in increasing order.
    pub(crate) fn match_ends(&self, chars: &[char], from: usize) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut set = self.start();
        if self.accepts(&set) {
            ends.push(from);
        }
        for (off, &c) in chars[from..].iter().enumerate() {
            set = self.step(&set, c);
            if !set.iter().any(|&b| b) {
                break;
            }
            if self.accepts(&set) {
                ends.push(from + off + 1);
            }
        }
        ends
    }

    fn start(&self) -> Vec<bool> {
        let mut set = vec![false; 2 * (self.tokens.len() + 1)];
        set[0] = true;
        self.close(&mut set);
        set
    }

    fn accepts(&self, set: &[bool]) -> bool {
        set[2 * self.tokens.len()]
    }

    /// Follows the empty transitions (`*`, `**` may match nothing).
    fn close(&self, set: &mut [bool]) {
        for (i, tok) in self.tokens.iter().enumerate() {
            if set[2 * i] && matches!(tok, Token::Star | Token::AnyTail | Token::AnyDirs) {
                set[2 * (i + 1)] = true;
            }
        }
    }

    fn step(&self, set: &[bool], c: char) -> Vec<bool> {
        let mut next = vec![false; set.len()];
        let plain = !(self.separator_special && c == '/');
        for (i, tok) in self.tokens.iter().enumerate() {
            if set[2 * i + 1] {
                // Inside `**/`: keep going, or finish on a separator.
                next[2 * i + 1] = true;
                if c == '/' {
                    next[2 * (i + 1)] = true;
                }
            }
            if !set[2 * i] {
                continue;
            }
            match tok {
                Token::Literal(l) => {
                    if *l == c {
                        next[2 * (i + 1)] = true;
                    }
                }
                Token::AnyChar => {
                    if plain {
                        next[2 * (i + 1)] = true;
                    }
                }
                Token::Class { negated, ranges } => {
                    let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                    if inside != *negated {
                        next[2 * (i + 1)] = true;
                    }
                }
                Token::Star => {
                    if plain {
                        next[2 * i] = true;
                    }
                }
                Token::AnyTail => next[2 * i] = true,
                Token::AnyDirs => {
                    next[2 * i + 1] = true;
                    if c == '/' {
                        next[2 * (i + 1)] = true;
                    }
                }
            }
        }
        self.close(&mut next);
        next
    }
}

/// Parses a class whose `[` is just before `start`; returns the token and the
/// index after the closing `]`.
fn parse_class(
    chars: &[char],
    start: usize,
    shell: bool,
    pattern: &str,
) -> Result<(Token, usize), GlobError> {
    let mut i = start;
    let mut negated = false;
    if let Some(&c) = chars.get(i) {
        if c == '^' || (shell && c == '!') {
            negated = true;
            i += 1;
        }
    }
    let mut ranges = Vec::new();
    let bad = || GlobError::BadClass(pattern.to_string());
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(GlobError::UnterminatedClass(pattern.to_string()));
        };
        if c == ']' && (!ranges.is_empty() || !shell) {
            if ranges.is_empty() {
                return Err(bad());
            }
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let (lo, after) = class_char(chars, i, shell, ranges.is_empty()).ok_or_else(bad)?;
        i = after;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let (hi, after) = class_char(chars, i + 1, shell, false).ok_or_else(bad)?;
            if hi < lo {
                return Err(bad());
            }
            ranges.push((lo, hi));
            i = after;
        } else if chars.get(i) == Some(&'-') && !shell {
            return Err(bad());
        } else {
            ranges.push((lo, lo));
        }
    }
}

/// One class member at `i`, handling `\` escapes. Go's syntax rejects an
/// unescaped `-`; shells accept it (and a leading `]`) literally.
fn class_char(chars: &[char], i: usize, shell: bool, first: bool) -> Option<(char, usize)> {
    let c = *chars.get(i)?;
    match c {
        '\\' => chars.get(i + 1).map(|&n| (n, i + 2)),
        '-' if !shell => None,
        ']' if !(shell && first) => None,
        _ => Some((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str, s: &str) -> bool {
        Glob::path_pattern(p).expect("pattern compiles").matches(s)
    }

    fn shell(p: &str, s: &str) -> bool {
        Glob::shell_pattern(p).expect("pattern compiles").matches(s)
    }

    #[test]
    fn star_stops_at_separator_in_paths() {
        assert!(path("*.md", "README.md"));
        assert!(!path("*.md", "docs/README.md"));
        assert!(path("*/temp*", "somedir/temporary.txt"));
        assert!(!path("*/temp*", "a/b/temp"));
        assert!(path("temp?", "tempa"));
        assert!(!path("temp?", "temp/"));
    }

    #[test]
    fn double_star_spans_directories() {
        assert!(path("**/*.go", "main.go"));
        assert!(path("**/*.go", "a/b/c.go"));
        assert!(!path("**/*.go", "a/b/c.rs"));
        assert!(path("a/**/b", "a/b"));
        assert!(path("a/**/b", "a/x/y/b"));
        assert!(path("a/**", "a/x/y"));
        assert!(path("**", "anything/at/all"));
        assert!(path("**.go", "deep/dir/x.go"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(path("[a-c]x", "bx"));
        assert!(!path("[a-c]x", "dx"));
        assert!(path("[^a-c]x", "dx"));
        assert!(path("\\*x", "*x"));
        assert!(!path("\\*x", "ax"));
        assert!(Glob::path_pattern("[abc").is_err());
        assert!(Glob::path_pattern("[]").is_err());
        assert!(Glob::path_pattern("[a-]").is_err());
        assert!(Glob::path_pattern("abc\\").is_err());
    }

    #[test]
    fn shell_patterns_cross_separators() {
        assert!(shell("*/", "a/b/"));
        assert!(shell("[!a]b", "cb"));
        assert!(shell("[]]", "]"));
        assert!(shell("[", "["));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let s = "a".repeat(5000);
        assert!(!path("*a*a*a*a*a*a*a*a*b", &s));
    }

    #[test]
    fn prefix_reachability() {
        let g = Glob::path_pattern("dir/keep/*.txt").expect("compiles");
        assert!(g.may_match_with_prefix("dir/"));
        assert!(g.may_match_with_prefix("dir/keep/"));
        assert!(!g.may_match_with_prefix("other/"));
    }

    #[test]
    fn match_ends_lists_every_end() {
        let g = Glob::shell_pattern("*.").expect("compiles");
        let chars: Vec<char> = "a.b.c".chars().collect();
        assert_eq!(g.match_ends(&chars, 0), vec![2, 4]);
    }
}
