//! Step progress on stderr: `plain` lines, or a `tty` display that
//! redraws the running steps in place.
//!
//! Stages build concurrently, so output is line-based and every line says
//! which step it belongs to: plain mode prints `#N [stage N/T] TEXT` when a
//! step starts, each line of a RUN's output as `#N SECONDS LINE` (as
//! BuildKit's plain progress does), and `#N DONE 1.2s` when it ends. The
//! tty display keeps, below the finished steps, one status line per
//! running step with its running time and the last lines of its output;
//! a finished step collapses to its status line.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Mutex, MutexGuard};
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
    /// Stopped because another step failed.
    Canceled,
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
        StepState::Canceled => format!("CANCELED {secs:.1}s"),
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

/// Lines of a running step's output the tty display keeps under its
/// status line (fewer when many steps run at once).
pub const TAIL_LINES: usize = 6;

#[derive(Debug)]
struct Running {
    total: usize,
    stage: String,
    text: String,
    started: Instant,
    /// The last complete output lines (tty).
    tail: VecDeque<String>,
    /// Output after the last newline.
    partial: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Steps running now, by step number.
    running: BTreeMap<usize, Running>,
    /// Lines of the live area on screen below the finished lines (tty).
    drawn: usize,
    /// Something else writes to stderr (a pull): do not redraw.
    suspended: bool,
}

/// Writes step progress to stderr in one [`ProgressMode`]. Shared by the
/// threads that build stages: every method takes `&self` and writes whole
/// lines under one lock, so lines of concurrent steps never mix.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    start: Instant,
    width: usize,
    height: usize,
    inner: Mutex<Inner>,
}

impl Progress {
    /// A display in `mode`, started now.
    pub fn new(mode: ProgressMode) -> Progress {
        let (width, height) = terminal_size().unwrap_or((80, 24));
        Progress {
            mode,
            start: Instant::now(),
            width,
            height,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The display's mode.
    pub fn mode(&self) -> ProgressMode {
        self.mode
    }

    /// Time since the build started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A message line (warnings, the summary).
    pub fn line(&self, s: &str) {
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Plain => eprintln!("{s}"),
            ProgressMode::Tty => {
                let mut inner = self.lock();
                self.permanent(&mut inner, &[s.to_string()]);
            }
        }
    }

    /// Step `step` (of `total`) of stage `stage` starts.
    pub fn begin(&self, step: usize, total: usize, stage: &str, text: &str) {
        let mut inner = self.lock();
        inner.running.insert(
            step,
            Running {
                total,
                stage: stage.to_string(),
                text: text.to_string(),
                started: Instant::now(),
                tail: VecDeque::new(),
                partial: Vec::new(),
            },
        );
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Plain => eprintln!(
                "#{step} [{stage} {step}/{total}] {}",
                text.lines().next().unwrap_or_default()
            ),
            ProgressMode::Tty => self.redraw(&mut inner),
        }
    }

    /// Output of step `step`'s process (a RUN): plain mode prints each
    /// complete line as `#N SECONDS LINE`; the tty display keeps the last
    /// lines under the step's status line until the step ends; quiet mode
    /// shows the last lines only if the step fails.
    pub fn output(&self, step: usize, data: &[u8]) {
        let mut inner = self.lock();
        let Some(r) = inner.running.get_mut(&step) else {
            return;
        };
        r.partial.extend_from_slice(data);
        let Some(cut) = r.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = r.partial.split_off(cut + 1);
        let done = std::mem::replace(&mut r.partial, rest);
        let lines: Vec<String> = done[..cut]
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        self.emit(step, r, lines);
    }

    fn emit(&self, step: usize, r: &mut Running, lines: Vec<String>) {
        match self.mode {
            ProgressMode::Plain => {
                let secs = r.started.elapsed().as_secs_f64();
                let mut err = std::io::stderr().lock();
                for l in lines {
                    let l = l.strip_suffix('\r').unwrap_or(&l);
                    let _ = writeln!(err, "#{step} {secs:.3} {l}");
                }
            }
            // Quiet mode keeps the tail too, to show it if the step fails.
            ProgressMode::Tty | ProgressMode::Quiet => {
                for l in lines {
                    r.tail.push_back(tail_text(&l));
                    while r.tail.len() > TAIL_LINES {
                        r.tail.pop_front();
                    }
                }
            }
        }
    }

    /// Redraws the running steps with their timers (tty only; called
    /// periodically by the build).
    pub fn tick(&self) {
        if self.mode == ProgressMode::Tty {
            let mut inner = self.lock();
            if !inner.suspended {
                self.redraw(&mut inner);
            }
        }
    }

    /// Something else is about to write to stderr (a pull's progress):
    /// clear the live area and stop redrawing it.
    pub fn before_output(&self) {
        if self.mode == ProgressMode::Tty {
            let mut inner = self.lock();
            let mut out = String::new();
            clear(&mut out, &mut inner);
            inner.suspended = true;
            write_err(&out);
        }
    }

    /// The other output has ended, maybe without a final newline: start a
    /// fresh line and draw the running steps again.
    pub fn after_output(&self) {
        if self.mode == ProgressMode::Tty {
            let mut inner = self.lock();
            inner.suspended = false;
            write_err(&fresh_line(self.width));
            self.redraw(&mut inner);
        }
    }

    /// Step `step` ends in `state`. Plain mode shows `elapsed` when given
    /// (the tty display times steps itself). The tty display collapses the
    /// step to its final status line; on an error the step's last output
    /// lines stay under it.
    pub fn end(&self, step: usize, state: StepState, elapsed: Option<Duration>) {
        let mut inner = self.lock();
        let Some(mut r) = inner.running.remove(&step) else {
            return;
        };
        if !r.partial.is_empty() {
            let rest = std::mem::take(&mut r.partial);
            let line = String::from_utf8_lossy(&rest).into_owned();
            self.emit(step, &mut r, vec![line]);
        }
        match self.mode {
            ProgressMode::Quiet => {
                if state == StepState::Error {
                    let mut err = std::io::stderr().lock();
                    for l in &r.tail {
                        let _ = writeln!(err, "#{step} {l}");
                    }
                }
            }
            ProgressMode::Plain => match (state, elapsed) {
                (StepState::Cached, _) => eprintln!("#{step} CACHED"),
                (StepState::Canceled, _) => eprintln!("#{step} CANCELED"),
                // The error itself is reported by the caller.
                (StepState::Error, _) => eprintln!("#{step} ERROR"),
                (_, Some(t)) => eprintln!("#{step} DONE {:.1}s", t.as_secs_f64()),
                (_, None) => eprintln!("#{step} DONE"),
            },
            ProgressMode::Tty => {
                let width = self.width.saturating_sub(1);
                let mut lines = vec![render_status(
                    step,
                    r.total,
                    &r.stage,
                    &r.text,
                    state,
                    r.started.elapsed(),
                    width,
                )];
                if state == StepState::Error {
                    lines.extend(r.tail.iter().map(|l| tail_line(l, width)));
                }
                self.permanent(&mut inner, &lines);
            }
        }
    }

    /// The build is over: steps still shown as running are closed as
    /// canceled, so that the error starts on its own line.
    pub fn abort(&self) {
        let steps: Vec<usize> = self.lock().running.keys().copied().collect();
        for s in steps {
            self.end(s, StepState::Canceled, None);
        }
        if self.mode == ProgressMode::Tty {
            let mut inner = self.lock();
            let mut out = String::new();
            clear(&mut out, &mut inner);
            write_err(&out);
        }
    }

    /// Prints finished lines above the live area (tty).
    fn permanent(&self, inner: &mut Inner, lines: &[String]) {
        let mut out = String::new();
        clear(&mut out, inner);
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        if !inner.suspended {
            self.draw_live(&mut out, inner);
        }
        write_err(&out);
    }

    fn redraw(&self, inner: &mut Inner) {
        let mut out = String::new();
        clear(&mut out, inner);
        self.draw_live(&mut out, inner);
        write_err(&out);
    }

    /// The running steps: a status line with the running time each, and
    /// the tail of its output, within the terminal's height.
    fn draw_live(&self, out: &mut String, inner: &mut Inner) {
        let steps: Vec<LiveStep<'_>> = inner
            .running
            .iter()
            .map(|(&step, r)| LiveStep {
                step,
                total: r.total,
                stage: &r.stage,
                text: &r.text,
                elapsed: r.started.elapsed(),
                tail: r.tail.iter().map(String::as_str).collect(),
            })
            .collect();
        let lines = live_lines(&steps, self.width.saturating_sub(1), self.height);
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        inner.drawn = lines.len();
    }
}

/// A running step as the tty display's live area shows it.
#[derive(Debug, Clone)]
pub struct LiveStep<'a> {
    /// Step number.
    pub step: usize,
    /// Steps in the build.
    pub total: usize,
    /// Its stage's name.
    pub stage: &'a str,
    /// The instruction.
    pub text: &'a str,
    /// How long it has been running.
    pub elapsed: Duration,
    /// Its last output lines, oldest first.
    pub tail: Vec<&'a str>,
}

/// The live area's lines for `steps`, each at most `width` characters,
/// fewer than `height` in all: a status line with the running time per
/// step, under it the last lines of its output (at most [`TAIL_LINES`],
/// fewer when many steps run); steps that do not fit are counted in a
/// last line.
pub fn live_lines(steps: &[LiveStep<'_>], width: usize, height: usize) -> Vec<String> {
    let room = height.saturating_sub(2).max(1);
    let (shown, hidden) = if steps.len() > room {
        (&steps[..room.saturating_sub(1)], steps.len() + 1 - room)
    } else {
        (steps, 0)
    };
    let per_step = if shown.is_empty() {
        0
    } else {
        room / shown.len()
    };
    let tail = per_step.saturating_sub(1).min(TAIL_LINES);
    let mut lines = Vec::new();
    for s in shown {
        lines.push(render_status(
            s.step,
            s.total,
            s.stage,
            s.text,
            StepState::Running,
            s.elapsed,
            width,
        ));
        let skip = s.tail.len().saturating_sub(tail);
        lines.extend(s.tail.iter().skip(skip).map(|l| tail_line(l, width)));
    }
    if hidden > 0 {
        let more = format!("... and {hidden} more running");
        lines.push(more.chars().take(width).collect());
    }
    lines
}

/// Erases the live area (the cursor is at the start of the line below it).
fn clear(out: &mut String, inner: &mut Inner) {
    if inner.drawn > 0 {
        out.push_str(&format!("\x1b[{}A\x1b[J", inner.drawn));
        inner.drawn = 0;
    }
}

fn write_err(s: &str) {
    if s.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.flush();
}

/// An output line as the tty display shows it: what a carriage return
/// would leave visible, without control characters (tabs become spaces).
pub fn tail_text(line: &str) -> String {
    let line = line.trim_end_matches('\r');
    let shown = line.rsplit('\r').next().unwrap_or_default();
    shown
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// A tail line indented under its step's status, cut to `width`.
pub fn tail_line(text: &str, width: usize) -> String {
    let prefix = "  > ";
    let room = width.saturating_sub(prefix.len());
    let shown: String = text.chars().take(room).collect();
    format!("{prefix}{shown}")
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

fn terminal_size() -> Option<(usize, usize)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize we pass; the result is checked.
    let r = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some((usize::from(ws.ws_col), usize::from(ws.ws_row.max(4))))
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
    fn tail_lines_show_what_a_terminal_would() {
        assert_eq!(tail_text("50%\r100%\r"), "100%");
        assert_eq!(tail_text("a\tb\x1b[31mred"), "a b[31mred");
        assert_eq!(tail_line("abcdef", 8), "  > abcd");
        assert_eq!(tail_line("é".repeat(10).as_str(), 6), "  > éé");
    }

    #[test]
    fn live_area_has_timers_and_tails_within_the_terminal() {
        let tail: Vec<String> = (1..=9).map(|i| format!("line {i}")).collect();
        let step = |n: usize, secs: u64| LiveStep {
            step: n,
            total: 9,
            stage: "s",
            text: "RUN make",
            elapsed: ms(secs * 1000),
            tail: tail.iter().map(String::as_str).collect(),
        };
        // Room for everything: each status line, then the last 6 lines.
        let lines = live_lines(&[step(2, 1), step(5, 3)], 40, 40);
        assert_eq!(lines.len(), 2 * (1 + TAIL_LINES), "{lines:?}");
        assert_eq!(lines[0], "#2 [s 2/9] RUN make 1.0s");
        assert_eq!(lines[1], "  > line 4");
        assert_eq!(lines[6], "  > line 9");
        assert_eq!(lines[7], "#5 [s 5/9] RUN make 3.0s");
        // A short terminal: fewer tail lines per step.
        let lines = live_lines(&[step(2, 1), step(5, 3)], 40, 8);
        assert_eq!(lines.len(), 6, "{lines:?}");
        assert_eq!(lines[1], "  > line 8");
        assert_eq!(lines[3], "#5 [s 5/9] RUN make 3.0s");
        // More steps than lines: the rest are counted.
        let many: Vec<LiveStep<'_>> = (1..=10).map(|n| step(n, 0)).collect();
        let lines = live_lines(&many, 40, 6);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[3], "... and 7 more running");
        assert!(lines.iter().all(|l| l.chars().count() <= 40));
        assert!(live_lines(&[], 40, 24).is_empty());
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
