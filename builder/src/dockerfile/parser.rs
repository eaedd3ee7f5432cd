//! Logical lines to typed instructions.

use super::duration::parse_duration;
use super::error::{closest, Location, ParseError, ParseErrorKind};
use super::expand::split_words;
use super::flags::{extract_flags, parse_flags, FlagKind};
use super::heredoc::heredoc_word;
use super::instruction::*;
use super::lexer::{Directives, Lexer, Warning};
use super::mount::parse_mount;

/// Every instruction keyword, for suggestions.
const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

type Result<T> = std::result::Result<T, ParseErrorKind>;

/// The result of parsing a whole file.
pub(crate) struct Parsed {
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
    pub warnings: Vec<Warning>,
}

/// Parses a whole Dockerfile.
pub(crate) fn parse_file(file: &str, text: &str) -> std::result::Result<Parsed, ParseError> {
    let mut lexer = Lexer::new(file, text);
    let mut instructions = Vec::new();
    while let Some(line) = lexer.next_line()? {
        let escape = lexer.directives.escape;
        let command = parse_command(&line.text, escape, &mut lexer).map_err(|kind| ParseError {
            location: Location {
                file: file.to_string(),
                line: line.start_line,
                column: line.column,
                text: line.first_line.clone(),
            },
            kind: Box::new(kind),
        })?;
        instructions.push(Instruction {
            command,
            span: Span {
                start_line: line.start_line,
                end_line: lexer.line_number().max(line.end_line),
                column: line.column,
            },
            original: line.text.trim().to_string(),
            line_text: line.first_line,
        });
    }
    Ok(Parsed {
        directives: lexer.directives.clone(),
        instructions,
        warnings: std::mem::take(&mut lexer.warnings),
    })
}

/// Whitespace that separates words in Dockerfile arguments.
fn is_sep(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// Splits off the first word (the instruction keyword).
fn split_command(line: &str) -> (&str, &str) {
    let t = line.trim();
    match t.find(is_sep) {
        Some(i) => (&t[..i], t[i..].trim_start_matches(is_sep)),
        None => (t, ""),
    }
}

fn split_ws(s: &str) -> Vec<String> {
    s.split(is_sep)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// BuildKit's exec-form detection: text starting with `[` that is a valid
/// JSON array is exec form, and it must then hold only strings; anything
/// else is shell form (`None`).
pub(crate) fn parse_json(args: &str) -> Result<Option<Vec<String>>> {
    let t = args.trim_start();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(t) else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::JsonNotStrings),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Finds the heredoc words in `args` and reads their bodies, in order.
fn read_heredocs(args: &str, escape: char, lexer: &mut Lexer<'_>) -> Result<Vec<Heredoc>> {
    let mut docs = Vec::new();
    for word in split_words(args, escape) {
        if let Some(h) = heredoc_word(&word, escape) {
            let content = lexer
                .read_heredoc(&h.name, h.chomp)
                .ok_or_else(|| ParseErrorKind::UnterminatedHeredoc(h.name.clone()))?;
            docs.push(Heredoc {
                name: h.name,
                content,
                expand: h.expand,
                chomp: h.chomp,
                fd: h.fd,
            });
        }
    }
    Ok(docs)
}

/// Parses one instruction's text (heredoc bodies are read from `lexer`).
pub(crate) fn parse_command(text: &str, escape: char, lexer: &mut Lexer<'_>) -> Result<Command> {
    let (word, rest) = split_command(text);
    let (flag_words, args) = extract_flags(rest);
    let args = args.trim();
    let name = word.to_ascii_uppercase();
    let no_flags = |n: &str| parse_flags(n, &flag_words, &[]).map(|_| ());
    let need_args = |n: &str, what: &str| {
        if args.is_empty() {
            Err(ParseErrorKind::args(n, what))
        } else {
            Ok(())
        }
    };
    match name.as_str() {
        "FROM" => parse_from(&flag_words, args),
        "RUN" => parse_run(&flag_words, args, escape, lexer),
        "CMD" | "ENTRYPOINT" => {
            no_flags(&name)?;
            need_args(
                &name,
                "requires a command, in JSON form [\"exe\", \"arg\"] or shell form",
            )?;
            let cmd = match parse_json(args)? {
                Some(v) => CommandLine::Exec(v),
                None => CommandLine::Shell(args.to_string()),
            };
            Ok(if name == "CMD" {
                Command::Cmd(cmd)
            } else {
                Command::Entrypoint(cmd)
            })
        }
        "SHELL" => {
            no_flags(&name)?;
            match parse_json(args)? {
                Some(v) if v.is_empty() => Err(ParseErrorKind::args(
                    "SHELL",
                    "requires at least one argument, e.g. [\"/bin/sh\", \"-c\"]",
                )),
                Some(v) => Ok(Command::Shell(v)),
                None => Err(ParseErrorKind::JsonRequired("SHELL".into())),
            }
        }
        "COPY" | "ADD" => parse_copy(&name, &flag_words, args, escape, lexer),
        "ENV" | "LABEL" => {
            no_flags(&name)?;
            let pairs = parse_name_values(&name, args, escape)?;
            Ok(if name == "ENV" {
                Command::Env(pairs)
            } else {
                Command::Label(pairs)
            })
        }
        "ARG" => {
            no_flags(&name)?;
            let words = split_words(args, escape);
            if words.is_empty() {
                return Err(ParseErrorKind::args(
                    "ARG",
                    "requires at least one argument: ARG name[=default]",
                ));
            }
            let mut decls = Vec::new();
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w, None),
                };
                if name.is_empty() {
                    return Err(ParseErrorKind::args("ARG", "names can not be blank"));
                }
                decls.push(ArgDecl { name, default });
            }
            Ok(Command::Arg(decls))
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            no_flags(&name)?;
            need_args(&name, "requires exactly one argument")?;
            let v = args.to_string();
            Ok(match name.as_str() {
                "WORKDIR" => Command::Workdir(v),
                "USER" => Command::User(v),
                "STOPSIGNAL" => Command::StopSignal(v),
                _ => Command::Maintainer(v),
            })
        }
        "EXPOSE" => {
            no_flags(&name)?;
            need_args(&name, "requires at least one port, e.g. EXPOSE 80/tcp")?;
            Ok(Command::Expose(split_ws(args)))
        }
        "VOLUME" => {
            no_flags(&name)?;
            let paths = match parse_json(args)? {
                Some(v) => v,
                None => split_ws(args),
            };
            if paths.is_empty() {
                return Err(ParseErrorKind::args("VOLUME", "requires at least one path"));
            }
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err(ParseErrorKind::args(
                    "VOLUME",
                    "paths can not be empty strings",
                ));
            }
            Ok(Command::Volume(paths))
        }
        "HEALTHCHECK" => parse_healthcheck(&flag_words, args),
        "ONBUILD" => {
            no_flags(&name)?;
            need_args(&name, "requires an instruction, e.g. ONBUILD RUN make")?;
            let (inner, _) = split_command(args);
            match inner.to_ascii_uppercase().as_str() {
                "ONBUILD" => {
                    return Err(ParseErrorKind::InvalidOnbuild(
                        "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                    ))
                }
                "FROM" | "MAINTAINER" => {
                    return Err(ParseErrorKind::InvalidOnbuild(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner.to_ascii_uppercase()
                    )))
                }
                _ => {}
            }
            let trigger = parse_command(args, escape, lexer)?;
            Ok(Command::Onbuild(Onbuild {
                trigger: Box::new(trigger),
                text: args.to_string(),
            }))
        }
        _ => Err(ParseErrorKind::UnknownInstruction {
            name: word.to_string(),
            suggestion: closest(word, INSTRUCTIONS).map(str::to_string),
        }),
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

fn parse_from(flag_words: &[String], args: &str) -> Result<Command> {
    let flags = parse_flags("FROM", flag_words, &[("platform", FlagKind::Str)])?;
    let words = split_ws(args);
    let stage_name = match words.len() {
        1 => None,
        3 if words[1].eq_ignore_ascii_case("as") => {
            let name = words[2].to_ascii_lowercase();
            if !valid_stage_name(&name) {
                return Err(ParseErrorKind::args(
                    "FROM",
                    format!(
                        "stage name {:?} is invalid: it must start with a letter and contain only letters, digits, '-', '_' and '.'",
                        words[2]
                    ),
                ));
            }
            Some(name)
        }
        _ => {
            return Err(ParseErrorKind::args(
                "FROM",
                "requires either one or three arguments: FROM <image> [AS <name>]",
            ))
        }
    };
    Ok(Command::From(From {
        image: words[0].clone(),
        stage_name,
        platform: flags.string("platform"),
    }))
}

fn parse_run(
    flag_words: &[String],
    args: &str,
    escape: char,
    lexer: &mut Lexer<'_>,
) -> Result<Command> {
    let flags = parse_flags(
        "RUN",
        flag_words,
        &[
            ("mount", FlagKind::List),
            ("network", FlagKind::Str),
            ("security", FlagKind::Str),
        ],
    )?;
    if args.is_empty() {
        return Err(ParseErrorKind::args("RUN", "requires a command to run"));
    }
    let mounts = flags
        .list("mount")
        .iter()
        .map(|m| parse_mount(m).map_err(ParseErrorKind::InvalidMount))
        .collect::<Result<Vec<_>>>()?;
    let network = match flags.string("network").as_deref() {
        None => None,
        Some("default") => Some(NetworkMode::Default),
        Some("none") => Some(NetworkMode::None),
        Some("host") => Some(NetworkMode::Host),
        Some(other) => {
            return Err(ParseErrorKind::InvalidFlagValue {
                flag: "network".into(),
                value: other.into(),
                reason: "use default, none or host".into(),
            })
        }
    };
    let security = match flags.string("security").as_deref() {
        None => None,
        Some("sandbox") => Some(SecurityMode::Sandbox),
        Some("insecure") => Some(SecurityMode::Insecure),
        Some(other) => {
            return Err(ParseErrorKind::InvalidFlagValue {
                flag: "security".into(),
                value: other.into(),
                reason: "use sandbox or insecure".into(),
            })
        }
    };
    let (command, heredocs) = match parse_json(args)? {
        Some(v) => (CommandLine::Exec(v), Vec::new()),
        None => (
            CommandLine::Shell(args.to_string()),
            read_heredocs(args, escape, lexer)?,
        ),
    };
    Ok(Command::Run(Run {
        command,
        mounts,
        network,
        security,
        heredocs,
    }))
}

fn parse_copy(
    name: &str,
    flag_words: &[String],
    args: &str,
    escape: char,
    lexer: &mut Lexer<'_>,
) -> Result<Command> {
    let copy = name == "COPY";
    let spec: &[(&'static str, FlagKind)] = if copy {
        &[
            ("from", FlagKind::Str),
            ("chown", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("parents", FlagKind::Bool),
            ("exclude", FlagKind::List),
        ]
    } else {
        &[
            ("chown", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::Str),
            ("exclude", FlagKind::List),
        ]
    };
    let flags = parse_flags(name, flag_words, spec)?;
    let (words, json) = match parse_json(args)? {
        Some(v) => (v, true),
        None => (split_ws(args), false),
    };
    if words.len() < 2 {
        return Err(ParseErrorKind::args(
            name,
            "requires at least two arguments: one or more sources and a destination",
        ));
    }
    let heredocs = if json {
        Vec::new()
    } else {
        read_heredocs(args, escape, lexer)?
    };
    let (dest, srcs) = words
        .split_last()
        .ok_or_else(|| ParseErrorKind::args(name, "requires a destination"))?;
    if !json && heredoc_word(dest, escape).is_some() {
        return Err(ParseErrorKind::InvalidHeredoc(format!(
            "{name} cannot use a heredoc as the destination"
        )));
    }
    let mut sources = Vec::new();
    for src in srcs {
        let doc = if json {
            None
        } else {
            heredoc_word(src, escape)
                .and_then(|h| heredocs.iter().find(|d| d.name == h.name).cloned())
        };
        sources.push(match doc {
            Some(d) => Source::Heredoc(d),
            None => Source::Path(src.clone()),
        });
    }
    let spec = CopySpec {
        sources,
        dest: dest.clone(),
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        excludes: flags.list("exclude"),
        keep_git_dir: flags.bool("keep-git-dir"),
        checksum: flags.string("checksum"),
        json,
    };
    Ok(if copy {
        Command::Copy(spec)
    } else {
        Command::Add(spec)
    })
}

/// ENV and LABEL: `key=value ...`, or the legacy `key value` form when the
/// first word has no `=`.
fn parse_name_values(name: &str, args: &str, escape: char) -> Result<Vec<KeyValue>> {
    let words = split_words(args, escape);
    let Some(first) = words.first() else {
        return Err(ParseErrorKind::args(
            name,
            "requires at least one argument: key=value",
        ));
    };
    if !first.contains('=') {
        let (key, value) = match args.find(is_sep) {
            Some(i) => (&args[..i], args[i..].trim_start_matches(is_sep)),
            None => (args, ""),
        };
        if value.is_empty() {
            return Err(ParseErrorKind::args(
                name,
                format!("must have two arguments: {name} {key}=value"),
            ));
        }
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }]);
    }
    let mut pairs = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseErrorKind::args(
                name,
                format!("syntax error: can't find = in {w:?}; use name=value"),
            ));
        };
        if k.is_empty() {
            return Err(ParseErrorKind::args(name, "names can not be blank"));
        }
        pairs.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        });
    }
    Ok(pairs)
}

fn parse_healthcheck(flag_words: &[String], args: &str) -> Result<Command> {
    let flags = parse_flags(
        "HEALTHCHECK",
        flag_words,
        &[
            ("interval", FlagKind::Str),
            ("timeout", FlagKind::Str),
            ("start-period", FlagKind::Str),
            ("start-interval", FlagKind::Str),
            ("retries", FlagKind::Str),
        ],
    )?;
    let (kind, rest) = split_command(args);
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !rest.trim().is_empty() {
                return Err(ParseErrorKind::args(
                    "HEALTHCHECK",
                    "NONE takes no arguments",
                ));
            }
            if !flag_words.is_empty() {
                return Err(ParseErrorKind::args("HEALTHCHECK", "NONE takes no options"));
            }
            Ok(Command::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            let rest = rest.trim();
            let test = match parse_json(rest)? {
                Some(v) => std::iter::once("CMD".to_string())
                    .chain(v)
                    .collect::<Vec<_>>(),
                None if rest.is_empty() => Vec::new(),
                None => vec!["CMD-SHELL".to_string(), rest.to_string()],
            };
            if test.len() < 2 {
                return Err(ParseErrorKind::args(
                    "HEALTHCHECK",
                    "requires a command after CMD",
                ));
            }
            let duration = |flag: &str| -> Result<Option<std::time::Duration>> {
                let Some(v) = flags.string(flag) else {
                    return Ok(None);
                };
                let d = parse_duration(&v).map_err(|reason| ParseErrorKind::InvalidFlagValue {
                    flag: flag.into(),
                    value: v.clone(),
                    reason,
                })?;
                if !d.is_zero() && d < std::time::Duration::from_millis(1) {
                    return Err(ParseErrorKind::InvalidFlagValue {
                        flag: flag.into(),
                        value: v,
                        reason: "must be at least 1ms (or 0 for the default)".into(),
                    });
                }
                Ok(Some(d))
            };
            let retries = match flags.string("retries") {
                None => None,
                Some(v) => {
                    Some(
                        v.parse::<u32>()
                            .map_err(|_| ParseErrorKind::InvalidFlagValue {
                                flag: "retries".into(),
                                value: v.clone(),
                                reason: "must be a non-negative whole number".into(),
                            })?,
                    )
                }
            };
            Ok(Command::Healthcheck(Healthcheck::Check(
                HealthcheckConfig {
                    test,
                    interval: duration("interval")?,
                    timeout: duration("timeout")?,
                    start_period: duration("start-period")?,
                    start_interval: duration("start-interval")?,
                    retries,
                },
            )))
        }
        "" => Err(ParseErrorKind::args(
            "HEALTHCHECK",
            "requires NONE or [options] CMD command",
        )),
        other => Err(ParseErrorKind::args(
            "HEALTHCHECK",
            format!(
                "unknown type {other:?}: use HEALTHCHECK NONE or HEALTHCHECK [options] CMD command"
            ),
        )),
    }
}
