//! Airbyte input for the benchmark, generated while it is written so that
//! no run holds its input in memory: N records of S bytes of data over K
//! streams, a STREAM state every M records; optionally a `customer` field
//! holding one of C distinct values, for partition keys taken from the data;
//! optionally paced (R records a second) with each record's write time in it.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Digits of the record number patched into each record.
const ID_DIGITS: usize = 12;

/// Digits of the customer patched into each record (when `keys` > 0).
const KEY_DIGITS: usize = 8;

/// Digits of the write time patched into each record (when `stamped`):
/// nanoseconds, enough for 11 days.
const AT_DIGITS: usize = 15;

/// The field holding a record's write time, in nanoseconds from `stamped`.
pub const AT_FIELD: &str = "at";

/// The field holding a record's number (0 to N - 1).
pub const ID_FIELD: &str = "id";

/// The shape of one input.
#[derive(Debug, Clone, Copy, Default)]
pub struct Feed {
    /// Records in all.
    pub records: u64,
    /// Bytes of each record's `data` JSON text.
    pub size: usize,
    /// Streams the records rotate over (`bench_0`, `bench_1`, …).
    pub streams: usize,
    /// Records of a stream in a row before the next stream's (0 or 1: each
    /// record goes to the next stream).
    pub in_a_row: u64,
    /// A state after every this many records (0: none).
    pub state_every: u64,
    /// Distinct values of `data.customer` (0: no such field). Each record's is
    /// drawn pseudo-randomly (the same for every run), not in rotation: real
    /// keys repeat at irregular distances, and with a fixed rotation a batch
    /// would hold exactly min(keys, bufferSize) distinct keys, which flatters
    /// `keepKeyOrder`.
    pub keys: u64,
    /// Percent of records whose customer is the one hot key, `00000000`
    /// (with `keys` > 0); the others draw from all `keys`.
    pub hot_percent: u64,
    /// Records a second written (0: as fast as they are read): record i is
    /// due i / rate after the start (`stamped`, if set). Records due are
    /// written when due; when the reader falls behind, they wait here, not
    /// in the pipe.
    pub rate: u64,
    /// When set, each record's `at` field is the time it was generated, just
    /// before it is written, in nanoseconds from this instant.
    pub stamped: Option<Instant>,
}

/// A RECORD line of one stream with fixed-width id, customer and time slots to patch.
struct Template {
    line: Vec<u8>,
    id_at: usize,
    key_at: Option<usize>,
    at_at: Option<usize>,
}

impl Feed {
    /// The catalog stream names.
    pub fn stream_names(&self) -> Vec<String> {
        (0..self.streams).map(|k| format!("bench_{k}")).collect()
    }

    /// States the input carries, which the destination must echo.
    pub fn states(&self) -> u64 {
        match self.state_every {
            0 => 0,
            m => self.records / m,
        }
    }

    /// Record `i`'s customer (below `keys`; 0 when there are none).
    pub fn key_of(&self, i: u64) -> u64 {
        if self.keys == 0 {
            return 0;
        }
        if self.hot_percent > 0 && splitmix64(!i) % 100 < self.hot_percent {
            return 0;
        }
        // Cheap, well spread, and reproducible, so the benchmark can predict
        // the batches it causes.
        splitmix64(i) % self.keys
    }

    /// Record `i`'s stream (an index into `stream_names`).
    pub fn stream_of(&self, i: u64) -> usize {
        (i / self.in_a_row.max(1) % self.streams as u64) as usize
    }

    /// Writes the whole input to `out`; returns the bytes written.
    pub fn write_to(&self, mut out: impl Write) -> io::Result<u64> {
        let templates: Vec<Template> = self
            .stream_names()
            .iter()
            .map(|name| self.template(name))
            .collect();
        // Paced input goes out in small writes, so that a record's time is
        // close to when the reader can have it.
        let chunk = if self.rate > 0 { 4096 } else { 256 * 1024 };
        let mut buf: Vec<u8> = Vec::with_capacity(chunk + 2 * self.size + 512);
        let mut total = 0u64;
        let mut states = 0u64;
        // A stamped feed's schedule starts at its epoch, so that record i
        // is due i / rate after it, as whoever reads the stamps counts time.
        let started = self.stamped.unwrap_or_else(Instant::now);
        for i in 0..self.records {
            if let Some(offset) = (i * 1_000_000_000).checked_div(self.rate) {
                let due = started + Duration::from_nanos(offset);
                let now = Instant::now();
                if due > now + Duration::from_millis(1) {
                    out.write_all(&buf)?;
                    total += buf.len() as u64;
                    buf.clear();
                    out.flush()?;
                    std::thread::sleep(due - now);
                }
            }
            let t = &templates[self.stream_of(i)];
            let start = buf.len();
            buf.extend_from_slice(&t.line);
            put_digits(&mut buf[start + t.id_at..start + t.id_at + ID_DIGITS], i);
            if let Some(at) = t.key_at {
                put_digits(
                    &mut buf[start + at..start + at + KEY_DIGITS],
                    self.key_of(i),
                );
            }
            if let (Some(at), Some(epoch)) = (t.at_at, self.stamped) {
                put_digits(
                    &mut buf[start + at..start + at + AT_DIGITS],
                    epoch.elapsed().as_nanos() as u64,
                );
            }
            if self.state_every > 0 && (i + 1) % self.state_every == 0 {
                let stream = states % self.streams as u64;
                states += 1;
                writeln!(
                    buf,
                    "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"bench_{stream}\"}},\"stream_state\":{{\"cursor\":{i}}}}}}}}}"
                )?;
            }
            if buf.len() >= chunk {
                out.write_all(&buf)?;
                total += buf.len() as u64;
                buf.clear();
            }
        }
        out.write_all(&buf)?;
        total += buf.len() as u64;
        out.flush()?;
        Ok(total)
    }

    /// `{"id":"000000000000","pad":"abc…"}` padded to `size` bytes, with
    /// `"customer":"00000000"` after the id when the feed has keys and
    /// `"at":"000000000000000"` after those when it is stamped.
    fn template(&self, stream: &str) -> Template {
        assert!(
            self.keys <= 10u64.pow(KEY_DIGITS as u32),
            "the feed's customer slot has {KEY_DIGITS} digits: at most 10^{KEY_DIGITS} distinct keys, not {}",
            self.keys
        );
        let head = format!(
            "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"{stream}\",\"data\":{{\"id\":\""
        );
        let id_at = head.len();
        let customer_head = "\",\"customer\":\"";
        let at_head = format!("\",\"{AT_FIELD}\":\"");
        let key_at = (self.keys > 0).then(|| id_at + ID_DIGITS + customer_head.len());
        let mut fixed = "{\"id\":\"\",\"pad\":\"\"}".len() + ID_DIGITS;
        if key_at.is_some() {
            fixed += customer_head.len() + KEY_DIGITS;
        }
        let key_end = key_at.map_or(id_at + ID_DIGITS, |at| at + KEY_DIGITS);
        let at_at = self.stamped.map(|_| key_end + at_head.len());
        if at_at.is_some() {
            fixed += at_head.len() + AT_DIGITS;
        }
        let pad: String = (0..self.size.saturating_sub(fixed))
            .map(|i| match i % 16 {
                7 => ' ',
                n => (b'a' + n as u8) as char,
            })
            .collect();
        let mut line = head.into_bytes();
        line.extend_from_slice(&[b'0'; ID_DIGITS]);
        if key_at.is_some() {
            line.extend_from_slice(customer_head.as_bytes());
            line.extend_from_slice(&[b'0'; KEY_DIGITS]);
        }
        if at_at.is_some() {
            line.extend_from_slice(at_head.as_bytes());
            line.extend_from_slice(&[b'0'; AT_DIGITS]);
        }
        line.extend_from_slice(
            format!("\",\"pad\":\"{pad}\"}},\"emitted_at\":1700000000000}}}}\n").as_bytes(),
        );
        Template {
            line,
            id_at,
            key_at,
            at_at,
        }
    }
}

/// splitmix64: a well-spread, reproducible hash of `i`.
fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes `n` as zero-padded decimal filling `slot`.
fn put_digits(slot: &mut [u8], mut n: u64) {
    for d in slot.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}
