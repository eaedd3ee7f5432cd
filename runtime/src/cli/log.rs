//! Error and debug output: stderr, plus `--log FILE` in text or runc's JSON line format
//! (`{"level":"error","msg":"...","time":"..."}`), which containerd and podman parse.

use std::io::Write;
use std::path::Path;

/// Where messages go.
pub struct Logger {
    file: Option<std::fs::File>,
    json: bool,
}

impl Logger {
    /// Opens the log file (append) if one was given; debug enables tracing to it or stderr.
    pub fn new(path: Option<&Path>, format: &str, debug: bool) -> Logger {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let json = format == "json";
        if debug || std::env::var_os("RUST_LOG").is_some() {
            let filter = if debug {
                "debug".to_string()
            } else {
                std::env::var("RUST_LOG").unwrap_or_default()
            };
            let builder = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr);
            let _ = builder.try_init();
        }
        Logger { file, json }
    }

    /// Reports an error: one line to the log file (if any) and to stderr.
    pub fn error(&self, msg: &str) {
        self.line("error", msg);
        eprintln!("berth: {msg}");
    }

    /// Reports a warning.
    pub fn warn(&self, msg: &str) {
        self.line("warning", msg);
        eprintln!("berth: warning: {msg}");
    }

    fn line(&self, level: &str, msg: &str) {
        let Some(mut f) = self.file.as_ref() else {
            return;
        };
        let time = berth::timefmt::now_rfc3339_nano();
        let text = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        let _ = writeln!(f, "{text}");
    }
}
