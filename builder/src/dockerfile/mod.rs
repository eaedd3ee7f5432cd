//! The Dockerfile front end: parser directives, comments, continuation
//! lines, heredocs, typed instructions with line spans, and BuildKit's
//! variable-expansion rules.

mod duration;
mod error;
pub mod expand;
mod flags;
mod heredoc;
mod instruction;
mod lexer;
mod mount;
mod parser;
#[cfg(test)]
mod tests;

pub use duration::parse_duration;
pub use error::{Location, ParseError, ParseErrorKind};
pub use expand::ExpandError;
pub use instruction::{
    parse_port, ArgDecl, Command, CommandLine, CopySpec, From, Healthcheck, HealthcheckConfig,
    Heredoc, Instruction, KeyValue, NetworkMode, Onbuild, PortSpec, Protocol, Run, RunScript,
    SecurityMode, Source, Span,
};
pub use lexer::{Directives, Warning};
pub use mount::{parse_mount, CacheSharing, Mount, MountType};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// File name used in messages (e.g. `Dockerfile`).
    pub file: String,
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// The instructions in file order.
    pub instructions: Vec<Instruction>,
    /// Non-fatal findings (e.g. empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// Parses Dockerfile `text`; `file` names it in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
        let parsed = parser::parse_file(file, text)?;
        Ok(Dockerfile {
            file: file.to_string(),
            directives: parsed.directives,
            instructions: parsed.instructions,
            warnings: parsed.warnings,
        })
    }

    /// The escape character in force (`\` unless `# escape=` says `` ` ``).
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// The location of `instruction`'s first line, for error messages.
    pub fn location_of(&self, instruction: &Instruction) -> Location {
        Location {
            file: self.file.clone(),
            line: instruction.span.start_line,
            column: instruction.span.column,
            text: instruction.line_text.clone(),
        }
    }
}
