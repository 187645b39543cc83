//! Reading stdin as lines without blocking the write loop: a reader thread
//! moves raw chunks, this side splits lines, caps their length, notices idle
//! input and SIGTERM/SIGINT/SIGHUP.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Bytes read from stdin at a time.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks that may wait between the reader thread and the loop.
const CHUNKS_IN_FLIGHT: usize = 8;
/// How often a wait for input looks at the signal flag.
const SIGNAL_POLL: Duration = Duration::from_millis(50);
/// Lines returned between two looks at the clock while lines keep coming:
/// often enough for a timely flush, rarely enough to cost nothing per line.
const CLOCK_EVERY: u32 = 64;

/// What the next read gave.
#[derive(Debug)]
pub enum Event<'a> {
    /// One line, without its newline (and without a trailing `\r`).
    Line(&'a [u8]),
    /// The current line passed the length limit; the rest of it is skipped.
    TooLong,
    /// No new line for the idle time given.
    Idle,
    /// The end of input.
    Eof,
    /// A termination signal arrived (its name).
    Cancelled(&'static str),
    /// Reading failed.
    Failed(String),
}

enum Chunk {
    Data(Vec<u8>),
    Eof,
    Failed(String),
}

/// Cancellation by SIGTERM, SIGINT or SIGHUP, shared with whoever must stop early.
#[derive(Debug, Default)]
pub struct Cancel {
    signal: Arc<AtomicUsize>,
    seen_at: OnceLock<Instant>,
}

impl Cancel {
    /// Installs handlers for SIGTERM, SIGINT and SIGHUP that set this flag.
    /// SIGHUP (a closed terminal, a supervisor stopping its children) would
    /// otherwise end the process at once. SIGQUIT keeps its default action (stop
    /// at once, with a core dump where enabled): it is the signal for debugging,
    /// and nothing unsent is ever echoed as safe, so no checkpoint is wrong.
    pub fn install() -> Arc<Cancel> {
        let cancel = Arc::new(Cancel::default());
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            // Without the handler the default action (exit) stands: no data is
            // echoed as safe that was not, so failing to install is not fatal.
            let _ =
                signal_hook::flag::register_usize(sig, Arc::clone(&cancel.signal), sig as usize);
        }
        cancel
    }

    /// The signal's name once one arrived.
    pub fn signal(&self) -> Option<&'static str> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            s if s == signal_hook::consts::SIGINT as usize => Some("SIGINT"),
            s if s == signal_hook::consts::SIGHUP as usize => Some("SIGHUP"),
            _ => Some("SIGTERM"),
        }
    }

    /// When the signal was first noticed, if it arrived.
    pub fn since(&self) -> Option<Instant> {
        self.signal()?;
        Some(*self.seen_at.get_or_init(Instant::now))
    }
}

/// Lines from a byte stream read on a separate thread.
pub struct LineReader {
    chunks: Receiver<Chunk>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    carry: Vec<u8>,
    carry_is_line: bool,
    skipping: bool,
    eof: bool,
    max_line: usize,
    line_number: u64,
    /// Lines returned since the clock was last read.
    lines_unclocked: u32,
    cancel: Arc<Cancel>,
}

impl LineReader {
    /// Starts reading `source` on its own thread; lines over `max_line` bytes are refused.
    pub fn spawn(
        mut source: impl Read + Send + 'static,
        max_line: usize,
        cancel: Arc<Cancel>,
    ) -> LineReader {
        let (tx, chunks) = sync_channel(CHUNKS_IN_FLIGHT);
        let (recycle, reuse) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
        std::thread::spawn(move || loop {
            let mut buf = reuse.try_recv().unwrap_or_default();
            buf.resize(CHUNK_BYTES, 0);
            match source.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send(Chunk::Eof);
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Chunk::Data(buf)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Chunk::Failed(e.to_string()));
                    return;
                }
            }
        });
        LineReader {
            chunks,
            recycle,
            current: Vec::new(),
            pos: 0,
            carry: Vec::new(),
            carry_is_line: false,
            skipping: false,
            eof: false,
            max_line,
            line_number: 0,
            lines_unclocked: 0,
            cancel,
        }
    }

    /// The number of the line last returned (1-based).
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// The next line or event; `Idle` once `deadline` has passed, also while
    /// lines keep coming (checked every `CLOCK_EVERY` lines), so that a
    /// steady stream of lines does not put off what is due.
    pub fn next_event(&mut self, deadline: Instant) -> Event<'_> {
        if self.carry_is_line {
            self.carry.clear();
            self.carry_is_line = false;
        }
        if self.lines_unclocked >= CLOCK_EVERY {
            self.lines_unclocked = 0;
            if Instant::now() >= deadline {
                return Event::Idle;
            }
        }
        loop {
            if let Some(name) = self.cancel.signal() {
                return Event::Cancelled(name);
            }
            if self.pos < self.current.len() {
                let rest = &self.current[self.pos..];
                match memchr::memchr(b'\n', rest) {
                    Some(i) => {
                        let (start, end) = (self.pos, self.pos + i);
                        self.pos = end + 1;
                        if self.skipping {
                            self.skipping = false;
                            continue;
                        }
                        self.line_number += 1;
                        self.lines_unclocked += 1;
                        if self.carry.is_empty() {
                            if end - start > self.max_line {
                                return Event::TooLong;
                            }
                            return Event::Line(trim_cr(&self.current[start..end]));
                        }
                        if self.carry.len() + (end - start) > self.max_line {
                            self.carry.clear();
                            return Event::TooLong;
                        }
                        self.carry.extend_from_slice(&self.current[start..end]);
                        self.carry_is_line = true;
                        return Event::Line(trim_cr(&self.carry));
                    }
                    None => {
                        if !self.skipping {
                            if self.carry.len() + rest.len() > self.max_line {
                                // Refuse now, without holding the whole line.
                                self.carry.clear();
                                self.skipping = true;
                                self.pos = self.current.len();
                                self.line_number += 1;
                                return Event::TooLong;
                            }
                            self.carry.extend_from_slice(rest);
                        }
                        self.pos = self.current.len();
                    }
                }
            }
            if self.eof {
                if !self.carry.is_empty() && !self.skipping {
                    // A last line without a newline.
                    self.line_number += 1;
                    self.carry_is_line = true;
                    return Event::Line(trim_cr(&self.carry));
                }
                return Event::Eof;
            }
            // The clock is read only once a wait begins: most lines need no wait.
            let now = Instant::now();
            if now >= deadline {
                return Event::Idle;
            }
            match self.chunks.recv_timeout((deadline - now).min(SIGNAL_POLL)) {
                Ok(Chunk::Data(buf)) => {
                    let old = std::mem::replace(&mut self.current, buf);
                    let _ = self.recycle.try_send(old);
                    self.pos = 0;
                }
                Ok(Chunk::Eof) | Err(RecvTimeoutError::Disconnected) => self.eof = true,
                Ok(Chunk::Failed(e)) => return Event::Failed(e),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_secs(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    /// Reads everything from `input` and names each event.
    fn events(input: &'static [u8], max_line: usize) -> Vec<String> {
        let mut r = LineReader::spawn(input, max_line, Arc::new(Cancel::default()));
        let mut out = Vec::new();
        loop {
            match r.next_event(in_secs(5)) {
                Event::Line(l) => out.push(format!("line {}", String::from_utf8_lossy(l))),
                Event::TooLong => out.push("too long".into()),
                Event::Eof => return out,
                other => out.push(format!("{other:?}")),
            }
        }
    }

    #[test]
    fn splits_lines() {
        assert_eq!(
            events(b"a\nbb\r\n\nlast", 100),
            ["line a", "line bb", "line ", "line last"]
        );
        assert!(events(b"", 100).is_empty());
    }

    #[test]
    fn refuses_long_lines_and_goes_on() {
        assert_eq!(
            events(b"ok\nxxxxxxxxxxxxxxxx\nfine\n", 8),
            ["line ok", "too long", "line fine"]
        );
    }

    #[test]
    fn long_lines_across_chunks() {
        let mut big = vec![b'y'; CHUNK_BYTES * 3];
        big.push(b'\n');
        big.extend_from_slice(b"after\n");
        let leaked: &'static [u8] = Box::leak(big.into_boxed_slice());
        assert_eq!(events(leaked, CHUNK_BYTES * 4)[1], "line after");
        assert_eq!(events(leaked, 1000), ["too long", "line after"]);
    }

    #[test]
    fn idle_once_due_even_while_lines_keep_coming() {
        let input: &'static [u8] = Box::leak("x\n".repeat(1000).into_boxed_str()).as_bytes();
        let mut r = LineReader::spawn(input, 100, Arc::new(Cancel::default()));
        // The first line waits for the reader thread; the rest are at hand.
        assert!(matches!(r.next_event(in_secs(5)), Event::Line(b"x")));
        let past = Instant::now();
        let mut lines = 1;
        while matches!(r.next_event(past), Event::Line(_)) {
            lines += 1;
        }
        assert_eq!(lines, CLOCK_EVERY);
        // The line that was due next is not lost.
        assert!(matches!(r.next_event(in_secs(5)), Event::Line(b"x")));
        assert_eq!(r.line_number(), u64::from(CLOCK_EVERY) + 1);
    }

    #[test]
    fn idle_when_no_input() {
        let (r, mut w) = std::io::pipe().unwrap();
        let mut lines = LineReader::spawn(r, 100, Arc::new(Cancel::default()));
        assert!(matches!(
            lines.next_event(Instant::now() + Duration::from_millis(30)),
            Event::Idle
        ));
        std::io::Write::write_all(&mut w, b"x\n").unwrap();
        assert!(matches!(lines.next_event(in_secs(5)), Event::Line(b"x")));
        drop(w);
        assert!(matches!(lines.next_event(in_secs(5)), Event::Eof));
    }
}
