//! Error, warning and debug output in runc's shapes. Everything goes to one sink: `--log FILE`
//! when given, else stderr, in logrus's text format (`time="..." level=error msg="..."`) or,
//! with `--log-format json`, runc's JSON lines (`{"level":"error","msg":"...","time":"..."}`),
//! which containerd and podman parse. Debug lines (`--debug`) go to the same sink only, never to
//! both. As runc does, an error is also printed plainly on stderr when the sink is a file, so a
//! caller reading stderr sees it too.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Where the formatted lines go.
enum Sink {
    Stderr,
    File(std::fs::File),
}

/// The line writer shared by the logger and the tracing layer.
struct Lines {
    sink: Sink,
    json: bool,
}

impl Lines {
    /// Writes one formatted line with a single write (children of berth share the sink).
    fn emit(&mut self, level: &str, msg: &str, fields: &[(String, serde_json::Value)]) {
        let time = berth::timefmt::now_rfc3339();
        let mut text = if self.json {
            json_line(level, msg, &time, fields)
        } else {
            text_line(level, msg, &time, fields)
        };
        text.push('\n');
        let _ = match &mut self.sink {
            Sink::Stderr => std::io::stderr().write_all(text.as_bytes()),
            Sink::File(f) => f.write_all(text.as_bytes()),
        };
    }
}

/// Whether logrus's text formatter quotes a value: anything but `[A-Za-z0-9-._/@^+]`.
fn needs_quoting(s: &str) -> bool {
    s.is_empty()
        || s.chars().any(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'))
        })
}

/// A value as logrus's text formatter writes it (Go-style double-quoted when needed).
fn text_value(s: &str) -> String {
    if !needs_quoting(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `time="..." level=L msg="..." k=v...`, logrus's text format.
fn text_line(level: &str, msg: &str, time: &str, fields: &[(String, serde_json::Value)]) -> String {
    let mut s = format!(
        "time={} level={level} msg={}",
        text_value(time),
        text_value(msg)
    );
    for (k, v) in fields {
        let v = match v {
            serde_json::Value::String(t) => text_value(t),
            other => other.to_string(),
        };
        s.push_str(&format!(" {k}={v}"));
    }
    s
}

/// `{"level":...,"msg":...,"time":...}` with extra fields, keys sorted as logrus writes them.
fn json_line(level: &str, msg: &str, time: &str, fields: &[(String, serde_json::Value)]) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in fields {
        m.insert(k.clone(), v.clone());
    }
    m.insert("level".into(), level.into());
    m.insert("msg".into(), msg.into());
    m.insert("time".into(), time.into());
    serde_json::Value::Object(m).to_string()
}

/// Reports errors and warnings and, with `--debug`, receives the `tracing` events.
pub struct Logger {
    lines: Arc<Mutex<Lines>>,
    to_file: bool,
}

impl Logger {
    /// Opens the log file (append) if one was given; `debug` (or RUST_LOG) turns on tracing
    /// into the same sink. A log file that cannot be opened falls back to stderr with a warning.
    pub fn new(path: Option<&Path>, format: &str, debug: bool) -> Logger {
        let mut warning = None;
        let sink = match path {
            Some(p) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => Sink::File(f),
                Err(e) => {
                    warning = Some(format!("--log {}: {e}; logging to stderr", p.display()));
                    Sink::Stderr
                }
            },
            None => Sink::Stderr,
        };
        let to_file = matches!(sink, Sink::File(_));
        let lines = Arc::new(Mutex::new(Lines {
            sink,
            json: format == "json",
        }));
        // Warnings from the library (a cgroup that already holds processes, ...) are always
        // shown, as runc shows its warnings; `--debug` or RUST_LOG raise the level.
        let max = if debug {
            tracing::level_filters::LevelFilter::DEBUG
        } else {
            std::env::var("RUST_LOG")
                .ok()
                .map(|v| level_of_rust_log(&v))
                .unwrap_or(tracing::level_filters::LevelFilter::WARN)
        };
        let _ = tracing::subscriber::set_global_default(Subscriber {
            lines: lines.clone(),
            max,
        });
        let logger = Logger { lines, to_file };
        if let Some(w) = warning {
            logger.warn(&w);
        }
        logger
    }

    fn emit(&self, level: &str, msg: &str) {
        if let Ok(mut l) = self.lines.lock() {
            l.emit(level, msg, &[]);
        }
    }

    /// Reports an error: one line to the sink, and the bare message on stderr when the sink
    /// is a file (runc's `fatal`).
    pub fn error(&self, msg: &str) {
        self.emit("error", msg);
        if self.to_file {
            eprintln!("{msg}");
        }
    }

    /// Reports a warning (to the sink only, like logrus.Warn).
    pub fn warn(&self, msg: &str) {
        self.emit("warning", msg);
    }
}

/// The most verbose level named in a RUST_LOG value (`debug`, `berth=trace,warn`, ...): berth
/// logs from one crate, so per-target directives reduce to their level. Nothing recognisable
/// keeps the default (warnings). This replaces tracing-subscriber's EnvFilter, whose regex
/// engine was a quarter of the binary and a measurable part of every start.
fn level_of_rust_log(v: &str) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    v.split(',')
        .filter_map(|d| {
            let level = d.rsplit('=').next().unwrap_or(d).trim();
            level.parse::<LevelFilter>().ok()
        })
        .max()
        .unwrap_or(LevelFilter::WARN)
        .max(LevelFilter::WARN)
}

/// The `tracing` subscriber that writes events as logrus lines: a level filter and nothing
/// else (berth opens no spans worth recording).
struct Subscriber {
    lines: Arc<Mutex<Lines>>,
    max: tracing::level_filters::LevelFilter,
}

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(String, serde_json::Value)>,
}

impl Fields {
    fn put(&mut self, field: &tracing::field::Field, value: serde_json::Value) {
        self.rest.push((field.name().to_string(), value));
    }
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.put(field, value.into());
        }
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.msg = format!("{value:?}");
        } else {
            self.put(field, format!("{value:?}").into());
        }
    }
}

impl tracing::Subscriber for Subscriber {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        if let Ok(mut l) = self.lines.lock() {
            l.emit(level, &f.msg, &f.rest);
        }
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_match_logrus() {
        assert_eq!(
            text_line(
                "error",
                "container not running",
                "2026-12-01T21:34:09Z",
                &[]
            ),
            "time=\"2026-12-01T21:34:09Z\" level=error msg=\"container not running\""
        );
        assert_eq!(
            text_line(
                "debug",
                "ok",
                "T",
                &[("pid".into(), 12.into()), ("path".into(), "/a b".into())]
            ),
            "time=T level=debug msg=ok pid=12 path=\"/a b\""
        );
        assert_eq!(text_value("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(text_value(""), "\"\"");
    }

    #[test]
    fn rust_log_values_reduce_to_their_most_verbose_level() {
        use tracing::level_filters::LevelFilter;
        assert_eq!(level_of_rust_log("debug"), LevelFilter::DEBUG);
        assert_eq!(level_of_rust_log("berth=trace,warn"), LevelFilter::TRACE);
        assert_eq!(level_of_rust_log("error"), LevelFilter::WARN);
        assert_eq!(level_of_rust_log("nonsense"), LevelFilter::WARN);
        assert_eq!(level_of_rust_log(""), LevelFilter::WARN);
    }

    #[test]
    fn json_lines_match_runc() {
        let l = json_line("error", "boom", "2026-12-01T21:34:10Z", &[]);
        assert_eq!(
            l,
            "{\"level\":\"error\",\"msg\":\"boom\",\"time\":\"2026-12-01T21:34:10Z\"}"
        );
        let l = json_line("debug", "x", "T", &[("pid".into(), 7.into())]);
        assert_eq!(
            l,
            "{\"level\":\"debug\",\"msg\":\"x\",\"pid\":7,\"time\":\"T\"}"
        );
    }
}
