//! Airbyte input for the benchmark, generated while it is written so that
//! no run holds its input in memory: N records of S bytes of data over K
//! streams, a STREAM state every M records; optionally a `customer` field
//! holding one of C distinct values, for partition keys taken from the data.

use std::io::{self, Write};

/// Digits of the record number patched into each record.
const ID_DIGITS: usize = 12;

/// Digits of the customer patched into each record (when `keys` > 0).
const KEY_DIGITS: usize = 8;

/// The shape of one input.
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    /// Records in all.
    pub records: u64,
    /// Bytes of each record's `data` JSON text.
    pub size: usize,
    /// Streams the records rotate over (`bench_0`, `bench_1`, …).
    pub streams: usize,
    /// A state after every this many records (0: none).
    pub state_every: u64,
    /// Distinct values of `data.customer` (0: no such field). Each record's is
    /// drawn pseudo-randomly (the same for every run), not in rotation: real
    /// keys repeat at irregular distances, and with a fixed rotation a batch
    /// would hold exactly min(keys, bufferSize) distinct keys, which flatters
    /// `keepKeyOrder`.
    pub keys: u64,
}

/// A RECORD line of one stream with fixed-width id and customer slots to patch.
struct Template {
    line: Vec<u8>,
    id_at: usize,
    key_at: Option<usize>,
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
        // splitmix64 of the record number: cheap, well spread, and
        // reproducible, so the benchmark can predict the batches it causes.
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % self.keys
    }

    /// Record `i`'s stream (an index into `stream_names`).
    pub fn stream_of(&self, i: u64) -> usize {
        (i % self.streams as u64) as usize
    }

    /// Writes the whole input to `out`; returns the bytes written.
    pub fn write_to(&self, mut out: impl Write) -> io::Result<u64> {
        let templates: Vec<Template> = self
            .stream_names()
            .iter()
            .map(|name| self.template(name))
            .collect();
        let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024 + 2 * self.size + 512);
        let mut total = 0u64;
        let mut states = 0u64;
        for i in 0..self.records {
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
            if self.state_every > 0 && (i + 1) % self.state_every == 0 {
                let stream = states % self.streams as u64;
                states += 1;
                writeln!(
                    buf,
                    "{{\"type\":\"STATE\",\"state\":{{\"type\":\"STREAM\",\"stream\":{{\"stream_descriptor\":{{\"name\":\"bench_{stream}\"}},\"stream_state\":{{\"cursor\":{i}}}}}}}}}"
                )?;
            }
            if buf.len() >= 256 * 1024 {
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

    /// `{"id":"000000000000","pad":"abc…"}` padded to `size` bytes, or
    /// `{"id":"000000000000","customer":"00000000","pad":"abc…"}` when the feed has keys.
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
        let key_at = (self.keys > 0).then(|| id_at + ID_DIGITS + customer_head.len());
        let mut fixed = "{\"id\":\"\",\"pad\":\"\"}".len() + ID_DIGITS;
        if key_at.is_some() {
            fixed += customer_head.len() + KEY_DIGITS;
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
        line.extend_from_slice(
            format!("\",\"pad\":\"{pad}\"}},\"emitted_at\":1700000000000}}}}\n").as_bytes(),
        );
        Template {
            line,
            id_at,
            key_at,
        }
    }
}

/// Writes `n` as zero-padded decimal filling `slot`.
fn put_digits(slot: &mut [u8], mut n: u64) {
    for d in slot.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}
