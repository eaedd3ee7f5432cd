//! Typed Dockerfile instructions.
//!
//! Values that the builder expands (see [`super::expand::expands`]) are kept
//! as written, quotes included; the executor expands them with the stage's
//! variables (see `plan::StageScope`).

use std::time::Duration;

use super::mount::Mount;

/// Where an instruction is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// 1-based line of the instruction keyword.
    pub start_line: usize,
    /// 1-based last line, including continuation lines and heredoc bodies.
    pub end_line: usize,
    /// 1-based column of the instruction keyword.
    pub column: usize,
}

/// One parsed instruction with its position and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// What the instruction does.
    pub command: Command,
    /// Where it is.
    pub span: Span,
    /// The instruction text with continuation lines joined (no heredoc
    /// bodies), e.g. `RUN apt-get update && apt-get install -y x`.
    pub original: String,
    /// The first physical line as written, for error messages.
    pub line_text: String,
}

/// A Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `FROM [--platform=P] image [AS name]`.
    From(From),
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(CommandLine),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `SHELL ["exe", "args"...]`.
    Shell(Vec<String>),
    /// `COPY`.
    Copy(CopySpec),
    /// `ADD`.
    Add(CopySpec),
    /// `ENV k=v ...` or `ENV k v`.
    Env(Vec<KeyValue>),
    /// `ARG name[=default] ...`.
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v ...`.
    Label(Vec<KeyValue>),
    /// `WORKDIR path`.
    Workdir(String),
    /// `USER user[:group]`.
    User(String),
    /// `EXPOSE port[/proto] ...` (unexpanded words; see [`parse_port`]).
    Expose(Vec<String>),
    /// `VOLUME path ...` or `VOLUME ["path", ...]`.
    Volume(Vec<String>),
    /// `STOPSIGNAL signal`.
    StopSignal(String),
    /// `HEALTHCHECK NONE` or `HEALTHCHECK [opts] CMD ...`.
    Healthcheck(Healthcheck),
    /// `ONBUILD instruction`.
    Onbuild(Onbuild),
    /// `MAINTAINER name` (deprecated, kept for compatibility).
    Maintainer(String),
}

impl Command {
    /// The instruction keyword in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Shell(_) => "SHELL",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Env(_) => "ENV",
            Command::Arg(_) => "ARG",
            Command::Label(_) => "LABEL",
            Command::Workdir(_) => "WORKDIR",
            Command::User(_) => "USER",
            Command::Expose(_) => "EXPOSE",
            Command::Volume(_) => "VOLUME",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Onbuild(_) => "ONBUILD",
            Command::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// The arguments of `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// Image reference, stage name or `scratch`, unexpanded.
    pub image: String,
    /// `AS name`, lower-cased.
    pub stage_name: Option<String>,
    /// `--platform` value, unexpanded.
    pub platform: Option<String>,
}

/// A command in shell form (run by the SHELL) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `RUN echo hi`: the text given to the shell.
    Shell(String),
    /// `RUN ["echo", "hi"]`: argv.
    Exec(Vec<String>),
}

/// The arguments of `RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: CommandLine,
    /// `--mount` flags in order.
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security`.
    pub security: Option<SecurityMode>,
    /// Heredoc bodies named on the command line, in order.
    pub heredocs: Vec<Heredoc>,
}

/// How a RUN with heredocs should be executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// Run the command as given (no heredocs).
    Command(CommandLine),
    /// `RUN <<EOF` whose body starts with `#!`: write the body to an
    /// executable file called `name` and run it.
    File {
        /// Heredoc name (used as the file name).
        name: String,
        /// File content.
        content: String,
    },
    /// Text to give to the SHELL as its command string.
    Shell(String),
}

impl Run {
    /// How to execute this RUN: a plain command, a script file (a single
    /// heredoc starting with `#!`), or shell text (a single heredoc body, or
    /// the command line with the heredocs appended so the shell reads them).
    pub fn script(&self) -> RunScript {
        let CommandLine::Shell(line) = &self.command else {
            return RunScript::Command(self.command.clone());
        };
        if self.heredocs.is_empty() {
            return RunScript::Command(self.command.clone());
        }
        let single =
            super::heredoc::heredoc_word(line.trim(), '\\').is_some() && self.heredocs.len() == 1;
        if single {
            let doc = &self.heredocs[0];
            if doc.content.starts_with("#!") {
                return RunScript::File {
                    name: doc.name.clone(),
                    content: doc.content.clone(),
                };
            }
            return RunScript::Shell(doc.content.clone());
        }
        let mut full = line.clone();
        for doc in &self.heredocs {
            full.push('\n');
            full.push_str(&doc.content);
            full.push_str(&doc.name);
        }
        RunScript::Shell(full)
    }
}

/// `RUN --network` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The build's default network.
    Default,
    /// No network (only loopback).
    None,
    /// The host's network namespace.
    Host,
}

/// `RUN --security` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    /// The default confinement.
    Sandbox,
    /// All capabilities, no seccomp (needs the builder to allow it).
    Insecure,
}

/// A heredoc: `<<NAME` on the instruction line and the lines up to `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// Delimiter with quotes removed.
    pub name: String,
    /// The body, each line with its newline; with `<<-` leading tabs are
    /// already removed.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): the body
    /// is used verbatim.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped.
    pub chomp: bool,
    /// File descriptor written before `<<` (e.g. `3<<EOF`).
    pub fd: Option<u32>,
}

/// One COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path, glob or (ADD) URL, unexpanded.
    Path(String),
    /// Inline content from a heredoc, copied as a file named after it.
    Heredoc(Heredoc),
}

/// The arguments of `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Sources in order.
    pub sources: Vec<Source>,
    /// Destination, unexpanded.
    pub dest: String,
    /// COPY `--from` (stage name, stage index or image), unexpanded.
    pub from: Option<String>,
    /// `--chown=user[:group]`, unexpanded.
    pub chown: Option<String>,
    /// `--chmod` (octal or symbolic), unexpanded.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// COPY `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// ADD `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD `--checksum`.
    pub checksum: Option<String>,
    /// Whether the JSON form was used.
    pub json: bool,
}

/// A `key=value` pair of ENV or LABEL, both as written (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Key as written.
    pub key: String,
    /// Value as written.
    pub value: String,
}

/// One ARG declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// Argument name.
    pub name: String,
    /// Default value as written, if any.
    pub default: Option<String>,
}

/// The arguments of `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [opts] CMD ...`.
    Check(HealthcheckConfig),
}

/// A health check, in the image-config shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckConfig {
    /// `["CMD-SHELL", cmd]` or `["CMD", argv...]`.
    pub test: Vec<String>,
    /// `--interval` (zero means inherit the default).
    pub interval: Option<Duration>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--start-period`.
    pub start_period: Option<Duration>,
    /// `--start-interval`.
    pub start_interval: Option<Duration>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// The arguments of `ONBUILD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The wrapped instruction, parsed (and so validated).
    pub trigger: Box<Command>,
    /// The trigger text to store in the image config, e.g. `RUN make`.
    pub text: String,
}

/// A port from EXPOSE, after expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// First port.
    pub start: u16,
    /// Last port (same as `start` for a single port).
    pub end: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The lower-case name used in image configs (`80/tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// Parses one expanded EXPOSE word: `80`, `80/udp`, `8000-8010/tcp`.
pub fn parse_port(word: &str) -> Result<PortSpec, String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (word, "tcp"),
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => {
            return Err(format!(
                "invalid protocol {proto:?} in {word:?}: use tcp, udp or sctp"
            ))
        }
    };
    let num = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid port {s:?} in {word:?}: use a number 0-65535"))
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(ports)?;
            (p, p)
        }
    };
    if end < start {
        return Err(format!("invalid port range {word:?}: end is below start"));
    }
    Ok(PortSpec {
        start,
        end,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(
            parse_port("80"),
            Ok(PortSpec {
                start: 80,
                end: 80,
                protocol: Protocol::Tcp
            })
        );
        assert_eq!(parse_port("53/UDP").map(|p| p.protocol), Ok(Protocol::Udp));
        assert_eq!(
            parse_port("8000-8010/tcp").map(|p| (p.start, p.end)),
            Ok((8000, 8010))
        );
        assert!(parse_port("80/icmp").is_err());
        assert!(parse_port("99999").is_err());
        assert!(parse_port("90-80").is_err());
        assert!(parse_port("").is_err());
    }
}
