//! `put`'s input options: the byte that ends each record (`--delimiter`),
//! records written `key<D>value` (`--key-delimiter`), records written in
//! base64 (`--input base64`) and an explicit hash key; each read from its
//! flag, and applied to every input line.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// The escapes `--delimiter` and `--key-delimiter` take, for messages.
const ESCAPES: &str = r"\n, \r, \t, \0, \\ or \xHH";

/// Standard base64, with or without its `=` padding (`base64 -w0` pads,
/// some encoders do not).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The largest explicit hash key: 2^128 - 1.
const MAX_HASH_KEY: u128 = u128::MAX;

/// Reads a byte string given as characters and escapes: `\n`, `\r`, `\t`,
/// `\0`, `\\`, `\xHH`; any other character stands for its UTF-8 bytes.
fn unescape(value: &str) -> Result<Vec<u8>, String> {
    if value.is_empty() {
        return Err(format!(
            "is empty; give a character or an escape ({ESCAPES})"
        ));
    }
    let mut out = Vec::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 => out.push(b),
                    _ => {
                        return Err(format!(
                            "has `\\x{hex}`: \\x takes two hex digits, such as \\x1e"
                        ))
                    }
                }
            }
            Some(other) => {
                return Err(format!(
                    "has the unknown escape `\\{other}`; the escapes are {ESCAPES}"
                ))
            }
            None => return Err(format!("ends in a lone `\\`; the escapes are {ESCAPES}")),
        }
    }
    Ok(out)
}

/// Parses `--delimiter`: the one byte that ends each record, as a character
/// or an escape (`\0` for NUL-separated input, as `find -print0` writes).
pub fn parse_delimiter(value: &str) -> Result<u8, String> {
    match unescape(value)?[..] {
        [byte] => Ok(byte),
        ref bytes => Err(format!(
            "`{value}` is {} bytes; the delimiter is one byte: a character such as `,`, or an escape ({ESCAPES})",
            bytes.len()
        )),
    }
}

/// The bytes that end a record's key in `key<D>value` input (kcat's `-K`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDelimiter(Vec<u8>);

impl KeyDelimiter {
    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A line's key and value: the bytes before the first delimiter, and
    /// those after it; None when the line has no delimiter.
    pub fn split<'a>(&self, line: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
        let at = memchr::memmem::find(line, &self.0)?;
        Some((&line[..at], &line[at + self.0.len()..]))
    }
}

/// Parses `--key-delimiter`: one or more bytes, as characters or escapes.
pub fn parse_key_delimiter(value: &str) -> Result<KeyDelimiter, String> {
    unescape(value).map(KeyDelimiter)
}

/// How a line holds its record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// As they are.
    Text,
    /// In base64, so that any bytes, a delimiter among them, can be sent.
    Base64,
}

impl InputFormat {
    /// The longest line a record of `record` bytes may take.
    pub fn line_bytes(self, record: usize) -> usize {
        match self {
            InputFormat::Text => record,
            InputFormat::Base64 => record.div_ceil(3) * 4,
        }
    }

    /// The record's bytes from a line's: the line itself, or its base64
    /// decoded into `buf`. The error says why the line is no base64.
    pub fn decode<'a>(self, line: &'a [u8], buf: &'a mut Vec<u8>) -> Result<&'a [u8], String> {
        match self {
            InputFormat::Text => Ok(line),
            InputFormat::Base64 => {
                buf.clear();
                BASE64
                    .decode_vec(line, buf)
                    .map_err(|e| format!("is not base64 ({e})"))?;
                Ok(buf)
            }
        }
    }
}

/// Parses `--input`: `text` or `base64`.
pub fn parse_input(value: &str) -> Result<InputFormat, String> {
    match value {
        "text" => Ok(InputFormat::Text),
        "base64" => Ok(InputFormat::Base64),
        other => Err(format!("must be `text` or `base64`, got `{other}`")),
    }
}

/// An explicit hash key: the 128-bit hash that picks the shard in place of
/// the partition key's MD5, as decimal digits (without leading zeros, as
/// Kinesis takes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKey(String);

impl HashKey {
    /// The digits, as requests carry them.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses `--explicit-hash-key`: a decimal integer from 0 to 2^128 - 1.
pub fn parse_hash_key(value: &str) -> Result<HashKey, String> {
    let bad =
        || format!("must be a decimal integer from 0 to {MAX_HASH_KEY} (2^128 - 1), got `{value}`");
    crate::kinesis::shards::parse_hash_key(value)
        .map(|n| HashKey(n.to_string()))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_one_byte() {
        for (given, byte) in [
            (",", b','),
            ("|", b'|'),
            (" ", b' '),
            ("\t", b'\t'),
            (r"\n", b'\n'),
            (r"\r", b'\r'),
            (r"\t", b'\t'),
            (r"\0", 0),
            (r"\\", b'\\'),
            (r"\x1e", 0x1e),
            (r"\xFF", 0xff),
        ] {
            assert_eq!(parse_delimiter(given), Ok(byte), "{given}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("ab", "2 bytes"),
            ("é", "2 bytes"),
            (r"\q", "unknown escape `\\q`"),
            (r"\x1", "two hex digits"),
            (r"\xZZ", "two hex digits"),
            ("\\", "lone"),
            (r"\n\n", "2 bytes"),
        ] {
            let e = parse_delimiter(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn key_delimiters_split_at_the_first() {
        let d = parse_key_delimiter(":").unwrap();
        assert_eq!(d.split(b"k:v:w"), Some((&b"k"[..], &b"v:w"[..])));
        assert_eq!(d.split(b":v"), Some((&b""[..], &b"v"[..])));
        assert_eq!(d.split(b"k:"), Some((&b"k"[..], &b""[..])));
        assert_eq!(d.split(b"kv"), None);
        let long = parse_key_delimiter(r"::\t").unwrap();
        assert_eq!(long.as_bytes(), b"::\t");
        assert_eq!(long.split(b"a:b::\tc"), Some((&b"a:b"[..], &b"c"[..])));
        assert!(parse_key_delimiter("").is_err());
    }

    #[test]
    fn base64_lines() {
        let mut buf = Vec::new();
        assert_eq!(
            InputFormat::Base64.decode(b"AP8KYQ==", &mut buf).unwrap(),
            b"\x00\xff\na"
        );
        assert_eq!(
            InputFormat::Base64.decode(b"AP8KYQ", &mut buf).unwrap(),
            b"\x00\xff\na",
            "padding is optional"
        );
        for bad in [&b"AP8K YQ=="[..], b"!!!!", b"A"] {
            let e = InputFormat::Base64.decode(bad, &mut buf).unwrap_err();
            assert!(e.starts_with("is not base64"), "{e}");
        }
        assert_eq!(
            InputFormat::Text.decode(b"as is", &mut buf).unwrap(),
            b"as is"
        );
        assert_eq!(InputFormat::Base64.line_bytes(1024 * 1024), 1_398_104);
        assert_eq!(InputFormat::Text.line_bytes(7), 7);
        assert_eq!(parse_input("base64"), Ok(InputFormat::Base64));
        assert!(parse_input("binary").unwrap_err().contains("`binary`"));
    }

    #[test]
    fn hash_keys_are_128_bit_decimals() {
        assert_eq!(parse_hash_key("0").unwrap().as_str(), "0");
        assert_eq!(parse_hash_key("007").unwrap().as_str(), "7");
        let max = "340282366920938463463374607431768211455";
        assert_eq!(parse_hash_key(max).unwrap().as_str(), max);
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "0x10",
            " 1",
            "340282366920938463463374607431768211456",
        ] {
            let e = parse_hash_key(bad).unwrap_err();
            assert!(e.contains("2^128 - 1") && e.contains(bad), "{bad}: {e}");
        }
    }
}
