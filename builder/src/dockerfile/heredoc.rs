//! Heredoc words (`<<EOF`, `<<-"EOF"`, `3<<EOF`): recognised by the parser
//! when it reads bodies and by [`super::instruction`] when it decides how a
//! RUN script runs. A module of its own so neither depends on the other.

use super::expand::{split_words, unquote};

/// A `<<NAME` word: (optional fd digits) `<<` (optional `-`) delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocWord {
    pub name: String,
    pub chomp: bool,
    pub expand: bool,
    pub fd: Option<u32>,
}

/// Recognises a heredoc word such as `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`.
pub(crate) fn heredoc_word(word: &str, escape: char) -> Option<HeredocWord> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (fd_text, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, raw) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if raw.is_empty() || raw.contains('<') || split_words(raw, escape).len() != 1 {
        return None;
    }
    let name = unquote(raw, escape);
    if name.is_empty() {
        return None;
    }
    let fd = if fd_text.is_empty() {
        None
    } else {
        Some(fd_text.parse().ok()?)
    };
    Some(HeredocWord {
        expand: name == raw,
        name,
        chomp,
        fd,
    })
}
