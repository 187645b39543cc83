//! JSON text written by hand on the hot path: string literals escaped
//! exactly as serde_json escapes them, without building a value first; and
//! JSON text read from files, which editors may start with a byte order mark;
//! strings read without copying them.

use serde::de::Visitor;
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::fmt;

/// `text` without a leading UTF-8 byte order mark (U+FEFF), which some editors
/// write and JSON parsers refuse.
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{FEFF}').unwrap_or(text)
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

/// A JSON string borrowed from the text it is read from when it has no
/// escapes. (serde borrows a bare `Cow<str>` field but not one inside an
/// `Option`, which would cost an allocation per record.)
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_borrowed_unless_escaped() {
        #[derive(Deserialize)]
        struct Entry<'a> {
            #[serde(borrow)]
            s: Option<Text<'a>>,
        }
        let plain: Entry = serde_json::from_str(r#"{"s":"shardId-1"}"#).unwrap();
        assert!(matches!(plain.s, Some(Text(Cow::Borrowed("shardId-1")))));
        let escaped: Entry = serde_json::from_str(r#"{"s":"a\u0062"}"#).unwrap();
        assert!(matches!(escaped.s, Some(Text(Cow::Owned(ref s))) if s == "ab"));
    }

    #[test]
    fn a_byte_order_mark_is_skipped_once() {
        assert_eq!(without_bom("\u{FEFF}{}"), "{}");
        assert_eq!(without_bom("{}"), "{}");
        assert_eq!(without_bom("\u{FEFF}\u{FEFF}{}"), "\u{FEFF}{}");
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
}
