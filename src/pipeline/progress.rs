//! A status line on a terminal's stderr, redrawn in place at most twice a
//! second, and the summary that replaces it at the end.

use crate::failure::Failure;
use std::io::Write;
use std::time::{Duration, Instant};

/// How often the status line is redrawn.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Terminal control: back to the line's start and clear it.
const CLEAR: &str = "\r\x1b[K";

/// The status line of one command; silent unless stderr is a terminal.
#[derive(Debug)]
pub struct StatusLine {
    enabled: bool,
    last: Option<Instant>,
}

impl StatusLine {
    /// A status line, drawn only when `enabled` (stderr is a terminal).
    pub fn new(enabled: bool) -> StatusLine {
        StatusLine {
            enabled,
            last: None,
        }
    }

    /// Whether the line is drawn at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether it is time to redraw.
    pub fn due(&self) -> bool {
        self.enabled && self.last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY)
    }

    /// Draws `text` in place of the previous line.
    pub fn draw(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{CLEAR}destination-kinesis: {text}");
        let _ = err.flush();
    }

    /// Ends the command's status line with `summary` (when there is one): on
    /// success the summary replaces it; on failure it is cleared and the summary
    /// goes with the failure, to be told after its cause.
    pub fn end<T>(
        &self,
        result: Result<T, Failure>,
        summary: Option<String>,
    ) -> Result<T, Failure> {
        match (result, summary) {
            (Ok(done), Some(summary)) => {
                self.finish(&summary);
                Ok(done)
            }
            (Err(failure), Some(summary)) => {
                if self.enabled {
                    eprint!("{CLEAR}");
                }
                Err(failure.with_done(summary))
            }
            (result, None) => result,
        }
    }

    /// Prints the summary as a line of its own, replacing the status line.
    pub fn finish(&self, summary: &str) {
        let clear = if self.enabled { CLEAR } else { "" };
        eprintln!("{clear}destination-kinesis: {summary}");
    }
}
