//! Airbyte input for the benchmark, generated while it is written so that
//! no run holds its input in memory: N records of S bytes of data over K
//! streams, a STREAM state every M records.

use std::io::{self, Write};

/// Digits of the record number patched into each record.
const ID_DIGITS: usize = 12;

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
}

/// A RECORD line of one stream with a fixed-width id slot to patch.
struct Template {
    line: Vec<u8>,
    id_at: usize,
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
            let t = &templates[(i % self.streams as u64) as usize];
            let start = buf.len();
            buf.extend_from_slice(&t.line);
            put_digits(&mut buf[start + t.id_at..start + t.id_at + ID_DIGITS], i);
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

    /// `{"id":"000000000000","pad":"abc…"}` padded to `size` bytes.
    fn template(&self, stream: &str) -> Template {
        let head = format!(
            "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"{stream}\",\"data\":{{\"id\":\""
        );
        let id_at = head.len();
        let fixed = "{\"id\":\"\",\"pad\":\"\"}".len() + ID_DIGITS;
        let pad: String = (0..self.size.saturating_sub(fixed))
            .map(|i| match i % 16 {
                7 => ' ',
                n => (b'a' + n as u8) as char,
            })
            .collect();
        let mut line = head.into_bytes();
        line.extend_from_slice(&[b'0'; ID_DIGITS]);
        line.extend_from_slice(
            format!("\",\"pad\":\"{pad}\"}},\"emitted_at\":1700000000000}}}}\n").as_bytes(),
        );
        Template { line, id_at }
    }
}

/// Writes `n` as zero-padded decimal filling `slot`.
fn put_digits(slot: &mut [u8], mut n: u64) {
    for d in slot.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}
