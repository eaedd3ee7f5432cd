//! Progress of concurrent blob transfers on stderr: on a terminal one line
//! per blob redrawn in place (`sha256:0123456789ab  3.1 MiB / 12.0 MiB`),
//! otherwise plain lines when a blob starts and ends.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::progress::ProgressMode;

#[derive(Debug, Clone)]
struct Line {
    label: String,
    done: u64,
    total: u64,
    status: &'static str,
}

/// The shared progress state (cheap to clone into worker threads).
#[derive(Clone)]
pub struct Transfers {
    mode: ProgressMode,
    verb: &'static str,
    lines: Arc<Mutex<Vec<Line>>>,
    drawn: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

/// `1536` -> `1.5 KiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

impl Transfers {
    /// A display for `verb` (`Copying`, `Pushing`) in `mode`.
    pub fn new(mode: ProgressMode, verb: &'static str) -> Transfers {
        Transfers {
            mode,
            verb,
            lines: Arc::new(Mutex::new(Vec::new())),
            drawn: Arc::new(Mutex::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Adds a blob; returns its slot.
    pub fn start(&self, label: &str, total: u64) -> usize {
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        l.push(Line {
            label: label.to_string(),
            done: 0,
            total,
            status: "",
        });
        if self.mode == ProgressMode::Plain {
            eprintln!("{} blob {label} ({})", self.verb, human(total));
        }
        l.len() - 1
    }

    /// Counts `n` more bytes for `slot`.
    pub fn add(&self, slot: usize, n: u64) {
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(line) = l.get_mut(slot) {
            line.done += n;
        }
    }

    /// Sets `slot`'s byte count (after a restart).
    pub fn set(&self, slot: usize, n: u64) {
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(line) = l.get_mut(slot) {
            line.done = n;
        }
    }

    /// Ends `slot` with `status` (`done`, `exists`, `mounted`, `failed`).
    pub fn finish(&self, slot: usize, status: &'static str) {
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(line) = l.get_mut(slot) {
            line.status = status;
            if status != "failed" {
                line.done = line.total;
            }
            if self.mode == ProgressMode::Plain {
                eprintln!("{} blob {} {status}", self.verb, line.label);
            }
        }
    }

    /// Notes a blob that needs no transfer.
    pub fn skip(&self, label: &str, total: u64, status: &'static str) {
        if self.mode == ProgressMode::Plain {
            eprintln!("{} blob {label} skipped: {status}", self.verb);
            return;
        }
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        l.push(Line {
            label: label.to_string(),
            done: total,
            total,
            status,
        });
    }

    fn draw(&self) {
        if self.mode != ProgressMode::Tty {
            return;
        }
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        if *drawn > 0 {
            out.push_str(&format!("\x1b[{}A", *drawn));
        }
        for l in &lines {
            let state = if l.status.is_empty() {
                format!("{} / {}", human(l.done), human(l.total))
            } else {
                l.status.to_string()
            };
            out.push_str(&format!("\x1b[2K{} blob {}  {state}\n", self.verb, l.label));
        }
        *drawn = lines.len();
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(out.as_bytes());
        let _ = e.flush();
    }

    /// Runs `f` with a redraw thread (on a terminal), drawing once more at
    /// the end.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.mode != ProgressMode::Tty {
            return f();
        }
        let r = std::thread::scope(|s| {
            let me = self.clone();
            s.spawn(move || {
                while !me.stop.load(Ordering::Relaxed) {
                    me.draw();
                    std::thread::sleep(Duration::from_millis(150));
                }
            });
            let r = f();
            self.stop.store(true, Ordering::Relaxed);
            r
        });
        self.draw();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
