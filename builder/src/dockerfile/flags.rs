//! Instruction flags (`--name=value`) before the arguments.

use std::collections::BTreeMap;

use super::error::{closest, ParseErrorKind};

/// Splits leading `--flag` words off an argument string. Flag words may
/// contain quotes (removed) and `\` escapes; a bare `--` ends the flags.
/// Returns the flag words (without the leading dashes kept intact) and the
/// rest of the line.
pub(crate) fn extract_flags(args: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = args.chars().collect();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
        if pos == chars.len() {
            return (flags, String::new());
        }
        if !(chars[pos] == '-' && chars.get(pos + 1) == Some(&'-')) {
            return (flags, chars[pos..].iter().collect());
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut quoted = false;
        while pos < chars.len() {
            let c = chars[pos];
            pos += 1;
            match quote {
                None if c.is_whitespace() => break,
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    quoted = true;
                }
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some(&n) = chars.get(pos) {
                        word.push(n);
                        pos += 1;
                    }
                }
                _ => word.push(c),
            }
        }
        if word == "--" && !quoted {
            let rest: String = chars[pos.min(chars.len())..].iter().collect();
            return (flags, rest.trim_start().to_string());
        }
        flags.push(word);
    }
}

/// What kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    Str,
    /// `--mount=x`, any number of times.
    List,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FlagValue {
    Bool(bool),
    Str(String),
    List(Vec<String>),
}

/// Parsed flag values of one instruction.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, FlagValue>,
}

impl Flags {
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(FlagValue::Bool(true)))
    }

    pub fn string(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(FlagValue::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(FlagValue::List(v)) => v.clone(),
            _ => Vec::new(),
        }
    }
}

/// Checks flag words against what `instruction` accepts.
pub(crate) fn parse_flags(
    instruction: &str,
    words: &[String],
    spec: &[(&'static str, FlagKind)],
) -> Result<Flags, ParseErrorKind> {
    let mut flags = Flags::default();
    for word in words {
        let body = word.strip_prefix("--").unwrap_or(word);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            return Err(ParseErrorKind::UnknownFlag {
                instruction: instruction.to_string(),
                flag: name.to_string(),
                suggestion: closest(name, &names).map(|s| format!("--{s}")),
            });
        };
        if kind != FlagKind::List && flags.values.contains_key(key) {
            return Err(ParseErrorKind::DuplicateFlag(key.to_string()));
        }
        let parsed = match (kind, value) {
            (FlagKind::Bool, None) => FlagValue::Bool(true),
            (FlagKind::Bool, Some("")) | (FlagKind::Str | FlagKind::List, None) => {
                return Err(ParseErrorKind::MissingFlagValue(key.to_string()))
            }
            (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" => FlagValue::Bool(true),
                "false" => FlagValue::Bool(false),
                _ => {
                    return Err(ParseErrorKind::InvalidFlagValue {
                        flag: key.to_string(),
                        value: v.to_string(),
                        reason: "expected true or false".into(),
                    })
                }
            },
            (FlagKind::Str, Some(v)) => FlagValue::Str(v.to_string()),
            (FlagKind::List, Some(v)) => {
                let mut list = flags.list(key);
                list.push(v.to_string());
                FlagValue::List(list)
            }
        };
        flags.values.insert(key, parsed);
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_leading_flags_only() {
        let (f, rest) = extract_flags("--from=build --chown=\"a b\" src --notflag dest");
        assert_eq!(f, vec!["--from=build", "--chown=a b"]);
        assert_eq!(rest, "src --notflag dest");
        let (f, rest) = extract_flags("  --link -- --weird-name /d");
        assert_eq!(f, vec!["--link"]);
        assert_eq!(rest, "--weird-name /d");
        let (f, rest) = extract_flags("-x y");
        assert!(f.is_empty());
        assert_eq!(rest, "-x y");
        let (f, rest) = extract_flags("--a\\ b");
        assert_eq!((f, rest), (vec!["--a b".to_string()], String::new()));
    }

    #[test]
    fn flag_kinds() {
        let spec = [
            ("link", FlagKind::Bool),
            ("from", FlagKind::Str),
            ("exclude", FlagKind::List),
        ];
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = parse_flags(
            "COPY",
            &w(&["--link=FALSE", "--from=", "--exclude=a", "--exclude=b"]),
            &spec,
        )
        .expect("parses");
        assert!(!f.bool("link"));
        assert_eq!(f.string("from").as_deref(), Some(""));
        assert_eq!(f.list("exclude"), vec!["a", "b"]);

        let err = |v: &[&str]| parse_flags("COPY", &w(v), &spec).expect_err("fails");
        assert_eq!(
            err(&["--from"]),
            ParseErrorKind::MissingFlagValue("from".into())
        );
        assert_eq!(
            err(&["--link="]),
            ParseErrorKind::MissingFlagValue("link".into())
        );
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            ParseErrorKind::DuplicateFlag("from".into())
        );
        assert!(matches!(
            err(&["--link=yes"]),
            ParseErrorKind::InvalidFlagValue { .. }
        ));
        assert_eq!(
            err(&["--form=x"]),
            ParseErrorKind::UnknownFlag {
                instruction: "COPY".into(),
                flag: "form".into(),
                suggestion: Some("--from".into())
            }
        );
    }
}
