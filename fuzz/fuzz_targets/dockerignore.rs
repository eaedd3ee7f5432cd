//! .dockerignore parser and matcher: any pattern file parses or errors; matching any path
//! against it terminates without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (patterns, paths) = text.split_once('\0').unwrap_or((text, "a/b/c.txt\nDockerfile"));
    let Ok(ignore) = berth_build::context::dockerignore::Dockerignore::parse(patterns) else {
        return;
    };
    for p in paths.lines().chain(["", ".", "a", "a/b", "..", "/abs"]) {
        let _ = ignore.is_excluded(p);
        let _ = ignore.can_skip_dir(p);
    }
});
