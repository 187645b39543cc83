//! Reading stdin as lines without blocking the write loop: a reader thread
//! moves raw chunks, this side splits lines, caps their length, notices idle
//! input and SIGTERM/SIGINT/SIGHUP.

use crate::signals::Cancel;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Bytes read from stdin at a time.
const CHUNK_BYTES: usize = 256 * 1024;
/// Chunks that may wait between the reader thread and the loop.
const CHUNKS_IN_FLIGHT: usize = 8;
/// How often a wait for input looks at the signal flag.
const SIGNAL_POLL: Duration = Duration::from_millis(50);
/// Bytes of a refused line kept to say what it was.
pub const REFUSED_PREFIX: usize = 256;
/// Lines returned between two looks at the clock while lines keep coming:
/// often enough for a timely flush, rarely enough to cost nothing per line.
const CLOCK_EVERY: u32 = 64;

/// What the next read gave.
#[derive(Debug)]
pub enum Event<'a> {
    /// One line, without its newline (and without a trailing `\r`), and
    /// when the read that completed it returned.
    Line(&'a [u8], SystemTime),
    /// The current line passed the length limit; the rest of it is
    /// skipped. Its first bytes (at most `REFUSED_PREFIX`) tell what it was.
    TooLong(&'a [u8]),
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
    /// Bytes read, and when the read returned.
    Data(Vec<u8>, SystemTime),
    Eof,
    Failed(String),
    /// Something else the reader's owner waits for happened (a delivery finished).
    Wake,
}

/// How input is cut into lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// The byte that ends a line (`\n`, whose `\r\n` form is also taken).
    pub delimiter: u8,
    /// Longest line accepted; a longer one is refused without being held.
    pub max_line: usize,
    /// Whether a UTF-8 byte order mark before the first line is dropped
    /// (text formats; never for data passed through as it is).
    pub skip_bom: bool,
}

/// The UTF-8 byte order mark some Windows tools write before text.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Wakes a `LineReader` that waits for input, from another thread.
#[derive(Clone)]
pub struct Waker(SyncSender<Chunk>);

impl Waker {
    /// Makes the reader's current or next wait return `Idle` at once.
    pub fn wake(&self) {
        // A full channel holds input, which ends the wait anyway.
        let _ = self.0.try_send(Chunk::Wake);
    }
}

/// Lines from a byte stream read on a separate thread.
pub struct LineReader {
    chunks: Receiver<Chunk>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    /// When the read that gave `current` returned: the time its lines were
    /// received, read once per chunk rather than per line.
    read_at: SystemTime,
    pos: usize,
    framing: Framing,
    wake: SyncSender<Chunk>,
    carry: Vec<u8>,
    carry_is_line: bool,
    /// The start of the line last refused as too long.
    refused: Vec<u8>,
    skipping: bool,
    eof: bool,
    line_number: u64,
    /// Lines returned since the clock was last read.
    lines_unclocked: u32,
    cancel: Arc<Cancel>,
}

impl LineReader {
    /// Starts reading `source` on its own thread, cut into lines as `framing` says.
    pub fn spawn(
        mut source: impl Read + Send + 'static,
        framing: Framing,
        cancel: Arc<Cancel>,
    ) -> LineReader {
        let (tx, chunks) = sync_channel(CHUNKS_IN_FLIGHT);
        let wake = tx.clone();
        let (recycle, reuse) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
        let mut head = framing.skip_bom.then(Vec::new);
        std::thread::spawn(move || loop {
            let mut buf = reuse.try_recv().unwrap_or_default();
            buf.resize(CHUNK_BYTES, 0);
            match source.read(&mut buf) {
                Ok(0) => {
                    // Input shorter than a BOM is passed on as it is.
                    if let Some(short) = head.take().filter(|h| !h.is_empty()) {
                        let _ = tx.send(Chunk::Data(short, SystemTime::now()));
                    }
                    let _ = tx.send(Chunk::Eof);
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    if let Some(mut start) = head.take() {
                        start.extend_from_slice(&buf);
                        // The mark may arrive split over reads: wait for three bytes.
                        if start.len() < BOM.len() && BOM.starts_with(&start) {
                            head = Some(start);
                            continue;
                        }
                        if start.starts_with(BOM) {
                            start.drain(..BOM.len());
                        }
                        buf = start;
                    }
                    if tx.send(Chunk::Data(buf, SystemTime::now())).is_err() {
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
            read_at: SystemTime::UNIX_EPOCH,
            pos: 0,
            framing,
            wake,
            carry: Vec::new(),
            carry_is_line: false,
            refused: Vec::new(),
            skipping: false,
            eof: false,
            line_number: 0,
            lines_unclocked: 0,
            cancel,
        }
    }

    /// A handle that ends a wait for input from another thread.
    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }

    /// Whether any line (or part of one) was read.
    pub fn read_anything(&self) -> bool {
        self.line_number > 0 || !self.carry.is_empty()
    }

    /// The number of the line last returned (1-based).
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// The next line or event; `Idle` once `due` has passed, also while
    /// lines keep coming (checked every `CLOCK_EVERY` lines), so that a
    /// steady stream of lines does not put off what is due, and after
    /// `idle` of waiting for input. The clock is read only to check `due` or
    /// to wait: most lines need neither.
    pub fn next_event(&mut self, due: Option<Instant>, idle: Duration) -> Event<'_> {
        if self.carry_is_line {
            self.carry.clear();
            self.carry_is_line = false;
        }
        if self.lines_unclocked >= CLOCK_EVERY {
            self.lines_unclocked = 0;
            if due.is_some_and(|due| Instant::now() >= due) {
                return Event::Idle;
            }
        }
        // Set when the first wait begins: most lines need no wait.
        let mut deadline: Option<Instant> = None;
        loop {
            if let Some(name) = self.cancel.signal() {
                return Event::Cancelled(name);
            }
            let delimiter = self.framing.delimiter;
            match self.scan() {
                Scan::Line(start, end) => {
                    return Event::Line(trim_cr(&self.current[start..end], delimiter), self.read_at)
                }
                Scan::CarryLine => {
                    return Event::Line(trim_cr(&self.carry, delimiter), self.read_at)
                }
                Scan::TooLong => return Event::TooLong(&self.refused),
                Scan::NeedMore => {}
            }
            if self.eof {
                if !self.carry.is_empty() && !self.skipping {
                    // A last line without a newline.
                    self.line_number += 1;
                    self.carry_is_line = true;
                    return Event::Line(trim_cr(&self.carry, delimiter), self.read_at);
                }
                return Event::Eof;
            }
            if let Some(event) = self.wait_for_chunk(due, idle, &mut deadline) {
                return event;
            }
        }
    }

    /// Looks for the next line in what was read: its place in the current
    /// chunk, or in `carry` when it began in an earlier one. Positions rather
    /// than the line itself, so that the caller can go on reading when there
    /// is none.
    fn scan(&mut self) -> Scan {
        while self.pos < self.current.len() {
            let rest = &self.current[self.pos..];
            let Some(i) = memchr::memchr(self.framing.delimiter, rest) else {
                if !self.skipping {
                    if self.carry.len() + rest.len() > self.framing.max_line {
                        // Refuse now, without holding the whole line.
                        let head = if self.carry.is_empty() {
                            rest
                        } else {
                            &self.carry
                        };
                        keep_prefix(&mut self.refused, head);
                        self.carry.clear();
                        self.skipping = true;
                        self.pos = self.current.len();
                        self.line_number += 1;
                        return Scan::TooLong;
                    }
                    self.carry.extend_from_slice(rest);
                }
                self.pos = self.current.len();
                break;
            };
            let (start, end) = (self.pos, self.pos + i);
            self.pos = end + 1;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            self.line_number += 1;
            self.lines_unclocked += 1;
            if self.carry.is_empty() {
                if end - start > self.framing.max_line {
                    keep_prefix(&mut self.refused, &self.current[start..end]);
                    return Scan::TooLong;
                }
                return Scan::Line(start, end);
            }
            if self.carry.len() + (end - start) > self.framing.max_line {
                keep_prefix(&mut self.refused, &self.carry);
                self.carry.clear();
                return Scan::TooLong;
            }
            self.carry.extend_from_slice(&self.current[start..end]);
            self.carry_is_line = true;
            return Scan::CarryLine;
        }
        Scan::NeedMore
    }

    /// Waits for the next chunk until `deadline` (set on the first wait:
    /// `due` or `idle` from now, whichever is sooner); an event when the wait
    /// ends in one rather than in data.
    fn wait_for_chunk(
        &mut self,
        due: Option<Instant>,
        idle: Duration,
        deadline: &mut Option<Instant>,
    ) -> Option<Event<'static>> {
        let now = Instant::now();
        let deadline =
            *deadline.get_or_insert_with(|| due.map_or(now + idle, |due| due.min(now + idle)));
        if now >= deadline {
            return Some(Event::Idle);
        }
        match self.chunks.recv_timeout((deadline - now).min(SIGNAL_POLL)) {
            Ok(Chunk::Data(buf, read_at)) => {
                self.read_at = read_at;
                let old = std::mem::replace(&mut self.current, buf);
                let _ = self.recycle.try_send(old);
                self.pos = 0;
            }
            Ok(Chunk::Eof) | Err(RecvTimeoutError::Disconnected) => self.eof = true,
            Ok(Chunk::Failed(e)) => return Some(Event::Failed(e)),
            Ok(Chunk::Wake) => return Some(Event::Idle),
            Err(RecvTimeoutError::Timeout) => {}
        }
        None
    }
}

/// Where `LineReader::scan` found the next line.
enum Scan {
    /// In the current chunk, at these positions.
    Line(usize, usize),
    /// In `carry`: it began in an earlier chunk.
    CarryLine,
    /// Too long: its first bytes are in `refused`.
    TooLong,
    /// No whole line in what was read.
    NeedMore,
}

/// Keeps the first bytes of a refused line.
fn keep_prefix(into: &mut Vec<u8>, line: &[u8]) {
    into.clear();
    into.extend_from_slice(&line[..line.len().min(REFUSED_PREFIX)]);
}

/// The line without the `\r` of a `\r\n` ending, when lines end with `\n`.
fn trim_cr(line: &[u8], delimiter: u8) -> &[u8] {
    if delimiter == b'\n' {
        line.strip_suffix(b"\r").unwrap_or(line)
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits of a test: none due, up to a minute for input.
    const IDLE: Duration = Duration::from_secs(60);

    fn in_secs(secs: u64) -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(secs))
    }

    fn lines(max_line: usize) -> Framing {
        Framing {
            delimiter: b'\n',
            max_line,
            skip_bom: true,
        }
    }

    /// Reads everything from `input` and names each event.
    fn events(input: &'static [u8], max_line: usize) -> Vec<String> {
        events_framed(input, lines(max_line))
    }

    fn events_framed(input: impl Read + Send + 'static, framing: Framing) -> Vec<String> {
        let mut r = LineReader::spawn(input, framing, Arc::new(Cancel::default()));
        let mut out = Vec::new();
        loop {
            match r.next_event(in_secs(5), IDLE) {
                Event::Line(l, _) => out.push(format!("line {}", String::from_utf8_lossy(l))),
                Event::TooLong(head) => out.push(format!(
                    "too long {}",
                    String::from_utf8_lossy(&head[..head.len().min(4)])
                )),
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
            ["line ok", "too long xxxx", "line fine"]
        );
    }

    #[test]
    fn long_lines_across_chunks() {
        let mut big = vec![b'y'; CHUNK_BYTES * 3];
        big.push(b'\n');
        big.extend_from_slice(b"after\n");
        let leaked: &'static [u8] = Box::leak(big.into_boxed_slice());
        assert_eq!(events(leaked, CHUNK_BYTES * 4)[1], "line after");
        assert_eq!(events(leaked, 1000), ["too long yyyy", "line after"]);
    }

    #[test]
    fn idle_once_due_even_while_lines_keep_coming() {
        let input: &'static [u8] = Box::leak("x\n".repeat(1000).into_boxed_str()).as_bytes();
        let mut r = LineReader::spawn(input, lines(100), Arc::new(Cancel::default()));
        // The first line waits for the reader thread; the rest are at hand.
        assert!(matches!(
            r.next_event(in_secs(5), IDLE),
            Event::Line(b"x", _)
        ));
        let past = Instant::now();
        let mut lines = 1;
        while matches!(r.next_event(Some(past), IDLE), Event::Line(..)) {
            lines += 1;
        }
        assert_eq!(lines, CLOCK_EVERY);
        // The line that was due next is not lost.
        assert!(matches!(
            r.next_event(in_secs(5), IDLE),
            Event::Line(b"x", _)
        ));
        assert_eq!(r.line_number(), u64::from(CLOCK_EVERY) + 1);
    }

    #[test]
    fn idle_when_no_input() {
        let (r, mut w) = std::io::pipe().unwrap();
        let mut lines = LineReader::spawn(r, lines(100), Arc::new(Cancel::default()));
        assert!(matches!(
            lines.next_event(None, Duration::from_millis(30)),
            Event::Idle
        ));
        std::io::Write::write_all(&mut w, b"x\n").unwrap();
        assert!(matches!(
            lines.next_event(in_secs(5), IDLE),
            Event::Line(b"x", _)
        ));
        drop(w);
        assert!(matches!(lines.next_event(in_secs(5), IDLE), Event::Eof));
    }

    #[test]
    fn drops_a_leading_bom_only_when_asked() {
        assert_eq!(events(b"\xEF\xBB\xBFa\nb\n", 100), ["line a", "line b"]);
        assert_eq!(events(b"a\n\xEF\xBB\xBFb\n", 100)[1], "line \u{feff}b");
        assert_eq!(events(b"\xEF\xBB", 100), ["line \u{fffd}"]);
        let raw = Framing {
            skip_bom: false,
            ..lines(100)
        };
        assert_eq!(
            events_framed(&b"\xEF\xBB\xBFa\n"[..], raw),
            ["line \u{feff}a"]
        );
        // A mark that arrives one byte at a time is still found.
        struct Trickle(&'static [u8]);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        assert_eq!(
            events_framed(Trickle(b"\xEF\xBB\xBFok\n"), lines(100)),
            ["line ok"]
        );
    }

    #[test]
    fn other_delimiters() {
        let nul = Framing {
            delimiter: 0,
            skip_bom: false,
            max_line: 100,
        };
        assert_eq!(
            events_framed(&b"a\r\nb\0c\0"[..], nul),
            ["line a\r\nb", "line c"]
        );
    }

    #[test]
    fn a_waker_ends_the_wait() {
        let (r, _w) = std::io::pipe().unwrap();
        let mut lines = LineReader::spawn(r, lines(100), Arc::new(Cancel::default()));
        let waker = lines.waker();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            waker.wake();
        });
        let started = Instant::now();
        assert!(matches!(lines.next_event(in_secs(30), IDLE), Event::Idle));
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(!lines.read_anything());
    }
}
