//! Step progress on stderr: `plain` lines, or a `tty` display that
//! redraws the current step's line in place.
//!
//! The builder is single-threaded (RUN forks), so the tty line is redrawn
//! on events (step start and end, between phases of a step), not by a
//! timer. A RUN's output is never captured: before the container starts
//! the status line is ended, and the output streams below it.

use std::io::Write;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// Nothing.
    Quiet,
    /// One line per event (`#3 [stage 3/9] RUN ...`, `#3 DONE 1.2s`).
    #[default]
    Plain,
    /// The current step's line, redrawn in place (for terminals).
    Tty,
}

/// The state of a step as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// Running for the given time.
    Running,
    /// Taken from the build cache.
    Cached,
    /// Finished.
    Done,
    /// Failed.
    Error,
}

/// One step's status line for the tty display, at most `width` characters:
/// `#3 [stage 3/9] RUN make 1.2s`, `... CACHED`, `... DONE 1.2s`,
/// `... ERROR 1.2s`. The instruction text is shortened (ending in `...`)
/// so that the status always shows.
pub fn render_status(
    step: usize,
    total: usize,
    stage: &str,
    text: &str,
    state: StepState,
    elapsed: Duration,
    width: usize,
) -> String {
    let secs = elapsed.as_secs_f64();
    let status = match state {
        StepState::Running => format!("{secs:.1}s"),
        StepState::Cached => "CACHED".to_string(),
        StepState::Done => format!("DONE {secs:.1}s"),
        StepState::Error => format!("ERROR {secs:.1}s"),
    };
    let prefix = format!("#{step} [{stage} {step}/{total}] ");
    let text = text.lines().next().unwrap_or_default().trim();
    let fixed = prefix.chars().count() + 1 + status.chars().count();
    let room = width.saturating_sub(fixed);
    let n = text.chars().count();
    let shown = if n <= room {
        text.to_string()
    } else if room > 3 {
        let mut t: String = text.chars().take(room - 3).collect();
        t.push_str("...");
        t
    } else {
        String::new()
    };
    let line = format!("{prefix}{shown} {status}");
    if line.chars().count() > width && width > 0 {
        // Too narrow even for the prefix: keep the status's end.
        let skip = line.chars().count() - width;
        return line.chars().skip(skip).collect();
    }
    line
}

#[derive(Debug)]
struct Current {
    step: usize,
    total: usize,
    stage: String,
    text: String,
    started: Instant,
    /// The line is on screen without its newline (can be redrawn).
    open: bool,
}

/// Writes step progress to stderr in one [`ProgressMode`].
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    start: Instant,
    width: usize,
    current: Option<Current>,
}

impl Progress {
    /// A display in `mode`, started now.
    pub fn new(mode: ProgressMode) -> Progress {
        Progress {
            mode,
            start: Instant::now(),
            width: terminal_width().unwrap_or(80),
            current: None,
        }
    }

    /// Time since the build started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// A message line (warnings, the summary).
    pub fn line(&mut self, s: &str) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Plain => eprintln!("{s}"),
            ProgressMode::Tty => {
                self.before_output();
                eprintln!("{s}");
            }
        }
    }

    /// A step starts.
    pub fn begin(&mut self, step: usize, total: usize, stage: &str, text: &str) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Plain => eprintln!(
                "#{step} [{stage} {step}/{total}] {}",
                text.lines().next().unwrap_or_default()
            ),
            ProgressMode::Tty => {
                self.before_output();
                self.current = Some(Current {
                    step,
                    total,
                    stage: stage.to_string(),
                    text: text.to_string(),
                    started: Instant::now(),
                    open: true,
                });
                self.draw(StepState::Running, false);
            }
        }
    }

    /// Redraws the current step's line with its elapsed time (tty only,
    /// while nothing was printed below it).
    pub fn tick(&mut self) {
        if self.mode == ProgressMode::Tty && self.current.as_ref().is_some_and(|c| c.open) {
            self.draw(StepState::Running, false);
        }
    }

    /// Something else is about to write to stderr (a RUN's output): end
    /// the open status line so the output goes below it.
    pub fn before_output(&mut self) {
        if let Some(c) = self.current.as_mut() {
            if c.open {
                c.open = false;
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(b"\n");
                let _ = err.flush();
            }
        }
    }

    /// Other output (a RUN's) has ended, maybe without a final newline:
    /// make sure the next status line starts on a line of its own.
    pub fn after_output(&mut self) {
        if self.mode == ProgressMode::Tty {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(fresh_line(self.width).as_bytes());
            let _ = err.flush();
        }
    }

    /// The current step ends in `state`. Plain mode shows `elapsed` when
    /// given (the tty display times steps itself).
    pub fn end(&mut self, step: usize, state: StepState, elapsed: Option<Duration>) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Plain => match (state, elapsed) {
                (StepState::Cached, _) => eprintln!("#{step} CACHED"),
                // The error itself is reported by the caller.
                (StepState::Error, _) => {}
                (_, Some(t)) => eprintln!("#{step} DONE {:.1}s", t.as_secs_f64()),
                (_, None) => eprintln!("#{step} DONE"),
            },
            ProgressMode::Tty => {
                if self.current.is_some() {
                    self.draw(state, true);
                }
            }
        }
        self.current = None;
    }

    /// The build failed: close the open step (tty) so the error starts on
    /// its own line.
    pub fn abort(&mut self) {
        if self.mode == ProgressMode::Tty {
            if let Some(c) = &self.current {
                let step = c.step;
                self.end(step, StepState::Error, None);
            }
        }
        self.current = None;
    }

    fn draw(&mut self, state: StepState, finished: bool) {
        let Some(c) = self.current.as_mut() else {
            return;
        };
        let line = render_status(
            c.step,
            c.total,
            &c.stage,
            &c.text,
            state,
            c.started.elapsed(),
            self.width.saturating_sub(1),
        );
        let mut err = std::io::stderr().lock();
        let mut out = Vec::new();
        if c.open {
            out.extend_from_slice(b"\r\x1b[K");
        }
        out.extend_from_slice(line.as_bytes());
        if finished {
            out.push(b'\n');
            c.open = false;
        } else {
            c.open = true;
        }
        let _ = err.write_all(&out);
        let _ = err.flush();
    }
}

/// Moves a terminal's cursor to the start of a fresh line, whatever column
/// it is in: `width` spaces wrap to the next line unless the cursor was at
/// column 0 (then they fill the current line exactly and stay on it), and
/// `\r` plus erase-line clears what is left.
pub fn fresh_line(width: usize) -> String {
    format!("{}\r\x1b[K", " ".repeat(width.max(1)))
}

/// Whether stderr is a terminal (for `--progress=auto`).
pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty has no preconditions.
    unsafe { libc::isatty(2) == 1 }
}

fn terminal_width() -> Option<usize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize we pass; the result is checked.
    let r = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn renders_each_state() {
        let r = |s| render_status(3, 9, "build", "RUN make", s, ms(1234), 80);
        assert_eq!(r(StepState::Running), "#3 [build 3/9] RUN make 1.2s");
        assert_eq!(r(StepState::Cached), "#3 [build 3/9] RUN make CACHED");
        assert_eq!(r(StepState::Done), "#3 [build 3/9] RUN make DONE 1.2s");
        assert_eq!(r(StepState::Error), "#3 [build 3/9] RUN make ERROR 1.2s");
    }

    #[test]
    fn long_text_is_shortened_to_the_width() {
        let text = format!("RUN {}", "x".repeat(200));
        let line = render_status(12, 40, "stage-1", &text, StepState::Done, ms(61_000), 50);
        assert_eq!(line.chars().count(), 50, "{line}");
        assert!(line.starts_with("#12 [stage-1 12/40] RUN xxx"), "{line}");
        assert!(line.ends_with("... DONE 61.0s"), "{line}");
        // Only the first line of a multi-line instruction.
        let line = render_status(
            1,
            2,
            "s",
            "RUN <<EOF\necho\nEOF",
            StepState::Cached,
            ms(0),
            80,
        );
        assert_eq!(line, "#1 [s 1/2] RUN <<EOF CACHED");
        // Multi-byte text is cut on characters.
        let line = render_status(1, 1, "s", &"é".repeat(100), StepState::Running, ms(0), 30);
        assert_eq!(line.chars().count(), 30, "{line}");
    }

    #[test]
    fn fresh_line_fills_the_width() {
        assert_eq!(fresh_line(4), "    \r\x1b[K");
        assert_eq!(fresh_line(0), " \r\x1b[K");
    }

    #[test]
    fn narrow_terminals_keep_the_status() {
        let line = render_status(
            1,
            1,
            "a-long-stage-name",
            "RUN x",
            StepState::Done,
            ms(0),
            10,
        );
        assert_eq!(line.chars().count(), 10, "{line}");
        assert!(line.ends_with("DONE 0.0s"), "{line}");
    }
}
