//! Parse errors that point at the Dockerfile line that caused them.

use std::fmt;

use thiserror::Error;

use super::expand::ExpandError;

/// Where in which file something is, with the source line for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name as given to the parser (e.g. `Dockerfile`).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The text of that line, without its line ending.
    pub text: String,
}

impl Location {
    /// Renders `message` as `file:line:col: message` followed by the line.
    pub fn render(&self, f: &mut fmt::Formatter<'_>, message: &dyn fmt::Display) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}\n{:>4} | {}",
            self.file, self.line, self.column, message, self.line, self.text
        )
    }
}

/// A Dockerfile that could not be parsed: what went wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the offending instruction (or directive) starts.
    pub location: Location,
    /// What is wrong (boxed to keep `Result`s small).
    pub kind: Box<ParseErrorKind>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location.render(f, &self.kind)
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.kind.as_ref())
    }
}

/// The reasons a Dockerfile can be rejected by the parser.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// The instruction keyword is not one of the Dockerfile instructions.
    #[error("unknown instruction: {name}{}", did_you_mean(.suggestion))]
    UnknownInstruction {
        /// The keyword as written.
        name: String,
        /// A known instruction close to it, if any.
        suggestion: Option<String>,
    },
    /// A `--flag` the instruction does not accept.
    #[error("unknown flag for {instruction}: --{flag}{}", did_you_mean(.suggestion))]
    UnknownFlag {
        /// Instruction name.
        instruction: String,
        /// Flag name without dashes.
        flag: String,
        /// A valid flag close to it, if any.
        suggestion: Option<String>,
    },
    /// A flag given twice that may appear only once.
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    /// `--flag` without `=value` where a value is required.
    #[error("missing a value on flag: --{0} (write --{0}=VALUE)")]
    MissingFlagValue(String),
    /// A flag value that does not parse.
    #[error("invalid value {value:?} for flag --{flag}: {reason}")]
    InvalidFlagValue {
        /// Flag name.
        flag: String,
        /// Value as written.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A parser directive's value is invalid.
    #[error("invalid {name} directive value {value:?}: {reason}")]
    InvalidDirective {
        /// Directive name.
        name: String,
        /// Value as written.
        value: String,
        /// What is accepted.
        reason: String,
    },
    /// The same parser directive appears twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// A heredoc body with no terminator line.
    #[error("unterminated heredoc: no line {0:?} closes it")]
    UnterminatedHeredoc(String),
    /// A heredoc in a place where it cannot be used.
    #[error("{0}")]
    InvalidHeredoc(String),
    /// A JSON array with elements that are not strings.
    #[error("when using JSON array syntax, arrays must contain only strings")]
    JsonNotStrings,
    /// An instruction that requires JSON (exec) form.
    #[error("{0} requires the arguments to be in JSON form, e.g. [\"/bin/sh\", \"-c\"]")]
    JsonRequired(String),
    /// Wrong number or shape of arguments.
    #[error("{instruction} {message}")]
    Arguments {
        /// Instruction name.
        instruction: String,
        /// What is expected.
        message: String,
    },
    /// A `RUN --mount` specification that is invalid.
    #[error("invalid --mount: {0}")]
    InvalidMount(String),
    /// An instruction that ONBUILD cannot wrap.
    #[error("{0}")]
    InvalidOnbuild(String),
    /// A variable expansion done at parse time failed.
    #[error(transparent)]
    Expand(#[from] ExpandError),
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

impl ParseErrorKind {
    pub(crate) fn args(instruction: &str, message: impl Into<String>) -> Self {
        ParseErrorKind::Arguments {
            instruction: instruction.to_string(),
            message: message.into(),
        }
    }
}

/// The candidate closest to `word` (case-insensitive), if it is close enough
/// to be a plausible typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        let d = edit_distance(&w, &c.to_ascii_lowercase());
        let better = match best {
            Some((bd, _)) => d < bd,
            None => true,
        };
        if better {
            best = Some((d, c));
        }
    }
    let limit = (w.chars().count() / 3).max(1);
    best.filter(|&(d, _)| d <= limit).map(|(_, c)| c)
}

/// Edit distance where swapping two adjacent characters counts as one edit
/// (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = v;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos() {
        let list = ["FROM", "RUN", "COPY", "WORKDIR"];
        assert_eq!(closest("FORM", &list), Some("FROM"));
        assert_eq!(closest("workdri", &list), Some("WORKDIR"));
        assert_eq!(closest("XYZZY", &list), None);
    }

    #[test]
    fn renders_file_line_and_text() {
        let e = ParseError {
            location: Location {
                file: "Dockerfile".into(),
                line: 7,
                column: 1,
                text: "FORM busybox".into(),
            },
            kind: Box::new(ParseErrorKind::UnknownInstruction {
                name: "FORM".into(),
                suggestion: Some("FROM".into()),
            }),
        };
        assert_eq!(
            e.to_string(),
            "Dockerfile:7:1: unknown instruction: FORM (did you mean FROM?)\n   7 | FORM busybox"
        );
    }
}
