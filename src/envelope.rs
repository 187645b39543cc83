//! Record encoding: the JSON object each Airbyte record becomes in Kinesis.

use crate::config::DataFormat;
use serde_json::value::RawValue;

/// How records are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// How `_airbyte_data` is written.
    pub format: DataFormat,
    /// Whether `_airbyte_stream` and `_airbyte_namespace` are added.
    pub with_stream: bool,
}

impl Envelope {
    /// Appends the Kinesis record for one Airbyte record to `out`:
    /// `{"_airbyte_ab_id":…,"_airbyte_emitted_at":…,"_airbyte_data":…}`.
    pub fn encode(
        &self,
        out: &mut Vec<u8>,
        id: &str,
        emitted_at: i64,
        data: &RawValue,
        stream: (Option<&str>, &str),
    ) {
        out.extend_from_slice(b"{\"_airbyte_ab_id\":\"");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\",\"_airbyte_emitted_at\":");
        out.extend_from_slice(itoa(emitted_at).as_bytes());
        if self.with_stream {
            out.extend_from_slice(b",\"_airbyte_stream\":");
            json_string(out, stream.1);
            out.extend_from_slice(b",\"_airbyte_namespace\":");
            match stream.0 {
                Some(ns) => json_string(out, ns),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b",\"_airbyte_data\":");
        match self.format {
            DataFormat::String => json_string(out, data.get()),
            DataFormat::Object => out.extend_from_slice(data.get().as_bytes()),
        }
        out.push(b'}');
    }
}

/// Appends `s` as a JSON string literal, escaped as serde_json does (`\"`,
/// `\\`, the short forms `\n \r \t \b \f`, other control characters as
/// `\u00XX`; everything else as it is).
///
/// This is the hot path of every record (its data is escaped into the
/// envelope), so it skips eight bytes at a time while none needs escaping.
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            let flagged = needs_escape(u64::from_le_bytes(word));
            if flagged == 0 {
                i += 8;
                continue;
            }
            // The lowest flagged byte is exact (see `needs_escape`).
            i += (flagged.trailing_zeros() / 8) as usize;
        }
        let b = bytes[i];
        if b >= 0x20 && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[copied..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xF)]);
            }
        }
        i += 1;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// The high bit of each byte of `word` that is a control character, `"` or
/// `\\` is set. A byte above a flagged one may be flagged falsely (the
/// subtraction borrows), never one below: the lowest flagged byte is exact.
fn needs_escape(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let is_zero = |w: u64| w.wrapping_sub(ONES) & !w;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (control | is_zero(word ^ (ONES * u64::from(b'"'))) | is_zero(word ^ (ONES * u64::from(b'\\'))))
        & HIGH
}

fn itoa(n: i64) -> String {
    n.to_string()
}

/// Random version-4 UUIDs, drawn from a pool of OS randomness so that a
/// record costs no system call.
pub struct UuidPool {
    pool: Vec<u8>,
    used: usize,
}

impl Default for UuidPool {
    fn default() -> Self {
        UuidPool::new()
    }
}

impl UuidPool {
    const POOL_BYTES: usize = 16 * 256;

    /// An empty pool, filled on first use.
    pub fn new() -> UuidPool {
        UuidPool {
            pool: vec![0; Self::POOL_BYTES],
            used: Self::POOL_BYTES,
        }
    }

    /// The next random UUID, hyphenated, into `out` (cleared first).
    pub fn next_into(&mut self, out: &mut String) {
        if self.used + 16 > self.pool.len() {
            if getrandom::fill(&mut self.pool).is_err() {
                // No OS randomness: fall back to uuid's own source for this batch.
                for chunk in self.pool.chunks_mut(16) {
                    chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
                }
            }
            self.used = 0;
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&self.pool[self.used..self.used + 16]);
        self.used += 16;
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        out.clear();
        let mut buf = uuid::Uuid::encode_buffer();
        out.push_str(id.hyphenated().encode_lower(&mut buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn java_compatible_envelope() {
        let env = Envelope {
            format: DataFormat::String,
            with_stream: false,
        };
        let mut out = Vec::new();
        let data = raw(r#"{"a": "x\"y\n", "n": 123456789012345678901, "f": 1.50}"#);
        env.encode(&mut out, "id-1", 1700000000000, &data, (None, "s"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["_airbyte_ab_id"], "id-1");
        assert_eq!(v["_airbyte_emitted_at"], 1700000000000i64);
        assert_eq!(v["_airbyte_data"].as_str().unwrap(), data.get());
        assert!(v.get("_airbyte_stream").is_none());
    }

    #[test]
    fn object_format_and_stream_fields() {
        let env = Envelope {
            format: DataFormat::Object,
            with_stream: true,
        };
        let mut out = Vec::new();
        env.encode(
            &mut out,
            "id",
            1,
            &raw(r#"{"k":[1,2]}"#),
            (Some("ns"), "st"),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"_airbyte_ab_id":"id","_airbyte_emitted_at":1,"_airbyte_stream":"st","_airbyte_namespace":"ns","_airbyte_data":{"k":[1,2]}}"#
        );
    }

    #[test]
    fn escapes_exactly_as_serde_json() {
        let mut cases: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        cases.extend(
            [
                "",
                "plain ascii text that is longer than eight bytes",
                "quote \" and backslash \\ and\nnew\tlines\r",
                "\u{7f}\u{80} é ü 東京 🚀 \u{1f}\u{0}",
                r#"{"a":"x\"y","b":[1,2.50,null],"c":"\u00e9"}"#,
            ]
            .map(String::from),
        );
        // Every escapable byte at every offset of an eight-byte word, and runs of them.
        for b in ["\"", "\\", "\n", "\u{1}", "\u{1f}"] {
            for at in 0..17 {
                cases.push(format!("{}{b}{}", "x".repeat(at), "y".repeat(17 - at)));
                cases.push(format!("{}{b}{b}{b} {}", "é".repeat(at), "z".repeat(at)));
            }
        }
        for case in cases {
            let mut out = b"prefix".to_vec();
            json_string(&mut out, &case);
            let expected = format!("prefix{}", serde_json::to_string(&case).unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{case:?}");
        }
    }

    #[test]
    fn uuids_are_random_v4() {
        let mut pool = UuidPool::new();
        let mut seen = std::collections::HashSet::new();
        let mut s = String::new();
        for _ in 0..1000 {
            pool.next_into(&mut s);
            let id = uuid::Uuid::parse_str(&s).unwrap();
            assert_eq!(id.get_version_num(), 4);
            assert!(seen.insert(s.clone()));
        }
    }
}
