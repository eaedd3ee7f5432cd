//! Splits Dockerfile text into logical lines: parser directives at the top,
//! comments and blank lines dropped, continuation lines joined, and heredoc
//! bodies read on request.

use super::error::{Location, ParseError, ParseErrorKind};

/// Parser directives found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` value (a frontend image reference), recorded only.
    pub syntax: Option<String>,
    /// `# escape=` value: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=` value, recorded and otherwise ignored.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A non-fatal finding about the Dockerfile's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line the warning is about.
    pub line: usize,
    /// What to change.
    pub message: String,
}

/// One instruction's text after joining continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    pub text: String,
    pub start_line: usize,
    pub end_line: usize,
    pub column: usize,
    pub first_line: String,
}

pub(crate) struct Lexer<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    /// Index of the next unread line.
    pos: usize,
    pub directives: Directives,
    directives_done: bool,
    seen: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// Removes all trailing `\r` and `\n`.
fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a trailing escape character (plus spaces/tabs after it).
/// Returns the remaining text and whether the line ends the instruction.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest, false),
        None => (line, true),
    }
}

/// Matches `#\s*name\s*=\s*value\s*` and returns the lower-case name and the
/// trimmed value.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, after) = rest.split_at(name_len);
    let value = after.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

impl<'a> Lexer<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Lexer {
            file,
            lines: text.split_inclusive('\n').collect(),
            pos: 0,
            directives: Directives::default(),
            directives_done: false,
            seen: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The number of the last line read (1-based; 0 before any).
    pub fn line_number(&self) -> usize {
        self.pos
    }

    pub fn location(&self, line: usize, column: usize) -> Location {
        let text = line
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .map_or("", |l| trim_newline(l));
        Location {
            file: self.file.to_string(),
            line,
            column,
            text: text.to_string(),
        }
    }

    fn error(&self, line: usize, kind: ParseErrorKind) -> ParseError {
        ParseError {
            location: self.location(line, 1),
            kind: Box::new(kind),
        }
    }

    /// Handles a possible parser directive on line `number`.
    fn check_directive(&mut self, line: &str, number: usize) -> Result<(), ParseError> {
        if self.directives_done {
            return Ok(());
        }
        let Some((name, value)) = directive(line) else {
            self.directives_done = true;
            return Ok(());
        };
        if !matches!(name.as_str(), "escape" | "syntax" | "check") {
            // Unknown directives are comments and end the directive block.
            self.directives_done = true;
            return Ok(());
        }
        if self.seen.contains(&name) {
            return Err(self.error(number, ParseErrorKind::DuplicateDirective(name)));
        }
        self.seen.push(name.clone());
        match name.as_str() {
            "escape" => {
                self.directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(self.error(
                            number,
                            ParseErrorKind::InvalidDirective {
                                name,
                                value,
                                reason: "the escape character must be \\ or `".into(),
                            },
                        ))
                    }
                }
            }
            "syntax" => self.directives.syntax = Some(value),
            _ => self.directives.check = Some(value),
        }
        Ok(())
    }

    /// Reads the next instruction's logical line.
    pub fn next_line(&mut self) -> Result<Option<LogicalLine>, ParseError> {
        while self.pos < self.lines.len() {
            let raw = trim_newline(self.lines[self.pos]);
            self.pos += 1;
            let number = self.pos;
            let left = raw.trim_start();
            self.check_directive(left, number)?;
            if left.starts_with('#') {
                continue;
            }
            let escape = self.directives.escape;
            let (first, mut ended) = trim_continuation(left, escape);
            if ended && first.is_empty() {
                continue;
            }
            let mut text = first.to_string();
            let column = raw.chars().count() - left.chars().count() + 1;
            let mut empty_continuation = false;
            while !ended && self.pos < self.lines.len() {
                let line = trim_newline(self.lines[self.pos]);
                self.pos += 1;
                if is_comment(line) {
                    continue;
                }
                if line.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, e) = trim_continuation(line, escape);
                text.push_str(part);
                ended = e;
            }
            if empty_continuation {
                self.warnings.push(Warning {
                    line: number,
                    message:
                        "empty continuation line: remove the blank line or the trailing escape"
                            .into(),
                });
            }
            return Ok(Some(LogicalLine {
                text,
                start_line: number,
                end_line: self.pos,
                column,
                first_line: raw.to_string(),
            }));
        }
        Ok(None)
    }

    /// Reads a heredoc body up to its terminator line. With `chomp`
    /// (`<<-`), leading tabs are removed from the body lines and the
    /// terminator. Returns `None` when the file ends first.
    pub fn read_heredoc(&mut self, name: &str, chomp: bool) -> Option<String> {
        let mut content = String::new();
        while self.pos < self.lines.len() {
            let raw = self.lines[self.pos];
            self.pos += 1;
            let mut candidate = trim_newline(raw);
            if chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == name {
                return Some(content);
            }
            if chomp {
                content.push_str(raw.trim_start_matches('\t'));
            } else {
                content.push_str(raw);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(String, usize, usize)> {
        let mut lx = Lexer::new("Dockerfile", text);
        let mut out = Vec::new();
        while let Some(l) = lx.next_line().expect("lexes") {
            out.push((l.text, l.start_line, l.end_line));
        }
        out
    }

    #[test]
    fn directive_regex_variants() {
        for l in [
            "#directive=value",
            "# directive =value",
            "#\tdirective= value",
            "# directive = value",
            "#\t  dIrEcTiVe=value",
        ] {
            assert_eq!(
                directive(l),
                Some(("directive".into(), "value".into())),
                "{l}"
            );
        }
        assert_eq!(directive("# escape="), None);
        assert_eq!(directive("# just a comment"), None);
        assert_eq!(directive("#9x=1"), None);
    }

    #[test]
    fn continuation_and_comments_inside() {
        let got = lines("RUN echo a \\\n# comment\n\n    b \\ \t\n  c\nRUN x\n");
        assert_eq!(
            got,
            vec![
                ("RUN echo a     b   c".into(), 1, 5),
                ("RUN x".into(), 6, 6)
            ]
        );
    }

    #[test]
    fn leading_whitespace_and_crlf() {
        let got = lines("  \t FROM busybox\r\n\r\n# c\r\nRUN a \\\r\n b\r\n");
        assert_eq!(
            got,
            vec![("FROM busybox".into(), 1, 1), ("RUN a  b".into(), 4, 5)]
        );
    }

    #[test]
    fn continuation_at_end_of_file() {
        assert_eq!(lines("RUN a \\"), vec![("RUN a ".into(), 1, 1)]);
    }

    #[test]
    fn bom_is_stripped() {
        let mut lx = Lexer::new("Dockerfile", "\u{feff}# escape=`\nRUN a `\n b\n");
        let l = lx.next_line().expect("ok").expect("line");
        assert_eq!(lx.directives.escape, '`');
        assert_eq!(l.text, "RUN a  b");
    }

    #[test]
    fn heredoc_bodies() {
        let mut lx = Lexer::new("f", "RUN <<-EOF\n\techo hi\n\tEOF\nX\n");
        lx.next_line().expect("ok");
        assert_eq!(lx.read_heredoc("EOF", true).as_deref(), Some("echo hi\n"));
        assert_eq!(lx.line_number(), 3);
        let mut lx = Lexer::new("f", "RUN <<EOF\n\techo hi\n\tEOF\n");
        lx.next_line().expect("ok");
        assert_eq!(lx.read_heredoc("EOF", false), None);
    }
}
