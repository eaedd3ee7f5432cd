//! Dockerfile parser and variable expansion: any text gives instructions or an error with a
//! line, never a panic; expansion of any word terminates with a value or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = berth_build::dockerfile::Dockerfile::parse("Dockerfile", text);
    let lookup = |name: &str| match name {
        "A" => Some("a b".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    for escape in ['\\', '`'] {
        let _ = berth_build::dockerfile::expand::expand_word(text, escape, &lookup);
        let _ = berth_build::dockerfile::expand::expand_words(text, escape, &lookup);
        let _ = berth_build::dockerfile::expand::expand_heredoc(text, escape, &lookup);
    }
});
