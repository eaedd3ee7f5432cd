//! Variable expansion and word splitting with BuildKit's rules.
//!
//! Supported forms: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
//! `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`, and the
//! pattern forms `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`,
//! `${VAR/pat/rep}`, `${VAR//pat/rep}`. The `word` parts are expanded
//! recursively. Single quotes suppress expansion, double quotes do not; the
//! escape character (`\` or `` ` ``, from the `escape` directive) makes the
//! next character literal.
//!
//! Which instructions the builder expands: ADD, ARG (default values), COPY,
//! ENV, EXPOSE, FROM (with the global ARGs only), LABEL, STOPSIGNAL, USER,
//! VOLUME, WORKDIR, and the values of `RUN --mount`/`COPY --from`/`--chown`/
//! `--chmod` flags. RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are
//! left for the shell (or the child build) to expand; see [`expands`].

use thiserror::Error;

use crate::glob::Glob;

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandError {
    /// `${` without the closing `}`.
    #[error("syntax error: missing '}}' in variable substitution")]
    MissingBrace,
    /// `${}`, `${:x}`, `${{x}` and the like.
    #[error("syntax error: bad substitution (use ${{NAME}} or ${{NAME:-default}})")]
    BadSubstitution,
    /// `${VAR<op>...}` with an operator that is not supported.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(char),
    /// `${VAR:?msg}` or `${VAR?msg}` with the variable unset (or empty).
    #[error("{name}: {message}")]
    Required {
        /// Variable name.
        name: String,
        /// The message from the Dockerfile, or a default one.
        message: String,
    },
    /// A quote that is never closed.
    #[error("unexpected end of statement while looking for matching {0}")]
    UnterminatedQuote(char),
}

/// True for the instructions (by upper-case name) whose arguments the
/// builder expands before use.
pub fn expands(instruction: &str) -> bool {
    matches!(
        instruction,
        "ADD"
            | "ARG"
            | "COPY"
            | "ENV"
            | "EXPOSE"
            | "FROM"
            | "LABEL"
            | "STOPSIGNAL"
            | "USER"
            | "VOLUME"
            | "WORKDIR"
    )
}

/// Expands one word: variables substituted, quotes and escapes removed,
/// whitespace kept as is.
pub fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut s = Scanner::new(word, escape, Mode::Word, lookup);
    Ok(s.process(&[], false)?.text)
}

/// Expands a string and splits the result into words on unquoted whitespace,
/// including whitespace that comes from unquoted variable values. Empty
/// results (`""`) do not produce words.
pub fn expand_words(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    let mut s = Scanner::new(word, escape, Mode::Word, lookup);
    Ok(s.process(&[], false)?.words.finish())
}

/// Expands the body of a heredoc whose delimiter was not quoted: variables
/// are substituted, quotes are ordinary characters, and the escape character
/// only escapes `$` and itself (as in a POSIX shell heredoc).
pub fn expand_heredoc(
    content: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut s = Scanner::new(content, escape, Mode::Heredoc, lookup);
    Ok(s.process(&[], false)?.text)
}

/// A lookup that knows no variables.
pub fn no_vars(_: &str) -> Option<String> {
    None
}

/// Splits an ENV/LABEL/ARG argument string into words on unquoted
/// whitespace. Quotes and escapes are kept in the words (they are removed
/// later by [`expand_word`]); an escape character at the very end is dropped.
pub fn split_words(line: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            None if c.is_whitespace() => {
                if in_word && (blank_ok || !word.is_empty()) {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                in_word = false;
                blank_ok = false;
                i += 1;
            }
            None => {
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                    word.push(c);
                    i += 1;
                } else if c == escape {
                    if let Some(&n) = chars.get(i + 1) {
                        word.push(c);
                        word.push(n);
                    }
                    i += 2;
                } else {
                    word.push(c);
                    i += 1;
                }
            }
            Some(q) => {
                if c == q {
                    quote = None;
                    word.push(c);
                    i += 1;
                } else if c == escape && q != '\'' {
                    match chars.get(i + 1) {
                        Some(&n) => {
                            word.push(c);
                            word.push(n);
                        }
                        None => quote = None,
                    }
                    i += 2;
                } else {
                    word.push(c);
                    i += 1;
                }
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Removes quotes and escapes from `word` without expanding variables
/// (used for heredoc delimiters).
pub(crate) fn unquote(word: &str, escape: char) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('\'') => out.push(c),
            Some(_) if c == escape => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            Some(_) => out.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == escape => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            None => out.push(c),
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Word,
    Heredoc,
}

/// Words being assembled while expanding (for [`expand_words`]).
#[derive(Default)]
struct Words {
    done: Vec<String>,
    current: String,
}

impl Words {
    /// An unquoted character: whitespace ends the current word.
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if !self.current.is_empty() {
                self.done.push(std::mem::take(&mut self.current));
            }
        } else {
            self.current.push(c);
        }
    }

    /// Unquoted expansion result: split like typed characters.
    fn add_split(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    /// Quoted or escaped text: never splits.
    fn add_raw(&mut self, s: &str) {
        self.current.push_str(s);
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

struct Piece {
    text: String,
    words: Words,
    stop: Option<char>,
}

struct Scanner<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    mode: Mode,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

/// Appends literal text; in pattern context glob metacharacters are escaped
/// so that quoted or escaped text matches literally.
fn push_literal(out: &mut String, s: &str, pattern: bool) {
    for c in s.chars() {
        if pattern && matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

impl<'a> Scanner<'a> {
    fn new(
        text: &str,
        escape: char,
        mode: Mode,
        lookup: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Scanner {
            chars: text.chars().collect(),
            pos: 0,
            escape,
            mode,
            lookup,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until one of `stops` (consumed) or the end of input. With
    /// no stops the end is the normal end; with stops, reaching the end is
    /// an error.
    fn process(&mut self, stops: &[char], pattern: bool) -> Result<Piece, ExpandError> {
        let mut text = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if stops.contains(&c) {
                self.pos += 1;
                return Ok(Piece {
                    text,
                    words,
                    stop: Some(c),
                });
            }
            if c == '$' {
                let v = self.dollar()?;
                text.push_str(&v);
                words.add_split(&v);
            } else if c == '\'' && self.mode == Mode::Word {
                let v = self.single_quoted()?;
                push_literal(&mut text, &v, pattern);
                words.add_raw(&v);
            } else if c == '"' && self.mode == Mode::Word {
                let v = self.double_quoted()?;
                push_literal(&mut text, &v, pattern);
                words.add_raw(&v);
            } else if c == self.escape {
                self.pos += 1;
                match self.mode {
                    Mode::Word => match self.next() {
                        Some(n) => {
                            push_literal(&mut text, &n.to_string(), pattern);
                            words.add_raw(&n.to_string());
                        }
                        None => break,
                    },
                    Mode::Heredoc => match self.peek() {
                        Some(n) if n == '$' || n == self.escape => {
                            self.pos += 1;
                            text.push(n);
                        }
                        _ => text.push(c),
                    },
                }
            } else {
                self.pos += 1;
                text.push(c);
                words.add_char(c);
            }
        }
        if stops.is_empty() {
            Ok(Piece {
                text,
                words,
                stop: None,
            })
        } else {
            Err(ExpandError::MissingBrace)
        }
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err(ExpandError::UnterminatedQuote('\'')),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnterminatedQuote('"')),
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => {
                    self.pos += 1;
                    match self.peek() {
                        Some(n) if n == '"' || n == '$' || n == self.escape => {
                            self.pos += 1;
                            out.push(n);
                        }
                        Some(_) => out.push(c),
                        None => {}
                    }
                }
                Some(c) => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    /// A variable name after `$`: letters, digits and `_`; or a run of
    /// digits; or one special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            _ => {}
        }
        let name = self.name();
        if name.is_empty() {
            return match self.peek() {
                None => Err(ExpandError::MissingBrace),
                Some(_) => Err(ExpandError::BadSubstitution),
            };
        }
        let op = self.next().ok_or(ExpandError::MissingBrace)?;
        let value = (self.lookup)(&name);
        match op {
            '}' => Ok(value.unwrap_or_default()),
            ':' => {
                let m = self.next().ok_or(ExpandError::MissingBrace)?;
                if !matches!(m, '-' | '+' | '?') {
                    return Err(ExpandError::UnsupportedModifier(m));
                }
                let word = self.process(&['}'], false)?.text;
                let current = value.clone().unwrap_or_default();
                match m {
                    '-' if current.is_empty() => Ok(word),
                    '-' => Ok(current),
                    '+' if current.is_empty() => Ok(String::new()),
                    '+' => Ok(word),
                    _ => match value {
                        None => Err(required(&name, word, "is not allowed to be unset")),
                        Some(v) if v.is_empty() => {
                            Err(required(&name, word, "is not allowed to be empty"))
                        }
                        Some(v) => Ok(v),
                    },
                }
            }
            '-' | '+' | '?' => {
                let word = self.process(&['}'], false)?.text;
                match (op, value) {
                    ('-', Some(v)) => Ok(v),
                    ('-', None) => Ok(word),
                    ('+', Some(_)) => Ok(word),
                    ('+', None) => Ok(String::new()),
                    (_, Some(v)) => Ok(v),
                    (_, None) => Err(required(&name, word, "is not allowed to be unset")),
                }
            }
            '#' | '%' => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.pos += 1;
                }
                let pattern = self.process(&['}'], true)?.text;
                let value = value.unwrap_or_default();
                if op == '#' {
                    Ok(remove_prefix(&value, &pattern, longest))
                } else {
                    Ok(remove_suffix(&value, &pattern, longest))
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pat = self.process(&['/', '}'], true)?;
                let replacement = if pat.stop == Some('/') {
                    self.process(&['}'], false)?.text
                } else {
                    String::new()
                };
                Ok(replace(
                    &value.unwrap_or_default(),
                    &pat.text,
                    &replacement,
                    all,
                ))
            }
            other => Err(ExpandError::UnsupportedModifier(other)),
        }
    }
}

fn required(name: &str, word: String, default: &str) -> ExpandError {
    ExpandError::Required {
        name: name.to_string(),
        message: if word.is_empty() {
            default.to_string()
        } else {
            word
        },
    }
}

fn compile(pattern: &str) -> Option<Glob> {
    Glob::shell_pattern(pattern).ok()
}

fn remove_prefix(value: &str, pattern: &str, longest: bool) -> String {
    let Some(g) = compile(pattern) else {
        return value.to_string();
    };
    let chars: Vec<char> = value.chars().collect();
    let ends = g.match_ends(&chars, 0);
    let cut = if longest { ends.last() } else { ends.first() };
    match cut {
        Some(&e) => chars[e..].iter().collect(),
        None => value.to_string(),
    }
}

fn remove_suffix(value: &str, pattern: &str, longest: bool) -> String {
    let Some(g) = compile(pattern) else {
        return value.to_string();
    };
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let full = |start: usize| g.match_ends(&chars, start).last() == Some(&n);
    let start = if longest {
        (0..=n).find(|&s| full(s))
    } else {
        (0..=n).rev().find(|&s| full(s))
    };
    match start {
        Some(s) => chars[..s].iter().collect(),
        None => value.to_string(),
    }
}

fn replace(value: &str, pattern: &str, replacement: &str, all: bool) -> String {
    let Some(g) = compile(pattern) else {
        return value.to_string();
    };
    if pattern.is_empty() {
        return value.to_string();
    }
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match g.match_ends(&chars, i).last() {
            Some(&e) if e > i => {
                out.push_str(replacement);
                i = e;
                if !all {
                    out.extend(&chars[i..]);
                    return out;
                }
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn exp(word: &str, vars: &[(&str, &str)]) -> Result<String, ExpandError> {
        let e = env(vars);
        expand_word(word, '\\', &|n| e.get(n).cloned())
    }

    fn ok(word: &str, vars: &[(&str, &str)]) -> String {
        exp(word, vars).expect("expands")
    }

    #[test]
    fn simple_forms() {
        let v = [("A", "x"), ("EMPTY", "")];
        let cases = [
            ("$A", "x"),
            ("${A}", "x"),
            ("pre${A}post", "prexpost"),
            ("$A/bin", "x/bin"),
            ("$UNSET", ""),
            ("${UNSET}", ""),
            ("$", "$"),
            ("a$", "a$"),
            ("$/x", "$/x"),
            ("$1", ""),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input, &v), want, "{input}");
        }
    }

    #[test]
    fn modifier_forms() {
        let v = [("A", "x"), ("EMPTY", "")];
        let cases = [
            ("${A:-d}", "x"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${A-d}", "x"),
            ("${UNSET-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${UNSET:+alt}", ""),
            ("${A+alt}", "alt"),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${A:?boom}", "x"),
            ("${EMPTY?boom}", ""),
            ("${UNSET:-}", ""),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input, &v), want, "{input}");
        }
    }

    #[test]
    fn required_variables() {
        assert_eq!(
            exp("${UNSET:?must be set}", &[]),
            Err(ExpandError::Required {
                name: "UNSET".into(),
                message: "must be set".into()
            })
        );
        assert_eq!(
            exp("${E:?}", &[("E", "")]),
            Err(ExpandError::Required {
                name: "E".into(),
                message: "is not allowed to be empty".into()
            })
        );
        assert!(matches!(
            exp("${U?}", &[]),
            Err(ExpandError::Required { .. })
        ));
    }

    #[test]
    fn nested_words_expand() {
        let v = [("B", "bee"), ("C", "")];
        assert_eq!(ok("${A:-$B}", &v), "bee");
        assert_eq!(ok("${A:-${C:-deep}}", &v), "deep");
        assert_eq!(ok("${B:+${B}s}", &v), "bees");
        assert_eq!(ok("${A:-\"a b\"}", &v), "a b");
        assert_eq!(ok("${A:-x\\}y}", &v), "x}y");
    }

    #[test]
    fn quotes_and_escapes() {
        let v = [("A", "x")];
        let cases = [
            ("'$A'", "$A"),
            ("\"$A\"", "x"),
            ("\\$A", "$A"),
            ("\\${A}", "${A}"),
            ("\"\\$A\"", "$A"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\nb\"", "a\\nb"),
            ("a\\ b", "a b"),
            ("'a\\b'", "a\\b"),
            ("it's\"\"", "it's"),
            ("trailing\\", "trailing"),
        ];
        for (input, want) in cases {
            let got = exp(input, &v);
            if input == "it's\"\"" {
                assert_eq!(got, Err(ExpandError::UnterminatedQuote('\'')));
                continue;
            }
            assert_eq!(got.as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn backtick_escape() {
        let e = env(&[("A", "x")]);
        let look = |n: &str| e.get(n).cloned();
        assert_eq!(expand_word("`$A", '`', &look).as_deref(), Ok("$A"));
        assert_eq!(expand_word("c:\\$A", '`', &look).as_deref(), Ok("c:\\x"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(exp("${A", &[]), Err(ExpandError::MissingBrace));
        assert_eq!(exp("${", &[]), Err(ExpandError::MissingBrace));
        assert_eq!(exp("${}", &[]), Err(ExpandError::BadSubstitution));
        assert_eq!(exp("${:-x}", &[]), Err(ExpandError::BadSubstitution));
        assert_eq!(
            exp("${A:=x}", &[]),
            Err(ExpandError::UnsupportedModifier('='))
        );
        assert_eq!(exp("${A:-x", &[]), Err(ExpandError::MissingBrace));
        assert_eq!(exp("\"open", &[]), Err(ExpandError::UnterminatedQuote('"')));
    }

    #[test]
    fn pattern_operators() {
        let v = [("P", "/usr/local/bin/tool.tar.gz")];
        let cases = [
            ("${P#*/}", "usr/local/bin/tool.tar.gz"),
            ("${P##*/}", "tool.tar.gz"),
            ("${P%.*}", "/usr/local/bin/tool.tar"),
            ("${P%%.*}", "/usr/local/bin/tool"),
            ("${P/local/opt}", "/usr/opt/bin/tool.tar.gz"),
            ("${P//\\//:}", ":usr:local:bin:tool.tar.gz"),
            ("${P/.tar}", "/usr/local/bin/tool.gz"),
            ("${P#nomatch}", "/usr/local/bin/tool.tar.gz"),
            ("${P%\"*\"}", "/usr/local/bin/tool.tar.gz"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input, &v), want, "{input}");
        }
    }

    #[test]
    fn word_splitting_with_expansion() {
        let e = env(&[("PORTS", "80 443"), ("E", "")]);
        let look = |n: &str| e.get(n).cloned();
        assert_eq!(
            expand_words("$PORTS 8080/udp", '\\', &look).expect("ok"),
            vec!["80", "443", "8080/udp"]
        );
        assert_eq!(
            expand_words("\"$PORTS\" x", '\\', &look).expect("ok"),
            vec!["80 443", "x"]
        );
        assert_eq!(
            expand_words("a\\ b $E c", '\\', &look).expect("ok"),
            vec!["a b", "c"]
        );
    }

    #[test]
    fn split_words_keeps_quotes() {
        let cases: [(&str, &[&str]); 6] = [
            (
                "MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog",
                &["MY_NAME=\"John Doe\"", "MY_DOG=Rex\\ The\\ Dog"],
            ),
            ("  a   b  ", &["a", "b"]),
            ("a='x y' b", &["a='x y'", "b"]),
            ("a=\"q\\\" r\"", &["a=\"q\\\" r\""]),
            ("''", &["''"]),
            ("trail\\", &["trail"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_words(input, '\\'), want, "{input}");
        }
        assert_eq!(split_words("a=`\"b c`\"", '`'), vec!["a=`\"b", "c`\""]);
    }

    #[test]
    fn heredoc_expansion_keeps_quotes_and_backslashes() {
        let e = env(&[("NAME", "world")]);
        let look = |n: &str| e.get(n).cloned();
        let got = expand_heredoc("echo \"hi $NAME\" 'x' \\$HOME a\\nb\n", '\\', &look);
        assert_eq!(got.as_deref(), Ok("echo \"hi world\" 'x' $HOME a\\nb\n"));
    }

    #[test]
    fn unquote_delimiters() {
        assert_eq!(unquote("\"EOF\"", '\\'), "EOF");
        assert_eq!(unquote("'E\\OF'", '\\'), "E\\OF");
        assert_eq!(unquote("E\"O\"F", '\\'), "EOF");
        assert_eq!(unquote("\\EOF", '\\'), "EOF");
    }

    #[test]
    fn expanded_instruction_set() {
        for i in [
            "ADD",
            "COPY",
            "ENV",
            "EXPOSE",
            "FROM",
            "LABEL",
            "STOPSIGNAL",
            "USER",
            "VOLUME",
            "WORKDIR",
        ] {
            assert!(expands(i), "{i}");
        }
        for i in [
            "RUN",
            "CMD",
            "ENTRYPOINT",
            "ONBUILD",
            "SHELL",
            "HEALTHCHECK",
            "MAINTAINER",
        ] {
            assert!(!expands(i), "{i}");
        }
    }
}
